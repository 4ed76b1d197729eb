//! 并件: a ticket's likely duplicates, merging it into an open master and
//! undoing that.

use jiesu_proto::{
    intake::{DuplicateCandidate, FindDuplicatesRequest, MergeTicketRequest, UnmergeTicketRequest},
    time::from_timestamp,
};

use super::prelude::*;
use crate::rest::tickets::TicketStatus;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(duplicates))
        .routes(routes!(merge))
        .routes(routes!(unmerge))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicateView {
    pub ticket_id: String,
    pub tracking_no: String,
    pub status: String,
    pub category: String,
    pub created_at: Option<DateTime<Utc>>,
    /// 0 to 1, what candidates are ranked by.
    pub score: f64,
    pub text_likeness: f64,
    pub same_caller: bool,
    /// Why (zh-CN), e.g. `内容相似 82%，同一地址，同一分类`.
    pub reasons: String,
    /// The same caller about the same problem within 24 hours.
    pub clear_case: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Duplicates {
    /// At most ten, best first.
    pub candidates: Vec<DuplicateView>,
    /// Earlier tickets of the window compared.
    pub compared: i32,
}

/// Earlier open tickets that are likely the same problem (并件 candidates).
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}/duplicates",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    responses(
        (status = 200, description = "Candidates, best first", body = Duplicates),
        Authenticated,
        (status = 403, description = "Agents, dispatchers and supervisors only", body = Problem),
        (status = 404, description = "No such ticket in the caller's scope", body = Problem),
    ),
)]
pub async fn duplicates(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Duplicates>, ApiError> {
    let msg = FindDuplicatesRequest { ticket_id: id };
    let resp = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.find_duplicates(r).await)
        .await?;
    Ok(Json(Duplicates {
        compared: resp.compared,
        candidates: resp.candidates.into_iter().map(duplicate_view).collect(),
    }))
}

pub fn duplicate_view(c: DuplicateCandidate) -> DuplicateView {
    DuplicateView {
        ticket_id: c.ticket_id,
        tracking_no: c.tracking_no,
        status: c.status,
        category: c.category,
        created_at: c.created_at.as_ref().and_then(from_timestamp),
        score: c.score,
        text_likeness: c.text_likeness,
        same_caller: c.same_caller,
        reasons: c.reasons,
        clear_case: c.clear_case,
    }
}

// Named apart from the grids' `MergeBody`: the document has one schema per
// name, and the ticket merge was documented with the grids' body before.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketMergeBody {
    /// The open ticket this one joins (主件).
    pub master_id: String,
    /// Why, optional, up to 500 characters.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmergeBody {
    /// Why the tickets are not the same problem, up to 500 characters.
    pub reason: String,
}

/// Merge a ticket into another open one (并件); it then follows the
/// master's status and its caller is told.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/merge",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    request_body = TicketMergeBody,
    responses(
        (status = 200, description = "Merged", body = TicketStatus),
        Authenticated,
        JsonInput,
        (status = 403, description = "Agents, dispatchers and supervisors only", body = Problem),
        (status = 404, description = "No such ticket or master in the caller's scope", body = Problem),
        (status = 409, description = "`ticket_closed`, `already_merged`, `has_merged_tickets`, `master_closed` or `master_merged`", body = Problem),
    ),
)]
pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TicketMergeBody>,
) -> Result<Json<TicketStatus>, ApiError> {
    let msg = MergeTicketRequest {
        ticket_id: id,
        master_id: body.master_id,
        note: body.note.unwrap_or_default(),
    };
    let ticket = state
        .intake(&caller)
        .once(msg, async |mut c, r| c.merge_ticket(r).await)
        .await?;
    Ok(Json(ticket.into()))
}

/// Undo a merge: the ticket is handled on its own again.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/unmerge",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    request_body = UnmergeBody,
    responses(
        (status = 200, description = "Unmerged", body = TicketStatus),
        Authenticated,
        JsonInput,
        (status = 403, description = "Agents, dispatchers and supervisors only", body = Problem),
        (status = 404, description = "No such ticket in the caller's scope", body = Problem),
        (status = 409, description = "`not_merged`", body = Problem),
    ),
)]
pub async fn unmerge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UnmergeBody>,
) -> Result<Json<TicketStatus>, ApiError> {
    let msg = UnmergeTicketRequest {
        ticket_id: id,
        reason: body.reason,
    };
    let ticket = state
        .intake(&caller)
        .once(msg, async |mut c, r| c.unmerge_ticket(r).await)
        .await?;
    Ok(Json(ticket.into()))
}
