//! Grids (网格): one grid with its history (`/api/v1/grids/{code}`), the
//! tenant's layer as GeoJSON, splitting and merging grids, and pairing
//! professional grids with basic ones. Layers, split parts and pairs can be
//! large files: those routes take `gateway.max_layer_bytes`.

use futures::StreamExt;
use jiesu_proto::{grid as pb, time::from_timestamp};

use super::prelude::*;

pub fn routes(cfg: &GatewayConfig) -> OpenApiRouter<AppState> {
    let layer = DefaultBodyLimit::max(cfg.max_layer_bytes);
    OpenApiRouter::new()
        .routes(routes!(get_grid))
        .routes(routes!(export_layer, import_layer).layer(layer))
        .routes(routes!(split_grid).layer(layer))
        .routes(routes!(merge_grids))
        .routes(routes!(import_pairs).layer(layer))
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
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 404, description = "No such grid, ever", body = Problem),
    ),
)]
pub async fn get_grid(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<GridDetailView>, ApiError> {
    let msg = pb::GetGridRequest { code };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.get_grid(r).await)
        .await?;
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// basic | micro | dedicated | professional; all kinds when absent.
    #[param(pattern = "^(basic|micro|dedicated|professional)?$")]
    pub kind: Option<String>,
}

/// A layer of grids: a GeoJSON FeatureCollection (RFC 7946), the format the
/// import reads. The gateway streams grid's bytes; this type only describes
/// them.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct GridLayer {
    /// Always `FeatureCollection`.
    #[serde(rename = "type")]
    #[schema(example = "FeatureCollection")]
    pub kind: String,
    pub features: Vec<GridFeature>,
}

/// One grid of a [`GridLayer`].
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct GridFeature {
    /// Always `Feature`.
    #[serde(rename = "type")]
    #[schema(example = "Feature")]
    pub kind: String,
    /// A GeoJSON Polygon or MultiPolygon (lon, lat; WGS 84).
    #[schema(value_type = Object)]
    pub geometry: serde_json::Value,
    pub properties: GridProperties,
}

/// What a [`GridFeature`] says about its grid.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct GridProperties {
    #[schema(example = "370202006001-174")]
    pub code: String,
    pub name: String,
    /// basic | micro | dedicated | professional
    pub kind: String,
    /// The 12-digit community the grid belongs to.
    #[schema(example = "370202006001")]
    pub community_code: String,
}

/// The tenant's grids as a GeoJSON FeatureCollection (the import format).
#[utoipa::path(
    get,
    path = "/api/v1/admin/grids",
    tag = "grids",
    params(ExportQuery),
    responses(
        (status = 200, description = "The layer, streamed", body = GridLayer, content_type = "application/geo+json"),
        Authenticated,
        (status = 403, description = "Admins, dispatchers and supervisors only", body = Problem),
    ),
)]
pub async fn export_layer(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let kind = q.kind.unwrap_or_default();
    // Streamed a page of grids at a time: a province's layer never sits
    // whole in the gateway's or grid's memory.
    let msg = pb::ExportLayerRequest { kind };
    let chunks = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.stream_export(r).await)
        .await?
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
        TenantAdmin,
        TextInput,
        (status = 422, description = "Bad features or overlaps, all named", body = Problem),
    ),
)]
pub async fn import_layer(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<LayerImport>, ApiError> {
    let geojson = text_body(
        &headers,
        &body,
        &["application/geo+json", "application/json"],
        ("图层", "the layer"),
        "geojson",
    )?;
    let msg = pb::ImportLayerRequest { geojson };
    let r = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.import_layer(r).await)
        .await?;
    Ok(Json(LayerImport {
        created: r.created,
        updated: r.updated,
        total: r.total,
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
        TenantAdmin,
        TextInput,
        (status = 404, description = "No such grid", body = Problem),
        (status = 422, description = "The parts do not replace the grid exactly", body = Problem),
    ),
)]
pub async fn split_grid(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<GridChangeView>, ApiError> {
    let parts_geojson = text_body(
        &headers,
        &body,
        &["application/geo+json", "application/json"],
        ("拆分后的各部分", "the parts"),
        "parts_geojson",
    )?;
    let msg = pb::SplitGridRequest {
        code,
        parts_geojson,
    };
    let change = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.split_grid(r).await)
        .await?;
    Ok(Json(change.into()))
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
        TenantAdmin,
        JsonInput,
        (status = 422, description = "Unknown grids, or of different kinds or communities", body = Problem),
    ),
)]
pub async fn merge_grids(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<MergeBody>,
) -> Result<Json<GridChangeView>, ApiError> {
    let msg = pb::MergeGridsRequest {
        codes: b.codes,
        code: b.code,
        name: b.name,
    };
    let change = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.merge_grids(r).await)
        .await?;
    Ok(Json(change.into()))
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
        TenantAdmin,
        TextInput,
        (status = 422, description = "Bad lines, all named", body = Problem),
    ),
)]
pub async fn import_pairs(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<PairsImport>, ApiError> {
    let csv = text_body(
        &headers,
        &body,
        &["text/csv"],
        ("网格对应关系", "the pairs"),
        "csv",
    )?;
    let msg = pb::PairsCsv { csv };
    let r = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.import_pairs(r).await)
        .await?;
    Ok(Json(PairsImport { pairs: r.pairs }))
}
