//! Delivering stored notifications through their channel's sink.
//!
//! Due rows are leased in a short transaction (`FOR UPDATE SKIP LOCKED`, so
//! replicas share the work), then sent one by one, each marked in its own
//! statement: a failure never re-sends the others, and rows a crashed process
//! had leased are taken again when the lease runs out. A failed delivery is
//! retried with backoff and marked failed after `MAX_ATTEMPTS`. The only sink
//! today is the log; real channels get the notification id as their
//! idempotency key.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use jiesu_runtime::Readiness;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Statement};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{domain, store::notifications};

#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    async fn deliver(&self, n: &notifications::Model) -> Result<(), String>;
}

/// Writes a line per notification to the service log (ids and title only).
pub struct LogSink;

#[async_trait::async_trait]
impl Sink for LogSink {
    async fn deliver(&self, n: &notifications::Model) -> Result<(), String> {
        tracing::info!(
            notification_id = %n.id,
            tenant = %n.tenant,
            recipient_kind = %n.recipient_kind,
            recipient_id = %n.recipient_id,
            title = %n.title,
            "notification delivered"
        );
        Ok(())
    }
}

pub struct Deliverer {
    pub db: DatabaseConnection,
    pub sink: Arc<dyn Sink>,
    pub wake: Arc<Notify>,
}

impl Deliverer {
    pub async fn run(self, shutdown: CancellationToken, ready: Readiness) {
        ready.set(true);
        loop {
            let wait = match self.deliver_due().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %e, "notification delivery round failed");
                    Duration::from_secs(2)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        ready.set(false);
    }

    /// Delivers what is due; returns how many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, DbErr> {
        let due = notifications::Entity::find()
            .from_raw_sql(Statement::from_string(
                DbBackend::Postgres,
                "UPDATE notifications SET lease_until = now() + interval '60 seconds' \
                 WHERE id IN (SELECT id FROM notifications \
                   WHERE status = 'pending' AND next_attempt_at <= now() \
                     AND (lease_until IS NULL OR lease_until < now()) \
                   ORDER BY next_attempt_at LIMIT 100 FOR UPDATE SKIP LOCKED) \
                 RETURNING *",
            ))
            .all(&self.db)
            .await?;
        for n in &due {
            let attempt = n.attempts + 1;
            match self.sink.deliver(n).await {
                Ok(()) => {
                    self.db
                        .execute_raw(Statement::from_sql_and_values(
                            DbBackend::Postgres,
                            "UPDATE notifications SET status = 'sent', sent_at = $2, attempts = $3, \
                             last_error = NULL, lease_until = NULL WHERE id = $1",
                            [n.id.into(), Utc::now().into(), attempt.into()],
                        ))
                        .await?;
                    metrics::counter!("jiesu_notifications_sent_total", "channel" => n.channel.clone()).increment(1);
                }
                Err(e) => {
                    let status = if attempt >= domain::MAX_ATTEMPTS {
                        domain::STATUS_FAILED
                    } else {
                        domain::STATUS_PENDING
                    };
                    let next = Utc::now()
                        + chrono::TimeDelta::from_std(domain::retry_delay(attempt))
                            .unwrap_or(chrono::TimeDelta::seconds(60));
                    tracing::warn!(notification_id = %n.id, attempt, error = %e, "notification delivery failed");
                    self.db
                        .execute_raw(Statement::from_sql_and_values(
                            DbBackend::Postgres,
                            "UPDATE notifications SET status = $2, attempts = $3, last_error = $4, \
                             next_attempt_at = $5, lease_until = NULL WHERE id = $1",
                            [
                                n.id.into(),
                                status.into(),
                                attempt.into(),
                                e.chars().take(500).collect::<String>().into(),
                                next.into(),
                            ],
                        ))
                        .await?;
                }
            }
        }
        Ok(due.len())
    }
}
