//! Intake accept latency through the gateway under a fixed request rate.
//!
//! ```text
//! cargo bench -p jiesu --bench intake_load -- [--rates 200,500] [--seconds 60]
//! ```
//!
//! Starts the platform as separate processes of the release `jiesu` binary
//! (gateway, intake, dispatch, notification; fresh databases on the local
//! PostgreSQL, a fresh NATS stream prefix), loads the demo tenant, then for
//! each rate sends `POST /api/v1/tickets` open-loop: request `i` is due at
//! `start + i / rate` whatever happened to the earlier ones, and its latency
//! counts from that due time (so a stalled server cannot hide its queue).
//! Every request is a different caller with its own Idempotency-Key, so no
//! duplicate check merges them. Prints the accepted rate, requests refused
//! at once as `overloaded` (intake's `max_concurrent_creates`), other
//! errors, and latency percentiles per rate; then waits until dispatch has
//! turned every accepted ticket into a work order and reports intake →
//! dispatched latency: from the moment intake accepted a ticket (its
//! `created_at`) to the moment dispatch created its work order (the work
//! order's `created_at`), both stamped on this machine's clock.

// The e2e suite's launcher: test code, which stops the run where the
// platform cannot start.
#[allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
#[path = "../../../tests/e2e/platform.rs"]
mod platform;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jiesu_auth::Role;
use jiesu_testkit::wait_until;
use platform::Platform;
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Mutex;

/// Every failure ends the run with its message (no panics).
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Categories of the demo tenant that have a responsible unit.
const CATEGORIES: [&str; 8] = [
    "CX0101", "CX0201", "CX0301", "CG0101", "CG0401", "SH0101", "SC0101", "CG0301",
];
const PROBLEMS: [&str; 8] = [
    "小区门口夜间施工噪音，影响休息",
    "路口井盖缺失，晚上很危险",
    "楼下烧烤店油烟很大",
    "小区垃圾清运不及时",
    "人行道砖块松动",
    "供暖温度不达标",
    "违章停车堵塞消防通道",
    "路灯不亮",
];

struct Args {
    rates: Vec<u32>,
    seconds: u64,
}

fn args() -> Res<Args> {
    let mut a = Args {
        rates: vec![200, 500],
        seconds: 60,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rates" => {
                a.rates = it
                    .next()
                    .ok_or("--rates takes a list such as 200,500")?
                    .split(',')
                    .map(|r| r.trim().parse())
                    .collect::<Result<_, _>>()?;
            }
            "--seconds" => {
                a.seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seconds takes a number")?;
            }
            _ => {}
        }
    }
    Ok(a)
}

fn body(run: u32, i: u64) -> serde_json::Value {
    let k = usize::try_from(i % 8).unwrap_or(0);
    let mut b = json!({
        "channel": "hotline",
        "nature": "complaint",
        "category": CATEGORIES[k],
        "content": format!("{}（第{run}轮第{i}件）", PROBLEMS[k]),
        "location": {"lat": 36.06 + (i % 500) as f64 * 1e-4, "lon": 120.38,
                     "address": format!("燕儿岛路{}号{}室", run, i)},
        "citizen": {"name": "测试市民", "phone": format!("139{run:02}{i:06}")},
    });
    if CATEGORIES[k].starts_with("SH01") {
        b["attributes"] = json!({"noise_period": "night", "source": ["renovation"]});
    }
    b
}

struct Outcome {
    latency: Duration,
    ok: bool,
    /// The accepted ticket's id.
    id: Option<uuid::Uuid>,
    /// 503 `overloaded`: refused at once by intake, to be retried.
    shed: bool,
}

/// For each ticket: its work order's creation minus its acceptance.
async fn dispatch_latency(p: &Platform, ids: &[uuid::Uuid]) -> Res<Vec<Duration>> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let stamps = |db: sea_orm::DatabaseConnection, sql: &'static str| {
        let ids = ids.to_vec();
        async move {
            let rows = db
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [ids.into()],
                ))
                .await?;
            let mut out = std::collections::HashMap::new();
            for r in rows {
                let id: uuid::Uuid = r.try_get("", "id")?;
                let at: chrono::DateTime<chrono::Utc> = r.try_get("", "at")?;
                out.insert(id, at);
            }
            Ok::<_, sea_orm::DbErr>(out)
        }
    };
    let accepted = stamps(
        p.db("intake").await,
        "SELECT id, created_at AS at FROM tickets WHERE id = ANY($1)",
    )
    .await?;
    let dispatched = stamps(
        p.db("dispatch").await,
        "SELECT ticket_id AS id, created_at AS at FROM work_orders WHERE ticket_id = ANY($1)",
    )
    .await?;
    Ok(accepted
        .iter()
        .filter_map(|(id, a)| {
            let d = dispatched.get(id)?;
            (*d - *a).to_std().ok().or(Some(Duration::ZERO))
        })
        .collect())
}

