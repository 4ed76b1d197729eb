//! The gateway: the only public door.
//!
//! HTTP/JSON (axum) outside, gRPC inside. Verifies every bearer token with
//! jiesu-auth before anything else, forwards it so each service checks it
//! again, composes answers from several services (a ticket from intake and
//! dispatch), and renders every error as `{"code","message","field"}`. Serves
//! its OpenAPI 3.1 document, generated from the handlers, at
//! `/api/v1/openapi.json`. Holds no data of its own and never logs bodies.

pub mod attachments;
pub mod backend;
pub mod channels;
pub mod directory;
pub mod error;
pub mod extract;
pub mod grid_work;
pub mod grids;
pub mod kb;
pub mod open311;
pub mod ratelimit;
pub mod reference;
pub mod tickets;
pub mod work_orders;

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use jiesu_auth::Verifier;
use jiesu_runtime::{ConfigError, RunningTarget, StartError, TargetCtx};
use serde::Deserialize;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

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

#[derive(OpenApi)]
#[openapi(
    paths(
        attachments::upload,
        grids::export_layer,
        grids::import_layer,
        grids::stream_import,
        grids::get_import,
        grids::split_grid,
        grids::import_pairs,
        grids::import_buildings,
        grid_work::check_in
    ),
    info(
        title = "Jiesu 接诉即办 API",
        description = "Public API of the Jiesu request-handling platform. Every endpoint but \
                       /healthz and this document needs `Authorization: Bearer <JWT>`. Errors are \
                       `{\"code\",\"message\",\"field\"}`; personal data is masked in every answer.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tickets", description = "Requests (诉求) from intake to dispatch"),
        (name = "reference", description = "Tenant reference data"),
        (name = "notifications", description = "What units and people were told"),
        (name = "knowledge", description = "Knowledge base for direct answers (直接答复) and intake counts"),
        (name = "channels", description = "Registered channels and the signed webhook of a tenant's own platform"),
        (name = "work orders", description = "Work orders (工单): queues, actions, clocks, the SLA policy and the working calendar"),
        (name = "grids", description = "Grids (网格): layers, history (split, merge, as of), pairs, the building registry and locating a point"),
        (name = "grid people", description = "Grid workers, households and key persons (personal data masked, reads recorded)"),
        (name = "duties", description = "Visit and patrol duties, check-ins and compliance"),
        (name = "grid events", description = "Matters found in the grid: closed there or whistled up (吹哨); broadcasts"),
        (name = "operations", description = "Health"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness of the public port: 200 once the gateway can verify tokens.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "No token keys loaded yet", body = Health),
    )
)]
async fn healthz(State(state): State<AppState>) -> Response {
    if state.verifier.key_count() > 0 {
        Json(Health {
            status: "ok".into(),
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "no_keys".into(),
            }),
        )
            .into_response()
    }
}

