//! `/api/v1/notifications`: what units and people were told, in the
//! caller's scope, how each went out, and failed ones sent again; and the
//! recipient directory (`/api/v1/admin/notification-recipients`): where a
//! unit, the supervisors or a grid's residents' group is reached.

use jiesu_proto::{
    notification::{
        GetBroadcastDeliveryRequest, GetRecipientAddressesRequest, ListNotificationsRequest,
        Notification, RecipientAddresses, RetryNotificationRequest, SetRecipientAddressesRequest,
    },
    time::from_timestamp,
};

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(retry_notification))
        .routes(routes!(get_recipient, put_recipient))
        .routes(routes!(broadcast_delivery))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// Only notifications about this ticket.
    #[param(format = Uuid)]
    pub ticket_id: Option<String>,
    /// Only notifications to this recipient (unit id).
    pub recipient_id: Option<String>,
    /// 1..500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub page_size: Option<i32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Only in this status: `queued`, `sending`, `sent`, `delivered` or
    /// `failed` (the dead messages an operator sends again).
    pub status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub recipient_kind: String,
    pub recipient_id: String,
    pub recipient_name: String,
    pub channel: String,
    pub title: String,
    pub body: String,
    pub ticket_id: String,
    /// What happened: `ticket.dispatched`, `callback.invited`…
    pub kind: String,
    /// `queued`, `sending`, `sent`, `delivered` or `failed`.
    pub status: String,
    /// The channel that carried it or is trying it (its configured name:
    /// `aliyun`, `smtp`, `wecom`…; `log` where none is configured).
    pub via: String,
    /// Attempts on that channel.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: String,
    /// Channels given up on before this one, each `<channel>: <why>`.
    pub fallbacks: Vec<String>,
    /// The provider's id of the message once handed over.
    pub provider_id: String,
    pub created_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    /// A queued one: when it is tried next (a retry's wait, a channel's
    /// rate limit, a citizen's quiet hours).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id,
            recipient_kind: n.recipient_kind,
            recipient_id: n.recipient_id,
            recipient_name: n.recipient_name,
            channel: n.channel,
            title: n.title,
            body: n.body,
            ticket_id: n.ticket_id,
            kind: n.kind,
            status: n.status,
            via: n.via,
            attempts: n.attempts,
            last_error: n.last_error,
            fallbacks: n.fallbacks,
            provider_id: n.provider_id,
            created_at: n.created_at.as_ref().and_then(from_timestamp),
            sent_at: n.sent_at.as_ref().and_then(from_timestamp),
            next_attempt_at: n.next_attempt_at.as_ref().and_then(from_timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub notifications: Vec<NotificationView>,
    /// Empty on the last page.
    pub next_page_token: String,
}

/// Notifications in the caller's scope; a handler sees its own unit's.
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    tag = "notifications",
    params(NotificationQuery),
    responses(
        (status = 200, description = "Oldest first", body = NotificationPage),
        Authenticated,
        (status = 403, description = "Role may not read notifications; or a handler token naming a unit it may not act for (`wrong_unit`)", body = Problem),
        (status = 422, response = InvalidQuery),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<NotificationQuery>, QueryRejection>,
) -> Result<Json<NotificationPage>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    super::ticket_lookup::acts_for_its_unit(&state, &caller).await?;
    let msg = ListNotificationsRequest {
        ticket_id: q.ticket_id.unwrap_or_default(),
        recipient_id: q.recipient_id.unwrap_or_default(),
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
        status: q.status.unwrap_or_default(),
    };
    let resp = state
        .notification(&caller)
        .retried(msg, async |mut c, r| c.list_notifications(r).await)
        .await?;
    Ok(Json(NotificationPage {
        notifications: resp.notifications.into_iter().map(Into::into).collect(),
        next_page_token: resp.next_page_token,
    }))
}

/// Send a failed notification again, from the first channel of its
/// recipient's chain (supervisors and admins, once the cause is fixed).
#[utoipa::path(
    post,
    path = "/api/v1/notifications/{id}/retry",
    tag = "notifications",
    params(("id" = String, Path, format = Uuid, description = "The notification")),
    responses(
        (status = 200, description = "Queued again", body = NotificationView),
        Authenticated,
        (status = 403, response = SupervisorsAndAdmins),
        (status = 404, description = "No such notification in the caller's scope", body = Problem),
        (status = 409, description = "Not failed (`not_failed`), or its one-time link is gone (`link_gone`)", body = Problem),
        (status = 422, response = InvalidField),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn retry_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NotificationView>, ApiError> {
    let msg = RetryNotificationRequest { id };
    let n = state
        .notification(&caller)
        .retried(msg, async |mut c, r| c.retry_notification(r).await)
        .await?;
    Ok(Json(n.into()))
}

/// Where a recipient is reached, masked; empty fields are not set.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientAddressesView {
    /// `unit`, `supervisors` or `grid_group`.
    pub recipient_kind: String,
    pub recipient_id: String,
    /// A mobile number for SMS (masked).
    pub sms: String,
    /// An email address (masked).
    pub email: String,
    /// A WeCom group robot's key (masked).
    pub wecom_robot: String,
}

