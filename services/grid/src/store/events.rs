//! Grid events (`grid_events`) and broadcasts (`broadcasts`), each change
//! queued in the outbox in its own transaction.

use chrono::{DateTime, Utc};
use jiesu_proto::{
    grid::{BroadcastRequested, GridEvent},
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use uuid::Uuid;

use super::stmt;
use crate::domain::{layer::Grid, matters::StatsBy};

const COLUMNS: &str = "id, grid_code, community_code, reporter, content, category, lat, lon, \
    status, result, level, reason, ticket_id, tracking_no, reported_at, closed_at";

fn event_of(r: &sea_orm::QueryResult) -> Result<GridEvent, DbErr> {
    let id: Uuid = r.try_get("", "id")?;
    let reported: DateTime<Utc> = r.try_get("", "reported_at")?;
    let closed: Option<DateTime<Utc>> = r.try_get("", "closed_at")?;
    Ok(GridEvent {
        id: id.to_string(),
        grid_code: r.try_get("", "grid_code")?,
        community_code: r.try_get("", "community_code")?,
        reporter: r.try_get("", "reporter")?,
        content: r.try_get("", "content")?,
        category: r.try_get("", "category")?,
        lat: r.try_get("", "lat")?,
        lon: r.try_get("", "lon")?,
        status: r.try_get("", "status")?,
        result: r.try_get("", "result")?,
        level: r.try_get("", "level")?,
        reason: r.try_get("", "reason")?,
        ticket_id: r.try_get("", "ticket_id")?,
        tracking_no: r.try_get("", "tracking_no")?,
        reported_at: Some(to_timestamp(reported)),
        closed_at: closed.map(to_timestamp),
    })
}

async fn one<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Option<GridEvent>, DbErr> {
    conn.query_one_raw(stmt(sql, values))
        .await?
        .as_ref()
        .map(event_of)
        .transpose()
}

/// A new event as reported.
pub struct Report<'a> {
    pub grid: &'a Grid,
    pub reporter: &'a str,
    pub idempotency_key: Option<String>,
    pub content: String,
    pub category: String,
    pub lat: f64,
    pub lon: f64,
}

/// Stores a reported event; `Ok(None)` when the reporter's idempotency
/// key was used before (nothing stored).
pub async fn insert(
    txn: &DatabaseTransaction,
    tenant: &str,
    r: Report<'_>,
) -> Result<Option<GridEvent>, DbErr> {
    let sql = format!(
        "INSERT INTO grid_events (tenant, id, grid_code, community_code, reporter, \
           idempotency_key, content, category, lat, lon, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'reported') \
         ON CONFLICT (tenant, reporter, idempotency_key) DO NOTHING RETURNING {COLUMNS}"
    );
    let values = vec![
        tenant.into(),
        Uuid::now_v7().into(),
        r.grid.code.clone().into(),
        r.grid.community.clone().into(),
        r.reporter.into(),
        r.idempotency_key.into(),
        r.content.into(),
        r.category.into(),
        r.lat.into(),
        r.lon.into(),
    ];
    one(txn, &sql, values).await
}

/// The event a reporter sent with `key`.
pub async fn by_key<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    reporter: &str,
    key: Option<String>,
) -> Result<Option<GridEvent>, DbErr> {
    let sql = format!(
        "SELECT {COLUMNS} FROM grid_events WHERE tenant = $1 AND reporter = $2 \
         AND idempotency_key = $3"
    );
    one(conn, &sql, vec![tenant.into(), reporter.into(), key.into()]).await
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    id: Uuid,
) -> Result<Option<GridEvent>, DbErr> {
    let sql = format!("SELECT {COLUMNS} FROM grid_events WHERE tenant = $1 AND id = $2");
    one(conn, &sql, vec![tenant.into(), id.into()]).await
}

/// The grid of an event, if it exists.
pub async fn grid_of<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    id: Uuid,
) -> Result<Option<String>, DbErr> {
    conn.query_one_raw(stmt(
        "SELECT grid_code FROM grid_events WHERE tenant = $1 AND id = $2",
        vec![tenant.into(), id.into()],
    ))
    .await?
    .map(|r| r.try_get("", "grid_code"))
    .transpose()
}

pub async fn lock(
    txn: &DatabaseTransaction,
    tenant: &str,
    id: Uuid,
) -> Result<Option<GridEvent>, DbErr> {
    let sql = format!("SELECT {COLUMNS} FROM grid_events WHERE tenant = $1 AND id = $2 FOR UPDATE");
    one(txn, &sql, vec![tenant.into(), id.into()]).await
}

