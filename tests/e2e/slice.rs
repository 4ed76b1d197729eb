//! 300 tickets through five processes, five times: undisturbed, with the
//! dispatch process killed mid-run, with the intake process killed mid-run,
//! with the evaluation process killed mid-run, and with the notification
//! process killed mid-run (while it is handing messages to an HTTP SMS
//! gateway and an SMTP server). Every ticket must end dispatched with
//! exactly one work order and exactly one notification, received exactly
//! once at the SMS gateway or the mail server, evaluation must count each
//! exactly once (its figures equal what intake and dispatch hold, as an
//! undisturbed run's would), and no phone number may appear unmasked in an
//! answer, on the bus or in a log.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use jiesu_auth::Role;
use jiesu_testkit::wait_until;
use reqwest::{Client, StatusCode};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use crate::{
    outlets::Outlets,
    platform::{Platform, out_dir},
};

pub const PER_PHASE: usize = 300;
const CONCURRENCY: usize = 16;
/// Categories of the demo tenant that have a responsible unit.
const CATEGORIES: [&str; 8] = [
    "CX0101", "CX0201", "CX0301", "CG0101", "CG0401", "SH0101", "SC0101", "CG0301",
];

pub struct Submitted {
    pub id: String,
    phone: String,
    address: String,
    /// Latency of the attempt that was accepted.
    accept: Duration,
    /// Attempts needed (retries while a process was down).
    pub attempts: u32,
}

fn phone_for(phase: usize, i: usize) -> String {
    format!("139{:02}{:06}", 10 + phase, i)
}

fn body(phase: usize, i: usize, phone: &str, address: &str) -> Value {
    let category = CATEGORIES[i % CATEGORIES.len()];
    let mut body = json!({
        "channel": "hotline",
        "nature": "complaint",
        "category": category,
        "content": format!("第{phase}轮第{i}件：小区门口夜间施工噪音，影响休息"),
        "location": {"lat": 36.06 + (i as f64) * 1e-4, "lon": 120.38, "address": address},
        "citizen": {"name": "测试市民", "phone": phone},
    });
    // The demo's 噪声扰民 asks when the noise happens (a required attribute).
    if category.starts_with("SH01") {
        body["attributes"] = json!({"noise_period": "night", "source": ["renovation"]});
    }
    body
}

