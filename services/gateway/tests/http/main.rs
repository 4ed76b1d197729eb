//! The public HTTP API with every service running in-process against real
//! PostgreSQL and NATS: the REST tickets API, channels and their signed
//! webhook, and the Open311 GeoReport v2 conformance suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod attachments;
mod channels;
mod citizen;
mod directory;
mod grid_work;
mod grids;
mod knowledge;
mod malformed;
mod merge;
mod open311;
mod stack;
mod tickets;
mod work_orders;
