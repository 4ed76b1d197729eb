//! The event path against real PostgreSQL and NATS: outbox rows published
//! once with their event id, redelivered events applied once, failing and
//! undecodable events dead-lettered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_nats::HeaderMap;
use jiesu_bus::{
    Bus, ConsumerSpec, Delivery, H_CONSUMER, H_DELIVERED, H_ERROR, H_EVENT, H_MSG_ID,
    H_ORIGINAL_SUBJECT, H_TENANT, HandleError, Handler, Outbox, Relay, spawn_consumer,
};
use jiesu_db::{SqlMigration, SqlMigrations};
use jiesu_proto::{Event, intake::TicketReceived};
use jiesu_runtime::ReadinessRegistry;
use jiesu_testkit::{TestBus, TestDb, wait_until};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct TestMigrations;

impl SqlMigrations for TestMigrations {
    fn list() -> Vec<SqlMigration> {
        vec![
            jiesu_bus::migrations::bus_tables(),
            SqlMigration {
                name: "m_test_effects",
                sql: "CREATE TABLE effects (event_id UUID PRIMARY KEY, ticket_id TEXT NOT NULL)",
            },
            jiesu_bus::migrations::bus_stream_marks(),
        ]
    }
}

fn event(n: usize) -> TicketReceived {
    TicketReceived {
        ticket_id: format!("ticket-{n}"),
        tenant: "370202".into(),
        category: "SH01".into(),
        ..Default::default()
    }
}

/// Records each applied event; refuses tickets named "poison".
struct Recorder {
    attempts: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Handler for Recorder {
    type Event = TicketReceived;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketReceived,
        d: &Delivery,
    ) -> Result<(), HandleError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if ev.ticket_id == "poison" {
            return Err(HandleError::Retry("the poison ticket always fails".into()));
        }
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO effects (event_id, ticket_id) VALUES ($1, $2)",
            [d.event_id.into(), ev.ticket_id.into()],
        ))
        .await?;
        Ok(())
    }
}

async fn publish_via_outbox(db: &TestDb, bus: &Bus, events: &[TicketReceived]) -> Vec<Uuid> {
    let conn = db.connect().await;
    let outbox = Outbox::new(&bus.cfg);
    let txn = conn.begin().await.unwrap();
    let mut ids = Vec::new();
    for e in events {
        ids.push(outbox.enqueue(&txn, e).await.unwrap());
    }
    txn.commit().await.unwrap();
    let relay = Relay::new(conn, bus.clone(), &outbox, "test");
    assert_eq!(relay.publish_pending().await.unwrap(), events.len());
    ids
}

