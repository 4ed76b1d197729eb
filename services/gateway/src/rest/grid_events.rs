//! `/api/v1/grid-events`: matters a grid worker finds in the grid, closed
//! there or whistled up (吹哨) into a ticket, and the share closed in the
//! grid per area.

use jiesu_proto::{grid as pb, intake::ListCategoriesRequest, time::to_timestamp};

use super::prelude::*;
use crate::rest::at;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report, list_events))
        .routes(routes!(stats))
        .routes(routes!(get_event))
        .routes(routes!(close))
        .routes(routes!(whistle))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// Default: the basic grid holding the point.
    #[serde(default)]
    pub grid_code: String,
    pub lat: f64,
    pub lon: f64,
    #[schema(example = "3号楼东侧消防通道被杂物堵塞")]
    pub content: String,
    /// Intake leaf category, if known.
    #[serde(default)]
    pub category: String,
    /// A retry with the same key returns the first event.
    #[serde(default)]
    pub idempotency_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GridEventView {
    pub id: String,
    pub grid_code: String,
    pub community_code: String,
    pub reporter: String,
    pub content: String,
    pub category: String,
    pub lat: f64,
    pub lon: f64,
    /// reported | closed | whistled
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub result: String,
    /// The level it was whistled up to: 2 community, 3 street, 4 district
    /// (as work orders count them); absent until whistled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The ticket a whistle became, once intake has it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ticket_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tracking_no: String,
    pub reported_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl From<pb::GridEvent> for GridEventView {
    fn from(e: pb::GridEvent) -> Self {
        Self {
            id: e.id,
            grid_code: e.grid_code,
            community_code: e.community_code,
            reporter: e.reporter,
            content: e.content,
            category: e.category,
            lat: e.lat,
            lon: e.lon,
            status: e.status,
            result: e.result,
            level: level_number(&e.level),
            reason: e.reason,
            ticket_id: e.ticket_id,
            tracking_no: e.tracking_no,
            reported_at: at(e.reported_at),
            closed_at: at(e.closed_at),
        }
    }
}

/// A grid worker reports a matter found in their grid.
#[utoipa::path(
    post,
    path = "/api/v1/grid-events",
    tag = "grid events",
    request_body = ReportBody,
    responses(
        (status = 200, description = "Reported", body = GridEventView),
        Authenticated,
        JsonInput,
        (status = 403, description = "Grid workers only, in their grids", body = Problem),
        (status = 422, description = "A field is invalid, or the point lies in no grid", body = Problem),
    ),
)]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<ReportBody>,
) -> Result<Json<GridEventView>, ApiError> {
    check_leaf(&state, &caller, &b.category).await?;
    let msg = pb::ReportEventRequest {
        grid_code: b.grid_code,
        lat: b.lat,
        lon: b.lon,
        content: b.content,
        category: b.category,
        idempotency_key: b.idempotency_key,
    };
    let event = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.report_event(r).await)
        .await?;
    Ok(Json(event.into()))
}

/// Intake makes a whistled event's ticket later, from the event: a category
/// it would refuse is caught now, while the worker can still fix it.
async fn check_leaf(state: &AppState, caller: &Caller, category: &str) -> Result<(), ApiError> {
    let category = category.trim();
    if category.is_empty() {
        return Ok(());
    }
    let msg = ListCategoriesRequest {};
    let categories = state
        .intake(caller)
        .retried(msg, async |mut c, r| c.list_categories(r).await)
        .await?
        .categories;
    match categories.iter().find(|c| c.leaf && c.code == category) {
        None => Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "category",
            tr!(
                "必须是本辖区的末级分类（见 GET /api/v1/categories）",
                "must be a leaf category of the tenant (see GET /api/v1/categories)"
            ),
        )),
        // A whistle carries no attributes, so intake would refuse it.
        Some(c) if c.attributes.iter().any(|a| a.required) => Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "category",
            tr!(
                "该分类需要填写吹哨无法携带的详情；请选择其他分类，或由话务员录入诉求",
                "asks for details a whistle cannot carry; choose another category or have an agent enter the ticket"
            ),
        )),
        Some(_) => Ok(()),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub grid_code: Option<String>,
    /// reported | closed | whistled
    #[param(pattern = "^(reported|closed|whistled)$")]
    pub status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GridEventList {
    pub events: Vec<GridEventView>,
}

/// Grid events, newest first (grid workers: their grids').
#[utoipa::path(
    get,
    path = "/api/v1/grid-events",
    tag = "grid events",
    params(EventsQuery),
    responses(
        (status = 200, description = "Events", body = GridEventList),
        Authenticated,
        (status = 403, response = NotAllowed),
    ),
)]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<GridEventList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::ListEventsRequest {
        grid_code: q.grid_code.unwrap_or_default(),
        status: q.status.unwrap_or_default(),
    };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.list_events(r).await)
        .await?;
    Ok(Json(GridEventList {
        events: r.events.into_iter().map(Into::into).collect(),
    }))
}

