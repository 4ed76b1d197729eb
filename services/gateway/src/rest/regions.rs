//! `/api/v1/regions` and `/api/v1/locate`: the division tree, and where a
//! point or a registry address lies (its grids, community, street, county
//! and the grid's staff).

use jiesu_proto::{grid as pb, time::to_timestamp};

use super::prelude::*;
use crate::rest::grids::StaffView;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(locate))
        .routes(routes!(list_regions))
        .routes(routes!(import_regions))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LocateQuery {
    #[param(example = 36.061)]
    pub lat: Option<f64>,
    #[param(example = 120.38)]
    pub lon: Option<f64>,
    /// The grids as they were at this moment (RFC 3339), from their history.
    pub as_of: Option<DateTime<Utc>>,
    /// Without lat/lon: a building address (门牌) from the registry.
    pub address: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GridRefView {
    pub code: String,
    pub name: String,
    /// basic | micro | dedicated | professional
    pub kind: String,
}

impl From<pb::GridRef> for GridRefView {
    fn from(g: pb::GridRef) -> Self {
        Self {
            code: g.code,
            name: g.name,
            kind: g.kind,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BuildingView {
    pub code: String,
    pub address: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Location {
    /// The basic grid; absent when no grid holds the point.
    pub grid: Option<GridRefView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub micro: Option<GridRefView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedicated: Option<GridRefView>,
    pub professional: Vec<GridRefView>,
    /// 12, 9 and 6 digits; empty when no grid holds the point.
    pub community_code: String,
    pub street_code: String,
    pub county_code: String,
    /// The basic grid's workers (not given for an `as_of` lookup).
    pub staff: Vec<StaffView>,
    /// The registry building an address matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub building: Option<BuildingView>,
}

/// The grids holding a point (WGS-84), or the building an address names,
/// with its community, street, county and the grid's staff; `as_of` answers
/// with the grids of that moment.
#[utoipa::path(
    get,
    path = "/api/v1/locate",
    tag = "grids",
    params(LocateQuery),
    responses(
        (status = 200, description = "Where the point lies", body = Location),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 404, description = "No registry building matches the address", body = Problem),
        (status = 422, description = "lat or lon missing or out of range", body = Problem),
    ),
)]
pub async fn locate(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<LocateQuery>, QueryRejection>,
) -> Result<Json<Location>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let address = q.address.unwrap_or_default();
    let (lat, lon) = match (q.lat, q.lon) {
        (Some(lat), Some(lon)) => (lat, lon),
        (None, None) if !address.trim().is_empty() => (0.0, 0.0),
        (None, _) => {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "lat",
                tr!("必填（或给出地址）", "is required (or give an address)"),
            ));
        }
        (_, None) => {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "lon",
                tr!("必填（或给出地址）", "is required (or give an address)"),
            ));
        }
    };
    let msg = pb::LocateRequest {
        lat,
        lon,
        as_of: q.as_of.map(to_timestamp),
        address,
    };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.locate(r).await)
        .await?;
    Ok(Json(Location {
        grid: r.grid.map(Into::into),
        micro: r.micro.map(Into::into),
        dedicated: r.dedicated.map(Into::into),
        professional: r.professional.into_iter().map(Into::into).collect(),
        community_code: r.community_code,
        street_code: r.street_code,
        county_code: r.county_code,
        staff: r.staff.into_iter().map(Into::into).collect(),
        building: (!r.building_code.is_empty()).then_some(BuildingView {
            code: r.building_code,
            address: r.building_address,
        }),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RegionsQuery {
    /// Only regions under this division code.
    #[param(pattern = "^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$")]
    pub under: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionView {
    pub code: String,
    pub name: String,
    /// province | city | county | street | community
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionList {
    pub regions: Vec<RegionView>,
}

/// The division tree inside the caller's scope.
#[utoipa::path(
    get,
    path = "/api/v1/regions",
    tag = "grids",
    params(RegionsQuery),
    responses(
        (status = 200, description = "Regions in code order", body = RegionList),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 422, description = "under is not a division code", body = Problem),
    ),
)]
pub async fn list_regions(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<RegionsQuery>, QueryRejection>,
) -> Result<Json<RegionList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let under = q.under.unwrap_or_default();
    let msg = pb::ListRegionsRequest { under };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.list_regions(r).await)
        .await?;
    Ok(Json(RegionList {
        regions: r
            .regions
            .into_iter()
            .map(|x| RegionView {
                code: x.code,
                name: x.name,
                level: x.level,
                parent_code: (!x.parent_code.is_empty()).then_some(x.parent_code),
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionImport {
    pub regions: u32,
}

/// Add or rename regions of the tenant's division tree from CSV `code,name`
/// (tenant admin). Refused whole (422, `field` = `csv`) naming every bad
/// line and every region whose parent is not listed.
#[utoipa::path(
    put,
    path = "/api/v1/admin/regions",
    tag = "grids",
    request_body(content = String, description = "CSV with the header code,name", content_type = "text/csv"),
    responses(
        (status = 200, description = "Imported", body = RegionImport),
        TenantAdmin,
        TextInput,
        (status = 422, description = "Bad lines, all named", body = Problem),
    ),
)]
pub async fn import_regions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<RegionImport>, ApiError> {
    let csv = text_body(
        &headers,
        &body,
        &["text/csv"],
        ("区划列表", "the regions"),
        "csv",
    )?;
    let msg = pb::RegionsCsv { csv };
    let r = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.import_regions(r).await)
        .await?;
    Ok(Json(RegionImport { regions: r.regions }))
}
