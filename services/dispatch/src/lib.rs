//! Dispatch: routes tickets to the responsible unit and owns work orders.
//!
//! Owns units, the category -> unit routing table, work orders (one per
//! ticket) with their timeline, and the `ticket.dispatched` event. Consumes
//! `intake ticket.received` through an inbox so a redelivered event never
//! creates a second work order. Never reads intake's data: what it needs
//! arrives in the event.

pub mod api;
pub mod domain;
pub mod events;
pub mod seed;
pub mod store;

use jiesu_auth::{AuthInterceptor, Verifier};
use jiesu_bus::{Bus, ConsumerSpec, Outbox, Relay, spawn_consumer};
use jiesu_db::{DbConfig, SqlMigration};
use jiesu_proto::dispatch::dispatch_service_server::DispatchServiceServer;
use jiesu_runtime::{RunningTarget, StartError, TargetCtx};
use serde::Deserialize;

pub const TARGET: &str = "dispatch";
/// Durable consumer name; stable across releases.
pub const CONSUMER_TICKET_RECEIVED: &str = "dispatch-ticket-received";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    pub grpc_addr: String,
    /// Full database URL; empty means `<database.url>/<prefix>dispatch`.
    pub database_url: String,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:50052".into(),
            database_url: String::new(),
        }
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
        let db = jiesu_db::open::<Migrations>(TARGET, &cfg.database_url, db_cfg)
            .await
            .map_err(|e| err(&e))?;
        bus.ensure_stream(TARGET).await.map_err(|e| err(&e))?;
        let (listener, grpc_addr) = jiesu_runtime::grpc::bind("dispatch.grpc_addr", &cfg.grpc_addr)
            .await
            .map_err(|e| err(&e))?;

        let outbox = Outbox::new(&bus.cfg);
        let health = jiesu_runtime::grpc::health::<DispatchServiceServer<api::DispatchApi>>(
            ctx.shutdown.clone(),
        )
        .await;
        let router = jiesu_runtime::grpc::server()
            .add_service(health)
            .add_service(DispatchServiceServer::with_interceptor(
                api::DispatchApi::new(db.clone()),
                AuthInterceptor::new(verifier),
            ));
        let server = jiesu_runtime::grpc::serve(
            router,
            listener,
            TARGET,
            ctx.readiness.register("dispatch.grpc"),
            ctx.shutdown.clone(),
        );
        let consumer = spawn_consumer(
            bus.clone(),
            db.clone(),
            ConsumerSpec::new(CONSUMER_TICKET_RECEIVED),
            events::TicketReceivedHandler {
                outbox: outbox.clone(),
            },
            ctx.shutdown.clone(),
            ctx.readiness.register("dispatch.consumer.ticket_received"),
        );
        let relay = Relay::new(db, bus, &outbox, TARGET);
        let relay_task = relay.spawn_after(
            vec![server, consumer],
            ctx.readiness.register("dispatch.outbox"),
            ctx,
        );
        Ok(RunningTarget::new(TARGET, grpc_addr, vec![relay_task]))
    }
}
