//! Database plumbing shared by every service that owns a database.
//!
//! Owns: where a service's database lives (`<server url>/<prefix><service>`),
//! creating it when missing, connecting with bounded pools, and applying a
//! service's migrations under a PostgreSQL advisory lock so replicas starting
//! together migrate once. Migrations are plain SQL files ([`SqlMigration`]).
//! Never: reads another service's database.

use std::time::Duration;

use jiesu_runtime::ConfigError;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use serde::Deserialize;

pub mod rekey;

pub use sea_orm;
pub use sea_orm_migration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbConfig {
    /// PostgreSQL server URL without a database name, e.g.
    /// `postgres://jiesu:secret@db:5432`. Each service uses its own database
    /// on it unless `<service>.database_url` says otherwise.
    pub url: String,
    /// Database name prefix: `jiesu_` gives `jiesu_intake`, `jiesu_dispatch`...
    pub name_prefix: String,
    pub max_connections: u32,
    pub min_connections: u32,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Apply pending migrations when a target starts (else `jiesu migrate`).
    pub migrate_on_start: bool,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432".into(),
            name_prefix: "jiesu_".into(),
            max_connections: 16,
            min_connections: 1,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            migrate_on_start: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("invalid database url: {0}")]
    Url(String),
}

impl DbConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let u = url::Url::parse(&self.url)
            .map_err(|e| ConfigError::invalid("database.url", e.to_string()))?;
        if !matches!(u.scheme(), "postgres" | "postgresql") {
            return Err(ConfigError::invalid(
                "database.url",
                "must be a postgres:// URL",
            ));
        }
        if !valid_identifier(&self.name_prefix) {
            return Err(ConfigError::invalid(
                "database.name_prefix",
                "only lowercase letters, digits and _ are allowed",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The URL of `service`'s database: `override_url` when given, else the
    /// server URL with `<prefix><service>` as database.
    pub fn url_for(&self, service: &str, override_url: &str) -> Result<String, DbError> {
        if !override_url.is_empty() {
            return Ok(override_url.to_owned());
        }
        with_database(&self.url, &format!("{}{service}", self.name_prefix))
    }
}

fn valid_identifier(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> Result<String, DbError> {
    let mut u = url::Url::parse(url).map_err(|e| DbError::Url(e.to_string()))?;
    u.set_path(&format!("/{name}"));
    Ok(u.to_string())
}

/// The database name of a URL.
pub fn database_name(url: &str) -> Result<String, DbError> {
    let u = url::Url::parse(url).map_err(|e| DbError::Url(e.to_string()))?;
    let name = u.path().trim_start_matches('/').to_owned();
    if name.is_empty() || !valid_identifier(&name) {
        return Err(DbError::Url(format!(
            "database name `{name}` must be lowercase letters, digits and _"
        )));
    }
    Ok(name)
}

pub async fn connect(url: &str, cfg: &DbConfig) -> Result<DatabaseConnection, DbError> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(cfg.max_connections)
        .min_connections(cfg.min_connections.min(cfg.max_connections))
        .connect_timeout(cfg.connect_timeout)
        .acquire_timeout(cfg.acquire_timeout)
        .sqlx_logging(false);
    Ok(Database::connect(opts).await?)
}

/// Creates the database named in `url` unless it exists. True if created.
pub async fn ensure_database(url: &str, cfg: &DbConfig) -> Result<bool, DbError> {
    let name = database_name(url)?;
    let admin = connect(&with_database(url, "postgres")?, &single(cfg)).await?;
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.clone().into()],
        ))
        .await?
        .is_some();
    let created = if exists {
        false
    } else {
        match admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            Ok(_) => true,
            // Another replica won the race: fine.
            Err(e) if e.to_string().contains("already exists") => false,
            Err(e) => return Err(e.into()),
        }
    };
    admin.close().await?;
    if created {
        tracing::info!(database = %name, "database created");
    }
    Ok(created)
}

fn single(cfg: &DbConfig) -> DbConfig {
    DbConfig {
        max_connections: 1,
        min_connections: 0,
        ..cfg.clone()
    }
}

