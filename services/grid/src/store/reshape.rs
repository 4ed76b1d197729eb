//! A split or merge in one transaction: the old versions end, the new
//! ones start, what hung on the retired grids moves to their successors,
//! the layer version moves on and the fact is queued in the outbox.

use chrono::{DateTime, Utc};
use geo::{Contains, Point};
use jiesu_proto::grid::{GridMerged, GridSplit};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};

use super::{
    grids::bump_layer,
    history::{self, Change},
    stmt,
};
use crate::domain::layer::Grid;

/// The fact a reshape announces (its layer version set inside).
pub enum Reshaped {
    Split(GridSplit),
    Merged(GridMerged),
}

/// A reshape to store: the grids it ends and those it starts (with their
/// geometry text), checked against the layer at version `checked_at`.
pub struct Reshape<'a> {
    pub retired: &'a [String],
    pub created: &'a [(Grid, String)],
    pub event: Reshaped,
    pub checked_at: Option<i64>,
}

/// A stored reshape: the layer version it made and when.
pub struct Stored {
    pub version: i64,
    pub at: DateTime<Utc>,
}

/// Stores `r`; `None` (nothing stored) when the layer is no longer the
/// version the checks ran against.
pub async fn reshape(
    db: &DatabaseConnection,
    outbox: &jiesu_bus::Outbox,
    tenant: &str,
    r: Reshape<'_>,
) -> Result<Option<Stored>, DbErr> {
    // How the old versions end and the new ones begin.
    let (ended_by, cause) = match r.event {
        Reshaped::Split(_) => ("split", "split"),
        Reshaped::Merged(_) => ("merged", "merge"),
    };
    let successors: Vec<String> = r.created.iter().map(|(g, _)| g.code.clone()).collect();
    let txn = db.begin().await?;
    // The checks ran against this replica's index: they hold only if the
    // layer is still the version it was built from. The lock also makes
    // reshapes and imports of one tenant wait for each other.
    let current = txn
        .query_one_raw(stmt(
            "SELECT version FROM layer_versions WHERE tenant = $1 FOR UPDATE",
            vec![tenant.into()],
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "version"))
        .transpose()?;
    if current != r.checked_at {
        return Ok(None);
    }
    for code in r.retired {
        history::end(&txn, tenant, code, ended_by, &successors).await?;
        txn.execute_raw(stmt(
            "DELETE FROM grids WHERE tenant = $1 AND code = $2",
            vec![tenant.into(), code.clone().into()],
        ))
        .await?;
    }
    for (g, geometry) in r.created {
        let change = Change {
            cause,
            predecessors: r.retired,
        };
        let version = history::start(&txn, tenant, g, geometry, &change).await?;
        history::put_current(&txn, tenant, g, geometry, version).await?;
    }
    let grids: Vec<Grid> = r.created.iter().map(|(g, _)| g.clone()).collect();
    rehome(&txn, tenant, r.retired, &grids).await?;
    let version = bump_layer(&txn, tenant).await?;
    match r.event {
        Reshaped::Split(mut e) => {
            e.version = version;
            outbox.enqueue(&txn, &e).await
        }
        Reshaped::Merged(mut e) => {
            e.version = version;
            outbox.enqueue(&txn, &e).await
        }
    }?;
    let at = txn
        .query_one_raw(stmt("SELECT now() AS at", vec![]))
        .await?
        .map(|row| row.try_get::<DateTime<Utc>>("", "at"))
        .transpose()?
        .unwrap_or_else(Utc::now);
    txn.commit().await?;
    outbox.wake();
    Ok(Some(Stored { version, at }))
}

