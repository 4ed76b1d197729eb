use std::{
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

use jiesu_db::{
    DbConfig, SqlMigrations,
    sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement},
};

use crate::{database_server_url, run_detached, unique_tag};

/// A fresh database for one test, dropped (with force) when it goes away.
pub struct TestDb {
    pub name: String,
    pub url: String,
    server: String,
}

pub(crate) fn cfg(max: u32) -> DbConfig {
    DbConfig {
        url: database_server_url(),
        max_connections: max,
        min_connections: 0,
        ..DbConfig::default()
    }
}

async fn admin(server: &str) -> DatabaseConnection {
    let url = jiesu_db::with_database(server, "postgres").expect("server url");
    jiesu_db::connect(&url, &cfg(1))
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {server}: {e}"))
}

async fn exec(conn: &DatabaseConnection, sql: &str) {
    conn.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Drops test databases that earlier runs left behind (older than 2 hours).
async fn sweep_stale(conn: &DatabaseConnection) {
    let Ok(rows) = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT datname FROM pg_database WHERE datname LIKE 'jt\\_d\\_%'",
        ))
        .await
    else {
        return;
    };
    let cutoff = now_secs().saturating_sub(2 * 3600);
    for r in rows {
        let Ok(name) = r.try_get::<String>("", "datname") else {
            continue;
        };
        let created = name
            .split('_')
            .nth(2)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0);
        if created < cutoff {
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

impl TestDb {
    /// A database with `T`'s migrations applied, for `service` (a label).
    pub async fn new<T: SqlMigrations>(service: &str) -> TestDb {
        static SWEPT: OnceLock<()> = OnceLock::new();
        let server = database_server_url();
        let conn = admin(&server).await;
        if SWEPT.set(()).is_ok() {
            sweep_stale(&conn).await;
        }
        let template = format!("jt_tpl_{service}_{:016x}", jiesu_db::fingerprint::<T>());
        // One process builds the template; the others wait on the lock.
        exec(
            &conn,
            &format!(
                "SELECT pg_advisory_lock({})",
                jiesu_db::advisory_key(&template)
            ),
        )
        .await;
        let exists = conn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM pg_database WHERE datname = $1",
                [template.clone().into()],
            ))
            .await
            .expect("pg_database")
            .is_some();
        if !exists {
            let tmp = format!("jt_tmp_{}", unique_tag());
            exec(&conn, &format!("CREATE DATABASE \"{tmp}\"")).await;
            let url = jiesu_db::with_database(&server, &tmp).expect("url");
            jiesu_db::migrate::<T>(&url, &cfg(2))
                .await
                .unwrap_or_else(|e| panic!("migrating the {service} template: {e}"));
            exec(
                &conn,
                &format!("ALTER DATABASE \"{tmp}\" RENAME TO \"{template}\""),
            )
            .await;
        }
        exec(
            &conn,
            &format!(
                "SELECT pg_advisory_unlock({})",
                jiesu_db::advisory_key(&template)
            ),
        )
        .await;
        let name = format!("jt_d_{}_{}", now_secs(), unique_tag());
        exec(
            &conn,
            &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
        )
        .await;
        let _ = conn.close().await;
        let url = jiesu_db::with_database(&server, &name).expect("url");
        TestDb { name, url, server }
    }

    /// A database configuration whose `url_for(<service>, "")` is not used:
    /// pass [`TestDb::url`] as the service's `database_url` override.
    pub fn config(&self) -> DbConfig {
        cfg(8)
    }

    pub async fn connect(&self) -> DatabaseConnection {
        jiesu_db::connect(&self.url, &cfg(4))
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.name))
    }

    /// Runs a statement of the service's own schema (a service's own tests
    /// only); returns the rows it changed.
    pub async fn execute(&self, sql: &str) -> u64 {
        let conn = self.connect().await;
        let n = conn
            .execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows_affected();
        let _ = conn.close().await;
        n
    }

    /// One number from a `SELECT count(*) ...` style query.
    pub async fn count(&self, sql: &str) -> i64 {
        let conn = self.connect().await;
        let row = conn
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: no row"));
        let n = row
            .try_get_by_index::<i64>(0)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.close().await;
        n
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        run_detached(async move {
            let conn = admin(&server).await;
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
            let _ = conn.close().await;
        });
    }
}

/// Drops every database whose name starts with `prefix` (end-to-end runs
/// create them through `jiesu migrate`).
pub fn drop_databases_with_prefix(prefix: &str) {
    let prefix = prefix.to_owned();
    let server = database_server_url();
    run_detached(async move {
        let conn = admin(&server).await;
        let Ok(rows) = conn
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT datname FROM pg_database",
            ))
            .await
        else {
            return;
        };
        for r in rows {
            if let Ok(name) = r.try_get::<String>("", "datname")
                && name.starts_with(&prefix)
            {
                let _ = conn
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
            }
        }
        let _ = conn.close().await;
    });
}
