//! Registered channels and their credentials.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, QueryResult};

use super::stmt;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: Uuid,
    pub tenant: String,
    pub name: String,
    pub channel: String,
    pub auth: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub valid_credentials: i64,
}

const SELECT: &str = "SELECT c.id, c.tenant, c.name, c.channel, c.auth, c.active, c.created_at, \
     (SELECT count(*) FROM channel_credentials k WHERE k.channel_id = c.id \
        AND (k.expires_at IS NULL OR k.expires_at > now())) AS valid_credentials \
     FROM channels c";

fn row(r: &QueryResult) -> Result<ChannelRow, DbErr> {
    Ok(ChannelRow {
        id: r.try_get("", "id")?,
        tenant: r.try_get("", "tenant")?,
        name: r.try_get("", "name")?,
        channel: r.try_get("", "channel")?,
        auth: r.try_get("", "auth")?,
        active: r.try_get("", "active")?,
        created_at: r.try_get("", "created_at")?,
        valid_credentials: r.try_get("", "valid_credentials")?,
    })
}

pub struct NewChannel<'a> {
    pub tenant: &'a str,
    pub name: &'a str,
    pub channel: &'a str,
    pub auth: &'a str,
    pub created_by: &'a str,
}

/// Inserts the channel; `None` when the tenant already has one of that name.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    c: &NewChannel<'_>,
) -> Result<bool, DbErr> {
    let res = conn
        .execute_raw(stmt(
            "INSERT INTO channels (id, tenant, name, channel, auth, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, name) DO NOTHING",
            vec![
                id.into(),
                c.tenant.into(),
                c.name.into(),
                c.channel.into(),
                c.auth.into(),
                c.created_by.into(),
            ],
        ))
        .await?;
    Ok(res.rows_affected() == 1)
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant_prefix: &str,
    id: Uuid,
) -> Result<Option<ChannelRow>, DbErr> {
    conn.query_one_raw(stmt(
        &format!("{SELECT} WHERE c.id = $1 AND c.tenant LIKE $2 || '%'"),
        vec![id.into(), tenant_prefix.into()],
    ))
    .await?
    .map(|r| row(&r))
    .transpose()
}

pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant_prefix: &str,
) -> Result<Vec<ChannelRow>, DbErr> {
    conn.query_all_raw(stmt(
        &format!("{SELECT} WHERE c.tenant LIKE $1 || '%' ORDER BY c.tenant, c.created_at"),
        vec![tenant_prefix.into()],
    ))
    .await?
    .iter()
    .map(row)
    .collect()
}

pub async fn set_active<C: ConnectionTrait>(conn: &C, id: Uuid, active: bool) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE channels SET active = $2 WHERE id = $1",
        vec![id.into(), active.into()],
    ))
    .await?;
    Ok(())
}

/// Locks the channel row so rotations of one channel run one at a time.
pub async fn lock<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "SELECT 1 FROM channels WHERE id = $1 FOR UPDATE",
        vec![id.into()],
    ))
    .await?;
    Ok(())
}

/// Stores a credential: exactly one of the encrypted secret or the digest.
pub async fn add_credential<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    channel_id: Uuid,
    secret_enc: Option<String>,
    key_digest: Option<String>,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO channel_credentials (id, channel_id, secret_enc, key_digest) VALUES ($1, $2, $3, $4)",
        vec![id.into(), channel_id.into(), secret_enc.into(), key_digest.into()],
    ))
    .await?;
    Ok(())
}

/// Before issuing a new credential: the newest valid one keeps working
/// until `overlap_until`, any older ones stop now. Returns the expiry given
/// to the newest, if there was one.
pub async fn retire_credentials<C: ConnectionTrait>(
    conn: &C,
    channel_id: Uuid,
    overlap_until: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let newest = conn
        .query_one_raw(stmt(
            "SELECT id FROM channel_credentials WHERE channel_id = $1 \
             AND (expires_at IS NULL OR expires_at > now()) ORDER BY created_at DESC, id DESC LIMIT 1",
            vec![channel_id.into()],
        ))
        .await?
        .map(|r| r.try_get::<Uuid>("", "id"))
        .transpose()?;
    conn.execute_raw(stmt(
        "UPDATE channel_credentials SET expires_at = now() WHERE channel_id = $1 \
         AND (expires_at IS NULL OR expires_at > now()) AND id IS DISTINCT FROM $2",
        vec![channel_id.into(), newest.into()],
    ))
    .await?;
    let Some(newest) = newest else {
        return Ok(None);
    };
    conn.execute_raw(stmt(
        "UPDATE channel_credentials SET expires_at = LEAST(COALESCE(expires_at, $2), $2) WHERE id = $1",
        vec![newest.into(), overlap_until.into()],
    ))
    .await?;
    Ok(Some(overlap_until))
}

/// The encrypted webhook secrets of an active webhook channel that are valid
/// now, with their credential ids (for the associated data). `None` when the
/// channel is unknown, disabled or not a webhook channel.
pub async fn webhook_secrets<C: ConnectionTrait>(
    conn: &C,
    channel_id: Uuid,
) -> Result<Option<(ChannelRow, Vec<(Uuid, String)>)>, DbErr> {
    let Some(ch) = conn
        .query_one_raw(stmt(
            &format!("{SELECT} WHERE c.id = $1 AND c.active AND c.auth = 'webhook'"),
            vec![channel_id.into()],
        ))
        .await?
        .map(|r| row(&r))
        .transpose()?
    else {
        return Ok(None);
    };
    let secrets = conn
        .query_all_raw(stmt(
            "SELECT id, secret_enc FROM channel_credentials WHERE channel_id = $1 \
             AND secret_enc IS NOT NULL AND (expires_at IS NULL OR expires_at > now()) \
             ORDER BY created_at DESC",
            vec![channel_id.into()],
        ))
        .await?
        .iter()
        .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "secret_enc")?)))
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(Some((ch, secrets)))
}

/// The active Open311 channel of `tenant` whose valid key has this digest.
pub async fn by_api_key<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    digest: &str,
) -> Result<Option<ChannelRow>, DbErr> {
    conn.query_one_raw(stmt(
        &format!(
            "{SELECT} JOIN channel_credentials k ON k.channel_id = c.id \
             WHERE k.key_digest = $1 AND (k.expires_at IS NULL OR k.expires_at > now()) \
             AND c.active AND c.auth = 'open311' AND c.tenant = $2"
        ),
        vec![digest.into(), tenant.into()],
    ))
    .await?
    .map(|r| row(&r))
    .transpose()
}

/// Records a delivery's nonce; false when it was seen before.
pub async fn record_nonce<C: ConnectionTrait>(
    conn: &C,
    channel_id: Uuid,
    nonce: &str,
) -> Result<bool, DbErr> {
    let res = conn
        .execute_raw(stmt(
            "INSERT INTO webhook_nonces (channel_id, nonce) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            vec![channel_id.into(), nonce.into()],
        ))
        .await?;
    Ok(res.rows_affected() == 1)
}

/// Forgets nonces older than `keep`: their timestamps are outside the window
/// anyway, so a replay is refused as stale.
pub async fn purge_nonces<C: ConnectionTrait>(
    conn: &C,
    keep: std::time::Duration,
) -> Result<u64, DbErr> {
    let res = conn
        .execute_raw(stmt(
            "DELETE FROM webhook_nonces WHERE seen_at < now() - make_interval(secs => $1)",
            vec![keep.as_secs_f64().into()],
        ))
        .await?;
    Ok(res.rows_affected())
}