/// Moves what hangs on retired grids to their successors: workers and
/// pairs go to every successor; households to the successor holding their
/// building (else the first); key persons follow their household (else the
/// first); open patrol and key-place tasks of retired grids are dropped
/// (the next generation creates them for the new grids).
async fn rehome(
    txn: &DatabaseTransaction,
    tenant: &str,
    retired: &[String],
    successors: &[Grid],
) -> Result<(), DbErr> {
    let names: Vec<String> = successors.iter().map(|g| g.code.clone()).collect();
    let Some(first) = names.first().cloned() else {
        return Ok(());
    };
    let (t, r) = (tenant.to_owned(), retired.to_vec());
    // Workers and pairs go to every successor.
    for sql in [
        "INSERT INTO assignments (tenant, worker_id, grid_code) \
         SELECT DISTINCT a.tenant, a.worker_id, s FROM assignments a, unnest($3::text[]) s \
         WHERE a.tenant = $1 AND a.grid_code = ANY($2) ON CONFLICT DO NOTHING",
        "INSERT INTO grid_pairs (tenant, professional_code, basic_code) \
         SELECT DISTINCT p.tenant, p.professional_code, s FROM grid_pairs p, unnest($3::text[]) s \
         WHERE p.tenant = $1 AND p.basic_code = ANY($2) ON CONFLICT DO NOTHING",
        "INSERT INTO grid_pairs (tenant, professional_code, basic_code) \
         SELECT DISTINCT p.tenant, s, p.basic_code FROM grid_pairs p, unnest($3::text[]) s \
         WHERE p.tenant = $1 AND p.professional_code = ANY($2) ON CONFLICT DO NOTHING",
    ] {
        let values = vec![t.clone().into(), r.clone().into(), names.clone().into()];
        txn.execute_raw(stmt(sql, values)).await?;
    }
    // A code kept by a successor (a merge into one of its grids, a part
    // keeping the whole's code) keeps what it had and what it was given.
    let gone: Vec<String> = retired
        .iter()
        .filter(|c| !names.contains(c))
        .cloned()
        .collect();
    for sql in [
        "DELETE FROM assignments WHERE tenant = $1 AND grid_code = ANY($2)",
        "DELETE FROM grid_pairs WHERE tenant = $1 AND (basic_code = ANY($2) OR professional_code = ANY($2))",
        "DELETE FROM duty_tasks WHERE tenant = $1 AND done_at IS NULL \
           AND ((grid_code = ANY($2) AND target_kind IN ('patrol', 'key_place')) \
             OR (target_kind = 'key_place' AND target_id = ANY($2)))",
    ] {
        txn.execute_raw(stmt(sql, vec![t.clone().into(), gone.clone().into()]))
            .await?;
    }
    // Matters still open in a retired grid are the successor's to settle.
    txn.execute_raw(stmt(
        "UPDATE grid_events SET grid_code = $3 WHERE tenant = $1 AND grid_code = ANY($2) \
           AND status = 'reported'",
        vec![t.clone().into(), gone.clone().into(), first.clone().into()],
    ))
    .await?;
    // Households by their building's point.
    let rows = txn
        .query_all_raw(stmt(
            "SELECT h.id, b.lat, b.lon FROM households h \
             LEFT JOIN buildings b ON b.tenant = h.tenant AND b.code = h.building_code \
             WHERE h.tenant = $1 AND h.grid_code = ANY($2)",
            vec![t.clone().into(), r.clone().into()],
        ))
        .await?;
    for row in rows {
        let id: uuid::Uuid = row.try_get("", "id")?;
        let lat: Option<f64> = row.try_get("", "lat")?;
        let lon: Option<f64> = row.try_get("", "lon")?;
        let to = match (lat, lon) {
            (Some(lat), Some(lon)) => successors
                .iter()
                .find(|g| g.shape.contains(&Point::new(lon, lat)))
                .map_or(first.clone(), |g| g.code.clone()),
            _ => first.clone(),
        };
        txn.execute_raw(stmt(
            "UPDATE households SET grid_code = $3 WHERE tenant = $1 AND id = $2",
            vec![t.clone().into(), id.into(), to.into()],
        ))
        .await?;
    }
    txn.execute_raw(stmt(
        "UPDATE key_persons k SET grid_code = COALESCE( \
           (SELECT h.grid_code FROM households h WHERE h.tenant = k.tenant AND h.id = k.household_id), $3) \
         WHERE k.tenant = $1 AND k.grid_code = ANY($2)",
        vec![t.clone().into(), r.clone().into(), first.clone().into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        "UPDATE duty_tasks d SET grid_code = COALESCE( \
           (SELECT h.grid_code FROM households h WHERE h.tenant = d.tenant AND h.id::text = d.target_id), \
           (SELECT k.grid_code FROM key_persons k WHERE k.tenant = d.tenant AND k.id::text = d.target_id), $3) \
         WHERE d.tenant = $1 AND d.grid_code = ANY($2) AND d.done_at IS NULL \
           AND d.target_kind IN ('household', 'key_person')",
        vec![t.into(), r.into(), first.into()],
    ))
    .await?;
    Ok(())
}
