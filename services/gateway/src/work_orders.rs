//! Work orders (工单): queues, one order with its clocks and timeline, the
//! actions on it, and the tenant admin's SLA policy and calendar.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
};
use chrono::{DateTime, Utc};
use jiesu_proto::{
    dispatch::{self as pb, act_request::Action as A},
    time::from_timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    backend::{request, with_retry},
    error::{ApiError, Problem, invalid_query},
    extract::{Caller, JsonBody},
    tickets::{TimelineItem, UnitView, timeline_item},
};

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
    pub queue: Option<String>,
    pub status: Option<String>,
    /// Whistle level 1..4.
    pub level: Option<u32>,
    /// 1..200, default 50.
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Citizens, or a handler asking for another queue than `mine`", body = Problem),
        (status = 422, description = "A query parameter is invalid", body = Problem),
    ),
    security(("bearer" = []))
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
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(&caller.token, msg.clone());
        async move { client.list_work_orders(req?).await }
    })
    .await?
    .into_inner();
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
    params(("id" = String, Path, description = "Work-order id")),
    responses(
        (status = 200, description = "The work order", body = WorkOrderView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 404, description = "No such work order in the caller's scope", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WorkOrderView>, ApiError> {
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(&caller.token, pb::GetWorkOrderRequest { id: id.clone() });
        async move { client.get_work_order(req?).await }
    })
    .await?;
    Ok(Json(resp.into_inner().into()))
}

/// Lead unit and co-handlers for a (re-)dispatch.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchTo {
    pub lead_unit_id: String,
    #[serde(default)]
    pub co_unit_ids: Vec<String>,
}

impl From<DispatchTo> for pb::Dispatch {
    fn from(d: DispatchTo) -> Self {
        Self {
            lead_unit_id: d.lead_unit_id,
            co_unit_ids: d.co_unit_ids,
        }
    }
}

/// One action. `note` is the reason where one is needed (return, pause,
/// reject, reopen, instruction, part, whistle, extension, progress).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionBody {
    /// Dispatcher: dispatch from triage, or re-dispatch (改派).
    Dispatch {
        lead_unit_id: String,
        #[serde(default)]
        co_unit_ids: Vec<String>,
        #[serde(default)]
        note: String,
    },
    /// Lead unit: sign for it (签收).
    Sign {
        #[serde(default)]
        note: String,
    },
    /// Lead unit: first response or progress.
    Progress { note: String },
    /// Lead unit: waiting for the citizen; clocks stop.
    Pause { note: String },
    Resume {
        #[serde(default)]
        note: String,
    },
    /// Lead unit: not ours (退单), with the reason.
    Return { note: String },
    /// Dispatcher: accept the return and re-dispatch, or reject it.
    Arbitrate {
        accept: bool,
        #[serde(default)]
        redispatch: Option<DispatchTo>,
        #[serde(default)]
        note: String,
    },
    /// Lead unit: ask for more working days (延期).
    RequestExtension { days: u32, note: String },
    /// Dispatcher or supervisor.
    DecideExtension {
        approve: bool,
        #[serde(default)]
        note: String,
    },
    /// Lead unit: done (办结), with the reply to the citizen.
    Resolve {
        reply: String,
        #[serde(default)]
        note: String,
    },
    /// Supervisor (the level above), where the tenant requires review.
    Review {
        approve: bool,
        #[serde(default)]
        note: String,
    },
    /// Dispatcher or supervisor.
    Close {
        #[serde(default)]
        note: String,
    },
    /// Dispatcher: do it again (重办).
    Reopen { note: String },
    /// Supervisor: leader instruction (批示).
    Instruct { note: String },
    /// Co-handling unit: its part.
    SubmitPart { note: String },
    /// Lift the order (吹哨) and summon units to report in.
    Whistle {
        /// 2..4; absent: one above the current level.
        #[serde(default)]
        level: u32,
        unit_ids: Vec<String>,
        note: String,
    },
    /// A summoned unit reports in (报到).
    ReportIn {
        #[serde(default)]
        note: String,
    },
    /// Supervisor: into the leadership queue (提级).
    Leadership { note: String },
}

