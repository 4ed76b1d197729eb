//! Fault drills: the servers the platform depends on fail while tickets
//! arrive. The four processes run against a PostgreSQL cluster and a
//! nats-server of the test's own (the machine's are never touched), 300
//! tickets per drill:
//!
//! 1. NATS killed and restarted;
//! 2. PostgreSQL killed (immediate stop) and restarted;
//! 3. NATS down for 30 s while intake keeps accepting into its outbox;
//! 4. NATS restarted without its JetStream store while dispatch is down, so
//!    the events intake published since wait, acknowledged but unconsumed:
//!    every stream, event and consumer is gone. The relays see their streams
//!    made anew and publish their retained outboxes again; the inboxes absorb
//!    what was applied. Without the replay those tickets are never dispatched.
//!
//! First 300 undisturbed tickets on the same servers, as the anchor. After
//! each drill: exactly 300 more tickets, work orders and notifications, empty
//! outboxes, and no message delivered twice. Then the operator's `jiesu outbox-replay` publishes
//! everything once more and nothing changes. Recovery times go to
//! `target/tmp/e2e/drills.md` (docs/benchmarks.md).

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use futures::{FutureExt, StreamExt};
use jiesu_testkit::{NatsServer, PgCluster, ServiceProcess, wait_until};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::{
    platform::{Platform, Servers, bin, out_dir},
    slice::{Disturbance, PER_PHASE, run_phase},
};

/// One number from a service's database, on a connection of its own.
async fn scalar(db_server: &str, database: &str, sql: &str) -> i64 {
    let url = jiesu_db::with_database(db_server, database).expect("url");
    let cfg = jiesu_db::DbConfig {
        max_connections: 1,
        min_connections: 0,
        ..Default::default()
    };
    let conn = jiesu_db::connect(&url, &cfg).await.expect("connect");
    let n = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("number");
    let _ = conn.close().await;
    n
}

/// What every drill must leave: `n` of everything, once, nothing unsent.
async fn assert_exactly(p: &Platform, n: i64, drill: &str) {
    let checks = [
        ("intake", "SELECT count(*) FROM tickets"),
        ("dispatch", "SELECT count(*) FROM work_orders"),
        (
            "dispatch",
            "SELECT count(DISTINCT ticket_id) FROM work_orders WHERE status = 'dispatched'",
        ),
        ("notification", "SELECT count(*) FROM notifications"),
        (
            "notification",
            "SELECT count(DISTINCT ticket_id) FROM notifications WHERE status = 'sent'",
        ),
    ];
    for (service, sql) in checks {
        assert_eq!(p.scalar(service, sql).await, n, "{drill}: {service}: {sql}");
    }
    for service in ["intake", "dispatch"] {
        let unsent = "SELECT count(*) FROM bus_outbox WHERE published_at IS NULL";
        wait_until(
            Duration::from_secs(30),
            &format!("{drill}: {service}'s outbox empty"),
            || async { (p.scalar(service, unsent).await == 0).then_some(()) },
        )
        .await;
    }
}

