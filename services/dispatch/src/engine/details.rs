//! Loading a work order: the row under a lock, as the caller may see it
//! (its scope; a unit's handler: its unit's orders), its co-handlers and
//! summons, and the names of the units a request names.

use jiesu_auth::Principal;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QuerySelect};
use uuid::Uuid;

use super::{CoRow, Engine, EngineError, Loaded, SummonsRow};
use crate::store::{self, settings::stmt, work_orders};

/// Reads a work order's co-handlers and summons.
pub async fn details<C: ConnectionTrait>(
    conn: &C,
    model: work_orders::Model,
) -> Result<Loaded, DbErr> {
    let co = conn
        .query_all_raw(stmt(
            "SELECT unit_id, unit_name, part FROM work_order_co_units WHERE work_order_id = $1 \
             ORDER BY unit_id",
            vec![model.id.into()],
        ))
        .await?
        .into_iter()
        .map(|r| {
            Ok(CoRow {
                unit_id: r.try_get("", "unit_id")?,
                unit_name: r.try_get("", "unit_name")?,
                part: r.try_get("", "part")?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    let summons = conn
        .query_all_raw(stmt(
            "SELECT unit_id, unit_name, level, due_at, reported_at FROM summons \
             WHERE work_order_id = $1 ORDER BY level, unit_id",
            vec![model.id.into()],
        ))
        .await?
        .into_iter()
        .map(|r| {
            Ok(SummonsRow {
                unit_id: r.try_get("", "unit_id")?,
                unit_name: r.try_get("", "unit_name")?,
                level: r.try_get("", "level")?,
                due_at: r.try_get("", "due_at")?,
                reported_at: r.try_get("", "reported_at")?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(Loaded { model, co, summons })
}

/// Names of active units of the tenant, in the order asked; `Err(id)` for
/// the first id that is not one.
pub(super) async fn unit_names<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    ids: &[String],
) -> Result<Result<Vec<(String, String)>, String>, DbErr> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let row = conn
            .query_one_raw(stmt(
                "SELECT name FROM units WHERE tenant = $1 AND id = $2 AND active",
                vec![tenant.into(), id.clone().into()],
            ))
            .await?;
        match row {
            Some(r) => out.push((id.clone(), r.try_get("", "name")?)),
            None => return Ok(Err(id.clone())),
        }
    }
    Ok(Ok(out))
}

impl Engine {
    /// Locks a work order inside the caller's scope.
    pub(super) async fn lock_visible(
        txn: &DatabaseTransaction,
        who: &Principal,
        id: Uuid,
    ) -> Result<Loaded, EngineError> {
        // What the caller may read (a unit's handler: its unit's orders):
        // an order it may not see is not found, for writes as for reads.
        let model = store::visible_to(work_orders::Entity::find_by_id(id), who)
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or(EngineError::NotFound)?;
        Ok(details(txn, model).await?)
    }
}