fn act_request(id: String, body: ActionBody) -> pb::ActRequest {
    let empty = pb::Empty {};
    let (action, note) = match body {
        ActionBody::Dispatch {
            lead_unit_id,
            co_unit_ids,
            note,
        } => (
            A::Dispatch(pb::Dispatch {
                lead_unit_id,
                co_unit_ids,
            }),
            note,
        ),
        ActionBody::Sign { note } => (A::Sign(empty), note),
        ActionBody::Progress { note } => (A::Progress(empty), note),
        ActionBody::Pause { note } => (A::Pause(empty), note),
        ActionBody::Resume { note } => (A::Resume(empty), note),
        ActionBody::Return { note } => (A::Return(empty), note),
        ActionBody::Arbitrate {
            accept,
            redispatch,
            note,
        } => (
            A::Arbitrate(pb::Arbitrate {
                accept,
                redispatch: redispatch.map(Into::into),
            }),
            note,
        ),
        ActionBody::RequestExtension { days, note } => {
            (A::RequestExtension(pb::RequestExtension { days }), note)
        }
        ActionBody::DecideExtension { approve, note } => {
            (A::DecideExtension(pb::Decide { approve }), note)
        }
        ActionBody::Resolve { reply, note } => (A::Resolve(pb::Resolve { reply }), note),
        ActionBody::Review { approve, note } => (A::Review(pb::Decide { approve }), note),
        ActionBody::Close { note } => (A::Close(empty), note),
        ActionBody::Reopen { note } => (A::Reopen(empty), note),
        ActionBody::Instruct { note } => (A::Instruct(empty), note),
        ActionBody::SubmitPart { note } => (A::SubmitPart(empty), note),
        ActionBody::Whistle {
            level,
            unit_ids,
            note,
        } => (A::Whistle(pb::Whistle { level, unit_ids }), note),
        ActionBody::ReportIn { note } => (A::ReportIn(empty), note),
        ActionBody::Leadership { note } => (A::Leadership(empty), note),
    };
    pb::ActRequest {
        work_order_id: id,
        note,
        action: Some(action),
    }
}

/// Act on a work order. Refusals: 403 `wrong_role` / `wrong_unit`, 409
/// `illegal_transition` or a policy code (`extension_cap_reached`,
/// `reopen_limit_reached`, `parts_missing`, `review_pending`, ...), 422
/// with the field named, 404 outside the caller's scope.
#[utoipa::path(
    post,
    path = "/api/v1/work-orders/{id}/actions",
    tag = "work orders",
    params(("id" = String, Path, description = "Work-order id")),
    request_body = ActionBody,
    responses(
        (status = 200, description = "The work order after the action", body = WorkOrderView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Wrong role or wrong unit", body = Problem),
        (status = 404, description = "No such work order in the caller's scope", body = Problem),
        (status = 409, description = "Not allowed in the order's state or by the tenant's policy", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ActionBody>,
) -> Result<Json<WorkOrderView>, ApiError> {
    let mut client = state.backends.dispatch.clone();
    // Not retried: an action is not idempotent (a second `progress` would
    // add a second note), and a refused one says why.
    let req = request(&caller.token, act_request(id, body))?;
    Ok(Json(client.act(req).await?.into_inner().into()))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaRuleBody {
    /// Category code or group prefix; empty = every category.
    #[serde(default)]
    pub category: String,
    /// normal | urgent
    pub urgency: String,
    /// `Nh` working hours or `Nd` working days.
    #[schema(example = "2h")]
    pub sign_for: String,
    #[schema(example = "1d")]
    pub first_response: String,
    #[schema(example = "15d")]
    pub resolve: String,
}

/// A tenant's SLA policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicyBody {
    pub rules: Vec<SlaRuleBody>,
    /// Reminder (提醒单) when this share of the time is used, 0.5..0.95.
    pub reminder_at: f64,
    /// Supervise order (督办单) this long past the deadline (`Nh`/`Nd`).
    pub supervise_after: String,
    pub review_required: bool,
    pub max_extensions: u32,
    pub max_extension_days: u32,
    pub max_reopens: u32,
    /// Returns after which the order is lifted a level; 0 = never.
    pub lift_after_returns: u32,
    pub allow_pause: bool,
    pub restart_on_redispatch: bool,
    /// Time a summoned unit has to report in (`Nh`/`Nd`).
    pub report_in_within: String,
}

impl From<pb::SlaPolicy> for SlaPolicyBody {
    fn from(p: pb::SlaPolicy) -> Self {
        Self {
            rules: p
                .rules
                .into_iter()
                .map(|r| SlaRuleBody {
                    category: r.category,
                    urgency: r.urgency,
                    sign_for: r.sign_for,
                    first_response: r.first_response,
                    resolve: r.resolve,
                })
                .collect(),
            reminder_at: p.reminder_at,
            supervise_after: p.supervise_after,
            review_required: p.review_required,
            max_extensions: p.max_extensions,
            max_extension_days: p.max_extension_days,
            max_reopens: p.max_reopens,
            lift_after_returns: p.lift_after_returns,
            allow_pause: p.allow_pause,
            restart_on_redispatch: p.restart_on_redispatch,
            report_in_within: p.report_in_within,
        }
    }
}

impl From<SlaPolicyBody> for pb::SlaPolicy {
    fn from(p: SlaPolicyBody) -> Self {
        Self {
            rules: p
                .rules
                .into_iter()
                .map(|r| pb::SlaRule {
                    category: r.category,
                    urgency: r.urgency,
                    sign_for: r.sign_for,
                    first_response: r.first_response,
                    resolve: r.resolve,
                })
                .collect(),
            reminder_at: p.reminder_at,
            supervise_after: p.supervise_after,
            review_required: p.review_required,
            max_extensions: p.max_extensions,
            max_extension_days: p.max_extension_days,
            max_reopens: p.max_reopens,
            lift_after_returns: p.lift_after_returns,
            allow_pause: p.allow_pause,
            restart_on_redispatch: p.restart_on_redispatch,
            report_in_within: p.report_in_within,
        }
    }
}

/// The tenant's SLA policy (built-in defaults until the admin sets one).
#[utoipa::path(
    get,
    path = "/api/v1/admin/sla-policy",
    tag = "work orders",
    responses(
        (status = 200, description = "The policy", body = SlaPolicyBody),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Dispatchers, supervisors and admins only", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SlaPolicyBody>, ApiError> {
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(&caller.token, pb::GetSlaPolicyRequest {});
        async move { client.get_sla_policy(req?).await }
    })
    .await?;
    Ok(Json(resp.into_inner().into()))
}

