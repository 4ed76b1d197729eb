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

use std::sync::Arc;

use jiesu_auth::{AuthInterceptor, Verifier};
use jiesu_bus::{Bus, Outbox, Relay};
use jiesu_db::{DbConfig, SqlMigration};
use jiesu_pii::Keyring;
use jiesu_proto::intake::intake_service_server::IntakeServiceServer;
use jiesu_runtime::{RunningTarget, StartError, TargetCtx};
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
        let relay_task =
            relay.spawn_after(vec![server], ctx.readiness.register("intake.outbox"), ctx);
        Ok(RunningTarget::new(TARGET, grpc_addr, vec![relay_task]))
    }
}
