//! Notification's table and queries.

pub mod notifications;

use jiesu_auth::Principal;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// Filters of a listing; the caller's scope is always applied on top.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub ticket_id: Option<Uuid>,
    pub recipient_id: Option<String>,
    pub after: Option<Uuid>,
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
    if let Some(after) = f.after {
        q = q.filter(notifications::Column::Id.gt(after));
    }
    q.order_by_asc(notifications::Column::Id)
        .limit(f.limit)
        .all(conn)
        .await
}
