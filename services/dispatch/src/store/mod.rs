//! Dispatch's tables and the queries on them. Finders of tenant data take the
//! caller's [`Principal`].

pub mod directory;
pub mod settings;
pub mod units;
pub mod work_order_events;
pub mod work_orders;

use jiesu_auth::Principal;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Statement,
};
use uuid::Uuid;

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

/// SQL: the order (`work_orders`) is led, co-handled or summoned by `$N`.
pub fn involves_unit(param: &str) -> String {
    format!(
        "(work_orders.unit_id = {param} \
          OR EXISTS (SELECT 1 FROM work_order_co_units c WHERE c.work_order_id = work_orders.id AND c.unit_id = {param}) \
          OR EXISTS (SELECT 1 FROM summons s WHERE s.work_order_id = work_orders.id AND s.unit_id = {param}))"
    )
}

/// Narrows `q` to what `who` may see: their scope, their own tickets for a
/// citizen, their unit's orders for a handler.
pub(crate) fn visible_to(
    mut q: sea_orm::Select<work_orders::Entity>,
    who: &Principal,
) -> sea_orm::Select<work_orders::Entity> {
    q = q
        .filter(work_orders::Column::Tenant.eq(who.tenant.code()))
        .filter(work_orders::Column::RegionCode.starts_with(who.scope.prefix()));
    if who.is_citizen_only() {
        q = q.filter(work_orders::Column::SubmitterSub.eq(who.sub.clone()));
    }
    if let Some(unit) = who.reads_as_unit() {
        q = q.filter(sea_orm::sea_query::Expr::cust_with_values(
            involves_unit("$1"),
            [unit.to_owned()],
        ));
    }
    q
}

/// The work order of a ticket if the caller may see it.
pub async fn find_visible_by_ticket<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    ticket_id: Uuid,
) -> Result<Option<work_orders::Model>, DbErr> {
    visible_to(
        work_orders::Entity::find().filter(work_orders::Column::TicketId.eq(ticket_id)),
        who,
    )
    .one(conn)
    .await
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

/// Records (or clears) the master ticket a merged work order follows.
pub async fn set_merged_into<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    master: Option<Uuid>,
) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE work_orders SET merged_into = $2 WHERE id = $1",
        [id.into(), master.into()],
    ))
    .await?;
    Ok(())
}

/// Which work orders a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Where the caller's unit leads, co-handles or is summoned.
    Mine,
    Triage,
    Overdue,
    DueSoon,
    Leadership,
    All,
}

impl Queue {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" | "all" => Self::All,
            "mine" => Self::Mine,
            "triage" => Self::Triage,
            "overdue" => Self::Overdue,
            "due_soon" => Self::DueSoon,
            "leadership" => Self::Leadership,
            _ => return None,
        })
    }
}

/// Filters of a list besides the caller's scope.
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub queue: Queue,
    pub unit: Option<String>,
    pub status: Option<String>,
    pub level: Option<i16>,
    pub limit: u64,
    pub offset: u64,
    /// What counts as overdue or due soon is measured from here.
    pub now: chrono::DateTime<chrono::Utc>,
}

const OPEN: &str = "('dispatched', 'signed', 'in_progress', 'returned')";
const NEXT_DUE: &str = "LEAST(CASE WHEN signed_at IS NULL THEN sign_due END, \
    CASE WHEN responded_at IS NULL THEN respond_due END, \
    CASE WHEN resolved_at IS NULL THEN resolve_due END)";

/// A page of work orders inside the caller's scope.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    f: &ListFilter,
) -> Result<Vec<work_orders::Model>, DbErr> {
    let mut sql =
        String::from("SELECT id FROM work_orders WHERE tenant = $1 AND region_code LIKE $2");
    let mut values: Vec<sea_orm::Value> = vec![
        who.tenant.code().into(),
        format!("{}%", who.scope.prefix()).into(),
    ];
    let bind = |v: sea_orm::Value, values: &mut Vec<sea_orm::Value>| {
        values.push(v);
        format!("${}", values.len())
    };
    if let Some(unit) = who.reads_as_unit() {
        let u = bind(unit.to_owned().into(), &mut values);
        sql.push_str(&format!(" AND {}", involves_unit(&u)));
    }
    let mut order = "created_at DESC, id DESC".to_owned();
    match f.queue {
        Queue::Mine => {
            let u = bind(f.unit.clone().unwrap_or_default().into(), &mut values);
            sql.push_str(&format!(
                " AND (unit_id = {u} \
                  OR EXISTS (SELECT 1 FROM work_order_co_units c WHERE c.work_order_id = work_orders.id AND c.unit_id = {u}) \
                  OR EXISTS (SELECT 1 FROM summons s WHERE s.work_order_id = work_orders.id AND s.unit_id = {u} AND s.reported_at IS NULL))"
            ));
            if f.status.is_none() {
                sql.push_str(&format!(" AND status IN {OPEN}"));
            }
        }
        Queue::Triage => sql.push_str(" AND status = 'triage'"),
        Queue::Overdue => {
            let now = bind(f.now.into(), &mut values);
            sql.push_str(&format!(
                " AND status IN {OPEN} AND paused_at IS NULL AND {NEXT_DUE} < {now}"
            ));
            order = format!("{NEXT_DUE} ASC, id");
        }
        Queue::DueSoon => {
            let now = bind(f.now.into(), &mut values);
            sql.push_str(&format!(
                " AND status IN {OPEN} AND paused_at IS NULL AND {NEXT_DUE} >= {now} \
                  AND {NEXT_DUE} < {now} + interval '24 hours'"
            ));
            order = format!("{NEXT_DUE} ASC, id");
        }
        Queue::Leadership => sql.push_str(" AND leadership"),
        Queue::All => {}
    }
    if let Some(s) = &f.status {
        let p = bind(s.clone().into(), &mut values);
        sql.push_str(&format!(" AND status = {p}"));
    }
    if let Some(l) = f.level {
        let p = bind(l.into(), &mut values);
        sql.push_str(&format!(" AND level = {p}"));
    }
    let lim = bind(i64::try_from(f.limit).unwrap_or(50).into(), &mut values);
    let off = bind(i64::try_from(f.offset).unwrap_or(0).into(), &mut values);
    sql.push_str(&format!(" ORDER BY {order} LIMIT {lim} OFFSET {off}"));
    let ids: Vec<Uuid> = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .into_iter()
        .map(|r| r.try_get("", "id"))
        .collect::<Result<_, _>>()?;
    let mut rows = work_orders::Entity::find()
        .filter(work_orders::Column::Id.is_in(ids.clone()))
        .all(conn)
        .await?;
    rows.sort_by_key(|m| ids.iter().position(|i| *i == m.id));
    Ok(rows)
}

/// A work order by id if the caller may see it.
pub async fn find_visible<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    id: Uuid,
) -> Result<Option<work_orders::Model>, DbErr> {
    visible_to(work_orders::Entity::find_by_id(id), who)
        .one(conn)
        .await
}
