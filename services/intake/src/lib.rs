//! Intake: every channel in, one ticket out.
//!
//! Owns tickets from the moment a request is accepted: validation, tracking
//! numbers, the caller's personal data (encrypted at rest, masked on the way
//! out), the intake side of the timeline, the tenant's category tree, and the
//! `ticket.received` event (written to the outbox in the ticket's own
//! transaction). Never routes a ticket (dispatch does) and never puts
//! personal data into an event.

pub mod api;
pub mod domain;
pub mod events;
pub mod rekey;
pub mod seed;
pub mod store;

use std::{sync::Arc, time::Duration};

use jiesu_auth::{AuthInterceptor, Verifier};
use jiesu_bus::{Bus, Outbox, Relay};
use jiesu_db::{DbConfig, SqlMigration};
use jiesu_pii::Keyring;
use jiesu_proto::intake::{
    contact_service_server::ContactServiceServer, intake_service_server::IntakeServiceServer,
    public_intake_service_server::PublicIntakeServiceServer,
};
use jiesu_runtime::{RunningTarget, StartError, TargetCtx};
use serde::Deserialize;

pub const TARGET: &str = "intake";
pub const CONSUMER_TICKET_DISPATCHED: &str = "intake-ticket-dispatched";
pub const CONSUMER_GRID_EVENT_WHISTLED: &str = "intake-grid-event-whistled";

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
        ]
    }
}

pub struct Intake;

impl Intake {
    /// Connects, binds (port 0 allowed) and starts serving and relaying.
    pub async fn build(
        cfg: &IntakeConfig,
        db_cfg: &DbConfig,
        bus: Bus,
        verifier: Verifier,
        keyring: Arc<Keyring>,
        ctx: &TargetCtx,
    ) -> Result<RunningTarget, StartError> {
        let err = |e: &dyn std::fmt::Display| StartError::new(TARGET, e);
        let db = jiesu_db::open::<Migrations>(TARGET, &cfg.database_url, db_cfg)
            .await
            .map_err(|e| err(&e))?;
        bus.ensure_stream(TARGET).await.map_err(|e| err(&e))?;
        let (listener, grpc_addr) = jiesu_runtime::grpc::bind("intake.grpc_addr", &cfg.grpc_addr)
            .await
            .map_err(|e| err(&e))?;

        if cfg.webhook_window < Duration::from_secs(10)
            || cfg.webhook_window > Duration::from_secs(3600)
        {
            return Err(err(&jiesu_runtime::ConfigError::invalid(
                "intake.webhook_window",
                "must be between 10s and 1h",
            )));
        }
        if cfg.max_concurrent_creates == 0 {
            return Err(err(&jiesu_runtime::ConfigError::invalid(
                "intake.max_concurrent_creates",
                "must be at least 1",
            )));
        }
        let objects = cfg.attachments.open().map_err(|e| err(&e))?;
        let outbox = Outbox::new(&bus.cfg);
        let core = Arc::new(api::Core {
            objects,
            attachments: cfg.attachments.clone(),
            duplicate_window: cfg.duplicate_window,
            creates: Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent_creates)),
            contact_clients: api::contact::parse_digests(&cfg.contact_key_digests)
                .map_err(|e| err(&e))?,
            db: db.clone(),
            outbox: outbox.clone(),
            keyring,
            webhook_window: cfg.webhook_window,
            rotation_overlap: cfg.rotation_overlap,
            suggesters: Default::default(),
            suggest_refresh: cfg.suggest_refresh,
            suggest_training_limit: cfg.suggest_training_limit,
        });
        let whistle_core = core.clone();
        let api = api::IntakeApi::new(core.clone());
        let health = jiesu_runtime::grpc::health::<IntakeServiceServer<api::IntakeApi>>(
            ctx.shutdown.clone(),
        )
        .await;
        let router = jiesu_runtime::grpc::server()
            .add_service(health)
            .add_service(tonic::service::interceptor::InterceptedService::new(
                IntakeServiceServer::new(api)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
                AuthInterceptor::new(verifier),
            ))
            // Authenticated by channel credentials (or public reads), not JWTs.
            .add_service(PublicIntakeServiceServer::new(api::public::PublicApi::new(
                core.clone(),
            )))
            // Authenticated by a service key.
            .add_service(ContactServiceServer::new(api::contact::ContactApi::new(
                core,
            )));
        let server = jiesu_runtime::grpc::serve(
            router,
            listener,
            TARGET,
            ctx.readiness.register("intake.grpc"),
            ctx.shutdown.clone(),
        );
        let janitor = spawn_nonce_janitor(db.clone(), cfg.webhook_window * 2, ctx.shutdown.clone());
        let dispatched = jiesu_bus::spawn_consumer(
            bus.clone(),
            db.clone(),
            jiesu_bus::ConsumerSpec::new(CONSUMER_TICKET_DISPATCHED),
            events::TicketDispatchedHandler,
            ctx.shutdown.clone(),
            ctx.readiness.register("intake.consumer.ticket_dispatched"),
        );
        let whistled = jiesu_bus::spawn_consumer(
            bus.clone(),
            db.clone(),
            jiesu_bus::ConsumerSpec::new(CONSUMER_GRID_EVENT_WHISTLED),
            events::GridEventWhistledHandler { core: whistle_core },
            ctx.shutdown.clone(),
            ctx.readiness
                .register("intake.consumer.grid_event_whistled"),
        );
        let relay = Relay::new(db, bus, &outbox, TARGET);
        let relay_task = relay.spawn_after(
            vec![server, dispatched, whistled],
            ctx.readiness.register("intake.outbox"),
            ctx,
        );
        Ok(RunningTarget::new(
            TARGET,
            grpc_addr,
            vec![relay_task, janitor],
        ))
    }
}

/// Forgets webhook nonces once their timestamps are outside the window
/// (a replay is then refused as stale), every minute until shutdown.
fn spawn_nonce_janitor(
    db: sea_orm::DatabaseConnection,
    keep: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
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
    })
}
