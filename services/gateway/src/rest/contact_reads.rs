//! The audit of a caller's contact: every time intake handed the phone
//! number and name of a ticket's caller to another service (the
//! notification path), with the reading key, the purpose and the time.
//! Tenant admins only; nothing personal is in the answer.

use jiesu_proto::intake::{ContactRead, ListContactReadsRequest};

use super::{at, prelude::*};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_contact_reads))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactReadView {
    /// First 12 hex digits of the reading service key's SHA-256.
    #[schema(example = "61709366bfa1")]
    pub client: String,
    /// Why it was read, e.g. `notification:<notification id>`.
    pub purpose: String,
    pub at: Option<DateTime<Utc>>,
}

impl From<ContactRead> for ContactReadView {
    fn from(r: ContactRead) -> Self {
        Self {
            client: r.client,
            purpose: r.purpose,
            at: at(r.at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactReadsPage {
    /// Oldest first.
    pub reads: Vec<ContactReadView>,
}

/// Who was handed this ticket's caller contact, when and why (tenant admin).
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}/contact-reads",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    responses(
        (status = 200, description = "Every hand-over, oldest first", body = ContactReadsPage),
        TenantAdmin,
        (status = 404, description = "No such ticket in the caller's scope", body = Problem),
        (status = 422, description = "The id is not a ticket id", body = Problem),
    ),
)]
pub async fn list_contact_reads(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ContactReadsPage>, ApiError> {
    if !jiesu_common::ids::is_id(&id) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id",
            tr!("必须是诉求的 ID（UUID）", "must be a ticket id (UUID)"),
        ));
    }
    let msg = ListContactReadsRequest { ticket_id: id };
    let r = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.list_contact_reads(r).await)
        .await?;
    Ok(Json(ContactReadsPage {
        reads: r.reads.into_iter().map(Into::into).collect(),
    }))
}