/// How a reported event ends.
pub enum Ending<'a> {
    /// Closed inside the grid with its result.
    Closed { result: &'a str },
    /// Whistled up to `level` with its reason, under `category`.
    Whistled {
        level: &'a str,
        reason: &'a str,
        category: &'a str,
    },
}

/// Ends a (locked) event.
pub async fn end(
    txn: &DatabaseTransaction,
    tenant: &str,
    id: Uuid,
    ending: Ending<'_>,
) -> Result<Option<GridEvent>, DbErr> {
    let (sql, values) = match ending {
        Ending::Closed { result } => (
            format!(
                "UPDATE grid_events SET status = 'closed', result = $3, closed_at = now() \
                 WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
            ),
            vec![tenant.into(), id.into(), result.into()],
        ),
        Ending::Whistled {
            level,
            reason,
            category,
        } => (
            format!(
                "UPDATE grid_events SET status = 'whistled', level = $3, reason = $4, \
                   category = $5, closed_at = now() \
                 WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
            ),
            vec![
                tenant.into(),
                id.into(),
                level.into(),
                reason.into(),
                category.into(),
            ],
        ),
    };
    one(txn, &sql, values).await
}

/// The last 500 events of some grids (`None`: all), of one status if not
/// empty, newest first.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    grids: Option<Vec<String>>,
    status: &str,
) -> Result<Vec<GridEvent>, DbErr> {
    conn.query_all_raw(stmt(
        &format!(
            "SELECT {COLUMNS} FROM grid_events WHERE tenant = $1 \
               AND ($2::text[] IS NULL OR grid_code = ANY($2)) \
               AND ($3 = '' OR status = $3) \
             ORDER BY reported_at DESC LIMIT 500"
        ),
        vec![tenant.into(), grids.into(), status.into()],
    ))
    .await?
    .iter()
    .map(event_of)
    .collect()
}

/// Events reported in [`from`, `to`) inside `scope`, counted per key:
/// (key, reported, closed, whistled).
pub async fn stats<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    scope: &str,
    by: StatsBy,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<(String, i64, i64, i64)>, DbErr> {
    let key = match by {
        StatsBy::Grid => "grid_code",
        StatsBy::Community => "community_code",
        StatsBy::Street => "left(community_code, 9)",
        StatsBy::County => "left(community_code, 6)",
    };
    conn.query_all_raw(stmt(
        &format!(
            "SELECT {key} AS key, count(*) AS reported, \
               count(*) FILTER (WHERE status = 'closed') AS closed, \
               count(*) FILTER (WHERE status = 'whistled') AS whistled \
             FROM grid_events WHERE tenant = $1 AND starts_with(community_code, $2) \
               AND reported_at >= $3 AND reported_at < $4 \
             GROUP BY 1 ORDER BY 1"
        ),
        vec![tenant.into(), scope.into(), from.into(), to.into()],
    ))
    .await?
    .into_iter()
    .map(|r| {
        Ok((
            r.try_get("", "key")?,
            r.try_get("", "reported")?,
            r.try_get("", "closed")?,
            r.try_get("", "whistled")?,
        ))
    })
    .collect()
}

/// Stores a broadcast and queues its `broadcast.requested` fact.
pub async fn broadcast(
    db: &DatabaseConnection,
    outbox: &jiesu_bus::Outbox,
    id: Uuid,
    b: &BroadcastRequested,
    requested_by: &str,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    txn.execute_raw(stmt(
        "INSERT INTO broadcasts (tenant, id, kind, title, body, grid_codes, requested_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            b.tenant.clone().into(),
            id.into(),
            b.kind.clone().into(),
            b.title.clone().into(),
            b.body.clone().into(),
            b.grid_codes.clone().into(),
            requested_by.into(),
        ],
    ))
    .await?;
    outbox.enqueue(&txn, b).await?;
    txn.commit().await?;
    outbox.wake();
    Ok(())
}

/// Records the ticket a whistled event became.
pub async fn set_ticket<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    id: Uuid,
    ticket_id: &str,
    tracking_no: &str,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE grid_events SET ticket_id = $3, tracking_no = $4 WHERE tenant = $1 AND id = $2",
        vec![
            tenant.into(),
            id.into(),
            ticket_id.into(),
            tracking_no.into(),
        ],
    ))
    .await?;
    Ok(())
}
