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
