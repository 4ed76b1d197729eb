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
//!
//! A handler that sets [`Handler::APPLY_TOGETHER`] has the first deliveries
//! of a pull applied in one transaction (one inbox insert, one commit, one
//! write of whatever it accumulates); if that transaction fails for any
//! reason it is rolled back and each event goes the one-by-one way above, so
//! attempts, retries and dead letters stay per event.
//!
//! Here: what a handler sees and the runner it is given to. `runner` pulls
//! and decides each delivery's fate, `together` applies a pull at once,
//! `inbox` keeps the inbox and attempt rows, `settle` acks, naks or
//! dead-letters the message.

mod inbox;
mod runner;
mod settle;
mod together;

use jiesu_proto::Event;
use jiesu_runtime::Readiness;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Bus;

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
    jiesu_db::unreachable(e)
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

    /// Apply the first deliveries of one pull in one transaction through
    /// [`Handler::handle_batch`]. For handlers whose effects commute (the
    /// order of the events in a pull must not matter) and whose per-event
    /// cost is mostly the transaction and shared counter rows.
    const APPLY_TOGETHER: bool = false;

    /// Applies `events` (distinct, first deliveries, none applied before)
    /// inside `txn`, which already holds their inbox rows. The default
    /// applies them one after another; a handler overrides it to write what
    /// the events share once. An error rolls the whole lot back, after
    /// which each event is applied on its own.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: Vec<(Self::Event, Delivery)>,
    ) -> Result<(), HandleError> {
        for (event, delivery) in events {
            self.handle(txn, event, &delivery).await?;
        }
        Ok(())
    }

    /// Runs after the transaction committed (e.g. wake the outbox relay).
    fn after_commit(&self) {}
}

/// Names the durable consumer; the stream and filter come from the event type.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name, stable across releases, e.g. `dispatch-ticket-received`.
    pub durable: String,
    /// Events fetched per pull; default twice `bus.consumer_concurrency`
    /// (eight times for a handler that applies them together, which has
    /// four chunks in flight), so no fetched event waits long enough for its
    /// `ack_wait` to run out.
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

fn count(consumer: &str, outcome: &'static str) {
    metrics::counter!("jiesu_consumer_events_total", "consumer" => consumer.to_owned(), "outcome" => outcome)
        .increment(1);
}
