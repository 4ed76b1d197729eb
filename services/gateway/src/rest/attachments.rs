//! `/api/v1/tickets/{id}/attachments`: photos and recordings. Uploads have
//! their own, larger body limit (`gateway.max_attachment_bytes`).

use axum::http::HeaderValue;
use jiesu_proto::intake::{GetAttachmentRequest, UploadAttachmentRequest};

use super::prelude::*;
use crate::{
    rest::tickets::work_order,
    view::ticket::{AttachmentView, attachment_view},
};

pub fn routes(cfg: &GatewayConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload).layer(DefaultBodyLimit::max(cfg.max_attachment_bytes)))
        .routes(routes!(download))
}

/// Attach a photo or recording: the raw bytes as the body. The type is
/// taken from the content, not from Content-Type or a file name.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/attachments",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    request_body(content = Vec<u8>, description = "JPEG, PNG, GIF, WebP, HEIC, MP3, M4A, AMR, WAV or Ogg bytes", content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored (the same file again answers the first)", body = AttachmentView),
        Authenticated,
        (status = 403, description = "Citizen owner, agent or grid worker only", body = Problem),
        (status = 404, description = "No such ticket for the caller", body = Problem),
        (status = 409, description = "The ticket is closed", body = Problem),
        (status = 413, description = "Larger than the gateway accepts", body = Problem),
        (status = 422, description = "Not an accepted type, too large for its kind, or too many", body = Problem),
    ),
)]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let msg = UploadAttachmentRequest {
        ticket_id: id.clone(),
        data: body.to_vec(),
    };
    let a = state
        .intake(&caller)
        .once(msg, async |mut c, r| c.upload_attachment(r).await)
        .await?;
    Ok((StatusCode::CREATED, Json(attachment_view(&id, a))).into_response())
}

/// The attachment's bytes, for whoever may see the ticket.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}/attachments/{attachment_id}",
    tag = "tickets",
    params(
        ("id" = String, Path, format = Uuid, description = "Ticket id"),
        ("attachment_id" = String, Path, format = Uuid, description = "Attachment id"),
    ),
    responses(
        (status = 200, description = "The bytes, with their content type", content_type = "application/octet-stream"),
        Authenticated,
        (status = 403, description = "Mediators and platform operators; a handler token naming a unit it may not act for (`wrong_unit`)", body = Problem),
        (status = 404, description = "No such ticket or attachment for the caller", body = Problem),
        (status = 503, description = "Dispatch cannot say whether the caller's unit may see the ticket", body = Problem),
    ),
)]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, attachment_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let msg = GetAttachmentRequest {
        ticket_id: id.clone(),
        attachment_id,
    };
    let resp = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.get_attachment(r).await)
        .await?;
    // A unit's handler sees a ticket's attachments only when dispatch shows
    // it the ticket's work order, as for the ticket itself (decision 0026).
    if caller.principal.reads_as_unit().is_some() {
        let mut degraded = Vec::new();
        if work_order(&state, &caller, &id, &mut degraded)
            .await?
            .is_none()
        {
            return Err(if degraded.is_empty() {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    tr!("未找到诉求", "ticket not found"),
                )
            } else {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    tr!(
                        "后台服务暂不可用，请稍后重试",
                        "a backend service is unavailable; retry shortly"
                    ),
                )
            });
        }
    }
    let ct = resp
        .attachment
        .map(|a| a.content_type)
        .unwrap_or_else(|| "application/octet-stream".into());
    let mut r = resp.data.into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    Ok(r)
}
