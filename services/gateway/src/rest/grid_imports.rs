//! `/api/v1/admin/grid-imports/{id}`: a large layer streamed to grid as it
//! arrives, and its progress. The body is read as a stream, so no body
//! limit applies here; grid bounds what one import may send.

use axum::body::Body;
use futures::StreamExt;
use jiesu_proto::{grid as pb, time::from_timestamp};

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_import, stream_import))
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
            // In the caller's language (grid keeps both).
            problems: match crate::error::lang() {
                Lang::En if j.problems_en.len() == j.problems.len() => j.problems_en,
                _ => j.problems,
            },
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
    params(("id" = String, Path, format = Uuid, description = "A new UUID the client chooses")),
    request_body(content = String, description = "FeatureCollection, streamed", content_type = "application/geo+json"),
    responses(
        (status = 200, description = "Imported", body = LayerImportView),
        TenantAdmin,
        (status = 409, description = "An import with this id already ran", body = Problem),
        (status = 415, description = "Not GeoJSON", body = Problem),
        (status = 422, description = "The layer was refused; every problem named", body = Problem),
    ),
)]
pub async fn stream_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<LayerImportView>, ApiError> {
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
            tr!(
                "请以 application/geo+json 格式发送图层",
                "send the layer as application/geo+json"
            ),
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
    let job = state
        .grid(&caller)
        .once(chunks, async |mut c, r| c.stream_layer(r).await)
        .await?;
    if job.status == "failed" {
        let problems: Vec<Text> = job
            .problems
            .iter()
            .zip(
                job.problems_en
                    .iter()
                    .chain(std::iter::repeat(&String::new())),
            )
            .map(|(zh, en)| Text::new(zh, if en.is_empty() { zh } else { en }))
            .collect();
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "geojson",
            Text::join(&problems),
        ));
    }
    Ok(Json(job.into()))
}

/// A streamed import's progress (or outcome), from any gateway and grid
/// replica.
#[utoipa::path(
    get,
    path = "/api/v1/admin/grid-imports/{id}",
    tag = "grids",
    params(("id" = String, Path, format = Uuid, description = "The import's id")),
    responses(
        (status = 200, description = "Progress", body = LayerImportView),
        TenantAdmin,
        (status = 404, description = "No such import", body = Problem),
    ),
)]
pub async fn get_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<LayerImportView>, ApiError> {
    let msg = pb::GetImportRequest { import_id: id };
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.get_import(r).await)
        .await?;
    Ok(Json(r.into()))
}
