//! Grid: the smallest unit of governance. Regions (the 12-digit division
//! tree), grids of every kind with their geometry, and locating a point
//! among them.
//!
//! Owns the tenant's grids (GeoJSON in its database). Every replica keeps
//! its own in-memory index of them (R-tree over bounding boxes, then exact
//! point-in-polygon), built at start and rebuilt for a tenant after an
//! import in that replica. People, duties, grid events, history ("as of")
//! and change events follow (issue 5).

pub mod api;
pub mod domain;
pub mod seed;
pub mod store;

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
}

impl Default for GridConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:50053".into(),
            database_url: String::new(),
            refresh_interval: std::time::Duration::from_secs(2),
            service_key_digests: String::new(),
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
        ]
    }
}

pub struct GridTarget;

impl GridTarget {
    pub async fn build(
        cfg: &GridConfig,
        db_cfg: &DbConfig,
        bus: Bus,
        verifier: Verifier,
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
                GridServiceServer::new(api::GridApi::new(
                    db.clone(),
                    layers.clone(),
                    outbox.clone(),
                ))
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
        let relay = Relay::new(db, bus, &outbox, TARGET);
        let relay_task =
            relay.spawn_after(vec![server], ctx.readiness.register("grid.outbox"), ctx);
        Ok(RunningTarget::new(
            TARGET,
            grpc_addr,
            vec![relay_task, refresher],
        ))
    }
}
