//! The transactional outbox: events are rows written in the same transaction
//! as the state change; the relay publishes them with `Nats-Msg-Id` = event id
//! and marks them sent. A crash between publish and mark republishes, which
//! JetStream de-duplicates inside its window and consumer inboxes beyond it.

use std::{sync::Arc, time::Duration};

use async_nats::HeaderMap;
use futures::future::join_all;
use jiesu_proto::Event;
use jiesu_runtime::Readiness;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait, Value,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Bus, BusError, H_EVENT, H_MSG_ID, H_TENANT, H_TRACEPARENT};

/// Writes events into the outbox inside the caller's transaction.
#[derive(Clone)]
pub struct Outbox {
    subject_root: String,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(cfg: &crate::BusConfig) -> Self {
        Self {
            subject_root: cfg.subject_root.clone(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Adds `event` to the outbox in `conn`'s transaction. Returns the event id.
    pub async fn enqueue<C: ConnectionTrait, E: Event>(
        &self,
        conn: &C,
        event: &E,
    ) -> Result<Uuid, DbErr> {
        let event_id = Uuid::now_v7();
        let tenant = event.tenant().to_owned();
        let subject = format!(
            "{}.{}.{}.{}",
            self.subject_root,
            E::CONTEXT,
            tenant,
            E::NAME
        );
        let name = format!("{}.{}", E::CONTEXT, E::NAME);
        let traceparent = jiesu_runtime::telemetry::current_traceparent();
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO bus_outbox (event_id, subject, event, tenant, payload, traceparent) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            [
                event_id.into(),
                subject.into(),
                name.into(),
                tenant.into(),
                event.encode_to_vec().into(),
                traceparent.into(),
            ],
        ))
        .await?;
        Ok(event_id)
    }

    /// Tells the relay there is work; call after the transaction commits.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

struct Row {
    id: i64,
    event_id: Uuid,
    subject: String,
    event: String,
    tenant: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
}

/// Publishes a service's outbox. Several replicas may run one each: rows are
/// claimed with `FOR UPDATE SKIP LOCKED`.
pub struct Relay {
    db: DatabaseConnection,
    bus: Bus,
    wake: Arc<Notify>,
    service: String,
}

impl Relay {
    pub fn new(db: DatabaseConnection, bus: Bus, outbox: &Outbox, service: &str) -> Self {
        Self {
            db,
            bus,
            wake: outbox.wake.clone(),
            service: service.to_owned(),
        }
    }

    /// Runs the relay until every task in `writers` (the servers and
    /// consumers that write this outbox) has drained after shutdown, then
    /// flushes what they left, all within `grace` of the shutdown signal.
    /// Returns a task that ends when all is done.
    pub fn spawn_after(
        self,
        writers: Vec<tokio::task::JoinHandle<()>>,
        ready: Readiness,
        ctx: &jiesu_runtime::TargetCtx,
    ) -> tokio::task::JoinHandle<()> {
        let (shutdown, grace) = (ctx.shutdown.clone(), ctx.grace);
        let stop = CancellationToken::new();
        let deadline = Arc::new(std::sync::OnceLock::new());
        let relay = tokio::spawn(self.run(stop.clone(), ready, deadline.clone()));
        tokio::spawn(async move {
            shutdown.cancelled().await;
            // One budget from the signal on: draining and flushing share it.
            let _ = deadline.set(tokio::time::Instant::now() + grace);
            for w in writers {
                let _ = w.await;
            }
            stop.cancel();
            let _ = relay.await;
        })
    }

    /// Runs until `stop`, then flushes what is pending until `flush_deadline`
    /// (five seconds when none was set). Readiness stays up while NATS is
    /// unreachable: the outbox absorbs that, and the lag shows in
    /// `jiesu_outbox_pending`.
    async fn run(
        self,
        stop: CancellationToken,
        ready: Readiness,
        flush_deadline: Arc<std::sync::OnceLock<tokio::time::Instant>>,
    ) {
        let cfg = self.bus.cfg.clone();
        let mut failures: u32 = 0;
        let mut last_housekeeping = tokio::time::Instant::now();
        let mut last_gauge = tokio::time::Instant::now();
        ready.set(true);
        loop {
            match self.publish_pending().await {
                Ok(n) => {
                    failures = 0;
                    if n as u32 >= cfg.relay_batch {
                        continue; // more waiting
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(service = %self.service, error = %e, failures, "outbox relay round failed");
                }
            }
            if last_gauge.elapsed() > Duration::from_secs(15) {
                last_gauge = tokio::time::Instant::now();
                self.report_pending().await;
            }
            if last_housekeeping.elapsed() > Duration::from_secs(600) {
                last_housekeeping = tokio::time::Instant::now();
                self.housekeeping().await;
            }
            let wait = if failures > 0 {
                Duration::from_millis(200 * 2u64.pow(failures.min(5)))
            } else {
                cfg.relay_poll
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let flush = async {
            while let Ok(n) = self.publish_pending().await {
                if n == 0 {
                    break;
                }
            }
        };
        let deadline = flush_deadline
            .get()
            .copied()
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(5));
        if tokio::time::timeout_at(deadline, flush).await.is_err() {
            tracing::warn!(service = %self.service, "outbox not fully flushed before the grace period ended; the next start publishes the rest");
        }
        ready.set(false);
    }

    /// One round: claim, publish, await acks, mark. Returns rows published.
    pub async fn publish_pending(&self) -> Result<usize, BusError> {
        let limit = i64::from(self.bus.cfg.relay_batch);
        let txn = self.db.begin().await?;
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id, event_id, subject, event, tenant, payload, traceparent \
                 FROM bus_outbox WHERE published_at IS NULL ORDER BY id \
                 LIMIT $1 FOR UPDATE SKIP LOCKED",
                [limit.into()],
            ))
            .await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(0);
        }
        let rows: Vec<Row> = rows
            .iter()
            .map(|r| {
                Ok(Row {
                    id: r.try_get("", "id")?,
                    event_id: r.try_get("", "event_id")?,
                    subject: r.try_get("", "subject")?,
                    event: r.try_get("", "event")?,
                    tenant: r.try_get("", "tenant")?,
                    payload: r.try_get("", "payload")?,
                    traceparent: r.try_get("", "traceparent")?,
                })
            })
            .collect::<Result<_, DbErr>>()?;

        // Send everything first, then wait for the acks together.
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut headers = HeaderMap::new();
            headers.insert(H_MSG_ID, row.event_id.to_string().as_str());
            headers.insert(H_TENANT, row.tenant.as_str());
            headers.insert(H_EVENT, row.event.as_str());
            if let Some(tp) = &row.traceparent {
                headers.insert(H_TRACEPARENT, tp.as_str());
            }
            let sent = self
                .bus
                .js
                .publish_with_headers(row.subject.clone(), headers, row.payload.clone().into())
                .await;
            pending.push(sent);
        }
        let acks = join_all(pending.into_iter().map(|sent| async move {
            match sent {
                Ok(ack) => ack.await.map_err(|e| e.to_string()).map(|_| ()),
                Err(e) => Err(e.to_string()),
            }
        }))
        .await;

        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut first_error = None;
        for (row, ack) in rows.iter().zip(acks) {
            match ack {
                Ok(()) => done.push(row.id),
                Err(e) => {
                    failed.push(row.id);
                    first_error.get_or_insert(e);
                }
            }
        }
        if !done.is_empty() {
            txn.execute_raw(in_list(
                "UPDATE bus_outbox SET published_at = now() WHERE id IN",
                &done,
                None,
            ))
            .await?;
        }
        if let Some(err) = &first_error {
            txn.execute_raw(in_list(
                "UPDATE bus_outbox SET attempts = attempts + 1, last_error = $1 WHERE id IN",
                &failed,
                Some(err.chars().take(500).collect::<String>().into()),
            ))
            .await?;
        }
        txn.commit().await?;
        metrics::counter!("jiesu_outbox_published_total", "service" => self.service.clone())
            .increment(done.len() as u64);
        match first_error {
            Some(e) if done.is_empty() => Err(BusError::JetStream(e)),
            _ => Ok(done.len()),
        }
    }

