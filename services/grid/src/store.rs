//! Grid's table and the per-process indexes built from it.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait, Value,
};

use crate::domain::{
    index::GridIndex,
    layer::{self, Grid},
};

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
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
    conn.query_all_raw(stmt(
        "SELECT tenant, code, name, kind, community_code, geometry FROM grids \
         WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR kind = $2) \
         ORDER BY tenant, code",
        vec![
            tenant.map(str::to_owned).into(),
            kind.map(str::to_owned).into(),
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

/// The rows as a FeatureCollection (the import format).
pub fn feature_collection(rows: &[Row]) -> Result<String, DbErr> {
    let mut features = Vec::with_capacity(rows.len());
    for r in rows {
        let geometry: serde_json::Value = serde_json::from_str(&r.geometry)
            .map_err(|e| DbErr::Custom(format!("stored geometry of {}: {e}", r.code)))?;
        features.push(serde_json::json!({
            "type": "Feature",
            "properties": {"code": r.code, "name": r.name, "kind": r.kind, "community_code": r.community},
            "geometry": geometry,
        }));
    }
    Ok(serde_json::json!({"type": "FeatureCollection", "features": features}).to_string())
}

fn grids_of(rows: &[Row]) -> Vec<Grid> {
    let fc = match feature_collection(rows) {
        Ok(fc) => fc,
        Err(e) => {
            tracing::error!(error = %e, "unreadable stored grids");
            return Vec::new();
        }
    };
    layer::read(&fc).unwrap_or_else(|errors| {
        tracing::error!(
            errors = errors.len(),
            "stored grids fail validation; index left empty"
        );
        Vec::new()
    })
}

/// Each tenant's index, shared by the handlers of this process.
#[derive(Clone, Default)]
pub struct Layers {
    by_tenant: Arc<RwLock<HashMap<String, Arc<GridIndex>>>>,
}

impl Layers {
    /// Builds every tenant's index from the table.
    pub async fn load(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let all = rows(db, None, None).await?;
        let layers = Self::default();
        let mut start = 0;
        while start < all.len() {
            let tenant = all[start].tenant.clone();
            let end = all[start..]
                .iter()
                .position(|r| r.tenant != tenant)
                .map_or(all.len(), |n| start + n);
            layers.put(&tenant, GridIndex::build(grids_of(&all[start..end])));
            start = end;
        }
        Ok(layers)
    }

    fn put(&self, tenant: &str, index: GridIndex) {
        tracing::info!(tenant, grids = index.len(), "grid index built");
        if let Ok(mut m) = self.by_tenant.write() {
            m.insert(tenant.to_owned(), Arc::new(index));
        }
    }

    pub fn get(&self, tenant: &str) -> Option<Arc<GridIndex>> {
        self.by_tenant.read().ok()?.get(tenant).cloned()
    }

    /// Rebuilds a tenant's index from the table.
    pub async fn reload(&self, db: &DatabaseConnection, tenant: &str) -> Result<(), DbErr> {
        let r = rows(db, Some(tenant), None).await?;
        self.put(tenant, GridIndex::build(grids_of(&r)));
        Ok(())
    }
}

/// Adds or replaces grids; returns (created, updated).
pub async fn upsert(
    db: &DatabaseConnection,
    tenant: &str,
    grids: &[(Grid, String)],
) -> Result<(u32, u32), DbErr> {
    let txn = db.begin().await?;
    let (mut created, mut updated) = (0, 0);
    for (g, geometry) in grids {
        let row = txn
            .query_one_raw(stmt(
                "INSERT INTO grids (tenant, code, name, kind, community_code, geometry) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant, code) DO UPDATE SET name = $3, kind = $4, \
                   community_code = $5, geometry = $6, version = grids.version + 1, updated_at = now() \
                 RETURNING version",
                vec![
                    tenant.into(),
                    g.code.clone().into(),
                    g.name.clone().into(),
                    g.kind.as_str().into(),
                    g.community.clone().into(),
                    geometry.clone().into(),
                ],
            ))
            .await?;
        let version: i32 = row.map_or(Ok(1), |r| r.try_get("", "version"))?;
        if version == 1 {
            created += 1;
        } else {
            updated += 1;
        }
    }
    txn.commit().await?;
    Ok((created, updated))
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
