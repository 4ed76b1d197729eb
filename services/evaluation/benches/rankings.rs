//! A province's year in evaluation: the monthly ranking of one city's
//! streets and units from the rollups beside the same answer from a plain
//! `GROUP BY` over the facts, and the rate at which events become facts
//! and rollups.
//!
//! ```text
//! cargo bench -p jiesu-evaluation --bench rankings -- [--facts 10000000] [--queries 100] [--tickets 20000]
//! ```
//!
//! 1. A fresh evaluation database on the local PostgreSQL gets `--facts`
//!    synthetic ticket facts over 2026 in a province-sized tree: 16 cities,
//!    136 counties (the tenants), 1,800 streets, 20,000 units, 60
//!    categories, 12 channels, with dispatch, deadlines met or missed,
//!    resolutions, closings and callback verdicts drawn from fixed hashes.
//!    The day rollups are built from the facts by the production
//!    contribution function (`domain::counts::delta`), day by day.
//! 2. June's ranking of the city 3702's units and streets is asked
//!    `--queries` times each way, alternating: from the rollups
//!    (`store::sum_rollups`, what `GetRates` runs) and from the facts
//!    (one `GROUP BY` computing the same counters). Both must give the same
//!    counts for every key; p50/p99 of each are printed.
//! 3. Ingest: `--tickets` tickets' events (received, dispatched, signed,
//!    resolved, closed: five each) are published to JetStream, then an
//!    evaluation target is started against an empty database and timed
//!    until every event is a step; the anchor is the same events drained by
//!    a bare JetStream pull with no database.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use chrono::{NaiveDate, TimeDelta};
use jiesu_bus::{H_EVENT, H_MSG_ID, H_TENANT};
use jiesu_evaluation::{
    EvaluationTarget, Migrations,
    domain::counts::{COUNTERS, Counts, delta, with_months},
    store::{self, facts},
};
use jiesu_proto::{
    Event,
    dispatch::{self as dpb, WorkOrderChange, WorkOrderFacts},
    intake::TicketReceived,
    time::to_timestamp,
};
use jiesu_testkit::{TestDb, TestEnv};
use prost::Message;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    facts: u64,
    queries: usize,
    tickets: u64,
}

fn args() -> Res<Args> {
    let mut a = Args {
        facts: 10_000_000,
        queries: 100,
        tickets: 20_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--facts" => a.facts = val()?.parse()?,
            "--queries" => a.queries = val()?.parse()?,
            "--tickets" => a.tickets = val()?.parse()?,
            _ => {}
        }
    }
    Ok(a)
}