    async fn housekeeping(&self) {
        let retention = self.bus.cfg.outbox_retention.as_secs() as i64;
        let deleted = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "DELETE FROM bus_outbox WHERE id IN (SELECT id FROM bus_outbox \
                 WHERE published_at < now() - make_interval(secs => $1) LIMIT 50000)",
                [retention.into()],
            ))
            .await;
        match deleted {
            Ok(r) if r.rows_affected() > 0 => {
                tracing::info!(service = %self.service, rows = r.rows_affected(), "old outbox rows deleted")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(service = %self.service, error = %e, "outbox housekeeping failed")
            }
        }
    }

    async fn report_pending(&self) {
        if let Ok(Some(row)) = self
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*) AS n FROM bus_outbox WHERE published_at IS NULL",
            ))
            .await
            && let Ok(n) = row.try_get::<i64>("", "n")
        {
            metrics::gauge!("jiesu_outbox_pending", "service" => self.service.clone())
                .set(n as f64);
        }
    }
}

/// `<prefix> ($k, $k+1, ...)` with an optional first parameter.
fn in_list(prefix: &str, ids: &[i64], first: Option<Value>) -> Statement {
    let offset = usize::from(first.is_some());
    let placeholders: Vec<String> = (0..ids.len())
        .map(|i| format!("${}", i + 1 + offset))
        .collect();
    let mut values: Vec<Value> = Vec::with_capacity(ids.len() + offset);
    if let Some(v) = first {
        values.push(v);
    }
    values.extend(ids.iter().map(|id| Value::from(*id)));
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("{prefix} ({})", placeholders.join(", ")),
        values,
    )
}
