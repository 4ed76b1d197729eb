//! Households and key persons, their personal fields sealed at rest, and
//! the record of every read of them (`pii_reads`). Rows come back whole
//! (a household's room excepted, which nobody reads back); the caller masks.

use chrono::{DateTime, Utc};
use jiesu_pii::Keyring;
use jiesu_proto::{
    grid::{Household, KeyPerson, PersonalDataRead, Resident},
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use uuid::Uuid;

use super::{Sealed, stmt};
use crate::error::GridError;

/// The two tables of residents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Households,
    KeyPersons,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Households => "households",
            Self::KeyPersons => "key_persons",
        }
    }
}

fn sealed<'a>(keyring: &'a Keyring, tenant: &'a str, table: Table, id: Uuid) -> Sealed<'a> {
    Sealed {
        keyring,
        tenant,
        table: table.name(),
        id,
    }
}

/// The grid a household or key person is in now, if it exists.
pub async fn grid_of<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    table: Table,
    id: Uuid,
) -> Result<Option<String>, DbErr> {
    let sql = match table {
        Table::Households => "SELECT grid_code FROM households WHERE tenant = $1 AND id = $2",
        Table::KeyPersons => "SELECT grid_code FROM key_persons WHERE tenant = $1 AND id = $2",
    };
    conn.query_one_raw(stmt(sql, vec![tenant.into(), id.into()]))
        .await?
        .map(|r| r.try_get("", "grid_code"))
        .transpose()
}

