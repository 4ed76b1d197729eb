//! Channels a tenant admin registers, and their credentials.

use chrono::Utc;
use jiesu_auth::{Principal, Role};
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
        parse_id,
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
            return Err(bad("name", "is required").into());
        }
        if name.chars().count() > MAX_CHANNEL_NAME || name.chars().any(char::is_control) {
            return Err(bad(
                "name",
                format!("must be at most {MAX_CHANNEL_NAME} characters without control characters"),
            )
            .into());
        }
        let channel = Channel::parse(req.channel.trim())
            .ok_or_else(|| bad("channel", format!("must be one of: {}", Channel::names())))?;
        if channel == Channel::Hotline {
            return Err(bad(
                "channel",
                "hotline tickets are entered by agents; register the system that sends them instead",
            )
            .into());
        }
        let auth = AuthKind::parse(req.auth.trim())
            .ok_or_else(|| bad("auth", "must be webhook or open311"))?;
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
            return Err(IntakeError::Conflict(
                "this tenant already has a channel with that name".into(),
            ));
        }
        let mut cred = self.issue(&txn, id, auth).await?;
        let row = channels::get(&txn, who.tenant.code(), id)
            .await?
            .ok_or(IntakeError::NotFound("channel"))?;
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
        let id = parse_id("channel_id", &req.channel_id, "a channel")?;
        let overlap = match req.overlap_seconds {
            0 => chrono::TimeDelta::from_std(self.rotation_overlap)
                .unwrap_or(chrono::TimeDelta::hours(24)),
            s if (1..=MAX_OVERLAP_SECS).contains(&s) => chrono::TimeDelta::seconds(s),
            _ => {
                return Err(bad(
                    "overlap_seconds",
                    format!("must be between 1 and {MAX_OVERLAP_SECS} (0 for the default)"),
                )
                .into());
            }
        };
        let txn = self.db.begin().await?;
        let row = channels::get(&txn, who.tenant.code(), id)
            .await?
            .ok_or(IntakeError::NotFound("channel"))?;
        if !row.active {
            return Err(IntakeError::Conflict(
                "the channel is disabled; register a new one".into(),
            ));
        }
        channels::lock(&txn, id).await?;
        let until = Utc::now() + overlap;
        let previous = channels::retire_credentials(&txn, id, until).await?;
        let auth = AuthKind::parse(&row.auth).unwrap_or(AuthKind::Webhook);
        let mut cred = self.issue(&txn, id, auth).await?;
        let row = channels::get(&txn, who.tenant.code(), id)
            .await?
            .ok_or(IntakeError::NotFound("channel"))?;
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
        let id = parse_id("channel_id", channel_id, "a channel")?;
        channels::get(&self.db, who.tenant.code(), id)
            .await?
            .ok_or(IntakeError::NotFound("channel"))?;
        channels::set_active(&self.db, id, false).await?;
        tracing::info!(channel_id = %id, "channel disabled");
        let row = channels::get(&self.db, who.tenant.code(), id)
            .await?
            .ok_or(IntakeError::NotFound("channel"))?;
        Ok(message(&row))
    }
}