/// A service's migrations, oldest first, as plain SQL scripts.
pub trait SqlMigrations: Send + Sync + 'static {
    fn list() -> Vec<SqlMigration>;
}

/// The sea-orm migrator of a [`SqlMigrations`] list.
pub struct Migrator<T>(std::marker::PhantomData<T>);

impl<T: SqlMigrations> MigratorTrait for Migrator<T> {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        T::list()
            .into_iter()
            .map(|m| Box::new(m) as Box<dyn MigrationTrait>)
            .collect()
    }
}

/// Changes whenever a migration is added or edited (tests key their
/// template databases by it).
pub fn fingerprint<T: SqlMigrations>() -> u64 {
    let mut text = String::new();
    for m in T::list() {
        text.push_str(m.name);
        text.push('\0');
        text.push_str(m.sql);
        text.push('\0');
    }
    advisory_key(&text) as u64
}

/// Applies `T`'s pending migrations while holding an advisory lock keyed by
/// the database, so concurrent starters wait instead of racing.
pub async fn migrate<T: SqlMigrations>(url: &str, cfg: &DbConfig) -> Result<(), DbError> {
    let lock_conn = connect(url, &single(cfg)).await?;
    let key = advisory_key(&database_name(url)?);
    lock_conn
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_lock($1)",
            [key.into()],
        ))
        .await?;
    let db = connect(url, &single(cfg)).await?;
    let result = Migrator::<T>::up(&db, None).await;
    db.close().await?;
    lock_conn
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_unlock($1)",
            [key.into()],
        ))
        .await?;
    lock_conn.close().await?;
    result?;
    Ok(())
}

pub fn advisory_key(name: &str) -> i64 {
    // FNV-1a: stable across processes and versions.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h as i64
}

/// A migration written as one SQL script (several statements allowed).
pub struct SqlMigration {
    pub name: &'static str,
    pub sql: &'static str,
}

impl MigrationName for SqlMigration {
    fn name(&self) -> &str {
        self.name
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for SqlMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(self.sql)
            .await?;
        Ok(())
    }
}

/// A service's connection pool: its database URL (`override_url` or
/// `<database.url>/<prefix><service>`), created and migrated first when
/// `database.migrate_on_start` is set.
pub async fn open<T: SqlMigrations>(
    service: &str,
    override_url: &str,
    cfg: &DbConfig,
) -> Result<DatabaseConnection, DbError> {
    let url = cfg.url_for(service, override_url)?;
    if cfg.migrate_on_start {
        ensure_database(&url, cfg).await?;
        migrate::<T>(&url, cfg).await?;
    }
    connect(&url, cfg).await
}

/// Whether `e` says the database could not be reached or went away
/// mid-statement (a restart, a failover), as opposed to refusing a query:
/// the caller should retry the same request later, so services answer it
/// as `Unavailable` and consumers retry it without counting an attempt.
pub fn unreachable(e: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error as SqlxError};
    let sqlx = match e {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(RuntimeErr::SqlxError(s))
        | DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s)) => s,
        DbErr::Conn(_) => return true,
        _ => return false,
    };
    match sqlx.as_ref() {
        SqlxError::Io(_)
        | SqlxError::Tls(_)
        | SqlxError::PoolTimedOut
        | SqlxError::PoolClosed
        | SqlxError::WorkerCrashed
        | SqlxError::Protocol(_) => true,
        // Class 08 (connection exception) and the server shutting down or
        // starting up (57P01-57P03).
        SqlxError::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_keep_credentials_and_swap_the_database() {
        let cfg = DbConfig {
            url: "postgres://jiesu:s3cret@db.internal:5432".into(),
            ..DbConfig::default()
        };
        assert_eq!(
            cfg.url_for("intake", "").unwrap(),
            "postgres://jiesu:s3cret@db.internal:5432/jiesu_intake"
        );
        assert_eq!(
            cfg.url_for("intake", "postgres://x@y/z").unwrap(),
            "postgres://x@y/z"
        );
        assert_eq!(
            database_name("postgres://a@b:5432/jiesu_dispatch").unwrap(),
            "jiesu_dispatch"
        );
        assert!(database_name("postgres://a@b:5432/Robert'); DROP").is_err());
    }
}