/// Adds or replaces a household (`h` checked and whole; sealed here).
pub async fn save_household(
    db: &DatabaseConnection,
    keyring: &Keyring,
    tenant: &str,
    id: Uuid,
    h: &Household,
) -> Result<(), GridError> {
    let s = sealed(keyring, tenant, Table::Households, id);
    let residents: Vec<serde_json::Value> = h
        .residents
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "relation": r.relation,
                "id_number": r.id_number,
                "birth_year": r.birth_year,
            })
        })
        .collect();
    let residents = s.seal("residents", &serde_json::Value::from(residents).to_string())?;
    db.execute_raw(stmt(
        "INSERT INTO households (tenant, id, grid_code, building_code, room_enc, head_name_enc, \
           phone_enc, members, residents_enc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (tenant, id) DO UPDATE SET grid_code = $3, building_code = $4, \
           room_enc = $5, head_name_enc = $6, phone_enc = $7, members = $8, residents_enc = $9",
        vec![
            tenant.into(),
            id.into(),
            h.grid_code.clone().into(),
            h.building_code.clone().into(),
            s.seal("room", &h.room)?.into(),
            s.seal("head_name", &h.head_name)?.into(),
            s.seal("phone", &h.phone)?.into(),
            h.members.into(),
            residents.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Households, whole but for the room, by id or of some grids (`None`:
/// all).
pub async fn households(
    db: &DatabaseConnection,
    keyring: &Keyring,
    tenant: &str,
    id: Option<Uuid>,
    grids: Option<Vec<String>>,
) -> Result<Vec<Household>, GridError> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT id, grid_code, building_code, head_name_enc, phone_enc, members, residents_enc \
             FROM households WHERE tenant = $1 AND ($2::uuid IS NULL OR id = $2) \
               AND ($3::text[] IS NULL OR grid_code = ANY($3)) ORDER BY grid_code, id LIMIT 5000",
            vec![tenant.into(), id.into(), grids.into()],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: Uuid = r.try_get("", "id")?;
        let s = sealed(keyring, tenant, Table::Households, id);
        let open = |col: &str, field: &str| -> Result<String, GridError> {
            let v: Option<String> = r.try_get("", col)?;
            Ok(v.map(|v| s.open(field, &v))
                .transpose()?
                .unwrap_or_default())
        };
        let residents: Vec<serde_json::Value> =
            serde_json::from_str(&open("residents_enc", "residents")?).unwrap_or_default();
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
        out.push(Household {
            id: id.to_string(),
            grid_code: r.try_get("", "grid_code")?,
            building_code: r.try_get("", "building_code")?,
            // Never read back: no caller is shown a room.
            room: String::new(),
            head_name: open("head_name_enc", "head_name")?,
            phone: open("phone_enc", "phone")?,
            members: r.try_get("", "members")?,
            residents: residents
                .iter()
                .map(|v| Resident {
                    name: text(v, "name"),
                    relation: text(v, "relation"),
                    id_number: text(v, "id_number"),
                    birth_year: v["birth_year"]
                        .as_i64()
                        .and_then(|y| i32::try_from(y).ok())
                        .unwrap_or_default(),
                })
                .collect(),
        });
    }
    Ok(out)
}

/// Adds or replaces a key person (`p` checked and whole; sealed here).
pub async fn save_key_person(
    db: &DatabaseConnection,
    keyring: &Keyring,
    tenant: &str,
    id: Uuid,
    household: Option<Uuid>,
    p: &KeyPerson,
) -> Result<(), GridError> {
    let s = sealed(keyring, tenant, Table::KeyPersons, id);
    db.execute_raw(stmt(
        "INSERT INTO key_persons (tenant, id, grid_code, household_id, category, name_enc, \
           id_number_enc, phone_enc, address_enc, note_enc, active) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (tenant, id) DO UPDATE SET grid_code = $3, household_id = $4, \
           category = $5, name_enc = $6, id_number_enc = $7, phone_enc = $8, \
           address_enc = $9, note_enc = $10, active = $11",
        vec![
            tenant.into(),
            id.into(),
            p.grid_code.clone().into(),
            household.into(),
            p.category.clone().into(),
            s.seal("name", &p.name)?.into(),
            s.seal("id_number", &p.id_number)?.into(),
            s.seal("phone", &p.phone)?.into(),
            s.seal("address", &p.address)?.into(),
            s.seal("note", &p.note)?.into(),
            p.active.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Which key persons to read.
#[derive(Debug, Default)]
pub struct KeyPersonFilter<'a> {
    pub id: Option<Uuid>,
    /// `None`: every grid of the tenant.
    pub grids: Option<Vec<String>>,
    pub category: Option<&'a str>,
}

/// Key persons, whole, with their last visit.
pub async fn key_persons(
    db: &DatabaseConnection,
    keyring: &Keyring,
    tenant: &str,
    filter: KeyPersonFilter<'_>,
) -> Result<Vec<KeyPerson>, GridError> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT k.id, k.grid_code, k.household_id, k.category, k.name_enc, k.id_number_enc, \
               k.phone_enc, k.address_enc, k.note_enc, k.active, \
               (SELECT max(t.done_at) FROM duty_tasks t WHERE t.tenant = k.tenant \
                  AND t.target_kind = 'key_person' AND t.target_id = k.id::text) AS last_visit \
             FROM key_persons k WHERE k.tenant = $1 AND ($2::uuid IS NULL OR k.id = $2) \
               AND ($3::text[] IS NULL OR k.grid_code = ANY($3)) \
               AND ($4::text IS NULL OR k.category = $4) \
             ORDER BY k.grid_code, k.id",
            vec![
                tenant.into(),
                filter.id.into(),
                filter.grids.into(),
                filter.category.map(str::to_owned).into(),
            ],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: Uuid = r.try_get("", "id")?;
        let s = sealed(keyring, tenant, Table::KeyPersons, id);
        let open = |col: &str, field: &str| -> Result<String, GridError> {
            let v: String = r.try_get("", col)?;
            Ok(s.open(field, &v)?)
        };
        let household: Option<Uuid> = r.try_get("", "household_id")?;
        let last: Option<DateTime<Utc>> = r.try_get("", "last_visit")?;
        out.push(KeyPerson {
            id: id.to_string(),
            grid_code: r.try_get("", "grid_code")?,
            household_id: household.map(|h| h.to_string()).unwrap_or_default(),
            category: r.try_get("", "category")?,
            name: open("name_enc", "name")?,
            id_number: open("id_number_enc", "id_number")?,
            phone: open("phone_enc", "phone")?,
            address: open("address_enc", "address")?,
            note: open("note_enc", "note")?,
            active: r.try_get("", "active")?,
            last_visit: last.map(to_timestamp),
        });
    }
    Ok(out)
}

/// One read of personal data: who, in which roles, what, and why.
pub struct Read<'a> {
    pub reader: &'a str,
    pub roles: Vec<String>,
    pub what: &'a str,
    pub ids: Vec<String>,
    pub purpose: &'a str,
}

pub async fn record_read<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    read: Read<'_>,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO pii_reads (tenant, reader, roles, what, subject_ids, purpose) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            tenant.into(),
            read.reader.into(),
            read.roles.into(),
            read.what.into(),
            read.ids.into(),
            read.purpose.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The last 500 reads, newest first; of one subject if given.
pub async fn reads<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    subject: Option<&str>,
) -> Result<Vec<PersonalDataRead>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT at, reader, roles, what, subject_ids, purpose FROM pii_reads \
             WHERE tenant = $1 AND ($2::text IS NULL OR $2 = ANY(subject_ids)) \
             ORDER BY at DESC, id DESC LIMIT 500",
            vec![tenant.into(), subject.map(str::to_owned).into()],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            let at: DateTime<Utc> = r.try_get("", "at")?;
            Ok(PersonalDataRead {
                at: Some(to_timestamp(at)),
                reader: r.try_get("", "reader")?,
                roles: r.try_get("", "roles")?,
                what: r.try_get("", "what")?,
                subject_ids: r.try_get("", "subject_ids")?,
                purpose: r.try_get("", "purpose")?,
            })
        })
        .collect()
}
