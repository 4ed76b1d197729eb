//! gRPC handlers: translate requests, check the caller, call `domain` and
//! `store`, and map errors to `tonic::Status` in one place.
//!
//! `accept` is the one path by which a ticket comes into being, whoever
//! submits it: an agent or citizen with a JWT, a tenant platform's signed
//! webhook, or an Open311 client with an api key.
//!
//! Here: `Core` (what the handlers share) and `IntakeError` with its one
//! mapping to `Status`; the tonic impl of `IntakeService` is in `service`,
//! each resource's handlers in their own module.

pub mod accept;
pub mod attachments;
pub mod channels;
pub mod citizen;
pub mod contact;
pub mod duplicates;
pub mod kb;
pub mod lookup;
pub mod public;
pub mod read;
mod service;
pub mod suggest;
pub mod tree;

use std::{sync::Arc, time::Duration};

use jiesu_auth::{AuthError, Role};
use jiesu_bus::Outbox;
use jiesu_pii::{Keyring, PiiError};
use jiesu_proto::status;
use sea_orm::{DatabaseConnection, DbErr};
use tonic::{Code, Status};

pub use self::service::IntakeApi;
use crate::domain::{self, FieldError, Text, tr, webhook::Refusal};

/// Why an intake call failed. What the caller reads is [`IntakeError::text`]
/// (both languages); `Display` is its English, or the internal detail, for
/// logs.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{}", self.text().en)]
    Field(FieldError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// What was not found: `tr!("诉求", "ticket")`.
    #[error("{}", self.text().en)]
    NotFound(Text),
    #[error("{}", self.text().en)]
    Forbidden(Text),
    #[error("{}", self.text().en)]
    KeyReused,
    #[error("{}", self.text().en)]
    ExternalIdReused,
    #[error("{}", self.text().en)]
    Conflict(Text),
    /// A merge or unmerge the tickets' states do not allow; `code` says why.
    #[error("{}", self.text().en)]
    MergeRefused { code: &'static str, message: Text },
    /// The ticket is already closed (answered, withdrawn, closed...).
    #[error("{}", self.text().en)]
    Closed(String),
    /// A webhook delivery that is not authentic.
    #[error("{}", self.text().en)]
    Refused(Refusal),
    /// An Open311 api_key that is missing, unknown, expired or of a disabled
    /// channel.
    #[error("{}", self.text().en)]
    ApiKeyInvalid,
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("personal data: {0}")]
    Pii(#[from] PiiError),
    #[error("random source: {0}")]
    Random(#[from] getrandom::Error),
    #[error("object store: {0}")]
    Storage(#[from] object_store::Error),
}

impl IntakeError {
    /// What the caller reads; internal faults only say that they failed.
    pub fn text(&self) -> Text {
        match self {
            Self::Field(f) => Text::about(&f.field, &f.message),
            Self::Auth(a) => a.text(),
            Self::NotFound(what) => Text::new(
                format!("未找到{}", what.zh),
                format!("{} not found", what.en),
            ),
            Self::Forbidden(m) | Self::Conflict(m) | Self::MergeRefused { message: m, .. } => {
                m.clone()
            }
            Self::KeyReused => tr!(
                "该 Idempotency-Key 已用于另一个不同的请求",
                "this idempotency key was already used for a different request"
            ),
            Self::ExternalIdReused => tr!(
                "该 external_id 已经以不同的内容送达过",
                "this external_id was already delivered with different content"
            ),
            Self::Closed(status) => {
                let zh = domain::status_zh(status);
                tr!(
                    "该诉求{zh}，不能再更改",
                    "the ticket is {status} and can no longer change"
                )
            }
            Self::Refused(r) => r.message(),
            Self::ApiKeyInvalid => tr!(
                "api_key 对该辖区无效",
                "api_key is not valid for this jurisdiction"
            ),
            Self::Storage(_) => tr!(
                "附件存储暂不可用，请重试",
                "the attachment store is unavailable; retry"
            ),
            Self::Db(_) | Self::Pii(_) | Self::Random(_) => status::internal_text(),
        }
    }
}

impl From<FieldError> for IntakeError {
    fn from(e: FieldError) -> Self {
        Self::Field(e)
    }
}

impl From<IntakeError> for Status {
    fn from(e: IntakeError) -> Self {
        let text = e.text();
        match e {
            IntakeError::Field(f) => status::invalid_field(&f.field, f.message),
            IntakeError::Auth(a) => a.into(),
            IntakeError::NotFound(what) => status::not_found(what),
            IntakeError::Forbidden(m) => status::permission_denied(m),
            IntakeError::KeyReused => status::coded(
                Code::AlreadyExists,
                "idempotency_key_reused",
                text,
                Some("idempotency_key"),
            ),
            IntakeError::ExternalIdReused => status::coded(
                Code::AlreadyExists,
                "external_id_reused",
                text,
                Some("external_id"),
            ),
            IntakeError::Conflict(m) => status::coded(Code::AlreadyExists, "conflict", m, None),
            IntakeError::MergeRefused { code, message } => {
                status::coded(Code::FailedPrecondition, code, message, None)
            }
            IntakeError::Closed(_) => {
                status::coded(Code::FailedPrecondition, "ticket_closed", text, None)
            }
            IntakeError::Refused(r) => status::unauthenticated(r.code(), r.message()),
            IntakeError::ApiKeyInvalid => status::coded(
                Code::PermissionDenied,
                "api_key_invalid",
                text,
                Some("api_key"),
            ),
            IntakeError::Db(e) if jiesu_db::unreachable(&e) => {
                tracing::warn!(error = %e, "intake database unreachable");
                status::database_unavailable()
            }
            IntakeError::Db(e) => {
                tracing::error!(error = %e, "intake database error");
                status::internal()
            }
            IntakeError::Pii(e) => {
                tracing::error!(error = %e, "intake personal-data error");
                status::internal()
            }
            IntakeError::Storage(e) => {
                tracing::error!(error = %e, "attachment store failed");
                status::coded(Code::Unavailable, "unavailable", text, None)
            }
            IntakeError::Random(e) => {
                tracing::error!(error = %e, "intake random source failed");
                status::internal()
            }
        }
    }
}

/// Every role may read the category tree.
pub(crate) const READERS: &[Role] = &Role::ALL;

/// Who may read a ticket and its attachments inside their scope: the staff
/// who take, route, handle (a unit's handler: its unit's, as the gateway
/// asks dispatch), whistle, oversee or administer requests, and citizens
/// (their own). Mediators and platform operators handle no tickets
/// (docs/access-roles.csv).
pub(crate) const TICKET_READERS: &[Role] = &[
    Role::Citizen,
    Role::Agent,
    Role::Dispatcher,
    Role::Handler,
    Role::GridWorker,
    Role::Supervisor,
    Role::TenantAdmin,
];

/// What the handlers share.
pub struct Core {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub keyring: Arc<Keyring>,
    /// How far a webhook timestamp may be from now.
    pub webhook_window: Duration,
    /// How long a rotated credential keeps working by default.
    pub rotation_overlap: Duration,
    pub suggesters: suggest::Suggesters,
    /// A tenant's suggestion model is rebuilt when older than this.
    pub suggest_refresh: Duration,
    /// Latest tickets a model learns from.
    pub suggest_training_limit: u32,
    /// Where attachment bytes live.
    pub objects: Arc<dyn object_store::ObjectStore>,
    pub attachments: crate::AttachmentsConfig,
    pub duplicate_window: Duration,
    /// Permits for creates running at once.
    pub creates: Arc<tokio::sync::Semaphore>,
    /// SHA-256 digests (hex) of the service keys that may read contacts.
    pub contact_clients: Vec<String>,
}

impl Core {
    /// Runs one create to its end in its own task, so a caller that gives
    /// up cannot cut its transaction short, and refuses at once (503
    /// `overloaded`) while `max_concurrent_creates` are running.
    pub async fn guarded<T, F, Fut>(self: &Arc<Self>, f: F) -> Result<T, Status>
    where
        F: FnOnce(Arc<Core>) -> Fut,
        Fut: std::future::Future<Output = Result<T, IntakeError>> + Send + 'static,
        T: Send + 'static,
    {
        let Ok(permit) = self.creates.clone().try_acquire_owned() else {
            metrics::counter!("jiesu_intake_creates_refused_total").increment(1);
            return Err(status::overloaded(tr!(
                "受理服务繁忙，请稍后用同一个 Idempotency-Key 重试",
                "intake is at capacity; retry shortly with the same idempotency key"
            )));
        };
        let work = f(self.clone());
        // The task keeps the request's span, so its events carry the
        // request's trace context.
        let task = async move {
            let _permit = permit;
            work.await
        };
        match tokio::spawn(tracing::Instrument::instrument(
            task,
            tracing::Span::current(),
        ))
        .await
        {
            Ok(result) => result.map_err(Status::from),
            Err(e) => {
                tracing::error!(error = %e, "create task failed");
                Err(status::internal())
            }
        }
    }
}
