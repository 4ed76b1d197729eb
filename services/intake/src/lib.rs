//! Intake: every channel in, one ticket out.
//!
//! Owns tickets from the moment a request is accepted: validation, tracking
//! numbers, the caller's personal data (encrypted at rest, masked on the way
//! out, handed to notification only with a service key and recorded), the
//! intake side of the timeline, the tenant's category tree, registered
//! channels and their credentials, the knowledge base for direct answers,
//! attachments, duplicates and merges.
//!
//! Publishes (through its outbox, in the ticket's own transaction)
//! `ticket.received`, `ticket.information_added`, `ticket.answered_directly`,
//! `ticket.withdrawn`, `ticket.merged` and `ticket.unmerged`. Consumes
//! dispatch's `ticket.dispatched` (the ticket learns its work order),
//! grid's `grid_event.whistled` (a whistle becomes a ticket on channel
//! `grid`) and evaluation's `callback.verdict` (the citizen's verdict joins
//! the public timeline). Never routes a ticket (dispatch does) and never puts personal
//! data into an event.

pub mod api;
pub mod domain;
pub mod events;
pub mod rekey;
pub mod seed;
pub mod store;

use std::{sync::Arc, time::Duration};

use jiesu_db::SqlMigration;
use jiesu_proto::intake::{
    contact_service_server::ContactServiceServer, intake_service_server::IntakeServiceServer,
    public_intake_service_server::PublicIntakeServiceServer,
};
use jiesu_service::{ConfigError, Env, RunningTarget, ServiceBuilder, StartError, Target};
use serde::Deserialize;

pub const TARGET: &str = "intake";
pub const CONSUMER_TICKET_DISPATCHED: &str = "intake-ticket-dispatched";
pub const CONSUMER_GRID_EVENT_WHISTLED: &str = "intake-grid-event-whistled";
pub const CONSUMER_CALLBACK_VERDICT: &str = "intake-callback-verdict";
pub const CONSUMER_TICKET_PROGRESSED: &str = "intake-ticket-progressed";
pub const CONSUMER_TICKET_UNITS: &str = "intake-ticket-units";

/// Largest gRPC message: attachments travel in one message.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    /// gRPC listen address.
    pub grpc_addr: String,
    /// Full database URL; empty means `<database.url>/<prefix>intake`.
    pub database_url: String,
    /// How far a webhook's `X-Jiesu-Timestamp` may be from now.
    #[serde(with = "humantime_serde")]
    pub webhook_window: Duration,
    /// How long a rotated channel credential keeps working by default.
    #[serde(with = "humantime_serde")]
    pub rotation_overlap: Duration,
    /// A tenant's category-suggestion model is rebuilt when older than this.
    #[serde(with = "humantime_serde")]
    pub suggest_refresh: Duration,
    /// How many of the latest tickets the model learns from.
    pub suggest_training_limit: u32,
    pub attachments: AttachmentsConfig,
    /// How far back the duplicate check looks.
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// Creates running at once; beyond, a create is refused at once with
    /// 503 `overloaded` (and `Retry-After`) instead of queueing until the
    /// caller's deadline.
    pub max_concurrent_creates: usize,
    /// Comma-separated SHA-256 digests (hex) of the service keys that may
    /// read a caller's contact (the notification path). Empty: nobody may.
    pub contact_key_digests: String,
}

/// Where photos and recordings go, and how big they may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachmentsConfig {
    /// `local` (a directory) or `s3` (any S3-compatible store).
    pub store: String,
    pub local_dir: String,
    pub s3_bucket: String,
    /// e.g. `https://oss-cn-qingdao.aliyuncs.com` or `http://127.0.0.1:9000`.
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    /// Set through `JIESU__INTAKE__ATTACHMENTS__S3_SECRET_ACCESS_KEY`.
    pub s3_secret_access_key: String,
    pub max_image_bytes: usize,
    pub max_audio_bytes: usize,
    pub max_per_ticket: u32,
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        Self {
            store: "local".into(),
            local_dir: ".local/attachments".into(),
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            max_image_bytes: 10 << 20,
            max_audio_bytes: 20 << 20,
            max_per_ticket: 9,
        }
    }
}

