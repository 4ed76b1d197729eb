//! Grid's table and the per-process indexes built from it.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait, Value,
};

use crate::domain::{
    index::GridIndex,
    layer::{self, Grid},
};

pub fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// A stored grid: its row and its geometry as GeoJSON.
pub struct Row {
    pub tenant: String,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub community: String,
    pub geometry: String,
}

/// Reads grids, oldest first (`tenant` = None: every tenant).
pub async fn rows<C: ConnectionTrait>(
    conn: &C,
    tenant: Option<&str>,
    kind: Option<&str>,
) -> Result<Vec<Row>, DbErr> {
    page(conn, tenant, kind, "", i64::MAX).await
}

/// Up to `limit` grids whose code sorts after `after`, in code order.
pub async fn page<C: ConnectionTrait>(
    conn: &C,
    tenant: Option<&str>,
    kind: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<Row>, DbErr> {
    conn.query_all_raw(stmt(
        "SELECT tenant, code, name, kind, community_code, geometry FROM grids \
         WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR kind = $2) \
           AND code > $3 \
         ORDER BY tenant, code LIMIT $4",
        vec![
            tenant.map(str::to_owned).into(),
            kind.map(str::to_owned).into(),
            after.into(),
            limit.into(),
        ],
    ))
    .await?
    .into_iter()
    .map(|r| {
        Ok(Row {
            tenant: r.try_get("", "tenant")?,
            code: r.try_get("", "code")?,
            name: r.try_get("", "name")?,
            kind: r.try_get("", "kind")?,
            community: r.try_get("", "community_code")?,
            geometry: r.try_get("", "geometry")?,
        })
    })
    .collect()
}

/// One feature of the export format.
pub fn feature(r: &Row) -> Result<serde_json::Value, DbErr> {
    let geometry: serde_json::Value = serde_json::from_str(&r.geometry)
        .map_err(|e| DbErr::Custom(format!("stored geometry of {}: {e}", r.code)))?;
    Ok(serde_json::json!({
        "type": "Feature",
        "properties": {"code": r.code, "name": r.name, "kind": r.kind, "community_code": r.community},
        "geometry": geometry,
    }))
}

/// The rows as a FeatureCollection (the import format).
pub fn feature_collection(rows: &[Row]) -> Result<String, DbErr> {
    let features = rows.iter().map(feature).collect::<Result<Vec<_>, _>>()?;
    Ok(serde_json::json!({"type": "FeatureCollection", "features": features}).to_string())
}

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
            first = %first,
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

/// Why an import was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UpsertError {
    #[error("the layer changed since it was checked")]
    Stale,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// What an import changed.
#[derive(Debug, Default)]
pub struct Upserted {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub version: i64,
}

/// Adds or replaces grids; with `outbox`, announces the change
/// (`grids.changed`) in the same transaction.
pub async fn upsert(
    db: &DatabaseConnection,
    tenant: &str,
    grids: &[(Grid, String)],
    outbox: Option<&jiesu_bus::Outbox>,
    expected: Option<i64>,
) -> Result<Upserted, UpsertError> {
    let txn = db.begin().await?;
    // The layer's row is locked first, as reshapes do, so the two never
    // wait on each other in opposite orders; a tenant's first import
    // creates it (version 0) so that two first imports queue too.
    txn.execute_raw(stmt(
        "INSERT INTO layer_versions (tenant, version) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        vec![tenant.into()],
    ))
    .await?;
    let current = txn
        .query_one_raw(stmt(
            "SELECT version FROM layer_versions WHERE tenant = $1 FOR UPDATE",
            vec![tenant.into()],
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "version"))
        .transpose()?
        .unwrap_or(0);
    // Checked against an index of `expected`: refused if the layer moved
    // on meanwhile.
    if expected.is_some_and(|e| e != current) {
        return Err(UpsertError::Stale);
    }
    let mut out = Upserted::default();
    // Bounded statements, one transaction: all or nothing.
    for chunk in grids.chunks(5000) {
        let (created, updated) = crate::history::import_batch(&txn, tenant, chunk).await?;
        out.created.extend(created);
        out.updated.extend(updated);
    }
    out.version = bump_layer(&txn, tenant).await?;
    if let Some(outbox) = outbox {
        let event = jiesu_proto::grid::GridsChanged {
            tenant: tenant.to_owned(),
            created: out.created.clone(),
            updated: out.updated.clone(),
            version: out.version,
        };
        outbox.enqueue(&txn, &event).await?;
    }
    txn.commit().await?;
    if let Some(outbox) = outbox {
        outbox.wake();
    }
    Ok(out)
}

/// Moves the tenant's layer version on (every replica then rebuilds its
/// index); returns the new version.
pub async fn bump_layer(txn: &DatabaseTransaction, tenant: &str) -> Result<i64, DbErr> {
    let row = txn
        .query_one_raw(stmt(
            "INSERT INTO layer_versions (tenant, version) VALUES ($1, 1) \
             ON CONFLICT (tenant) DO UPDATE SET version = layer_versions.version + 1, \
               changed_at = now() RETURNING version",
            vec![tenant.into()],
        ))
        .await?;
    row.map_or(Ok(1), |r| r.try_get("", "version"))
}

pub async fn count<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<u32, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT count(*)::int AS n FROM grids WHERE tenant = $1",
            vec![tenant.into()],
        ))
        .await?;
    let n: i32 = row.map_or(Ok(0), |r| r.try_get("", "n"))?;
    Ok(u32::try_from(n).unwrap_or(0))
}

