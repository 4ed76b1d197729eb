//! Durable pull consumers with an inbox.
//!
//! For each delivery: the inbox row `(consumer, event id)` and the handler's
//! effect are written in ONE transaction; the message is acked only after the
//! commit. A redelivery finds the inbox row and changes nothing.
//!
//! Failures are redelivered with backoff. What counts toward dead-lettering
//! is the handler's failures (an error it returns, a data error from the
//! database, a panic, a crash or timeout), counted in `bus_attempts` only
//! while the database answers. An unreachable database is never the event's
//! fault: such deliveries are retried for as long as it takes. After
//! `bus.max_deliver` counted attempts, or at once for a message that cannot be
//! decoded or that the handler rejects, the event goes to the dead-letter
//! stream with the reason, where operators see it.

use std::{panic::AssertUnwindSafe, time::Duration};

use async_nats::{
    HeaderMap,
    jetstream::{
        AckKind, Message,
        consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    },
};
use futures::{FutureExt, StreamExt};
use jiesu_proto::Event;
use jiesu_runtime::Readiness;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    Bus, BusError, H_CONSUMER, H_DELIVERED, H_ERROR, H_MSG_ID, H_ORIGINAL_SUBJECT, H_TENANT,
    H_TRACEPARENT,
};

/// Pause before pulling again after a pull failed (NATS unreachable).
const PULL_RETRY_DELAY: Duration = Duration::from_millis(1000);

/// What the handler learns about a delivery besides the event.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_id: Uuid,
    pub subject: String,
    pub tenant: String,
    /// 1 on first delivery.
    pub delivered: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Try again later; counts toward dead-lettering.
    #[error("{0}")]
    Retry(String),
    /// The event can never be applied: dead-letter it now.
    #[error("{0}")]
    Reject(String),
    /// Database unreachable: retried without limit. Any other database error
    /// (a constraint, bad data) counts toward dead-lettering.
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// The database could not be reached at all (as opposed to refusing a query).
fn unreachable(e: &DbErr) -> bool {
    matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_))
}

#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    type Event: Event;

    /// Applies `event` inside `txn`, which already holds the inbox row.
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: Self::Event,
        delivery: &Delivery,
    ) -> Result<(), HandleError>;

    /// Runs after the transaction committed (e.g. wake the outbox relay).
    fn after_commit(&self) {}
}

/// Names the durable consumer; the stream and filter come from the event type.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name, stable across releases, e.g. `dispatch-ticket-received`.
    pub durable: String,
    /// Events fetched per pull; default twice `bus.consumer_concurrency`, so
    /// no fetched event waits long enough for its `ack_wait` to run out.
    pub batch: Option<usize>,
}

impl ConsumerSpec {
    pub fn new(durable: &str) -> Self {
        Self {
            durable: durable.to_owned(),
            batch: None,
        }
    }
}

enum Outcome {
    Applied,
    Duplicate,
}

/// How a delivery went wrong.
enum Failure {
    /// Not the event's fault: retry, never dead-letter.
    Infrastructure(String),
    /// The handler failed: counted.
    Handler(String),
    /// Dead-letter now.
    Reject(String),
}

struct Runner<H: Handler> {
    bus: Bus,
    db: DatabaseConnection,
    handler: H,
    spec: ConsumerSpec,
}

/// Starts the consumer; it retries set-up until NATS answers and stops
/// taking messages when `shutdown` fires, finishing those in hand.
pub fn spawn_consumer<H: Handler>(
    bus: Bus,
    db: DatabaseConnection,
    spec: ConsumerSpec,
    handler: H,
    shutdown: CancellationToken,
    ready: Readiness,
) -> tokio::task::JoinHandle<()> {
    let runner = std::sync::Arc::new(Runner {
        bus,
        db,
        handler,
        spec,
    });
    tokio::spawn(async move { runner.run(shutdown, ready).await })
}

