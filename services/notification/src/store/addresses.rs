//! The recipient directory: where a staff recipient is reached on each
//! channel field, sealed at rest.

use jiesu_pii::Keyring;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use uuid::Uuid;

/// Associated data of a sealed address: bound to its row and tenant.
pub fn aad(tenant: &str, id: Uuid) -> String {
    format!("notification.recipient_addresses.address:{tenant}:{id}")
}

/// One recipient's fields, masked, in field order.
pub async fn masked<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    kind: &str,
    id: &str,
) -> Result<Vec<(String, String)>, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT field, address_masked FROM recipient_addresses \
             WHERE tenant = $1 AND recipient_kind = $2 AND recipient_id = $3 ORDER BY field",
            [tenant.into(), kind.into(), id.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "field")?, r.try_get("", "address_masked")?)))
        .collect()
}

/// The plain address of one field, or None.
pub async fn address<C: ConnectionTrait>(
    conn: &C,
    keyring: &Keyring,
    tenant: &str,
    kind: &str,
    id: &str,
    field: &str,
) -> Result<Option<String>, String> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, address_enc FROM recipient_addresses \
             WHERE tenant = $1 AND recipient_kind = $2 AND recipient_id = $3 AND field = $4",
            [tenant.into(), kind.into(), id.into(), field.into()],
        ))
        .await
        .map_err(|e| format!("recipient directory: {e}"))?;
    let Some(row) = row else { return Ok(None) };
    let row_id: Uuid = row
        .try_get("", "id")
        .map_err(|e| format!("recipient directory: {e}"))?;
    let sealed: String = row
        .try_get("", "address_enc")
        .map_err(|e| format!("recipient directory: {e}"))?;
    keyring
        .decrypt(&sealed, &aad(tenant, row_id))
        .map(Some)
        .map_err(|e| format!("recipient address cannot be opened: {e}"))
}

/// Sets (or, with an empty value, removes) one field.
#[allow(clippy::too_many_arguments)]
pub async fn set<C: ConnectionTrait>(
    conn: &C,
    keyring: &Keyring,
    tenant: &str,
    kind: &str,
    id: &str,
    field: &str,
    value: &str,
    masked: &str,
    by: &str,
) -> Result<(), DbErr> {
    if value.is_empty() {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM recipient_addresses \
             WHERE tenant = $1 AND recipient_kind = $2 AND recipient_id = $3 AND field = $4",
            [tenant.into(), kind.into(), id.into(), field.into()],
        ))
        .await?;
        return Ok(());
    }
    // The row keeps its id (the seal's associated data) across updates.
    let existing = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id FROM recipient_addresses \
             WHERE tenant = $1 AND recipient_kind = $2 AND recipient_id = $3 AND field = $4 \
             FOR UPDATE",
            [tenant.into(), kind.into(), id.into(), field.into()],
        ))
        .await?;
    let row_id = match existing {
        Some(r) => r.try_get::<Uuid>("", "id")?,
        None => Uuid::now_v7(),
    };
    let sealed = keyring
        .encrypt(value, &aad(tenant, row_id))
        .map_err(|e| DbErr::Custom(format!("sealing an address: {e}")))?;
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO recipient_addresses \
           (id, tenant, recipient_kind, recipient_id, field, address_enc, address_masked, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now()) \
         ON CONFLICT (tenant, recipient_kind, recipient_id, field) DO UPDATE SET \
           address_enc = EXCLUDED.address_enc, address_masked = EXCLUDED.address_masked, \
           updated_by = EXCLUDED.updated_by, updated_at = now()",
        [
            row_id.into(),
            tenant.into(),
            kind.into(),
            id.into(),
            field.into(),
            sealed.into(),
            masked.into(),
            by.into(),
        ],
    ))
    .await?;
    Ok(())
}
