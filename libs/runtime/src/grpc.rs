//! Conventions for gRPC servers and clients: a span per call that continues
//! the caller's trace, and the `traceparent` a client attaches.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// The span for one incoming gRPC call (use with `Server::trace_fn`).
pub fn server_span(req: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc",
        rpc.method = %req.uri().path(),
        otel.kind = "server",
    );
    if let Some(tp) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        crate::telemetry::set_remote_parent(&span, tp);
    }
    span
}

/// Adds the current span's `traceparent` to an outgoing request.
pub fn inject_traceparent<T>(req: &mut tonic::Request<T>) {
    if let Some(tp) = crate::telemetry::current_traceparent()
        && let Ok(v) = tp.parse()
    {
        req.metadata_mut().insert("traceparent", v);
    }
}

/// A lazily connecting channel that reconnects by itself: a callee that is
/// down at start-up or restarts later is reached once it is back.
pub fn lazy_channel(
    url: &str,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// Binds a listener (port 0 allowed) and reports the address it got.
pub async fn bind(
    key: &str,
    addr: &str,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), crate::ConfigError> {
    let parsed = crate::config::parse_addr(key, addr)?;
    let listener = tokio::net::TcpListener::bind(parsed)
        .await
        .map_err(|e| crate::ConfigError::invalid(key, format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| crate::ConfigError::invalid(key, e.to_string()))?;
    Ok((listener, local))
}

/// Serves `router` until `shutdown`; in-flight calls finish first.
pub fn serve(
    router: tonic::transport::server::Router,
    listener: tokio::net::TcpListener,
    name: &'static str,
    ready: crate::Readiness,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Answers go out at once: without TCP_NODELAY a reply written in
        // several small writes waits for the client's delayed ACK (40 ms on
        // Linux) — measured on intake's ticket lookup, 44 ms instead of 2.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        ready.set(true);
        let result = router
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
            .await;
        ready.set(false);
        if let Err(e) = result {
            tracing::error!(target_name = name, error = %e, "gRPC server failed");
        }
    })
}

/// A tonic server builder with the common layers: a span per call that
/// continues the caller's trace, and bounded concurrency.
pub fn server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .concurrency_limit_per_connection(256)
        .timeout(Duration::from_secs(30))
        .trace_fn(server_span)
}
