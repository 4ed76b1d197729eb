//! Intake's tables and the only queries that touch them. Every finder of
//! tenant data takes the caller's [`Principal`] and scopes by it.

pub mod categories;
pub mod channels;
pub mod ticket_events;
pub mod tickets;

use jiesu_auth::Principal;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Statement,
};
use uuid::Uuid;

/// A PostgreSQL statement with positional values.
pub fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Next number of the tenant's daily tracking sequence (inside the caller's
/// transaction, so a rollback gives the number back).
pub async fn next_tracking_seq<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    day: chrono::NaiveDate,
) -> Result<i32, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO tracking_counters (tenant, day, last) VALUES ($1, $2, 1) \
             ON CONFLICT (tenant, day) DO UPDATE SET last = tracking_counters.last + 1 \
             RETURNING last",
            [tenant.into(), day.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("tracking counter returned no row".into()))?;
    row.try_get("", "last")
}

/// The ticket if the caller may see it: inside their scope and, for a
/// citizen, submitted by them. Anything else is "not found".
pub async fn find_visible_ticket<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    id: Uuid,
) -> Result<Option<tickets::Model>, DbErr> {
    let mut q = tickets::Entity::find_by_id(id)
        .filter(tickets::Column::RegionCode.starts_with(who.scope.prefix()));
    if who.is_citizen_only() {
        q = q.filter(tickets::Column::SubmitterSub.eq(who.sub.clone()));
    }
    q.one(conn).await
}

/// An earlier ticket by the same submitter with the same idempotency key.
pub async fn find_by_idempotency_key<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    submitter_sub: &str,
    key: &str,
) -> Result<Option<tickets::Model>, DbErr> {
    tickets::Entity::find()
        .filter(tickets::Column::Tenant.eq(tenant))
        .filter(tickets::Column::SubmitterSub.eq(submitter_sub))
        .filter(tickets::Column::IdempotencyKey.eq(key))
        .one(conn)
        .await
}

/// The ticket a channel delivered under its own id.
pub async fn find_by_external_id<C: ConnectionTrait>(
    conn: &C,
    channel_id: Uuid,
    external_id: &str,
) -> Result<Option<tickets::Model>, DbErr> {
    tickets::Entity::find()
        .filter(tickets::Column::ChannelId.eq(channel_id))
        .filter(tickets::Column::ExternalId.eq(external_id))
        .one(conn)
        .await
}

pub async fn timeline<C: ConnectionTrait>(
    conn: &C,
    ticket: &tickets::Model,
) -> Result<Vec<ticket_events::Model>, DbErr> {
    ticket_events::Entity::find()
        .filter(ticket_events::Column::TicketId.eq(ticket.id))
        .filter(ticket_events::Column::Tenant.eq(ticket.tenant.clone()))
        .order_by_asc(ticket_events::Column::At)
        .order_by_asc(ticket_events::Column::Id)
        .all(conn)
        .await
}

/// A step of the work order the citizen may see (intake's copy).
pub struct Progress {
    pub at: chrono::DateTime<chrono::Utc>,
    pub step: String,
    pub note: String,
}

/// The public steps of `ticket`'s work order, oldest first.
pub async fn progress<C: ConnectionTrait>(
    conn: &C,
    ticket: &tickets::Model,
) -> Result<Vec<Progress>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT at, step, note FROM ticket_progress \
             WHERE ticket_id = $1 AND tenant = $2 ORDER BY at, id",
            vec![ticket.id.into(), ticket.tenant.clone().into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Progress {
                at: r.try_get("", "at")?,
                step: r.try_get("", "step")?,
                note: r.try_get("", "note")?,
            })
        })
        .collect()
}

/// Every category name of the tenant by code (retired ones too: old
/// tickets keep their codes).
pub async fn category_names<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
) -> Result<std::collections::HashMap<String, String>, DbErr> {
    Ok(categories::Entity::find()
        .filter(categories::Column::Tenant.eq(tenant))
        .all(conn)
        .await?
        .into_iter()
        .map(|c| (c.code, c.name))
        .collect())
}

/// The tenant's active categories, tree order.
pub async fn categories_of<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
) -> Result<Vec<categories::Model>, DbErr> {
    categories::Entity::find()
        .filter(categories::Column::Tenant.eq(tenant))
        .filter(categories::Column::Active.eq(true))
        .order_by_asc(categories::Column::Level)
        .order_by_asc(categories::Column::Sort)
        .order_by_asc(categories::Column::Code)
        .all(conn)
        .await
}

/// The category and whether it is a leaf (no active children).
pub async fn category_for_ticket<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    code: &str,
) -> Result<Option<(categories::Model, bool)>, DbErr> {
    let Some(cat) = categories::Entity::find_by_id((tenant.to_owned(), code.to_owned()))
        .filter(categories::Column::Active.eq(true))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let child = categories::Entity::find()
        .filter(categories::Column::Tenant.eq(tenant))
        .filter(categories::Column::ParentCode.eq(code))
        .filter(categories::Column::Active.eq(true))
        .one(conn)
        .await?;
    Ok(Some((cat, child.is_none())))
}

/// A category's ancestors and itself as (code, name), top group first; one
/// query. Empty when the code is unknown.
pub async fn category_path<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    code: &str,
) -> Result<Vec<(String, String)>, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "WITH RECURSIVE up(code, name, parent_code, depth) AS ( \
               SELECT code, name, parent_code, 0 FROM categories \
                WHERE tenant = $1 AND code = $2 \
               UNION ALL \
               SELECT c.code, c.name, c.parent_code, up.depth + 1 \
                 FROM categories c JOIN up ON c.code = up.parent_code \
                WHERE c.tenant = $1 AND up.depth < 8) \
             SELECT code, name FROM up ORDER BY depth DESC",
            [tenant.into(), code.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "code")?, r.try_get("", "name")?)))
        .collect()
}

/// Tickets merged into `master`, oldest first.
pub async fn merged_into<C: ConnectionTrait>(
    conn: &C,
    master: Uuid,
) -> Result<Vec<tickets::Model>, DbErr> {
    tickets::Entity::find()
        .filter(tickets::Column::MergedInto.eq(master))
        .filter(tickets::Column::Status.eq(crate::domain::STATUS_MERGED))
        .order_by_asc(tickets::Column::CreatedAt)
        .all(conn)
        .await
}
