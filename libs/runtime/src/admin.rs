//! The admin HTTP server, one per process: `/healthz` (alive), `/readyz`
//! (every component registered in this process is ready) and `/metrics`
//! (Prometheus text).

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Admin HTTP listen address (healthz, readyz, metrics).
    pub addr: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            addr: "0.0.0.0:9090".into(),
        }
    }
}

/// One component's readiness flag.
#[derive(Clone)]
pub struct Readiness {
    name: Arc<str>,
    ready: Arc<AtomicBool>,
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        if self.ready.swap(ready, Ordering::SeqCst) != ready {
            tracing::info!(component = %self.name, ready, "readiness changed");
        }
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// All components of this process.
#[derive(Clone, Default)]
pub struct ReadinessRegistry {
    parts: Arc<Mutex<Vec<Readiness>>>,
}

impl ReadinessRegistry {
    pub fn register(&self, name: &str) -> Readiness {
        let r = Readiness {
            name: Arc::from(name),
            ready: Arc::new(AtomicBool::new(false)),
        };
        if let Ok(mut parts) = self.parts.lock() {
            parts.push(r.clone());
        }
        r
    }

    /// Names of components not ready yet.
    pub fn pending(&self) -> Vec<String> {
        self.parts
            .lock()
            .map(|parts| {
                parts
                    .iter()
                    .filter(|p| !p.is_ready())
                    .map(|p| p.name.to_string())
                    .collect()
            })
            .unwrap_or_else(|_| vec!["registry".into()])
    }
}

#[derive(Clone)]
struct AdminState {
    readiness: ReadinessRegistry,
    metrics: Option<PrometheusHandle>,
}

/// Installs the global Prometheus recorder. Returns `None` when one is
/// installed already (a second target in the same process).
pub fn install_metrics() -> Option<PrometheusHandle> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok()
}

pub fn router(readiness: ReadinessRegistry, metrics: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AdminState { readiness, metrics })
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    let pending = s.readiness.pending();
    if pending.is_empty() {
        (StatusCode::OK, Json(serde_json::json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "not_ready", "pending": pending})),
        )
    }
}

async fn render_metrics(State(s): State<AdminState>) -> impl IntoResponse {
    match &s.metrics {
        Some(h) => {
            h.run_upkeep();
            (
                StatusCode::OK,
                [("content-type", "text/plain; version=0.0.4")],
                h.render(),
            )
        }
        None => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4")],
            String::new(),
        ),
    }
}

/// Binds the admin server. Returns the bound address and the serving task.
pub async fn serve(
    addr: &str,
    readiness: ReadinessRegistry,
    metrics: Option<PrometheusHandle>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(readiness, metrics);
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    Ok((local, task))
}
