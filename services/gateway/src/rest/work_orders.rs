//! `/api/v1/work-orders`: work orders (工单) in queues, and one order with
//! its clocks, co-handlers, summons and timeline.

use jiesu_proto::{dispatch as pb, time::from_timestamp};

use super::prelude::*;
use crate::view::ticket::{TimelineItem, UnitView, timeline_item};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadlineView {
    pub due_at: Option<DateTime<Utc>>,
    /// When it was met (signed, first response, resolved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met_at: Option<DateTime<Utc>>,
    pub overdue: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CoHandlerView {
    pub unit: UnitView,
    pub part_submitted: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub part: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SummonsView {
    pub unit: UnitView,
    pub level: u32,
    pub due_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkOrderView {
    pub id: String,
    pub ticket_id: String,
    pub tracking_no: String,
    /// triage | dispatched | signed | in_progress | returned | resolved |
    /// reviewed | closed | merged
    pub status: String,
    pub region_code: String,
    pub category: String,
    pub category_name: String,
    /// normal | urgent
    pub urgency: String,
    /// Whistle level 1..4 (常规, 重点, 联合, 攻坚).
    pub level: u32,
    /// The lead unit; absent in triage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitView>,
    pub co_handlers: Vec<CoHandlerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_due: Option<DeadlineView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub respond_due: Option<DeadlineView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve_due: Option<DeadlineView>,
    pub paused: bool,
    pub extension_pending: bool,
    pub returns: u32,
    pub extensions: u32,
    pub reopens: u32,
    /// The reply to the citizen once resolved.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reply: String,
    pub summons: Vec<SummonsView>,
    pub leadership: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into_ticket_id: Option<String>,
    /// In triage: units responsible for the same category group (研判).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggested_units: Vec<UnitView>,
    pub created_at: Option<DateTime<Utc>>,
    /// Only when one order is read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineItem>,
}

fn deadline(d: Option<pb::Deadline>) -> Option<DeadlineView> {
    d.map(|d| DeadlineView {
        due_at: d.due_at.as_ref().and_then(from_timestamp),
        met_at: d.met_at.as_ref().and_then(from_timestamp),
        overdue: d.overdue,
    })
}

impl From<pb::WorkOrder> for WorkOrderView {
    fn from(w: pb::WorkOrder) -> Self {
        Self {
            timeline: w
                .timeline
                .iter()
                .map(|e| timeline_item(e, "dispatch"))
                .collect(),
            id: w.id,
            ticket_id: w.ticket_id,
            tracking_no: w.tracking_no,
            status: w.status,
            region_code: w.region_code,
            category: w.category,
            category_name: w.category_name,
            urgency: w.urgency,
            level: w.level,
            unit: w.unit.map(|u| UnitView {
                id: u.id,
                name: u.name,
            }),
            co_handlers: w
                .co_handlers
                .into_iter()
                .map(|c| CoHandlerView {
                    unit: UnitView {
                        id: c.unit_id,
                        name: c.unit_name,
                    },
                    part_submitted: c.part_submitted,
                    part: c.part,
                })
                .collect(),
            sign_due: deadline(w.sign_due),
            respond_due: deadline(w.respond_due),
            resolve_due: deadline(w.resolve_due),
            paused: w.paused,
            extension_pending: w.extension_pending,
            returns: w.returns,
            extensions: w.extensions,
            reopens: w.reopens,
            reply: w.reply,
            summons: w
                .summons
                .into_iter()
                .map(|s| SummonsView {
                    unit: UnitView {
                        id: s.unit_id,
                        name: s.unit_name,
                    },
                    level: s.level,
                    due_at: s.due_at.as_ref().and_then(from_timestamp),
                    reported_at: s.reported_at.as_ref().and_then(from_timestamp),
                })
                .collect(),
            leadership: w.leadership,
            merged_into_ticket_id: (!w.merged_into_ticket_id.is_empty())
                .then_some(w.merged_into_ticket_id),
            suggested_units: w
                .suggested_units
                .into_iter()
                .map(|u| UnitView {
                    id: u.id,
                    name: u.name,
                })
                .collect(),
            created_at: w.created_at.as_ref().and_then(from_timestamp),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// mine (my unit's work) | triage (研判) | overdue | due_soon (within
    /// 24 h) | leadership (提级) | all (default)
    #[param(pattern = "^(mine|triage|overdue|due_soon|leadership|all)$")]
    pub queue: Option<String>,
    #[param(
        pattern = "^(triage|dispatched|signed|in_progress|returned|resolved|reviewed|closed|merged)$"
    )]
    pub status: Option<String>,
    /// Whistle level 1..4.
    #[param(minimum = 1, maximum = 4)]
    pub level: Option<u32>,
    /// 1..200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkOrderPage {
    pub work_orders: Vec<WorkOrderView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Work-order queues, inside the caller's region scope.
#[utoipa::path(
    get,
    path = "/api/v1/work-orders",
    tag = "work orders",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of work orders", body = WorkOrderPage),
        Authenticated,
        (status = 403, description = "Citizens, mediators and platform operators, or a handler asking for another queue than `mine`", body = Problem),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<WorkOrderPage>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::ListWorkOrdersRequest {
        queue: q.queue.unwrap_or_default(),
        status: q.status.unwrap_or_default(),
        level: q.level.unwrap_or(0),
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
    };
    let resp = state
        .dispatch(&caller)
        .retried(msg, async |mut c, r| c.list_work_orders(r).await)
        .await?;
    Ok(Json(WorkOrderPage {
        work_orders: resp.work_orders.into_iter().map(Into::into).collect(),
        next_page_token: (!resp.next_page_token.is_empty()).then_some(resp.next_page_token),
    }))
}

/// One work order with its deadlines, co-handlers, summons and timeline.
#[utoipa::path(
    get,
    path = "/api/v1/work-orders/{id}",
    tag = "work orders",
    params(("id" = String, Path, format = Uuid, description = "Work-order id")),
    responses(
        (status = 200, description = "The work order", body = WorkOrderView),
        Authenticated,
        (status = 403, description = "Citizens, mediators and platform operators; a handler token naming a unit it may not act for (`wrong_unit`)", body = Problem),
        (status = 404, description = "No such work order in the caller's scope", body = Problem),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WorkOrderView>, ApiError> {
    let msg = pb::GetWorkOrderRequest { id };
    let resp = state
        .dispatch(&caller)
        .retried(msg, async |mut c, r| c.get_work_order(r).await)
        .await?;
    Ok(Json(resp.into()))
}
