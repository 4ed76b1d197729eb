//! `/api/v1/kb` and `/api/v1/admin/kb`: the knowledge base agents answer
//! consultations from directly (直接答复).

use jiesu_proto::intake::{KbEntry, RetireKbEntryRequest, SearchKbRequest};

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_entry))
        .routes(routes!(update_entry))
        .routes(routes!(retire_entry))
        .routes(routes!(search))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KbEntryBody {
    #[schema(example = "灵活就业人员如何参加养老保险")]
    pub title: String,
    /// The answer agents give, up to 4000 characters.
    pub body: String,
    /// Category codes (leaf or group) the entry answers.
    #[serde(default)]
    pub categories: Vec<String>,
    /// `YYYY-MM-DD` (China day); default today.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// `YYYY-MM-DD`; open-ended when absent.
    #[serde(default)]
    pub valid_to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KbEntryView {
    pub id: String,
    pub title: String,
    pub body: String,
    pub categories: Vec<String>,
    pub valid_from: String,
    pub valid_to: Option<String>,
    pub active: bool,
}

impl From<KbEntry> for KbEntryView {
    fn from(e: KbEntry) -> Self {
        Self {
            id: e.id,
            title: e.title,
            body: e.body,
            categories: e.categories,
            valid_from: e.valid_from,
            valid_to: (!e.valid_to.is_empty()).then_some(e.valid_to),
            active: e.active,
        }
    }
}

fn entry_msg(id: String, b: KbEntryBody) -> KbEntry {
    KbEntry {
        id,
        title: b.title,
        body: b.body,
        categories: b.categories,
        valid_from: b.valid_from.unwrap_or_default(),
        valid_to: b.valid_to.unwrap_or_default(),
        active: true,
    }
}

async fn save(state: &AppState, caller: &Caller, msg: KbEntry) -> Result<KbEntryView, ApiError> {
    let saved = state
        .intake(caller)
        .once(msg, async |mut c, r| c.save_kb_entry(r).await)
        .await?;
    Ok(saved.into())
}

/// Add a knowledge-base entry (tenant admin).
#[utoipa::path(
    post,
    path = "/api/v1/admin/kb",
    tag = "knowledge",
    request_body = KbEntryBody,
    responses(
        (status = 201, description = "Created", body = KbEntryView),
        TenantAdmin,
        JsonInput,
    ),
)]
pub async fn create_entry(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<KbEntryBody>,
) -> Result<Response, ApiError> {
    let e = save(&state, &caller, entry_msg(String::new(), body)).await?;
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

/// Change a knowledge-base entry (tenant admin).
#[utoipa::path(
    put,
    path = "/api/v1/admin/kb/{id}",
    tag = "knowledge",
    params(("id" = String, Path, format = Uuid, description = "Entry id")),
    request_body = KbEntryBody,
    responses(
        (status = 200, description = "Saved", body = KbEntryView),
        TenantAdmin,
        JsonInput,
        (status = 404, description = "No such entry in the tenant", body = Problem),
    ),
)]
pub async fn update_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<KbEntryBody>,
) -> Result<Json<KbEntryView>, ApiError> {
    if !jiesu_common::ids::is_id(&id) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id",
            tr!(
                "必须是知识库条目的 ID（UUID）",
                "must be an entry id (UUID)"
            ),
        ));
    }
    Ok(Json(save(&state, &caller, entry_msg(id, body)).await?))
}

/// Retire an entry: agents no longer find or use it.
#[utoipa::path(
    post,
    path = "/api/v1/admin/kb/{id}/retire",
    tag = "knowledge",
    params(("id" = String, Path, format = Uuid, description = "Entry id")),
    responses(
        (status = 200, description = "Retired", body = KbEntryView),
        TenantAdmin,
        (status = 404, description = "No such entry in the tenant", body = Problem),
    ),
)]
pub async fn retire_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KbEntryView>, ApiError> {
    let msg = RetireKbEntryRequest { id };
    let retired = state
        .intake(&caller)
        .once(msg, async |mut c, r| c.retire_kb_entry(r).await)
        .await?;
    Ok(Json(retired.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KbSearchBody {
    /// What the caller asks, as the agent typed it, up to 4000 characters.
    #[schema(example = "灵活就业怎么交养老保险", min_length = 1, max_length = 4000)]
    pub text: String,
    /// Leaf category of the call, if chosen: its entries rank higher.
    #[serde(default)]
    pub category: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KbHitView {
    pub entry: KbEntryView,
    /// 0 to 1.
    pub score: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KbHits {
    /// At most five entries valid today, best first.
    pub hits: Vec<KbHitView>,
}

/// Search the knowledge base from the agent's text.
#[utoipa::path(
    post,
    path = "/api/v1/kb/search",
    tag = "knowledge",
    request_body = KbSearchBody,
    responses(
        (status = 200, description = "Matching entries valid today", body = KbHits),
        Authenticated,
        JsonInput,
        (status = 403, description = "Agents and tenant admins only", body = Problem),
        (status = 422, description = "text missing or too long", body = Problem),
    ),
)]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<KbSearchBody>,
) -> Result<Json<KbHits>, ApiError> {
    let msg = SearchKbRequest {
        text: body.text,
        category: body.category.unwrap_or_default(),
    };
    let resp = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.search_kb(r).await)
        .await?;
    Ok(Json(KbHits {
        hits: resp
            .hits
            .into_iter()
            .map(|h| KbHitView {
                entry: h.entry.unwrap_or_default().into(),
                score: h.score,
            })
            .collect(),
    }))
}
