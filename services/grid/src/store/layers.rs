//! Each tenant's in-memory index of its current grids, and the loop that
//! rebuilds it when the tenant's layer version moves (how a replica learns
//! of another replica's import). It lives with the store because it is a
//! read model of the `grids` table: built only from those rows, at the
//! version read in the same transaction.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

use super::{
    grids::{Row, feature, rows},
    stmt,
};
use crate::domain::{
    index::GridIndex,
    layer::{self, Grid},
};

/// The stored grids, read one row at a time (a province's layer never
/// becomes one JSON tree). A row that fails validation is left out of the
/// index and logged; the others still locate.
fn grids_of(rows: &[Row]) -> Vec<Grid> {
    let mut reader = layer::FeatureReader::default();
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        match feature(r) {
            Ok(f) => out.extend(reader.read(i, &f)),
            Err(e) => tracing::error!(error = %e, "unreadable stored grid left out of the index"),
        }
    }
    if let Some(first) = reader.errors.first() {
        tracing::error!(
            errors = reader.errors.len(),
            first = %first.en,
            "stored grids fail validation; left out of the index"
        );
    }
    out
}

/// Each tenant's index and the layer version it was built from, shared by
/// the handlers of this process.
#[derive(Clone, Default)]
pub struct Layers {
    by_tenant: Arc<RwLock<HashMap<String, Versioned>>>,
}

/// An index and the layer version it was built from.
type Versioned = (i64, Arc<GridIndex>);

/// Every tenant's layer version.
async fn versions<C: ConnectionTrait>(conn: &C) -> Result<Vec<(String, i64)>, DbErr> {
    conn.query_all_raw(stmt("SELECT tenant, version FROM layer_versions", vec![]))
        .await?
        .into_iter()
        .map(|r| Ok((r.try_get("", "tenant")?, r.try_get("", "version")?)))
        .collect()
}

/// Rebuilds the indexes whose tenant's layer moved on, every `every`,
/// until `shutdown`: how a replica learns of another replica's import.
pub async fn refresh(
    db: DatabaseConnection,
    layers: Layers,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match versions(&db).await {
            Ok(vs) => {
                for (tenant, v) in vs {
                    if layers.version(&tenant) != Some(v)
                        && let Err(e) = layers.reload(&db, &tenant).await
                    {
                        tracing::warn!(tenant = %tenant, error = %e, "rebuilding a grid index failed; retrying");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading layer versions failed; retrying"),
        }
    }
}

impl Layers {
    /// Builds every tenant's index from the table.
    pub async fn load(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let layers = Self::default();
        for (tenant, _) in versions(db).await? {
            layers.reload(db, &tenant).await?;
        }
        Ok(layers)
    }

    fn put(&self, tenant: &str, version: i64, index: GridIndex) {
        tracing::info!(tenant, version, grids = index.len(), "grid index built");
        if let Ok(mut m) = self.by_tenant.write() {
            m.insert(tenant.to_owned(), (version, Arc::new(index)));
        }
    }

    /// The tenants with an index.
    pub fn tenants(&self) -> Vec<String> {
        self.by_tenant
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn get(&self, tenant: &str) -> Option<Arc<GridIndex>> {
        self.by_tenant
            .read()
            .ok()?
            .get(tenant)
            .map(|(_, i)| i.clone())
    }

    /// The layer version this replica's index of `tenant` was built from.
    pub fn version(&self, tenant: &str) -> Option<i64> {
        self.by_tenant.read().ok()?.get(tenant).map(|(v, _)| *v)
    }

    /// Rebuilds a tenant's index from the table, at the version read with
    /// the rows (one transaction, so they agree).
    pub async fn reload(&self, db: &DatabaseConnection, tenant: &str) -> Result<(), DbErr> {
        let txn = db
            .begin_with_config(Some(sea_orm::IsolationLevel::RepeatableRead), None)
            .await?;
        let version = txn
            .query_one_raw(stmt(
                "SELECT version FROM layer_versions WHERE tenant = $1",
                vec![tenant.into()],
            ))
            .await?
            .map_or(Ok(0), |r| r.try_get("", "version"))?;
        let r = rows(&txn, Some(tenant), None).await?;
        txn.commit().await?;
        self.put(tenant, version, GridIndex::build(grids_of(&r)));
        Ok(())
    }
}
