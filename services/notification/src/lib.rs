//! Notification: tells units and people what they must know, exactly once.
//!
//! Owns notifications and their delivery state; publishes nothing. Consumes
//! dispatch's `ticket.dispatched`, `work_order.notice_issued` (三单
//! reminders, urges and supervise orders) and `work_order.whistle_blown`
//! (summons to report in), all to units; intake's `ticket.merged` (to the
//! caller); grid's `broadcast.requested` (to each grid's residents' group);
//! evaluation's `warning.raised` and `warning.cleared` (to the unit and the
//! supervisors) and `callback.invited` (the SMS asking the caller to rate a
//! closed request, with its one-time link);
//! each through an inbox (and a unique key per event and recipient). Stores
//! one notification per recipient and delivers it through the chain of
//! channels its tenant routes that kind of recipient to (SMS through Aliyun,
//! Tencent Cloud or a province's gateway, email, WeCom robots, signed
//! webhooks; decision 0032), with retries and fallbacks. Never holds
//! citizens' personal data: a citizen's contact is asked of intake at the
//! moment of sending (with this service's key) and forgotten once sent.
//! Staff recipients' addresses (the recipient directory) are sealed.

pub mod api;
pub mod channels;
pub mod delivery;
pub mod domain;
pub mod events;
pub mod inbox;
pub mod store;
pub mod templates;

use std::{collections::HashMap, sync::Arc, time::Duration};

use jiesu_db::SqlMigration;
use jiesu_proto::notification::notification_service_server::NotificationServiceServer;
use jiesu_service::{ConfigError, Env, RunningTarget, ServiceBuilder, StartError, Target};
use serde::Deserialize;
use tokio::sync::Notify;

pub const TARGET: &str = "notification";
pub const CONSUMER_TICKET_DISPATCHED: &str = "notification-ticket-dispatched";
pub const CONSUMER_TICKET_MERGED: &str = "notification-ticket-merged";
pub const CONSUMER_NOTICE_ISSUED: &str = "notification-notice-issued";
pub const CONSUMER_WHISTLE_BLOWN: &str = "notification-whistle-blown";
pub const CONSUMER_BROADCAST_REQUESTED: &str = "notification-broadcast-requested";
pub const CONSUMER_WARNING_RAISED: &str = "notification-warning-raised";
pub const CONSUMER_WARNING_CLEARED: &str = "notification-warning-cleared";
pub const CONSUMER_CALLBACK_INVITED: &str = "notification-callback-invited";

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
    /// The address citizens reach the gateway at (e.g.
    /// `https://12345.example.gov.cn`): the base of links sent to them.
    pub public_url: String,
    /// Channel instances by name (decision 0032; docs/configuration.md).
    pub channels: HashMap<String, channels::ChannelConfig>,
    /// `routes.<tenant or *>.<recipient kind>`: the channels tried in
    /// order. A recipient kind no route names goes to the log.
    pub routes: channels::config::Routes,
    /// The first retry's wait on a channel; each next one doubles it.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// China time in which citizens get no message unless it is urgent
    /// (`HH:MM-HH:MM`; empty: none). Held messages go out when it ends.
    pub quiet_hours: String,
}

impl Default for NotificationConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:50056".into(),
            database_url: String::new(),
            intake_url: "http://127.0.0.1:50051".into(),
            contact_key: String::new(),
            public_url: "http://localhost:8080".into(),
            channels: HashMap::new(),
            routes: HashMap::new(),
            retry_base: Duration::from_secs(5),
            quiet_hours: "22:00-08:00".into(),
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
            jiesu_bus::migrations::bus_stream_marks(),
            SqlMigration {
                name: "m20261205_000002_links",
                sql: include_str!("../migrations/0002_links.sql"),
            },
            SqlMigration {
                name: "m20261207_000003_delivery",
                sql: include_str!("../migrations/0003_delivery.sql"),
            },
        ]
    }
}

pub struct NotificationTarget;

