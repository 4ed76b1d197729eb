//! One lookup by caller phone among 100,000 tickets, beside a read of one
//! ticket by id in the same run.
//!
//! ```text
//! cargo bench -p jiesu-intake --bench lookup -- [--tickets 100000] [--queries 1000]
//! ```
//!
//! Fills a fresh test database with intake's schema and generated tickets
//! (30,000 callers, phones sealed and blind-indexed with the bench's
//! keyring, spread over a year), starts intake on it as `jiesu serve` does,
//! then, one call at a time over gRPC: `ListTickets` by a caller's phone
//! (`GetTicket` by id as the anchor). Prints latency percentiles and the
//! plan PostgreSQL uses for the lookup.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use jiesu_auth::Role;
use jiesu_intake::Intake;
use jiesu_proto::intake::{
    GetTicketRequest, ListTicketsRequest, intake_service_client::IntakeServiceClient,
};
use jiesu_testkit::{TestDb, TestEnv};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tonic::Request;
use uuid::Uuid;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const TENANT: &str = "370202";
const CALLERS: usize = 30_000;
const CHUNK: usize = 5_000;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn phone(i: usize) -> String {
    format!("139{:08}", i * 7919 % 100_000_000)
}

fn authed<T>(token: &str, msg: T) -> Result<Request<T>, tonic::Status> {
    let mut r = Request::new(msg);
    jiesu_auth::bearer_metadata(&mut r, token)?;
    Ok(r)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Res<()> {
    let tickets = arg("--tickets", 100_000);
    let queries = arg("--queries", 1_000);
    let kit = TestEnv::new().await;
    let keyring = kit.keys.keyring();
    let db = TestDb::new::<jiesu_intake::Migrations>("intake").await;
    let conn = db.connect().await;

    let t = Instant::now();
    let now = Utc::now();
    let mut ids = Vec::with_capacity(tickets);
    for start in (0..tickets).step_by(CHUNK) {
        let n = CHUNK.min(tickets - start);
        let mut cols: [Vec<String>; 6] = Default::default();
        let mut created = Vec::with_capacity(n);
        for i in start..start + n {
            let id = Uuid::now_v7();
            let caller = phone(i % CALLERS);
            cols[0].push(id.to_string());
            cols[1].push(format!("{TENANT}-bench-{i:07}"));
            cols[2].push(keyring.encrypt(&caller, &format!("tickets.citizen_phone:{id}"))?);
            cols[3].push(keyring.blind_index("phone", &caller));
            cols[4].push(keyring.encrypt("噪声扰民", &format!("tickets.content:{id}"))?);
            cols[5].push(["SH0101", "CG0201", "WY0101"][i % 3].to_owned());
            // Spread over a year, older first.
            let at = now - TimeDelta::minutes(((tickets - i) * 5) as i64);
            created.push(at);
            ids.push(id);
        }
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO tickets (id, tenant, region_code, tracking_no, status, channel, nature, \
             category, urgency, content, content_enc, citizen_phone_enc, citizen_phone_bidx, \
             submitter_sub, submitter_role, created_at, updated_at) \
             SELECT id::uuid, $7, $7, no, 'dispatched', 'hotline', 'complaint', cat, 'normal', \
             '噪声扰民', content, phone, bidx, 'agent-bench', 'agent', at, at \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $8::timestamptz[]) \
             AS x(id, no, phone, bidx, content, cat, at)",
            [
                cols[0].clone().into(),
                cols[1].clone().into(),
                cols[2].clone().into(),
                cols[3].clone().into(),
                cols[4].clone().into(),
                cols[5].clone().into(),
                TENANT.into(),
                created.into(),
            ],
        ))
        .await?;
    }
    conn.execute_unprepared("ANALYZE tickets").await?;
    println!(
        "{tickets} tickets from {CALLERS} callers stored in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let intake = kit.spawn_on::<Intake>(&db, |_| {}).await;
    let mut client = IntakeServiceClient::connect(intake.url()).await?;
    let agent = kit.keys.token(TENANT, &[Role::Agent], "bench-agent");
    let call = |msg| authed(&agent, msg);
    let get = |msg| authed(&agent, msg);
    // Warm up both paths.
    for i in 0..50 {
        client
            .list_tickets(call(ListTicketsRequest {
                phone: phone(i),
                ..Default::default()
            })?)
            .await?;
    }
    let mut lookup = Vec::with_capacity(queries);
    let mut found = 0;
    for q in 0..queries {
        let msg = ListTicketsRequest {
            phone: phone(q * 13 % CALLERS),
            ..Default::default()
        };
        let t = Instant::now();
        let r = client.list_tickets(call(msg)?).await?.into_inner();
        lookup.push(t.elapsed());
        found += r.tickets.len();
    }
    let mut by_id = Vec::with_capacity(queries);
    for q in 0..queries {
        let msg = GetTicketRequest {
            id: ids[q * 97 % ids.len()].to_string(),
        };
        let t = Instant::now();
        client.get_ticket(get(msg)?).await?;
        by_id.push(t.elapsed());
    }
    lookup.sort();
    by_id.sort();
    println!("| call | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (name, d) in [
        ("ListTickets by phone", &lookup),
        ("GetTicket by id (anchor)", &by_id),
    ] {
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            percentile(d, 0.5),
            percentile(d, 0.9),
            percentile(d, 0.99),
            percentile(d, 1.0)
        );
    }
    println!(
        "{queries} lookups found {found} tickets ({:.1} a caller)",
        found as f64 / queries as f64
    );
    let plan = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) \
             SELECT * FROM tickets WHERE tenant = $1 AND region_code LIKE '370202%' \
             AND citizen_phone_bidx = $2 ORDER BY created_at DESC, id DESC LIMIT 21",
            [
                TENANT.into(),
                keyring.blind_index("phone", &phone(7)).into(),
            ],
        ))
        .await?;
    println!("plan:");
    for row in plan {
        let line: String = row.try_get_by_index(0)?;
        println!("    {line}");
    }
    // The plan a prepared statement settles on after five executions (the
    // pool prepares every query): the LIKE pattern and the phone are
    // parameters.
    let one = sea_orm::TransactionTrait::begin(&conn).await?;
    one.execute_unprepared(
        "SET LOCAL plan_cache_mode = force_generic_plan; \
         PREPARE lookup(text, text, text) AS SELECT * FROM tickets WHERE tenant = $1 \
         AND region_code LIKE $2 AND citizen_phone_bidx = $3 ORDER BY created_at DESC, id DESC LIMIT 21",
    )
    .await?;
    let generic = one
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE lookup('{TENANT}', '{TENANT}%', '{}')",
                keyring.blind_index("phone", &phone(7))
            ),
        ))
        .await?;
    println!("generic plan:");
    for row in generic {
        let line: String = row.try_get_by_index(0)?;
        println!("    {line}");
    }
    drop(intake);
    Ok(())
}
