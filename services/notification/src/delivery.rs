//! Delivering stored notifications through their recipients' channels.
//!
//! Due rows are leased in a short transaction (`FOR UPDATE SKIP LOCKED`, so
//! replicas share the work) and marked `sending` until the lease runs out;
//! then each is handed to the channel at its place in the recipient's chain
//! (decision 0032), several at once, and its outcome written in its own
//! statement: a failure never re-sends the others, and a row a crashed
//! process left `sending` is taken again when its lease runs out, with the
//! same idempotency key. A retryable failure waits (exponential backoff
//! with jitter, or the provider's own wait) and is tried again on the same
//! channel up to `MAX_ATTEMPTS`; a permanent one (an invalid number, no
//! address) moves to the next channel of the chain at once; when the chain
//! is spent the notification is `failed`, visible to operators, who can
//! queue it again.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use jiesu_pii::Keyring;
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
    transport::Channel as GrpcChannel,
};

use crate::{
    channels::{AddressKind, Channel, Channels, Handover, Outgoing, SendError},
    domain,
    store::{addresses, notifications},
};

/// Where a citizen's contact comes from: intake, asked at the moment of
/// sending with this service's key.
#[derive(Clone)]
pub struct Contacts {
    client: ContactServiceClient<GrpcChannel>,
    key: MetadataValue<Ascii>,
}

impl Contacts {
    pub fn new(channel: GrpcChannel, key: &str) -> Result<Self, String> {
        let key = key
            .parse()
            .map_err(|_| "notification.contact_key must be printable ASCII".to_owned())?;
        Ok(Self {
            client: ContactServiceClient::new(channel),
            key,
        })
    }

    /// The contact; a ticket intake does not know (or no longer keeps a
    /// contact for) is not retried.
    async fn of(&self, n: &notifications::Model) -> Result<Contact, SendError> {
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
                let reason = format!(
                    "intake did not hand over the contact: {:?} {}",
                    s.code(),
                    s.message()
                );
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) {
                    SendError::permanent(reason)
                } else {
                    SendError::retry(reason)
                }
            })
    }
}

/// Notifications handed to channels at once by one deliverer.
const CONCURRENCY: usize = 64;

/// Rows leased per round.
const BATCH: i64 = 500;

pub struct Deliverer {
    pub db: DatabaseConnection,
    pub channels: Arc<Channels>,
    /// None when no contact key is configured: citizen notices wait.
    pub contacts: Option<Contacts>,
    /// Opens the recipient directory's addresses.
    pub keyring: Arc<Keyring>,
    pub wake: Arc<Notify>,
    /// The first retry's wait; each next one doubles it (with jitter).
    pub retry_base: Duration,
    /// The gateway's public address: staff messages link to the ticket in
    /// the console under it.
    pub public_url: String,
    /// China time in which citizens are not messaged unless the notice is
    /// urgent (held until it ends).
    pub quiet_hours: Option<QuietHours>,
    /// The tenants' templates, shared with the API (which clears it).
    pub templates: Arc<crate::templates::Cache>,
}

/// What a round of deliveries shares: the staff recipients' addresses,
/// read in one query.
#[derive(Default)]
struct Round {
    addresses: HashMap<(String, String, String, String), String>,
}

/// A daily window of China time, e.g. 22:00–08:00 (it may wrap midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: chrono::NaiveTime,
    pub end: chrono::NaiveTime,
}

impl QuietHours {
    /// `HH:MM-HH:MM` (seconds allowed); empty: none.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let time = |t: &str| {
            chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M:%S")
                .or_else(|_| chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M"))
                .map_err(|_| format!("`{t}` is not a time of day (HH:MM)"))
        };
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| "must be HH:MM-HH:MM, e.g. 22:00-08:00".to_owned())?;
        let (start, end) = (time(a)?, time(b)?);
        if start == end {
            return Err("start and end are the same time".into());
        }
        Ok(Some(Self { start, end }))
    }

    /// When the window holding `now` ends, or None outside it.
    pub fn until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let china = jiesu_common::time::in_china(now);
        let t = china.time();
        let inside = if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        };
        if !inside {
            return None;
        }
        let mut day = china.date_naive();
        if t >= self.end {
            day = day.succ_opt()?;
        }
        let end = day
            .and_time(self.end)
            .and_local_timezone(*china.offset())
            .single()?;
        Some(end.with_timezone(&Utc))
    }
}

