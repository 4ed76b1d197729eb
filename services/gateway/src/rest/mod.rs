//! The public REST API (`/api/v1/...`), one module per resource. Each
//! module owns its request and answer types, its handlers and their OpenAPI
//! description, and exposes `routes()` (with `gateway.*` body limits where
//! its uploads need more than the default); `lib.rs` merges them. Handlers
//! translate: they check what the gateway can check alone, call the
//! services through a [`crate::backend::Call`] and shape the answer.

use chrono::{DateTime, Utc};
use jiesu_proto::time::from_timestamp;

pub mod attachments;
pub mod broadcasts;
pub mod buildings;
pub mod callbacks;
pub mod categories;
pub mod channels;
pub mod contact_reads;
pub mod duties;
pub mod duty_rules;
pub mod evaluation;
pub mod follow_ups;
pub mod grid_events;
pub mod grid_imports;
pub mod grid_workers;
pub mod grids;
pub mod health;
pub mod hotspots;
pub mod households;
pub mod inbox;
pub mod intake_stats;
pub mod invitations;
pub mod key_persons;
pub mod knowledge;
pub mod notification_templates;
pub mod notifications;
mod prelude;
pub mod proactive;
pub mod regions;
pub mod reports;
pub mod responsibilities;
pub mod settings;
pub mod ticket_lookup;
pub mod ticket_merges;
pub mod tickets;
pub mod tracking;
pub mod units;
pub mod work_order_actions;
pub mod work_orders;

/// A protobuf time as an answer's time.
fn at(ts: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.as_ref().and_then(from_timestamp)
}

/// Serde default for flags that are on unless the body says otherwise.
fn yes() -> bool {
    true
}
