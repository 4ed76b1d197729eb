//! What every request passes through on the way in and out: a span that
//! continues the caller's trace, metrics by route template, and a 500 with
//! the usual body when a handler panics.

use axum::{
    extract::{MatchedPath, Request},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::ApiError;

/// A bug in a handler answers 500 with the usual body (and is logged)
/// instead of dropping the connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        jiesu_proto::status::internal_text(),
    )
    .into_response()
}

/// A span per request that continues the caller's trace, and metrics by
/// route template (never the raw path or query: they may carry identifiers).
pub async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let span = tracing::info_span!("http", http.method = %method, http.route = %route, http.status = tracing::field::Empty, otel.kind = "server");
    if let Some(tp) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        jiesu_runtime::telemetry::set_remote_parent(&span, tp);
    }
    let started = std::time::Instant::now();
    let resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = resp.status().as_u16();
    span.record("http.status", status);
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("jiesu_http_requests_total", "route" => route.clone(), "method" => method.to_string(), "status" => status.to_string()).increment(1);
    metrics::histogram!("jiesu_http_request_seconds", "route" => route.clone()).record(elapsed);
    if status >= 500 {
        tracing::warn!(parent: &span, status, elapsed_ms = (elapsed * 1000.0) as u64, "request failed");
    } else {
        tracing::debug!(parent: &span, status, elapsed_ms = (elapsed * 1000.0) as u64, "request served");
    }
    resp
}
