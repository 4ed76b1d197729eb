//! The public HTTP API with every service running in-process against real
//! PostgreSQL and NATS: the REST tickets API, channels and their signed
//! webhook, the Open311 GeoReport v2 conformance suite, and error messages
//! in the caller's language.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod access_roles;
mod attachments;
mod channels;
mod citizen;
mod contract;
mod directory;
mod evaluation;
mod grid_work;
mod grids;
mod knowledge;
mod languages;
mod malformed;
mod merge;
mod notifications;
mod open311;
mod stack;
mod tickets;
mod work_orders;
