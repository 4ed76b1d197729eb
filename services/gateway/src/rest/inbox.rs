//! `/api/v1/inbox`: a staff member's notices (a handler's unit's; the
//! supervisors' for dispatchers, supervisors and admins), what they have
//! read, and `/api/v1/inbox/stream`, the same notices live as server-sent
//! events (`event: notification`, `data:` the notice as the list shows it)
//! the moment they are stored. The stream is outside the OpenAPI document
//! (a fuzzer cannot end it); a console reloads the list when it reconnects.

use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use jiesu_proto::notification::{ListInboxRequest, MarkInboxReadRequest, WatchInboxRequest};

use super::{notifications::NotificationView, prelude::*};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_inbox))
        .routes(routes!(mark_read))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// 1..200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<i32>,
    /// `next_page_token` of the previous page (older notices).
    pub page_token: Option<String>,
    /// Only what the caller has not read.
    pub unread_only: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxItemView {
    pub notification: NotificationView,
    pub read: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    /// Newest first.
    pub items: Vec<InboxItemView>,
    /// Unread notices of the last 30 days.
    pub unread_count: i32,
    pub next_page_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkReadBody {
    /// Notices to mark read (at most 500); or `all`.
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread_count: i32,
}

/// The caller's inbox, newest first, with what they have read.
#[utoipa::path(
    get,
    path = "/api/v1/inbox",
    tag = "notifications",
    params(InboxQuery),
    responses(
        (status = 200, description = "A page of the inbox", body = InboxPage),
        Authenticated,
        (status = 403, description = "Only handlers (naming their unit), dispatchers, supervisors and admins have an inbox", body = Problem),
        (status = 422, response = InvalidQuery),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn list_inbox(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<InboxQuery>, QueryRejection>,
) -> Result<Json<InboxPage>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    super::ticket_lookup::acts_for_its_unit(&state, &caller).await?;
    let msg = ListInboxRequest {
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
        unread_only: q.unread_only.unwrap_or(false),
    };
    let r = state
        .notification(&caller)
        .retried(msg, async |mut c, r| c.list_inbox(r).await)
        .await?;
    Ok(Json(InboxPage {
        items: r
            .items
            .into_iter()
            .filter_map(|i| {
                i.notification.map(|n| InboxItemView {
                    notification: n.into(),
                    read: i.read,
                })
            })
            .collect(),
        unread_count: r.unread_count,
        next_page_token: r.next_page_token,
    }))
}

/// Mark notices of the caller's inbox read.
#[utoipa::path(
    post,
    path = "/api/v1/inbox/read",
    tag = "notifications",
    request_body = MarkReadBody,
    responses(
        (status = 200, description = "Marked; what is left unread", body = UnreadCount),
        Authenticated,
        (status = 403, description = "Only handlers (naming their unit), dispatchers, supervisors and admins have an inbox", body = Problem),
        JsonInput,
        (status = 422, response = InvalidField),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<MarkReadBody>,
) -> Result<Json<UnreadCount>, ApiError> {
    super::ticket_lookup::acts_for_its_unit(&state, &caller).await?;
    let msg = MarkInboxReadRequest {
        ids: b.ids,
        all: b.all,
    };
    // Marking read twice changes nothing: safe to send again.
    let r = state
        .notification(&caller)
        .retried(msg, async |mut c, r| c.mark_inbox_read(r).await)
        .await?;
    Ok(Json(UnreadCount {
        unread_count: r.unread_count,
    }))
}

/// `GET /api/v1/inbox/stream`: the caller's new notices as they are
/// stored, as server-sent events, with a keep-alive comment every 15 s.
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    super::ticket_lookup::acts_for_its_unit(&state, &caller).await?;
    let notices = state
        .notification(&caller)
        .once(WatchInboxRequest {}, async |mut c, r| {
            c.watch_inbox(r).await
        })
        .await?;
    let events = notices
        .take_while(|n| std::future::ready(n.is_ok()))
        .filter_map(|n| {
            std::future::ready(n.ok().and_then(|n| {
                Event::default()
                    .event("notification")
                    .json_data(NotificationView::from(n))
                    .ok()
                    .map(Ok)
            }))
        });
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(std::time::Duration::from_secs(15))
            .text("keep-alive"),
    ))
}