/// Submits one ticket, retrying with the same Idempotency-Key while the
/// platform answers 503 or cannot be reached (a process is restarting).
pub async fn submit(http: &Client, base: &str, token: &str, phase: usize, i: usize) -> Submitted {
    let phone = phone_for(phase, i);
    let address = format!("燕儿岛路{}号{}室", 100 + phase, 1000 + i);
    let key = format!("e2e-{phase}-{i}");
    let payload = body(phase, i, &phone, &address);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let started = Instant::now();
        let resp = http
            .post(format!("{base}/api/v1/tickets"))
            .bearer_auth(token)
            .header("Idempotency-Key", &key)
            .json(&payload)
            .send()
            .await;
        match resp {
            Ok(r) if r.status() == StatusCode::CREATED => {
                let accept = started.elapsed();
                let v: Value = r.json().await.expect("json");
                // A retry answers with the ticket as it is now: perhaps
                // dispatched already.
                assert!(
                    v["status"] == "received" || v["status"] == "dispatched",
                    "{v}"
                );
                return Submitted {
                    id: v["id"].as_str().expect("id").to_owned(),
                    phone,
                    address,
                    accept,
                    attempts,
                };
            }
            Ok(r)
                if r.status() == StatusCode::SERVICE_UNAVAILABLE
                    || r.status() == StatusCode::GATEWAY_TIMEOUT => {}
            Ok(r) => {
                let status = r.status();
                panic!(
                    "ticket {phase}/{i}: unexpected {status}: {}",
                    r.text().await.unwrap_or_default()
                );
            }
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "ticket {phase}/{i} never accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub enum Disturbance<'a> {
    None,
    Kill(&'static str),
    /// A fault of a server the platform depends on: the future runs once a
    /// third of the tickets were accepted and returns when the server is back.
    Fault(futures::future::BoxFuture<'a, ()>),
}

pub struct PhaseResult {
    pub name: &'static str,
    pub tickets: Vec<Submitted>,
    /// Until the last ticket was accepted.
    pub wall: Duration,
    pub until_notified: Duration,
    /// For a fault: from the server's return until every ticket accepted by
    /// then was notified.
    pub recovered: Option<Duration>,
}

const SENT: &str = "SELECT count(*) FROM notifications WHERE status = 'sent'";

pub async fn run_phase(
    p: &mut Platform,
    phase: usize,
    name: &'static str,
    disturb: Disturbance<'_>,
) -> PhaseResult {
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let token = p.token("370202", &[Role::Agent], "e2e-agent");
    let accepted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let base = p.gateway.clone();
    let counter = accepted.clone();
    let submitting = tokio::spawn(async move {
        let tickets = futures::stream::iter(0..PER_PHASE)
            .map(|i| {
                let (http, base, token, counter) =
                    (http.clone(), base.clone(), token.clone(), counter.clone());
                async move {
                    let s = submit(&http, &base, &token, phase, i).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    s
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        (tickets, started.elapsed())
    });
    let before = ((phase - 1) * PER_PHASE) as i64;
    let mut recovered = None;
    if !matches!(disturb, Disturbance::None) {
        let at = PER_PHASE / 3;
        wait_until(
            Duration::from_secs(120),
            "a third of the tickets accepted",
            || async { (accepted.load(Ordering::SeqCst) >= at).then_some(()) },
        )
        .await;
        eprintln!(
            "e2e {name}: disturbed after {} accepted",
            accepted.load(Ordering::SeqCst)
        );
        match disturb {
            Disturbance::Kill(target) => {
                p.kill9(target);
                p.restart(target);
                p.wait_ready(target).await;
            }
            Disturbance::Fault(fault) => {
                fault.await;
                let back = Instant::now();
                let owed = before + accepted.load(Ordering::SeqCst) as i64;
                wait_until(
                    Duration::from_secs(180),
                    &format!("{name}: {owed} notifications sent after the fault"),
                    || async { (p.scalar("notification", SENT).await >= owed).then_some(()) },
                )
                .await;
                recovered = Some(back.elapsed());
            }
            Disturbance::None => {}
        }
    }
    let (tickets, wall) = submitting.await.expect("submitting");
    let expected = before + PER_PHASE as i64;
    wait_until(
        Duration::from_secs(180),
        &format!("{name}: {expected} notifications sent"),
        || async { (p.scalar("notification", SENT).await >= expected).then_some(()) },
    )
    .await;
    let until_notified = started.elapsed();
    PhaseResult {
        name,
        tickets,
        wall,
        until_notified,
        recovered,
    }
}

/// The W3C trace id in a header dump (`traceparent: "00-<trace>-<span>-01"`).
fn trace_id(headers: &str) -> Option<String> {
    let line = headers.lines().find(|l| l.starts_with("traceparent"))?;
    let value = line.split('"').nth(1)?;
    Some(value.split('-').nth(1)?.to_owned())
}

/// One request is one trace: the event intake published and the one
/// dispatch published in turn carry the trace the gateway started.
fn assert_one_trace_per_request(sniffed: &[(String, String, Vec<u8>)], all: &[&Submitted]) {
    use jiesu_proto::{dispatch::TicketDispatched, intake::TicketReceived};
    let mut received: HashMap<String, String> = HashMap::new();
    let mut dispatched: HashMap<String, String> = HashMap::new();
    for (subject, headers, payload) in sniffed {
        let Some(trace) = trace_id(headers) else {
            continue;
        };
        if subject.ends_with(".ticket.received") {
            let ev: TicketReceived = prost::Message::decode(payload.as_slice()).expect("received");
            received.insert(ev.ticket_id, trace);
        } else if subject.ends_with(".ticket.dispatched") {
            let ev: TicketDispatched =
                prost::Message::decode(payload.as_slice()).expect("dispatched");
            dispatched.insert(ev.ticket_id, trace);
        }
    }
    for s in all {
        let r = received
            .get(&s.id)
            .unwrap_or_else(|| panic!("{}: no traced ticket.received", s.id));
        let d = dispatched
            .get(&s.id)
            .unwrap_or_else(|| panic!("{}: no traced ticket.dispatched", s.id));
        assert_ne!(r, &"0".repeat(32));
        assert_eq!(r, d, "{}: dispatch continued another trace", s.id);
    }
    let distinct: HashSet<&String> = received.values().collect();
    assert_eq!(distinct.len(), all.len(), "requests shared a trace");
}

fn pct(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Per-ticket latency from acceptance to work order and to notification,
/// from the services' own timestamps.
async fn pipeline_latencies(p: &Platform, ids: &[String]) -> (Vec<Duration>, Vec<Duration>) {
    let list = ids
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let times = |service: &'static str, sql: String| async move {
        let conn = p.db(service).await;
        let rows = conn
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .expect("query");
        let map: HashMap<String, f64> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get::<String>("", "id").expect("id"),
                    r.try_get::<f64>("", "t").expect("t"),
                )
            })
            .collect();
        let _ = conn.close().await;
        map
    };
    let received = times("intake", format!("SELECT id::text AS id, extract(epoch FROM created_at)::float8 AS t FROM tickets WHERE id IN ({list})")).await;
    let dispatched = times("dispatch", format!("SELECT ticket_id::text AS id, extract(epoch FROM created_at)::float8 AS t FROM work_orders WHERE ticket_id IN ({list})")).await;
    let notified = times("notification", format!("SELECT ticket_id::text AS id, extract(epoch FROM sent_at)::float8 AS t FROM notifications WHERE ticket_id IN ({list})")).await;
    let delta = |to: &HashMap<String, f64>| {
        let mut v: Vec<Duration> = ids
            .iter()
            .filter_map(|id| {
                Some(Duration::from_secs_f64(
                    (to.get(id)? - received.get(id)?).max(0.0),
                ))
            })
            .collect();
        v.sort();
        v
    };
    (delta(&dispatched), delta(&notified))
}

/// Evaluation, killed mid-run, counts every ticket once: its figures by
/// category and by unit (read through the API, as a supervisor would)
/// equal what intake and dispatch hold, which is what an undisturbed run
/// gives; its rollups equal a count over its own facts; each event left
/// one step.
async fn evaluation_counted_each_once(p: &Platform, total: i64) {
    let http = Client::new();
    let supervisor = p.token("370202", &[Role::Supervisor], "e2e-supervisor");
    let today = (chrono::Utc::now() + chrono::TimeDelta::hours(8)).date_naive();
    let range = format!(
        "from={}&to={}",
        today - chrono::TimeDelta::days(1),
        today + chrono::TimeDelta::days(1)
    );
    let rates = |dimension: &'static str| {
        let (http, token) = (http.clone(), supervisor.clone());
        let url = format!(
            "{}/api/v1/evaluation/rates?dimension={dimension}&{range}",
            p.gateway
        );
        async move {
            let v: Value = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("rates")
                .json()
                .await
                .expect("json");
            v
        }
    };
    wait_until(
        Duration::from_secs(120),
        "evaluation to count every ticket dispatched",
        || async {
            let v = rates("tenant").await;
            (v["total"]["counts"]["received"] == total
                && v["total"]["counts"]["dispatched"] == total)
                .then_some(())
        },
    )
    .await;
    let by = |service: &'static str, sql: &'static str| async move {
        let conn = p.db(service).await;
        let rows = conn
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .expect("query");
        let map: HashMap<String, i64> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("", "k").expect("k"),
                    r.try_get("", "n").expect("n"),
                )
            })
            .collect();
        let _ = conn.close().await;
        map
    };
    let counted = |v: &Value, field: &str| -> HashMap<String, i64> {
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["key"].as_str().expect("key").to_owned(),
                    r["counts"][field].as_i64().expect("count"),
                )
            })
            .collect()
    };
    let per_category = by(
        "intake",
        "SELECT category AS k, count(*) AS n FROM tickets GROUP BY category",
    )
    .await;
    assert_eq!(counted(&rates("category").await, "received"), per_category);
    let per_unit = by(
        "dispatch",
        "SELECT unit_id AS k, count(*) AS n FROM work_orders WHERE unit_id IS NOT NULL GROUP BY unit_id",
    )
    .await;
    assert_eq!(counted(&rates("unit").await, "dispatched"), per_unit);
    assert_eq!(
        p.scalar(
            "evaluation",
            "SELECT COALESCE(sum(received), 0)::BIGINT FROM rollup_day WHERE dim = 'tenant'"
        )
        .await,
        p.scalar(
            "evaluation",
            "SELECT count(*) FROM ticket_facts WHERE received_at IS NOT NULL"
        )
        .await
    );
    assert_eq!(
        p.scalar(
            "evaluation",
            "SELECT count(*) FROM ticket_steps WHERE step = 'received'"
        )
        .await,
        total,
        "a ticket.received applied twice, or lost"
    );
}

