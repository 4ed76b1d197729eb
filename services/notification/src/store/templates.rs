//! A tenant's message templates (see `crate::templates`).

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement};

#[derive(Debug, Clone)]
pub struct Stored {
    pub kind: String,
    pub channel: String,
    pub title: String,
    pub body: String,
    pub sms_template_code: String,
    pub sign_name: String,
    pub version: i32,
    pub updated_by: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn row(r: &QueryResult) -> Result<Stored, DbErr> {
    Ok(Stored {
        kind: r.try_get("", "kind")?,
        channel: r.try_get("", "channel")?,
        title: r.try_get("", "title")?,
        body: r.try_get("", "body")?,
        sms_template_code: r.try_get("", "sms_template_code")?,
        sign_name: r.try_get("", "sign_name")?,
        version: r.try_get("", "version")?,
        updated_by: r.try_get("", "updated_by")?,
        updated_at: r.try_get("", "updated_at")?,
    })
}

const COLUMNS: &str =
    "kind, channel, title, body, sms_template_code, sign_name, version, updated_by, updated_at";

/// Every template of the tenant.
pub async fn all<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Vec<Stored>, DbErr> {
    conn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT {COLUMNS} FROM templates WHERE tenant = $1 ORDER BY kind, channel"),
        [tenant.into()],
    ))
    .await?
    .iter()
    .map(row)
    .collect()
}

/// The template a message of `kind` on `channel` is rendered with: the
/// channel's own, else the tenant's for every channel.
pub async fn for_channel<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    kind: &str,
    channel: &str,
) -> Result<Option<Stored>, DbErr> {
    conn.query_one_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "SELECT {COLUMNS} FROM templates WHERE tenant = $1 AND kind = $2 \
             AND channel IN ($3, '*') ORDER BY channel = '*' LIMIT 1"
        ),
        [tenant.into(), kind.into(), channel.into()],
    ))
    .await?
    .as_ref()
    .map(row)
    .transpose()
}

/// Saves a checked template; the version counts the edits.
pub async fn put<C: ConnectionTrait>(conn: &C, tenant: &str, t: &Stored) -> Result<Stored, DbErr> {
    let r = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO templates (tenant, kind, channel, title, body, sms_template_code, \
                   sign_name, version, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, now()) \
                 ON CONFLICT (tenant, kind, channel) DO UPDATE SET title = EXCLUDED.title, \
                   body = EXCLUDED.body, sms_template_code = EXCLUDED.sms_template_code, \
                   sign_name = EXCLUDED.sign_name, version = templates.version + 1, \
                   updated_by = EXCLUDED.updated_by, updated_at = now() \
                 RETURNING {COLUMNS}"
            ),
            [
                tenant.into(),
                t.kind.clone().into(),
                t.channel.clone().into(),
                t.title.clone().into(),
                t.body.clone().into(),
                t.sms_template_code.clone().into(),
                t.sign_name.clone().into(),
                t.updated_by.clone().into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotInserted)?;
    row(&r)
}

/// Removes the tenant's template: the default applies again. Whether one
/// was there.
pub async fn delete<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    kind: &str,
    channel: &str,
) -> Result<bool, DbErr> {
    let r = conn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM templates WHERE tenant = $1 AND kind = $2 AND channel = $3",
            [tenant.into(), kind.into(), channel.into()],
        ))
        .await?;
    Ok(r.rows_affected() > 0)
}
