//! Every version of every grid (`grid_history`) with the time it was
//! valid: an import replaces a version; a split ends one grid and starts
//! its parts; a merge ends grids and starts their union. A lookup "as of" a
//! moment reads the versions valid then.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};

use super::stmt;
use crate::domain::{
    index::GridIndex,
    layer::{self, Grid},
    reshape::bbox,
};

/// Why a version began and how it ended.
pub struct Change<'a> {
    pub cause: &'a str,
    pub predecessors: &'a [String],
}

/// Ends the current version of `code` (if any) at the transaction's time.
pub async fn end(
    txn: &DatabaseTransaction,
    tenant: &str,
    code: &str,
    ended_by: &str,
    successors: &[String],
) -> Result<(), DbErr> {
    txn.execute_raw(stmt(
        "UPDATE grid_history SET valid_to = now(), ended_by = $3, successors = $4 \
         WHERE tenant = $1 AND code = $2 AND valid_to IS NULL",
        vec![
            tenant.into(),
            code.into(),
            ended_by.into(),
            successors.to_vec().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// `$1`–`$6` of a statement writing a grid: tenant, code, name, kind,
/// community and geometry.
fn grid_values(tenant: &str, g: &Grid, geometry: &str) -> Vec<sea_orm::Value> {
    vec![
        tenant.into(),
        g.code.clone().into(),
        g.name.clone().into(),
        g.kind.as_str().into(),
        g.community.clone().into(),
        geometry.into(),
    ]
}

/// Starts a version of `g` at the transaction's time; returns its number
/// (one past the grid's last version, so a code used again keeps counting).
pub async fn start(
    txn: &DatabaseTransaction,
    tenant: &str,
    g: &Grid,
    geometry: &str,
    change: &Change<'_>,
) -> Result<i32, DbErr> {
    let [x0, y0, x1, y1] = bbox(&g.shape);
    let row = txn
        .query_one_raw(stmt(
            "INSERT INTO grid_history (tenant, code, version, name, kind, community_code, geometry, \
               min_lon, min_lat, max_lon, max_lat, valid_from, cause, predecessors) \
             SELECT $1, $2, COALESCE(max(version), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, now(), $11, $12 \
               FROM grid_history WHERE tenant = $1 AND code = $2 \
             RETURNING version",
            [
                grid_values(tenant, g, geometry),
                vec![
                    x0.into(),
                    y0.into(),
                    x1.into(),
                    y1.into(),
                    change.cause.into(),
                    change.predecessors.to_vec().into(),
                ],
            ]
            .concat(),
        ))
        .await?;
    row.map_or(Ok(1), |r| r.try_get("", "version"))
}

/// An import's grids in one go: each replaces its current version (if
/// any) and starts the next. Returns the codes created and replaced.
pub async fn import_batch(
    txn: &DatabaseTransaction,
    tenant: &str,
    grids: &[(Grid, String)],
) -> Result<(Vec<String>, Vec<String>), DbErr> {
    let codes: Vec<String> = grids.iter().map(|(g, _)| g.code.clone()).collect();
    let existing: std::collections::HashSet<String> = txn
        .query_all_raw(stmt(
            "SELECT code FROM grids WHERE tenant = $1 AND code = ANY($2) FOR UPDATE",
            vec![tenant.into(), codes.clone().into()],
        ))
        .await?
        .into_iter()
        .map(|r| r.try_get("", "code"))
        .collect::<Result<_, _>>()?;
    txn.execute_raw(stmt(
        "UPDATE grid_history SET valid_to = now(), ended_by = 'replaced' \
         WHERE tenant = $1 AND code = ANY($2) AND valid_to IS NULL",
        vec![tenant.into(), codes.clone().into()],
    ))
    .await?;
    let mut cols: [Vec<String>; 5] = Default::default();
    let mut boxes: [Vec<f64>; 4] = Default::default();
    for (g, geometry) in grids {
        cols[0].push(g.code.clone());
        cols[1].push(g.name.clone());
        cols[2].push(g.kind.as_str().to_owned());
        cols[3].push(g.community.clone());
        cols[4].push(geometry.clone());
        for (b, v) in boxes.iter_mut().zip(bbox(&g.shape)) {
            b.push(v.unwrap_or_default());
        }
    }
    let [code, name, kind, community, geometry] = cols;
    let [x0, y0, x1, y1] = boxes;
    txn.execute_raw(stmt(
        "WITH u AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::float8[], $8::float8[], $9::float8[], $10::float8[]) \
             AS u(code, name, kind, community, geometry, x0, y0, x1, y1)), \
         h AS (INSERT INTO grid_history (tenant, code, version, name, kind, community_code, geometry, \
               min_lon, min_lat, max_lon, max_lat, valid_from, cause) \
             SELECT $1, u.code, COALESCE((SELECT max(version) FROM grid_history p \
                 WHERE p.tenant = $1 AND p.code = u.code), 0) + 1, \
               u.name, u.kind, u.community, u.geometry, u.x0, u.y0, u.x1, u.y1, now(), 'import' FROM u \
             RETURNING code, version, name, kind, community_code, geometry) \
         INSERT INTO grids (tenant, code, name, kind, community_code, geometry, version) \
             SELECT $1, code, name, kind, community_code, geometry, version FROM h \
         ON CONFLICT (tenant, code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, \
           community_code = EXCLUDED.community_code, geometry = EXCLUDED.geometry, \
           version = EXCLUDED.version, updated_at = now()",
        vec![
            tenant.into(),
            code.into(),
            name.into(),
            kind.into(),
            community.into(),
            geometry.into(),
            x0.into(),
            y0.into(),
            x1.into(),
            y1.into(),
        ],
    ))
    .await?;
    Ok(codes.into_iter().partition(|c| !existing.contains(c)))
}

/// Writes `g` as the current grid, version `version`.
pub async fn put_current(
    txn: &DatabaseTransaction,
    tenant: &str,
    g: &Grid,
    geometry: &str,
    version: i32,
) -> Result<(), DbErr> {
    txn.execute_raw(stmt(
        "INSERT INTO grids (tenant, code, name, kind, community_code, geometry, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant, code) DO UPDATE SET name = $3, kind = $4, community_code = $5, \
           geometry = $6, version = $7, updated_at = now()",
        [grid_values(tenant, g, geometry), vec![version.into()]].concat(),
    ))
    .await?;
    Ok(())
}

/// The grids valid at `at` whose bounding box holds (`lon`, `lat`).
pub async fn as_of<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    at: chrono::DateTime<chrono::Utc>,
    lon: f64,
    lat: f64,
) -> Result<GridIndex, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT code, name, kind, community_code, geometry FROM grid_history \
             WHERE tenant = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2) \
               AND (min_lon IS NULL OR (min_lon <= $3 AND max_lon >= $3 AND min_lat <= $4 AND max_lat >= $4))",
            vec![tenant.into(), at.into(), lon.into(), lat.into()],
        ))
        .await?;
    let mut features = Vec::with_capacity(rows.len());
    for r in rows {
        let geometry: String = r.try_get("", "geometry")?;
        let geometry: serde_json::Value = serde_json::from_str(&geometry)
            .map_err(|e| DbErr::Custom(format!("stored geometry: {e}")))?;
        features.push(serde_json::json!({
            "type": "Feature",
            "properties": {
                "code": r.try_get::<String>("", "code")?,
                "name": r.try_get::<String>("", "name")?,
                "kind": r.try_get::<String>("", "kind")?,
                "community_code": r.try_get::<String>("", "community_code")?,
            },
            "geometry": geometry,
        }));
    }
    let fc = serde_json::json!({"type": "FeatureCollection", "features": features}).to_string();
    let grids = layer::read(&fc)
        .map_err(|e| DbErr::Custom(format!("stored history fails validation: {e:?}")))?;
    Ok(GridIndex::build(grids))
}

