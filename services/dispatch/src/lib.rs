//! Dispatch: routes tickets to the responsible unit and owns work orders.
//!
//! Owns units, the category -> unit routing table, work orders (one per
//! ticket) with their timeline, and the `ticket.dispatched` event. Consumes
//! `intake ticket.received` through an inbox so a redelivered event never
//! creates a second work order. Never reads intake's data: what it needs
//! arrives in the event.

pub mod api;
pub mod domain;
pub mod engine;
pub mod events;
pub mod locate;
pub mod seed;
pub mod store;
pub mod timers;

use std::time::Duration;

use jiesu_auth::{AuthInterceptor, Verifier};
use jiesu_bus::{Bus, ConsumerSpec, Outbox, Relay, spawn_consumer};
use jiesu_db::{DbConfig, SqlMigration};
use jiesu_proto::dispatch::dispatch_service_server::DispatchServiceServer;
use jiesu_runtime::{RunningTarget, StartError, TargetCtx};
use serde::Deserialize;

pub const TARGET: &str = "dispatch";
/// Durable consumer name; stable across releases.
pub const CONSUMER_TICKET_RECEIVED: &str = "dispatch-ticket-received";
pub const CONSUMER_TICKET_MERGED: &str = "dispatch-ticket-merged";
pub const CONSUMER_TICKET_UNMERGED: &str = "dispatch-ticket-unmerged";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    pub grpc_addr: String,
    /// Full database URL; empty means `<database.url>/<prefix>dispatch`.
    pub database_url: String,
    /// How often a replica looks for due timers.
    #[serde(with = "humantime_serde")]
    pub timer_poll: Duration,
    /// How long a claimed timer is this replica's alone; a replica that
    /// dies delays its timers by at most this plus one poll.
    #[serde(with = "humantime_serde")]
    pub timer_lease: Duration,
    /// Timers claimed and fired per transaction.
    pub timer_batch: u32,
    /// Name of this replica in the timer table; empty means host name + pid.
    pub replica: String,
    /// How long a tenant's SLA policy and calendar are cached per process.
    #[serde(with = "humantime_serde")]
    pub settings_ttl: Duration,
    /// Grid's gRPC address, asked where a ticket with coordinates lies;
    /// empty: route by the ticket's region code only.
    pub grid_url: String,
    /// The service key whose SHA-256 is in `grid.service_key_digests`.
    pub grid_key: String,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:50052".into(),
            database_url: String::new(),
            timer_poll: Duration::from_secs(1),
            timer_lease: Duration::from_secs(10),
            timer_batch: 200,
            replica: String::new(),
            settings_ttl: Duration::from_secs(30),
            grid_url: String::new(),
            grid_key: String::new(),
        }
    }
}

impl DispatchConfig {
    /// Refuses settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.timer_poll.is_zero() || self.timer_poll > Duration::from_secs(60) {
            return Err(("dispatch.timer_poll", "must be between 1ms and 60s".into()));
        }
        if self.timer_lease < Duration::from_secs(1) {
            return Err(("dispatch.timer_lease", "must be at least 1s".into()));
        }
        if self.timer_batch == 0 || self.timer_batch > 10_000 {
            return Err(("dispatch.timer_batch", "must be 1 to 10000".into()));
        }
        Ok(())
    }

    fn replica_name(&self) -> String {
        if !self.replica.is_empty() {
            return self.replica.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "dispatch".into());
        format!("{host}-{}", std::process::id())
    }
}

/// Dispatch's migrations, oldest first.
pub struct Migrations;

impl jiesu_db::SqlMigrations for Migrations {
    fn list() -> Vec<SqlMigration> {
        vec![
            jiesu_bus::migrations::bus_tables(),
            SqlMigration {
                name: "m20261122_000001_dispatch",
                sql: include_str!("../migrations/0001_dispatch.sql"),
            },
            SqlMigration {
                name: "m20261122_000002_work_orders",
                sql: include_str!("../migrations/0002_work_orders.sql"),
            },
            SqlMigration {
                name: "m20261122_000003_responsibilities",
                sql: include_str!("../migrations/0003_responsibilities.sql"),
            },
        ]
    }
}

pub struct Dispatch;

impl Dispatch {
    pub async fn build(
        cfg: &DispatchConfig,
        db_cfg: &DbConfig,
        bus: Bus,
        verifier: Verifier,
        ctx: &TargetCtx,
    ) -> Result<RunningTarget, StartError> {
        let err = |e: &dyn std::fmt::Display| StartError::new(TARGET, e);
        cfg.validate().map_err(|(k, m)| err(&format!("{k}: {m}")))?;
        let db = jiesu_db::open::<Migrations>(TARGET, &cfg.database_url, db_cfg)
            .await
            .map_err(|e| err(&e))?;
        bus.ensure_stream(TARGET).await.map_err(|e| err(&e))?;
        let (listener, grpc_addr) = jiesu_runtime::grpc::bind("dispatch.grpc_addr", &cfg.grpc_addr)
            .await
            .map_err(|e| err(&e))?;

        let outbox = Outbox::new(&bus.cfg);
        let engine = engine::Engine {
            db: db.clone(),
            outbox: outbox.clone(),
            settings: store::settings::SettingsCache::new(cfg.settings_ttl),
        };
        let health = jiesu_runtime::grpc::health::<DispatchServiceServer<api::DispatchApi>>(
            ctx.shutdown.clone(),
        )
        .await;
        let router = jiesu_runtime::grpc::server()
            .add_service(health)
            .add_service(DispatchServiceServer::with_interceptor(
                api::DispatchApi::new(engine.clone()),
                AuthInterceptor::new(verifier),
            ));
        let server = jiesu_runtime::grpc::serve(
            router,
            listener,
            TARGET,
            ctx.readiness.register("dispatch.grpc"),
            ctx.shutdown.clone(),
        );
        let received = spawn_consumer(
            bus.clone(),
            db.clone(),
            ConsumerSpec::new(CONSUMER_TICKET_RECEIVED),
            events::TicketReceivedHandler {
                engine: engine.clone(),
                locator: locate::Locator::new(&cfg.grid_url, &cfg.grid_key).map_err(|e| err(&e))?,
            },
            ctx.shutdown.clone(),
            ctx.readiness.register("dispatch.consumer.ticket_received"),
        );
        let merged = spawn_consumer(
            bus.clone(),
            db.clone(),
            ConsumerSpec::new(CONSUMER_TICKET_MERGED),
            events::TicketMergedHandler {
                engine: engine.clone(),
            },
            ctx.shutdown.clone(),
            ctx.readiness.register("dispatch.consumer.ticket_merged"),
        );
        let unmerged = spawn_consumer(
            bus.clone(),
            db.clone(),
            ConsumerSpec::new(CONSUMER_TICKET_UNMERGED),
            events::TicketUnmergedHandler {
                engine: engine.clone(),
            },
            ctx.shutdown.clone(),
            ctx.readiness.register("dispatch.consumer.ticket_unmerged"),
        );
        let timer_cfg = timers::TimerConfig {
            poll: cfg.timer_poll,
            lease: cfg.timer_lease,
            batch: cfg.timer_batch,
            owner: cfg.replica_name(),
        };
        let timer_task = tokio::spawn(timers::run(engine, timer_cfg, ctx.shutdown.clone()));
        let relay = Relay::new(db, bus, &outbox, TARGET);
        let relay_task = relay.spawn_after(
            vec![server, received, merged, unmerged, timer_task],
            ctx.readiness.register("dispatch.outbox"),
            ctx,
        );
        Ok(RunningTarget::new(TARGET, grpc_addr, vec![relay_task]))
    }
}