/// What one attempt came to, to be written.
enum Outcome {
    Sent(Handover),
    /// The channel's own limit: wait, no attempt counted.
    Deferred(Duration),
    /// Try this channel again after the wait.
    Retry {
        reason: String,
        after: Duration,
    },
    /// Next channel of the chain, or failed when there is none.
    GiveUp {
        reason: String,
    },
}

impl Deliverer {
    pub async fn run(self, shutdown: CancellationToken, ready: Readiness) {
        ready.set(true);
        loop {
            let wait = match self.deliver_due().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => Duration::from_millis(500),
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
            .from_raw_sql(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE notifications SET status = 'sending', \
                   lease_until = now() + interval '60 seconds', \
                   next_attempt_at = now() + interval '60 seconds' \
                 WHERE id IN (SELECT id FROM notifications \
                   WHERE status IN ('queued', 'sending') AND next_attempt_at <= now() \
                   ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
                 RETURNING *",
                [BATCH.into()],
            ))
            .all(&self.db)
            .await?;
        let mut staff: Vec<(String, String, String)> = due
            .iter()
            .filter(|n| n.recipient_kind != domain::RECIPIENT_CITIZEN)
            .map(|n| {
                (
                    n.tenant.clone(),
                    n.recipient_kind.clone(),
                    n.recipient_id.clone(),
                )
            })
            .collect();
        staff.sort();
        staff.dedup();
        let round = Round {
            addresses: match addresses::of_recipients(&self.db, &self.keyring, &staff).await {
                Ok(a) => a,
                Err(e) => {
                    // Nothing was sent: the leases run out and the rows are
                    // taken again.
                    tracing::warn!(error = %e, "recipient directory unreadable; the round waits for its leases");
                    return Ok(0);
                }
            },
        };
        let attempts: Vec<_> = due.iter().map(|n| self.deliver(n, &round)).collect();
        let results: Vec<Result<(), DbErr>> = futures::stream::iter(attempts)
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, DbErr>>()?;
        Ok(due.len())
    }

    /// One notification: its channel, its attempt, its record.
    async fn deliver(&self, n: &notifications::Model, round: &Round) -> Result<(), DbErr> {
        // A row whose lease ran out (a slow round) may be another
        // replica's now: leave it, or it could go out twice.
        let Some(lease) = n.lease_until.filter(|l| *l > Utc::now() + SAFETY) else {
            return Ok(());
        };
        let chain = self.channels.chain(&n.tenant, &n.recipient_kind);
        let step = usize::try_from(n.route_step)
            .unwrap_or(0)
            .min(chain.len().saturating_sub(1));
        let Some(channel) = chain.get(step) else {
            return Ok(());
        };
        if let Some(until) = self.held(n) {
            metrics::counter!("jiesu_notification_attempts_total", "channel" => channel.name().to_owned(), "result" => "held").increment(1);
            let statement = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE notifications SET status = 'queued', via = $2, lease_until = NULL, \
                   next_attempt_at = $3 WHERE id = $1",
                [n.id.into(), channel.name().to_owned().into(), until.into()],
            );
            return self.record(lease, statement).await;
        }
        // The attempt ends before the lease does: past it, the row may be
        // another deliverer's, and the outcome could no longer be written.
        let budget = (lease - Utc::now() - SAFETY).to_std().unwrap_or_default();
        let attempted = tokio::time::timeout(budget, self.attempt(n, channel.as_ref(), round))
            .await
            .unwrap_or_else(|_| {
                Err(SendError::retry(
                    "the channel did not answer before the lease ran out",
                ))
            });
        let outcome = match attempted {
            Ok(h) => Outcome::Sent(h),
            Err(SendError::Deferred { after }) => Outcome::Deferred(after),
            Err(SendError::Retry { reason, after }) if n.attempts + 1 < domain::MAX_ATTEMPTS => {
                let backoff = jittered(self.retry_base, n.attempts + 1);
                Outcome::Retry {
                    reason,
                    after: after.map_or(backoff, |a| a.max(backoff)),
                }
            }
            Err(SendError::Retry { reason, .. }) => Outcome::GiveUp {
                reason: format!("{} 次尝试均未成功：{reason}", domain::MAX_ATTEMPTS),
            },
            Err(SendError::Permanent { reason }) => Outcome::GiveUp { reason },
        };
        let via = channel.name().to_owned();
        let result = match &outcome {
            Outcome::Sent(_) => "sent",
            Outcome::Deferred(_) => "deferred",
            Outcome::Retry { .. } => "retry",
            Outcome::GiveUp { .. } if step + 1 < chain.len() => "fallback",
            Outcome::GiveUp { .. } => "failed",
        };
        metrics::counter!("jiesu_notification_attempts_total", "channel" => via.clone(), "result" => result).increment(1);
        let statement = match outcome {
            // Recorded at once, not with the round: a crash between the
            // provider's answer and this statement is the only way a message
            // goes out twice, so that window stays one statement long.
            Outcome::Sent(h) => {
                metrics::counter!("jiesu_notifications_sent_total", "channel" => via.clone())
                    .increment(1);
                tracing::info!(
                    notification_id = %n.id,
                    tenant = %n.tenant,
                    recipient_kind = %n.recipient_kind,
                    recipient_id = %n.recipient_id,
                    channel = %via,
                    provider_id = %h.provider_id,
                    "notification delivered"
                );
                Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "UPDATE notifications SET status = 'sent', sent_at = now(), via = $2, \
                       attempts = attempts + 1, provider_id = $3, provider_answer = $4, \
                       last_error = NULL, lease_until = NULL, link = NULL WHERE id = $1",
                    [
                        n.id.into(),
                        via.into(),
                        h.provider_id.into(),
                        h.answer.into(),
                    ],
                )
            }
            Outcome::Deferred(after) => Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE notifications SET status = 'queued', via = $2, lease_until = NULL, \
                   next_attempt_at = $3 WHERE id = $1",
                [n.id.into(), via.into(), later(after).into()],
            ),
            Outcome::Retry { reason, after } => {
                tracing::warn!(notification_id = %n.id, channel = %via, attempt = n.attempts + 1, error = %reason, "notification delivery failed; retrying");
                Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "UPDATE notifications SET status = 'queued', via = $2, attempts = attempts + 1, \
                       last_error = $3, next_attempt_at = $4, lease_until = NULL WHERE id = $1",
                    [
                        n.id.into(),
                        via.clone().into(),
                        format!("{via}: {}", clip(&reason)).into(),
                        later(after).into(),
                    ],
                )
            }
            Outcome::GiveUp { reason } => {
                let line = format!("{via}: {}", clip(&reason));
                let last = step + 1 >= chain.len();
                tracing::warn!(notification_id = %n.id, channel = %via, error = %reason, fallback = !last, "notification channel gave up");
                Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "UPDATE notifications SET via = $2, last_error = $3, \
                       fallbacks = array_append(fallbacks, $3), lease_until = NULL, \
                       status = CASE WHEN $4 THEN 'failed' ELSE 'queued' END, \
                       route_step = CASE WHEN $4 THEN route_step ELSE $5 END, \
                       attempts = CASE WHEN $4 THEN attempts + 1 ELSE 0 END, \
                       next_attempt_at = now(), \
                       link = CASE WHEN $4 THEN NULL ELSE link END WHERE id = $1",
                    [
                        n.id.into(),
                        via.into(),
                        line.into(),
                        last.into(),
                        i32::try_from(step + 1).unwrap_or(i32::MAX).into(),
                    ],
                )
            }
        };
        self.record(lease, statement).await
    }

    /// Until when a message to a citizen waits out the quiet hours (an
    /// urgent notice does not).
    fn held(&self, n: &notifications::Model) -> Option<DateTime<Utc>> {
        if n.recipient_kind != domain::RECIPIENT_CITIZEN {
            return None;
        }
        let urgent = n
            .vars
            .as_ref()
            .and_then(|v| v.get("emergency"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        if urgent {
            return None;
        }
        self.quiet_hours?.until(Utc::now())
    }

    /// One attempt on one channel: the recipient's address, then the
    /// channel, with the link put into the body.
    async fn attempt(
        &self,
        n: &notifications::Model,
        channel: &dyn Channel,
        round: &Round,
    ) -> Result<Handover, SendError> {
        let template = match &n.vars {
            Some(_) => self
                .templates
                .get(&self.db, &n.tenant, &n.kind, channel.template_channel())
                .await
                .map_err(|e| SendError::retry(format!("templates: {e}")))?,
            None => None,
        };
        let (title, body) = self.text(n, template.as_ref());
        let to = self.address(n, channel, round).await?;
        let ticket_url = match n.ticket_id {
            Some(t) if n.recipient_kind != domain::RECIPIENT_CITIZEN => {
                Some(format!("{}/console/tickets/{t}", self.public_url))
            }
            _ => None,
        };
        channel
            .send(&Outgoing {
                id: n.id,
                tenant: &n.tenant,
                kind: &n.kind,
                recipient_kind: &n.recipient_kind,
                recipient_id: &n.recipient_id,
                title: &title,
                body: &body,
                ticket_id: n.ticket_id,
                ticket_url: ticket_url.as_deref(),
                to: &to,
                template_code: template
                    .as_ref()
                    .map(|t| t.sms_template_code.as_str())
                    .filter(|c| !c.is_empty()),
                sign_name: template
                    .as_ref()
                    .map(|t| t.sign_name.as_str())
                    .filter(|c| !c.is_empty()),
            })
            .await
    }

    /// The message's text: the tenant's template rendered with its
    /// variables, else its default text; the one-time link put in.
    fn text(
        &self,
        n: &notifications::Model,
        template: Option<&crate::store::templates::Stored>,
    ) -> (String, String) {
        let link = n.link.as_deref();
        if let (Some(t), Some(vars)) = (template, &n.vars) {
            let mut vars = vars.clone();
            if let (Some(link), Some(obj)) = (link, vars.as_object_mut()) {
                obj.insert("link".into(), link.into());
            }
            match (
                crate::templates::render(&t.title, &vars),
                crate::templates::render(&t.body, &vars),
            ) {
                (Ok(title), Ok(body)) => return (title, body),
                (Err(e), _) | (_, Err(e)) => tracing::warn!(
                    notification_id = %n.id, kind = %n.kind, channel = %t.channel, error = %e,
                    "the tenant's template did not render; the default text goes out"
                ),
            }
        }
        let body = match link {
            Some(link) => n.body.replace(domain::LINK, link),
            None => n.body.clone(),
        };
        (n.title.clone(), body)
    }

    /// Where `channel` reaches the recipient: a citizen's phone from intake
    /// at this moment, a staff recipient's address from the directory.
    async fn address(
        &self,
        n: &notifications::Model,
        channel: &dyn Channel,
        round: &Round,
    ) -> Result<String, SendError> {
        let kind = channel.address();
        if n.recipient_kind == domain::RECIPIENT_CITIZEN && channel.name() != crate::channels::LOG {
            // A citizen's notice (a one-time link in it, perhaps) goes only
            // to their own phone, never to a group or another system.
            if kind != AddressKind::Phone {
                return Err(SendError::permanent("诉求人只能通过短信联系"));
            }
            let contacts = self.contacts.as_ref().ok_or_else(|| {
                SendError::retry("no contact source: set notification.contact_key")
            })?;
            return contacts.of(n).await.map(|c| c.phone);
        }
        if kind == AddressKind::None {
            return Ok(String::new());
        }
        let found = round.addresses.get(&(
            n.tenant.clone(),
            n.recipient_kind.clone(),
            n.recipient_id.clone(),
            kind.field().to_owned(),
        ));
        match found {
            Some(a) => Ok(a.clone()),
            None if !channel.needs_address() => Ok(String::new()),
            None => Err(SendError::permanent(format!(
                "收件方未登记 {} 地址",
                kind.field()
            ))),
        }
    }

    /// Writes the outcome of a delivery that already happened. While the
    /// database is unreachable (a restart, a failover) it keeps trying within
    /// the lease: giving up would send the message a second time once the
    /// lease ran out.
    /// Only while the row is still this deliverer's (`sending` under the
    /// lease it took): an outcome that comes too late is dropped, never
    /// written over another deliverer's.
    async fn record(&self, lease: DateTime<Utc>, statement: Statement) -> Result<(), DbErr> {
        let statement = guarded(statement, lease);
        let mut delay = Duration::from_millis(100);
        loop {
            match self.db.execute_raw(statement.clone()).await {
                Ok(r) => {
                    if r.rows_affected() == 0 {
                        tracing::warn!(
                            "a delivery's lease ran out before its outcome was written; the row is another deliverer's now"
                        );
                    }
                    return Ok(());
                }
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

/// `statement` (an update `WHERE id = $1`) limited to the row as this
/// deliverer leased it.
fn guarded(mut statement: Statement, lease: DateTime<Utc>) -> Statement {
    let values = statement
        .values
        .get_or_insert_with(|| sea_orm::Values(Vec::new()));
    values.0.push(lease.into());
    statement.sql.push_str(&format!(
        " AND status = 'sending' AND lease_until = ${}",
        values.0.len()
    ));
    statement
}

fn later(after: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::TimeDelta::from_std(after).unwrap_or(chrono::TimeDelta::seconds(60))
}

fn clip(reason: &str) -> String {
    reason.chars().take(500).collect()
}

/// The wait before attempt `attempt + 1`: `base` doubled per attempt, at
/// most an hour, times a random factor in [0.75, 1.25) so that a provider
/// coming back is not hit by every waiting message at once.
pub fn jittered(base: Duration, attempt: i32) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 16) - 1).unwrap_or(0);
    let wait = base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(3600));
    let r = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
    wait.mul_f64(0.75 + r / 2.0)
}

/// Margin kept before a row's lease runs out (`lease_until`, 60 s): no
/// delivery starts, and no retry of its record is waited for, closer to it.
const SAFETY: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_hold_until_eight_in_china_and_wrap_midnight() {
        let q = QuietHours::parse("22:00-08:00").unwrap().unwrap();
        let utc = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // 23:30 China time (15:30 UTC): held until 08:00 the next morning.
        assert_eq!(
            q.until(utc("2026-12-07T15:30:00Z")),
            Some(utc("2026-12-08T00:00:00Z"))
        );
        // 06:00 China time: until 08:00 the same morning.
        assert_eq!(
            q.until(utc("2026-12-07T22:00:00Z")),
            Some(utc("2026-12-08T00:00:00Z"))
        );
        // 08:00 and 21:59 China time are open.
        assert_eq!(q.until(utc("2026-12-08T00:00:00Z")), None);
        assert_eq!(q.until(utc("2026-12-08T13:59:00Z")), None);
        assert!(QuietHours::parse("").unwrap().is_none());
        assert!(QuietHours::parse("22:00").is_err());
        assert!(QuietHours::parse("25:00-08:00").is_err());
    }

    #[test]
    fn waits_double_with_jitter_and_stop_at_an_hour() {
        let base = Duration::from_secs(5);
        for _ in 0..50 {
            let w1 = jittered(base, 1);
            assert!(w1 >= Duration::from_millis(3750) && w1 < Duration::from_millis(6250));
            let w3 = jittered(base, 3);
            assert!(w3 >= Duration::from_secs(15) && w3 < Duration::from_secs(25));
            assert!(jittered(base, 40) < Duration::from_secs(4500));
        }
    }
}