/// Adds or renames regions in one transaction.
pub async fn upsert_regions(
    db: &DatabaseConnection,
    tenant: &str,
    regions: &[crate::domain::regions::Region],
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    for r in regions {
        txn.execute_raw(stmt(
            "INSERT INTO regions (tenant, code, name, level, parent_code) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant, code) DO UPDATE SET name = $3, level = $4, parent_code = $5",
            vec![
                tenant.into(),
                r.code.clone().into(),
                r.name.clone().into(),
                r.level.into(),
                r.parent.clone().into(),
            ],
        ))
        .await?;
    }
    txn.commit().await
}

/// Regions of the tenant whose code starts with `prefix`, in code order.
pub async fn regions<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    prefix: &str,
) -> Result<Vec<jiesu_proto::grid::Region>, DbErr> {
    conn.query_all_raw(stmt(
        "SELECT code, name, level, parent_code FROM regions WHERE tenant = $1 \
         AND starts_with(code, $2) ORDER BY code",
        vec![tenant.into(), prefix.into()],
    ))
    .await?
    .into_iter()
    .map(|r| {
        Ok(jiesu_proto::grid::Region {
            code: r.try_get("", "code")?,
            name: r.try_get("", "name")?,
            level: r.try_get("", "level")?,
            parent_code: r
                .try_get::<Option<String>>("", "parent_code")?
                .unwrap_or_default(),
        })
    })
    .collect()
}

/// Replaces the pairs of the professional grids listed in `pairs`.
pub async fn replace_pairs(
    db: &DatabaseConnection,
    tenant: &str,
    pairs: &[(String, String)],
) -> Result<(), DbErr> {
    let (profs, basics): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
    let txn = db.begin().await?;
    txn.execute_raw(stmt(
        "DELETE FROM grid_pairs WHERE tenant = $1 AND professional_code = ANY($2)",
        vec![tenant.into(), profs.clone().into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        "INSERT INTO grid_pairs (tenant, professional_code, basic_code) \
         SELECT DISTINCT $1, p, b FROM unnest($2::text[], $3::text[]) AS u(p, b) \
         ON CONFLICT DO NOTHING",
        vec![tenant.into(), profs.into(), basics.into()],
    ))
    .await?;
    txn.commit().await
}

/// Adds or replaces registry buildings: (code, address, lat, lon).
pub async fn upsert_buildings(
    db: &DatabaseConnection,
    tenant: &str,
    rows: &[(String, String, f64, f64)],
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    for (code, address, lat, lon) in rows {
        txn.execute_raw(stmt(
            "INSERT INTO buildings (tenant, code, address, address_norm, lat, lon) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, code) DO UPDATE \
             SET address = $3, address_norm = $4, lat = $5, lon = $6",
            vec![
                tenant.into(),
                code.clone().into(),
                address.clone().into(),
                crate::reshape::normalize_address(address).into(),
                (*lat).into(),
                (*lon).into(),
            ],
        ))
        .await?;
    }
    txn.commit().await
}
