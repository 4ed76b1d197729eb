//! 回访: the agents' callback list, a phone callback's outcome, the
//! citizen's own rating (app token or the tracking page).

use jiesu_proto::evaluation::{
    self as pb, ListCallbacksRequest, RateAsCitizenRequest, RateByTrackingRequest,
    RecordCallbackRequest, record_callback_request::Answer,
};

use super::{at, prelude::*};
use crate::ratelimit::Peer;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_callbacks))
        .routes(routes!(record_callback))
        .routes(routes!(rate_as_citizen))
        .routes(routes!(rate_by_tracking))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerdictView {
    pub resolved: bool,
    /// `satisfied` (满意), `basic` (基本满意) or `unsatisfied` (不满意).
    pub satisfaction: String,
    /// Phone and ID numbers redacted.
    pub comment: String,
    /// `phone`, `tracking`, `app` or `sms`.
    pub method: String,
    pub by_role: String,
    pub at: Option<DateTime<Utc>>,
    /// Unsatisfied and unresolved: dispatch was asked to reopen (重办).
    pub reopen_requested: bool,
}

impl From<pb::Verdict> for VerdictView {
    fn from(v: pb::Verdict) -> Self {
        Self {
            resolved: v.resolved,
            satisfaction: v.satisfaction,
            comment: v.comment,
            method: v.method,
            by_role: v.by_role,
            at: at(v.at),
            reopen_requested: v.reopen_requested,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub at: Option<DateTime<Utc>>,
    /// `no_answer`, `busy`, `wrong_number` or `refused`.
    pub outcome: String,
    pub note: String,
    pub by_role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackView {
    pub ticket_id: String,
    pub tracking_no: String,
    /// 1 for the first closing; each 重办 and closing again adds one.
    pub round: u32,
    /// `open`, `answered`, `unreachable`, `refused` or `superseded`.
    pub status: String,
    pub opened_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub verdict: Option<VerdictView>,
    pub unit_name: String,
    pub category_name: String,
    pub attempt_log: Vec<AttemptView>,
}

impl From<pb::CallbackTask> for CallbackView {
    fn from(t: pb::CallbackTask) -> Self {
        Self {
            ticket_id: t.ticket_id,
            tracking_no: t.tracking_no,
            round: t.round,
            status: t.status,
            opened_at: at(t.opened_at),
            due_at: at(t.due_at),
            attempts: t.attempts,
            verdict: t.verdict.map(Into::into),
            unit_name: t.unit_name,
            category_name: t.category_name,
            attempt_log: t
                .attempt_log
                .into_iter()
                .map(|a| AttemptView {
                    at: at(a.at),
                    outcome: a.outcome,
                    note: a.note,
                    by_role: a.by_role,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CallbackQuery {
    /// `open` (default), `answered`, `unreachable`, `refused` or `all`.
    pub status: Option<String>,
    /// 1..500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackPage {
    pub callbacks: Vec<CallbackView>,
    /// Empty on the last page.
    pub next_page_token: String,
}

/// Callback rounds in the caller's scope, the earliest due first: the
/// agents' work list (回访).
#[utoipa::path(
    get,
    path = "/api/v1/callbacks",
    tag = "evaluation",
    params(CallbackQuery),
    responses(
        (status = 200, description = "Rounds, earliest due first", body = CallbackPage),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn list_callbacks(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Result<Json<CallbackPage>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = ListCallbacksRequest {
        status: q.status.unwrap_or_default(),
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
    };
    let resp = state
        .evaluation(&caller)
        .retried(msg, async |mut c, r| c.list_callbacks(r).await)
        .await?;
    Ok(Json(CallbackPage {
        callbacks: resp.callbacks.into_iter().map(Into::into).collect(),
        next_page_token: resp.next_page_token,
    }))
}

/// What the citizen said.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerdictBody {
    /// Is the problem solved, in the citizen's words?
    pub resolved: bool,
    /// `satisfied` (满意), `basic` (基本满意) or `unsatisfied` (不满意).
    pub satisfaction: String,
    /// Up to 500 characters; phone and ID numbers are redacted.
    #[serde(default)]
    pub comment: String,
}

impl From<VerdictBody> for pb::VerdictInput {
    fn from(v: VerdictBody) -> Self {
        Self {
            resolved: v.resolved,
            satisfaction: v.satisfaction,
            comment: v.comment,
        }
    }
}

/// A call that reached nobody willing to answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailedBody {
    /// `no_answer`, `busy`, `wrong_number` or `refused`.
    pub outcome: String,
    #[serde(default)]
    pub note: String,
}

/// One phone callback: the citizen's verdict, or the outcome of an attempt
/// that reached nobody (exactly one of the two).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackBody {
    /// The round answered; absent = the ticket's latest.
    #[serde(default)]
    pub round: u32,
    pub verdict: Option<VerdictBody>,
    pub failed: Option<FailedBody>,
}

/// An agent's phone callback. A round takes one verdict: a second is
/// refused with 409 `verdict_given` and the first stands. Failed attempts
/// end the round as `unreachable` after the tenant's limit (at once for a
/// wrong number) or `refused`.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/callbacks",
    tag = "evaluation",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    request_body = CallbackBody,
    responses(
        (status = 200, description = "The round after the call", body = CallbackView),
        Authenticated,
        JsonInput,
        (status = 403, description = "Agents, dispatchers and supervisors only", body = Problem),
        (status = 404, description = "No such ticket in the caller's scope", body = Problem),
        (status = 409, description = "No open round: none yet (`no_callback`), answered (`verdict_given`) or ended (`callback_closed`)", body = Problem),
    ),
)]
pub async fn record_callback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CallbackBody>,
) -> Result<Json<CallbackView>, ApiError> {
    let answer = match (body.verdict, body.failed) {
        (Some(v), None) => Some(Answer::Verdict(v.into())),
        (None, Some(f)) => Some(Answer::Failed(pb::FailedAttempt {
            outcome: f.outcome,
            note: f.note,
        })),
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "failed",
                tr!(
                    "verdict 与 failed 只能给出一个",
                    "give either verdict or failed, not both"
                ),
            ));
        }
        (None, None) => None,
    };
    let msg = RecordCallbackRequest {
        ticket_id: id,
        round: body.round,
        answer,
    };
    // Not retried: a second failed attempt would count twice.
    let task = state
        .evaluation(&caller)
        .once(msg, async |mut c, r| c.record_callback(r).await)
        .await?;
    Ok(Json(task.into()))
}

