//! How errors travel between services.
//!
//! A service answers with a `tonic::Status` whose gRPC code carries the class
//! (InvalidArgument, NotFound, ...) and whose metadata carries a stable
//! machine code (`jiesu-code`) and, for bad input, the offending field path
//! (`jiesu-field`). The gateway turns that into `{"code","message","field"}`.
//! Messages never contain personal data or internals.

use jiesu_common::{Text, tr};
use tonic::{
    Code, Status,
    metadata::{BinaryMetadataValue, MetadataValue},
};

pub const CODE_KEY: &str = "jiesu-code";
pub const FIELD_KEY: &str = "jiesu-field";
/// The English message (binary metadata, so any character survives); the
/// status message itself is the Chinese one, which plain gRPC callers read.
pub const MESSAGE_EN_KEY: &str = "jiesu-message-en-bin";
/// The id under which a service logged an internal fault (a UUID it made,
/// never anything the caller sent): relayed so the caller can quote it.
pub const REQUEST_ID_KEY: &str = "jiesu-request-id";

/// The parts of an error every edge renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: String,
    pub message: Text,
    pub field: Option<String>,
}

fn status(grpc: Code, code: &str, message: Text, field: Option<&str>) -> Status {
    let mut status = Status::new(grpc, message.zh);
    status.metadata_mut().insert_bin(
        MESSAGE_EN_KEY,
        BinaryMetadataValue::from_bytes(message.en.as_bytes()),
    );
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

/// Bad input in `field` (a dotted path such as `citizen.phone`); the
/// message reads `citizen.phone：必须是11位手机号` / `citizen.phone: ...`.
pub fn invalid_field(field: &str, message: impl Into<Text>) -> Status {
    status(
        Code::InvalidArgument,
        "invalid_field",
        Text::about(field, &message.into()),
        Some(field),
    )
}

/// The service is at capacity: refused at once, before any work, so the
/// caller may retry (with the same idempotency key) after a moment.
pub fn overloaded(message: impl Into<Text>) -> Status {
    status(Code::Unavailable, OVERLOADED, message.into(), None)
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
pub fn coded(grpc: Code, code: &str, message: impl Into<Text>, field: Option<&str>) -> Status {
    status(grpc, code, message.into(), field)
}

/// `what` (`tr!("工单", "work order")`) does not exist, or not for the caller.
pub fn not_found(what: impl Into<Text>) -> Status {
    let what = what.into();
    status(
        Code::NotFound,
        "not_found",
        Text::new(
            format!("未找到{}", what.zh),
            format!("{} not found", what.en),
        ),
        None,
    )
}

pub fn permission_denied(message: impl Into<Text>) -> Status {
    status(Code::PermissionDenied, "forbidden", message.into(), None)
}

pub fn unauthenticated(code: &str, message: impl Into<Text>) -> Status {
    status(Code::Unauthenticated, code, message.into(), None)
}

/// The service's database could not be reached (restarting, failing over):
/// nothing was changed, and the same request may be sent again shortly.
pub fn database_unavailable() -> Status {
    status(
        Code::Unavailable,
        "unavailable",
        tr!(
            "数据库暂时不可用，请稍后用同一个 Idempotency-Key 重试",
            "the database is unavailable; retry shortly with the same Idempotency-Key"
        ),
        None,
    )
}

/// The message of an internal fault, which is all a caller learns of it.
pub fn internal_text() -> Text {
    tr!("内部错误", "internal error")
}

/// An internal fault. The detail is for the log of the service that failed;
/// the caller only learns that it failed.
pub fn internal() -> Status {
    status(Code::Internal, "internal", internal_text(), None)
}

/// An internal fault logged under `request_id`, which the caller may quote.
pub fn internal_logged(request_id: uuid::Uuid) -> Status {
    let mut s = status(
        Code::Internal,
        "internal",
        internal_quoting(request_id),
        None,
    );
    if let Ok(v) = MetadataValue::try_from(request_id.to_string()) {
        s.metadata_mut().insert(REQUEST_ID_KEY, v);
    }
    s
}

fn internal_quoting(request_id: uuid::Uuid) -> Text {
    tr!(
        "内部错误，请求编号 {request_id}",
        "internal error, request id {request_id}"
    )
}

/// Reads back what [`invalid_field`] and friends put in. A status made
/// elsewhere (tonic's own, another library's) reads the same in both
/// languages.
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
        // Never relay internals of another service; only the id it logged
        // the fault under, when it is one.
        Code::Internal | Code::Unknown | Code::DataLoss => meta(REQUEST_ID_KEY)
            .and_then(|id| uuid::Uuid::parse_str(&id).ok())
            .map_or_else(internal_text, internal_quoting),
        _ => {
            let en = status
                .metadata()
                .get_bin(MESSAGE_EN_KEY)
                .and_then(|v| v.to_bytes().ok())
                .and_then(|b| String::from_utf8(b.to_vec()).ok());
            let zh = status.message().to_owned();
            match en {
                Some(en) => Text::new(zh, en),
                None => Text::new(zh.clone(), zh),
            }
        }
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
        let p = problem(&invalid_field(
            "citizen.phone",
            tr!("必须是11位手机号", "must be 11 digits"),
        ));
        assert_eq!(p.code, "invalid_field");
        assert_eq!(p.field.as_deref(), Some("citizen.phone"));
        assert_eq!(p.message.zh, "citizen.phone：必须是11位手机号");
        assert_eq!(p.message.en, "citizen.phone: must be 11 digits");
    }

    #[test]
    fn both_languages_survive_the_wire() {
        // Through HTTP/2 as tonic sends it: the Chinese message is
        // percent-encoded, the English one is binary metadata, so neither
        // the quotes, the non-ASCII nor the newline are lost.
        let sent = coded(
            Code::FailedPrecondition,
            "illegal_transition",
            tr!(
                "工单已“办结”，不能再签收",
                "the order is \"closed\" (办结) and cannot be signed for\nanymore"
            ),
            None,
        );
        let wire = sent.clone().into_http::<()>();
        let received = Status::from_header_map(wire.headers()).expect("a status");
        let p = problem(&received);
        assert_eq!(received.code(), Code::FailedPrecondition);
        assert_eq!(received.message(), "工单已“办结”，不能再签收");
        assert_eq!(p.code, "illegal_transition");
        assert_eq!(p.message.zh, "工单已“办结”，不能再签收");
        assert_eq!(
            p.message.en,
            "the order is \"closed\" (办结) and cannot be signed for\nanymore"
        );
        let p = problem(&not_found(tr!("工单", "work order")));
        assert_eq!(
            (p.message.zh.as_str(), p.message.en.as_str()),
            ("未找到工单", "work order not found")
        );
    }

    #[test]
    fn a_status_made_elsewhere_reads_the_same_in_both() {
        let p = problem(&Status::failed_precondition("not ready"));
        assert_eq!(p.code, "failed_precondition");
        assert_eq!(p.message, Text::new("not ready", "not ready"));
    }

    #[test]
    fn internal_messages_are_not_relayed() {
        let p = problem(&Status::internal("connection to 10.0.0.3 refused"));
        assert_eq!(p.code, "internal");
        assert_eq!(p.message, tr!("内部错误", "internal error"));
        let p = problem(&coded(
            Code::Internal,
            "internal",
            tr!("内部错误，请求编号 1", "internal error, request id 1"),
            None,
        ));
        assert_eq!(p.message, internal_text());
        // A fault logged under an id: the id and nothing else.
        let id = uuid::Uuid::now_v7();
        let mut logged = internal_logged(id);
        let p = problem(&logged);
        assert_eq!(p.message.zh, format!("内部错误，请求编号 {id}"));
        assert_eq!(p.message.en, format!("internal error, request id {id}"));
        // Anything but an id in the header is not relayed.
        logged
            .metadata_mut()
            .insert(REQUEST_ID_KEY, "10.0.0.3 refused".parse().unwrap());
        assert_eq!(problem(&logged).message, internal_text());
    }
}
