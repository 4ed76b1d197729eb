//! Registered channels: the tenant admin's endpoints, and the signed webhook
//! through which a tenant's own platform delivers tickets.

use jiesu_proto::{
    intake::{
        ChannelCredential, DisableChannelRequest, ListChannelsRequest, RegisterChannelRequest,
        RegisteredChannel, RotateChannelCredentialRequest, SubmitSignedRequest,
    },
    time::from_timestamp,
};

use super::prelude::*;
use crate::{ratelimit::Peer, rest::tickets::TicketCreated, view::ticket::ticket_ref};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_channel, list_channels))
        .routes(routes!(rotate_channel))
        .routes(routes!(disable_channel))
        .routes(routes!(webhook))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterChannelBody {
    /// Unique within the tenant, e.g. `崂先办`.
    #[schema(example = "暖南诉办")]
    pub name: String,
    /// The ticket channel it stands for: `tenant_platform`,
    /// `city_management`, `transfer_110`, `app`, ...
    #[schema(example = "tenant_platform")]
    pub channel: String,
    /// `webhook` (HMAC-signed deliveries) or `open311` (api_key).
    #[schema(example = "webhook")]
    pub auth: String,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the previous credential keeps working (seconds); default
    /// 24 hours.
    #[serde(default)]
    pub overlap_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub channel: String,
    pub auth: String,
    pub active: bool,
    pub created_at: Option<DateTime<Utc>>,
    /// Credentials accepted right now (2 during a rotation).
    pub valid_credentials: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    pub channel: ChannelView,
    pub credential_id: String,
    /// Webhook signing secret: shown once, store it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Open311 api_key: shown once, store it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// When the previous credential stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    pub channels: Vec<ChannelView>,
}

fn view(c: RegisteredChannel) -> ChannelView {
    ChannelView {
        id: c.id,
        tenant: c.tenant,
        name: c.name,
        channel: c.channel,
        auth: c.auth,
        active: c.active,
        created_at: c.created_at.as_ref().and_then(from_timestamp),
        valid_credentials: c.valid_credentials,
    }
}

fn credential_view(c: ChannelCredential) -> CredentialView {
    CredentialView {
        channel: view(c.channel.unwrap_or_default()),
        credential_id: c.credential_id,
        secret: (!c.secret.is_empty()).then_some(c.secret),
        api_key: (!c.api_key.is_empty()).then_some(c.api_key),
        previous_expires_at: c.previous_expires_at.as_ref().and_then(from_timestamp),
    }
}

/// Register a channel and receive its credential (tenant admin).
#[utoipa::path(
    post,
    path = "/api/v1/admin/channels",
    tag = "channels",
    request_body = RegisterChannelBody,
    responses(
        (status = 201, description = "Registered; the credential is shown only now", body = CredentialView),
        TenantAdmin,
        JsonInput,
        (status = 409, description = "A channel of that name exists", body = Problem),
    ),
)]
pub async fn register_channel(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<RegisterChannelBody>,
) -> Result<Response, ApiError> {
    let msg = RegisterChannelRequest {
        name: body.name,
        channel: body.channel,
        auth: body.auth,
    };
    let cred = state
        .intake(&caller)
        .once(msg, async |mut c, r| c.register_channel(r).await)
        .await?;
    Ok((StatusCode::CREATED, Json(credential_view(cred))).into_response())
}

/// The tenant's channels (never their credentials).
#[utoipa::path(
    get,
    path = "/api/v1/admin/channels",
    tag = "channels",
    responses(
        (status = 200, description = "Channels", body = ChannelList),
        TenantAdmin,
    ),
)]
pub async fn list_channels(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ChannelList>, ApiError> {
    let msg = ListChannelsRequest {};
    let resp = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.list_channels(r).await)
        .await?;
    Ok(Json(ChannelList {
        channels: resp.channels.into_iter().map(view).collect(),
    }))
}

