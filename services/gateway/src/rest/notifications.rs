//! `/api/v1/notifications`: what units and people were told, in the
//! caller's scope.

use jiesu_proto::{notification::ListNotificationsRequest, time::from_timestamp};

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_notifications))
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
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
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
    };
    let resp = state
        .notification(&caller)
        .retried(msg, async |mut c, r| c.list_notifications(r).await)
        .await?;
    Ok(Json(NotificationPage {
        notifications: resp
            .notifications
            .into_iter()
            .map(|n| NotificationView {
                id: n.id,
                recipient_kind: n.recipient_kind,
                recipient_id: n.recipient_id,
                recipient_name: n.recipient_name,
                channel: n.channel,
                title: n.title,
                body: n.body,
                ticket_id: n.ticket_id,
                status: n.status,
                created_at: n.created_at.as_ref().and_then(from_timestamp),
                sent_at: n.sent_at.as_ref().and_then(from_timestamp),
            })
            .collect(),
        next_page_token: resp.next_page_token,
    }))
}