/// Replace the tenant's SLA policy (tenant admin). Applies to clocks
/// started from now on.
#[utoipa::path(
    put,
    path = "/api/v1/admin/sla-policy",
    tag = "work orders",
    request_body = SlaPolicyBody,
    responses(
        (status = 200, description = "The policy as saved", body = SlaPolicyBody),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 422, description = "A field is invalid, or two rules clash", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<SlaPolicyBody>,
) -> Result<Json<SlaPolicyBody>, ApiError> {
    let msg: pb::SlaPolicy = body.into();
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(&caller.token, msg.clone());
        async move { client.put_sla_policy(req?).await }
    })
    .await?;
    Ok(Json(resp.into_inner().into()))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarDayBody {
    /// YYYY-MM-DD
    #[schema(example = "2026-10-01")]
    pub date: String,
    /// holiday | workday (调休上班) | default (undo the tenant's change)
    pub kind: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarBody {
    pub year: i32,
    /// Holidays and make-up workdays of the year (national ones included).
    pub days: Vec<CalendarDayBody>,
    /// Working hours, e.g. `09:00-12:00`.
    pub shifts: Vec<String>,
}

impl From<pb::CalendarView> for CalendarBody {
    fn from(c: pb::CalendarView) -> Self {
        Self {
            year: c.year,
            days: c
                .days
                .into_iter()
                .map(|d| CalendarDayBody {
                    date: d.date,
                    kind: d.kind,
                    note: d.note,
                })
                .collect(),
            shifts: c.shifts,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CalendarQuery {
    /// Default: this year (China time).
    pub year: Option<i32>,
}

/// The tenant's working calendar for a year.
#[utoipa::path(
    get,
    path = "/api/v1/admin/calendar",
    tag = "work orders",
    params(CalendarQuery),
    responses(
        (status = 200, description = "Holidays, make-up workdays and working hours", body = CalendarBody),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Dispatchers, supervisors and admins only", body = Problem),
        (status = 422, description = "year out of range", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_calendar(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<CalendarQuery>, QueryRejection>,
) -> Result<Json<CalendarBody>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let year = q.year.unwrap_or(0);
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(&caller.token, pb::GetCalendarRequest { year });
        async move { client.get_calendar(req?).await }
    })
    .await?;
    Ok(Json(resp.into_inner().into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarChange {
    #[serde(default)]
    pub days: Vec<CalendarDayBody>,
    /// Replaces the working hours when given.
    #[serde(default)]
    pub shifts: Vec<String>,
}

/// Change days of the tenant's calendar or its working hours (tenant
/// admin), e.g. add next year's national arrangement.
#[utoipa::path(
    put,
    path = "/api/v1/admin/calendar",
    tag = "work orders",
    request_body = CalendarChange,
    responses(
        (status = 200, description = "The calendar of the first changed day's year", body = CalendarBody),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 422, description = "A day or the working hours are invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn set_calendar(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CalendarChange>,
) -> Result<Json<CalendarBody>, ApiError> {
    let msg = pb::SetCalendarDaysRequest {
        days: body
            .days
            .into_iter()
            .map(|d| pb::CalendarDay {
                date: d.date,
                kind: d.kind,
                note: d.note,
            })
            .collect(),
        shifts: body.shifts,
    };
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(&caller.token, msg.clone());
        async move { client.set_calendar_days(req?).await }
    })
    .await?;
    Ok(Json(resp.into_inner().into()))
}
