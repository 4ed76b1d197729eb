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
pub mod seed;
pub mod store;

use std::{net::SocketAddr, sync::Arc};

use jiesu_auth::{AuthInterceptor, Verifier};
use jiesu_bus::{Bus, Outbox, Relay};
use jiesu_db::{DbConfig, SqlMigration};
use jiesu_pii::Keyring;
use jiesu_proto::intake::intake_service_server::IntakeServiceServer;
use jiesu_runtime::{StartError, TargetCtx};
use serde::Deserialize;

pub const TARGET: &str = "intake";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    /// gRPC listen address.
    pub grpc_addr: String,
    /// Full database URL; empty means `<database.url>/<prefix>intake`.
    pub database_url: String,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:50051".into(),
            database_url: String::new(),
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
        ]
    }
}

/// A started intake target.
pub struct Intake {
    grpc_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Intake {
    /// Connects, binds (port 0 allowed) and starts serving and relaying.
    pub async fn build(
        cfg: &IntakeConfig,
        db_cfg: &DbConfig,
        bus: Bus,
        verifier: Verifier,
        keyring: Arc<Keyring>,
        ctx: &TargetCtx,
    ) -> Result<Self, StartError> {
        let err = |e: &dyn std::fmt::Display| StartError::new(TARGET, e);
        let url = db_cfg
            .url_for(TARGET, &cfg.database_url)
            .map_err(|e| err(&e))?;
        if db_cfg.migrate_on_start {
            jiesu_db::ensure_database(&url, db_cfg)
                .await
                .map_err(|e| err(&e))?;
            jiesu_db::migrate::<Migrations>(&url, db_cfg)
                .await
                .map_err(|e| err(&e))?;
        }
        let db = jiesu_db::connect(&url, db_cfg).await.map_err(|e| err(&e))?;
        bus.ensure_stream(TARGET).await.map_err(|e| err(&e))?;
        let (listener, grpc_addr) = jiesu_runtime::grpc::bind("intake.grpc_addr", &cfg.grpc_addr)
            .await
            .map_err(|e| err(&e))?;

        let outbox = Outbox::new(&bus.cfg);
        let api = api::IntakeApi::new(db.clone(), outbox.clone(), keyring);
        let health = jiesu_runtime::grpc::health::<IntakeServiceServer<api::IntakeApi>>(
            ctx.shutdown.clone(),
        )
        .await;
        let router = jiesu_runtime::grpc::server()
            .add_service(health)
            .add_service(IntakeServiceServer::with_interceptor(
                api,
                AuthInterceptor::new(verifier),
            ));
        let server = jiesu_runtime::grpc::serve(
            router,
            listener,
            TARGET,
            ctx.readiness.register("intake.grpc"),
            ctx.shutdown.clone(),
        );
        let relay = Relay::new(db, bus, &outbox, TARGET);
        let relay_task = relay.spawn_after(
            vec![server],
            ctx.readiness.register("intake.outbox"),
            ctx.grace,
        );
        tracing::info!(%grpc_addr, "intake listening");
        Ok(Self {
            grpc_addr,
            tasks: vec![relay_task],
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Waits until the shutdown token fired and everything drained.
    pub async fn run_until_stopped(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
