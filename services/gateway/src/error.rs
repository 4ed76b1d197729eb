//! One error body for the whole public API: `{"code","message","field"}`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use jiesu_auth::AuthError;
use serde::Serialize;
use tonic::Code;
use utoipa::ToSchema;

/// Error body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable machine code, e.g. `invalid_field`, `token_expired`, `not_found`.
    #[schema(example = "invalid_field")]
    pub code: String,
    /// Human readable explanation; never contains personal data.
    #[schema(example = "citizen.phone: must be a mainland mobile number")]
    pub message: String,
    /// Dotted path of the offending field, for input errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "citizen.phone")]
    pub field: Option<String>,
}

/// 422 for query parameters that do not parse, with serde's reason.
pub fn invalid_query(e: &axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        format!(
            "query parameters: {}",
            e.body_text().chars().take(200).collect::<String>()
        ),
    )
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub problem: Problem,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            problem: Problem {
                code: code.to_owned(),
                message: message.into(),
                field: None,
            },
            retry_after: None,
        }
    }

    pub fn field(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        let field = if field.is_empty() || field == "." {
            "body"
        } else {
            field
        };
        Self {
            status,
            problem: Problem {
                code: "invalid_field".into(),
                message: format!("{field}: {}", message.into()),
                field: Some(field.to_owned()),
            },
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry after {retry_after_secs} s"),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn from_status(s: &tonic::Status) -> Self {
        if jiesu_proto::status::is_overloaded(s) {
            let mut e = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                jiesu_proto::status::OVERLOADED,
                "the service is at capacity; retry after 1 s with the same Idempotency-Key",
            );
            e.retry_after = Some(1);
            return e;
        }
        let p = jiesu_proto::status::problem(s);
        let status = match s.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::UNPROCESSABLE_ENTITY,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::FailedPrecondition => StatusCode::CONFLICT,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            // Unknown and Cancelled: the connection to the service broke
            // mid-call. A 504 means a deadline passed, nothing else.
            Code::Unavailable | Code::Unknown | Code::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(grpc_code = ?s.code(), "backend failed");
        }
        let message = match s.code() {
            Code::Unavailable | Code::Unknown | Code::Cancelled => {
                "a backend service is unavailable; retry shortly (with the same Idempotency-Key)"
                    .to_owned()
            }
            Code::DeadlineExceeded => "a backend service timed out".to_owned(),
            _ => p.message,
        };
        let code = match s.code() {
            Code::Unavailable | Code::Unknown | Code::Cancelled => "unavailable".to_owned(),
            Code::DeadlineExceeded => "timeout".to_owned(),
            _ => p.code,
        };
        Self {
            status,
            problem: Problem {
                code,
                message,
                field: p.field,
            },
            retry_after: None,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        if e.is_forbidden() {
            Self::new(StatusCode::FORBIDDEN, e.code(), e.to_string())
        } else {
            Self::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
        }
    }
}

impl From<tonic::Status> for ApiError {
    fn from(s: tonic::Status) -> Self {
        Self::from_status(&s)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.problem)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
