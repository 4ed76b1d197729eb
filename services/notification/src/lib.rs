//! Notification: tells units and people what they must know, exactly once.
//!
//! Owns notifications and their delivery state. Consumes `dispatch
//! ticket.dispatched`, `work_order.notice_issued` (三单 reminders, urges and
//! supervise orders) and `work_order.whistle_blown` (summons to report in),
//! all to units, and `intake ticket.merged` (to the caller) through an
//! inbox (and a unique key per event and recipient),
//! stores one notification per recipient, and delivers it through
//! its channel's sink with retries. Never holds citizens' personal data: a
//! citizen's contact is asked of intake at the moment of sending (with this
//! service's key) and forgotten once sent.

pub mod api;
pub mod delivery;
pub mod domain;
pub mod events;
pub mod store;

use std::sync::Arc;

use jiesu_auth::{AuthInterceptor, Verifier};
use jiesu_bus::{Bus, ConsumerSpec, spawn_consumer};
use jiesu_db::{DbConfig, SqlMigration};
use jiesu_proto::notification::notification_service_server::NotificationServiceServer;
use jiesu_runtime::{RunningTarget, StartError, TargetCtx};
use serde::Deserialize;
use tokio::sync::Notify;

pub const TARGET: &str = "notification";
pub const CONSUMER_TICKET_DISPATCHED: &str = "notification-ticket-dispatched";
pub const CONSUMER_TICKET_MERGED: &str = "notification-ticket-merged";
pub const CONSUMER_NOTICE_ISSUED: &str = "notification-notice-issued";
pub const CONSUMER_WHISTLE_BLOWN: &str = "notification-whistle-blown";
pub const CONSUMER_BROADCAST_REQUESTED: &str = "notification-broadcast-requested";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationConfig {
    pub grpc_addr: String,
    /// Full database URL; empty means `<database.url>/<prefix>notification`.
    pub database_url: String,
    /// Intake's gRPC address, asked for a caller's contact when a notice
    /// to a citizen is sent.
    pub intake_url: String,
    /// The service key intake knows by its SHA-256
    /// (`intake.contact_key_digests`). Empty: notices to citizens cannot be
    /// sent and are retried until it is set.
    pub contact_key: String,
}

impl Default for NotificationConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:50056".into(),
            database_url: String::new(),
            intake_url: "http://127.0.0.1:50051".into(),
            contact_key: String::new(),
        }
    }
}

/// Notification's migrations, oldest first.
pub struct Migrations;

impl jiesu_db::SqlMigrations for Migrations {
    fn list() -> Vec<SqlMigration> {
        vec![
            jiesu_bus::migrations::bus_tables(),
            SqlMigration {
                name: "m20261122_000001_notification",
                sql: include_str!("../migrations/0001_notification.sql"),
            },
        ]
    }
}

pub struct NotificationTarget;

impl NotificationTarget {
    pub async fn build(
        cfg: &NotificationConfig,
        db_cfg: &DbConfig,
        bus: Bus,
        verifier: Verifier,
        ctx: &TargetCtx,
    ) -> Result<RunningTarget, StartError> {
        let err = |e: &dyn std::fmt::Display| StartError::new(TARGET, e);
        let db = jiesu_db::open::<Migrations>(TARGET, &cfg.database_url, db_cfg)
            .await
            .map_err(|e| err(&e))?;
        let (listener, grpc_addr) =
            jiesu_runtime::grpc::bind("notification.grpc_addr", &cfg.grpc_addr)
                .await
                .map_err(|e| err(&e))?;
        let health =
            jiesu_runtime::grpc::health::<NotificationServiceServer<api::NotificationApi>>(
                ctx.shutdown.clone(),
            )
            .await;
        let router = jiesu_runtime::grpc::server()
            .add_service(health)
            .add_service(NotificationServiceServer::with_interceptor(
                api::NotificationApi::new(db.clone()),
                AuthInterceptor::new(verifier),
            ));
        let server = jiesu_runtime::grpc::serve(
            router,
            listener,
            TARGET,
            ctx.readiness.register("notification.grpc"),
            ctx.shutdown.clone(),
        );
        let wake = Arc::new(Notify::new());
        let consumer = spawn_consumer(
            bus.clone(),
            db.clone(),
            ConsumerSpec::new(CONSUMER_TICKET_DISPATCHED),
            events::TicketDispatchedHandler { wake: wake.clone() },
            ctx.shutdown.clone(),
            ctx.readiness
                .register("notification.consumer.ticket_dispatched"),
        );
        let notices = spawn_consumer(
            bus.clone(),
            db.clone(),
            ConsumerSpec::new(CONSUMER_NOTICE_ISSUED),
            events::NoticeIssuedHandler { wake: wake.clone() },
            ctx.shutdown.clone(),
            ctx.readiness
                .register("notification.consumer.notice_issued"),
        );
        let whistles = spawn_consumer(
            bus.clone(),
            db.clone(),
            ConsumerSpec::new(CONSUMER_WHISTLE_BLOWN),
            events::WhistleBlownHandler { wake: wake.clone() },
            ctx.shutdown.clone(),
            ctx.readiness
                .register("notification.consumer.whistle_blown"),
        );
        let broadcasts = spawn_consumer(
            bus.clone(),
            db.clone(),
            ConsumerSpec::new(CONSUMER_BROADCAST_REQUESTED),
            events::BroadcastHandler { wake: wake.clone() },
            ctx.shutdown.clone(),
            ctx.readiness
                .register("notification.consumer.broadcast_requested"),
        );
        let merged = spawn_consumer(
            bus,
            db.clone(),
            ConsumerSpec::new(CONSUMER_TICKET_MERGED),
            events::TicketMergedHandler { wake: wake.clone() },
            ctx.shutdown.clone(),
            ctx.readiness
                .register("notification.consumer.ticket_merged"),
        );
        let contacts = if cfg.contact_key.trim().is_empty() {
            tracing::warn!(
                "notification.contact_key is not set: notices to citizens wait until it is"
            );
            None
        } else {
            let channel = jiesu_runtime::grpc::lazy_channel(
                &cfg.intake_url,
                std::time::Duration::from_secs(2),
                std::time::Duration::from_secs(5),
            )
            .map_err(|e| err(&e))?;
            Some(delivery::Contacts::new(channel, cfg.contact_key.trim()).map_err(|e| err(&e))?)
        };
        let deliverer = delivery::Deliverer {
            db,
            sink: Arc::new(delivery::LogSink),
            contacts,
            wake,
        };
        let delivery_task = tokio::spawn(deliverer.run(
            ctx.shutdown.clone(),
            ctx.readiness.register("notification.delivery"),
        ));
        Ok(RunningTarget::new(
            TARGET,
            grpc_addr,
            vec![
                server,
                consumer,
                merged,
                notices,
                whistles,
                broadcasts,
                delivery_task,
            ],
        ))
    }
}
