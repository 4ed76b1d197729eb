//! Time to fire a backlog of due timers.
//!
//! ```text
//! cargo bench -p jiesu-dispatch --bench timers -- [--timers 100000] [--replicas 1,3] [--batch 200]
//! ```
//!
//! For each replica count: a fresh dispatch database on the local
//! PostgreSQL holding `--timers` timers, all due now, on work orders whose
//! deadlines they watch (nine per order: reminder, urge and supervise of
//! sign-for, first response and resolve). Then that many in-process
//! replicas, each with its own connection pool and owner name, run the
//! production claim-and-fire rounds (`timers::run_once`) until none is due.
//! Prints the wall time, timers per second, and checks that every timer
//! fired exactly once with one timeline entry and one notice event.

use std::time::{Duration, Instant};

use jiesu_bus::Outbox;
use jiesu_dispatch::{
    Migrations,
    engine::Engine,
    store::settings::SettingsCache,
    timers::{TimerConfig, run_once},
};
use jiesu_testkit::{TestBus, TestDb};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    timers: u64,
    replicas: Vec<u32>,
    batch: u32,
}

fn args() -> Res<Args> {
    let mut a = Args {
        timers: 100_000,
        replicas: vec![1, 3],
        batch: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--timers" => a.timers = val()?.parse()?,
            "--batch" => a.batch = val()?.parse()?,
            "--replicas" => {
                a.replicas = val()?
                    .split(',')
                    .map(|r| r.trim().parse())
                    .collect::<Result<_, _>>()?;
            }
            _ => {}
        }
    }
    Ok(a)
}

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> Res<i64> {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await?
        .ok_or("no row")?;
    Ok(row.try_get_by_index(0)?)
}

async fn setup(db: &sea_orm::DatabaseConnection, timers: u64) -> Res<()> {
    let orders = timers.div_ceil(9);
    db.execute_unprepared(&format!(
        "INSERT INTO work_orders (id, ticket_id, tenant, region_code, tracking_no, category, \
           category_name, status, unit_id, unit_name, submitter_sub, urgency, clock_started_at, \
           sign_due, respond_due, resolve_due) \
         SELECT gen_random_uuid(), gen_random_uuid(), '370202', '370202', 'B-' || g, 'SH01', \
           '噪声扰民', 'dispatched', 'sn-gafj', '青岛市公安局市南分局', 'bench', 'normal', now(), \
           now() + interval '2 hours', now() + interval '1 day', now() + interval '15 days' \
         FROM generate_series(1, {orders}) g"
    ))
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO timers (tenant, work_order_id, notice, deadline, deadline_at, due_at, version) \
         SELECT '370202', w.id, n.notice, d.deadline, \
           CASE d.deadline WHEN 'sign' THEN w.sign_due WHEN 'respond' THEN w.respond_due \
             ELSE w.resolve_due END, now() - interval '1 second', 0 \
         FROM work_orders w \
         CROSS JOIN (VALUES ('reminder'), ('urge'), ('supervise')) n(notice) \
         CROSS JOIN (VALUES ('sign'), ('respond'), ('resolve')) d(deadline) \
         LIMIT {timers}"
    ))
    .await?;
    db.execute_unprepared("ANALYZE").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let a = args()?;
    let tb = TestBus::new();
    let bus = tb.connect().await;
    println!(
        "machine: {} cores; {} timers due at once; batch {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        a.timers,
        a.batch
    );
    println!();
    println!(
        "| replicas | timers | wall s | timers/s | fired once | timeline entries | notice events |"
    );
    println!("|---|---|---|---|---|---|---|");
    for replicas in &a.replicas {
        let tdb = TestDb::new::<Migrations>("dispatch").await;
        let db = tdb.connect().await;
        setup(&db, a.timers).await?;
        let mut tasks = Vec::new();
        let start = Instant::now();
        for r in 0..*replicas {
            let engine = Engine {
                db: tdb.connect().await,
                outbox: Outbox::new(&bus.cfg),
                settings: SettingsCache::new(Duration::from_secs(30)),
                clock: jiesu_common::clock::Clock::system(),
            };
            let cfg = TimerConfig {
                poll: Duration::from_millis(100),
                lease: Duration::from_secs(30),
                batch: a.batch,
                owner: format!("bench-{r}"),
            };
            tasks.push(tokio::spawn(async move {
                let mut fired = 0;
                loop {
                    let n = run_once(&engine, &cfg).await?;
                    fired += n;
                    if n == 0 {
                        return Ok::<usize, sea_orm::DbErr>(fired);
                    }
                }
            }));
        }
        let mut fired = 0;
        for t in tasks {
            fired += t.await??;
        }
        let wall = start.elapsed().as_secs_f64();
        let once = count(
            &db,
            "SELECT count(*) FROM timers WHERE fired_at IS NOT NULL",
        )
        .await?;
        let entries = count(
            &db,
            "SELECT count(*) FROM work_order_events WHERE event IN ('reminder', 'urge', 'supervise')",
        )
        .await?;
        let events = count(
            &db,
            "SELECT count(*) FROM bus_outbox WHERE event = 'dispatch.work_order.notice_issued'",
        )
        .await?;
        let expected = i64::try_from(a.timers)?;
        if once != expected || entries != expected || events != expected || fired as i64 != expected
        {
            return Err(format!(
                "{replicas} replicas: {fired} fired, {once} marked, {entries} entries, {events} events; expected {expected}"
            )
            .into());
        }
        println!(
            "| {replicas} | {} | {wall:.1} | {:.0} | {once} | {entries} | {events} |",
            a.timers,
            a.timers as f64 / wall
        );
    }
    Ok(())
}
