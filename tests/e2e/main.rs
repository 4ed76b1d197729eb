//! End-to-end: the real `jiesu` binary, each target its own process, against
//! real PostgreSQL and NATS. Cargo builds the binary first (this test target
//! belongs to the `jiesu` package) and passes its path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod drills;
mod outlets;
mod platform;
mod slice;
mod telemetry;
mod timers;