#[tokio::test]
async fn three_hundred_tickets_survive_crashes_exactly_once() {
    let outlets = Outlets::start().await;
    let (key, value) = outlets.env();
    let mut p = Platform::start_with(&[(key, value.as_str())]).await;
    assert!(
        outlets.register_units(&p).await >= 2,
        "the demo tenant's units"
    );
    let phases = [
        (1, "undisturbed", Disturbance::None),
        (2, "dispatch killed", Disturbance::Kill("dispatch")),
        (3, "intake killed", Disturbance::Kill("intake")),
        (4, "evaluation killed", Disturbance::Kill("evaluation")),
        (5, "notification killed", Disturbance::Kill("notification")),
    ];
    let mut results = Vec::new();
    for (phase, name, disturb) in phases {
        results.push(run_phase(&mut p, phase, name, disturb).await);
    }
    let all: Vec<&Submitted> = results.iter().flat_map(|r| r.tickets.iter()).collect();
    let total = all.len() as i64;
    assert_eq!(total, 1500);

    // Exactly once, in every service's own records.
    let distinct: HashSet<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        distinct.len(),
        1500,
        "a retried submission created a second ticket"
    );
    assert_eq!(
        p.scalar("intake", "SELECT count(*) FROM tickets").await,
        total
    );
    assert_eq!(
        p.scalar("dispatch", "SELECT count(*) FROM work_orders")
            .await,
        total
    );
    assert_eq!(
        p.scalar(
            "dispatch",
            "SELECT count(DISTINCT ticket_id) FROM work_orders WHERE status = 'dispatched'"
        )
        .await,
        total
    );
    assert_eq!(
        p.scalar("notification", "SELECT count(*) FROM notifications")
            .await,
        total
    );
    assert_eq!(
        p.scalar(
            "notification",
            "SELECT count(DISTINCT ticket_id) FROM notifications WHERE status = 'sent'"
        )
        .await,
        total
    );
    assert_eq!(
        p.scalar(
            "intake",
            "SELECT count(*) FROM bus_outbox WHERE published_at IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        p.scalar(
            "dispatch",
            "SELECT count(*) FROM bus_outbox WHERE published_at IS NULL"
        )
        .await,
        0
    );

    evaluation_counted_each_once(&p, total).await;

    // Where a person would count. The SMS gateway honours the message id
    // (the idempotency key notification gives every provider that takes
    // one), so each notice reaches its phone once, whatever was resent
    // after the crash. SMTP has no such key: a message the server took in
    // the instant before the killed process recorded it goes out again,
    // so email may see a few twice, never more than were in flight.
    let ((sms, sms_distinct), (mails, mails_distinct)) = outlets.counts();
    assert_eq!(
        sms_distinct + mails_distinct,
        total as usize,
        "every notice received"
    );
    // Resent at most what was in flight when the process died (64 at once).
    assert!(
        (sms - sms_distinct) + (mails - mails_distinct) <= 64,
        "{} SMS requests and {} emails repeated: more than were in flight",
        sms - sms_distinct,
        mails - mails_distinct
    );
    eprintln!(
        "outlets: SMS gateway took {sms} requests for {sms_distinct} messages; the mail server {mails} emails for {mails_distinct}"
    );
    assert!(sms_distinct > 0 && mails_distinct > 0, "both outlets used");

    // And as a user sees it: each ticket dispatched to a unit, phone masked;
    // each ticket exactly one notification in the dispatcher's list.
    let http = Client::new();
    let agent = p.token("370202", &[Role::Agent], "e2e-agent");
    let views = futures::stream::iter(all.iter())
        .map(|s| {
            let (http, agent, url) = (
                http.clone(),
                agent.clone(),
                format!("{}/api/v1/tickets/{}", p.gateway, s.id),
            );
            async move {
                let r = http.get(url).bearer_auth(agent).send().await.expect("get");
                assert_eq!(r.status(), StatusCode::OK);
                (s, r.text().await.expect("body"))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for (s, text) in &views {
        let v: Value = serde_json::from_str(text).expect("json");
        assert_eq!(v["status"], "dispatched", "{}", s.id);
        assert!(v["unit"]["id"].is_string(), "{}", s.id);
        assert_eq!(v["citizen"]["phone"], jiesu_pii::mask_phone(&s.phone));
        assert!(!text.contains(&s.phone), "phone unmasked in the answer");
        assert!(!text.contains(&s.address), "address unmasked in the answer");
    }
    let dispatcher = p.token("370202", &[Role::Dispatcher], "e2e-dispatcher");
    let mut per_ticket: HashMap<String, usize> = HashMap::new();
    let mut page_token = String::new();
    loop {
        let v: Value = http
            .get(format!(
                "{}/api/v1/notifications?page_size=500&page_token={page_token}",
                p.gateway
            ))
            .bearer_auth(&dispatcher)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        for n in v["notifications"].as_array().expect("array") {
            *per_ticket
                .entry(n["ticket_id"].as_str().expect("id").to_owned())
                .or_default() += 1;
        }
        page_token = v["next_page_token"].as_str().unwrap_or_default().to_owned();
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(per_ticket.len(), 1500);
    assert!(
        per_ticket.values().all(|n| *n == 1),
        "a ticket was notified twice"
    );
    for s in &all {
        assert_eq!(per_ticket.get(&s.id), Some(&1), "{} not notified", s.id);
    }

    // Tenant isolation and ownership across processes.
    let neighbour = p.token("370203", &[Role::Agent], "agent-370203");
    let r = http
        .get(format!("{}/api/v1/tickets/{}", p.gateway, all[0].id))
        .bearer_auth(&neighbour)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let citizen = p.token("370202", &[Role::Citizen], "wx-e2e");
    let r = http
        .get(format!("{}/api/v1/tickets/{}", p.gateway, all[0].id))
        .bearer_auth(&citizen)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // No phone and no address in clear on the bus or in any log line.
    let sniffed = p.sniffed.lock().map(|v| v.clone()).unwrap_or_default();
    assert!(
        sniffed.len() >= 1800,
        "only {} messages seen on the bus",
        sniffed.len()
    );
    let logs = p.all_logs();
    assert!(logs.contains("ticket received") && logs.contains("notification delivered"));
    for s in &all {
        for (subject, headers, payload) in &sniffed {
            let payload = String::from_utf8_lossy(payload);
            assert!(
                !payload.contains(&s.phone)
                    && !headers.contains(&s.phone)
                    && !payload.contains(&s.address),
                "personal data on the bus in {subject}"
            );
        }
        assert!(
            !logs.contains(&s.phone),
            "phone {} written to a log",
            jiesu_pii::mask_phone(&s.phone)
        );
        assert!(!logs.contains(&s.address), "address written to a log");
    }
    assert!(
        sniffed.iter().all(|(_, h, _)| h.contains("traceparent")),
        "an event without trace context"
    );
    assert_one_trace_per_request(&sniffed, &all);

    // Figures (measured, not asserted): written for docs/benchmarks.md.
    let mut report = format!(
        "# End-to-end run {}\n\n5 processes (gateway, intake, dispatch, notification, evaluation), {PER_PHASE} tickets per phase, {CONCURRENCY} concurrent clients.\n\n| phase | accepted/s | accept p50 | accept p99 | received→dispatched p50 | p99 | received→notified p50 | p99 | all notified after | max attempts |\n|---|---|---|---|---|---|---|---|---|---|\n",
        p.tag
    );
    for r in &results {
        let mut accept: Vec<Duration> = r.tickets.iter().map(|s| s.accept).collect();
        accept.sort();
        let ids: Vec<String> = r.tickets.iter().map(|s| s.id.clone()).collect();
        let (to_dispatch, to_notify) = pipeline_latencies(&p, &ids).await;
        let max_attempts = r.tickets.iter().map(|s| s.attempts).max().unwrap_or(0);
        report.push_str(&format!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {:.2} s | {} |\n",
            r.name,
            PER_PHASE as f64 / r.wall.as_secs_f64(),
            ms(pct(&accept, 0.5)),
            ms(pct(&accept, 0.99)),
            ms(pct(&to_dispatch, 0.5)),
            ms(pct(&to_dispatch, 0.99)),
            ms(pct(&to_notify, 0.5)),
            ms(pct(&to_notify, 0.99)),
            r.until_notified.as_secs_f64(),
            max_attempts,
        ));
    }
    report.push_str(&format!(
        "\nOutlets: the SMS gateway took {sms} requests for {sms_distinct} messages (it honours the message id); the mail server {mails} emails for {mails_distinct} messages.\n"
    ));
    let path = out_dir().join("report.md");
    let _ = std::fs::write(&path, &report);
    eprintln!("{report}\n(report written to {})", path.display());
}