/// One version of a grid as stored.
pub struct Version {
    pub version: i32,
    pub name: String,
    pub valid_from: chrono::DateTime<chrono::Utc>,
    pub valid_to: Option<chrono::DateTime<chrono::Utc>>,
    pub cause: String,
    pub predecessors: Vec<String>,
    pub ended_by: Option<String>,
    pub successors: Vec<String>,
    pub geometry: String,
}

/// Every version of `code`, oldest first.
pub async fn versions<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    code: &str,
) -> Result<Vec<Version>, DbErr> {
    conn.query_all_raw(stmt(
        "SELECT version, name, valid_from, valid_to, cause, predecessors, ended_by, successors, geometry \
         FROM grid_history WHERE tenant = $1 AND code = $2 ORDER BY version",
        vec![tenant.into(), code.into()],
    ))
    .await?
    .into_iter()
    .map(|r| {
        Ok(Version {
            version: r.try_get("", "version")?,
            name: r.try_get("", "name")?,
            valid_from: r.try_get("", "valid_from")?,
            valid_to: r.try_get("", "valid_to")?,
            cause: r.try_get("", "cause")?,
            predecessors: r.try_get("", "predecessors")?,
            ended_by: r.try_get("", "ended_by")?,
            successors: r.try_get("", "successors")?,
            geometry: r.try_get("", "geometry")?,
        })
    })
    .collect()
}

/// The kind and community of `code`'s last version (a grid that no
/// longer exists is still described by its history).
pub async fn last_kind_and_community<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    code: &str,
) -> Result<Option<(String, String)>, DbErr> {
    conn.query_one_raw(stmt(
        "SELECT kind, community_code FROM grid_history WHERE tenant = $1 AND code = $2 \
         ORDER BY version DESC LIMIT 1",
        vec![tenant.into(), code.into()],
    ))
    .await?
    .map(|r| Ok((r.try_get("", "kind")?, r.try_get("", "community_code")?)))
    .transpose()
}
