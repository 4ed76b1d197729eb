//! Dispatch: routes tickets to the responsible unit and owns work orders.
//!
//! Owns the units directory, the responsibility list (责任清单), work orders
//! (one per ticket) with their state machine, timeline, clocks and durable
//! timers, and each tenant's SLA policy and working calendar.
//!
//! Publishes `ticket.dispatched` and `work_order.*` (signed, returned,
//! resolved, closed, reopened, escalated, whistle_blown, notice_issued, ...).
//! Consumes intake's `ticket.received` (a work order, routed), and
//! `ticket.merged` / `ticket.unmerged` (the order follows its master),
//! through an inbox so a redelivered event never acts twice. Asks grid where
//! a point lies (with a service key, falling back to the region code).
//! Never reads intake's data: what it needs arrives in the event.

pub mod api;
pub mod backfill;
pub mod domain;
pub mod engine;
pub mod events;
pub mod locate;
pub mod seed;
pub mod store;
pub mod timers;

use std::time::Duration;

use jiesu_db::SqlMigration;
use jiesu_proto::dispatch::dispatch_service_server::DispatchServiceServer;
use jiesu_service::{ConfigError, Env, RunningTarget, ServiceBuilder, StartError, Target};
use serde::Deserialize;

pub const TARGET: &str = "dispatch";
/// Durable consumer name; stable across releases.
pub const CONSUMER_TICKET_RECEIVED: &str = "dispatch-ticket-received";
pub const CONSUMER_TICKET_MERGED: &str = "dispatch-ticket-merged";
pub const CONSUMER_TICKET_UNMERGED: &str = "dispatch-ticket-unmerged";
pub const CONSUMER_CALLBACK_VERDICT: &str = "dispatch-callback-verdict";
pub const CONSUMER_FREQUENT_MATTER: &str = "dispatch-frequent-matter";

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
    pub fn validate(&self) -> Result<(), ConfigError> {
        jiesu_runtime::config::parse_addr("dispatch.grpc_addr", &self.grpc_addr)?;
        if self.timer_poll.is_zero() || self.timer_poll > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "dispatch.timer_poll",
                "must be between 1ms and 60s",
            ));
        }
        if self.timer_lease < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "dispatch.timer_lease",
                "must be at least 1s",
            ));
        }
        if self.timer_batch == 0 || self.timer_batch > 10_000 {
            return Err(ConfigError::invalid(
                "dispatch.timer_batch",
                "must be 1 to 10000",
            ));
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
            jiesu_bus::migrations::bus_stream_marks(),
            SqlMigration {
                name: "m20261202_000004_backfills",
                sql: include_str!("../migrations/0004_backfills.sql"),
            },
            SqlMigration {
                name: "m20261205_000005_resolve_work_minutes",
                sql: include_str!("../migrations/0005_resolve_work_minutes.sql"),
            },
        ]
    }
}

pub struct Dispatch;

impl Target for Dispatch {
    const NAME: &'static str = TARGET;
    type Config = DispatchConfig;
    type Migrations = Migrations;

    jiesu_service::grpc_service_placement!();

    fn validate(cfg: &DispatchConfig) -> Result<(), ConfigError> {
        cfg.validate()
    }

    async fn build(cfg: &DispatchConfig, env: &Env) -> Result<RunningTarget, StartError> {
        let svc = ServiceBuilder::open::<Self>(cfg, env)
            .await?
            .relay_outbox()
            .await?;
        let engine = engine::Engine {
            db: svc.db(),
            outbox: svc.outbox(),
            settings: store::settings::SettingsCache::new(cfg.settings_ttl),
            clock: env.clock.clone(),
        };
        let locator =
            locate::Locator::new(&cfg.grid_url, &cfg.grid_key).map_err(|e| svc.error(e))?;
        let timers = timers::TimerConfig {
            poll: cfg.timer_poll,
            lease: cfg.timer_lease,
            batch: cfg.timer_batch,
            owner: cfg.replica_name(),
        };
        let timer_engine = engine.clone();
        let backfill_engine = engine.clone();
        svc.grpc(DispatchServiceServer::new(api::DispatchApi::new(
            engine.clone(),
        )))
        .consumer(
            CONSUMER_TICKET_RECEIVED,
            events::TicketReceivedHandler {
                engine: engine.clone(),
                locator,
            },
        )
        .consumer(
            CONSUMER_TICKET_MERGED,
            events::TicketMergedHandler {
                engine: engine.clone(),
            },
        )
        .consumer(
            CONSUMER_TICKET_UNMERGED,
            events::TicketUnmergedHandler {
                engine: engine.clone(),
            },
        )
        .consumer(
            CONSUMER_CALLBACK_VERDICT,
            events::CallbackVerdictHandler {
                engine: engine.clone(),
            },
        )
        .consumer(
            CONSUMER_FREQUENT_MATTER,
            events::FrequentMatterHandler { engine },
        )
        .task(|stop| timers::run(timer_engine, timers, stop))
        .task(|stop| backfill::run(backfill_engine, stop))
        .serve(&cfg.grpc_addr)
        .await
    }
}