async fn stream_len(bus: &Bus, name: &str) -> u64 {
    match bus.js.get_stream(name).await {
        Ok(s) => s.get_info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Runs `handler` as the durable consumer `durable` until `done` holds,
/// then stops it and waits for it to drain.
async fn consume_until<H, F, Fut>(
    bus: &Bus,
    db: &TestDb,
    durable: &str,
    handler: H,
    what: &str,
    mut done: F,
) where
    H: Handler,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let stop = CancellationToken::new();
    let task = spawn_consumer(
        bus.clone(),
        db.connect().await,
        ConsumerSpec::new(durable),
        handler,
        stop.clone(),
        ReadinessRegistry::default().register("c"),
    );
    wait_until(Duration::from_secs(30), what, || {
        let check = done();
        async move { check.await.then_some(()) }
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn outbox_rows_are_published_once_with_their_event_id() {
    let db = TestDb::new::<TestMigrations>("bus").await;
    let tb = TestBus::new();
    let bus = tb.connect().await;
    bus.ensure_stream("intake").await.unwrap();
    let stream = bus.stream_name("intake");

    let conn = db.connect().await;
    let outbox = Outbox::new(&bus.cfg);
    // A rolled-back transaction leaves nothing to publish.
    let txn = conn.begin().await.unwrap();
    outbox.enqueue(&txn, &event(99)).await.unwrap();
    txn.rollback().await.unwrap();

    let ids = publish_via_outbox(&db, &bus, &[event(1), event(2), event(3)]).await;
    assert_eq!(stream_len(&bus, &stream).await, 3);
    let js_stream = bus.js.get_stream(&stream).await.unwrap();
    for (seq, id) in (1u64..).zip(&ids) {
        let m = js_stream.get_raw_message(seq).await.unwrap();
        assert_eq!(m.headers.get(H_MSG_ID).unwrap().as_str(), id.to_string());
        assert_eq!(m.headers.get(H_TENANT).unwrap().as_str(), "370202");
        assert_eq!(
            m.headers.get(H_EVENT).unwrap().as_str(),
            "intake.ticket.received"
        );
        assert_eq!(
            m.subject.as_str(),
            format!("{}.intake.370202.ticket.received", bus.cfg.subject_root)
        );
    }
    assert_eq!(
        db.count("SELECT count(*) FROM bus_outbox WHERE published_at IS NOT NULL")
            .await,
        3
    );

    // A relay that crashed after publishing but before marking publishes
    // again: JetStream drops the copies by Nats-Msg-Id.
    conn.execute_unprepared("UPDATE bus_outbox SET published_at = NULL")
        .await
        .unwrap();
    let relay = Relay::new(conn, bus.clone(), &outbox, "test");
    assert_eq!(relay.publish_pending().await.unwrap(), 3);
    assert_eq!(stream_len(&bus, &stream).await, 3);
}

#[tokio::test]
async fn redelivered_events_are_applied_once() {
    let db = TestDb::new::<TestMigrations>("bus").await;
    let tb = TestBus::new();
    let bus = tb.connect().await;
    bus.ensure_stream("intake").await.unwrap();
    let events: Vec<_> = (0..5).map(event).collect();
    publish_via_outbox(&db, &bus, &events).await;

    let attempts = Arc::new(AtomicUsize::new(0));
    let recorder = || Recorder {
        attempts: attempts.clone(),
    };
    consume_until(
        &bus,
        &db,
        "test-recorder",
        recorder(),
        "5 effects",
        || async { db.count("SELECT count(*) FROM effects").await == 5 },
    )
    .await;

    // Lose the consumer's state: JetStream delivers every event again.
    let stream = bus.js.get_stream(bus.stream_name("intake")).await.unwrap();
    stream.delete_consumer("test-recorder").await.unwrap();
    consume_until(
        &bus,
        &db,
        "test-recorder",
        recorder(),
        "all 5 redelivered and acked",
        || async {
            stream
                .consumer_info("test-recorder")
                .await
                .is_ok_and(|info| info.ack_floor.stream_sequence >= 5 && info.num_ack_pending == 0)
        },
    )
    .await;
    assert_eq!(db.count("SELECT count(*) FROM effects").await, 5);
    assert_eq!(db.count("SELECT count(*) FROM bus_inbox").await, 5);
    // The handler ran only for the first deliveries: the inbox stopped the rest.
    assert_eq!(attempts.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn failing_events_are_retried_then_dead_lettered() {
    let db = TestDb::new::<TestMigrations>("bus").await;
    let mut tb = TestBus::new();
    tb.cfg.max_deliver = 3;
    tb.cfg.backoff = vec![Duration::from_millis(50)];
    let bus = tb.connect().await;
    bus.ensure_stream("intake").await.unwrap();
    let mut poison = event(0);
    poison.ticket_id = "poison".into();
    let ids = publish_via_outbox(&db, &bus, &[poison, event(1)]).await;

    let attempts = Arc::new(AtomicUsize::new(0));
    let recorder = Recorder {
        attempts: attempts.clone(),
    };
    let dlq = bus.dead_letter_stream();
    consume_until(&bus, &db, "test-dlq", recorder, "a dead letter", || async {
        stream_len(&bus, &dlq).await == 1
    })
    .await;

    let m = bus
        .js
        .get_stream(&dlq)
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    let h = |k: &str| {
        m.headers
            .get(k)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(h(H_CONSUMER), "test-dlq");
    assert_eq!(h(H_DELIVERED), "3");
    assert!(
        h(H_ERROR).contains("poison ticket always fails"),
        "{}",
        h(H_ERROR)
    );
    assert_eq!(
        h(H_ORIGINAL_SUBJECT),
        bus.subject("intake", "370202", "ticket.received")
    );
    assert!(h(H_MSG_ID).starts_with(&ids[0].to_string()));
    assert_eq!(m.subject.as_str(), bus.dead_letter_subject("test-dlq"));
    // The good event went through; the poison one was tried max_deliver times.
    assert_eq!(db.count("SELECT count(*) FROM effects").await, 1);
    assert_eq!(attempts.load(Ordering::SeqCst), 1 + 3);
}

#[tokio::test]
async fn undecodable_or_unidentified_messages_are_dead_lettered_at_once() {
    let db = TestDb::new::<TestMigrations>("bus").await;
    let tb = TestBus::new();
    let bus = tb.connect().await;
    bus.ensure_stream("intake").await.unwrap();
    let subject = bus.subject("intake", "370202", TicketReceived::NAME);
    let mut headers = HeaderMap::new();
    headers.insert(H_MSG_ID, Uuid::now_v7().to_string().as_str());
    bus.js
        .publish_with_headers(subject.clone(), headers, vec![0xff, 0xff, 0xff].into())
        .await
        .unwrap()
        .await
        .unwrap();
    bus.js
        .publish(subject, prost::Message::encode_to_vec(&event(7)).into())
        .await
        .unwrap()
        .await
        .unwrap();

    let attempts = Arc::new(AtomicUsize::new(0));
    let recorder = Recorder {
        attempts: attempts.clone(),
    };
    let dlq = bus.dead_letter_stream();
    consume_until(
        &bus,
        &db,
        "test-poison",
        recorder,
        "two dead letters",
        || async { stream_len(&bus, &dlq).await == 2 },
    )
    .await;
    let stream = bus.js.get_stream(&dlq).await.unwrap();
    let mut reasons = Vec::new();
    for seq in 1..=2 {
        let m = stream.get_raw_message(seq).await.unwrap();
        reasons.push(m.headers.get(H_ERROR).unwrap().as_str().to_owned());
    }
    reasons.sort();
    assert!(reasons[0].contains("Nats-Msg-Id"), "{reasons:?}");
    assert!(reasons[1].contains("undecodable"), "{reasons:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 0);
}

/// Fails in a chosen way a number of times, then applies.
struct Flaky {
    failures_left: AtomicUsize,
    kind: &'static str,
    attempts: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Handler for Flaky {
    type Event = TicketReceived;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketReceived,
        d: &Delivery,
    ) -> Result<(), HandleError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let fail = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            match self.kind {
                "unreachable" => {
                    return Err(HandleError::Db(sea_orm::DbErr::Conn(
                        sea_orm::RuntimeErr::Internal("connection refused".into()),
                    )));
                }
                _ => panic!("handler bug"),
            }
        }
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO effects (event_id, ticket_id) VALUES ($1, $2)",
            [d.event_id.into(), ev.ticket_id.into()],
        ))
        .await?;
        Ok(())
    }
}

async fn run_flaky(
    kind: &'static str,
    failures: usize,
) -> (TestDb, TestBus, Bus, Arc<AtomicUsize>) {
    let db = TestDb::new::<TestMigrations>("bus").await;
    let mut tb = TestBus::new();
    tb.cfg.max_deliver = 3;
    tb.cfg.backoff = vec![Duration::from_millis(20)];
    let bus = tb.connect().await;
    bus.ensure_stream("intake").await.unwrap();
    publish_via_outbox(&db, &bus, &[event(1)]).await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let flaky = Flaky {
        failures_left: AtomicUsize::new(failures),
        kind,
        attempts: attempts.clone(),
    };
    consume_until(
        &bus,
        &db,
        "test-flaky",
        flaky,
        "the event settled",
        || async {
            db.count("SELECT count(*) FROM effects").await == 1
                || stream_len(&bus, &bus.dead_letter_stream()).await == 1
        },
    )
    .await;
    (db, tb, bus, attempts)
}

#[tokio::test]
async fn an_unreachable_database_never_dead_letters_an_event() {
    // Twice max_deliver failures, all "database unreachable": still applied.
    let (db, _tb, bus, attempts) = run_flaky("unreachable", 6).await;
    assert_eq!(db.count("SELECT count(*) FROM effects").await, 1);
    assert_eq!(stream_len(&bus, &bus.dead_letter_stream()).await, 0);
    assert_eq!(attempts.load(Ordering::SeqCst), 7);
    assert_eq!(db.count("SELECT count(*) FROM bus_attempts").await, 0);
}

#[tokio::test]
async fn a_panicking_handler_is_retried_then_dead_lettered() {
    // One panic: caught, retried, applied; the consumer keeps running.
    let (db, _tb, bus, attempts) = run_flaky("panic", 1).await;
    assert_eq!(db.count("SELECT count(*) FROM effects").await, 1);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(stream_len(&bus, &bus.dead_letter_stream()).await, 0);
    // Always panicking: counted like any handler failure, then dead-lettered.
    let (db, _tb, bus, attempts) = run_flaky("panic", usize::MAX).await;
    assert_eq!(db.count("SELECT count(*) FROM effects").await, 0);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let m = bus
        .js
        .get_stream(bus.dead_letter_stream())
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    assert!(
        m.headers
            .get(H_ERROR)
            .unwrap()
            .as_str()
            .contains("panicked")
    );
}

/// NATS lost the stream (here: deleted, which JetStream cannot tell from a
/// store lost): the relay sees it made anew and publishes everything it
/// retained again, once; a stream that kept its events is left alone.
#[tokio::test]
async fn a_lost_stream_is_refilled_from_the_retained_outbox() {
    let db = TestDb::new::<TestMigrations>("bus").await;
    let tb = TestBus::new();
    let bus = tb.connect().await;
    let stream = bus.stream_name("intake");
    let conn = db.connect().await;
    let outbox = Outbox::new(&bus.cfg);
    let relay = Relay::new(conn.clone(), bus.clone(), &outbox, "intake");
    relay.check_stream().await;
    let events: Vec<_> = (0..5).map(event).collect();
    let txn = conn.begin().await.unwrap();
    for e in &events {
        outbox.enqueue(&txn, e).await.unwrap();
    }
    txn.commit().await.unwrap();
    assert_eq!(relay.publish_pending().await.unwrap(), 5);
    assert_eq!(stream_len(&bus, &stream).await, 5);

    // Intact: nothing to do.
    relay.check_stream().await;
    assert_eq!(relay.publish_pending().await.unwrap(), 0);

    bus.js.delete_stream(&stream).await.unwrap();
    relay.check_stream().await;
    assert_eq!(relay.publish_pending().await.unwrap(), 5);
    assert_eq!(stream_len(&bus, &stream).await, 5);
    relay.check_stream().await;
    assert_eq!(relay.publish_pending().await.unwrap(), 0, "replayed twice");

    // The operator's replay, limited to the last hour: all five again.
    let n = jiesu_bus::replay(
        &conn,
        &bus.cfg.subject_root,
        "intake",
        Some(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    assert_eq!(n, 5);
    assert_eq!(relay.publish_pending().await.unwrap(), 5);
}

/// The recorder, asking for pulls to be applied together; keeps the size of
/// each joint call.
struct Together {
    inner: Recorder,
    joint: Arc<std::sync::Mutex<Vec<usize>>>,
}

#[async_trait::async_trait]
impl Handler for Together {
    type Event = TicketReceived;
    const APPLY_TOGETHER: bool = true;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketReceived,
        d: &Delivery,
    ) -> Result<(), HandleError> {
        self.inner.handle(txn, ev, d).await
    }

    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: Vec<(TicketReceived, Delivery)>,
    ) -> Result<(), HandleError> {
        self.joint.lock().unwrap().push(events.len());
        for (ev, d) in events {
            self.inner.handle(txn, ev, &d).await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn pulls_applied_together_apply_each_event_once_and_a_bad_one_alone() {
    let db = TestDb::new::<TestMigrations>("bus").await;
    let mut tb = TestBus::new();
    tb.cfg.max_deliver = 3;
    tb.cfg.backoff = vec![Duration::from_millis(50)];
    let bus = tb.connect().await;
    bus.ensure_stream("intake").await.unwrap();
    // A backlog, as after an outage: 200 events, one of them poison.
    let mut events: Vec<_> = (0..200).map(event).collect();
    events[77].ticket_id = "poison".into();
    publish_via_outbox(&db, &bus, &events).await;

    let joint = Arc::new(std::sync::Mutex::new(Vec::new()));
    let together = || Together {
        inner: Recorder {
            attempts: Arc::new(AtomicUsize::new(0)),
        },
        joint: joint.clone(),
    };
    let dlq = bus.dead_letter_stream();
    consume_until(
        &bus,
        &db,
        "test-together",
        together(),
        "199 effects and the poison dead-lettered",
        || async {
            db.count("SELECT count(*) FROM effects").await == 199
                && stream_len(&bus, &dlq).await == 1
        },
    )
    .await;
    let sizes = joint.lock().unwrap().clone();
    assert!(
        sizes.iter().any(|&n| n > 1),
        "pulls were applied together: {sizes:?}"
    );
    // Every good event once (the effects' key is the event id), the poison
    // none: its pull was rolled back and its events applied one by one.
    assert_eq!(db.count("SELECT count(*) FROM bus_inbox").await, 199);
    assert_eq!(
        db.count("SELECT count(*) FROM effects WHERE ticket_id = 'poison'")
            .await,
        0
    );

    // Everything again (the durable lost): the inbox absorbs it all.
    let stream = bus.js.get_stream(bus.stream_name("intake")).await.unwrap();
    stream.delete_consumer("test-together").await.unwrap();
    let before = joint.lock().unwrap().len();
    consume_until(
        &bus,
        &db,
        "test-together",
        together(),
        "all 200 redelivered and settled",
        || async {
            stream
                .consumer_info("test-together")
                .await
                .is_ok_and(|info| {
                    info.ack_floor.stream_sequence >= 200 && info.num_ack_pending == 0
                })
        },
    )
    .await;
    assert_eq!(db.count("SELECT count(*) FROM effects").await, 199);
    assert_eq!(db.count("SELECT count(*) FROM bus_inbox").await, 199);
    // Only the poison (now past its attempts or failing again) reached the
    // handler: the 199 were found in the inbox before it.
    let again: usize = joint.lock().unwrap()[before..].iter().sum();
    assert!(again <= 1, "re-applied after redelivery: {again}");
    // Only the poison was dead-lettered (its second dead letter, of the
    // same event and consumer, deduplicated): no good event failed on its
    // way, as an effect applied twice would have.
    assert_eq!(stream_len(&bus, &dlq).await, 1);
}
