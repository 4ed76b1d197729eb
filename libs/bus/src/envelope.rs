//! Connection, subjects, streams and headers.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{self, stream};

use crate::BusConfig;

pub const H_MSG_ID: &str = "Nats-Msg-Id";
pub const H_TRACEPARENT: &str = "traceparent";
pub const H_TENANT: &str = "Jiesu-Tenant";
pub const H_EVENT: &str = "Jiesu-Event";
/// Dead letters: where the event came from and why it failed.
pub const H_ORIGINAL_SUBJECT: &str = "Jiesu-Original-Subject";
pub const H_CONSUMER: &str = "Jiesu-Consumer";
pub const H_ERROR: &str = "Jiesu-Error";
pub const H_DELIVERED: &str = "Jiesu-Delivered";

pub const DEAD_LETTER_STREAM: &str = "DEADLETTER";

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot reach NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

/// A NATS connection with the subject and stream conventions applied.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub cfg: Arc<BusConfig>,
}

impl Bus {
    /// Connects, retrying until `bus.connect_timeout`; later disconnects are
    /// healed by the client's own reconnect loop.
    pub async fn connect(cfg: &BusConfig, client_name: &str) -> Result<Self, BusError> {
        let deadline = tokio::time::Instant::now() + cfg.connect_timeout;
        let mut delay = Duration::from_millis(200);
        loop {
            let mut opts = async_nats::ConnectOptions::new()
                .name(client_name)
                .connection_timeout(Duration::from_secs(3))
                .request_timeout(Some(Duration::from_secs(5)))
                .max_reconnects(None::<usize>);
            if !cfg.token.is_empty() {
                opts = opts.token(cfg.token.clone());
            }
            let urls: Vec<&str> = cfg.url.split(',').map(str::trim).collect();
            match opts.connect(urls.as_slice()).await {
                Ok(client) => {
                    let js = jetstream::new(client.clone());
                    return Ok(Self {
                        client,
                        js,
                        cfg: Arc::new(cfg.clone()),
                    });
                }
                Err(e) if tokio::time::Instant::now() + delay < deadline => {
                    tracing::warn!(error = %e, "NATS not reachable yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(3));
                }
                Err(e) => {
                    return Err(BusError::Connect {
                        url: redact_url(&cfg.url),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    /// `jiesu.<context>.<tenant>.<event>`.
    pub fn subject(&self, context: &str, tenant: &str, event: &str) -> String {
        format!("{}.{context}.{tenant}.{event}", self.cfg.subject_root)
    }

    /// Every tenant's `event` of `context`, for a consumer filter.
    pub fn filter(&self, context: &str, event: &str) -> String {
        self.subject(context, "*", event)
    }

    pub fn stream_name(&self, context: &str) -> String {
        format!("{}{}", self.cfg.stream_prefix, context.to_ascii_uppercase())
    }

    pub fn dead_letter_subject(&self, consumer: &str) -> String {
        format!("{}.deadletter.{consumer}", self.cfg.subject_root)
    }

    pub fn dead_letter_stream(&self) -> String {
        format!("{}{DEAD_LETTER_STREAM}", self.cfg.stream_prefix)
    }

    /// Creates (or confirms) the stream of `context`. Idempotent, so every
    /// producer and consumer of the context may call it at start-up.
    pub async fn ensure_stream(&self, context: &str) -> Result<stream::Stream, BusError> {
        self.ensure(
            self.stream_name(context),
            format!("{}.{context}.>", self.cfg.subject_root),
            self.cfg.max_age,
        )
        .await
    }

    pub async fn ensure_dead_letter_stream(&self) -> Result<stream::Stream, BusError> {
        // Dead letters wait for an operator: keep them longer.
        self.ensure(
            self.dead_letter_stream(),
            format!("{}.deadletter.>", self.cfg.subject_root),
            self.cfg.max_age * 4,
        )
        .await
    }

    async fn ensure(
        &self,
        name: String,
        subject: String,
        max_age: Duration,
    ) -> Result<stream::Stream, BusError> {
        let config = stream::Config {
            name: name.clone(),
            subjects: vec![subject],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: self.cfg.replicas,
            max_age,
            duplicate_window: self.cfg.duplicate_window,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(config)
            .await
            .map_err(|e| BusError::JetStream(format!("stream {name}: {e}")))
    }
}

/// Hides a password in a NATS URL before it reaches a log or an error.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
