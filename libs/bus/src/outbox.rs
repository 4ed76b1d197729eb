//! The transactional outbox: events are rows written in the same transaction
//! as the state change; the relay publishes them with `Nats-Msg-Id` = event id
//! and marks them sent. A crash between publish and mark republishes, which
//! JetStream de-duplicates inside its window and consumer inboxes beyond it.
//!
//! Sent rows are kept for `bus.outbox_retention`. The relay remembers its
//! stream's creation time and the highest sequence JetStream acknowledged
//! (`bus_stream_marks`), and looks at the stream every 2 s and after every
//! failed round: a stream that is gone, made anew, or whose last sequence fell
//! below the mark lost acknowledged events (a NATS whose store was lost or
//! restored from an old copy). The relay then recreates it and publishes
//! every retained row again; consumers' inboxes absorb what they had applied.
//! `jiesu outbox-replay` does the same on an operator's word.

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

    /// Adds several events of one kind in one statement (in this order).
    pub async fn enqueue_all<C: ConnectionTrait, E: Event>(
        &self,
        conn: &C,
        events: &[E],
    ) -> Result<Vec<Uuid>, DbErr> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = events.iter().map(|_| Uuid::now_v7()).collect();
        let tenants: Vec<String> = events.iter().map(|e| e.tenant().to_owned()).collect();
        let subjects: Vec<String> = tenants
            .iter()
            .map(|t| format!("{}.{}.{}.{}", self.subject_root, E::CONTEXT, t, E::NAME))
            .collect();
        let payloads: Vec<Vec<u8>> = events.iter().map(prost::Message::encode_to_vec).collect();
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO bus_outbox (event_id, subject, event, tenant, payload, traceparent) \
             SELECT e, s, $3, t, p, $6 \
             FROM unnest($1::uuid[], $2::text[], $4::text[], $5::bytea[]) WITH ORDINALITY \
               AS u(e, s, t, p, n) ORDER BY n",
            [
                ids.clone().into(),
                subjects.into(),
                format!("{}.{}", E::CONTEXT, E::NAME).into(),
                tenants.into(),
                payloads.into(),
                jiesu_runtime::telemetry::current_traceparent().into(),
            ],
        ))
        .await?;
        Ok(ids)
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

/// How often the relay compares its stream with what JetStream acknowledged.
const STREAM_CHECK: Duration = Duration::from_secs(2);

/// What JetStream says of a stream.
struct StreamSeen {
    name: String,
    created: String,
    last: i64,
}

