//! `/api/v1/units`: the tenant's handling units (departments, streets,
//! communities, utilities) and the admin's changes to them.

use jiesu_proto::dispatch as pb;

use super::prelude::*;
use crate::rest::yes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_units))
        .routes(routes!(put_unit))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnitRecordView {
    pub id: String,
    pub name: String,
    /// department | street | community | utility
    pub kind: String,
    pub region_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The duty office's number (an office line).
    pub duty_phone: String,
    /// Accounts (JWT `sub`) that may act for the unit; empty = anyone whose
    /// token names it.
    pub members: Vec<String>,
    pub active: bool,
}

impl From<pb::UnitRecord> for UnitRecordView {
    fn from(u: pb::UnitRecord) -> Self {
        Self {
            id: u.id,
            name: u.name,
            kind: u.kind,
            region_code: u.region_code,
            parent_id: (!u.parent_id.is_empty()).then_some(u.parent_id),
            duty_phone: u.duty_phone,
            members: u.members,
            active: u.active,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UnitsQuery {
    /// department | street | community | utility
    #[param(pattern = "^(department|street|community|utility)$")]
    pub kind: Option<String>,
    /// Units under this division code.
    #[param(pattern = "^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$")]
    pub region_code: Option<String>,
    #[serde(default)]
    pub include_inactive: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitList {
    pub units: Vec<UnitRecordView>,
}

/// The tenant's handling units: departments, streets, communities, utilities.
#[utoipa::path(
    get,
    path = "/api/v1/units",
    tag = "work orders",
    params(UnitsQuery),
    responses(
        (status = 200, description = "Units", body = UnitList),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn list_units(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<UnitsQuery>, QueryRejection>,
) -> Result<Json<UnitList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::ListUnitsRequest {
        kind: q.kind.unwrap_or_default(),
        region_code: q.region_code.unwrap_or_default(),
        include_inactive: q.include_inactive,
    };
    let resp = state
        .dispatch(&caller)
        .retried(msg, async |mut c, r| c.list_units(r).await)
        .await?;
    Ok(Json(UnitList {
        units: resp.units.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitBody {
    #[schema(example = "市南区住房和城乡建设局")]
    pub name: String,
    pub kind: String,
    #[schema(example = "370202")]
    pub region_code: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub duty_phone: String,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

/// Add or change a unit (tenant admin). Deactivating a unit the current
/// responsibility list names is refused (409 `unit_in_use`).
#[utoipa::path(
    put,
    path = "/api/v1/admin/units/{id}",
    tag = "work orders",
    params(("id" = String, Path, description = "Unit id, e.g. sn-zjj")),
    request_body = UnitBody,
    responses(
        (status = 200, description = "Saved", body = UnitRecordView),
        TenantAdmin,
        JsonInput,
        (status = 409, description = "The unit is still named by the responsibility list", body = Problem),
    ),
)]
pub async fn put_unit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<UnitBody>,
) -> Result<Json<UnitRecordView>, ApiError> {
    let msg = pb::UnitRecord {
        id,
        name: b.name,
        kind: b.kind,
        region_code: b.region_code,
        parent_id: b.parent_id.unwrap_or_default(),
        duty_phone: b.duty_phone,
        members: b.members,
        active: b.active,
    };
    let resp = state
        .dispatch(&caller)
        .retried(msg, async |mut c, r| c.put_unit(r).await)
        .await?;
    Ok(Json(resp.into()))
}
