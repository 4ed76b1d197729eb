//! The knowledge base for direct answers (直接答复) and intake's counts.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use jiesu_proto::{
    intake::{IntakeStatsRequest, KbEntry, RetireKbEntryRequest, SearchKbRequest},
    time::to_timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    backend::{request, with_retry},
    error::{ApiError, Problem},
    extract::{Caller, JsonBody},
};

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
    let mut client = state.backends.intake.clone();
    let req = request(&caller.token, msg)?;
    Ok(client.save_kb_entry(req).await?.into_inner().into())
}

/// Add a knowledge-base entry (tenant admin).
#[utoipa::path(
    post,
    path = "/api/v1/admin/kb",
    tag = "knowledge",
    request_body = KbEntryBody,
    responses(
        (status = 201, description = "Created", body = KbEntryView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
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
    params(("id" = String, Path, description = "Entry id")),
    request_body = KbEntryBody,
    responses(
        (status = 200, description = "Saved", body = KbEntryView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 404, description = "No such entry in the tenant", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
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
            "must be an entry id (UUID)",
        ));
    }
    Ok(Json(save(&state, &caller, entry_msg(id, body)).await?))
}

/// Retire an entry: agents no longer find or use it.
#[utoipa::path(
    post,
    path = "/api/v1/admin/kb/{id}/retire",
    tag = "knowledge",
    params(("id" = String, Path, description = "Entry id")),
    responses(
        (status = 200, description = "Retired", body = KbEntryView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 404, description = "No such entry in the tenant", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn retire_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KbEntryView>, ApiError> {
    let mut client = state.backends.intake.clone();
    let req = request(&caller.token, RetireKbEntryRequest { id })?;
    Ok(Json(client.retire_kb_entry(req).await?.into_inner().into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KbSearchBody {
    /// What the caller asks, as the agent typed it.
    #[schema(example = "灵活就业怎么交养老保险")]
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Agents and tenant admins only", body = Problem),
        (status = 422, description = "text missing or too long", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<KbSearchBody>,
) -> Result<Json<KbHits>, ApiError> {
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(
            &caller.token,
            SearchKbRequest {
                text: body.text.clone(),
                category: body.category.clone().unwrap_or_default(),
            },
        );
        async move { client.search_kb(req?).await }
    })
    .await?
    .into_inner();
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Start (RFC 3339); default 30 days before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339, exclusive); default now.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntakeStatsView {
    pub total: i64,
    /// Consultations answered and closed at intake (直接答复).
    pub answered_directly: i64,
    pub withdrawn: i64,
    /// Passed on to dispatch.
    pub passed_on: i64,
    #[schema(value_type = Object)]
    pub by_channel: std::collections::BTreeMap<String, i64>,
}

/// What intake received in a period, with direct answers counted apart.
#[utoipa::path(
    get,
    path = "/api/v1/intake/stats",
    tag = "knowledge",
    params(StatsQuery),
    responses(
        (status = 200, description = "Counts in the caller's scope", body = IntakeStatsView),
        (status = 400, description = "from/to are not RFC 3339", body = Problem),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Role may not read counts", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<IntakeStatsView>, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "from and to must be RFC 3339 date-times",
        )
    })?;
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(
            &caller.token,
            IntakeStatsRequest {
                from: q.from.map(to_timestamp),
                to: q.to.map(to_timestamp),
            },
        );
        async move { client.get_intake_stats(req?).await }
    })
    .await?
    .into_inner();
    Ok(Json(IntakeStatsView {
        total: resp.total,
        answered_directly: resp.answered_directly,
        withdrawn: resp.withdrawn,
        passed_on: resp.passed_on,
        by_channel: resp.by_channel.into_iter().collect(),
    }))
}
