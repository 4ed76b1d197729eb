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
    // The row keeps its id (the seal's associated data) across updates; two
    // first writes at once both make one, and the row takes the id of the
    // seal that wins.
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
           id = EXCLUDED.id, address_enc = EXCLUDED.address_enc, address_masked = EXCLUDED.address_masked, \
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

/// The plain addresses of these recipients, every field, in one query:
/// `(tenant, kind, id, field)` → address. For a round of deliveries.
pub async fn of_recipients<C: ConnectionTrait>(
    conn: &C,
    keyring: &Keyring,
    recipients: &[(String, String, String)],
) -> Result<std::collections::HashMap<(String, String, String, String), String>, String> {
    let mut out = std::collections::HashMap::new();
    if recipients.is_empty() {
        return Ok(out);
    }
    let (mut tenants, mut kinds, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for (t, k, i) in recipients {
        tenants.push(t.clone());
        kinds.push(k.clone());
        ids.push(i.clone());
    }
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT a.id, a.tenant, a.recipient_kind, a.recipient_id, a.field, a.address_enc \
             FROM recipient_addresses a \
             JOIN unnest($1::text[], $2::text[], $3::text[]) AS r(tenant, kind, id) \
               ON a.tenant = r.tenant AND a.recipient_kind = r.kind AND a.recipient_id = r.id",
            [tenants.into(), kinds.into(), ids.into()],
        ))
        .await
        .map_err(|e| format!("recipient directory: {e}"))?;
    for row in rows {
        let get = |c: &str| -> Result<String, String> {
            row.try_get("", c)
                .map_err(|e| format!("recipient directory: {e}"))
        };
        let row_id: Uuid = row
            .try_get("", "id")
            .map_err(|e| format!("recipient directory: {e}"))?;
        let tenant = get("tenant")?;
        // One address that cannot be opened (a key removed too early)
        // leaves that recipient without it, not the whole round.
        let address = match keyring.decrypt(&get("address_enc")?, &aad(&tenant, row_id)) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(address_id = %row_id, error = %e, "a recipient address cannot be opened");
                continue;
            }
        };
        out.insert(
            (
                tenant,
                get("recipient_kind")?,
                get("recipient_id")?,
                get("field")?,
            ),
            address,
        );
    }
    Ok(out)
}