impl Target for NotificationTarget {
    const NAME: &'static str = TARGET;
    type Config = NotificationConfig;
    type Migrations = Migrations;
    const SEALED: &'static [jiesu_db::rekey::Column] = &[jiesu_db::rekey::Column {
        table: "recipient_addresses",
        id: "id",
        column: "address_enc",
        aad: "notification.recipient_addresses.address:{tenant}:{id}",
    }];

    jiesu_service::grpc_service_placement!();

    fn validate(cfg: &NotificationConfig) -> Result<(), ConfigError> {
        jiesu_runtime::config::parse_addr("notification.grpc_addr", &cfg.grpc_addr)?;
        if !(cfg.public_url.starts_with("http://") || cfg.public_url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "notification.public_url",
                "must be an http(s):// URL",
            ));
        }
        if cfg.retry_base < Duration::from_millis(10) || cfg.retry_base > Duration::from_secs(600) {
            return Err(ConfigError::invalid(
                "notification.retry_base",
                "must be between 10ms and 10m",
            ));
        }
        channels::Channels::build(&cfg.channels, &cfg.routes)
            .map_err(|e| ConfigError::invalid("notification.channels", e))?;
        delivery::QuietHours::parse(&cfg.quiet_hours)
            .map_err(|e| ConfigError::invalid("notification.quiet_hours", e))?;
        Ok(())
    }

    async fn build(cfg: &NotificationConfig, env: &Env) -> Result<RunningTarget, StartError> {
        let svc = ServiceBuilder::open::<Self>(cfg, env).await?;
        if ["//localhost", "//127.", "//[::1]"]
            .iter()
            .any(|h| cfg.public_url.contains(h))
        {
            tracing::warn!(
                public_url = %cfg.public_url,
                "notification.public_url is a local address: links sent to citizens will not open on their phones; set it to the gateway's public address"
            );
        }
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
            .map_err(|e| svc.error(e))?;
            Some(
                delivery::Contacts::new(channel, cfg.contact_key.trim())
                    .map_err(|e| svc.error(e))?,
            )
        };
        let channels = Arc::new(
            channels::Channels::build(&cfg.channels, &cfg.routes).map_err(|e| svc.error(e))?,
        );
        let keyring = env.keyring(TARGET)?;
        let feed = inbox::Feed::new();
        let template_cache = Arc::new(templates::Cache::new());
        let listening = (feed.clone(), svc.db());
        // Every consumer wakes the deliverer once its notifications are stored.
        let wake = Arc::new(Notify::new());
        let deliverer = delivery::Deliverer {
            db: svc.db(),
            channels,
            contacts,
            keyring: keyring.clone(),
            wake: wake.clone(),
            retry_base: cfg.retry_base,
            public_url: cfg.public_url.trim_end_matches('/').to_owned(),
            quiet_hours: delivery::QuietHours::parse(&cfg.quiet_hours).map_err(|e| svc.error(e))?,
            templates: template_cache.clone(),
        };
        let (delivering, api) = (
            svc.readiness("delivery"),
            api::NotificationApi::new(
                svc.db(),
                keyring,
                wake.clone(),
                feed.clone(),
                template_cache,
            ),
        );
        svc.grpc(NotificationServiceServer::new(api))
            .consumer(
                CONSUMER_TICKET_DISPATCHED,
                events::TicketDispatchedHandler { wake: wake.clone() },
            )
            .consumer(
                CONSUMER_NOTICE_ISSUED,
                events::NoticeIssuedHandler { wake: wake.clone() },
            )
            .consumer(
                CONSUMER_WHISTLE_BLOWN,
                events::WhistleBlownHandler { wake: wake.clone() },
            )
            .consumer(
                CONSUMER_BROADCAST_REQUESTED,
                events::BroadcastHandler { wake: wake.clone() },
            )
            .consumer(
                CONSUMER_WARNING_RAISED,
                events::WarningHandler::<jiesu_proto::evaluation::WarningRaised>::new(wake.clone()),
            )
            .consumer(
                CONSUMER_WARNING_CLEARED,
                events::WarningHandler::<jiesu_proto::evaluation::WarningCleared>::new(
                    wake.clone(),
                ),
            )
            .consumer(
                CONSUMER_CALLBACK_INVITED,
                events::CallbackInvitedHandler {
                    wake: wake.clone(),
                    public_url: cfg.public_url.trim_end_matches('/').to_owned(),
                },
            )
            .consumer(CONSUMER_TICKET_MERGED, events::TicketMergedHandler { wake })
            .task(move |stop| deliverer.run(stop, delivering))
            .task(move |stop| listening.0.run(listening.1, stop))
            .serve(&cfg.grpc_addr)
            .await
    }
}