/// Facts `from..=to` of the synthetic province, drawn from hashes of the
/// row number so every run makes the same year.
fn facts_sql(from: u64, to: u64, total: u64) -> String {
    let step = 365.0 * 86400.0 / total as f64;
    format!(
        "WITH g AS ( \
           SELECT n, \
             (hashint8(n) & 2147483647) % 20000 AS u, \
             (hashint8(n + 1000000007) & 2147483647) AS h1, \
             (hashint8(n + 2000000011) & 2147483647) AS h2, \
             (hashint8(n + 3000000019) & 2147483647) AS h3 \
           FROM generate_series({from}, {to}) n), \
         p AS ( \
           SELECT n, u, h1, h2, h3, u % 1800 AS s, (u % 1800) % 136 AS c, \
             timestamptz '2026-01-01 00:00:00+08' + make_interval(secs => (n - 1) * {step}) AS at \
           FROM g), \
         q AS ( \
           SELECT *, '37' || lpad((1 + c % 16)::text, 2, '0') || lpad((c / 16 + 1)::text, 2, '0') AS tenant, \
             h1 % 100 < 98 AS dispatched, \
             h1 % 100 < 91 AS resolved, \
             h2 % 100 < 97 AS closes, \
             (h2 / 100) % 100 < 75 AS answers \
           FROM p) \
         INSERT INTO ticket_facts (ticket_id, tenant, tracking_no, received_at, channel, nature, \
           category, category_name, received_region, order_version, order_region, status, unit_id, \
           unit_name, dispatched_at, clock_started_at, sign_due, respond_due, resolve_due, signed_at, \
           responded_at, resolved_at, closed_at, returns, reopens, resolve_work_minutes, \
           excluded_reason, verdict_resolved, verdict_satisfaction, unreachable) \
         SELECT gen_random_uuid(), tenant, 'B' || n, at, \
           (ARRAY['hotline','app','wechat','mini_program','photo','grid','enterprise', \
                  'transfer_110','transfer_12368','transfer_12309','city_management', \
                  'tenant_platform'])[1 + h3 % 12], \
           'complaint', 'C' || lpad((h3 / 12 % 60)::text, 2, '0'), '分类' || (h3 / 12 % 60), tenant, 1, \
           tenant || lpad((s / 136 + 1)::text, 3, '0') || lpad((1 + n % 5)::text, 3, '0'), \
           CASE WHEN NOT dispatched THEN 'triage' WHEN resolved AND closes THEN 'closed' \
                WHEN resolved THEN 'resolved' ELSE 'signed' END, \
           CASE WHEN dispatched THEN 'u' || u ELSE '' END, \
           CASE WHEN dispatched THEN '单位' || u ELSE '' END, \
           CASE WHEN dispatched THEN at + interval '10 minutes' END, \
           CASE WHEN dispatched THEN at + interval '10 minutes' END, \
           CASE WHEN dispatched THEN at + interval '2 hours' END, \
           CASE WHEN dispatched THEN at + interval '1 day' END, \
           CASE WHEN dispatched THEN at + interval '15 days' END, \
           CASE WHEN dispatched THEN at + make_interval(mins => (h3 / 720 % 160)::int) END, \
           CASE WHEN dispatched THEN at + make_interval(hours => (h3 / 115200 % 30)::int) END, \
           CASE WHEN dispatched AND resolved THEN at + make_interval(days => (h2 / 10000 % 20)::int) END, \
           CASE WHEN dispatched AND resolved AND closes \
                THEN at + make_interval(days => (h2 / 10000 % 20)::int) + interval '1 hour' END, \
           (h1 / 100 % 100 < 3)::int, (h1 / 100 % 100 BETWEEN 3 AND 5)::int, \
           CASE WHEN dispatched AND resolved THEN (h2 / 10000 % 20)::int * 480 + 60 ELSE 0 END, \
           CASE WHEN h1 / 10000 % 1000 < 5 THEN 'unreasonable' END, \
           CASE WHEN dispatched AND resolved AND closes AND answers THEN h3 / 7 % 10 < 9 END, \
           CASE WHEN dispatched AND resolved AND closes AND answers THEN \
             CASE WHEN h3 / 70 % 10 < 7 THEN 'satisfied' WHEN h3 / 70 % 10 < 9 THEN 'basic' \
                  ELSE 'unsatisfied' END END, \
           dispatched AND resolved AND closes AND NOT answers AND h3 / 7 % 10 < 8 \
         FROM q"
    )
}