fn pct(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Res<()> {
    let a = args()?;
    // Info-level logs: the e2e suite's debug logs would measure the logger.
    let p = Platform::start_with(&[("JIESU__TELEMETRY__LOG_FILTER", "info")]).await;
    let token = p.token("370202", &[Role::Agent], "load-agent");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()?;
    println!(
        "platform up: {} (4 processes, release build); machine: {} cores",
        p.gateway,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Warm-up: connections, caches, the suggestion model.
    for i in 0..50 {
        let r = http
            .post(format!("{}/api/v1/tickets", p.gateway))
            .bearer_auth(&token)
            .json(&body(0, i))
            .send()
            .await?;
        if r.status() != StatusCode::CREATED {
            return Err(format!("warm-up create answered {}", r.status()).into());
        }
    }
    let mut total: i64 = 50;
    println!();
    println!(
        "| target rate | duration | sent | accepted | refused (503 overloaded) | other errors | accepted/s | p50 ms | p90 ms | p99 ms | max ms | refusal p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let (mut rows, mut dispatched) = (Vec::new(), Vec::new());
    for (run, rate) in a.rates.iter().enumerate() {
        let run = u32::try_from(run + 1)?;
        let n = u64::from(*rate) * a.seconds;
        let outcomes = Arc::new(Mutex::new(Vec::with_capacity(n as usize)));
        let start = Instant::now() + Duration::from_millis(100);
        let mut tasks = Vec::with_capacity(n as usize);
        for i in 0..n {
            let due = start + Duration::from_secs_f64(i as f64 / f64::from(*rate));
            tokio::time::sleep_until(due.into()).await;
            let http = http.clone();
            let url = format!("{}/api/v1/tickets", p.gateway);
            let token = token.clone();
            let outcomes = outcomes.clone();
            tasks.push(tokio::spawn(async move {
                let r = http
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", format!("load-{run}-{i}"))
                    .json(&body(run, i))
                    .send()
                    .await;
                let ok = matches!(&r, Ok(r) if r.status() == StatusCode::CREATED);
                let latency = due.elapsed();
                let (mut shed, mut id) = (false, None);
                if let Ok(r) = r {
                    let body = r.bytes().await.unwrap_or_default();
                    shed = String::from_utf8_lossy(&body).contains("\"overloaded\"");
                    id = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["id"].as_str().and_then(|s| s.parse().ok()));
                }
                outcomes.lock().await.push(Outcome {
                    latency,
                    ok,
                    id,
                    shed,
                });
            }));
        }
        for t in tasks {
            t.await?;
        }
        let wall = start.elapsed();
        let outcomes = outcomes.lock().await;
        let mut lat: Vec<Duration> = outcomes
            .iter()
            .filter(|o| o.ok)
            .map(|o| o.latency)
            .collect();
        lat.sort();
        let accepted = lat.len();
        let mut shed: Vec<Duration> = outcomes
            .iter()
            .filter(|o| o.shed)
            .map(|o| o.latency)
            .collect();
        shed.sort();
        total += i64::try_from(accepted)?;
        let ids: Vec<uuid::Uuid> = outcomes.iter().filter_map(|o| o.id).collect();
        rows.push(format!(
            "| {rate}/s | {}s | {n} | {accepted} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            a.seconds,
            shed.len(),
            outcomes.len() - accepted - shed.len(),
            accepted as f64 / wall.as_secs_f64(),
            pct(&lat, 0.5),
            pct(&lat, 0.9),
            pct(&lat, 0.99),
            pct(&lat, 1.0),
            pct(&shed, 0.99),
        ));
        // Let the pipeline drain before the next rate.
        let expected = total;
        wait_until(
            Duration::from_secs(600),
            "every ticket dispatched",
            || async {
                let n = p
                    .scalar("dispatch", "SELECT count(*) FROM work_orders")
                    .await;
                (n >= expected).then_some(())
            },
        )
        .await;
        let mut d = dispatch_latency(&p, &ids).await?;
        d.sort();
        dispatched.push(format!(
            "| {rate}/s | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            d.len(),
            pct(&d, 0.5),
            pct(&d, 0.9),
            pct(&d, 0.99),
            pct(&d, 1.0),
        ));
    }
    for r in rows {
        println!("{r}");
    }
    println!();
    println!("intake → dispatched (accepted ticket to work order):");
    println!();
    println!("| target rate | tickets | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for r in dispatched {
        println!("{r}");
    }
    println!();
    println!(
        "all {total} accepted tickets became work orders in dispatch; logs in {}",
        p.logs.display()
    );
    Ok(())
}
