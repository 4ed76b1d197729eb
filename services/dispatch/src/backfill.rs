//! Once per database: announces the units of every open work order made
//! before `ticket.units` existed, so intake's one lookup lists them to every
//! unit involved. Replicas starting together do it once (the marker row is
//! written in the same transaction as the events).

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, TransactionTrait};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::workflow::Status,
    engine::{self, Engine},
    store::{settings::stmt, work_orders},
};

const NAME: &str = "ticket_units";

/// Retries until done (the database may not answer yet) or shutdown.
pub async fn run(e: Engine, stop: CancellationToken) {
    loop {
        match once(&e).await {
            Ok(Some(n)) => {
                tracing::info!(work_orders = n, "announced the units of open work orders");
                return;
            }
            Ok(None) => return,
            Err(err) => tracing::warn!(error = %err, "units backfill failed; retrying"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// `None` when it was done before.
pub async fn once(e: &Engine) -> Result<Option<usize>, DbErr> {
    let txn = e.db.begin().await?;
    let claimed = txn
        .execute_raw(stmt(
            "INSERT INTO backfills (name, rows) VALUES ($1, 0) ON CONFLICT DO NOTHING",
            vec![NAME.into()],
        ))
        .await?
        .rows_affected();
    if claimed == 0 {
        txn.commit().await?;
        return Ok(None);
    }
    let open = work_orders::Entity::find()
        .filter(work_orders::Column::UnitId.is_not_null())
        .filter(
            work_orders::Column::Status
                .is_not_in([Status::Closed.as_str(), Status::Merged.as_str()]),
        )
        .all(&txn)
        .await?;
    let now = Utc::now();
    let n = open.len();
    for m in open {
        let loaded = engine::details(&txn, m).await?;
        e.outbox.enqueue(&txn, &engine::units(&loaded, now)).await?;
    }
    txn.execute_raw(stmt(
        "UPDATE backfills SET rows = $2 WHERE name = $1",
        vec![NAME.into(), (n as i64).into()],
    ))
    .await?;
    txn.commit().await?;
    e.outbox.wake();
    Ok(Some(n))
}
