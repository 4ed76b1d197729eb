//! Why a grid call failed: one enum for the whole service, and the one
//! place that turns it into a `tonic::Status` (gRPC code, `jiesu-code` and
//! `jiesu-field` metadata; see `jiesu_proto::status`).
//!
//! Each variant's `Display` is exactly the message the caller reads, so a
//! streamed import can record a refusal as it would have answered it.
//! Database and key failures are logged here and reach the caller only as
//! "internal error".

use jiesu_auth::AuthError;
use jiesu_common::FieldError;
use jiesu_proto::status;
use sea_orm::DbErr;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// Bad input in one field (a dotted path such as `rules[0].every`).
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// `grid`, `worker`, `household`, `key person`, `duty task`,
    /// `grid event`, `import`.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("grid {0} is not one of your grids")]
    NotYourGrid(String),
    #[error("address: no building of the registry matches it")]
    AddressUnknown,
    #[error("account: another worker signs in with this account")]
    AccountTaken,
    #[error("import_id: an import with this id already ran; choose a new one")]
    ImportExists,
    #[error("this task was already checked in")]
    AlreadyDone,
    #[error("grid {0} no longer exists (split or merged)")]
    GridRetired(String),
    #[error("the event's grid changed meanwhile; send it again")]
    GridChanged,
    #[error("the event is already {0}")]
    IllegalTransition(String),
    /// The layer moved on between the checks and the write; `resend` says
    /// what to send again.
    #[error("the grids changed meanwhile (another import, split or merge); {resend}")]
    LayerChanged { resend: &'static str },
    /// The caller's request stream failed (as tonic reported it).
    #[error("{}", .0.message())]
    Stream(Status),
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("personal-data key: {0}")]
    Pii(#[from] jiesu_pii::PiiError),
    /// A fault of grid's own (a task that panicked, a row that vanished).
    #[error("{0}")]
    Internal(&'static str),
}

impl GridError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Whether the caller learns only that it failed.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Db(_) | Self::Pii(_) | Self::Internal(_))
    }
}

