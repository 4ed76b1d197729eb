//! No panic reaches a caller as a dropped stream. Every gRPC service a
//! target serves is wrapped so that a handler that panics answers
//! `Internal` with a request id the caller can quote, the panic is logged
//! with that id (never its message, which may carry what the caller sent)
//! and counted in `jiesu_grpc_panics_total`, and the server goes on serving.

use tonic::service::Routes;
use tower_http::catch_panic::CatchPanicLayer;

/// `routes` with every call guarded against panics (see the module).
pub fn guard(routes: Routes, service: &'static str) -> Routes {
    let answer = move |_panic: Box<dyn std::any::Any + Send + 'static>| {
        let request_id = uuid::Uuid::now_v7();
        metrics::counter!("jiesu_grpc_panics_total", "service" => service).increment(1);
        tracing::error!(%request_id, service, "a gRPC handler panicked; answered Internal");
        jiesu_proto::status::internal_logged(request_id).into_http::<axum::body::Body>()
    };
    Routes::from(
        routes
            .into_axum_router()
            .layer(CatchPanicLayer::custom(answer)),
    )
}
