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

use chrono::{DateTime, Utc};
use jiesu_runtime::Readiness;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Statement};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use jiesu_proto::{
    SERVICE_KEY,
    intake::{Contact, GetContactRequest, contact_service_client::ContactServiceClient},
};
use tonic::{
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use crate::{domain, store::notifications};

#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// Sends `n`; `contact` is the citizen's, asked of intake just now for
    /// a citizen recipient. A sink uses it to send and forgets it.
    async fn deliver(
        &self,
        n: &notifications::Model,
        contact: Option<&Contact>,
    ) -> Result<(), String>;
}

/// Writes a line per notification to the service log (ids, title and a
/// masked contact only).
pub struct LogSink;

#[async_trait::async_trait]
impl Sink for LogSink {
    async fn deliver(
        &self,
        n: &notifications::Model,
        contact: Option<&Contact>,
    ) -> Result<(), String> {
        let to = contact
            .map(|c| jiesu_pii::mask_phone(&c.phone))
            .unwrap_or_default();
        tracing::info!(
            notification_id = %n.id,
            tenant = %n.tenant,
            recipient_kind = %n.recipient_kind,
            recipient_id = %n.recipient_id,
            to = %to,
            title = %n.title,
            "notification delivered"
        );
        Ok(())
    }
}

/// Where a citizen's contact comes from: intake, asked at the moment of
/// sending with this service's key.
#[derive(Clone)]
pub struct Contacts {
    client: ContactServiceClient<Channel>,
    key: MetadataValue<Ascii>,
}

impl Contacts {
    pub fn new(channel: Channel, key: &str) -> Result<Self, String> {
        let key = key
            .parse()
            .map_err(|_| "notification.contact_key must be printable ASCII".to_owned())?;
        Ok(Self {
            client: ContactServiceClient::new(channel),
            key,
        })
    }

    async fn of(&self, n: &notifications::Model) -> Result<Contact, String> {
        let mut req = tonic::Request::new(GetContactRequest {
            ticket_id: n.recipient_id.clone(),
            tenant: n.tenant.clone(),
            purpose: format!("notification:{}", n.id),
        });
        req.metadata_mut().insert(SERVICE_KEY, self.key.clone());
        self.client
            .clone()
            .get_contact(req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| {
                format!(
                    "intake did not hand over the contact: {:?} {}",
                    s.code(),
                    s.message()
                )
            })
    }
}

pub struct Deliverer {
    pub db: DatabaseConnection,
    pub sink: Arc<dyn Sink>,
    /// None when no contact key is configured: citizen notices wait.
    pub contacts: Option<Contacts>,
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

    /// One attempt: the contact first for a citizen, then the sink, with
    /// the link put into the body.
    async fn send(&self, n: &notifications::Model) -> Result<(), String> {
        let filled;
        let n = match &n.link {
            Some(link) => {
                let mut m = n.clone();
                m.body = m.body.replace(domain::LINK, link);
                filled = m;
                &filled
            }
            None => n,
        };
        if n.recipient_kind != domain::RECIPIENT_CITIZEN {
            return self.sink.deliver(n, None).await;
        }
        let contacts = self
            .contacts
            .as_ref()
            .ok_or_else(|| "no contact source: set notification.contact_key".to_owned())?;
        let contact = contacts.of(n).await?;
        self.sink.deliver(n, Some(&contact)).await
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
            // A row whose lease ran out (a slow batch) may be another
            // replica's now: leave it, or it could go out twice.
            let Some(lease) = n.lease_until.filter(|l| *l > Utc::now() + SAFETY) else {
                continue;
            };
            let attempt = n.attempts + 1;
            match self.send(n).await {
                Ok(()) => {
                    self.record(lease, Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "UPDATE notifications SET status = 'sent', sent_at = $2, attempts = $3, \
                         last_error = NULL, lease_until = NULL, link = NULL WHERE id = $1",
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
                    self.record(
                        lease,
                        Statement::from_sql_and_values(
                            DbBackend::Postgres,
                            "UPDATE notifications SET status = $2, attempts = $3, last_error = $4, \
                             next_attempt_at = $5, lease_until = NULL, \
                             link = CASE WHEN $2 = 'failed' THEN NULL ELSE link END WHERE id = $1",
                            [
                                n.id.into(),
                                status.into(),
                                attempt.into(),
                                e.chars().take(500).collect::<String>().into(),
                                next.into(),
                            ],
                        ),
                    )
                    .await?;
                }
            }
        }
        Ok(due.len())
    }

    /// Writes the outcome of a delivery that already happened. While the
    /// database is unreachable (a restart, a failover) it keeps trying within
    /// the lease: giving up would send the message a second time once the
    /// lease ran out.
    async fn record(&self, lease: DateTime<Utc>, statement: Statement) -> Result<(), DbErr> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.db.execute_raw(statement.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if jiesu_db::unreachable(&e) && Utc::now() + delay + SAFETY < lease => {
                    tracing::warn!(error = %e, "database unreachable; recording the delivery again shortly");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Margin kept before a row's lease runs out (`lease_until`, 60 s): no
/// delivery starts, and no retry of its record is waited for, closer to it.
const SAFETY: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