/// Rollups of the facts received on `day` (China time), by the production
/// contribution function.
async fn roll_day(db: &DatabaseConnection, day: NaiveDate) -> Res<usize> {
    let start = jiesu_common::time::china_midnight(day);
    let end = jiesu_common::time::china_midnight(day + TimeDelta::days(1));
    let rows = facts::Entity::find()
        .filter(facts::Column::ReceivedAt.gte(start))
        .filter(facts::Column::ReceivedAt.lt(end))
        .all(db)
        .await?;
    let mut sums: BTreeMap<(String, &'static str, NaiveDate, String), Counts> = BTreeMap::new();
    for m in &rows {
        for ((dim, d, key), c) in with_months(delta(None, &m.facts())) {
            sums.entry((m.tenant.clone(), dim, d, key))
                .or_default()
                .add(&c);
        }
    }
    let cols = COUNTERS.join(", ");
    let set = COUNTERS
        .iter()
        .map(|c| format!("{c} = rollup_day.{c} + EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let entries: Vec<_> = sums.into_iter().collect();
    for chunk in entries.chunks(2000) {
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 26);
        let mut tuples = Vec::with_capacity(chunk.len());
        for (i, ((tenant, dim, d, key), c)) in chunk.iter().enumerate() {
            let b = 1 + i * (4 + COUNTERS.len());
            let ph: Vec<String> = (0..4 + COUNTERS.len())
                .map(|k| format!("${}", b + k))
                .collect();
            tuples.push(format!("({})", ph.join(", ")));
            values.push(tenant.clone().into());
            values.push((*dim).into());
            values.push((*d).into());
            values.push(key.clone().into());
            values.extend(c.0.iter().map(|v| sea_orm::Value::from(*v)));
        }
        // A month's rows come back every day of it: added up.
        db.execute_raw(store::stmt(
            &format!(
                "INSERT INTO rollup_day (tenant, dim, day, key, {cols}) VALUES {} \
                 ON CONFLICT (dim, tenant, day, key) DO UPDATE SET {set}",
                tuples.join(", ")
            ),
            values,
        ))
        .await?;
    }
    Ok(entries.len())
}

/// The same counters as the contribution function, by `GROUP BY` over the
/// facts of the tenants under `prefix` received in `from..=to`.
async fn group_by(
    db: &DatabaseConnection,
    dim: &str,
    prefix: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Res<Vec<(String, Counts)>> {
    let key = match dim {
        "unit" => "unit_id",
        _ => "rpad(left(order_region, 9), 12, '0')",
    };
    let judged = "excluded_reason IS NULL AND NOT merged AND NOT withdrawn";
    let sql = format!(
        "SELECT {key} AS key, \
           count(*) AS received, \
           count(*) FILTER (WHERE excluded_reason IS NOT NULL) AS excluded, \
           count(*) FILTER (WHERE excluded_reason IS NULL AND merged) AS merged, \
           count(*) FILTER (WHERE excluded_reason IS NULL AND NOT merged AND withdrawn) AS withdrawn, \
           count(*) FILTER (WHERE {judged}) AS assessed, \
           count(*) FILTER (WHERE {judged} AND (dispatched_at IS NOT NULL OR clock_started_at IS NOT NULL)) AS dispatched, \
           count(*) FILTER (WHERE {judged} AND signed_at IS NOT NULL AND (sign_due IS NULL OR signed_at <= sign_due)) AS signed_on_time, \
           count(*) FILTER (WHERE {judged} AND responded_at IS NOT NULL) AS responded, \
           count(*) FILTER (WHERE {judged} AND responded_at IS NOT NULL AND (respond_due IS NULL OR responded_at <= respond_due)) AS responded_on_time, \
           count(*) FILTER (WHERE {judged} AND resolved_at IS NOT NULL) AS resolved, \
           count(*) FILTER (WHERE {judged} AND resolved_at IS NOT NULL AND (resolve_due IS NULL OR resolved_at <= resolve_due)) AS resolved_on_time, \
           count(*) FILTER (WHERE {judged} AND (resolved_at AT TIME ZONE 'Asia/Shanghai')::date = (received_at AT TIME ZONE 'Asia/Shanghai')::date) AS resolved_same_day, \
           count(*) FILTER (WHERE {judged} AND status = 'closed' AND closed_at IS NOT NULL) AS closed, \
           count(*) FILTER (WHERE {judged} AND returns > 0) AS returned, \
           count(*) FILTER (WHERE {judged} AND reopens > 0) AS reopened, \
           count(*) FILTER (WHERE {judged} AND verdict_satisfaction IS NOT NULL AND verdict_resolved IS NOT NULL) AS callbacks_valid, \
           count(*) FILTER (WHERE {judged} AND verdict_resolved IS NOT NULL AND verdict_satisfaction = 'satisfied') AS satisfied, \
           count(*) FILTER (WHERE {judged} AND verdict_resolved IS NOT NULL AND verdict_satisfaction = 'basic') AS basic, \
           count(*) FILTER (WHERE {judged} AND verdict_resolved IS NOT NULL AND verdict_satisfaction NOT IN ('satisfied', 'basic')) AS unsatisfied, \
           count(*) FILTER (WHERE {judged} AND verdict_satisfaction IS NOT NULL AND verdict_resolved) AS callback_resolved, \
           count(*) FILTER (WHERE {judged} AND (verdict_satisfaction IS NULL OR verdict_resolved IS NULL) AND unreachable) AS unreachable, \
           COALESCE(sum(GREATEST(resolve_work_minutes, 0)) FILTER (WHERE {judged} AND resolved_at IS NOT NULL), 0) AS resolve_work_minutes \
         FROM ticket_facts \
         WHERE tenant LIKE $1 AND received_at >= $2 AND received_at < $3 AND {key} <> '' \
         GROUP BY 1 ORDER BY 1"
    );
    let start = jiesu_common::time::china_midnight(from);
    let end = jiesu_common::time::china_midnight(to + TimeDelta::days(1));
    let rows = db
        .query_all_raw(store::stmt(
            &sql,
            vec![format!("{prefix}%").into(), start.into(), end.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            let mut c = Counts::default();
            for (i, name) in COUNTERS.iter().enumerate() {
                c.0[i] = r.try_get::<i64>("", name)?;
            }
            Ok((r.try_get("", "key")?, c))
        })
        .collect()
}

fn pct(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len().max(1) - 1) as f64 * q).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

async fn rankings(a: &Args) -> Res<()> {
    let db = TestDb::new::<Migrations>("evaluation").await;
    let conn = db.connect().await;
    let t = Instant::now();
    let chunk = 1_000_000u64;
    let mut from = 1;
    while from <= a.facts {
        let to = (from + chunk - 1).min(a.facts);
        conn.execute_unprepared(&facts_sql(from, to, a.facts))
            .await?;
        eprintln!(
            "  facts {to} / {} ({:.0} s)",
            a.facts,
            t.elapsed().as_secs_f64()
        );
        from = to + 1;
    }
    let load = t.elapsed();
    let t = Instant::now();
    let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).ok_or("date")?;
    let mut rollup_rows = 0;
    while day.format("%Y").to_string() == "2026" {
        rollup_rows += roll_day(&conn, day).await?;
        if day.format("%d").to_string() == "01" {
            eprintln!(
                "  rollups to {day}: {rollup_rows} rows ({:.0} s)",
                t.elapsed().as_secs_f64()
            );
        }
        day += TimeDelta::days(1);
    }
    let rolled = t.elapsed();
    conn.execute_unprepared("VACUUM ANALYZE ticket_facts")
        .await?;
    conn.execute_unprepared("VACUUM ANALYZE rollup_day").await?;
    let (from, to) = (
        NaiveDate::from_ymd_opt(2026, 6, 1).ok_or("date")?,
        NaiveDate::from_ymd_opt(2026, 6, 30).ok_or("date")?,
    );
    let city = "3702";
    // Same numbers both ways.
    for dim in ["unit", "street"] {
        let a1 = store::sum_rollups(&conn, dim, city, from, to, "").await?;
        let b1 = group_by(&conn, dim, city, from, to).await?;
        assert_eq!(a1.len(), b1.len(), "{dim}: different keys");
        assert!(a1 == b1, "{dim}: rollups and GROUP BY disagree");
        eprintln!("  {dim}: {} keys agree", a1.len());
    }
    let (mut by_rollup, mut by_scan) = (Vec::new(), Vec::new());
    for _ in 0..a.queries {
        let t = Instant::now();
        for dim in ["unit", "street"] {
            store::sum_rollups(&conn, dim, city, from, to, "").await?;
        }
        by_rollup.push(t.elapsed());
        let t = Instant::now();
        for dim in ["unit", "street"] {
            group_by(&conn, dim, city, from, to).await?;
        }
        by_scan.push(t.elapsed());
    }
    by_rollup.sort();
    by_scan.sort();
    let facts_n = db.count("SELECT count(*) FROM ticket_facts").await;
    let units = store::sum_rollups(&conn, "unit", city, from, to, "")
        .await?
        .len();
    let streets = store::sum_rollups(&conn, "street", city, from, to, "")
        .await?
        .len();
    println!(
        "facts: {facts_n} loaded in {:.0} s; {rollup_rows} rollup rows built in {:.0} s",
        load.as_secs_f64(),
        rolled.as_secs_f64()
    );
    println!(
        "June ranking of city {city} ({units} units + {streets} streets), {} queries each:",
        a.queries
    );
    println!(
        "  from the rollups:       p50 {:.1} ms  p99 {:.1} ms",
        pct(&by_rollup, 0.5),
        pct(&by_rollup, 0.99)
    );
    println!(
        "  GROUP BY over facts:    p50 {:.1} ms  p99 {:.1} ms",
        pct(&by_scan, 0.5),
        pct(&by_scan, 0.99)
    );
    Ok(())
}

/// Five events per ticket, as intake and dispatch publish them.
fn events(i: u64) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let tenant = format!("3702{:02}", 1 + i % 8);
    let ticket = uuid::Uuid::now_v7().to_string();
    let wo = uuid::Uuid::now_v7().to_string();
    let now = chrono::Utc::now();
    let at = |m: i64| Some(to_timestamp(now + TimeDelta::minutes(m)));
    let received = TicketReceived {
        ticket_id: ticket.clone(),
        tenant: tenant.clone(),
        region_code: format!("{tenant}{:03}001", 1 + i % 13),
        tracking_no: format!("B{i}"),
        channel: "hotline".into(),
        nature: "complaint".into(),
        category: format!("C{:02}", i % 60),
        category_name: "分类".into(),
        category_path: vec![format!("G{:01}", i % 6), format!("C{:02}", i % 60)],
        received_at: at(0),
        ..Default::default()
    };
    let snapshot = |version: i32, status: &str, m: i64| WorkOrderFacts {
        version,
        status: status.into(),
        unit_id: format!("u{}", i % 1250),
        unit_name: "单位".into(),
        clock_started_at: at(1),
        sign_due: at(120),
        respond_due: at(1440),
        resolve_due: at(20000),
        signed_at: (version >= 1).then(|| at(5)).flatten(),
        responded_at: (version >= 2).then(|| at(m)).flatten(),
        resolved_at: (version >= 2).then(|| at(m)).flatten(),
        closed_at: (version >= 3).then(|| at(m + 1)).flatten(),
        region_code: received.region_code.clone(),
        ..Default::default()
    };
    let change = |version: i32, status: &str, m: i64| WorkOrderChange {
        ticket_id: ticket.clone(),
        work_order_id: wo.clone(),
        tenant: tenant.clone(),
        at: at(m),
        facts: Some(snapshot(version, status, m)),
        ..Default::default()
    };
    let dispatched = dpb::TicketDispatched {
        ticket_id: ticket.clone(),
        work_order_id: wo.clone(),
        tenant: tenant.clone(),
        unit_id: format!("u{}", i % 1250),
        dispatched_at: at(1),
        facts: Some(snapshot(0, "dispatched", 1)),
        ..Default::default()
    };
    vec![
        ("intake", TicketReceived::NAME, received.encode_to_vec()),
        (
            "dispatch",
            dpb::TicketDispatched::NAME,
            dispatched.encode_to_vec(),
        ),
        (
            "dispatch",
            dpb::WorkOrderSigned::NAME,
            dpb::WorkOrderSigned {
                change: Some(change(1, "signed", 5)),
            }
            .encode_to_vec(),
        ),
        (
            "dispatch",
            dpb::WorkOrderResolved::NAME,
            dpb::WorkOrderResolved {
                change: Some(change(2, "resolved", 300)),
                reply: "已处理".into(),
            }
            .encode_to_vec(),
        ),
        (
            "dispatch",
            dpb::WorkOrderClosed::NAME,
            dpb::WorkOrderClosed {
                change: Some(change(3, "closed", 301)),
            }
            .encode_to_vec(),
        ),
    ]
}

async fn ingest(a: &Args) -> Res<()> {
    let env = TestEnv::new().await;
    let bus = env.bus.connect().await;
    for ctx in ["intake", "dispatch"] {
        bus.ensure_stream(ctx).await?;
    }
    let mut total = 0u64;
    let t = Instant::now();
    for i in 0..a.tickets {
        let mut acks = Vec::new();
        for (ctx, name, body) in events(i) {
            let tenant = format!("3702{:02}", 1 + i % 8);
            let mut h = async_nats::HeaderMap::new();
            h.insert(H_MSG_ID, uuid::Uuid::now_v7().to_string().as_str());
            h.insert(H_TENANT, tenant.as_str());
            h.insert(H_EVENT, format!("{ctx}.{name}").as_str());
            acks.push(
                bus.js
                    .publish_with_headers(bus.subject(ctx, &tenant, name), h, body.into())
                    .await?,
            );
            total += 1;
        }
        for ack in acks {
            ack.await?;
        }
    }
    eprintln!(
        "  published {total} events in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Anchor: the same events pulled and acknowledged, no database.
    let t = Instant::now();
    let mut pulled = 0u64;
    for ctx in ["intake", "dispatch"] {
        let mut stream = bus.ensure_stream(ctx).await?;
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await?;
        let mut left = stream.info().await?.state.messages;
        while left > 0 {
            let mut batch = consumer.fetch().max_messages(500).messages().await?;
            use futures::StreamExt;
            while let Some(m) = batch.next().await {
                m.map_err(|e| e.to_string())?
                    .ack()
                    .await
                    .map_err(|e| e.to_string())?;
                pulled += 1;
                left -= 1;
            }
        }
    }
    let anchor = t.elapsed();

    let db = TestDb::new::<Migrations>("evaluation").await;
    let t = Instant::now();
    let target = env.spawn_on::<EvaluationTarget>(&db, |_| {}).await;
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let steps = db.count("SELECT count(*) FROM ticket_steps").await;
        if steps as u64 >= total {
            break;
        }
        assert!(Instant::now() < deadline, "ingest did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = t.elapsed();
    let facts_n = db
        .count("SELECT count(*) FROM ticket_facts WHERE status = 'closed'")
        .await;
    assert_eq!(
        facts_n as u64, a.tickets,
        "every ticket closed in its facts"
    );
    let received = db
        .count("SELECT COALESCE(sum(received), 0)::BIGINT FROM rollup_day WHERE dim = 'tenant'")
        .await;
    assert_eq!(
        received as u64, a.tickets,
        "every ticket in the rollups once"
    );
    drop(target);
    println!(
        "ingest: {total} events ({} tickets) into facts and rollups in {:.1} s = {:.0} events/s",
        a.tickets,
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    println!(
        "  anchor, the same {pulled} events pulled and acknowledged with no database: {:.1} s = {:.0} events/s",
        anchor.as_secs_f64(),
        pulled as f64 / anchor.as_secs_f64()
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Res<()> {
    let a = args()?;
    if a.tickets > 0 {
        ingest(&a).await?;
    }
    if a.facts > 0 {
        rankings(&a).await?;
    }
    Ok(())
}
