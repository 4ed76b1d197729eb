//! The shape every Jiesu service shares, written once.
//!
//! Owns: [`Env`], what the process hands each target it runs (shutdown and
//! readiness, database settings, the bus, the token verifier, the personal
//! data keyring); the [`Target`] trait the `jiesu` binary and the tests run
//! a service through; and [`ServiceBuilder`], with which a service declares
//! its database, gRPC services, event consumers, background tasks and outbox,
//! while the builder does the wiring the same way for all: gRPC health, the
//! token interceptor, a guard that turns a handler's panic into `Internal`
//! ([`panics`]), a readiness entry per part, the relay that drains after
//! every writer, graceful shutdown.
//!
//! Never: knows a service's data or rules. A service's `build` reads as a
//! declaration of what it has; everything here is plumbing.

mod builder;
mod env;
pub mod panics;

pub use builder::ServiceBuilder;
pub use env::Env;
pub use jiesu_runtime::{ConfigError, RunningTarget, StartError, TargetCtx};

use std::future::Future;

use jiesu_db::{SqlMigration, SqlMigrations, rekey::Column};

/// A target the `jiesu` binary runs (`serve --target <NAME>`).
pub trait Target: Send + Sync + 'static {
    /// The target's name: in `--target`, its database `jiesu_<NAME>`, its
    /// stream, its configuration section, its readiness entries.
    const NAME: &'static str;
    /// Its configuration section.
    type Config: Default + Clone + Send + Sync + 'static;
    /// Its database's migrations, oldest first; [`NoDatabase`] for a target
    /// that keeps no data.
    type Migrations: SqlMigrations;
    /// Columns sealed with the personal-data keyring (re-encrypted by
    /// `jiesu rekey`); a target with any needs the keyring to start.
    const SEALED: &'static [Column] = &[];

    /// Puts the target on `addr` and, if it has a database, at
    /// `database_url` (tests: `127.0.0.1:0` and a fresh database).
    fn place(cfg: &mut Self::Config, addr: &str, database_url: &str);

    /// The URL override of its database in `cfg` (empty: derived from
    /// `database.url`).
    fn database_url(cfg: &Self::Config) -> &str;

    /// Refuses settings that cannot work, naming the key; checked before
    /// any target of the process starts, and again by `build`.
    fn validate(cfg: &Self::Config) -> Result<(), ConfigError>;

    /// Starts serving; the port is bound when this returns.
    fn build(
        cfg: &Self::Config,
        env: &Env,
    ) -> impl Future<Output = Result<RunningTarget, StartError>> + Send;
}

/// [`Target::place`] and [`Target::database_url`] for a configuration with
/// `grpc_addr` and `database_url` fields (every gRPC service's); used inside
/// the `impl Target` block.
#[macro_export]
macro_rules! grpc_service_placement {
    () => {
        fn place(cfg: &mut Self::Config, addr: &str, database_url: &str) {
            cfg.grpc_addr = addr.into();
            cfg.database_url = database_url.into();
        }

        fn database_url(cfg: &Self::Config) -> &str {
            &cfg.database_url
        }
    };
}

/// Whether target `T` owns a database.
pub fn has_database<T: Target>() -> bool {
    !T::Migrations::list().is_empty()
}

/// The migrations of a target that keeps no data.
pub struct NoDatabase;

impl SqlMigrations for NoDatabase {
    fn list() -> Vec<SqlMigration> {
        Vec::new()
    }
}
