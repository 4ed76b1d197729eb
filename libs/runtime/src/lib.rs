//! Process plumbing every `jiesu` target shares.
//!
//! Owns: layered configuration (defaults in code, optional file, `JIESU__`
//! environment), logging and trace export, W3C trace-context propagation
//! helpers, the shutdown token, the admin HTTP server (`/healthz`, `/readyz`,
//! `/metrics`) and readiness bookkeeping. It never knows about tickets,
//! tenants or any service's data.

pub mod admin;
pub mod config;
pub mod grpc;
pub mod json;
pub mod shutdown;
pub mod telemetry;

pub use admin::{AdminConfig, Readiness, ReadinessRegistry};
pub use config::{ConfigError, load_config};
pub use shutdown::{ShutdownConfig, shutdown_token};
pub use telemetry::{TelemetryConfig, TelemetryGuard};

/// What every target gets from the process that runs it.
#[derive(Clone)]
pub struct TargetCtx {
    /// Cancelled on SIGTERM/SIGINT (or by a test).
    pub shutdown: tokio_util::sync::CancellationToken,
    pub readiness: ReadinessRegistry,
    /// Time allowed to drain after `shutdown`.
    pub grace: std::time::Duration,
}

impl TargetCtx {
    pub fn new(shutdown: tokio_util::sync::CancellationToken, grace: std::time::Duration) -> Self {
        Self {
            shutdown,
            readiness: ReadinessRegistry::default(),
            grace,
        }
    }
}

/// A target could not start. Printed once, then the process exits non-zero.
#[derive(Debug, thiserror::Error)]
#[error("{target} cannot start: {message}")]
pub struct StartError {
    pub target: &'static str,
    pub message: String,
}

impl StartError {
    pub fn new(target: &'static str, e: impl std::fmt::Display) -> Self {
        Self {
            target,
            message: e.to_string(),
        }
    }
}

/// A started target: the address it serves on (port 0 resolved) and the
/// tasks that end once it has drained after shutdown.
pub struct RunningTarget {
    pub name: &'static str,
    addr: std::net::SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningTarget {
    pub fn new(
        name: &'static str,
        addr: std::net::SocketAddr,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    ) -> Self {
        tracing::info!(target_name = name, %addr, "target listening");
        Self { name, addr, tasks }
    }

    /// The bound address (gRPC for services, HTTP for the gateway).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Waits until the shutdown token fired and everything drained.
    pub async fn run_until_stopped(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
