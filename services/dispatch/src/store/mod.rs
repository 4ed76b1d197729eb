//! Dispatch's tables and the queries on them. Finders of tenant data take the
//! caller's [`Principal`].

pub mod units;
pub mod work_order_events;
pub mod work_orders;

use jiesu_auth::Principal;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Statement,
};
use uuid::Uuid;

/// The unit routed for `category` in `tenant`, if any (active units only).
pub async fn route_for<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    category: &str,
) -> Result<Option<units::Model>, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT u.id FROM category_routes r JOIN units u \
               ON u.tenant = r.tenant AND u.id = r.unit_id AND u.active \
             WHERE r.tenant = $1 AND r.category = $2",
            [tenant.into(), category.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let id: String = row.try_get("", "id")?;
    units::Entity::find_by_id((tenant.to_owned(), id))
        .one(conn)
        .await
}

/// True when the ticket has a work order (system check, no caller scope).
pub async fn work_order_exists<C: ConnectionTrait>(
    conn: &C,
    ticket_id: Uuid,
) -> Result<bool, DbErr> {
    Ok(work_orders::Entity::find()
        .filter(work_orders::Column::TicketId.eq(ticket_id))
        .one(conn)
        .await?
        .is_some())
}

/// The work order of a ticket if the caller may see it.
pub async fn find_visible_by_ticket<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    ticket_id: Uuid,
) -> Result<Option<work_orders::Model>, DbErr> {
    let mut q = work_orders::Entity::find()
        .filter(work_orders::Column::TicketId.eq(ticket_id))
        .filter(work_orders::Column::RegionCode.starts_with(who.scope.prefix()));
    if who.is_citizen_only() {
        q = q.filter(work_orders::Column::SubmitterSub.eq(who.sub.clone()));
    }
    q.one(conn).await
}

pub async fn timeline<C: ConnectionTrait>(
    conn: &C,
    order: &work_orders::Model,
) -> Result<Vec<work_order_events::Model>, DbErr> {
    work_order_events::Entity::find()
        .filter(work_order_events::Column::WorkOrderId.eq(order.id))
        .filter(work_order_events::Column::Tenant.eq(order.tenant.clone()))
        .order_by_asc(work_order_events::Column::At)
        .order_by_asc(work_order_events::Column::Id)
        .all(conn)
        .await
}
