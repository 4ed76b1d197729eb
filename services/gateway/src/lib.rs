//! The gateway: the only public door.
//!
//! HTTP/JSON (axum) outside, gRPC inside. Verifies every bearer token with
//! jiesu-auth before anything else, forwards it so each service checks it
//! again, composes answers from several services (a ticket from intake and
//! dispatch), and renders every error as `{"code","message","field"}`. Serves
//! its OpenAPI 3.1 document, generated from the handlers, at
//! `/api/v1/openapi.json`. Holds no data of its own and never logs bodies.
//!
//! Layout: [`rest`] has a module per resource of the public API, [`open311`]
//! the GeoReport v2 endpoints, [`view`] the answers composed from several
//! services (pure), [`backend`] the one way to call a service.

pub mod backend;
pub mod error;
pub mod extract;
pub mod guard;
mod observe;
pub mod open311;
pub mod openapi;
pub mod ratelimit;
pub mod rest;
pub mod view;

use std::{sync::Arc, time::Duration};

use axum::{Json, Router, extract::DefaultBodyLimit, http::StatusCode, middleware, routing::get};
use jiesu_auth::Verifier;
use jiesu_service::{ConfigError, Env, NoDatabase, RunningTarget, StartError, Target};
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub const TARGET: &str = "gateway";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Public HTTP listen address.
    pub http_addr: String,
    pub intake_url: String,
    pub dispatch_url: String,
    pub grid_url: String,
    pub notification_url: String,
    pub evaluation_url: String,
    /// Per backend call.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Extra attempts when a backend is unavailable (reads and keyed creates).
    pub retries: u32,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest attachment upload (intake applies its per-kind limits).
    pub max_attachment_bytes: usize,
    /// Largest grid layer (GeoJSON) import.
    pub max_layer_bytes: usize,
    /// The public base URL (e.g. `https://12345.example.gov.cn`) used in
    /// Open311 discovery; empty means `http://<Host header>`.
    pub public_url: String,
    pub rate_limit: ratelimit::RateLimitConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            http_addr: "0.0.0.0:8080".into(),
            intake_url: "http://127.0.0.1:50051".into(),
            dispatch_url: "http://127.0.0.1:50052".into(),
            grid_url: "http://127.0.0.1:50053".into(),
            notification_url: "http://127.0.0.1:50056".into(),
            evaluation_url: "http://127.0.0.1:50055".into(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            retries: 3,
            max_body_bytes: 64 * 1024,
            max_attachment_bytes: 20 << 20,
            max_layer_bytes: 64 << 20,
            public_url: String::new(),
            rate_limit: ratelimit::RateLimitConfig::default(),
        }
    }
}

impl GatewayConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        jiesu_runtime::config::parse_addr("gateway.http_addr", &self.http_addr)?;
        for (key, url) in [
            ("gateway.intake_url", &self.intake_url),
            ("gateway.dispatch_url", &self.dispatch_url),
            ("gateway.grid_url", &self.grid_url),
            ("gateway.notification_url", &self.notification_url),
            ("gateway.evaluation_url", &self.evaluation_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(key, "must be an http(s):// URL"));
            }
        }
        if !(self.public_url.is_empty()
            || self.public_url.starts_with("http://")
            || self.public_url.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                "gateway.public_url",
                "must be empty or an http(s):// URL",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::invalid(
                "gateway.max_body_bytes",
                "must be at least 1024",
            ));
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct AppState {
    pub verifier: Verifier,
    pub backends: backend::Backends,
    pub cfg: Arc<GatewayConfig>,
    pub limits: Arc<ratelimit::Limits>,
}

