//! Grid workers (网格员): the admin registers them and assigns them to
//! grids; supervisors rate them (星级评定). Phones are shown masked.

use jiesu_proto::grid as pb;

use super::prelude::*;
use crate::rest::yes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_worker))
        .routes(routes!(update_worker))
        .routes(routes!(list_workers))
        .routes(routes!(assign))
        .routes(routes!(unassign))
        .routes(routes!(rate))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerBody {
    /// The account (JWT `sub`) the worker signs in with.
    pub account: String,
    #[schema(example = "王海燕")]
    pub name: String,
    /// Full number; stored encrypted, shown masked.
    pub phone: String,
    /// full_time | part_time | chief | coordinator | instructor
    pub kind: String,
    /// For part-time workers: courier, rider, property, volunteer...
    #[serde(default)]
    pub occupation: String,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerView {
    pub id: String,
    pub account: String,
    pub name: String,
    /// Masked: 138****8000.
    pub phone: String,
    pub kind: String,
    pub occupation: String,
    pub active: bool,
    /// 1..5; absent when not rated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stars: Option<i32>,
    pub grids: Vec<String>,
}

impl From<pb::Worker> for WorkerView {
    fn from(w: pb::Worker) -> Self {
        Self {
            id: w.id,
            account: w.account,
            name: w.name,
            phone: w.phone,
            kind: w.kind,
            occupation: w.occupation,
            active: w.active,
            stars: (w.stars > 0).then_some(w.stars),
            grids: w.grids,
        }
    }
}

fn worker_msg(id: String, b: WorkerBody) -> pb::Worker {
    pb::Worker {
        id,
        account: b.account,
        name: b.name,
        phone: b.phone,
        kind: b.kind,
        occupation: b.occupation,
        active: b.active,
        ..Default::default()
    }
}

/// Register a grid worker (tenant admin).
#[utoipa::path(
    post,
    path = "/api/v1/admin/grid-workers",
    tag = "grid people",
    request_body = WorkerBody,
    responses(
        (status = 200, description = "Registered", body = WorkerView),
        TenantAdmin,
        JsonInput,
        (status = 409, description = "Another worker has this account", body = Problem),
    ),
)]
pub async fn create_worker(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<WorkerBody>,
) -> Result<Json<WorkerView>, ApiError> {
    let msg = worker_msg(String::new(), b);
    let w = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.save_worker(r).await)
        .await?;
    Ok(Json(w.into()))
}

/// Update a grid worker (tenant admin).
#[utoipa::path(
    put,
    path = "/api/v1/admin/grid-workers/{id}",
    tag = "grid people",
    params(("id" = String, Path, format = Uuid, description = "Worker id")),
    request_body = WorkerBody,
    responses(
        (status = 200, description = "Saved", body = WorkerView),
        TenantAdmin,
        JsonInput,
    ),
)]
pub async fn update_worker(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<WorkerBody>,
) -> Result<Json<WorkerView>, ApiError> {
    let w = state
        .grid(&caller)
        .once(worker_msg(id, b), async |mut c, r| c.save_worker(r).await)
        .await?;
    Ok(Json(w.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GridQuery {
    pub grid_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerView>,
}

/// Grid workers, all or of one grid (phones masked).
#[utoipa::path(
    get,
    path = "/api/v1/grid-workers",
    tag = "grid people",
    params(GridQuery),
    responses(
        (status = 200, description = "Workers", body = WorkerList),
        Authenticated,
        (status = 403, response = NotAllowed),
    ),
)]
pub async fn list_workers(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<GridQuery>, QueryRejection>,
) -> Result<Json<WorkerList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::ListWorkersRequest {
        grid_code: q.grid_code.unwrap_or_default(),
    };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.list_workers(r).await)
        .await?;
    Ok(Json(WorkerList {
        workers: r.workers.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentBody {
    pub grid_code: String,
}

/// Assign a worker to a grid (tenant admin); announces `worker.assigned`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/grid-workers/{id}/assignments",
    tag = "grid people",
    params(("id" = String, Path, format = Uuid, description = "Worker id")),
    request_body = AssignmentBody,
    responses(
        (status = 200, description = "Assigned", body = WorkerView),
        TenantAdmin,
        JsonInput,
        (status = 404, description = "No such worker or grid", body = Problem),
    ),
)]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<AssignmentBody>,
) -> Result<Json<WorkerView>, ApiError> {
    let msg = pb::AssignWorkerRequest {
        worker_id: id,
        grid_code: b.grid_code,
        remove: false,
    };
    let worker = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.assign_worker(r).await)
        .await?;
    Ok(Json(worker.into()))
}

/// End a worker's assignment to a grid (tenant admin).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/grid-workers/{id}/assignments/{grid_code}",
    tag = "grid people",
    params(
        ("id" = String, Path, format = Uuid, description = "Worker id"),
        ("grid_code" = String, Path, description = "Grid code"),
    ),
    responses(
        (status = 200, description = "Unassigned", body = WorkerView),
        TenantAdmin,
        (status = 404, description = "No such worker", body = Problem),
    ),
)]
pub async fn unassign(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, grid_code)): Path<(String, String)>,
) -> Result<Json<WorkerView>, ApiError> {
    let msg = pb::AssignWorkerRequest {
        worker_id: id,
        grid_code,
        remove: true,
    };
    let worker = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.assign_worker(r).await)
        .await?;
    Ok(Json(worker.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingBody {
    /// 1..5
    pub stars: i32,
    pub reason: String,
}

/// Rate a grid worker (星级评定; supervisor or tenant admin).
#[utoipa::path(
    post,
    path = "/api/v1/grid-workers/{id}/rating",
    tag = "grid people",
    params(("id" = String, Path, format = Uuid, description = "Worker id")),
    request_body = RatingBody,
    responses(
        (status = 200, description = "Rated", body = WorkerView),
        Authenticated,
        JsonInput,
        (status = 403, response = SupervisorsAndAdmins),
        (status = 422, description = "stars outside 1..5 or no reason", body = Problem),
    ),
)]
pub async fn rate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<RatingBody>,
) -> Result<Json<WorkerView>, ApiError> {
    let msg = pb::RateWorkerRequest {
        worker_id: id,
        stars: b.stars,
        reason: b.reason,
    };
    let worker = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.rate_worker(r).await)
        .await?;
    Ok(Json(worker.into()))
}
