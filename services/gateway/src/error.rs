//! One error body for the whole public API: `{"code","message","field"}`,
//! its message in the caller's language.
//!
//! Every message is written in Chinese and English where it arises (a
//! [`Text`]; a service's arrive through `jiesu_proto::status`). [`localize`]
//! reads the request's `Accept-Language` once: the body is Chinese unless
//! the caller prefers English. Codes and field names are never translated.

use axum::{
    Json,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use jiesu_auth::AuthError;
use jiesu_common::{Lang, Text, tr};
use serde::Serialize;
use tonic::Code;
use utoipa::ToSchema;

/// Error body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable machine code, e.g. `invalid_field`, `token_expired`, `not_found`.
    #[schema(example = "invalid_field")]
    pub code: String,
    /// Human readable explanation in Chinese (zh-CN), or in English when the
    /// request sends `Accept-Language: en`; never contains personal data.
    #[schema(example = "citizen.phone：必须是中国大陆手机号码")]
    pub message: String,
    /// Dotted path of the offending field, for input errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "citizen.phone")]
    pub field: Option<String>,
}

tokio::task_local! {
    /// The language of the request being answered.
    static LANG: Lang;
}

/// Answers the request in the language its `Accept-Language` prefers
/// (see [`Lang::from_accept_language`]).
pub async fn localize(req: Request, next: Next) -> Response {
    let lang = Lang::from_accept_language(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    LANG.scope(lang, next.run(req)).await
}

/// The language of the request being answered (Chinese outside one).
pub fn lang() -> Lang {
    LANG.try_with(|l| *l).unwrap_or_default()
}

/// Marks an answer whose words depend on `Accept-Language`.
pub fn mark_language(resp: &mut Response, lang: Lang) {
    resp.headers_mut().insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("accept-language"));
}

/// 422 for query parameters that do not parse, with serde's reason.
pub fn invalid_query(e: &axum::extract::rejection::QueryRejection) -> ApiError {
    let text = e.body_text();
    let reason = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    let reason: String = reason.chars().take(200).collect();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        tr!("查询参数有误：{reason}", "query parameters: {reason}"),
    )
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable machine code.
    pub code: String,
    pub message: Text,
    /// Dotted path of the offending field, for input errors.
    pub field: Option<String>,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<Text>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Bad input in `field`; the message is prefixed with its path.
    pub fn field(status: StatusCode, field: &str, message: impl Into<Text>) -> Self {
        let field = if field.is_empty() || field == "." {
            "body"
        } else {
            field
        };
        Self {
            status,
            code: "invalid_field".into(),
            message: Text::about(field, &message.into()),
            field: Some(field.to_owned()),
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            tr!(
                "请求过于频繁，请 {retry_after_secs} 秒后重试",
                "too many requests; retry after {retry_after_secs} s"
            ),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// `what` (`tr!("诉求", "ticket")`) does not exist, or not for the caller.
    pub fn not_found(what: impl Into<Text>) -> Self {
        let what = what.into();
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            Text::new(
                format!("未找到{}", what.zh),
                format!("{} not found", what.en),
            ),
        )
    }

    /// The body in `lang`.
    pub fn problem(&self, lang: Lang) -> Problem {
        Problem {
            code: self.code.clone(),
            message: self.message.get(lang).to_owned(),
            field: self.field.clone(),
        }
    }

    pub fn from_status(s: &tonic::Status) -> Self {
        if jiesu_proto::status::is_overloaded(s) {
            let mut e = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                jiesu_proto::status::OVERLOADED,
                tr!(
                    "服务繁忙，请 1 秒后用同一个 Idempotency-Key 重试",
                    "the service is at capacity; retry after 1 s with the same Idempotency-Key"
                ),
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
            let request_id = s
                .metadata()
                .get(jiesu_proto::status::REQUEST_ID_KEY)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::error!(grpc_code = ?s.code(), request_id, "backend failed");
        }
        let message = match s.code() {
            Code::Unavailable | Code::Unknown | Code::Cancelled => tr!(
                "后台服务暂不可用，请稍后（用同一个 Idempotency-Key）重试",
                "a backend service is unavailable; retry shortly (with the same Idempotency-Key)"
            ),
            Code::DeadlineExceeded => tr!("后台服务响应超时", "a backend service timed out"),
            _ => p.message,
        };
        let code = match s.code() {
            Code::Unavailable | Code::Unknown | Code::Cancelled => "unavailable".to_owned(),
            Code::DeadlineExceeded => "timeout".to_owned(),
            _ => p.code,
        };
        Self {
            status,
            code,
            message,
            field: p.field,
            retry_after: None,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        if e.is_forbidden() {
            Self::new(StatusCode::FORBIDDEN, e.code(), e.text())
        } else {
            Self::new(StatusCode::UNAUTHORIZED, e.code(), e.text())
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
        let lang = lang();
        let mut resp = (self.status, Json(self.problem(lang))).into_response();
        mark_language(&mut resp, lang);
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
