//! Evaluation: judges the work from its own copy of the facts.
//!
//! Consumes intake's `ticket.received`, `ticket.merged`, `ticket.unmerged`
//! and `ticket.withdrawn`, and dispatch's `ticket.dispatched` and every
//! `work_order.*` event, into one facts row per ticket with additive day
//! rollups kept in the same transaction (see docs/decisions/0030). Opens a
//! callback round (回访) when a ticket closes; takes one verdict per round
//! from an agent's call, the citizen's app or the tracking page; publishes
//! `callback.verdict`, which dispatch turns into a 重办 when the citizen is
//! unsatisfied and the problem unresolved. Answers the 三率 and the other
//! rates per unit, region, category and channel over any period with the
//! tenant's formula in force for it. Never reads another service's tables.

pub mod api;
pub mod callbacks;
pub mod domain;
pub mod events;
pub mod policies;
pub mod proactive;
pub mod store;
pub mod warnings;

use events::FactsHandler;
use jiesu_db::SqlMigration;
use jiesu_proto::{
    dispatch::{AnyWorkOrderEvent, TicketDispatched},
    evaluation::{
        evaluation_service_server::EvaluationServiceServer,
        public_evaluation_service_server::PublicEvaluationServiceServer,
    },
    intake::{
        TicketMerged, TicketReceived, TicketUnmerged, TicketWithdrawn,
        public_intake_service_client::PublicIntakeServiceClient,
    },
};
use jiesu_service::{ConfigError, Env, RunningTarget, ServiceBuilder, StartError, Target};
use serde::Deserialize;

pub const TARGET: &str = "evaluation";
pub const CONSUMER_TICKET_RECEIVED: &str = "evaluation-ticket-received";
pub const CONSUMER_TICKET_DISPATCHED: &str = "evaluation-ticket-dispatched";
pub const CONSUMER_WORK_ORDERS: &str = "evaluation-work-orders";
pub const CONSUMER_TICKET_MERGED: &str = "evaluation-ticket-merged";
pub const CONSUMER_TICKET_UNMERGED: &str = "evaluation-ticket-unmerged";
pub const CONSUMER_TICKET_WITHDRAWN: &str = "evaluation-ticket-withdrawn";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    pub grpc_addr: String,
    /// Full database URL; empty means `<database.url>/<prefix>evaluation`.
    pub database_url: String,
    /// Intake's gRPC address: the tracking page's rating is proved there.
    pub intake_url: String,
    /// How often the early-warning rules are checked.
    #[serde(with = "humantime_serde")]
    pub warning_interval: std::time::Duration,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:50055".into(),
            database_url: String::new(),
            intake_url: "http://127.0.0.1:50051".into(),
            warning_interval: std::time::Duration::from_secs(60),
        }
    }
}

/// Evaluation's migrations, oldest first.
pub struct Migrations;

impl jiesu_db::SqlMigrations for Migrations {
    fn list() -> Vec<SqlMigration> {
        vec![
            jiesu_bus::migrations::bus_tables(),
            jiesu_bus::migrations::bus_stream_marks(),
            SqlMigration {
                name: "m20261205_000001_evaluation",
                sql: include_str!("../migrations/0001_evaluation.sql"),
            },
            SqlMigration {
                name: "m20261205_000002_warnings",
                sql: include_str!("../migrations/0002_warnings.sql"),
            },
            SqlMigration {
                name: "m20261205_000003_proactive",
                sql: include_str!("../migrations/0003_proactive.sql"),
            },
            SqlMigration {
                name: "m20261205_000004_invitations",
                sql: include_str!("../migrations/0004_invitations.sql"),
            },
        ]
    }
}

pub struct EvaluationTarget;

impl Target for EvaluationTarget {
    const NAME: &'static str = TARGET;
    type Config = EvaluationConfig;
    type Migrations = Migrations;

    jiesu_service::grpc_service_placement!();

    fn validate(cfg: &EvaluationConfig) -> Result<(), ConfigError> {
        jiesu_runtime::config::parse_addr("evaluation.grpc_addr", &cfg.grpc_addr)?;
        if cfg.warning_interval.is_zero()
            || cfg.warning_interval > std::time::Duration::from_secs(3600)
        {
            return Err(ConfigError::invalid(
                "evaluation.warning_interval",
                "must be between 1ms and 1h",
            ));
        }
        Ok(())
    }

    async fn build(cfg: &EvaluationConfig, env: &Env) -> Result<RunningTarget, StartError> {
        let svc = ServiceBuilder::open::<Self>(cfg, env)
            .await?
            .relay_outbox()
            .await?;
        let channel = jiesu_runtime::grpc::lazy_channel(
            &cfg.intake_url,
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(5),
        )
        .map_err(|e| svc.error(e))?;
        let core = api::Core {
            db: svc.db(),
            outbox: svc.outbox(),
            intake: PublicIntakeServiceClient::new(channel),
        };
        let (db, outbox, every) = (svc.db(), svc.outbox(), cfg.warning_interval);
        let relay = svc.outbox();
        svc.grpc(
            EvaluationServiceServer::new(api::EvaluationApi::new(core.clone()))
                // A history import travels in one message.
                .max_decoding_message_size(64 << 20),
        )
        // The tracking page: proved by tracking number and phone digits.
        .grpc_own_auth(PublicEvaluationServiceServer::new(
            api::PublicEvaluationApi::new(core),
        ))
        .consumer(
            CONSUMER_TICKET_RECEIVED,
            FactsHandler::<TicketReceived>::new(relay.clone()),
        )
        .consumer(
            CONSUMER_TICKET_DISPATCHED,
            FactsHandler::<TicketDispatched>::new(relay.clone()),
        )
        .consumer(
            CONSUMER_WORK_ORDERS,
            FactsHandler::<AnyWorkOrderEvent>::new(relay.clone()),
        )
        .consumer(
            CONSUMER_TICKET_MERGED,
            FactsHandler::<TicketMerged>::new(relay.clone()),
        )
        .consumer(
            CONSUMER_TICKET_UNMERGED,
            FactsHandler::<TicketUnmerged>::new(relay.clone()),
        )
        .consumer(
            CONSUMER_TICKET_WITHDRAWN,
            FactsHandler::<TicketWithdrawn>::new(relay),
        )
        .task(move |stop| warnings::run(db, outbox, every, stop))
        .serve(&cfg.grpc_addr)
        .await
    }
}
