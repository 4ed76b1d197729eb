//! The grid's people and work: grid workers, households and key persons,
//! duties and check-ins, grid events (closed in the grid or whistled up),
//! broadcasts.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use jiesu_proto::{
    grid as pb,
    intake::ListCategoriesRequest,
    time::{from_timestamp, to_timestamp},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    backend::{request, with_retry},
    error::{ApiError, Problem, invalid_query},
    extract::{Caller, JsonBody},
};

/// A write: called once (a retry could apply it twice).
macro_rules! grid_write {
    ($state:expr, $caller:expr, $method:ident, $msg:expr) => {{
        let mut client = $state.backends.grid.clone();
        client
            .$method(request(&$caller.token, $msg)?)
            .await?
            .into_inner()
    }};
}

/// A read: retried when grid cannot be reached.
macro_rules! grid_read {
    ($state:expr, $caller:expr, $method:ident, $msg:expr) => {{
        let msg = $msg;
        with_retry($state.backends.retries, || {
            let mut client = $state.backends.grid.clone();
            let req = request(&$caller.token, msg.clone());
            async move { client.$method(req?).await }
        })
        .await?
        .into_inner()
    }};
}

fn at(ts: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.as_ref().and_then(from_timestamp)
}

// ---- workers ----

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

fn yes() -> bool {
    true
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 409, description = "Another worker has this account", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_worker(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<WorkerBody>,
) -> Result<Json<WorkerView>, ApiError> {
    let w = grid_write!(state, caller, save_worker, worker_msg(String::new(), b));
    Ok(Json(w.into()))
}

/// Update a grid worker (tenant admin).
#[utoipa::path(
    put,
    path = "/api/v1/admin/grid-workers/{id}",
    tag = "grid people",
    params(("id" = String, Path, description = "Worker id")),
    request_body = WorkerBody,
    responses(
        (status = 200, description = "Saved", body = WorkerView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn update_worker(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<WorkerBody>,
) -> Result<Json<WorkerView>, ApiError> {
    let w = grid_write!(state, caller, save_worker, worker_msg(id, b));
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not allowed", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_workers(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<GridQuery>, QueryRejection>,
) -> Result<Json<WorkerList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let r = grid_read!(
        state,
        caller,
        list_workers,
        pb::ListWorkersRequest {
            grid_code: q.grid_code.unwrap_or_default(),
        }
    );
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
    params(("id" = String, Path, description = "Worker id")),
    request_body = AssignmentBody,
    responses(
        (status = 200, description = "Assigned", body = WorkerView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 404, description = "No such worker or grid", body = Problem),
    ),
    security(("bearer" = []))
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
    Ok(Json(grid_write!(state, caller, assign_worker, msg).into()))
}

/// End a worker's assignment to a grid (tenant admin).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/grid-workers/{id}/assignments/{grid_code}",
    tag = "grid people",
    params(
        ("id" = String, Path, description = "Worker id"),
        ("grid_code" = String, Path, description = "Grid code"),
    ),
    responses(
        (status = 200, description = "Unassigned", body = WorkerView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 404, description = "No such worker", body = Problem),
    ),
    security(("bearer" = []))
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
    Ok(Json(grid_write!(state, caller, assign_worker, msg).into()))
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
    params(("id" = String, Path, description = "Worker id")),
    request_body = RatingBody,
    responses(
        (status = 200, description = "Rated", body = WorkerView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Supervisors and admins only", body = Problem),
        (status = 422, description = "stars outside 1..5 or no reason", body = Problem),
    ),
    security(("bearer" = []))
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
    Ok(Json(grid_write!(state, caller, rate_worker, msg).into()))
}

// ---- households and key persons ----

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdBody {
    #[serde(default, skip_deserializing)]
    pub id: String,
    pub grid_code: String,
    #[serde(default)]
    pub building_code: String,
    /// Personal: encrypted at rest, masked on output.
    pub room: String,
    pub head_name: String,
    pub phone: String,
    pub members: i32,
    /// Who lives there; personal, masked on output.
    #[serde(default)]
    pub residents: Vec<ResidentBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentBody {
    pub name: String,
    /// 户主 | 配偶 | 子女 | 父母 | 其他 ...
    #[serde(default)]
    pub relation: String,
    #[serde(default)]
    pub id_number: String,
    #[serde(default)]
    pub birth_year: i32,
}

impl From<pb::Household> for HouseholdBody {
    fn from(h: pb::Household) -> Self {
        Self {
            id: h.id,
            grid_code: h.grid_code,
            building_code: h.building_code,
            room: h.room,
            head_name: h.head_name,
            phone: h.phone,
            members: h.members,
            residents: h
                .residents
                .into_iter()
                .map(|r| ResidentBody {
                    name: r.name,
                    relation: r.relation,
                    id_number: r.id_number,
                    birth_year: r.birth_year,
                })
                .collect(),
        }
    }
}

/// Register a household (tenant admin, supervisor, or the grid's worker).
#[utoipa::path(
    post,
    path = "/api/v1/households",
    tag = "grid people",
    request_body = HouseholdBody,
    responses(
        (status = 200, description = "Saved; personal fields masked", body = HouseholdBody),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not your grid", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_household(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<HouseholdBody>,
) -> Result<Json<HouseholdBody>, ApiError> {
    let msg = pb::Household {
        id: String::new(),
        grid_code: b.grid_code,
        building_code: b.building_code,
        room: b.room,
        head_name: b.head_name,
        phone: b.phone,
        members: b.members,
        residents: b
            .residents
            .into_iter()
            .map(|r| pb::Resident {
                name: r.name,
                relation: r.relation,
                id_number: r.id_number,
                birth_year: r.birth_year,
            })
            .collect(),
    };
    Ok(Json(grid_write!(state, caller, save_household, msg).into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdList {
    pub households: Vec<HouseholdBody>,
}

/// A grid's households and residents, masked (its workers, supervisors,
/// admins); the read is recorded.
#[utoipa::path(
    get,
    path = "/api/v1/households",
    tag = "grid people",
    params(GridQuery),
    responses(
        (status = 200, description = "Masked households", body = HouseholdList),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not your grid, or a role that does not see residents", body = Problem),
        (status = 422, description = "grid_code missing", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_households(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<GridQuery>, QueryRejection>,
) -> Result<Json<HouseholdList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::ListHouseholdsRequest {
        grid_code: q.grid_code.unwrap_or_default(),
    };
    // The read is recorded: no retry that could record it twice.
    let r = grid_write!(state, caller, list_households, msg);
    Ok(Json(HouseholdList {
        households: r.households.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPersonBody {
    pub grid_code: String,
    #[serde(default)]
    pub household_id: String,
    /// elderly_alone | disabled | hardship | newborn | newly_wed |
    /// community_correction | mental_illness
    pub category: String,
    pub name: String,
    #[serde(default)]
    pub id_number: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub note: String,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPersonView {
    pub id: String,
    pub grid_code: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub household_id: String,
    pub category: String,
    /// Masked in lists; whole only from GET /api/v1/key-persons/{id}.
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub address: String,
    pub note: String,
    pub active: bool,
    pub last_visit: Option<DateTime<Utc>>,
}

impl From<pb::KeyPerson> for KeyPersonView {
    fn from(p: pb::KeyPerson) -> Self {
        Self {
            id: p.id,
            grid_code: p.grid_code,
            household_id: p.household_id,
            category: p.category,
            name: p.name,
            id_number: p.id_number,
            phone: p.phone,
            address: p.address,
            note: p.note,
            active: p.active,
            last_visit: at(p.last_visit),
        }
    }
}

fn key_person_msg(id: String, b: KeyPersonBody) -> pb::KeyPerson {
    pb::KeyPerson {
        id,
        grid_code: b.grid_code,
        household_id: b.household_id,
        category: b.category,
        name: b.name,
        id_number: b.id_number,
        phone: b.phone,
        address: b.address,
        note: b.note,
        active: b.active,
        last_visit: None,
    }
}

/// Register a key person (重点人员; tenant admin, supervisor, or the grid's
/// worker). Personal fields are encrypted at rest; the answer is masked.
#[utoipa::path(
    post,
    path = "/api/v1/key-persons",
    tag = "grid people",
    request_body = KeyPersonBody,
    responses(
        (status = 200, description = "Saved (masked)", body = KeyPersonView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not your grid, or a role that does not see key persons", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_key_person(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<KeyPersonBody>,
) -> Result<Json<KeyPersonView>, ApiError> {
    let msg = key_person_msg(String::new(), b);
    Ok(Json(
        grid_write!(state, caller, save_key_person, msg).into(),
    ))
}

/// Update a key person.
#[utoipa::path(
    put,
    path = "/api/v1/key-persons/{id}",
    tag = "grid people",
    params(("id" = String, Path, description = "Key person id")),
    request_body = KeyPersonBody,
    responses(
        (status = 200, description = "Saved (masked)", body = KeyPersonView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not allowed", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn update_key_person(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<KeyPersonBody>,
) -> Result<Json<KeyPersonView>, ApiError> {
    let msg = key_person_msg(id, b);
    Ok(Json(
        grid_write!(state, caller, save_key_person, msg).into(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeyPersonsQuery {
    pub grid_code: Option<String>,
    pub category: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPersonList {
    pub persons: Vec<KeyPersonView>,
}

/// Key persons, masked (grid workers: their grids'; supervisors and admins:
/// all). The read is recorded.
#[utoipa::path(
    get,
    path = "/api/v1/key-persons",
    tag = "grid people",
    params(KeyPersonsQuery),
    responses(
        (status = 200, description = "Masked list", body = KeyPersonList),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "A role that does not see key persons, or not your grid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_key_persons(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<KeyPersonsQuery>, QueryRejection>,
) -> Result<Json<KeyPersonList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    // The read is recorded: no retry that could record it twice.
    let r = grid_write!(
        state,
        caller,
        list_key_persons,
        pb::ListKeyPersonsRequest {
            grid_code: q.grid_code.unwrap_or_default(),
            category: q.category.unwrap_or_default(),
        }
    );
    Ok(Json(KeyPersonList {
        persons: r.persons.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PurposeQuery {
    /// Why the reader needs the whole record (recorded), e.g. 入户走访.
    pub purpose: String,
}

/// One key person, whole. Every read is recorded with its purpose.
#[utoipa::path(
    get,
    path = "/api/v1/key-persons/{id}",
    tag = "grid people",
    params(("id" = String, Path, description = "Key person id"), PurposeQuery),
    responses(
        (status = 200, description = "The whole record", body = KeyPersonView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "A role that does not see key persons", body = Problem),
        (status = 404, description = "Not found in your grids", body = Problem),
        (status = 422, description = "purpose missing", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_key_person(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<PurposeQuery>, QueryRejection>,
) -> Result<Json<KeyPersonView>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::GetKeyPersonRequest {
        id,
        purpose: q.purpose,
    };
    // Each read is recorded: no retry that could record it twice.
    Ok(Json(grid_write!(state, caller, get_key_person, msg).into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadsQuery {
    pub subject_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonalDataReadView {
    pub at: Option<DateTime<Utc>>,
    pub reader: String,
    pub roles: Vec<String>,
    /// key_person | key_persons (a list)
    pub what: String,
    pub subject_ids: Vec<String>,
    pub purpose: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonalDataReads {
    pub reads: Vec<PersonalDataReadView>,
}

/// Who read key persons' data, newest first (tenant admin, supervisor).
#[utoipa::path(
    get,
    path = "/api/v1/admin/personal-data-reads",
    tag = "grid people",
    params(ReadsQuery),
    responses(
        (status = 200, description = "Reads", body = PersonalDataReads),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Supervisors and admins only", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_reads(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ReadsQuery>, QueryRejection>,
) -> Result<Json<PersonalDataReads>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let r = grid_read!(
        state,
        caller,
        list_personal_data_reads,
        pb::ListPersonalDataReadsRequest {
            subject_id: q.subject_id.unwrap_or_default(),
        }
    );
    Ok(Json(PersonalDataReads {
        reads: r
            .reads
            .into_iter()
            .map(|x| PersonalDataReadView {
                at: at(x.at),
                reader: x.reader,
                roles: x.roles,
                what: x.what,
                subject_ids: x.subject_ids,
                purpose: x.purpose,
            })
            .collect(),
    }))
}

// ---- duties ----

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyRuleView {
    pub code: String,
    pub name: String,
    /// household | key_person | key_place | patrol
    pub target: String,
    /// For key_person: the categories covered; empty = all.
    #[serde(default)]
    pub categories: Vec<String>,
    /// day | week | month
    pub every: String,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyRulesView {
    pub rules: Vec<DutyRuleView>,
}

impl From<pb::DutyRules> for DutyRulesView {
    fn from(r: pb::DutyRules) -> Self {
        Self {
            rules: r
                .rules
                .into_iter()
                .map(|r| DutyRuleView {
                    code: r.code,
                    name: r.name,
                    target: r.target,
                    categories: r.categories,
                    every: r.every,
                    active: r.active,
                })
                .collect(),
        }
    }
}

/// The tenant's duty rules (the built-in ones until an admin saves some).
#[utoipa::path(
    get,
    path = "/api/v1/admin/duty-rules",
    tag = "duties",
    responses(
        (status = 200, description = "Rules", body = DutyRulesView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not allowed", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_rules(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<DutyRulesView>, ApiError> {
    let r = grid_read!(state, caller, get_duty_rules, pb::GetDutyRulesRequest {});
    Ok(Json(r.into()))
}

/// Replace the tenant's duty rules (tenant admin).
#[utoipa::path(
    put,
    path = "/api/v1/admin/duty-rules",
    tag = "duties",
    request_body = DutyRulesView,
    responses(
        (status = 200, description = "Saved", body = DutyRulesView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 422, description = "A rule is invalid (field names it)", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn put_rules(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<DutyRulesView>,
) -> Result<Json<DutyRulesView>, ApiError> {
    let msg = pb::DutyRules {
        rules: b
            .rules
            .into_iter()
            .map(|r| pb::DutyRule {
                code: r.code,
                name: r.name,
                target: r.target,
                categories: r.categories,
                every: r.every,
                active: r.active,
            })
            .collect(),
    };
    Ok(Json(
        grid_write!(state, caller, save_duty_rules, msg).into(),
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    /// The moment whose periods to fill; default now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Generated {
    pub created: u32,
}

/// Create the current periods' tasks that do not exist yet (tenant admin;
/// every grid replica also does it on a timer).
#[utoipa::path(
    post,
    path = "/api/v1/admin/duties/generate",
    tag = "duties",
    request_body = GenerateBody,
    responses(
        (status = 200, description = "Tasks created now", body = Generated),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn generate(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<GenerateBody>,
) -> Result<Json<Generated>, ApiError> {
    let msg = pb::GenerateDutiesRequest {
        at: b.at.map(to_timestamp),
    };
    let r = grid_write!(state, caller, generate_duties, msg);
    Ok(Json(Generated { created: r.created }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TasksQuery {
    pub grid_code: Option<String>,
    /// open (default) | done | all
    pub state: Option<String>,
    /// 2026-11 | 2026-W47 | 2026-11-22
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not allowed", body = Problem),
        (status = 422, description = "A query parameter is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<TasksQuery>, QueryRejection>,
) -> Result<Json<DutyTaskList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let r = grid_read!(
        state,
        caller,
        list_duty_tasks,
        pb::ListDutyTasksRequest {
            grid_code: q.grid_code.unwrap_or_default(),
            state: q.state.unwrap_or_default(),
            period: q.period.unwrap_or_default(),
        }
    );
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
    params(("id" = String, Path, description = "Task id")),
    request_body = CheckInBody,
    responses(
        (status = 200, description = "Done", body = DutyTaskView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not your grid", body = Problem),
        (status = 404, description = "No such task", body = Problem),
        (status = 409, description = "Already checked in", body = Problem),
        (status = 422, description = "Outside the grid, or a bad photo", body = Problem),
    ),
    security(("bearer" = []))
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
                "must be base64",
            )
        })?;
    let msg = pb::CheckInRequest {
        task_id: id,
        lat: b.lat,
        lon: b.lon,
        note: b.note,
        photo,
    };
    Ok(Json(grid_write!(state, caller, check_in, msg).into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ComplianceQuery {
    /// 2026-11 | 2026-W47 | 2026-11-22: tasks due in it.
    pub period: String,
    /// worker | grid (default) | community
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Supervisors and admins only", body = Problem),
        (status = 422, description = "period or by invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn compliance(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ComplianceQuery>, QueryRejection>,
) -> Result<Json<ComplianceView>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let r = grid_read!(
        state,
        caller,
        duty_compliance,
        pb::DutyComplianceRequest {
            period: q.period,
            by: q.by.unwrap_or_default(),
        }
    );
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

// ---- grid events ----

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
    #[serde(skip_serializing_if = "String::is_empty")]
    pub level: String,
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
            level: e.level,
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Grid workers only, in their grids", body = Problem),
        (status = 422, description = "A field is invalid, or the point lies in no grid", body = Problem),
    ),
    security(("bearer" = []))
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
    Ok(Json(grid_write!(state, caller, report_event, msg).into()))
}

/// Intake makes a whistled event's ticket later, from the event: a category
/// it would refuse is caught now, while the worker can still fix it.
async fn check_leaf(state: &AppState, caller: &Caller, category: &str) -> Result<(), ApiError> {
    let category = category.trim();
    if category.is_empty() {
        return Ok(());
    }
    let categories = with_retry(state.backends.retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(&caller.token, ListCategoriesRequest {});
        async move { client.list_categories(req?).await }
    })
    .await?
    .into_inner()
    .categories;
    match categories.iter().find(|c| c.leaf && c.code == category) {
        None => Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "category",
            "must be a leaf category of the tenant (see GET /api/v1/categories)",
        )),
        // A whistle carries no attributes, so intake would refuse it.
        Some(c) if c.attributes.iter().any(|a| a.required) => Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "category",
            "asks for details a whistle cannot carry; choose another category or have an agent enter the ticket",
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not allowed", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<GridEventList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let r = grid_read!(
        state,
        caller,
        list_events,
        pb::ListEventsRequest {
            grid_code: q.grid_code.unwrap_or_default(),
            status: q.status.unwrap_or_default(),
        }
    );
    Ok(Json(GridEventList {
        events: r.events.into_iter().map(Into::into).collect(),
    }))
}

/// One grid event.
#[utoipa::path(
    get,
    path = "/api/v1/grid-events/{id}",
    tag = "grid events",
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "The event", body = GridEventView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not your grid", body = Problem),
        (status = 404, description = "No such event", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<GridEventView>, ApiError> {
    let r = grid_read!(state, caller, get_event, pb::GetEventRequest { id });
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
    params(("id" = String, Path, description = "Event id")),
    request_body = CloseBody,
    responses(
        (status = 200, description = "Closed", body = GridEventView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not your grid", body = Problem),
        (status = 404, description = "No such event", body = Problem),
        (status = 409, description = "Already closed or whistled", body = Problem),
    ),
    security(("bearer" = []))
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
    Ok(Json(grid_write!(state, caller, close_event, msg).into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhistleBody {
    /// L2 community | L3 street | L4 district
    pub level: String,
    /// Intake leaf category (required unless given at report).
    #[serde(default)]
    pub category: String,
    pub reason: String,
}

/// Whistle a matter up (吹哨): it becomes a ticket on channel `grid` at the
/// chosen level; `ticket_id` and `tracking_no` appear once intake has it.
#[utoipa::path(
    post,
    path = "/api/v1/grid-events/{id}/whistle",
    tag = "grid events",
    params(("id" = String, Path, description = "Event id")),
    request_body = WhistleBody,
    responses(
        (status = 200, description = "Whistled", body = GridEventView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not your grid", body = Problem),
        (status = 404, description = "No such event", body = Problem),
        (status = 409, description = "Already closed or whistled", body = Problem),
        (status = 422, description = "level, category or reason invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn whistle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<WhistleBody>,
) -> Result<Json<GridEventView>, ApiError> {
    check_leaf(&state, &caller, &b.category).await?;
    let msg = pb::WhistleEventRequest {
        id,
        level: b.level,
        category: b.category,
        reason: b.reason,
    };
    Ok(Json(grid_write!(state, caller, whistle_event, msg).into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// grid | community (default) | street | county
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Supervisors, dispatchers and admins only", body = Problem),
        (status = 422, description = "from/to/by invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<EventStatsView>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let r = grid_read!(
        state,
        caller,
        event_stats,
        pb::EventStatsRequest {
            from: Some(to_timestamp(q.from)),
            to: Some(to_timestamp(q.to)),
            by: q.by.unwrap_or_default(),
        }
    );
    Ok(Json(EventStatsView {
        rows: r.rows.into_iter().map(Into::into).collect(),
        total: r.total.map(Into::into),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastBody {
    #[serde(default)]
    pub grid_codes: Vec<String>,
    /// Every basic grid under these region codes.
    #[serde(default)]
    pub region_codes: Vec<String>,
    /// command | emergency
    pub kind: String,
    #[schema(example = "台风预警")]
    pub title: String,
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastView {
    pub id: String,
    pub grid_codes: Vec<String>,
}

/// Send a command or emergency notice to the residents' groups of grids
/// (supervisor, tenant admin); notification delivers it.
#[utoipa::path(
    post,
    path = "/api/v1/broadcasts",
    tag = "grid events",
    request_body = BroadcastBody,
    responses(
        (status = 200, description = "Requested", body = BroadcastView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Supervisors and admins only", body = Problem),
        (status = 422, description = "Unknown grids, or no text", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn broadcast(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<BroadcastBody>,
) -> Result<Json<BroadcastView>, ApiError> {
    let msg = pb::BroadcastRequest {
        grid_codes: b.grid_codes,
        region_codes: b.region_codes,
        kind: b.kind,
        title: b.title,
        body: b.body,
    };
    let r = grid_write!(state, caller, broadcast, msg);
    Ok(Json(BroadcastView {
        id: r.id,
        grid_codes: r.grid_codes,
    }))
}
