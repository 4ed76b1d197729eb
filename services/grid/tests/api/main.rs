//! Grid's behaviour through its gRPC API, against real PostgreSQL and
//! NATS: one grid started on port 0 per test with a fresh database and a
//! private bus prefix, callers holding tokens signed by test keys. What
//! another service would do (intake's `ticket.received`) is published on
//! the bus directly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod duties;
mod helpers;
mod layers;
mod matters;
mod people;
mod reshape;
mod streaming;
