//! What a process gives every target it runs.

use std::sync::Arc;

use jiesu_auth::Verifier;
use jiesu_bus::Bus;
use jiesu_common::clock::Clock;
use jiesu_db::DbConfig;
use jiesu_pii::Keyring;
use jiesu_runtime::{StartError, TargetCtx};

/// Shared by the targets of one process (`serve --target all` runs them
/// all on one `Env`; a test builds one per stack).
#[derive(Clone)]
pub struct Env {
    /// Shutdown token, readiness registry and drain budget.
    pub ctx: TargetCtx,
    /// Where each service's database is found (`database.*`).
    pub database: DbConfig,
    /// Verifies the bearer token of every gRPC call (and of the gateway's
    /// HTTP requests).
    pub verifier: Verifier,
    /// What time it is for the services (a test may move it on).
    pub clock: Clock,
    bus: Option<Bus>,
    keyring: Option<Arc<Keyring>>,
}

impl Env {
    pub fn new(ctx: TargetCtx, database: DbConfig, verifier: Verifier) -> Self {
        Self {
            ctx,
            database,
            verifier,
            clock: Clock::system(),
            bus: None,
            keyring: None,
        }
    }

    /// Another clock than the system's (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The bus, for processes running a target that publishes or consumes.
    pub fn with_bus(mut self, bus: Bus) -> Self {
        self.bus = Some(bus);
        self
    }

    /// The personal-data keyring, for processes running a target that
    /// seals personal data.
    pub fn with_keyring(mut self, keyring: Arc<Keyring>) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The bus, or why `target` cannot start without one.
    pub fn bus(&self, target: &'static str) -> Result<Bus, StartError> {
        self.bus
            .clone()
            .ok_or_else(|| StartError::new(target, "no bus connected (bus.url)"))
    }

    /// The keyring, or why `target` cannot start without one.
    pub fn keyring(&self, target: &'static str) -> Result<Arc<Keyring>, StartError> {
        self.keyring.clone().ok_or_else(|| {
            StartError::new(target, "no personal-data keyring loaded (pii.keyring_file)")
        })
    }
}
