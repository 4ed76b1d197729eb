//! What every request must be before a handler sees it, answered with the
//! error body like any other refusal: a path whose parameters are UTF-8 and
//! parameters, query values and text bodies without NUL characters
//! (PostgreSQL cannot store U+0000, so a code or id carrying one used to
//! reach a query and fail as `500`); and a method the route has (`405` with
//! `Allow`). The OpenAPI document lists the `422` on every operation that
//! takes parameters (`openapi::finish`). A request refused before its body
//! was read closes its connection (`close_unless_body_read`).

use axum::{
    extract::{RawPathParams, Request, rejection::RawPathParamsRejection},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};

use jiesu_common::{Text, tr};

use crate::error::ApiError;

fn no_nul() -> Text {
    tr!("不能含有 NUL 字符", "must not contain NUL characters")
}

/// Refuses a request whose path parameters are not UTF-8 or whose path or
/// query values carry NUL, naming the parameter (`422 invalid_field`).
/// Runs after routing (`route_layer`), so an unknown path stays `404`.
pub async fn parameters(
    path: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    match path {
        Ok(params) => {
            if let Some((name, _)) = params.iter().find(|(_, v)| v.contains('\0')) {
                return invalid(name, no_nul());
            }
        }
        Err(RawPathParamsRejection::InvalidUtf8InPathParam(e)) => {
            let text = e.body_text();
            let name = text
                .split('`')
                .nth(1)
                .filter(|n| !n.is_empty())
                .unwrap_or("path")
                .to_owned();
            return invalid(
                &name,
                tr!(
                    "百分号解码后必须是 UTF-8",
                    "must be UTF-8 once percent-decoded"
                ),
            );
        }
        Err(_) => {}
    }
    if let Some(query) = req.uri().query()
        && let Some((name, _)) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        let name = name.replace('\0', "");
        return invalid(if name.is_empty() { "query" } else { &name }, no_nul());
    }
    next.run(req).await
}

fn invalid(name: &str, message: Text) -> Response {
    ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, name, message).into_response()
}

/// `405` for a method the route does not have; axum adds `Allow`.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        tr!(
            "这个接口不接受该请求方法；可用的方法见 Allow",
            "this endpoint does not take this method; `Allow` lists those it takes"
        ),
    )
}

/// Adds `Connection: close` to the answer of a request whose body was not
/// read to its end (refused before the handler read it: a bad token, a
/// wrong `Content-Type`, a method the route lacks, a body over the limit).
/// The server then closes the connection, and says so: a client must not
/// send its next request on it, or that request finds the connection gone
/// without an answer.
pub async fn close_unless_body_read(req: Request, next: Next) -> Response {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use axum::{
        body::Body,
        http::{HeaderValue, header},
    };
    use futures::StreamExt;

    let headers = req.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if !has_body {
        return next.run(req).await;
    }
    let read = Arc::new(AtomicBool::new(false));
    let seen = read.clone();
    let (parts, body) = req.into_parts();
    let body = body
        .into_data_stream()
        .chain(futures::stream::poll_fn(move |_| {
            seen.store(true, Ordering::Relaxed);
            std::task::Poll::Ready(None)
        }));
    let mut resp = next
        .run(Request::from_parts(parts, Body::from_stream(body)))
        .await;
    if !read.load(Ordering::Relaxed) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// The dotted path of the first string (or key) in `json` that carries NUL,
/// if any: such a body is refused before it is parsed into its type.
pub fn nul_in_json(bytes: &[u8]) -> Option<String> {
    // Only an escaped `\u0000` can put NUL into JSON text; skip the walk
    // when there is none.
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    fn walk(v: &serde_json::Value, path: &str) -> Option<String> {
        let at = |key: &str| {
            if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            }
        };
        match v {
            serde_json::Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
                "body".to_owned()
            } else {
                path.to_owned()
            }),
            serde_json::Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| {
                if k.contains('\0') {
                    Some(at(&k.replace('\0', "")))
                } else {
                    walk(x, &at(k))
                }
            }),
            _ => None,
        }
    }
    walk(&value, "")
}

/// The `422` for a body field that carries NUL.
pub fn nul_field(field: &str) -> ApiError {
    ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, no_nul())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_found_where_it_is() {
        assert_eq!(nul_in_json(br#"{"a":"x"}"#), None);
        assert_eq!(nul_in_json(br#"{"a":"x\\u0000"}"#), None);
        assert_eq!(
            nul_in_json(br#"{"a":{"b":["ok","x\u0000"]}}"#).as_deref(),
            Some("a.b[1]")
        );
        assert_eq!(nul_in_json(br#""\u0000""#).as_deref(), Some("body"));
        assert_eq!(nul_in_json(br#"{"k\u0000":1}"#).as_deref(), Some("k"));
    }
}
