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

pub mod api;
pub mod ctx;
pub mod domain;
pub mod duties;
pub mod history;
pub mod matters;
pub mod people;
pub mod rekey;
pub mod reshape;
pub mod seed;
pub mod store;
pub mod streaming;

use std::sync::Arc;

use jiesu_pii::Keyring;

use jiesu_auth::{AuthInterceptor, Verifier};
use jiesu_bus::{Bus, Outbox, Relay};
use jiesu_db::{DbConfig, SqlMigration};
use jiesu_proto::grid::{
    grid_service_server::GridServiceServer, internal_grid_service_server::InternalGridServiceServer,
};
use jiesu_runtime::{RunningTarget, StartError, TargetCtx};
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
        ]
    }
}

/// Grid's durable consumer of intake's `ticket.received` (whistled events
/// learn their ticket).
pub const CONSUMER_TICKET_RECEIVED: &str = "grid-ticket-received";

pub struct GridTarget;

impl GridTarget {
    pub async fn build(
        cfg: &GridConfig,
        db_cfg: &DbConfig,
        bus: Bus,
        verifier: Verifier,
        keyring: Arc<Keyring>,
        ctx: &TargetCtx,
    ) -> Result<RunningTarget, StartError> {
        let err = |e: &dyn std::fmt::Display| StartError::new(TARGET, e);
        let clients = jiesu_auth::service_key::parse_digests(
            &cfg.service_key_digests,
            "grid.service_key_digests",
        )
        .map_err(|e| err(&e))?;
        let db = jiesu_db::open::<Migrations>(TARGET, &cfg.database_url, db_cfg)
            .await
            .map_err(|e| err(&e))?;
        let layers = store::Layers::load(&db).await.map_err(|e| err(&e))?;
        bus.ensure_stream(TARGET).await.map_err(|e| err(&e))?;
        let outbox = Outbox::new(&bus.cfg);
        if !cfg.checkin_tolerance_m.is_finite() || cfg.checkin_tolerance_m < 0.0 {
            return Err(err(&"grid.checkin_tolerance_m must be 0 or more"));
        }
        let shared = ctx::Ctx {
            db: db.clone(),
            layers: layers.clone(),
            outbox: outbox.clone(),
            keyring,
            checkin_tolerance_m: cfg.checkin_tolerance_m,
            max_photo_bytes: cfg.max_photo_bytes,
            max_stream_bytes: cfg.max_stream_bytes,
        };
        let (listener, grpc_addr) = jiesu_runtime::grpc::bind("grid.grpc_addr", &cfg.grpc_addr)
            .await
            .map_err(|e| err(&e))?;
        let health =
            jiesu_runtime::grpc::health::<GridServiceServer<api::GridApi>>(ctx.shutdown.clone())
                .await;
        let refresher = tokio::spawn(store::refresh(
            db.clone(),
            layers.clone(),
            cfg.refresh_interval,
            ctx.shutdown.clone(),
        ));
        let router = jiesu_runtime::grpc::server()
            .add_service(health)
            .add_service(tonic::service::interceptor::InterceptedService::new(
                // A whole layer travels in one message.
                GridServiceServer::new(api::GridApi::new(shared.clone()))
                    .max_decoding_message_size(MAX_LAYER_BYTES)
                    .max_encoding_message_size(MAX_LAYER_BYTES),
                AuthInterceptor::new(verifier),
            ))
            .add_service(InternalGridServiceServer::new(api::InternalApi::new(
                layers.clone(),
                clients,
            )));
        let server = jiesu_runtime::grpc::serve(
            router,
            listener,
            TARGET,
            ctx.readiness.register("grid.grpc"),
            ctx.shutdown.clone(),
        );
        let whistled = jiesu_bus::spawn_consumer(
            bus.clone(),
            db.clone(),
            jiesu_bus::ConsumerSpec::new(CONSUMER_TICKET_RECEIVED),
            matters::TicketReceivedHandler,
            ctx.shutdown.clone(),
            ctx.readiness.register("grid.consumer.ticket_received"),
        );
        let duties = tokio::spawn(duties::generate_loop(
            shared,
            cfg.duty_interval,
            ctx.shutdown.clone(),
        ));
        let relay = Relay::new(db, bus, &outbox, TARGET);
        let relay_task = relay.spawn_after(
            vec![server, whistled],
            ctx.readiness.register("grid.outbox"),
            ctx,
        );
        Ok(RunningTarget::new(
            TARGET,
            grpc_addr,
            vec![relay_task, refresher, duties],
        ))
    }
}
