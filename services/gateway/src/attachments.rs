//! `/api/v1/tickets/{id}/attachments`: photos and recordings.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use jiesu_proto::{
    intake::{Attachment, GetAttachmentRequest, UploadAttachmentRequest},
    time::from_timestamp,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    AppState,
    backend::{request, with_retry},
    error::{ApiError, Problem},
    extract::{Caller, RawBody},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: String,
    /// `image` or `audio`.
    pub kind: String,
    /// Decided from the bytes: image/jpeg, image/png, audio/amr, ...
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_at: Option<DateTime<Utc>>,
    /// Where to fetch it (same authorisation as the ticket).
    pub url: String,
}

pub fn view(ticket_id: &str, a: Attachment) -> AttachmentView {
    AttachmentView {
        url: format!("/api/v1/tickets/{ticket_id}/attachments/{}", a.id),
        id: a.id,
        kind: a.kind,
        content_type: a.content_type,
        size_bytes: a.size_bytes,
        sha256: a.sha256,
        created_at: a.created_at.as_ref().and_then(from_timestamp),
    }
}

/// Attach a photo or recording: the raw bytes as the body. The type is
/// taken from the content, not from Content-Type or a file name.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/attachments",
    tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body(content = Vec<u8>, description = "JPEG, PNG, GIF, WebP, HEIC, MP3, M4A, AMR, WAV or Ogg bytes", content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored (the same file again answers the first)", body = AttachmentView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Citizen owner, agent or grid worker only", body = Problem),
        (status = 404, description = "No such ticket for the caller", body = Problem),
        (status = 409, description = "The ticket is closed", body = Problem),
        (status = 413, description = "Larger than the gateway accepts", body = Problem),
        (status = 422, description = "Not an accepted type, too large for its kind, or too many", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let mut client = state.backends.intake.clone();
    let req = request(
        &caller.token,
        UploadAttachmentRequest {
            ticket_id: id.clone(),
            data: body.to_vec(),
        },
    )?;
    let a = client.upload_attachment(req).await?.into_inner();
    Ok((StatusCode::CREATED, Json(view(&id, a))).into_response())
}

/// The attachment's bytes, for whoever may see the ticket.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}/attachments/{attachment_id}",
    tag = "tickets",
    params(
        ("id" = String, Path, description = "Ticket id"),
        ("attachment_id" = String, Path, description = "Attachment id"),
    ),
    responses(
        (status = 200, description = "The bytes, with their content type", content_type = "application/octet-stream"),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 404, description = "No such ticket or attachment for the caller", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, attachment_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(
            &caller.token,
            GetAttachmentRequest {
                ticket_id: id.clone(),
                attachment_id: attachment_id.clone(),
            },
        );
        async move { client.get_attachment(req?).await }
    })
    .await?
    .into_inner();
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