/// Issue a new credential; the previous one keeps working for the overlap.
#[utoipa::path(
    post,
    path = "/api/v1/admin/channels/{id}/rotate",
    tag = "channels",
    params(("id" = String, Path, format = Uuid, description = "Channel id")),
    request_body(content = RotateBody, description = "Optional; `{}` for the default overlap"),
    responses(
        (status = 200, description = "The new credential, shown only now", body = CredentialView),
        TenantAdmin,
        JsonInput,
        (status = 404, description = "No such channel in the tenant", body = Problem),
        (status = 409, description = "The channel is disabled", body = Problem),
        (status = 422, description = "overlap_seconds out of range", body = Problem),
    ),
)]
pub async fn rotate_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RotateBody>,
) -> Result<Json<CredentialView>, ApiError> {
    let msg = RotateChannelCredentialRequest {
        channel_id: id,
        overlap_seconds: body.overlap_seconds.unwrap_or(0),
    };
    let cred = state
        .intake(&caller)
        .once(msg, async |mut c, r| c.rotate_channel_credential(r).await)
        .await?;
    Ok(Json(credential_view(cred)))
}

/// Stop accepting anything from a channel.
#[utoipa::path(
    post,
    path = "/api/v1/admin/channels/{id}/disable",
    tag = "channels",
    params(("id" = String, Path, format = Uuid, description = "Channel id")),
    responses(
        (status = 200, description = "Disabled", body = ChannelView),
        TenantAdmin,
        (status = 404, description = "No such channel in the tenant", body = Problem),
    ),
)]
pub async fn disable_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let msg = DisableChannelRequest { channel_id: id };
    let resp = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.disable_channel(r).await)
        .await?;
    Ok(Json(view(resp)))
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Deliver a ticket from a tenant's own platform (signed webhook).
///
/// Headers: `X-Jiesu-Timestamp` (Unix seconds, within 5 minutes of now),
/// `X-Jiesu-Nonce` (16–64 of `A-Za-z0-9_-`, new for every attempt) and
/// `X-Jiesu-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + nonce +
/// "." + body)>`. The body is JSON with `external_id` (the platform's own
/// id: a redelivery answers 200 with the same ticket), `nature`, `category`,
/// `content`, `citizen` and optionally `kind`, `urgency`, `location`,
/// `confidential`, `attributes`.
#[utoipa::path(
    post,
    path = "/api/v1/channels/{id}/tickets",
    tag = "channels",
    params(
        ("id" = String, Path, description = "Channel id"),
        ("X-Jiesu-Timestamp" = String, Header, description = "Unix seconds", pattern = "^[0-9]{1,12}$"),
        ("X-Jiesu-Nonce" = String, Header, description = "Unique per attempt", pattern = "^[A-Za-z0-9_-]{16,64}$"),
        ("X-Jiesu-Signature" = String, Header, description = "v1=<hex>; two comma-separated during a key rotation", pattern = "^v1=[0-9a-f]{64}(,v1=[0-9a-f]{64})?$"),
    ),
    request_body(content = String, content_type = "application/json", description = "The delivery; the signature covers these exact bytes"),
    responses(
        (status = 201, description = "Accepted", body = TicketCreated),
        (status = 200, description = "Redelivery of an accepted external_id", body = TicketCreated),
        (status = 401, description = "channel_unknown, signature_missing, signature_invalid, timestamp_missing, timestamp_stale, nonce_invalid or nonce_replayed", body = Problem),
        (status = 409, description = "external_id delivered before with different content", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
        (status = 422, response = InvalidField),
        (status = 429, response = RateLimited),
        (status = 503, description = "Intake unavailable: redeliver with a new nonce", body = Problem),
    ),
    security(()),
)]
pub async fn webhook(
    State(state): State<AppState>,
    peer: Peer,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    state.limits.check_ip(&headers, peer)?;
    state.limits.check_channel(&format!("webhook:{id}"))?;
    let msg = SubmitSignedRequest {
        channel_id: id,
        timestamp: header(&headers, "x-jiesu-timestamp"),
        nonce: header(&headers, "x-jiesu-nonce"),
        signature: header(&headers, "x-jiesu-signature"),
        body: body.to_vec(),
    };
    // Not retried here: a lost answer may mean the nonce was spent, so the
    // sender redelivers with a new nonce and the external_id makes it safe.
    let created = state
        .public()
        .once(msg, async |mut c, r| c.submit_signed(r).await)
        .await?;
    let status = if created.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(TicketCreated {
            id: created.id,
            tracking_no: created.tracking_no,
            status: created.status,
            duplicates: Vec::new(),
            merged_into: ticket_ref(created.merged_into, created.merged_into_tracking_no),
        }),
    )
        .into_response())
}
