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
pub mod shutdown;
pub mod telemetry;

pub use admin::{AdminConfig, Readiness, ReadinessRegistry};
pub use config::{ConfigError, load_config};
pub use shutdown::{ShutdownConfig, shutdown_token};
pub use telemetry::{TelemetryConfig, TelemetryGuard};
