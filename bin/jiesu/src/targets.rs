//! The target table: one row per target the binary runs. `serve`,
//! `migrate`, `rekey` and `seed-demo` loop over it; adding a target is
//! adding a row (and its settings section).

use std::{future::Future, pin::Pin};

use anyhow::{anyhow, bail};
use jiesu_db::{DbConfig, DbError, rekey::Column};
use jiesu_dispatch::Dispatch;
use jiesu_evaluation::EvaluationTarget;
use jiesu_gateway::Gateway;
use jiesu_grid::GridTarget;
use jiesu_intake::Intake;
use jiesu_notification::NotificationTarget;
use jiesu_runtime::ConfigError;
use jiesu_service::{Env, RunningTarget, StartError, Target, has_database};

use crate::{demo::Seeding, settings::Settings};

pub type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Loads a target's part of the demo tenant.
pub type Seed = for<'a> fn(&'a Seeding<'a>) -> Fut<'a, anyhow::Result<()>>;

/// What the binary knows of one target.
pub struct Row {
    pub name: &'static str,
    /// Checks the target's settings section (before anything starts).
    pub validate: fn(&Settings) -> Result<(), ConfigError>,
    /// Starts it in this process.
    pub build: for<'a> fn(&'a Settings, &'a Env) -> Fut<'a, Result<RunningTarget, StartError>>,
    /// Its database URL; `None` for a target that keeps no data.
    pub database: fn(&Settings) -> Option<Result<String, DbError>>,
    /// Applies its migrations to the database at a URL.
    pub migrate: for<'a> fn(&'a str, &'a DbConfig) -> Fut<'a, Result<(), DbError>>,
    /// Columns sealed with the personal-data keyring (`rekey`); a target
    /// with any needs the keyring to start.
    pub sealed: &'static [Column],
    /// Loads its part of the demo tenant (`seed-demo`).
    pub seed: Option<Seed>,
}

/// Every target, in the order `all` starts and seeds them.
pub fn table() -> Vec<Row> {
    vec![
        row::<Gateway>(),
        row::<Intake>().seeded(crate::demo::seed_intake),
        row::<Dispatch>().seeded(crate::demo::seed_dispatch),
        row::<GridTarget>().seeded(crate::demo::seed_grid),
        row::<NotificationTarget>(),
        row::<EvaluationTarget>(),
    ]
}

/// The rows named in `--target` (`all`, or a list), in the order given.
pub fn pick(list: &[String]) -> anyhow::Result<Vec<Row>> {
    let mut table = table();
    let mut picked: Vec<Row> = Vec::new();
    for raw in list {
        let name = raw.trim();
        if name == "all" {
            return Ok(table);
        }
        if picked.iter().any(|r| r.name == name) {
            continue;
        }
        let Some(at) = table.iter().position(|r| r.name == name) else {
            let known: Vec<&str> = table.iter().chain(&picked).map(|r| r.name).collect();
            bail!("unknown target `{name}` (known: all, {})", known.join(", "));
        };
        picked.push(table.remove(at));
    }
    if picked.is_empty() {
        bail!("no target given");
    }
    Ok(picked)
}

/// The settings section of a target.
pub trait Section: Target {
    fn section(s: &Settings) -> &Self::Config;
}

impl Section for Gateway {
    fn section(s: &Settings) -> &Self::Config {
        &s.gateway
    }
}

impl Section for Intake {
    fn section(s: &Settings) -> &Self::Config {
        &s.intake
    }
}

impl Section for Dispatch {
    fn section(s: &Settings) -> &Self::Config {
        &s.dispatch
    }
}

impl Section for GridTarget {
    fn section(s: &Settings) -> &Self::Config {
        &s.grid
    }
}

impl Section for NotificationTarget {
    fn section(s: &Settings) -> &Self::Config {
        &s.notification
    }
}

impl Section for EvaluationTarget {
    fn section(s: &Settings) -> &Self::Config {
        &s.evaluation
    }
}

fn row<T: Section>() -> Row {
    Row {
        name: T::NAME,
        validate: validate::<T>,
        build: build::<T>,
        database: database::<T>,
        migrate: migrate::<T>,
        sealed: T::SEALED,
        seed: None,
    }
}

impl Row {
    fn seeded(mut self, seed: Seed) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Its database URL, or why it has none.
    pub fn database_url(&self, s: &Settings) -> anyhow::Result<String> {
        match (self.database)(s) {
            Some(url) => Ok(url?),
            None => Err(anyhow!("{} keeps no data", self.name)),
        }
    }

    pub fn has_database(&self, s: &Settings) -> bool {
        (self.database)(s).is_some()
    }
}

fn validate<T: Section>(s: &Settings) -> Result<(), ConfigError> {
    if !T::SEALED.is_empty() && s.pii.keyring_file.is_empty() {
        return Err(ConfigError::invalid(
            "pii.keyring_file",
            format!(
                "must be set: {} stores personal data (generate one with `jiesu dev-keys`)",
                T::NAME
            ),
        ));
    }
    T::validate(T::section(s))
}

fn build<'a, T: Section>(
    s: &'a Settings,
    env: &'a Env,
) -> Fut<'a, Result<RunningTarget, StartError>> {
    Box::pin(T::build(T::section(s), env))
}

fn database<T: Section>(s: &Settings) -> Option<Result<String, DbError>> {
    has_database::<T>().then(|| s.database.url_for(T::NAME, T::database_url(T::section(s))))
}

fn migrate<'a, T: Section>(url: &'a str, cfg: &'a DbConfig) -> Fut<'a, Result<(), DbError>> {
    Box::pin(jiesu_db::migrate::<T::Migrations>(url, cfg))
}
