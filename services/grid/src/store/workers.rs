//! Grid workers (`workers`, phones sealed), the grids they serve
//! (`assignments`, announced as `worker.assigned`) and their stars
//! (`worker_ratings`).

use chrono::Utc;
use jiesu_pii::Keyring;
use jiesu_proto::{
    grid::{Worker, WorkerAssigned},
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use uuid::Uuid;

use super::{Sealed, is_unique_violation, stmt};
use crate::error::GridError;

fn sealed<'a>(keyring: &'a Keyring, tenant: &'a str, id: Uuid) -> Sealed<'a> {
    Sealed {
        keyring,
        tenant,
        table: "workers",
        id,
    }
}

/// The grids the active worker signing in as `account` is assigned to.
pub async fn assigned_grids<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    account: &str,
) -> Result<Vec<String>, DbErr> {
    conn.query_all_raw(stmt(
        "SELECT a.grid_code FROM assignments a JOIN workers w \
           ON w.tenant = a.tenant AND w.id = a.worker_id \
         WHERE a.tenant = $1 AND w.account = $2 AND w.active",
        vec![tenant.into(), account.into()],
    ))
    .await?
    .into_iter()
    .map(|r| r.try_get("", "grid_code"))
    .collect()
}

/// Adds or replaces a worker (`w.id` is `id`; its phone whole, sealed
/// here). A second worker with the same account is refused.
pub async fn upsert(
    db: &DatabaseConnection,
    keyring: &Keyring,
    tenant: &str,
    id: Uuid,
    w: &Worker,
) -> Result<(), GridError> {
    let phone = sealed(keyring, tenant, id).seal("phone", &w.phone)?;
    let r = db
        .execute_raw(stmt(
            "INSERT INTO workers (tenant, id, account, name, phone_enc, kind, occupation, active) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant, id) DO UPDATE SET account = $3, name = $4, phone_enc = $5, \
               kind = $6, occupation = $7, active = $8",
            vec![
                tenant.into(),
                id.into(),
                w.account.clone().into(),
                w.name.clone().into(),
                phone.into(),
                w.kind.clone().into(),
                w.occupation.clone().into(),
                w.active.into(),
            ],
        ))
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(GridError::AccountTaken),
        Err(e) => Err(e.into()),
    }
}

/// Workers with their grids and whole phones; by id or by grid.
pub async fn list(
    db: &DatabaseConnection,
    keyring: &Keyring,
    tenant: &str,
    id: Option<Uuid>,
    grid: Option<&str>,
) -> Result<Vec<Worker>, GridError> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT w.id, w.account, w.name, w.phone_enc, w.kind, w.occupation, w.active, \
               COALESCE(w.stars, 0)::int AS stars, \
               COALESCE(array_agg(a.grid_code ORDER BY a.grid_code) \
                 FILTER (WHERE a.grid_code IS NOT NULL), '{}') AS grids \
             FROM workers w LEFT JOIN assignments a ON a.tenant = w.tenant AND a.worker_id = w.id \
             WHERE w.tenant = $1 AND ($2::uuid IS NULL OR w.id = $2) \
               AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM assignments b \
                 WHERE b.tenant = w.tenant AND b.worker_id = w.id AND b.grid_code = $3)) \
             GROUP BY w.id, w.account, w.name, w.phone_enc, w.kind, w.occupation, w.active, w.stars \
             ORDER BY w.name, w.id",
            vec![tenant.into(), id.into(), grid.map(str::to_owned).into()],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: Uuid = r.try_get("", "id")?;
        let phone: String = r.try_get("", "phone_enc")?;
        out.push(Worker {
            id: id.to_string(),
            account: r.try_get("", "account")?,
            name: r.try_get("", "name")?,
            phone: sealed(keyring, tenant, id).open("phone", &phone)?,
            kind: r.try_get("", "kind")?,
            occupation: r.try_get("", "occupation")?,
            active: r.try_get("", "active")?,
            stars: r.try_get("", "stars")?,
            grids: r.try_get("", "grids")?,
        });
    }
    Ok(out)
}

/// Assigns a worker to a grid or takes them off it; a change is announced
/// (`worker.assigned`) in the same transaction.
pub async fn assign(
    db: &DatabaseConnection,
    outbox: &jiesu_bus::Outbox,
    tenant: &str,
    id: Uuid,
    grid_code: &str,
    remove: bool,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let sql = if remove {
        "DELETE FROM assignments WHERE tenant = $1 AND worker_id = $2 AND grid_code = $3"
    } else {
        "INSERT INTO assignments (tenant, worker_id, grid_code) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING"
    };
    let changed = txn
        .execute_raw(stmt(sql, vec![tenant.into(), id.into(), grid_code.into()]))
        .await?
        .rows_affected();
    if changed > 0 {
        let event = WorkerAssigned {
            tenant: tenant.to_owned(),
            worker_id: id.to_string(),
            grid_code: grid_code.to_owned(),
            removed: remove,
            at: Some(to_timestamp(Utc::now())),
        };
        outbox.enqueue(&txn, &event).await?;
    }
    txn.commit().await?;
    outbox.wake();
    Ok(())
}

/// Records a rating and sets the worker's stars to it.
pub async fn rate(
    db: &DatabaseConnection,
    tenant: &str,
    id: Uuid,
    stars: i16,
    reason: &str,
    rated_by: &str,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    txn.execute_raw(stmt(
        "INSERT INTO worker_ratings (tenant, worker_id, stars, reason, rated_by) \
         VALUES ($1, $2, $3, $4, $5)",
        vec![
            tenant.into(),
            id.into(),
            stars.into(),
            reason.into(),
            rated_by.into(),
        ],
    ))
    .await?;
    txn.execute_raw(stmt(
        "UPDATE workers SET stars = $3 WHERE tenant = $1 AND id = $2",
        vec![tenant.into(), id.into(), stars.into()],
    ))
    .await?;
    txn.commit().await
}

/// Registers a demo worker (seed-demo) and assigns them to `grid_code`;
/// safe to run again (an existing worker keeps whether it is active).
pub async fn seed(
    db: &DatabaseConnection,
    keyring: &Keyring,
    tenant: &str,
    id: Uuid,
    w: &Worker,
    grid_code: &str,
) -> Result<(), GridError> {
    let phone = sealed(keyring, tenant, id).seal("phone", &w.phone)?;
    for (sql, values) in [
        (
            "INSERT INTO workers (tenant, id, account, name, phone_enc, kind, occupation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, id) DO UPDATE \
             SET name = $4, phone_enc = $5, kind = $6, occupation = $7",
            vec![
                tenant.into(),
                id.into(),
                w.account.clone().into(),
                w.name.clone().into(),
                phone.clone().into(),
                w.kind.clone().into(),
                w.occupation.clone().into(),
            ],
        ),
        (
            "INSERT INTO assignments (tenant, worker_id, grid_code) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            vec![tenant.into(), id.into(), grid_code.into()],
        ),
    ] {
        db.execute_raw(stmt(sql, values)).await?;
    }
    Ok(())
}