impl From<RecipientAddresses> for RecipientAddressesView {
    fn from(r: RecipientAddresses) -> Self {
        Self {
            recipient_kind: r.recipient_kind,
            recipient_id: r.recipient_id,
            sms: r.sms,
            email: r.email,
            wecom_robot: r.wecom_robot,
        }
    }
}

/// Each field: absent leaves it as it is, `""` removes it, a value sets it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientAddressesBody {
    /// An 11-digit mainland mobile number.
    #[schema(example = "13800138000")]
    pub sms: Option<String>,
    #[schema(example = "bangongshi@example.gov.cn")]
    pub email: Option<String>,
    /// The `key` of the WeCom group robot's webhook URL.
    pub wecom_robot: Option<String>,
}

/// Where this recipient is reached (tenant admins and supervisors).
#[utoipa::path(
    get,
    path = "/api/v1/admin/notification-recipients/{kind}/{id}",
    tag = "notifications",
    params(
        ("kind" = String, Path, description = "`unit`, `supervisors` or `grid_group`"),
        ("id" = String, Path, description = "Unit id, tenant code (supervisors) or grid code"),
    ),
    responses(
        (status = 200, description = "The recipient's addresses, masked", body = RecipientAddressesView),
        Authenticated,
        (status = 403, response = SupervisorsAndAdmins),
        (status = 422, response = InvalidField),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn get_recipient(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<RecipientAddressesView>, ApiError> {
    let msg = GetRecipientAddressesRequest {
        recipient_kind: kind,
        recipient_id: id,
    };
    let r = state
        .notification(&caller)
        .retried(msg, async |mut c, r| c.get_recipient_addresses(r).await)
        .await?;
    Ok(Json(r.into()))
}

/// Set where this recipient is reached (tenant admin). The addresses are
/// stored sealed and shown masked.
#[utoipa::path(
    put,
    path = "/api/v1/admin/notification-recipients/{kind}/{id}",
    tag = "notifications",
    params(
        ("kind" = String, Path, description = "`unit`, `supervisors` or `grid_group`"),
        ("id" = String, Path, description = "Unit id, tenant code (supervisors) or grid code"),
    ),
    request_body = RecipientAddressesBody,
    responses(
        (status = 200, description = "The recipient's addresses as saved, masked", body = RecipientAddressesView),
        TenantAdmin,
        JsonInput,
        (status = 422, response = InvalidField),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn put_recipient(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    JsonBody(b): JsonBody<RecipientAddressesBody>,
) -> Result<Json<RecipientAddressesView>, ApiError> {
    let msg = SetRecipientAddressesRequest {
        recipient_kind: kind,
        recipient_id: id,
        sms: b.sms,
        email: b.email,
        wecom_robot: b.wecom_robot,
    };
    let r = state
        .notification(&caller)
        .retried(msg, async |mut c, r| c.set_recipient_addresses(r).await)
        .await?;
    Ok(Json(r.into()))
}

/// How far a broadcast's messages have gone.
#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastDeliveryView {
    pub broadcast_id: String,
    /// Messages stored for it (one per residents' group); 0 until the
    /// broadcast reached notification.
    pub total: i64,
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// A broadcast's delivery progress (supervisors and admins): its messages
/// by status, as they go out.
#[utoipa::path(
    get,
    path = "/api/v1/broadcasts/{id}/delivery",
    tag = "notifications",
    params(("id" = String, Path, format = Uuid, description = "The broadcast (`POST /api/v1/broadcasts`)")),
    responses(
        (status = 200, description = "Counts by status", body = BroadcastDeliveryView),
        Authenticated,
        (status = 403, response = SupervisorsAndAdmins),
        (status = 422, response = InvalidField),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn broadcast_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BroadcastDeliveryView>, ApiError> {
    let r = state
        .notification(&caller)
        .retried(
            GetBroadcastDeliveryRequest { broadcast_id: id },
            async |mut c, r| c.get_broadcast_delivery(r).await,
        )
        .await?;
    Ok(Json(BroadcastDeliveryView {
        broadcast_id: r.broadcast_id,
        total: r.total,
        queued: r.queued,
        sending: r.sending,
        sent: r.sent,
        delivered: r.delivered,
        failed: r.failed,
    }))
}
