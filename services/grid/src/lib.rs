//! Grid: the smallest unit of governance. Regions (the 12-digit division
//! tree), grids of every kind with their geometry, and locating a point
//! among them.
//!
//! Owns the tenant's grids (GeoJSON in its database). Every replica keeps
//! its own in-memory index of them (R-tree over bounding boxes, then exact
//! point-in-polygon), built at start and rebuilt when a tenant's layer
//! version moves. Every version of a grid is kept (split, merge, "as of"
//! lookups). Grid workers and their grids; households and key persons
//! (sealed personal data, audited reads); duty rules, tasks and check-ins;
//! grid events closed in the grid or whistled up to intake; broadcasts.
//!
//! Laid out as every service is: `api` (the gRPC edge: roles and
//! translation), `domain` (pure rules), `store` (every SQL statement, and
//! the per-replica index built from the table), `events` (what grid
//! consumes), one [`GridError`]. Never reads another service's data.

pub mod api;
pub mod ctx;
pub mod domain;
pub mod duty_rounds;
pub mod error;
pub mod events;
pub mod rekey;
pub mod seed;
pub mod store;

pub use error::GridError;

use jiesu_db::SqlMigration;
use jiesu_proto::grid::{
    grid_service_server::GridServiceServer, internal_grid_service_server::InternalGridServiceServer,
};
use jiesu_service::{ConfigError, Env, RunningTarget, ServiceBuilder, StartError, Target};
use serde::Deserialize;

pub const TARGET: &str = "grid";

/// Largest layer (GeoJSON) in one gRPC message.
pub const MAX_LAYER_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GridConfig {
    pub grpc_addr: String,
    /// Full database URL; empty means `<database.url>/<prefix>grid`.
    pub database_url: String,
    /// How often a replica checks whether another replica changed a
    /// tenant's grids (and rebuilds its index if so).
    #[serde(with = "humantime_serde")]
    pub refresh_interval: std::time::Duration,
    /// Comma-separated SHA-256 digests (hex) of the service keys that may
    /// locate for a tenant (`InternalGridService`, dispatch's routing).
    pub service_key_digests: String,
    /// How far outside its grid a duty check-in may be (meters): GPS on a
    /// phone drifts, and a doorway may sit on the boundary.
    pub checkin_tolerance_m: f64,
    /// Largest check-in photo.
    pub max_photo_bytes: usize,
    /// Largest layer streamed in one import (StreamLayer).
    pub max_stream_bytes: u64,
    /// How often a replica creates the duty tasks of the current periods
    /// (idempotent across replicas).
    #[serde(with = "humantime_serde")]
    pub duty_interval: std::time::Duration,
}

impl Default for GridConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:50053".into(),
            database_url: String::new(),
            refresh_interval: std::time::Duration::from_secs(2),
            service_key_digests: String::new(),
            checkin_tolerance_m: 50.0,
            max_photo_bytes: 4 << 20,
            max_stream_bytes: 1 << 30,
            duty_interval: std::time::Duration::from_secs(600),
        }
    }
}

/// Grid's migrations, oldest first.
pub struct Migrations;

impl jiesu_db::SqlMigrations for Migrations {
    fn list() -> Vec<SqlMigration> {
        vec![
            jiesu_bus::migrations::bus_tables(),
            SqlMigration {
                name: "m20261122_000001_grid",
                sql: include_str!("../migrations/0001_grid.sql"),
            },
            SqlMigration {
                name: "m20261122_000002_layer_versions",
                sql: include_str!("../migrations/0002_layer_versions.sql"),
            },
            SqlMigration {
                name: "m20261122_000003_regions",
                sql: include_str!("../migrations/0003_regions.sql"),
            },
            SqlMigration {
                name: "m20261122_000004_history_people_duties",
                sql: include_str!("../migrations/0004_history_people_duties.sql"),
            },
            SqlMigration {
                name: "m20261122_000005_layer_imports",
                sql: include_str!("../migrations/0005_layer_imports.sql"),
            },
            SqlMigration {
                name: "m20261122_000006_residents",
                sql: include_str!("../migrations/0006_residents.sql"),
            },
            jiesu_bus::migrations::bus_stream_marks(),
            SqlMigration {
                name: "m20261122_000007_import_problems_en",
                sql: include_str!("../migrations/0007_import_problems_en.sql"),
            },
        ]
    }
}

/// Grid's durable consumer of intake's `ticket.received` (whistled events
/// learn their ticket).
pub const CONSUMER_TICKET_RECEIVED: &str = "grid-ticket-received";

pub struct GridTarget;

impl Target for GridTarget {
    const NAME: &'static str = TARGET;
    type Config = GridConfig;
    type Migrations = Migrations;
    const SEALED: &'static [jiesu_db::rekey::Column] = rekey::COLUMNS;

    jiesu_service::grpc_service_placement!();

    fn validate(cfg: &GridConfig) -> Result<(), ConfigError> {
        jiesu_runtime::config::parse_addr("grid.grpc_addr", &cfg.grpc_addr)?;
        jiesu_auth::service_key::parse_digests(
            &cfg.service_key_digests,
            "grid.service_key_digests",
        )?;
        if !cfg.checkin_tolerance_m.is_finite() || cfg.checkin_tolerance_m < 0.0 {
            return Err(ConfigError::invalid(
                "grid.checkin_tolerance_m",
                "must be 0 or more",
            ));
        }
        Ok(())
    }

    async fn build(cfg: &GridConfig, env: &Env) -> Result<RunningTarget, StartError> {
        let clients = jiesu_auth::service_key::parse_digests(
            &cfg.service_key_digests,
            "grid.service_key_digests",
        )
        .map_err(|e| StartError::new(TARGET, e))?;
        let keyring = env.keyring(TARGET)?;
        let svc = ServiceBuilder::open::<Self>(cfg, env)
            .await?
            .relay_outbox()
            .await?;
        let layers = store::Layers::load(&svc.db())
            .await
            .map_err(|e| svc.error(e))?;
        let shared = ctx::Ctx {
            db: svc.db(),
            layers: layers.clone(),
            outbox: svc.outbox(),
            keyring,
            checkin_tolerance_m: cfg.checkin_tolerance_m,
            max_photo_bytes: cfg.max_photo_bytes,
            max_stream_bytes: cfg.max_stream_bytes,
        };
        let (db, refresh, duty_interval) = (svc.db(), cfg.refresh_interval, cfg.duty_interval);
        let (indexed, duties) = (layers.clone(), shared.clone());
        svc.grpc(
            // A whole layer travels in one message.
            GridServiceServer::new(api::GridApi::new(shared))
                .max_decoding_message_size(MAX_LAYER_BYTES)
                .max_encoding_message_size(MAX_LAYER_BYTES),
        )
        // Authenticated by a service key (dispatch's routing).
        .grpc_own_auth(InternalGridServiceServer::new(api::InternalApi::new(
            layers, clients,
        )))
        .consumer(CONSUMER_TICKET_RECEIVED, events::TicketReceivedHandler)
        // Follows other replicas' changes to the layers.
        .task(move |stop| store::refresh(db, indexed, refresh, stop))
        .task(move |stop| duty_rounds::generate_loop(duties, duty_interval, stop))
        .serve(&cfg.grpc_addr)
        .await
    }
}