/// Marks every retained sent row of `context`'s subjects unsent, so the relay
/// publishes them again; `since` limits it to rows sent that recently.
/// Returns the rows marked. The operator's `jiesu outbox-replay`.
pub async fn replay<C: ConnectionTrait>(
    conn: &C,
    subject_root: &str,
    context: &str,
    since: Option<Duration>,
) -> Result<u64, DbErr> {
    let subjects = format!("{subject_root}.{context}.%");
    let r = match since {
        None => {
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE bus_outbox SET published_at = NULL \
                 WHERE published_at IS NOT NULL AND subject LIKE $1",
                [subjects.into()],
            ))
            .await?
        }
        Some(d) => {
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE bus_outbox SET published_at = NULL \
                 WHERE published_at IS NOT NULL AND subject LIKE $1 \
                   AND published_at >= now() - make_interval(secs => $2)",
                [subjects.into(), d.as_secs_f64().into()],
            ))
            .await?
        }
    };
    Ok(r.rows_affected())
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
        let mut last_check: Option<tokio::time::Instant> = None;
        ready.set(true);
        loop {
            // Before publishing (a missing stream would refuse the batch)
            // and after failures, when NATS may have come back without it.
            if last_check.is_none_or(|t| t.elapsed() >= STREAM_CHECK) {
                last_check = Some(tokio::time::Instant::now());
                self.check_stream().await;
            }
            match self.publish_pending().await {
                Ok(n) => {
                    failures = 0;
                    if n as u32 >= cfg.relay_batch {
                        continue; // more waiting
                    }
                }
                Err(e) => {
                    failures += 1;
                    last_check = None;
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
            // At most 1.6 s between attempts while NATS is away: a relay
            // asks little of it, and events flow again soon after it returns.
            let wait = if failures > 0 {
                Duration::from_millis(200 * 2u64.pow(failures.min(3)))
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
                Ok(ack) => ack.await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }))
        .await;

        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut first_error = None;
        let mut highest: std::collections::HashMap<String, u64> = Default::default();
        for (row, ack) in rows.iter().zip(acks) {
            match ack {
                Ok(ack) => {
                    done.push(row.id);
                    let seq = highest.entry(ack.stream).or_default();
                    *seq = (*seq).max(ack.sequence);
                }
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
        for (stream, seq) in highest {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtextextended('bus_stream_marks:' || $1, 0))",
                [stream.as_str().into()],
            ))
            .await?;
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO bus_stream_marks (stream, last_seq) VALUES ($1, $2) \
                 ON CONFLICT (stream) DO UPDATE \
                 SET last_seq = GREATEST(bus_stream_marks.last_seq, EXCLUDED.last_seq), \
                     updated_at = now()",
                [stream.into(), (seq as i64).into()],
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

    /// One look at the stream (the relay's loop does this every 2 s):
    /// recreates it if it is gone and, when it was made anew or holds less
    /// than JetStream acknowledged before, marks every retained row for
    /// publishing again.
    pub async fn check_stream(&self) {
        let stream = match self.bus.ensure_stream(&self.service).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(service = %self.service, error = %e, "stream check skipped");
                return;
            }
        };
        if let Err(e) = self.replay_if_lost(stream).await {
            tracing::warn!(service = %self.service, error = %e, "stream check failed");
        }
    }

    async fn replay_if_lost(
        &self,
        mut stream: async_nats::jetstream::stream::Stream,
    ) -> Result<(), BusError> {
        let name = stream.cached_info().config.name.clone();
        let txn = self.db.begin().await?;
        // Every replica's decision and every relay round's mark for this
        // stream wait here; the stream is read only once the lock is held, so
        // a mark committed before it was acknowledged before the read.
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended('bus_stream_marks:' || $1, 0))",
            [name.as_str().into()],
        ))
        .await?;
        let info = stream
            .info()
            .await
            .map_err(|e| BusError::JetStream(format!("stream {name}: {e}")))?;
        let seen = StreamSeen {
            name,
            created: info.created.to_string(),
            last: info.state.last_sequence as i64,
        };
        let mark = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT last_seq, stream_created FROM bus_stream_marks WHERE stream = $1",
                [seen.name.as_str().into()],
            ))
            .await?
            .map(|r| {
                Ok::<_, DbErr>((
                    r.try_get::<i64>("", "last_seq")?,
                    r.try_get::<Option<String>>("", "stream_created")?,
                ))
            })
            .transpose()?;
        let lost = match &mark {
            // Rows published before the stream was first looked at were
            // acknowledged by this stream.
            None | Some((_, None)) => false,
            Some((last_seq, Some(created))) => *created != seen.created || *last_seq > seen.last,
        };
        let replayed = if lost {
            replay(&txn, &self.bus.cfg.subject_root, &self.service, None).await?
        } else {
            0
        };
        // After a loss the mark starts again from what the stream holds.
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO bus_stream_marks (stream, last_seq, stream_created) VALUES ($1, $2, $3) \
             ON CONFLICT (stream) DO UPDATE SET stream_created = EXCLUDED.stream_created, \
                 last_seq = CASE WHEN $4 THEN EXCLUDED.last_seq \
                                 ELSE GREATEST(bus_stream_marks.last_seq, EXCLUDED.last_seq) END, \
                 updated_at = now()",
            [
                seen.name.as_str().into(),
                seen.last.into(),
                seen.created.as_str().into(),
                lost.into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        if lost {
            tracing::warn!(
                service = %self.service, stream = %seen.name,
                acknowledged = mark.map(|m| m.0).unwrap_or_default(), holds = seen.last, replayed,
                "the stream lost acknowledged events; publishing the retained outbox again"
            );
            metrics::counter!("jiesu_outbox_replayed_total", "service" => self.service.clone())
                .increment(replayed);
            self.wake.notify_one();
        }
        Ok(())
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
