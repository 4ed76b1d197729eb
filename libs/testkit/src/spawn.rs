//! Services started in the test's own process, the way `jiesu serve` starts
//! them, on port 0 against a fresh database each.

use std::net::SocketAddr;

use jiesu_auth::Verifier;
use jiesu_common::clock::ManualClock;
use jiesu_runtime::{ReadinessRegistry, TargetCtx};
use jiesu_service::{Env, Target, has_database};
use tokio_util::sync::CancellationToken;

use crate::{TestBus, TestDb, TestKeys};

/// What the targets of one test share: a private NATS prefix, one set of
/// keys (tokens, keyring), one clock and one shutdown. Dropping it stops
/// them all.
pub struct TestEnv {
    pub keys: TestKeys,
    pub bus: TestBus,
    pub verifier: Verifier,
    /// The services' time: `clock.advance(..)` makes time pass for them.
    pub clock: ManualClock,
    stop: CancellationToken,
    readiness: ReadinessRegistry,
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        let keys = TestKeys::new();
        let verifier = Verifier::start(&keys.auth_config())
            .await
            .unwrap_or_else(|e| panic!("token verifier: {e}"));
        TestEnv {
            keys,
            bus: TestBus::new(),
            verifier,
            clock: ManualClock::new(),
            stop: CancellationToken::new(),
            readiness: ReadinessRegistry::default(),
        }
    }

    /// What a target started by this test gets: its own connection to the
    /// bus (as a separate process would have), the keys, and `stop`.
    pub async fn env(&self, stop: CancellationToken) -> Env {
        let ctx = TargetCtx {
            shutdown: stop,
            readiness: self.readiness.clone(),
            grace: std::time::Duration::from_secs(5),
        };
        Env::new(ctx, crate::db::cfg(8), self.verifier.clone())
            .with_bus(self.bus.connect().await)
            .with_keyring(self.keys.keyring())
            .with_clock(self.clock.clock())
    }

    /// Starts `T` on a fresh database of its own (none for a target that
    /// keeps no data); `tweak` adjusts its configuration first.
    pub async fn spawn<T: Target>(&self, tweak: impl FnOnce(&mut T::Config)) -> Spawned {
        let db = if has_database::<T>() {
            Some(TestDb::new::<T::Migrations>(T::NAME).await)
        } else {
            None
        };
        let url = db.as_ref().map(|d| d.url.clone()).unwrap_or_default();
        let mut spawned = self.start::<T>(&url, tweak).await;
        spawned.db = db;
        spawned
    }

    /// Starts `T` on `db`, which the test created (and seeded) itself.
    pub async fn spawn_on<T: Target>(
        &self,
        db: &TestDb,
        tweak: impl FnOnce(&mut T::Config),
    ) -> Spawned {
        self.start::<T>(&db.url, tweak).await
    }

    async fn start<T: Target>(
        &self,
        database_url: &str,
        tweak: impl FnOnce(&mut T::Config),
    ) -> Spawned {
        let mut cfg = T::Config::default();
        T::place(&mut cfg, "127.0.0.1:0", database_url);
        tweak(&mut cfg);
        let stop = self.stop.child_token();
        let running = T::build(&cfg, &self.env(stop.clone()).await)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Spawned {
            addr: running.addr(),
            db: None,
            stop,
            done: Some(tokio::spawn(running.run_until_stopped())),
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A target running in the test; stopped when dropped.
pub struct Spawned {
    /// Where it listens (gRPC, or HTTP for the gateway).
    pub addr: SocketAddr,
    /// Its database, when [`TestEnv::spawn`] created it.
    pub db: Option<TestDb>,
    stop: CancellationToken,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Spawned {
    /// `http://<addr>`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The database [`TestEnv::spawn`] created.
    pub fn db(&self) -> &TestDb {
        self.db
            .as_ref()
            .unwrap_or_else(|| panic!("this target was started on the test's own database"))
    }

    /// Stops it as SIGTERM would; in-flight work drains.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops it and waits until it has drained.
    pub async fn stopped(mut self) {
        self.stop.cancel();
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