impl AttachmentsConfig {
    /// The object store this configuration names.
    pub fn open(&self) -> Result<Arc<dyn object_store::ObjectStore>, jiesu_runtime::ConfigError> {
        use jiesu_runtime::ConfigError;
        match self.store.as_str() {
            "local" => {
                std::fs::create_dir_all(&self.local_dir).map_err(|e| {
                    ConfigError::invalid(
                        "intake.attachments.local_dir",
                        format!("cannot create it: {e}"),
                    )
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&self.local_dir)
                    .map_err(|e| {
                        ConfigError::invalid("intake.attachments.local_dir", e.to_string())
                    })?;
                Ok(Arc::new(fs))
            }
            "s3" => {
                if self.s3_bucket.is_empty() {
                    return Err(ConfigError::invalid(
                        "intake.attachments.s3_bucket",
                        "is required for store s3",
                    ));
                }
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&self.s3_bucket)
                    .with_region(&self.s3_region)
                    .with_access_key_id(&self.s3_access_key_id)
                    .with_secret_access_key(&self.s3_secret_access_key);
                if !self.s3_endpoint.is_empty() {
                    b = b
                        .with_endpoint(&self.s3_endpoint)
                        .with_allow_http(self.s3_endpoint.starts_with("http://"));
                }
                let s3 = b
                    .build()
                    .map_err(|e| ConfigError::invalid("intake.attachments", e.to_string()))?;
                Ok(Arc::new(s3))
            }
            _ => Err(ConfigError::invalid(
                "intake.attachments.store",
                "must be local or s3",
            )),
        }
    }
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:50051".into(),
            database_url: String::new(),
            webhook_window: Duration::from_secs(300),
            rotation_overlap: Duration::from_secs(24 * 3600),
            suggest_refresh: api::suggest::DEFAULT_REFRESH,
            suggest_training_limit: 50_000,
            attachments: AttachmentsConfig::default(),
            duplicate_window: Duration::from_secs(7 * 24 * 3600),
            max_concurrent_creates: 32,
            contact_key_digests: String::new(),
        }
    }
}

/// Intake's migrations, oldest first.
pub struct Migrations;

impl jiesu_db::SqlMigrations for Migrations {
    fn list() -> Vec<SqlMigration> {
        vec![
            jiesu_bus::migrations::bus_tables(),
            SqlMigration {
                name: "m20261122_000001_intake",
                sql: include_str!("../migrations/0001_intake.sql"),
            },
            SqlMigration {
                name: "m20261122_000002_channels",
                sql: include_str!("../migrations/0002_channels.sql"),
            },
            SqlMigration {
                name: "m20261122_000003_knowledge",
                sql: include_str!("../migrations/0003_knowledge.sql"),
            },
            SqlMigration {
                name: "m20261122_000004_attachments",
                sql: include_str!("../migrations/0004_attachments.sql"),
            },
            SqlMigration {
                name: "m20261122_000005_duplicates",
                sql: include_str!("../migrations/0005_duplicates.sql"),
            },
            SqlMigration {
                name: "m20261122_000006_merge",
                sql: include_str!("../migrations/0006_merge.sql"),
            },
            SqlMigration {
                name: "m20261122_000007_contact_reads",
                sql: include_str!("../migrations/0007_contact_reads.sql"),
            },
            SqlMigration {
                name: "m20261122_000008_ticket_level",
                sql: include_str!("../migrations/0008_ticket_level.sql"),
            },
            SqlMigration {
                name: "m20261202_000009_progress",
                sql: include_str!("../migrations/0009_progress.sql"),
            },
            SqlMigration {
                name: "m20261202_000010_lookup",
                sql: include_str!("../migrations/0010_lookup.sql"),
            },
            jiesu_bus::migrations::bus_stream_marks(),
            SqlMigration {
                name: "m20261202_000011_ticket_units",
                sql: include_str!("../migrations/0011_ticket_units.sql"),
            },
        ]
    }
}

