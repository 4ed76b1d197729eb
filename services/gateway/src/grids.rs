//! Grids (网格): the tenant's layers and locating a point among them.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use jiesu_proto::{
    grid as pb,
    time::{from_timestamp, to_timestamp},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    backend::{request, with_retry},
    error::{ApiError, Problem, invalid_query},
    extract::{Caller, JsonBody, RawBody},
};

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
pub struct StaffView {
    pub worker_id: String,
    pub name: String,
    /// full_time | part_time | chief | coordinator | instructor
    pub kind: String,
    /// Masked: 138****8000.
    pub phone: String,
    /// 1..5; absent when not rated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stars: Option<i32>,
}

impl From<pb::StaffMember> for StaffView {
    fn from(s: pb::StaffMember) -> Self {
        Self {
            worker_id: s.worker_id,
            name: s.name,
            kind: s.kind,
            phone: s.phone_masked,
            stars: (s.stars > 0).then_some(s.stars),
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Staff only", body = Problem),
        (status = 404, description = "No registry building matches the address", body = Problem),
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
    let address = q.address.unwrap_or_default();
    let (lat, lon) = match (q.lat, q.lon) {
        (Some(lat), Some(lon)) => (lat, lon),
        (None, None) if !address.trim().is_empty() => (0.0, 0.0),
        (None, _) => {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "lat",
                "is required (or give an address)",
            ));
        }
        (_, None) => {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "lon",
                "is required (or give an address)",
            ));
        }
    };
    let msg = pb::LocateRequest {
        lat,
        lon,
        as_of: q.as_of.map(to_timestamp),
        address,
    };
    let r = with_retry(state.backends.retries, || {
        let mut client = state.backends.grid.clone();
        let req = request(&caller.token, msg.clone());
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
    use futures::StreamExt;
    // Streamed a page of grids at a time: a province's layer never sits
    // whole in the gateway's or grid's memory.
    let chunks = with_retry(state.backends.retries, || {
        let mut client = state.backends.grid.clone();
        let req = request(&caller.token, pb::ExportLayerRequest { kind: kind.clone() });
        async move { client.stream_export(req?).await }
    })
    .await?
    .into_inner()
    .map(|chunk| {
        chunk
            .map(|c| axum::body::Bytes::from(c.data))
            .map_err(|s| std::io::Error::other(s.message().to_owned()))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
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

#[derive(Debug, Serialize, ToSchema)]
pub struct GridVersionView {
    pub version: i32,
    pub name: String,
    pub valid_from: Option<DateTime<Utc>>,
    /// Absent while current.
    pub valid_to: Option<DateTime<Utc>>,
    /// import | split | merge
    pub cause: String,
    pub predecessors: Vec<String>,
    /// replaced | split | merged; absent while current.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    pub successors: Vec<String>,
    /// GeoJSON geometry of this version.
    pub geometry: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GridDetailView {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub community_code: String,
    /// GeoJSON geometry; null for a grid that no longer exists.
    pub geometry: serde_json::Value,
    /// Professional grids paired with a basic grid, or the reverse.
    pub paired: Vec<String>,
    pub staff: Vec<StaffView>,
    pub history: Vec<GridVersionView>,
}

fn json_or_null(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

/// One grid: shape, pairs, staff and every version (also for a grid that
/// was split or merged away).
#[utoipa::path(
    get,
    path = "/api/v1/grids/{code}",
    tag = "grids",
    params(("code" = String, Path, description = "Grid code")),
    responses(
        (status = 200, description = "The grid", body = GridDetailView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Staff only", body = Problem),
        (status = 404, description = "No such grid, ever", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_grid(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<GridDetailView>, ApiError> {
    let r = with_retry(state.backends.retries, || {
        let mut client = state.backends.grid.clone();
        let req = request(&caller.token, pb::GetGridRequest { code: code.clone() });
        async move { client.get_grid(req?).await }
    })
    .await?
    .into_inner();
    let g = r.grid.unwrap_or_default();
    Ok(Json(GridDetailView {
        code: g.code,
        name: g.name,
        kind: g.kind,
        community_code: r.community_code,
        geometry: json_or_null(&r.geometry),
        paired: r.paired,
        staff: r.staff.into_iter().map(Into::into).collect(),
        history: r
            .history
            .into_iter()
            .map(|v| GridVersionView {
                version: v.version,
                name: v.name,
                valid_from: v.valid_from.as_ref().and_then(from_timestamp),
                valid_to: v.valid_to.as_ref().and_then(from_timestamp),
                cause: v.cause,
                predecessors: v.predecessors,
                ended_by: (!v.ended_by.is_empty()).then_some(v.ended_by),
                successors: v.successors,
                geometry: json_or_null(&v.geometry),
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GridChangeView {
    pub ended: Vec<String>,
    pub created: Vec<String>,
    /// When the old grids ended and the new began (for `as_of` lookups).
    pub at: Option<DateTime<Utc>>,
    /// The tenant's layer version after the change.
    pub version: i64,
}

impl From<pb::GridChange> for GridChangeView {
    fn from(c: pb::GridChange) -> Self {
        Self {
            ended: c.ended,
            created: c.created,
            at: c.at.as_ref().and_then(from_timestamp),
            version: c.version,
        }
    }
}

/// Split a grid into parts that cover it exactly (tenant admin). The body
/// is a FeatureCollection of the parts (properties code, name); they take
/// the grid's kind and community, its workers and pairs. Refused (422,
/// `field` = `parts_geojson`) when a part reaches outside, parts overlap or
/// leave a gap.
#[utoipa::path(
    post,
    path = "/api/v1/admin/grids/{code}/split",
    tag = "grids",
    params(("code" = String, Path, description = "The grid to split")),
    request_body(content = String, description = "FeatureCollection of the parts", content_type = "application/geo+json"),
    responses(
        (status = 200, description = "Split", body = GridChangeView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 404, description = "No such grid", body = Problem),
        (status = 422, description = "The parts do not replace the grid exactly", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn split_grid(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<GridChangeView>, ApiError> {
    let parts_geojson = crate::extract::text_body(
        &headers,
        &body,
        &["application/geo+json", "application/json"],
        "the parts",
        "parts_geojson",
    )?;
    let mut client = state.backends.grid.clone();
    let req = request(
        &caller.token,
        pb::SplitGridRequest {
            code,
            parts_geojson,
        },
    )?;
    Ok(Json(client.split_grid(req).await?.into_inner().into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// Grids of one kind and community.
    pub codes: Vec<String>,
    /// The merged grid's code (may be one of `codes`).
    pub code: String,
    #[serde(default)]
    pub name: String,
}

/// Merge grids of one kind and community into their union (tenant admin).
#[utoipa::path(
    post,
    path = "/api/v1/admin/grids/merge",
    tag = "grids",
    request_body = MergeBody,
    responses(
        (status = 200, description = "Merged", body = GridChangeView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 422, description = "Unknown grids, or of different kinds or communities", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn merge_grids(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<MergeBody>,
) -> Result<Json<GridChangeView>, ApiError> {
    let mut client = state.backends.grid.clone();
    let req = request(
        &caller.token,
        pb::MergeGridsRequest {
            codes: b.codes,
            code: b.code,
            name: b.name,
        },
    )?;
    Ok(Json(client.merge_grids(req).await?.into_inner().into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PairsImport {
    pub pairs: u32,
}

/// Pair professional grids (警格...) with basic grids, CSV
/// `professional_code,basic_code`; the listed professional grids' pairs are
/// replaced (tenant admin).
#[utoipa::path(
    put,
    path = "/api/v1/admin/grid-pairs",
    tag = "grids",
    request_body(content = String, description = "CSV with the header professional_code,basic_code", content_type = "text/csv"),
    responses(
        (status = 200, description = "Imported", body = PairsImport),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 422, description = "Bad lines, all named", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn import_pairs(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<PairsImport>, ApiError> {
    let csv = crate::extract::text_body(&headers, &body, &["text/csv"], "the pairs", "csv")?;
    let mut client = state.backends.grid.clone();
    let req = request(&caller.token, pb::PairsCsv { csv })?;
    let r = client.import_pairs(req).await?.into_inner();
    Ok(Json(PairsImport { pairs: r.pairs }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BuildingsImport {
    pub buildings: u32,
    /// Buildings whose point lies in no basic grid.
    pub outside: Vec<String>,
}

/// The building registry (门牌), CSV `code,address,lat,lon` (tenant admin):
/// locates requests that come with an address but no point.
#[utoipa::path(
    put,
    path = "/api/v1/admin/buildings",
    tag = "grids",
    request_body(content = String, description = "CSV with the header code,address,lat,lon", content_type = "text/csv"),
    responses(
        (status = 200, description = "Imported", body = BuildingsImport),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 422, description = "Bad lines, all named", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn import_buildings(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<BuildingsImport>, ApiError> {
    let csv = crate::extract::text_body(&headers, &body, &["text/csv"], "the buildings", "csv")?;
    let mut client = state.backends.grid.clone();
    let req = request(&caller.token, pb::BuildingsCsv { csv })?;
    let r = client.import_buildings(req).await?.into_inner();
    Ok(Json(BuildingsImport {
        buildings: r.buildings,
        outside: r.outside,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LayerImportView {
    pub id: String,
    /// receiving | storing | done | failed
    pub status: String,
    pub bytes_received: u64,
    /// From Content-Length; 0 when the client did not send it.
    pub total_bytes: u64,
    /// bytes_received / total_bytes, 0..1; absent without a total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    pub features_read: u32,
    pub created: u32,
    pub updated: u32,
    pub problems: Vec<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<pb::LayerImport> for LayerImportView {
    fn from(j: pb::LayerImport) -> Self {
        let progress =
            (j.total_bytes > 0).then(|| (j.bytes_received as f64 / j.total_bytes as f64).min(1.0));
        Self {
            id: j.id,
            status: j.status,
            bytes_received: j.bytes_received,
            total_bytes: j.total_bytes,
            progress,
            features_read: j.features_read,
            created: j.created,
            updated: j.updated,
            problems: j.problems,
            started_at: j.started_at.as_ref().and_then(from_timestamp),
            finished_at: j.finished_at.as_ref().and_then(from_timestamp),
        }
    }
}

/// Import a large layer as a stream (tenant admin): the client chooses the
/// import's id (a UUID) and streams the FeatureCollection; grid parses it
/// feature by feature as it arrives. Meanwhile `GET` on the same path
/// reports the bytes received and the features read. The answer is the
/// finished import; a refused layer answers 422 naming its problems
/// (nothing is stored).
#[utoipa::path(
    put,
    path = "/api/v1/admin/grid-imports/{id}",
    tag = "grids",
    params(("id" = String, Path, description = "A new UUID the client chooses")),
    request_body(content = String, description = "FeatureCollection, streamed", content_type = "application/geo+json"),
    responses(
        (status = 200, description = "Imported", body = LayerImportView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 409, description = "An import with this id already ran", body = Problem),
        (status = 415, description = "Not GeoJSON", body = Problem),
        (status = 422, description = "The layer was refused; every problem named", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn stream_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<LayerImportView>, ApiError> {
    use futures::StreamExt;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !content_type.starts_with("application/geo+json")
        && !content_type.starts_with("application/json")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the layer as application/geo+json",
        ));
    }
    let total_bytes = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let first = pb::LayerChunk {
        import_id: id,
        total_bytes,
        data: Vec::new(),
    };
    // A body that breaks off ends the stream: grid then refuses the
    // truncated document.
    let chunks = futures::stream::once(async move { first }).chain(
        body.into_data_stream()
            .take_while(|chunk| futures::future::ready(chunk.is_ok()))
            .filter_map(|chunk| {
                futures::future::ready(chunk.ok().map(|data| pb::LayerChunk {
                    data: data.to_vec(),
                    ..Default::default()
                }))
            }),
    );
    let mut client = state.backends.grid.clone();
    let job: LayerImportView = client
        .stream_layer(request(&caller.token, chunks)?)
        .await?
        .into_inner()
        .into();
    if job.status == "failed" {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "geojson",
            job.problems.join("; "),
        ));
    }
    Ok(Json(job))
}

/// A streamed import's progress (or outcome), from any gateway and grid
/// replica.
#[utoipa::path(
    get,
    path = "/api/v1/admin/grid-imports/{id}",
    tag = "grids",
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 200, description = "Progress", body = LayerImportView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 404, description = "No such import", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<LayerImportView>, ApiError> {
    let r = with_retry(state.backends.retries, || {
        let mut client = state.backends.grid.clone();
        let req = request(
            &caller.token,
            pb::GetImportRequest {
                import_id: id.clone(),
            },
        );
        async move { client.get_import(req?).await }
    })
    .await?
    .into_inner();
    Ok(Json(r.into()))
}
