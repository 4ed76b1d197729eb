//! Channels a tenant admin registers, and their credentials.

use chrono::Utc;
use jiesu_auth::{Principal, Role};
use jiesu_common::tr;
use jiesu_proto::{
    intake::{
        ChannelCredential, ListChannelsResponse, RegisterChannelRequest, RegisteredChannel,
        RotateChannelCredentialRequest,
    },
    time::to_timestamp,
};
use sea_orm::TransactionTrait;
use uuid::Uuid;

use super::{Core, IntakeError};
use crate::{
    domain::{
        Channel, bad,
        credentials::{self, AuthKind},
        parse_id, says,
    },
    store::channels::{self, ChannelRow, NewChannel},
};

const ADMINS: &[Role] = &[Role::TenantAdmin];
pub const MAX_CHANNEL_NAME: usize = 64;
/// A rotation overlap longer than this is a mistake, not a plan.
pub const MAX_OVERLAP_SECS: i64 = 30 * 24 * 3600;

fn message(c: &ChannelRow) -> RegisteredChannel {
    RegisteredChannel {
        id: c.id.to_string(),
        tenant: c.tenant.clone(),
        name: c.name.clone(),
        channel: c.channel.clone(),
        auth: c.auth.clone(),
        active: c.active,
        created_at: Some(to_timestamp(c.created_at)),
        valid_credentials: i32::try_from(c.valid_credentials).unwrap_or(i32::MAX),
    }
}

impl Core {
    pub async fn register_channel(
        &self,
        who: &Principal,
        req: &RegisterChannelRequest,
    ) -> Result<ChannelCredential, IntakeError> {
        who.require_any(ADMINS)?;
        let name = req.name.trim();
        if name.is_empty() {
            return Err(bad("name", says::required()).into());
        }
        if name.chars().count() > MAX_CHANNEL_NAME || name.chars().any(char::is_control) {
            return Err(bad(
                "name",
                tr!(
                    "最多 {MAX_CHANNEL_NAME} 个字符，且不含控制字符",
                    "must be at most {MAX_CHANNEL_NAME} characters without control characters"
                ),
            )
            .into());
        }
        let channel = Channel::parse(req.channel.trim())
            .ok_or_else(|| bad("channel", says::one_of(&Channel::names())))?;
        if channel == Channel::Hotline {
            return Err(bad(
                "channel",
                tr!(
                    "热线诉求由话务员录入；请登记发送诉求的系统",
                    "hotline tickets are entered by agents; register the system that sends them instead"
                ),
            )
            .into());
        }
        let auth = AuthKind::parse(req.auth.trim()).ok_or_else(|| {
            bad(
                "auth",
                tr!("必须是 webhook 或 open311", "must be webhook or open311"),
            )
        })?;
        let id = Uuid::now_v7();
        let txn = self.db.begin().await?;
        let fresh = channels::insert(
            &txn,
            id,
            &NewChannel {
                tenant: who.tenant.code(),
                name,
                channel: channel.as_str(),
                auth: auth.as_str(),
                created_by: &who.sub,
            },
        )
        .await?;
        if !fresh {
            return Err(IntakeError::Conflict(tr!(
                "本辖区已有同名渠道",
                "this tenant already has a channel with that name"
            )));
        }
        let mut cred = self.issue(&txn, id, auth).await?;
        let row = channels::get(&txn, who.tenant.code(), id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("渠道", "channel")))?;
        txn.commit().await?;
        tracing::info!(channel_id = %id, tenant = %who.tenant, auth = auth.as_str(), "channel registered");
        cred.channel = Some(message(&row));
        Ok(cred)
    }

    /// A new credential of the channel's kind (inside the caller's
    /// transaction). The secret or key appears only in the answer.
    async fn issue<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        channel_id: Uuid,
        auth: AuthKind,
    ) -> Result<ChannelCredential, IntakeError> {
        let cred_id = Uuid::now_v7();
        let mut out = ChannelCredential {
            credential_id: cred_id.to_string(),
            ..Default::default()
        };
        match auth {
            AuthKind::Webhook => {
                let secret = credentials::new_secret()?;
                let sealed = self
                    .keyring
                    .encrypt(&secret, &format!("channel_credentials.secret:{cred_id}"))?;
                channels::add_credential(conn, cred_id, channel_id, Some(sealed), None).await?;
                out.secret = secret;
            }
            AuthKind::Open311 => {
                let key = credentials::new_api_key()?;
                channels::add_credential(
                    conn,
                    cred_id,
                    channel_id,
                    None,
                    Some(credentials::api_key_digest(&key)),
                )
                .await?;
                out.api_key = key;
            }
        }
        Ok(out)
    }

    pub async fn list_channels(
        &self,
        who: &Principal,
    ) -> Result<ListChannelsResponse, IntakeError> {
        who.require_any(ADMINS)?;
        let rows = channels::list(&self.db, who.tenant.code()).await?;
        Ok(ListChannelsResponse {
            channels: rows.iter().map(message).collect(),
        })
    }

    pub async fn rotate_channel(
        &self,
        who: &Principal,
        req: &RotateChannelCredentialRequest,
    ) -> Result<ChannelCredential, IntakeError> {
        who.require_any(ADMINS)?;
        let id = parse_id("channel_id", &req.channel_id, &tr!("渠道", "a channel"))?;
        let overlap = match req.overlap_seconds {
            0 => chrono::TimeDelta::from_std(self.rotation_overlap)
                .unwrap_or(chrono::TimeDelta::hours(24)),
            s if (1..=MAX_OVERLAP_SECS).contains(&s) => chrono::TimeDelta::seconds(s),
            _ => {
                return Err(bad(
                    "overlap_seconds",
                    tr!(
                        "必须在 1 到 {MAX_OVERLAP_SECS} 之间（0 表示默认值）",
                        "must be between 1 and {MAX_OVERLAP_SECS} (0 for the default)"
                    ),
                )
                .into());
            }
        };
        let txn = self.db.begin().await?;
        let row = channels::get(&txn, who.tenant.code(), id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("渠道", "channel")))?;
        if !row.active {
            return Err(IntakeError::Conflict(tr!(
                "该渠道已停用，请登记新的渠道",
                "the channel is disabled; register a new one"
            )));
        }
        channels::lock(&txn, id).await?;
        let until = Utc::now() + overlap;
        let previous = channels::retire_credentials(&txn, id, until).await?;
        let auth = AuthKind::parse(&row.auth).unwrap_or(AuthKind::Webhook);
        let mut cred = self.issue(&txn, id, auth).await?;
        let row = channels::get(&txn, who.tenant.code(), id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("渠道", "channel")))?;
        txn.commit().await?;
        tracing::info!(channel_id = %id, "channel credential rotated");
        cred.channel = Some(message(&row));
        cred.previous_expires_at = previous.map(to_timestamp);
        Ok(cred)
    }

    pub async fn disable_channel(
        &self,
        who: &Principal,
        channel_id: &str,
    ) -> Result<RegisteredChannel, IntakeError> {
        who.require_any(ADMINS)?;
        let id = parse_id("channel_id", channel_id, &tr!("渠道", "a channel"))?;
        channels::get(&self.db, who.tenant.code(), id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("渠道", "channel")))?;
        channels::set_active(&self.db, id, false).await?;
        tracing::info!(channel_id = %id, "channel disabled");
        let row = channels::get(&self.db, who.tenant.code(), id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("渠道", "channel")))?;
        Ok(message(&row))
    }
}
