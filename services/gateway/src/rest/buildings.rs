//! `/api/v1/admin/buildings`: the building registry (门牌) that locates
//! requests coming with an address but no point. A large file: the route
//! takes `gateway.max_layer_bytes`.

use jiesu_proto::grid as pb;

use super::prelude::*;

pub fn routes(cfg: &GatewayConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_buildings).layer(DefaultBodyLimit::max(cfg.max_layer_bytes)))
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
        TenantAdmin,
        TextInput,
        (status = 422, description = "Bad lines, all named", body = Problem),
    ),
)]
pub async fn import_buildings(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<BuildingsImport>, ApiError> {
    let csv = text_body(
        &headers,
        &body,
        &["text/csv"],
        ("楼栋登记", "the buildings"),
        "csv",
    )?;
    let msg = pb::BuildingsCsv { csv };
    let r = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.import_buildings(r).await)
        .await?;
    Ok(Json(BuildingsImport {
        buildings: r.buildings,
        outside: r.outside,
    }))
}
