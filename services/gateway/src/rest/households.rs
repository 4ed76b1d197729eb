//! `/api/v1/households`: a grid's households and residents (一户一档).
//! Personal fields are encrypted at rest and masked in every answer; a
//! listing is recorded, so it is never retried.

use jiesu_proto::grid as pb;

use super::prelude::*;
use crate::rest::grid_workers::GridQuery;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_household, list_households))
}

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
        Authenticated,
        JsonInput,
        (status = 403, response = NotYourGrid),
        (status = 404, description = "No such grid, or no such household where `id` names one", body = Problem),
    ),
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
    let household = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.save_household(r).await)
        .await?;
    Ok(Json(household.into()))
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
        Authenticated,
        (status = 403, description = "Not your grid, or a role that does not see residents", body = Problem),
        (status = 422, description = "grid_code missing", body = Problem),
    ),
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
    let r = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.list_households(r).await)
        .await?;
    Ok(Json(HouseholdList {
        households: r.households.into_iter().map(Into::into).collect(),
    }))
}
