//! Notification's table and queries.

pub mod addresses;
pub mod notifications;
pub mod templates;

use std::collections::HashMap;

use jiesu_auth::Principal;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

/// Filters of a listing; the caller's scope is always applied on top.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub ticket_id: Option<Uuid>,
    pub recipient_id: Option<String>,
    pub after: Option<Uuid>,
    pub status: Option<String>,
    pub limit: u64,
}

/// Notifications the caller may see, oldest first (ids are time-ordered).
/// Handlers see only their own unit's.
pub async fn list_visible<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    f: &ListFilter,
    own_unit_only: bool,
) -> Result<Vec<notifications::Model>, DbErr> {
    let mut q = notifications::Entity::find()
        .filter(notifications::Column::RegionCode.starts_with(who.scope.prefix()));
    if own_unit_only {
        q = q
            .filter(notifications::Column::RecipientKind.eq("unit"))
            .filter(notifications::Column::RecipientId.eq(who.unit.clone().unwrap_or_default()));
    }
    if let Some(t) = f.ticket_id {
        q = q.filter(notifications::Column::TicketId.eq(t));
    }
    if let Some(r) = &f.recipient_id {
        q = q.filter(notifications::Column::RecipientId.eq(r.clone()));
    }
    if let Some(s) = &f.status {
        q = q.filter(notifications::Column::Status.eq(s.clone()));
    }
    if let Some(after) = f.after {
        q = q.filter(notifications::Column::Id.gt(after));
    }
    q.order_by_asc(notifications::Column::Id)
        .limit(f.limit)
        .all(conn)
        .await
}

/// The channels each of these notifications gave up on, by id.
pub async fn fallbacks<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<String>>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, line FROM notifications, unnest(fallbacks) WITH ORDINALITY AS f(line, i) \
             WHERE id = ANY($1) ORDER BY id, i",
            [ids.to_vec().into()],
        ))
        .await?;
    let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
    for r in rows {
        out.entry(r.try_get("", "id")?)
            .or_default()
            .push(r.try_get("", "line")?);
    }
    Ok(out)
}

pub enum Requeued {
    Done(Box<notifications::Model>),
    NotFound,
    /// Its status, which is not `failed`.
    NotFailed(String),
    /// Its one-time link was cleared when it failed: the message cannot be
    /// sent again (a new invitation is made by a new round).
    LinkGone,
}

/// Queues a failed notification in the caller's scope again, from the
/// first channel of its chain, with a fresh count of attempts.
pub async fn requeue<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    id: Uuid,
) -> Result<Requeued, DbErr> {
    let updated = notifications::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE notifications SET status = 'queued', route_step = 0, attempts = 0, \
               next_attempt_at = now(), lease_until = NULL \
             WHERE id = $1 AND tenant = $2 AND region_code LIKE $3 || '%' AND status = 'failed' \
               AND NOT (link IS NULL AND position('{link}' in body) > 0) \
             RETURNING *",
            [
                id.into(),
                who.tenant.code().into(),
                who.scope.prefix().into(),
            ],
        ))
        .one(conn)
        .await?;
    if let Some(n) = updated {
        return Ok(Requeued::Done(Box::new(n)));
    }
    let found = notifications::Entity::find_by_id(id)
        .filter(notifications::Column::Tenant.eq(who.tenant.code()))
        .filter(notifications::Column::RegionCode.starts_with(who.scope.prefix()))
        .one(conn)
        .await?;
    Ok(match found {
        Some(n) if n.status == "failed" => Requeued::LinkGone,
        Some(n) => Requeued::NotFailed(n.status),
        None => Requeued::NotFound,
    })
}

/// A page of an inbox, newest first, each with whether `reader` read it.
pub async fn inbox<C: ConnectionTrait>(
    conn: &C,
    (tenant, kind, id): (&str, &str, &str),
    reader: &str,
    before: Option<Uuid>,
    unread_only: bool,
    limit: u64,
) -> Result<Vec<(notifications::Model, bool)>, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT n.id, r.notification_id IS NOT NULL AS read FROM notifications n \
             LEFT JOIN inbox_reads r ON r.reader = $4 AND r.notification_id = n.id \
             WHERE n.tenant = $1 AND n.recipient_kind = $2 AND n.recipient_id = $3 \
               AND ($5::uuid IS NULL OR n.id < $5) AND (NOT $6 OR r.notification_id IS NULL) \
             ORDER BY n.id DESC LIMIT $7",
            [
                tenant.into(),
                kind.into(),
                id.into(),
                reader.into(),
                before.into(),
                unread_only.into(),
                i64::try_from(limit).unwrap_or(200).into(),
            ],
        ))
        .await?;
    let mut read = HashMap::new();
    let mut ids = Vec::new();
    for r in rows {
        let id: Uuid = r.try_get("", "id")?;
        read.insert(id, r.try_get::<bool>("", "read")?);
        ids.push(id);
    }
    let mut models: HashMap<Uuid, notifications::Model> = notifications::Entity::find()
        .filter(notifications::Column::Id.is_in(ids.clone()))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    Ok(ids
        .into_iter()
        .filter_map(|id| models.remove(&id).map(|m| (m, read[&id])))
        .collect())
}

/// Unread notices of an inbox from the last 30 days.
pub async fn unread<C: ConnectionTrait>(
    conn: &C,
    (tenant, kind, id): (&str, &str, &str),
    reader: &str,
) -> Result<i64, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM notifications n \
             WHERE n.tenant = $1 AND n.recipient_kind = $2 AND n.recipient_id = $3 \
               AND n.created_at > now() - interval '30 days' \
               AND NOT EXISTS (SELECT 1 FROM inbox_reads r WHERE r.reader = $4 AND r.notification_id = n.id)",
            [tenant.into(), kind.into(), id.into(), reader.into()],
        ))
        .await?;
    row.map_or(Ok(0), |r| r.try_get("", "n"))
}

/// Marks notices of the inbox read (`ids`, or all of the last 30 days);
/// ids outside the inbox are ignored.
pub async fn mark_read<C: ConnectionTrait>(
    conn: &C,
    (tenant, kind, id): (&str, &str, &str),
    reader: &str,
    ids: Option<&[Uuid]>,
) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO inbox_reads (reader, notification_id) \
         SELECT $4, n.id FROM notifications n \
         WHERE n.tenant = $1 AND n.recipient_kind = $2 AND n.recipient_id = $3 \
           AND ($5::uuid[] IS NULL OR n.id = ANY($5)) \
           AND ($5::uuid[] IS NOT NULL OR n.created_at > now() - interval '30 days') \
         ON CONFLICT DO NOTHING",
        [
            tenant.into(),
            kind.into(),
            id.into(),
            reader.into(),
            ids.map(<[Uuid]>::to_vec).into(),
        ],
    ))
    .await?;
    Ok(())
}

/// A broadcast's messages by status, in the caller's tenant.
pub async fn broadcast_counts<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    broadcast_id: Uuid,
) -> Result<HashMap<String, i64>, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT status, count(*) AS n FROM notifications \
             WHERE tenant = $1 AND broadcast_id = $2 GROUP BY status",
            [tenant.into(), broadcast_id.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "status")?, r.try_get("", "n")?)))
        .collect()
}
