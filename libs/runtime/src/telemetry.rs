//! Logs and traces.
//!
//! `tracing` everywhere; logs as text or JSON lines on stderr; spans exported
//! over OTLP/gRPC when `telemetry.otlp_endpoint` is set. A tracer provider is
//! installed even without an exporter (sampling off) so trace ids still exist
//! and W3C `traceparent` travels through HTTP, gRPC metadata and NATS headers.
//!
//! Personal data never reaches a log or a span: callers log ids, never bodies.

use std::collections::HashMap;

use opentelemetry::{
    global,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `text` for people, `json` for log pipelines.
    pub log_format: LogFormat,
    /// `tracing` env-filter directives.
    pub log_filter: String,
    /// OTLP/gRPC collector, e.g. `http://otel-collector:4317`. Empty: no export.
    pub otlp_endpoint: String,
    /// Share of root traces sampled when exporting (0.0..=1.0).
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_filter: "info,sqlx=warn,sea_orm=warn,async_nats=warn,h2=warn,hyper=warn,tower=warn"
                .into(),
            otlp_endpoint: String::new(),
            sample_ratio: 1.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid configuration key `telemetry.log_filter`: {0}")]
    Filter(String),
    #[error("invalid configuration key `telemetry.otlp_endpoint`: {0}")]
    Exporter(String),
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// Flushes spans when the process stops.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "trace exporter did not shut down cleanly");
        }
    }
}

/// Installs the global subscriber and tracer provider. Call once, inside the
/// Tokio runtime.
pub fn init(cfg: &TelemetryConfig, service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    let filter =
        EnvFilter::try_new(&cfg.log_filter).map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if cfg.otlp_endpoint.is_empty() {
        builder = builder.with_sampler(Sampler::AlwaysOff);
    } else {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(cfg.otlp_endpoint.clone())
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                cfg.sample_ratio.clamp(0.0, 1.0),
            ))));
    }
    let provider = builder.build();
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(provider.clone());
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("jiesu"));

    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let result = match cfg.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    result.map_err(|_| TelemetryError::AlreadyInstalled)?;
    log_panics_without_their_message();
    Ok(TelemetryGuard { provider })
}

/// A panic is logged with where it happened, never with its message: the
/// message may quote what a caller sent (a phone number in a bad field),
/// and personal data never goes to the logs.
fn log_panics_without_their_message() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            at,
            thread = thread.name().unwrap_or("unnamed"),
            "panic (its message is not logged)"
        );
    }));
}

struct MapCarrier<'a>(&'a mut HashMap<String, String>);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct ReadCarrier<'a>(&'a HashMap<String, String>);

impl Extractor for ReadCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The W3C `traceparent` of the current span, if any.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut map = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut MapCarrier(&mut map));
    map.remove("traceparent")
}

/// Makes `span` a child of the remote `traceparent` (ignored when malformed).
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) {
    let mut map = HashMap::new();
    map.insert("traceparent".to_owned(), traceparent.to_owned());
    let cx = TraceContextPropagator::new().extract(&ReadCarrier(&map));
    let _ = span.set_parent(cx);
}