/// A counter of the target's `/metrics`, summed over the label sets whose
/// line contains `labels`.
async fn metric(p: &Platform, target: &str, name: &str, labels: &str) -> f64 {
    let text = reqwest::get(format!(
        "http://127.0.0.1:{}/metrics",
        p.procs[target].admin
    ))
    .await
    .expect("metrics")
    .text()
    .await
    .expect("text");
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether every durable consumer of the platform's streams has nothing
/// left to deliver or waiting for an ack.
async fn consumers_idle(p: &Platform) -> bool {
    let bus = p._bus.connect().await;
    for context in ["intake", "dispatch"] {
        let Ok(stream) = bus.js.get_stream(bus.stream_name(context)).await else {
            return false;
        };
        let mut infos = stream.consumers();
        while let Some(info) = infos.next().await {
            match info {
                Ok(i) if i.num_pending == 0 && i.num_ack_pending == 0 => {}
                _ => return false,
            }
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_fail_under_load_and_nothing_is_lost_or_doubled() {
    let pg = tokio::task::block_in_place(PgCluster::start);
    let mut nats = tokio::task::block_in_place(NatsServer::start);
    let servers = Servers {
        db: pg.url(),
        nats: nats.url(),
    };
    // Quieter logs: four phases of load. A short de-duplication window, so
    // what is published again reaches the consumers and their inboxes must
    // absorb it (JetStream would drop repeats within two minutes itself).
    let mut p = Platform::start_on(
        servers,
        &[
            ("JIESU__TELEMETRY__LOG_FILTER", "info,async_nats=warn"),
            ("JIESU__BUS__DUPLICATE_WINDOW", "2s"),
        ],
    )
    .await;
    let (db_server, intake_db) = (p.db_server.clone(), format!("{}intake", p.db_prefix));
    let mut report = String::from(
        "| drill | tickets | all accepted after | all notified after | recovered after the server returned | max attempts per ticket |\n|---|---|---|---|---|---|\n",
    );
    let mut total = 0;

    let accepted_while_down = AtomicU64::new(0);
    // Dispatch's process while the last drill keeps it down.
    let stopped: std::sync::Mutex<Option<jiesu_testkit::TargetProcess>> =
        std::sync::Mutex::new(None);
    // The anchor: the same 300 tickets on the same servers, undisturbed.
    let r = run_phase(&mut p, 1, "undisturbed (anchor)", Disturbance::None).await;
    total += PER_PHASE as i64;
    assert_exactly(&p, total, "undisturbed").await;
    report.push_str(&format!(
        "| undisturbed (anchor) | {PER_PHASE} | {:.1} s | {:.1} s | - | {} |\n",
        r.wall.as_secs_f64(),
        r.until_notified.as_secs_f64(),
        r.tickets.iter().map(|s| s.attempts).max().unwrap_or(0),
    ));

    let drills: [&'static str; 4] = [
        "NATS killed and restarted",
        "PostgreSQL killed and restarted",
        "NATS down for 30 s",
        "NATS restarted without its JetStream store",
    ];
    for (i, drill) in drills.into_iter().enumerate() {
        let fault = match i {
            0 => async {
                tokio::task::block_in_place(|| {
                    nats.kill();
                    nats.start_again();
                });
            }
            .boxed(),
            1 => async {
                tokio::task::block_in_place(|| {
                    pg.kill();
                    pg.start_again();
                });
            }
            .boxed(),
            2 => async {
                let tickets = "SELECT count(*) FROM tickets";
                let unsent = "SELECT count(*) FROM bus_outbox WHERE published_at IS NULL";
                tokio::task::block_in_place(|| nats.kill());
                let before = scalar(&db_server, &intake_db, tickets).await;
                // The outage itself is the drill, not a wait for something.
                tokio::time::sleep(Duration::from_secs(30)).await;
                let after = scalar(&db_server, &intake_db, tickets).await;
                let pending = scalar(&db_server, &intake_db, unsent).await;
                assert!(
                    after > before && pending > 0,
                    "intake stopped accepting while NATS was down ({before} → {after}, {pending} unsent)"
                );
                accepted_while_down.store((after - before) as u64, Ordering::SeqCst);
                tokio::task::block_in_place(|| nats.start_again());
            }
            .boxed(),
            _ => async {
                // Dispatch has been down since the drill began: what intake
                // published waits in the stream, acknowledged, unconsumed,
                // when the store goes. Only the replay can bring it back.
                tokio::task::block_in_place(|| {
                    nats.kill_and_lose_store();
                    nats.start_again();
                });
                let mut dispatch = stopped.lock().unwrap().take().expect("dispatch");
                dispatch.process.start();
                dispatch.wait_ready().await;
                *stopped.lock().unwrap() = Some(dispatch);
            }
            .boxed(),
        };
        if i == 3 {
            let mut dispatch = p.procs.remove("dispatch").expect("dispatch");
            dispatch.process.kill9();
            *stopped.lock().unwrap() = Some(dispatch);
        }
        let replayed_before = metric(&p, "intake", "jiesu_outbox_replayed_total", "").await;
        let r = run_phase(&mut p, i + 2, drill, Disturbance::Fault(fault)).await;
        if let Some(dispatch) = stopped.lock().unwrap().take() {
            p.procs.insert("dispatch", dispatch);
        }
        total += PER_PHASE as i64;
        assert_exactly(&p, total, drill).await;
        if i == 3 {
            let replayed =
                metric(&p, "intake", "jiesu_outbox_replayed_total", "").await - replayed_before;
            assert!(
                replayed >= (PER_PHASE / 3) as f64,
                "intake replayed {replayed} events after its stream was lost"
            );
        }
        report.push_str(&format!(
            "| {drill} | {PER_PHASE} | {:.1} s | {:.1} s | {:.1} s | {} |\n",
            r.wall.as_secs_f64(),
            r.until_notified.as_secs_f64(),
            r.recovered.unwrap_or_default().as_secs_f64(),
            r.tickets.iter().map(|s| s.attempts).max().unwrap_or(0),
        ));
    }
    let while_down = accepted_while_down.load(Ordering::SeqCst);
    assert!(while_down > 0);
    report.push_str(&format!(
        "\nWhile NATS was down for 30 s, intake accepted {while_down} tickets into its outbox.\n"
    ));

    // The operator's replay: everything retained goes out again, the inboxes
    // absorb it, and nothing changes.
    let duplicate = r#"outcome="duplicate""#;
    let before = metric(&p, "dispatch", "jiesu_consumer_events_total", duplicate).await;
    let mut env = Platform::base_env(&p.keys, &p._bus, &p.db_prefix);
    for (k, v) in env.iter_mut() {
        if k == "JIESU__DATABASE__URL" {
            *v = db_server.clone();
        }
    }
    let log = p.logs.join("outbox-replay.log");
    let mut replay = ServiceProcess::new(
        "outbox-replay",
        &bin(),
        &[
            "outbox-replay",
            "--target",
            "intake,dispatch",
            "--since",
            "1h",
        ],
        env,
        log.clone(),
    );
    replay.start();
    assert_eq!(replay.wait_exit(), Some(0));
    let printed = std::fs::read_to_string(&log).unwrap_or_default();
    for target in ["intake", "dispatch"] {
        let line = printed
            .lines()
            .find(|l| l.starts_with(&format!("{target}: ")))
            .unwrap_or_else(|| panic!("no line for {target}: {printed}"));
        let n: i64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!(n >= total, "{line}");
    }
    assert_exactly(&p, total, "operator replay").await;
    // The command only marks the rows unsent: the services' relays publish
    // them. Idle consumers say nothing until they have.
    for service in ["intake", "dispatch"] {
        let db = format!("{}{service}", p.db_prefix);
        wait_until(
            Duration::from_secs(120),
            &format!("{service}'s relay to publish the replay"),
            || async {
                let unsent = scalar(
                    &db_server,
                    &db,
                    "SELECT count(*) FROM bus_outbox WHERE published_at IS NULL",
                )
                .await;
                (unsent == 0).then_some(())
            },
        )
        .await;
    }
    wait_until(
        Duration::from_secs(120),
        "every consumer caught up with the replay",
        || async { consumers_idle(&p).await.then_some(()) },
    )
    .await;
    let after = metric(&p, "dispatch", "jiesu_consumer_events_total", duplicate).await;
    assert!(
        after >= before + total as f64,
        "dispatch saw {} replayed events, not the {total} tickets",
        after - before
    );
    assert_exactly(&p, total, "operator replay").await;

    // And no message went out twice: the log sink is the delivery here.
    let log = std::fs::read_to_string(p.logs.join("notification.log")).unwrap_or_default();
    let mut deliveries: std::collections::HashMap<&str, usize> = Default::default();
    for line in log.lines().filter(|l| l.contains("notification delivered")) {
        if let Some(id) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("notification_id="))
        {
            *deliveries.entry(id).or_default() += 1;
        }
    }
    assert_eq!(deliveries.len() as i64, total, "deliveries in the log");
    let twice: Vec<_> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");

    let path = out_dir().join("drills.md");
    let _ = std::fs::write(&path, &report);
    eprintln!("{report}\n(report written to {})", path.display());
}
