//! Request extractors that fail with our error body: the verified caller and
//! a JSON body whose errors name the field without echoing its value.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{StatusCode, request::Parts},
};
use jiesu_auth::Principal;
use jiesu_common::tr;
use jiesu_runtime::json::JsonError;
use serde::de::DeserializeOwned;

use crate::{AppState, error::ApiError};

/// A caller whose bearer token verified; the token is forwarded to services.
pub struct Caller {
    pub principal: Principal,
    pub token: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = state.verifier.verify_bearer(header)?;
        let token = header
            .and_then(|h| h.split_once(' ').map(|(_, t)| t.trim().to_owned()))
            .unwrap_or_default();
        Ok(Caller { principal, token })
    }
}

/// JSON body; unknown fields are refused so typos are caught.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let ct = ct.to_ascii_lowercase();
                ct.starts_with("application/json") || ct.contains("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                tr!(
                    "请以 application/json 格式发送请求体",
                    "send the body as application/json"
                ),
            ));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The raw body, size-limited, with our error body on failure.
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        read_body(req, state).await.map(RawBody)
    }
}

/// A text body (CSV, GeoJSON) whose `Content-Type` starts with one of
/// `types`: 415 naming `what` (Chinese, English) otherwise, 422 on `field`
/// if not UTF-8.
pub fn text_body(
    headers: &axum::http::HeaderMap,
    body: &Bytes,
    types: &[&str],
    what: (&str, &str),
    field: &str,
) -> Result<String, ApiError> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !types.iter().any(|t| ct.starts_with(t)) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            {
                let ((zh, en), ty) = (what, types[0]);
                tr!("请以 {ty} 格式发送{zh}", "send {en} as {ty}")
            },
        ));
    }
    let text = String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            field,
            tr!("必须是 UTF-8 编码", "must be UTF-8"),
        )
    })?;
    if text.contains('\0') {
        return Err(crate::guard::nul_field(field));
    }
    Ok(text)
}

pub async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                tr!(
                    "请求体最多 {} 字节",
                    "the body must be at most {} bytes",
                    state.cfg.max_body_bytes
                ),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                tr!("无法读取请求体", "the body could not be read"),
            )
        }
    })
}

/// Parses JSON, turning serde's errors into messages that name the field and
/// the expectation but never repeat the submitted value.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Some(field) = crate::guard::nul_in_json(bytes) {
        return Err(crate::guard::nul_field(&field));
    }
    jiesu_runtime::json::parse_strict(bytes).map_err(|e| match e {
        JsonError::Syntax(msg) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", msg),
        JsonError::Data { field, message } => {
            ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, &field, message)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        citizen: Citizen,
        content: String,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Citizen {
        phone: String,
    }

    fn err(json: &str) -> ApiError {
        parse_json::<Body>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn wrong_type_names_the_field_and_hides_the_value() {
        let e = err(r#"{"citizen":{"phone":13800138000},"content":"x"}"#);
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field.as_deref(), Some("citizen.phone"));
        assert!(
            !e.message.zh.contains("13800138000") && !e.message.en.contains("13800138000"),
            "{:?}",
            e.message
        );
        assert_eq!(e.message.zh, "citizen.phone：类型错误（应为字符串）");
        assert!(e.message.en.contains("wrong type"));
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let e = err(r#"{"citizen":{"phone":"1"}}"#);
        assert_eq!(e.field.as_deref(), Some("content"));
        let e = err(r#"{"citizen":{"phone":"1","fax":"2"},"content":"x"}"#);
        assert_eq!(e.field.as_deref(), Some("citizen.fax"));
    }

    #[test]
    fn broken_and_deep_json_are_400() {
        assert_eq!(err("{\"content\":").status, StatusCode::BAD_REQUEST);
        assert_eq!(err("{]").status, StatusCode::BAD_REQUEST);
        let deep = format!(
            r#"{{"citizen":{{"phone":"1"}},"content":{}{}}}"#,
            "[".repeat(300),
            "]".repeat(300)
        );
        let e = err(&deep);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.message.zh, "JSON 嵌套层数过多");
        assert!(e.message.en.contains("deeply"));
        let e = parse_json::<Body>(&[0xff, 0xfe, b'{']).unwrap_err();
        assert_eq!(e.message.zh, "请求体不是有效的 UTF-8");
        assert!(e.message.en.contains("UTF-8"));
    }
}
