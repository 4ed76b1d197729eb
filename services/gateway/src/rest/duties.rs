//! Duties: the visit and patrol tasks made from the duty rules, a grid
//! worker's check-in (with a photo: its own body limit) and compliance.

use base64::Engine as _;
use jiesu_proto::grid as pb;

use super::prelude::*;
use crate::rest::at;

pub fn routes(cfg: &GatewayConfig) -> OpenApiRouter<AppState> {
    // A check-in carries a photo as base64 in JSON.
    let check_in_limit = cfg.max_attachment_bytes * 4 / 3 + 64 * 1024;
    OpenApiRouter::new()
        .routes(routes!(list_tasks))
        .routes(routes!(check_in).layer(DefaultBodyLimit::max(check_in_limit)))
        .routes(routes!(compliance))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TasksQuery {
    pub grid_code: Option<String>,
    /// open (default) | done | all
    #[param(pattern = "^(open|done|all)$")]
    pub state: Option<String>,
    /// 2026-11 | 2026-W47 | 2026-11-22
    #[param(pattern = "^[0-9]{4}-([0-9]{2}|W[0-9]{2}|[0-9]{2}-[0-9]{2})$")]
    pub period: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DutyTaskView {
    pub id: String,
    pub rule_code: String,
    pub period: String,
    pub grid_code: String,
    /// household | key_person | key_place | patrol
    pub target_kind: String,
    pub target_id: String,
    /// zh-CN, without personal data.
    pub target_label: String,
    pub due_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub done_by: String,
    /// Meters outside the grid at check-in (0 inside).
    pub distance_m: f64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    pub has_photo: bool,
}

impl From<pb::DutyTask> for DutyTaskView {
    fn from(t: pb::DutyTask) -> Self {
        Self {
            id: t.id,
            rule_code: t.rule_code,
            period: t.period,
            grid_code: t.grid_code,
            target_kind: t.target_kind,
            target_id: t.target_id,
            target_label: t.target_label,
            due_at: at(t.due_at),
            done_at: at(t.done_at),
            done_by: t.done_by,
            distance_m: t.distance_m,
            note: t.note,
            has_photo: t.has_photo,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DutyTaskList {
    pub tasks: Vec<DutyTaskView>,
}

/// Visit and patrol tasks (grid workers: their grids').
#[utoipa::path(
    get,
    path = "/api/v1/duty-tasks",
    tag = "duties",
    params(TasksQuery),
    responses(
        (status = 200, description = "Tasks, soonest due first", body = DutyTaskList),
        Authenticated,
        (status = 403, response = NotAllowed),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<TasksQuery>, QueryRejection>,
) -> Result<Json<DutyTaskList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::ListDutyTasksRequest {
        grid_code: q.grid_code.unwrap_or_default(),
        state: q.state.unwrap_or_default(),
        period: q.period.unwrap_or_default(),
    };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.list_duty_tasks(r).await)
        .await?;
    Ok(Json(DutyTaskList {
        tasks: r.tasks.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInBody {
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub note: String,
    /// JPEG or PNG, base64.
    #[serde(default)]
    pub photo_base64: String,
}

/// A grid worker checks in a visit or patrol: the position must lie in the
/// task's grid or within `grid.checkin_tolerance_m` of it (422, `field` =
/// `position`, otherwise).
#[utoipa::path(
    post,
    path = "/api/v1/duty-tasks/{id}/check-in",
    tag = "duties",
    params(("id" = String, Path, format = Uuid, description = "Task id")),
    request_body = CheckInBody,
    responses(
        (status = 200, description = "Done", body = DutyTaskView),
        Authenticated,
        JsonInput,
        (status = 403, response = NotYourGrid),
        (status = 404, description = "No such task", body = Problem),
        (status = 409, description = "Already checked in", body = Problem),
        (status = 422, description = "Outside the grid, or a bad photo", body = Problem),
    ),
)]
pub async fn check_in(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<CheckInBody>,
) -> Result<Json<DutyTaskView>, ApiError> {
    let photo = base64::engine::general_purpose::STANDARD
        .decode(b.photo_base64.trim())
        .map_err(|_| {
            ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "photo_base64",
                tr!("必须是 base64 编码", "must be base64"),
            )
        })?;
    let msg = pb::CheckInRequest {
        task_id: id,
        lat: b.lat,
        lon: b.lon,
        note: b.note,
        photo,
    };
    let task = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.check_in(r).await)
        .await?;
    Ok(Json(task.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ComplianceQuery {
    /// 2026-11 | 2026-W47 | 2026-11-22: tasks due in it.
    #[param(pattern = "^[0-9]{4}-([0-9]{2}|W[0-9]{2}|[0-9]{2}-[0-9]{2})$")]
    pub period: String,
    /// worker | grid (default) | community
    #[param(pattern = "^(worker|grid|community)$")]
    pub by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceRowView {
    pub key: String,
    pub name: String,
    pub due: u32,
    pub done: u32,
    /// done / due
    pub share: f64,
    /// Done before the task was due.
    pub on_time: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceView {
    pub rows: Vec<ComplianceRowView>,
}

/// Duty compliance per worker, grid or community (supervisor, admin).
#[utoipa::path(
    get,
    path = "/api/v1/duties/compliance",
    tag = "duties",
    params(ComplianceQuery),
    responses(
        (status = 200, description = "Rows", body = ComplianceView),
        Authenticated,
        (status = 403, response = SupervisorsAndAdmins),
        (status = 422, description = "period or by invalid", body = Problem),
    ),
)]
pub async fn compliance(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ComplianceQuery>, QueryRejection>,
) -> Result<Json<ComplianceView>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::DutyComplianceRequest {
        period: q.period,
        by: q.by.unwrap_or_default(),
    };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.duty_compliance(r).await)
        .await?;
    Ok(Json(ComplianceView {
        rows: r
            .rows
            .into_iter()
            .map(|x| ComplianceRowView {
                key: x.key,
                name: x.name,
                due: x.due,
                done: x.done,
                share: x.share,
                on_time: x.on_time,
            })
            .collect(),
    }))
}