/// One grid event.
#[utoipa::path(
    get,
    path = "/api/v1/grid-events/{id}",
    tag = "grid events",
    params(("id" = String, Path, format = Uuid, description = "Event id")),
    responses(
        (status = 200, description = "The event", body = GridEventView),
        Authenticated,
        (status = 403, response = NotYourGrid),
        (status = 404, description = "No such event", body = Problem),
    ),
)]
pub async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<GridEventView>, ApiError> {
    let msg = pb::GetEventRequest { id };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.get_event(r).await)
        .await?;
    Ok(Json(r.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    #[schema(example = "已联系物业清理，通道恢复畅通")]
    pub result: String,
}

/// Close a matter inside the grid, with its result.
#[utoipa::path(
    post,
    path = "/api/v1/grid-events/{id}/close",
    tag = "grid events",
    params(("id" = String, Path, format = Uuid, description = "Event id")),
    request_body = CloseBody,
    responses(
        (status = 200, description = "Closed", body = GridEventView),
        Authenticated,
        JsonInput,
        (status = 403, response = NotYourGrid),
        (status = 404, description = "No such event", body = Problem),
        (status = 409, description = "Already closed or whistled", body = Problem),
    ),
)]
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<CloseBody>,
) -> Result<Json<GridEventView>, ApiError> {
    let msg = pb::CloseEventRequest {
        id,
        result: b.result,
    };
    let event = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.close_event(r).await)
        .await?;
    Ok(Json(event.into()))
}

/// Grid keeps a level as `L2`..`L4`; the API counts levels as work orders
/// do, 1 (the unit) to 4 (the district), so one number means one level
/// everywhere.
fn level_number(raw: &str) -> Option<u8> {
    raw.strip_prefix('L').and_then(|n| n.parse().ok())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhistleBody {
    /// 2 community (社区), 3 street (街道), 4 district (区).
    #[schema(minimum = 2, maximum = 4, example = 3)]
    pub level: u8,
    /// Intake leaf category (required unless given at report).
    #[serde(default)]
    pub category: String,
    /// Why it goes up, 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// Whistle a matter up (吹哨): it becomes a ticket on channel `grid` at the
/// chosen level; `ticket_id` and `tracking_no` appear once intake has it.
#[utoipa::path(
    post,
    path = "/api/v1/grid-events/{id}/whistle",
    tag = "grid events",
    params(("id" = String, Path, format = Uuid, description = "Event id")),
    request_body = WhistleBody,
    responses(
        (status = 200, description = "Whistled", body = GridEventView),
        Authenticated,
        JsonInput,
        (status = 403, response = NotYourGrid),
        (status = 404, description = "No such event", body = Problem),
        (status = 409, description = "Already closed or whistled", body = Problem),
        (status = 422, description = "level, category or reason invalid", body = Problem),
    ),
)]
pub async fn whistle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<WhistleBody>,
) -> Result<Json<GridEventView>, ApiError> {
    if !(2..=4).contains(&b.level) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "level",
            tr!(
                "必须是 2（社区）、3（街道）或 4（区）",
                "must be 2 (community), 3 (street) or 4 (district)"
            ),
        ));
    }
    check_leaf(&state, &caller, &b.category).await?;
    let msg = pb::WhistleEventRequest {
        id,
        level: format!("L{}", b.level),
        category: b.category,
        reason: b.reason,
    };
    let event = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.whistle_event(r).await)
        .await?;
    Ok(Json(event.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// grid | community (default) | street | county
    #[param(pattern = "^(grid|community|street|county)$")]
    pub by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventStatsRowView {
    pub key: String,
    pub reported: u32,
    pub closed_in_grid: u32,
    pub whistled: u32,
    pub open: u32,
    /// closed_in_grid / (closed_in_grid + whistled)
    pub share_closed_in_grid: f64,
}

impl From<pb::EventStatsRow> for EventStatsRowView {
    fn from(r: pb::EventStatsRow) -> Self {
        Self {
            key: r.key,
            reported: r.reported,
            closed_in_grid: r.closed_in_grid,
            whistled: r.whistled,
            open: r.open,
            share_closed_in_grid: r.share_closed_in_grid,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventStatsView {
    pub rows: Vec<EventStatsRowView>,
    pub total: Option<EventStatsRowView>,
}

/// The share of matters closed inside the grid, per area, for events
/// reported in [from, to).
#[utoipa::path(
    get,
    path = "/api/v1/grid-events/stats",
    tag = "grid events",
    params(StatsQuery),
    responses(
        (status = 200, description = "Per area and in total", body = EventStatsView),
        Authenticated,
        (status = 403, description = "Supervisors, dispatchers and admins only", body = Problem),
        (status = 422, description = "from/to/by invalid", body = Problem),
    ),
)]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<EventStatsView>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::EventStatsRequest {
        from: Some(to_timestamp(q.from)),
        to: Some(to_timestamp(q.to)),
        by: q.by.unwrap_or_default(),
    };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.event_stats(r).await)
        .await?;
    Ok(Json(EventStatsView {
        rows: r.rows.into_iter().map(Into::into).collect(),
        total: r.total.map(Into::into),
    }))
}
