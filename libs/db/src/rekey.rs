//! Re-encrypting sealed columns with the keyring's active key, so that an
//! old key can be removed (rotation without downtime). Each service lists
//! its sealed columns; `jiesu rekey --target <service>` runs this over them.
//! Each batch locks its rows with `FOR UPDATE SKIP LOCKED`, re-seals them and
//! commits: safe to repeat and to run while serving.

use jiesu_pii::{Keyring, PiiError};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};

/// A sealed column: table, key column (cast to text for the associated
/// data), the column, and how its associated data is formed.
pub struct Column {
    pub table: &'static str,
    pub id: &'static str,
    pub column: &'static str,
    /// `{id}` is replaced by the row's `id` column, `{tenant}` by its
    /// `tenant` column.
    pub aad: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("{table}.{column}: {source}")]
    Pii {
        table: &'static str,
        column: &'static str,
        source: PiiError,
    },
}

/// What a run changed, per `table.column`.
#[derive(Debug, Default)]
pub struct RekeyReport {
    pub resealed: Vec<(String, u64)>,
}

impl RekeyReport {
    pub fn total(&self) -> u64 {
        self.resealed.iter().map(|(_, n)| n).sum()
    }
}

/// Re-seals every value not written with the active key, `batch` rows per
/// transaction.
pub async fn rekey(
    db: &DatabaseConnection,
    keyring: &Keyring,
    columns: &[Column],
    batch: u32,
) -> Result<RekeyReport, RekeyError> {
    let active_prefix = format!("v1.{}.", keyring.active_key_id());
    let mut report = RekeyReport::default();
    for c in columns {
        let mut done = 0u64;
        loop {
            let txn = db.begin().await?;
            // The row's own primary key for the update; `c.id` for the aad.
            let rows = txn
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!(
                        "SELECT ctid::text AS row_ref, {id}::text AS aad_id, {tenant} AS aad_tenant, \
                           {col} AS sealed FROM {t} \
                         WHERE {col} IS NOT NULL AND {col} NOT LIKE $1 || '%' \
                         LIMIT $2 FOR UPDATE SKIP LOCKED",
                        id = c.id,
                        tenant = if c.aad.contains("{tenant}") {
                            "tenant::text"
                        } else {
                            "''::text"
                        },
                        col = c.column,
                        t = c.table
                    ),
                    [active_prefix.clone().into(), i64::from(batch).into()],
                ))
                .await?;
            if rows.is_empty() {
                txn.commit().await?;
                break;
            }
            for r in &rows {
                let row_ref: String = r.try_get("", "row_ref")?;
                let aad_id: String = r.try_get("", "aad_id")?;
                let sealed: String = r.try_get("", "sealed")?;
                let aad_tenant: String = r.try_get("", "aad_tenant")?;
                let aad = c
                    .aad
                    .replace("{id}", &aad_id)
                    .replace("{tenant}", &aad_tenant);
                let pii = |source| RekeyError::Pii {
                    table: c.table,
                    column: c.column,
                    source,
                };
                let plain = keyring.decrypt(&sealed, &aad).map_err(pii)?;
                let resealed = keyring.encrypt(&plain, &aad).map_err(pii)?;
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!(
                        "UPDATE {t} SET {col} = $1 WHERE ctid = $2::tid",
                        t = c.table,
                        col = c.column
                    ),
                    [resealed.into(), row_ref.into()],
                ))
                .await?;
            }
            done += rows.len() as u64;
            txn.commit().await?;
        }
        if done > 0 {
            tracing::info!(
                table = c.table,
                column = c.column,
                resealed = done,
                "re-encrypted with the active key"
            );
        }
        report
            .resealed
            .push((format!("{}.{}", c.table, c.column), done));
    }
    Ok(report)
}

/// Values still sealed with another key than the active one.
pub async fn remaining(
    db: &DatabaseConnection,
    keyring: &Keyring,
    columns: &[Column],
) -> Result<u64, DbErr> {
    let active_prefix = format!("v1.{}.", keyring.active_key_id());
    let mut n = 0u64;
    for c in columns {
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT count(*) AS n FROM {t} WHERE {col} IS NOT NULL AND {col} NOT LIKE $1 || '%'",
                    t = c.table,
                    col = c.column
                ),
                [active_prefix.clone().into()],
            ))
            .await?;
        if let Some(row) = row {
            n += u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0);
        }
    }
    Ok(n)
}
