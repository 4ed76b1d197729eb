//! `/api/v1/key-persons`: key persons (重点人员) of the grids, masked in
//! lists and whole only for a stated purpose; every read is recorded (so
//! none is retried), and admins and supervisors see who read what.

use jiesu_proto::grid as pb;

use super::prelude::*;
use crate::rest::{at, yes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key_person, list_key_persons))
        .routes(routes!(update_key_person, get_key_person))
        .routes(routes!(list_reads))
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
        Authenticated,
        JsonInput,
        (status = 403, description = "Not your grid, or a role that does not see key persons", body = Problem),
        (status = 404, description = "No such grid, or no such household where `household_id` names one", body = Problem),
    ),
)]
pub async fn create_key_person(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<KeyPersonBody>,
) -> Result<Json<KeyPersonView>, ApiError> {
    let msg = key_person_msg(String::new(), b);
    let person = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.save_key_person(r).await)
        .await?;
    Ok(Json(person.into()))
}

/// Update a key person.
#[utoipa::path(
    put,
    path = "/api/v1/key-persons/{id}",
    tag = "grid people",
    params(("id" = String, Path, format = Uuid, description = "Key person id")),
    request_body = KeyPersonBody,
    responses(
        (status = 200, description = "Saved (masked)", body = KeyPersonView),
        Authenticated,
        JsonInput,
        (status = 403, response = NotAllowed),
        (status = 404, description = "No such key person in your grids, or no such grid or household", body = Problem),
    ),
)]
pub async fn update_key_person(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<KeyPersonBody>,
) -> Result<Json<KeyPersonView>, ApiError> {
    let msg = key_person_msg(id, b);
    let person = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.save_key_person(r).await)
        .await?;
    Ok(Json(person.into()))
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
        Authenticated,
        (status = 403, description = "A role that does not see key persons, or not your grid", body = Problem),
    ),
)]
pub async fn list_key_persons(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<KeyPersonsQuery>, QueryRejection>,
) -> Result<Json<KeyPersonList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    // The read is recorded: no retry that could record it twice.
    let msg = pb::ListKeyPersonsRequest {
        grid_code: q.grid_code.unwrap_or_default(),
        category: q.category.unwrap_or_default(),
    };
    let r = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.list_key_persons(r).await)
        .await?;
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
    params(("id" = String, Path, format = Uuid, description = "Key person id"), PurposeQuery),
    responses(
        (status = 200, description = "The whole record", body = KeyPersonView),
        Authenticated,
        (status = 403, description = "A role that does not see key persons", body = Problem),
        (status = 404, description = "Not found in your grids", body = Problem),
        (status = 422, description = "purpose missing", body = Problem),
    ),
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
    let person = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.get_key_person(r).await)
        .await?;
    Ok(Json(person.into()))
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
        Authenticated,
        (status = 403, response = SupervisorsAndAdmins),
    ),
)]
pub async fn list_reads(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ReadsQuery>, QueryRejection>,
) -> Result<Json<PersonalDataReads>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::ListPersonalDataReadsRequest {
        subject_id: q.subject_id.unwrap_or_default(),
    };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.list_personal_data_reads(r).await)
        .await?;
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
