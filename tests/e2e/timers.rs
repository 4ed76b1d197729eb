//! Durable timers with several dispatch processes on one database: every
//! due timer fires exactly once, and when the process holding leases is
//! killed with `kill -9`, its timers still fire, once, no later than the
//! lease plus a poll after their lease was taken.

use std::{collections::HashMap, time::Duration};

use async_nats::HeaderMap;
use jiesu_bus::{Bus, H_MSG_ID, H_TENANT};
use jiesu_proto::{Event, intake::TicketReceived};
use jiesu_testkit::{TargetProcess, TestBus, TestDb, TestKeys, wait_until};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::platform::{Platform, bin, out_dir};

const ORDERS: usize = 400;
const LEASE_SECS: u64 = 3;
const POLL_MS: u64 = 200;

/// A dispatch process of its own, sharing the database with the others.
fn replica(
    name: &str,
    base: &[(String, String)],
    db_url: &str,
    logs: &std::path::Path,
) -> TargetProcess {
    let mut env = base.to_vec();
    env.extend([
        ("JIESU__DISPATCH__DATABASE_URL".into(), db_url.to_owned()),
        ("JIESU__DISPATCH__REPLICA".into(), name.to_owned()),
        ("JIESU__DISPATCH__TIMER_POLL".into(), format!("{POLL_MS}ms")),
        (
            "JIESU__DISPATCH__TIMER_LEASE".into(),
            format!("{LEASE_SECS}s"),
        ),
        ("JIESU__DISPATCH__TIMER_BATCH".into(), "50".into()),
        ("JIESU__TELEMETRY__LOG_FILTER".into(), "info".into()),
    ]);
    TargetProcess::start(
        &bin(),
        "dispatch",
        name,
        env,
        logs.join(format!("{name}.log")),
    )
}

