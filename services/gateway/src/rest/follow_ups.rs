//! What the citizen (or an agent for them) does after submitting: add
//! information (补充信息) and withdraw (撤回). Both are writes, sent once.

use jiesu_proto::intake::{AddInformationRequest, WithdrawTicketRequest};

use super::prelude::*;
use crate::rest::tickets::TicketStatus;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_information))
        .routes(routes!(withdraw))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InformationBody {
    /// What the citizen adds, up to 2000 characters.
    #[schema(example = "补充：噪音主要在周末上午")]
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    /// Why, optional, up to 500 characters.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The citizen (or an agent for them) adds information (补充信息).
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/information",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    request_body = InformationBody,
    responses(
        (status = 201, description = "Added to the ticket", body = TicketStatus),
        Authenticated,
        JsonInput,
        (status = 403, description = "Only the citizen or an agent", body = Problem),
        (status = 404, description = "No such ticket of the caller", body = Problem),
        (status = 409, description = "The ticket is closed (`ticket_closed`)", body = Problem),
    ),
)]
pub async fn add_information(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<InformationBody>,
) -> Result<Response, ApiError> {
    let msg = AddInformationRequest {
        ticket_id: id,
        text: body.text,
    };
    let t = state
        .intake(&caller)
        .once(msg, async |mut c, r| c.add_information(r).await)
        .await?;
    Ok((StatusCode::CREATED, Json(TicketStatus::from(t))).into_response())
}

/// The citizen (or an agent for them) withdraws the ticket (撤回).
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/withdraw",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    request_body = WithdrawBody,
    responses(
        (status = 200, description = "Withdrawn", body = TicketStatus),
        Authenticated,
        JsonInput,
        (status = 403, description = "Only the citizen or an agent", body = Problem),
        (status = 404, description = "No such ticket of the caller", body = Problem),
        (status = 409, description = "The ticket is already closed (`ticket_closed`)", body = Problem),
    ),
)]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<WithdrawBody>,
) -> Result<Json<TicketStatus>, ApiError> {
    let msg = WithdrawTicketRequest {
        ticket_id: id,
        reason: body.reason.unwrap_or_default(),
    };
    let t = state
        .intake(&caller)
        .once(msg, async |mut c, r| c.withdraw_ticket(r).await)
        .await?;
    Ok(Json(t.into()))
}
