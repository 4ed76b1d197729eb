//! The units directory and the responsibility list, as stored.

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbErr, QueryResult};

use super::settings::stmt;
use crate::domain::responsibility::Entry;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub region_code: String,
    pub parent_id: Option<String>,
    pub duty_phone: String,
    pub members: Vec<String>,
    pub active: bool,
}

const UNIT_COLUMNS: &str = "id, name, kind, region_code, parent_id, duty_phone, members, active";

fn unit(r: &QueryResult) -> Result<UnitRow, DbErr> {
    Ok(UnitRow {
        id: r.try_get("", "id")?,
        name: r.try_get("", "name")?,
        kind: r.try_get("", "kind")?,
        region_code: r.try_get("", "region_code")?,
        parent_id: r.try_get("", "parent_id")?,
        duty_phone: r.try_get("", "duty_phone")?,
        members: r.try_get("", "members")?,
        active: r.try_get("", "active")?,
    })
}

pub async fn units<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    kind: Option<&str>,
    region: Option<&str>,
    include_inactive: bool,
) -> Result<Vec<UnitRow>, DbErr> {
    conn.query_all_raw(stmt(
        &format!(
            "SELECT {UNIT_COLUMNS} FROM units WHERE tenant = $1 \
             AND ($2::text IS NULL OR kind = $2) \
             AND ($3::text IS NULL OR starts_with(region_code, $3)) \
             AND (active OR $4) ORDER BY region_code, id"
        ),
        vec![
            tenant.into(),
            kind.map(str::to_owned).into(),
            region.map(str::to_owned).into(),
            include_inactive.into(),
        ],
    ))
    .await?
    .iter()
    .map(unit)
    .collect()
}

pub async fn unit_by_id<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    id: &str,
) -> Result<Option<UnitRow>, DbErr> {
    conn.query_one_raw(stmt(
        &format!("SELECT {UNIT_COLUMNS} FROM units WHERE tenant = $1 AND id = $2"),
        vec![tenant.into(), id.into()],
    ))
    .await?
    .as_ref()
    .map(unit)
    .transpose()
}

pub async fn put_unit<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    u: &UnitRow,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO units (tenant, id, name, kind, region_code, parent_id, duty_phone, members, \
         active, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now()) \
         ON CONFLICT (tenant, id) DO UPDATE SET name = $3, kind = $4, region_code = $5, \
         parent_id = $6, duty_phone = $7, members = $8, active = $9, updated_at = now()",
        vec![
            tenant.into(),
            u.id.clone().into(),
            u.name.clone().into(),
            u.kind.clone().into(),
            u.region_code.clone().into(),
            u.parent_id.clone().into(),
            u.duty_phone.clone().into(),
            u.members.clone().into(),
            u.active.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// How many entries valid on `day` or later name the unit.
pub async fn unit_in_use<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    id: &str,
    day: NaiveDate,
) -> Result<i64, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT count(*) AS n FROM responsibilities WHERE tenant = $1 \
             AND (lead_unit_id = $2 OR $2 = ANY(co_unit_ids)) \
             AND (valid_to IS NULL OR valid_to >= $3)",
            vec![tenant.into(), id.into(), day.into()],
        ))
        .await?;
    row.map_or(Ok(0), |r| r.try_get("", "n"))
}

fn entry(r: &QueryResult) -> Result<Entry, DbErr> {
    Ok(Entry {
        category: r.try_get("", "category")?,
        region: r.try_get("", "region_code")?,
        lead: r.try_get("", "lead_unit_id")?,
        co: r.try_get("", "co_unit_ids")?,
        valid_from: r.try_get("", "valid_from")?,
        valid_to: r.try_get("", "valid_to")?,
        note: r.try_get("", "note")?,
    })
}

const ENTRY_COLUMNS: &str =
    "category, region_code, lead_unit_id, co_unit_ids, valid_from, valid_to, note";

pub async fn entries<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Vec<Entry>, DbErr> {
    conn.query_all_raw(stmt(
        &format!(
            "SELECT {ENTRY_COLUMNS} FROM responsibilities WHERE tenant = $1 \
             ORDER BY category, region_code, valid_from"
        ),
        vec![tenant.into()],
    ))
    .await?
    .iter()
    .map(entry)
    .collect()
}

/// The entry that routes a ticket (see `domain::responsibility::pick`),
/// found by the database so a long list is not read per ticket.
pub async fn route<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    category: &str,
    region: &str,
    day: NaiveDate,
) -> Result<Option<Entry>, DbErr> {
    conn.query_one_raw(stmt(
        &format!(
            "SELECT {ENTRY_COLUMNS} FROM responsibilities r WHERE tenant = $1 \
             AND starts_with($2, category) AND starts_with($3, region_code) \
             AND valid_from <= $4 AND (valid_to IS NULL OR valid_to >= $4) \
             AND EXISTS (SELECT 1 FROM units u WHERE u.tenant = r.tenant \
                         AND u.id = r.lead_unit_id AND u.active) \
             ORDER BY length(region_code) DESC, length(category) DESC LIMIT 1"
        ),
        vec![tenant.into(), category.into(), region.into(), day.into()],
    ))
    .await?
    .as_ref()
    .map(entry)
    .transpose()
}

/// Units leading entries of the same category group (the code's first two
/// characters) valid on `day`, most entries first: what a dispatcher is
/// offered for a ticket nobody is responsible for.
pub async fn suggest<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    category: &str,
    day: NaiveDate,
) -> Result<Vec<(String, String)>, DbErr> {
    let group: String = category.chars().take(2).collect();
    conn.query_all_raw(stmt(
        "SELECT u.id, u.name FROM responsibilities r JOIN units u \
           ON u.tenant = r.tenant AND u.id = r.lead_unit_id AND u.active \
         WHERE r.tenant = $1 AND starts_with(r.category, $2) \
           AND r.valid_from <= $3 AND (r.valid_to IS NULL OR r.valid_to >= $3) \
         GROUP BY u.id, u.name ORDER BY count(*) DESC, u.id LIMIT 3",
        vec![tenant.into(), group.into(), day.into()],
    ))
    .await?
    .iter()
    .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "name")?)))
    .collect()
}

/// Replaces the tenant's whole list (inside the caller's transaction).
pub async fn replace_entries<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    list: &[Entry],
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "DELETE FROM responsibilities WHERE tenant = $1",
        vec![tenant.into()],
    ))
    .await?;
    for e in list {
        conn.execute_raw(stmt(
            "INSERT INTO responsibilities (tenant, category, region_code, lead_unit_id, \
             co_unit_ids, valid_from, valid_to, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                tenant.into(),
                e.category.clone().into(),
                e.region.clone().into(),
                e.lead.clone().into(),
                e.co.clone().into(),
                e.valid_from.into(),
                e.valid_to.into(),
                e.note.clone().into(),
            ],
        ))
        .await?;
    }
    Ok(())
}
