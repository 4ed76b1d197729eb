//! `/api/v1/broadcasts`: a command or emergency notice to the residents'
//! groups of grids; notification delivers it.

use jiesu_proto::grid as pb;

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(broadcast))
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
    #[schema(pattern = "^(command|emergency)$")]
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
        Authenticated,
        JsonInput,
        (status = 403, response = SupervisorsAndAdmins),
        (status = 422, description = "Unknown grids, or no text", body = Problem),
    ),
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
    let r = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.broadcast(r).await)
        .await?;
    Ok(Json(BroadcastView {
        id: r.id,
        grid_codes: r.grid_codes,
    }))
}