/// The citizen rates their own closed request (with the citizen token it
/// was submitted with). One verdict per round.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/rating",
    tag = "evaluation",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    request_body = VerdictBody,
    responses(
        (status = 200, description = "The round with the verdict", body = CallbackView),
        Authenticated,
        JsonInput,
        (status = 403, description = "Citizens only", body = Problem),
        (status = 404, description = "Not a request of this citizen", body = Problem),
        (status = 409, description = "No open round (`no_callback`, `verdict_given`, `callback_closed`)", body = Problem),
    ),
)]
pub async fn rate_as_citizen(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<VerdictBody>,
) -> Result<Json<CallbackView>, ApiError> {
    let msg = RateAsCitizenRequest {
        ticket_id: id,
        verdict: Some(body.into()),
    };
    let task = state
        .evaluation(&caller)
        .once(msg, async |mut c, r| c.rate_as_citizen(r).await)
        .await?;
    Ok(Json(task.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingRatingBody {
    /// 受理编号, e.g. `370202-20261122-00042`.
    pub tracking_no: String,
    /// Last four digits of the phone given with the request.
    pub phone_last4: String,
    pub verdict: VerdictBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicVerdictView {
    pub tracking_no: String,
    pub round: u32,
    pub verdict: Option<VerdictView>,
}

/// The tracking page's rating: anyone holding the tracking number and the
/// phone's last four digits rates the closed request once per round (no
/// login; 10 look-ups a minute per address).
#[utoipa::path(
    post,
    path = "/api/v1/track/rating",
    tag = "evaluation",
    request_body = TrackingRatingBody,
    responses(
        (status = 200, description = "The verdict recorded", body = PublicVerdictView),
        JsonInput,
        (status = 401, description = "Never: no token needed", body = Problem),
        (status = 404, description = "No request with this number and these digits", body = Problem),
        (status = 409, description = "No open round (`no_callback`, `verdict_given`, `callback_closed`)", body = Problem),
        (status = 429, response = RateLimited),
    ),
    security(()),
)]
pub async fn rate_by_tracking(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    JsonBody(body): JsonBody<TrackingRatingBody>,
) -> Result<Json<PublicVerdictView>, ApiError> {
    state.limits.check_lookup(&headers, peer)?;
    let msg = RateByTrackingRequest {
        tracking_no: body.tracking_no,
        phone_last4: body.phone_last4,
        verdict: Some(body.verdict.into()),
    };
    let v = state
        .public_evaluation()
        .once(msg, async |mut c, r| c.rate_by_tracking(r).await)
        .await?;
    Ok(Json(PublicVerdictView {
        tracking_no: v.tracking_no,
        round: v.round,
        verdict: v.verdict.map(Into::into),
    }))
}
