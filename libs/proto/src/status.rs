//! How errors travel between services.
//!
//! A service answers with a `tonic::Status` whose gRPC code carries the class
//! (InvalidArgument, NotFound, ...) and whose metadata carries a stable
//! machine code (`jiesu-code`) and, for bad input, the offending field path
//! (`jiesu-field`). The gateway turns that into `{"code","message","field"}`.
//! Messages never contain personal data or internals.

use tonic::{Code, Status, metadata::MetadataValue};

pub const CODE_KEY: &str = "jiesu-code";
pub const FIELD_KEY: &str = "jiesu-field";

/// The parts of an error every edge renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

fn with_meta(mut status: Status, code: &str, field: Option<&str>) -> Status {
    if let Ok(v) = MetadataValue::try_from(code) {
        status.metadata_mut().insert(CODE_KEY, v);
    }
    if let Some(field) = field
        && let Ok(v) = MetadataValue::try_from(field)
    {
        status.metadata_mut().insert(FIELD_KEY, v);
    }
    status
}

/// Bad input in `field` (a dotted path such as `citizen.phone`).
pub fn invalid_field(field: &str, message: impl Into<String>) -> Status {
    let message = format!("{field}: {}", message.into());
    with_meta(
        Status::invalid_argument(message),
        "invalid_field",
        Some(field),
    )
}

/// The service is at capacity: refused at once, before any work, so the
/// caller may retry (with the same idempotency key) after a moment.
pub fn overloaded(message: impl Into<String>) -> Status {
    with_meta(Status::unavailable(message), OVERLOADED, None)
}

pub const OVERLOADED: &str = "overloaded";

/// Whether `status` is [`overloaded`] (retrying at once only adds load).
pub fn is_overloaded(status: &Status) -> bool {
    status.code() == Code::Unavailable
        && status
            .metadata()
            .get(CODE_KEY)
            .is_some_and(|v| v.as_bytes() == OVERLOADED.as_bytes())
}

/// Any class with our own machine code, e.g. `AlreadyExists` +
/// `external_id_reused`, or `PermissionDenied` + `api_key_invalid`.
pub fn coded(grpc: Code, code: &str, message: impl Into<String>, field: Option<&str>) -> Status {
    with_meta(Status::new(grpc, message.into()), code, field)
}

pub fn not_found(what: &str) -> Status {
    with_meta(
        Status::not_found(format!("{what} not found")),
        "not_found",
        None,
    )
}

pub fn permission_denied(message: impl Into<String>) -> Status {
    with_meta(Status::permission_denied(message), "forbidden", None)
}

pub fn unauthenticated(code: &str, message: impl Into<String>) -> Status {
    with_meta(Status::unauthenticated(message), code, None)
}

/// An internal fault. The detail is for the log of the service that failed;
/// the caller only learns that it failed.
pub fn internal() -> Status {
    with_meta(Status::internal("internal error"), "internal", None)
}

/// Reads back what [`invalid_field`] and friends put in.
pub fn problem(status: &Status) -> Problem {
    let meta = |k: &str| {
        status
            .metadata()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let code = meta(CODE_KEY).unwrap_or_else(|| default_code(status.code()).to_owned());
    let message = match status.code() {
        // Never relay internals of another service.
        Code::Internal | Code::Unknown | Code::DataLoss => "internal error".to_owned(),
        _ => status.message().to_owned(),
    };
    Problem {
        code,
        message,
        field: meta(FIELD_KEY),
    }
}

fn default_code(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument | Code::OutOfRange => "invalid_argument",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "conflict",
        Code::PermissionDenied => "forbidden",
        Code::Unauthenticated => "unauthenticated",
        Code::FailedPrecondition => "failed_precondition",
        Code::Unavailable => "unavailable",
        Code::DeadlineExceeded => "timeout",
        Code::ResourceExhausted => "rate_limited",
        Code::Aborted => "conflict",
        _ => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_and_code_survive_the_round_trip() {
        let p = problem(&invalid_field("citizen.phone", "must be 11 digits"));
        assert_eq!(p.code, "invalid_field");
        assert_eq!(p.field.as_deref(), Some("citizen.phone"));
        assert_eq!(p.message, "citizen.phone: must be 11 digits");
    }

    #[test]
    fn internal_messages_are_not_relayed() {
        let p = problem(&Status::internal("connection to 10.0.0.3 refused"));
        assert_eq!(p.code, "internal");
        assert_eq!(p.message, "internal error");
    }
}
