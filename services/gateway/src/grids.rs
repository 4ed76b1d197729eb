//! Grids (网格): the tenant's layers and locating a point among them.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use jiesu_proto::grid as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    backend::{request, with_retry},
    error::{ApiError, Problem, invalid_query},
    extract::{Caller, RawBody},
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LocateQuery {
    #[param(example = 36.061)]
    pub lat: f64,
    #[param(example = 120.38)]
    pub lon: f64,
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
}

/// The grids holding a point (WGS-84), with its community, street and county.
#[utoipa::path(
    get,
    path = "/api/v1/locate",
    tag = "grids",
    params(LocateQuery),
    responses(
        (status = 200, description = "Where the point lies", body = Location),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Staff only", body = Problem),
        (status = 422, description = "lat or lon missing or out of range", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn locate(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<LocateQuery>, QueryRejection>,
) -> Result<Json<Location>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::LocateRequest {
        lat: q.lat,
        lon: q.lon,
    };
    let r = with_retry(state.backends.retries, || {
        let mut client = state.backends.grid.clone();
        let req = request(&caller.token, msg);
        async move { client.locate(req?).await }
    })
    .await?
    .into_inner();
    Ok(Json(Location {
        grid: r.grid.map(Into::into),
        micro: r.micro.map(Into::into),
        dedicated: r.dedicated.map(Into::into),
        professional: r.professional.into_iter().map(Into::into).collect(),
        community_code: r.community_code,
        street_code: r.street_code,
        county_code: r.county_code,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// basic | micro | dedicated | professional
    pub kind: Option<String>,
}

/// The tenant's grids as a GeoJSON FeatureCollection (the import format).
#[utoipa::path(
    get,
    path = "/api/v1/admin/grids",
    tag = "grids",
    params(ExportQuery),
    responses(
        (status = 200, description = "FeatureCollection; properties code, name, kind, community_code", body = String, content_type = "application/geo+json"),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Admins, dispatchers and supervisors only", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn export_layer(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let kind = q.kind.unwrap_or_default();
    let r = with_retry(state.backends.retries, || {
        let mut client = state.backends.grid.clone();
        let req = request(&caller.token, pb::ExportLayerRequest { kind: kind.clone() });
        async move { client.export_layer(req?).await }
    })
    .await?
    .into_inner();
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], r.geojson).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LayerImport {
    pub created: u32,
    pub updated: u32,
    /// Grids of the tenant now.
    pub total: u32,
}

/// Add or replace grids from a GeoJSON FeatureCollection (tenant admin).
/// Refused whole (422, `field` = `geojson`) naming every bad feature (ring
/// not closed, invalid polygon, missing code...) and every pair of basic
/// grids of one community that overlap.
#[utoipa::path(
    put,
    path = "/api/v1/admin/grids",
    tag = "grids",
    request_body(content = String, description = "FeatureCollection of Polygon/MultiPolygon features with properties code, name, kind, community_code", content_type = "application/geo+json"),
    responses(
        (status = 200, description = "Imported", body = LayerImport),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
        (status = 415, description = "Not GeoJSON", body = Problem),
        (status = 422, description = "Bad features or overlaps, all named", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn import_layer(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<LayerImport>, ApiError> {
    let geojson = crate::extract::text_body(
        &headers,
        &body,
        &["application/geo+json", "application/json"],
        "the layer",
        "geojson",
    )?;
    let mut client = state.backends.grid.clone();
    let req = request(&caller.token, pb::ImportLayerRequest { geojson })?;
    let r = client.import_layer(req).await?.into_inner();
    Ok(Json(LayerImport {
        created: r.created,
        updated: r.updated,
        total: r.total,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RegionsQuery {
    /// Only regions under this division code.
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Staff only", body = Problem),
        (status = 422, description = "under is not a division code", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_regions(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<RegionsQuery>, QueryRejection>,
) -> Result<Json<RegionList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let under = q.under.unwrap_or_default();
    let r = with_retry(state.backends.retries, || {
        let mut client = state.backends.grid.clone();
        let req = request(
            &caller.token,
            pb::ListRegionsRequest {
                under: under.clone(),
            },
        );
        async move { client.list_regions(req?).await }
    })
    .await?
    .into_inner();
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 415, description = "Not text/csv", body = Problem),
        (status = 422, description = "Bad lines, all named", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn import_regions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<RegionImport>, ApiError> {
    let csv = crate::extract::text_body(&headers, &body, &["text/csv"], "the regions", "csv")?;
    let mut client = state.backends.grid.clone();
    let req = request(&caller.token, pb::RegionsCsv { csv })?;
    let r = client.import_regions(req).await?.into_inner();
    Ok(Json(RegionImport { regions: r.regions }))
}
