//! The current grids (`grids`) and the tenant's layer version
//! (`layer_versions`): reading them as rows or GeoJSON features, importing
//! a batch with its history and `grids.changed` fact, moving the version on.

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};

use super::{history, stmt};
use crate::domain::layer::Grid;

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
        let (created, updated) = history::import_batch(&txn, tenant, chunk).await?;
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
