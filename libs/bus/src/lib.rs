//! Facts between services over NATS JetStream, never lost, never applied twice.
//!
//! Owns: subjects and streams (`jiesu.<context>.<tenant>.<event>`, one stream
//! per context), the envelope headers (`Nats-Msg-Id`, `traceparent`,
//! `Jiesu-Tenant`, `Jiesu-Event`), the transactional outbox and its relay,
//! durable pull consumers that record each handled event in an inbox row in
//! the same transaction as the effect, bounded redelivery with backoff, and
//! the dead-letter stream.
//!
//! Never: publishes outside the outbox, acks before the effect is committed,
//! or carries personal data (events are built without it; see jiesu-pii).

mod config;
mod consumer;
mod envelope;
pub mod migrations;
mod outbox;

pub use config::BusConfig;
pub use consumer::{ConsumerSpec, Delivery, HandleError, Handler, spawn_consumer};
pub use envelope::{
    Bus, BusError, DEAD_LETTER_STREAM, H_CONSUMER, H_DELIVERED, H_ERROR, H_EVENT, H_MSG_ID,
    H_ORIGINAL_SUBJECT, H_TENANT, H_TRACEPARENT,
};
pub use outbox::{Outbox, Relay, replay};