pub struct Intake;

impl Target for Intake {
    const NAME: &'static str = TARGET;
    type Config = IntakeConfig;
    type Migrations = Migrations;
    const SEALED: &'static [jiesu_db::rekey::Column] = rekey::COLUMNS;

    jiesu_service::grpc_service_placement!();

    fn validate(cfg: &IntakeConfig) -> Result<(), ConfigError> {
        cfg.validate()
    }

    /// Connects, binds (port 0 allowed) and starts serving and relaying.
    async fn build(cfg: &IntakeConfig, env: &Env) -> Result<RunningTarget, StartError> {
        let keyring = env.keyring(TARGET)?;
        let svc = ServiceBuilder::open::<Self>(cfg, env)
            .await?
            .relay_outbox()
            .await?;
        let core = Arc::new(api::Core {
            objects: cfg.attachments.open().map_err(|e| svc.error(e))?,
            attachments: cfg.attachments.clone(),
            duplicate_window: cfg.duplicate_window,
            creates: Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent_creates)),
            contact_clients: api::contact::parse_digests(&cfg.contact_key_digests)
                .map_err(|e| svc.error(e))?,
            db: svc.db(),
            outbox: svc.outbox(),
            keyring,
            webhook_window: cfg.webhook_window,
            rotation_overlap: cfg.rotation_overlap,
            suggesters: Default::default(),
            suggest_refresh: cfg.suggest_refresh,
            suggest_training_limit: cfg.suggest_training_limit,
        });
        let (db, keep_nonces) = (svc.db(), cfg.webhook_window * 2);
        svc.grpc(
            IntakeServiceServer::new(api::IntakeApi::new(core.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        // Authenticated by channel credentials (or public reads), not JWTs.
        .grpc_own_auth(PublicIntakeServiceServer::new(api::public::PublicApi::new(
            core.clone(),
        )))
        // Authenticated by a service key.
        .grpc_own_auth(ContactServiceServer::new(api::contact::ContactApi::new(
            core.clone(),
        )))
        .consumer(CONSUMER_TICKET_DISPATCHED, events::TicketDispatchedHandler)
        .consumer(CONSUMER_TICKET_PROGRESSED, events::TicketProgressedHandler)
        .consumer(CONSUMER_TICKET_UNITS, events::TicketUnitsHandler)
        .consumer(CONSUMER_CALLBACK_VERDICT, events::CallbackVerdictHandler)
        .consumer(
            CONSUMER_GRID_EVENT_WHISTLED,
            events::GridEventWhistledHandler { core },
        )
        .task(move |stop| purge_nonces(db, keep_nonces, stop))
        .serve(&cfg.grpc_addr)
        .await
    }
}

impl IntakeConfig {
    /// Refuses settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        jiesu_runtime::config::parse_addr("intake.grpc_addr", &self.grpc_addr)?;
        if self.webhook_window < Duration::from_secs(10)
            || self.webhook_window > Duration::from_secs(3600)
        {
            return Err(ConfigError::invalid(
                "intake.webhook_window",
                "must be between 10s and 1h",
            ));
        }
        if self.max_concurrent_creates == 0 {
            return Err(ConfigError::invalid(
                "intake.max_concurrent_creates",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Forgets webhook nonces once their timestamps are outside the window
/// (a replay is then refused as stale), every minute until shutdown.
async fn purge_nonces(
    db: sea_orm::DatabaseConnection,
    keep: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store::channels::purge_nonces(&db, keep).await {
            Ok(n) if n > 0 => tracing::debug!(purged = n, "old webhook nonces purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not purge webhook nonces"),
        }
    }
}
