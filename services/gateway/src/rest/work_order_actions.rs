//! `/api/v1/work-orders/{id}/actions`: everything done to a work order,
//! one action per request (sign, resolve, return, whistle, ...).

use jiesu_proto::dispatch::{self as pb, act_request::Action as A};

use super::prelude::*;
use crate::rest::work_orders::WorkOrderView;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(act))
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
    params(("id" = String, Path, format = Uuid, description = "Work-order id")),
    request_body = ActionBody,
    responses(
        (status = 200, description = "The work order after the action", body = WorkOrderView),
        Authenticated,
        JsonInput,
        (status = 403, description = "Wrong role or wrong unit", body = Problem),
        (status = 404, description = "No such work order in the caller's scope", body = Problem),
        (status = 409, description = "Not allowed in the order's state or by the tenant's policy", body = Problem),
    ),
)]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ActionBody>,
) -> Result<Json<WorkOrderView>, ApiError> {
    // Not retried: an action is not idempotent (a second `progress` would
    // add a second note), and a refused one says why.
    let order = state
        .dispatch(&caller)
        .once(act_request(id, body), async |mut c, r| c.act(r).await)
        .await?;
    Ok(Json(order.into()))
}