impl<H: Handler> Runner<H> {
    async fn setup(&self) -> Result<PullConsumer, BusError> {
        let ctx = <H::Event as Event>::CONTEXT;
        let stream = self.bus.ensure_stream(ctx).await?;
        self.bus.ensure_dead_letter_stream().await?;
        let cfg = &self.bus.cfg;
        let config = pull::Config {
            durable_name: Some(self.spec.durable.clone()),
            description: Some(format!(
                "{} <- {}",
                self.spec.durable,
                <H::Event as Event>::NAME
            )),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: cfg.ack_wait,
            // Unlimited on the server: this runner decides when to give up,
            // so no event silently stops being delivered.
            max_deliver: -1,
            filter_subject: self.bus.filter(ctx, <H::Event as Event>::NAME),
            max_ack_pending: (cfg.consumer_concurrency * 64) as i64,
            ..Default::default()
        };
        stream
            .get_or_create_consumer(&self.spec.durable, config)
            .await
            .map_err(|e| BusError::JetStream(format!("consumer {}: {e}", self.spec.durable)))
    }

    async fn setup_until_ok(&self, shutdown: &CancellationToken) -> Option<PullConsumer> {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.setup().await {
                Ok(c) => return Some(c),
                Err(e) => {
                    tracing::warn!(consumer = %self.spec.durable, error = %e, "consumer set-up failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn run(self: std::sync::Arc<Self>, shutdown: CancellationToken, ready: Readiness) {
        let Some(mut consumer) = self.setup_until_ok(&shutdown).await else {
            return;
        };
        ready.set(true);
        let concurrency = self.bus.cfg.consumer_concurrency;
        let batch_size = self.spec.batch.unwrap_or(concurrency * 2);
        let mut last_housekeeping = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            let batch = consumer
                .batch()
                .max_messages(batch_size)
                .expires(Duration::from_secs(1))
                .messages()
                .await;
            let pulled_cleanly = match batch {
                Ok(messages) => {
                    let saw_error = std::sync::atomic::AtomicBool::new(false);
                    messages
                        .take_until(shutdown.cancelled())
                        .for_each_concurrent(concurrency, |m| {
                            let this = self.clone();
                            let saw_error = &saw_error;
                            async move {
                                match m {
                                    Ok(msg) => this.process(msg).await,
                                    Err(e) => {
                                        saw_error.store(true, std::sync::atomic::Ordering::Relaxed);
                                        tracing::debug!(consumer = %this.spec.durable, error = %e, "pull batch ended with an error");
                                    }
                                }
                            }
                        })
                        .await;
                    !saw_error.into_inner()
                }
                Err(e) => {
                    tracing::warn!(consumer = %self.spec.durable, error = %e, "pull failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(PULL_RETRY_DELAY) => {}
                    }
                    false
                }
            };
            // The durable may be gone (deleted, or NATS restored without it):
            // set it up again. A new durable redelivers from the start and
            // the inbox absorbs what was applied already.
            if !pulled_cleanly && !shutdown.is_cancelled() && consumer.get_info().await.is_err() {
                tracing::warn!(consumer = %self.spec.durable, "durable consumer missing; setting it up again");
                ready.set(false);
                match self.setup_until_ok(&shutdown).await {
                    Some(c) => consumer = c,
                    None => break,
                }
                ready.set(true);
            }
            if last_housekeeping.elapsed() > Duration::from_secs(600) {
                last_housekeeping = tokio::time::Instant::now();
                self.housekeeping().await;
            }
        }
        ready.set(false);
    }

    async fn process(&self, msg: Message) {
        let durable = self.spec.durable.as_str();
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        let headers = msg.headers.clone().unwrap_or_default();
        let get = |k: &str| headers.get(k).map(|v| v.as_str().to_owned());
        let span = tracing::info_span!(
            "consume",
            consumer = durable,
            subject = %msg.subject,
            event_id = tracing::field::Empty,
            delivered,
            otel.kind = "consumer",
        );
        if let Some(tp) = get(H_TRACEPARENT) {
            jiesu_runtime::telemetry::set_remote_parent(&span, &tp);
        }
        async {
            let Some(event_id) = get(H_MSG_ID).and_then(|v| Uuid::parse_str(&v).ok()) else {
                self.dead_letter(&msg, &headers, delivered, "missing or malformed Nats-Msg-Id")
                    .await;
                return;
            };
            tracing::Span::current().record("event_id", tracing::field::display(event_id));
            let event = match <H::Event as prost::Message>::decode(msg.payload.as_ref()) {
                Ok(e) => e,
                Err(e) => {
                    let reason = format!("undecodable payload: {e}");
                    self.dead_letter(&msg, &headers, delivered, &reason).await;
                    return;
                }
            };
            let delivery = Delivery {
                event_id,
                subject: msg.subject.to_string(),
                tenant: get(H_TENANT).unwrap_or_default(),
                delivered,
            };
            // The first delivery is attempt 1 at no cost; later ones are
            // counted in the database, and only if it answers.
            let attempt = if delivered <= 1 {
                1
            } else {
                match self.count_attempt(event_id).await {
                    Ok(n) => n,
                    Err(e) => {
                        self.retry(&msg, delivered, &format!("cannot count the attempt: {e}"))
                            .await;
                        return;
                    }
                }
            };
            if attempt > self.bus.cfg.max_deliver {
                match self.already_applied(event_id).await {
                    Ok(true) => self.ack(&msg, Outcome::Duplicate).await,
                    Ok(false) => {
                        let reason = format!(
                            "gave up after {} attempts (the handler failed, crashed or timed out each time)",
                            attempt - 1
                        );
                        self.dead_letter(&msg, &headers, delivered, &reason).await;
                    }
                    Err(e) => self.retry(&msg, delivered, &e.to_string()).await,
                }
                return;
            }
            let started = std::time::Instant::now();
            let result = match AssertUnwindSafe(self.apply(event, &delivery))
                .catch_unwind()
                .await
            {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(HandleError::Reject(r))) => Err(Failure::Reject(r)),
                Ok(Err(HandleError::Db(e))) if unreachable(&e) => {
                    Err(Failure::Infrastructure(e.to_string()))
                }
                Ok(Err(e)) => Err(Failure::Handler(e.to_string())),
                Err(_) => Err(Failure::Handler("the handler panicked".into())),
            };
            metrics::histogram!("jiesu_consumer_handle_seconds", "consumer" => durable.to_owned())
                .record(started.elapsed().as_secs_f64());
            match result {
                Ok(outcome) => self.ack(&msg, outcome).await,
                Err(Failure::Reject(reason)) => {
                    self.dead_letter(&msg, &headers, delivered, &reason).await;
                }
                Err(Failure::Handler(reason)) if attempt >= self.bus.cfg.max_deliver => {
                    self.dead_letter(&msg, &headers, delivered, &reason).await;
                }
                Err(Failure::Handler(reason)) => self.retry(&msg, delivered, &reason).await,
                Err(Failure::Infrastructure(reason)) => {
                    // Not the event's fault: take the attempt back (best
                    // effort; if the database is down this fails too).
                    if delivered > 1 {
                        let _ = self.uncount_attempt(event_id).await;
                    }
                    self.retry(&msg, delivered, &reason).await;
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn ack(&self, msg: &Message, outcome: Outcome) {
        let label = match outcome {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
        };
        count(&self.spec.durable, label);
        if let Err(e) = msg.ack().await {
            // The effect is committed; a redelivery hits the inbox.
            tracing::warn!(error = %e, "ack failed; the redelivery will be a no-op");
        }
    }

    async fn retry(&self, msg: &Message, delivered: i64, reason: &str) {
        let wait = self.bus.cfg.backoff_for(delivered);
        count(&self.spec.durable, "retry");
        tracing::warn!(error = %reason, retry_in = ?wait, "event handling failed; will retry");
        let _ = msg.ack_with(AckKind::Nak(Some(wait))).await;
    }

    /// Records one more attempt; returns the attempt number (2 for the first
    /// recorded, the first delivery being attempt 1).
    async fn count_attempt(&self, event_id: Uuid) -> Result<i64, DbErr> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO bus_attempts (consumer, event_id, attempts) VALUES ($1, $2, 2) \
                 ON CONFLICT (consumer, event_id) DO UPDATE \
                 SET attempts = bus_attempts.attempts + 1, last_at = now() \
                 RETURNING attempts",
                [self.spec.durable.clone().into(), event_id.into()],
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("attempt counter returned no row".into()))?;
        Ok(i64::from(row.try_get::<i32>("", "attempts")?))
    }

    async fn uncount_attempt(&self, event_id: Uuid) -> Result<(), DbErr> {
        self.db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE bus_attempts SET attempts = attempts - 1 \
                 WHERE consumer = $1 AND event_id = $2 AND attempts > 1",
                [self.spec.durable.clone().into(), event_id.into()],
            ))
            .await
            .map(|_| ())
    }

    async fn already_applied(&self, event_id: Uuid) -> Result<bool, DbErr> {
        Ok(self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM bus_inbox WHERE consumer = $1 AND event_id = $2",
                [self.spec.durable.clone().into(), event_id.into()],
            ))
            .await?
            .is_some())
    }

    async fn apply(&self, event: H::Event, delivery: &Delivery) -> Result<Outcome, HandleError> {
        let txn = self.db.begin().await?;
        let inserted = txn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO bus_inbox (consumer, event_id, subject) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                [
                    self.spec.durable.clone().into(),
                    delivery.event_id.into(),
                    delivery.subject.clone().into(),
                ],
            ))
            .await?
            .rows_affected();
        if inserted == 0 {
            txn.rollback().await?;
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(&txn, event, delivery).await?;
        if delivery.delivered > 1 {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "DELETE FROM bus_attempts WHERE consumer = $1 AND event_id = $2",
                [self.spec.durable.clone().into(), delivery.event_id.into()],
            ))
            .await?;
        }
        txn.commit().await?;
        self.handler.after_commit();
        Ok(Outcome::Applied)
    }

    async fn dead_letter(&self, msg: &Message, original: &HeaderMap, delivered: i64, reason: &str) {
        let durable = self.spec.durable.as_str();
        let mut headers = original.clone();
        let msg_id = original
            .get(H_MSG_ID)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| {
                format!("seq-{}", msg.info().map(|i| i.stream_sequence).unwrap_or(0))
            });
        // One dead letter per (event, consumer) even if this runs twice.
        headers.insert(H_MSG_ID, format!("{msg_id}:{durable}").as_str());
        headers.insert(H_ORIGINAL_SUBJECT, msg.subject.as_str());
        headers.insert(H_CONSUMER, durable);
        headers.insert(H_DELIVERED, delivered.to_string().as_str());
        let reason: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        headers.insert(H_ERROR, reason.as_str());
        let published = match self
            .bus
            .js
            .publish_with_headers(
                self.bus.dead_letter_subject(durable),
                headers,
                msg.payload.clone(),
            )
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match published {
            Ok(()) => {
                count(durable, "dead_letter");
                tracing::error!(reason = %reason, delivered, "event moved to the dead-letter stream");
                let _ = msg.ack_with(AckKind::Term).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot dead-letter the event; it will be redelivered");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(self.bus.cfg.backoff_for(delivered))))
                    .await;
            }
        }
    }

    async fn housekeeping(&self) {
        let retention = self.bus.cfg.inbox_retention.as_secs() as i64;
        for sql in [
            "DELETE FROM bus_inbox WHERE consumer = $1 AND handled_at < now() - make_interval(secs => $2)",
            "DELETE FROM bus_attempts WHERE consumer = $1 AND last_at < now() - make_interval(secs => $2)",
        ] {
            if let Err(e) = self
                .db
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [self.spec.durable.clone().into(), retention.into()],
                ))
                .await
            {
                tracing::warn!(consumer = %self.spec.durable, error = %e, "inbox housekeeping failed");
            }
        }
    }
}

fn count(consumer: &str, outcome: &'static str) {
    metrics::counter!("jiesu_consumer_events_total", "consumer" => consumer.to_owned(), "outcome" => outcome)
        .increment(1);
}
