#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Test helpers that give tests the real thing (STYLE.md: tests against the
//! real thing). Never a mock of PostgreSQL or NATS.
//!
//! - [`TestDb`]: a fresh database per test, copied from a template migrated
//!   once per migration set; dropped when the test ends.
//! - [`TestBus`]: a unique subject root and stream prefix per test, so tests
//!   share one NATS server without seeing each other; streams deleted at end.
//! - [`TestKeys`]: a development signing key and a personal-data keyring in a
//!   temporary directory, and tokens signed with them.
//! - [`wait_until`]: polling with a deadline (never a fixed sleep).
//! - [`TestEnv`]: targets started in the test's process as `jiesu serve`
//!   starts them, on port 0 with a fresh database each ([`Spawned`]).
//! - [`ServiceProcess`]: the real `jiesu` binary as a child process, with
//!   its logs captured, `kill -9` and restart; [`TargetProcess`]: one
//!   `serve --target` process on free ports, ready when `/readyz` says so.
//! - [`PgCluster`], [`NatsServer`]: servers of the test's own for fault
//!   drills that restart or wipe them.
//!
//! Servers come from `JIESU_TEST_DATABASE_URL` (a PostgreSQL server URL
//! without database) and `JIESU_TEST_NATS_URL`, defaulting to the local ones.

mod bus;
mod db;
mod keys;
mod process;
mod servers;
mod smtp;
mod spawn;
mod wait;

pub use bus::TestBus;
pub use db::{TestDb, drop_databases_with_prefix};
pub use keys::TestKeys;
pub use process::{ServiceProcess, TargetProcess};
pub use servers::{NatsServer, PgCluster};
pub use smtp::{Mail, SmtpSink};
pub use spawn::{Spawned, TestEnv};
pub use wait::{free_port, wait_until};

/// PostgreSQL server URL for tests (no database in it).
pub fn database_server_url() -> String {
    std::env::var("JIESU_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// NATS URL for tests.
pub fn nats_url() -> String {
    std::env::var("JIESU_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A short random tag for names.
pub fn unique_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// Runs `f` on a fresh thread with its own runtime: cleanup from `Drop`,
/// which may run inside (or outside) a test's runtime.
pub(crate) fn run_detached<F>(f: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let handle = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(f);
        }
    });
    let _ = handle.join();
}
