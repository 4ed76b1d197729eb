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
use crate::domain::{FieldError, webhook::Refusal};

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{}: {}", .0.field, .0.message)]
    Field(FieldError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("this idempotency key was already used for a different request")]
    KeyReused,
    #[error("this external_id was already delivered with different content")]
    ExternalIdReused,
    #[error("{0}")]
    Conflict(String),
    /// A merge or unmerge the tickets' states do not allow; `code` says why.
    #[error("{message}")]
    MergeRefused { code: &'static str, message: String },
    /// The ticket is already closed (answered, withdrawn, closed...).
    #[error("the ticket is {0} and can no longer change")]
    Closed(String),
    /// A webhook delivery that is not authentic.
    #[error("{}", .0.message())]
    Refused(Refusal),
    /// An Open311 api_key that is missing, unknown, expired or of a disabled
    /// channel.
    #[error("api_key is not valid for this jurisdiction")]
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

impl From<FieldError> for IntakeError {
    fn from(e: FieldError) -> Self {
        Self::Field(e)
    }
}

impl From<IntakeError> for Status {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Field(f) => status::invalid_field(&f.field, f.message),
            IntakeError::Auth(a) => a.into(),
            IntakeError::NotFound(what) => status::not_found(what),
            IntakeError::Forbidden(m) => status::permission_denied(m),
            IntakeError::KeyReused => status::coded(
                Code::AlreadyExists,
                "idempotency_key_reused",
                IntakeError::KeyReused.to_string(),
                Some("idempotency_key"),
            ),
            IntakeError::ExternalIdReused => status::coded(
                Code::AlreadyExists,
                "external_id_reused",
                IntakeError::ExternalIdReused.to_string(),
                Some("external_id"),
            ),
            IntakeError::Conflict(m) => status::coded(Code::AlreadyExists, "conflict", m, None),
            IntakeError::MergeRefused { code, message } => {
                status::coded(Code::FailedPrecondition, code, message, None)
            }
            e @ IntakeError::Closed(_) => status::coded(
                Code::FailedPrecondition,
                "ticket_closed",
                e.to_string(),
                None,
            ),
            IntakeError::Refused(r) => status::unauthenticated(r.code(), r.message()),
            IntakeError::ApiKeyInvalid => status::coded(
                Code::PermissionDenied,
                "api_key_invalid",
                IntakeError::ApiKeyInvalid.to_string(),
                Some("api_key"),
            ),
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
                Status::unavailable("the attachment store is unavailable; retry")
            }
            IntakeError::Random(e) => {
                tracing::error!(error = %e, "intake random source failed");
                status::internal()
            }
        }
    }
}

/// Every role may read tickets inside its scope (citizens only their own).
pub(crate) const READERS: &[Role] = &Role::ALL;

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
            return Err(status::overloaded(
                "intake is at capacity; retry shortly with the same idempotency key",
            ));
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