/// The router and its OpenAPI document, both built from the handlers.
pub fn router(state: AppState) -> Router {
    let max_body = state.cfg.max_body_bytes;
    let (router, doc) = api(&state.cfg).split_for_parts();
    let doc = Arc::new(openapi::finish(doc));
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        // The page the SMS invitation links to, short enough for an SMS.
        .route("/r/{token}", rest::invitations::page())
        // Live notices (server-sent events): no document operation, since
        // it does not end.
        .route("/api/v1/inbox/stream", get(rest::inbox::stream))
        .route_layer(middleware::from_fn(guard::parameters))
        .method_not_allowed_fallback(guard::method_not_allowed)
        .fallback(|| async {
            error::ApiError::new(
                StatusCode::NOT_FOUND,
                "no_route",
                jiesu_common::tr!("没有这个接口", "no such endpoint"),
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(guard::close_unless_body_read))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            observe::panic_response,
        ))
        .layer(middleware::from_fn(observe::observe))
        // Outermost, so every error body above (a panic's too) is written
        // in the caller's language.
        .layer(middleware::from_fn(error::localize))
        .with_state(state)
}

/// Every route, each resource's with its own body limit where it needs a
/// larger one than `gateway.max_body_bytes`, and the document describing
/// them.
fn api(cfg: &GatewayConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(rest::health::routes())
        .merge(rest::tickets::routes())
        .merge(rest::follow_ups::routes())
        .merge(rest::contact_reads::routes())
        .merge(rest::attachments::routes(cfg))
        .merge(rest::ticket_merges::routes())
        .merge(rest::tracking::routes())
        .merge(rest::categories::routes())
        .merge(rest::notifications::routes())
        .merge(rest::notification_templates::routes())
        .merge(rest::inbox::routes())
        .merge(rest::evaluation::routes())
        .merge(rest::callbacks::routes())
        .merge(rest::invitations::routes())
        .merge(rest::hotspots::routes())
        .merge(rest::reports::routes())
        .merge(rest::proactive::routes(cfg))
        .merge(rest::channels::routes())
        .merge(rest::knowledge::routes())
        .merge(rest::intake_stats::routes())
        .merge(rest::work_orders::routes())
        .merge(rest::work_order_actions::routes())
        .merge(rest::settings::routes())
        .merge(rest::units::routes())
        .merge(rest::responsibilities::routes())
        .merge(rest::regions::routes())
        .merge(rest::grids::routes(cfg))
        .merge(rest::grid_imports::routes())
        .merge(rest::buildings::routes(cfg))
        .merge(rest::grid_workers::routes())
        .merge(rest::households::routes())
        .merge(rest::key_persons::routes())
        .merge(rest::duty_rules::routes())
        .merge(rest::duties::routes(cfg))
        .merge(rest::grid_events::routes())
        .merge(rest::broadcasts::routes())
        .merge(open311::routes())
}

pub struct Gateway;

impl Target for Gateway {
    const NAME: &'static str = TARGET;
    type Config = GatewayConfig;
    type Migrations = NoDatabase;

    fn place(cfg: &mut GatewayConfig, addr: &str, _database_url: &str) {
        cfg.http_addr = addr.into();
    }

    fn database_url(_cfg: &GatewayConfig) -> &str {
        ""
    }

    fn validate(cfg: &GatewayConfig) -> Result<(), ConfigError> {
        cfg.validate()
    }

    async fn build(cfg: &GatewayConfig, env: &Env) -> Result<RunningTarget, StartError> {
        cfg.validate().map_err(|e| StartError::new(TARGET, e))?;
        let backends = backend::Backends::new(cfg)
            .map_err(|(key, e)| StartError::new(TARGET, ConfigError::invalid(key, e)))?;
        let (listener, http_addr) = jiesu_runtime::grpc::bind("gateway.http_addr", &cfg.http_addr)
            .await
            .map_err(|e| StartError::new(TARGET, e))?;
        let app = router(AppState {
            verifier: env.verifier.clone(),
            backends,
            limits: Arc::new(ratelimit::Limits::new(&cfg.rate_limit)),
            cfg: Arc::new(cfg.clone()),
        });
        let ready = env.ctx.readiness.register("gateway.http");
        let shutdown = env.ctx.shutdown.clone();
        let task = tokio::spawn(async move {
            ready.set(true);
            // Answers go out at once (no Nagle wait for the client's ACK).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
            });
            let result = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
            ready.set(false);
            if let Err(e) = result {
                tracing::error!(error = %e, "gateway HTTP server failed");
            }
        });
        Ok(RunningTarget::new(TARGET, http_addr, vec![task]))
    }
}