impl From<FieldError> for GridError {
    fn from(e: FieldError) -> Self {
        Self::Field {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<GridError> for Status {
    fn from(e: GridError) -> Self {
        let message = e.to_string();
        let coded = |grpc: Code, code: &str, field: Option<&str>| {
            status::coded(grpc, code, message.clone(), field)
        };
        match &e {
            GridError::Field { field, message } => status::invalid_field(field, message.clone()),
            GridError::Auth(a) => a.clone().into(),
            GridError::NotFound(what) => status::not_found(what),
            GridError::NotYourGrid(_) => {
                coded(Code::PermissionDenied, "not_your_grid", Some("grid_code"))
            }
            GridError::AddressUnknown => coded(Code::NotFound, "address_unknown", Some("address")),
            GridError::AccountTaken => coded(Code::AlreadyExists, "account_taken", Some("account")),
            GridError::ImportExists => {
                coded(Code::AlreadyExists, "import_exists", Some("import_id"))
            }
            GridError::AlreadyDone => coded(Code::FailedPrecondition, "already_done", None),
            GridError::GridRetired(_) => coded(Code::FailedPrecondition, "grid_retired", None),
            GridError::GridChanged => coded(Code::Aborted, "grid_changed", None),
            GridError::IllegalTransition(_) => {
                coded(Code::FailedPrecondition, "illegal_transition", None)
            }
            GridError::LayerChanged { .. } => coded(Code::Aborted, "layer_changed", None),
            GridError::Stream(s) => s.clone(),
            GridError::Db(err) => {
                tracing::error!(error = %err, "grid database error");
                status::internal()
            }
            GridError::Pii(err) => {
                tracing::error!(error = %err, "grid personal-data key error");
                status::internal()
            }
            GridError::Internal(what) => {
                tracing::error!(error = %what, "grid internal error");
                status::internal()
            }
        }
    }
}

/// Lists problems in one refusal of `field`, at most 20 shown.
pub fn refuse(field: &str, problems: &[String]) -> GridError {
    let shown: Vec<&str> = problems.iter().take(20).map(String::as_str).collect();
    let more = problems.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    GridError::field(field, format!("{}{tail}", shown.join("; ")))
}

/// An id the caller sent. Grid's refusal reads "must be a UUID" (the
/// common parser's wording differs; grid's callers know this one).
pub fn parse_id(field: &str, raw: &str) -> Result<uuid::Uuid, GridError> {
    jiesu_common::ids::parse_id(field, raw).map_err(|e| GridError::field(e.field, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiesu_proto::status::problem;

    #[test]
    fn each_refusal_keeps_its_code_field_and_message() {
        let cases: Vec<(GridError, Code, &str, Option<&str>, &str)> = vec![
            (
                GridError::field("lat", "must be a latitude"),
                Code::InvalidArgument,
                "invalid_field",
                Some("lat"),
                "lat: must be a latitude",
            ),
            (
                GridError::NotFound("grid event"),
                Code::NotFound,
                "not_found",
                None,
                "grid event not found",
            ),
            (
                GridError::NotYourGrid("G1".into()),
                Code::PermissionDenied,
                "not_your_grid",
                Some("grid_code"),
                "grid G1 is not one of your grids",
            ),
            (
                GridError::AddressUnknown,
                Code::NotFound,
                "address_unknown",
                Some("address"),
                "address: no building of the registry matches it",
            ),
            (
                GridError::AccountTaken,
                Code::AlreadyExists,
                "account_taken",
                Some("account"),
                "account: another worker signs in with this account",
            ),
            (
                GridError::ImportExists,
                Code::AlreadyExists,
                "import_exists",
                Some("import_id"),
                "import_id: an import with this id already ran; choose a new one",
            ),
            (
                GridError::AlreadyDone,
                Code::FailedPrecondition,
                "already_done",
                None,
                "this task was already checked in",
            ),
            (
                GridError::GridRetired("G1".into()),
                Code::FailedPrecondition,
                "grid_retired",
                None,
                "grid G1 no longer exists (split or merged)",
            ),
            (
                GridError::GridChanged,
                Code::Aborted,
                "grid_changed",
                None,
                "the event's grid changed meanwhile; send it again",
            ),
            (
                GridError::IllegalTransition("closed".into()),
                Code::FailedPrecondition,
                "illegal_transition",
                None,
                "the event is already closed",
            ),
            (
                GridError::LayerChanged {
                    resend: "send the layer again",
                },
                Code::Aborted,
                "layer_changed",
                None,
                "the grids changed meanwhile (another import, split or merge); send the layer again",
            ),
            (
                GridError::Db(DbErr::Custom("10.0.0.3 refused".into())),
                Code::Internal,
                "internal",
                None,
                "internal error",
            ),
            (
                GridError::Auth(AuthError::Forbidden(
                    "this action needs one of the roles: x".into(),
                )),
                Code::PermissionDenied,
                "forbidden",
                None,
                "this action needs one of the roles: x",
            ),
        ];
        for (e, grpc, code, field, message) in cases {
            let s = Status::from(e);
            let p = problem(&s);
            assert_eq!(
                (
                    s.code(),
                    p.code.as_str(),
                    p.field.as_deref(),
                    p.message.as_str()
                ),
                (grpc, code, field, message)
            );
        }
    }

    #[test]
    fn problems_are_listed_up_to_twenty() {
        let many: Vec<String> = (0..23).map(|i| format!("p{i}")).collect();
        let e = refuse("csv", &many);
        assert!(e.to_string().ends_with("p19 (and 3 more)"), "{e}");
        assert_eq!(refuse("csv", &many[..2]).to_string(), "csv: p0; p1");
        let id = parse_id("task_id", "42").err().map(|e| e.to_string());
        assert_eq!(id.as_deref(), Some("task_id: must be a UUID"));
    }
}