async fn publish(bus: &Bus, n: usize) {
    bus.ensure_stream("intake").await.unwrap();
    for i in 0..n {
        let ev = TicketReceived {
            ticket_id: Uuid::now_v7().to_string(),
            tenant: "370202".into(),
            region_code: "370202".into(),
            tracking_no: format!("370202-20261122-{i:05}"),
            channel: "hotline".into(),
            nature: "complaint".into(),
            category: "SH01".into(),
            category_name: "噪声扰民".into(),
            urgency: "normal".into(),
            submitter_sub: "agent-1".into(),
            ..Default::default()
        };
        let mut h = HeaderMap::new();
        h.insert(H_MSG_ID, Uuid::now_v7().to_string().as_str());
        h.insert(H_TENANT, "370202");
        bus.js
            .publish_with_headers(
                bus.subject("intake", "370202", TicketReceived::NAME),
                h,
                prost::Message::encode_to_vec(&ev).into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

async fn exec(db: &DatabaseConnection, sql: &str) -> u64 {
    db.execute_unprepared(sql).await.unwrap().rows_affected()
}

#[tokio::test]
async fn several_replicas_fire_each_timer_once_even_when_one_is_killed() {
    let tdb = TestDb::new::<jiesu_dispatch::Migrations>("dispatch").await;
    let db = tdb.connect().await;
    jiesu_dispatch::seed::upsert_units(
        &db,
        "370202",
        &[jiesu_dispatch::seed::UnitSeed {
            id: "sn-gafj".into(),
            name: "青岛市公安局市南分局".into(),
            kind: "department".into(),
            region_code: "370202".into(),
            parent: String::new(),
        }],
    )
    .await
    .unwrap();
    jiesu_dispatch::seed::upsert_routes(
        &db,
        "370202",
        &[jiesu_dispatch::seed::RouteSeed {
            category: "SH01".into(),
            unit: "sn-gafj".into(),
        }],
    )
    .await
    .unwrap();
    let keys = TestKeys::new();
    let tb = TestBus::new();
    let bus = tb.connect().await;
    let logs = out_dir().join(format!("timers-{}", jiesu_testkit::unique_tag()));
    std::fs::create_dir_all(&logs).unwrap();
    let base = Platform::base_env(&keys, &tb, "jt_unused_");
    let mut replicas: HashMap<&str, TargetProcess> = ["r1", "r2", "r3"]
        .into_iter()
        .map(|n| (n, replica(n, &base, &tdb.url, &logs)))
        .collect();
    for r in replicas.values() {
        r.wait_ready().await;
    }

    publish(&bus, ORDERS).await;
    wait_until(Duration::from_secs(120), "work orders", || async {
        (count(&db, "SELECT count(*) FROM work_orders").await == ORDERS as i64).then_some(())
    })
    .await;
    let per_order = count(&db, "SELECT count(*) FROM timers").await;
    assert_eq!(
        per_order,
        9 * ORDERS as i64,
        "3 notices × 3 deadlines per order"
    );

    // Phase 1: every reminder falls due at once; three replicas share them.
    let due = exec(
        &db,
        "UPDATE timers SET due_at = now() WHERE notice = 'reminder'",
    )
    .await;
    assert_eq!(due, 3 * ORDERS as u64);
    wait_until(Duration::from_secs(180), "reminders fired", || async {
        (count(
            &db,
            "SELECT count(*) FROM timers WHERE notice = 'reminder' AND fired_at IS NULL",
        )
        .await
            == 0)
            .then_some(())
    })
    .await;
    let timeline = count(
        &db,
        "SELECT count(*) FROM work_order_events WHERE event = 'reminder'",
    )
    .await;
    assert_eq!(timeline, due as i64, "one timeline entry per reminder");
    let firers = count(
        &db,
        "SELECT count(DISTINCT fired_by) FROM timers WHERE fired_at IS NOT NULL",
    )
    .await;
    assert!(firers >= 2, "the replicas shared the work ({firers} fired)");

    // Phase 2: urge and supervise fall due; kill -9 a replica while it
    // holds leases on timers it has not fired.
    let due2 = exec(
        &db,
        "UPDATE timers SET due_at = now() WHERE notice IN ('urge', 'supervise')",
    )
    .await;
    let holder = wait_until(
        Duration::from_secs(60),
        "a replica holding leases",
        || async {
            for name in ["r1", "r2", "r3"] {
                let held = count(
                    &db,
                    &format!(
                        "SELECT count(*) FROM timers WHERE lease_owner = '{name}' \
                     AND fired_at IS NULL AND lease_until > now()"
                    ),
                )
                .await;
                if held > 0 {
                    return Some(name);
                }
            }
            None
        },
    )
    .await;
    replicas.get_mut(holder).unwrap().process.kill9();
    let orphaned: Vec<(i64, chrono::DateTime<chrono::Utc>)> = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT id, lease_until FROM timers WHERE lease_owner = '{holder}' \
                 AND fired_at IS NULL AND cancelled_at IS NULL"
            ),
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get("", "id").unwrap(),
                r.try_get("", "lease_until").unwrap(),
            )
        })
        .collect();
    assert!(!orphaned.is_empty(), "{holder} died holding leases");
    wait_until(
        Duration::from_secs(180),
        "urge and supervise fired",
        || async {
            (count(
                &db,
                "SELECT count(*) FROM timers WHERE notice IN ('urge', 'supervise') \
             AND fired_at IS NULL AND cancelled_at IS NULL",
            )
            .await
                == 0)
                .then_some(())
        },
    )
    .await;
    let ids: Vec<String> = orphaned.iter().map(|(id, _)| id.to_string()).collect();
    let late_ms = count(
        &db,
        &format!(
            "SELECT coalesce(max(extract(epoch FROM t.fired_at - o.lease_until) * 1000), 0)::bigint \
             FROM timers t JOIN (VALUES {}) o(id, lease_until) ON t.id = o.id",
            orphaned
                .iter()
                .map(|(id, l)| format!("({id}, '{}'::timestamptz)", l.to_rfc3339()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .await;
    let by_dead = count(
        &db,
        &format!(
            "SELECT count(*) FROM timers WHERE id IN ({}) AND fired_by = '{holder}'",
            ids.join(", ")
        ),
    )
    .await;
    assert_eq!(by_dead, 0, "the killed replica fired none of them");
    // Another replica claims an orphan within one poll of its lease
    // running out; firing its batch takes a moment more.
    assert!(
        late_ms <= i64::try_from(POLL_MS).unwrap() + 1500,
        "{} orphaned timers fired up to {late_ms} ms after their lease ran out",
        orphaned.len()
    );
    let fired = count(
        &db,
        "SELECT count(*) FROM timers WHERE fired_at IS NOT NULL",
    )
    .await;
    assert_eq!(fired, (due + due2) as i64);
    let notices = count(
        &db,
        "SELECT count(*) FROM work_order_events WHERE event IN ('reminder', 'urge', 'supervise')",
    )
    .await;
    assert_eq!(notices, fired, "exactly one notice per timer");
    let doubled = count(
        &db,
        "SELECT count(*) FROM (SELECT work_order_id, event, note FROM work_order_events \
         WHERE event IN ('reminder', 'urge', 'supervise') GROUP BY 1, 2, 3 HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(doubled, 0);
    let outbox = count(
        &db,
        "SELECT count(*) FROM bus_outbox WHERE event = 'dispatch.work_order.notice_issued'",
    )
    .await;
    assert_eq!(outbox, fired, "one notice event per timer");
    eprintln!(
        "timers: {fired} fired by 3 replicas; {} orphaned by kill -9 of {holder}, fired at most {late_ms} ms after their lease ended",
        orphaned.len()
    );
}