/// The router and its OpenAPI document, both built from the handlers.
pub fn router(state: AppState) -> Router {
    let max_body = state.cfg.max_body_bytes;
    let max_attachment = state.cfg.max_attachment_bytes;
    let max_layer = state.cfg.max_layer_bytes;
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(tickets::create_ticket))
        .routes(routes!(tickets::get_ticket))
        .routes(routes!(tickets::add_information))
        .routes(routes!(tickets::withdraw))
        .routes(routes!(tickets::track))
        .routes(routes!(tickets::duplicates))
        .routes(routes!(tickets::merge))
        .routes(routes!(tickets::unmerge))
        .routes(routes!(attachments::download))
        .routes(routes!(reference::list_categories))
        .routes(routes!(reference::suggest_categories))
        .routes(routes!(reference::export_categories))
        .routes(routes!(reference::import_categories))
        .routes(routes!(reference::list_notifications))
        .routes(routes!(channels::register_channel, channels::list_channels))
        .routes(routes!(channels::rotate_channel))
        .routes(routes!(channels::disable_channel))
        .routes(routes!(channels::webhook))
        .routes(routes!(kb::create_entry))
        .routes(routes!(kb::update_entry))
        .routes(routes!(kb::retire_entry))
        .routes(routes!(kb::search))
        .routes(routes!(kb::stats))
        .routes(routes!(work_orders::list))
        .routes(routes!(work_orders::get))
        .routes(routes!(work_orders::act))
        .routes(routes!(work_orders::get_policy, work_orders::put_policy))
        .routes(routes!(
            work_orders::get_calendar,
            work_orders::set_calendar
        ))
        .routes(routes!(directory::list_units))
        .routes(routes!(directory::put_unit))
        .routes(routes!(
            directory::export_responsibilities,
            directory::import_responsibilities
        ))
        .routes(routes!(directory::gaps))
        .routes(routes!(grids::locate))
        .routes(routes!(grids::list_regions))
        .routes(routes!(grids::import_regions))
        .routes(routes!(grids::get_grid))
        .routes(routes!(grids::merge_grids))
        .routes(routes!(grid_work::create_worker))
        .routes(routes!(grid_work::update_worker))
        .routes(routes!(grid_work::list_workers))
        .routes(routes!(grid_work::assign))
        .routes(routes!(grid_work::unassign))
        .routes(routes!(grid_work::rate))
        .routes(routes!(
            grid_work::create_household,
            grid_work::list_households
        ))
        .routes(routes!(
            grid_work::create_key_person,
            grid_work::list_key_persons
        ))
        .routes(routes!(
            grid_work::update_key_person,
            grid_work::get_key_person
        ))
        .routes(routes!(grid_work::list_reads))
        .routes(routes!(grid_work::get_rules, grid_work::put_rules))
        .routes(routes!(grid_work::generate))
        .routes(routes!(grid_work::list_tasks))
        .routes(routes!(grid_work::compliance))
        .routes(routes!(grid_work::report, grid_work::list_events))
        .routes(routes!(grid_work::stats))
        .routes(routes!(grid_work::get_event))
        .routes(routes!(grid_work::close))
        .routes(routes!(grid_work::whistle))
        .routes(routes!(grid_work::broadcast))
        .split_for_parts();
    let doc = Arc::new(api);
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        // Uploads get their own, larger body limit.
        .route(
            "/api/v1/tickets/{id}/attachments",
            axum::routing::post(attachments::upload).layer(DefaultBodyLimit::max(max_attachment)),
        )
        // Grid layers too.
        .route(
            "/api/v1/admin/grids",
            get(grids::export_layer)
                .put(grids::import_layer)
                .layer(DefaultBodyLimit::max(max_layer)),
        )
        // Split parts, pairs and the building registry can be large files.
        .route(
            "/api/v1/admin/grids/{code}/split",
            axum::routing::post(grids::split_grid).layer(DefaultBodyLimit::max(max_layer)),
        )
        .route(
            "/api/v1/admin/grid-pairs",
            axum::routing::put(grids::import_pairs).layer(DefaultBodyLimit::max(max_layer)),
        )
        .route(
            "/api/v1/admin/buildings",
            axum::routing::put(grids::import_buildings).layer(DefaultBodyLimit::max(max_layer)),
        )
        // A check-in carries a photo (base64 in JSON).
        .route(
            "/api/v1/duty-tasks/{id}/check-in",
            axum::routing::post(grid_work::check_in)
                .layer(DefaultBodyLimit::max(max_attachment * 4 / 3 + 64 * 1024)),
        )
        // Streamed imports read their body as it arrives (grid bounds it).
        .route(
            "/api/v1/admin/grid-imports/{id}",
            get(grids::get_import).put(grids::stream_import),
        )
        // Open311 GeoReport v2 has its own specification and error format.
        .route("/open311/v2/{tenant}", get(open311::root))
        .route("/open311/v2/{tenant}/", get(open311::root))
        .route(
            "/open311/v2/{tenant}/{file}",
            get(open311::get_collection).post(open311::post_request),
        )
        .route(
            "/open311/v2/{tenant}/services/{file}",
            get(open311::get_service),
        )
        .route(
            "/open311/v2/{tenant}/requests/{file}",
            get(open311::get_request),
        )
        .route(
            "/open311/v2/{tenant}/tokens/{file}",
            get(open311::get_token),
        )
        .fallback(|| async {
            error::ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

/// A bug in a handler answers 500 with the usual body (and is logged)
/// instead of dropping the connection.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    error::ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

/// A span per request that continues the caller's trace, and metrics by
/// route template (never the raw path or query: they may carry identifiers).
async fn observe(req: Request, next: Next) -> Response {
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

pub struct Gateway;

impl Gateway {
    pub async fn build(
        cfg: &GatewayConfig,
        verifier: Verifier,
        ctx: &TargetCtx,
    ) -> Result<RunningTarget, StartError> {
        cfg.validate().map_err(|e| StartError::new(TARGET, e))?;
        let backends = backend::Backends::new(cfg)
            .map_err(|(key, e)| StartError::new(TARGET, ConfigError::invalid(key, e)))?;
        let (listener, http_addr) = jiesu_runtime::grpc::bind("gateway.http_addr", &cfg.http_addr)
            .await
            .map_err(|e| StartError::new(TARGET, e))?;
        let app = router(AppState {
            verifier,
            backends,
            limits: Arc::new(ratelimit::Limits::new(&cfg.rate_limit)),
            cfg: Arc::new(cfg.clone()),
        });
        let ready = ctx.readiness.register("gateway.http");
        let shutdown = ctx.shutdown.clone();
        let task = tokio::spawn(async move {
            ready.set(true);
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
