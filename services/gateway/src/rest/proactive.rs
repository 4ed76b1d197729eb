//! 未诉先办: the frequency policy, proactive items by level and place with
//! their owner's progress and effect, the season scan, and the import of
//! requests counted before Jiesu.

use jiesu_proto::{
    dispatch::ListUnitsRequest,
    evaluation::{
        self as pb, GetFrequencyPolicyRequest, GetProactiveItemRequest, ImportHistoryRequest,
        ListProactiveItemsRequest, ScanSeasonsRequest, UpdateProactiveItemRequest,
    },
};

use super::{at, prelude::*};

pub fn routes(cfg: &GatewayConfig) -> OpenApiRouter<AppState> {
    let history = DefaultBodyLimit::max(cfg.max_layer_bytes);
    OpenApiRouter::new()
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(list_items))
        .routes(routes!(get_item, update_item))
        .routes(routes!(scan_seasons))
        .routes(routes!(import_history).layer(history))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FrequencyPolicyView {
    /// `community` or `street`: where the same category is counted.
    pub level: String,
    /// Days counted (1..90).
    pub window_days: u32,
    /// Requests in the window that make a high-frequency matter, lifted to
    /// the leadership queue (提级) (2..10000).
    pub threshold: u32,
    /// Seasons: weeks ahead looked at (1..13).
    pub season_weeks: u32,
    /// Earlier years compared (1..10).
    pub season_years: u32,
    /// Fewest requests in a year's copy of the window.
    pub season_min_count: u32,
    /// Times the ordinary level the window must reach (1..100).
    pub season_ratio: f64,
}

impl From<pb::FrequencyPolicy> for FrequencyPolicyView {
    fn from(p: pb::FrequencyPolicy) -> Self {
        Self {
            level: p.level,
            window_days: p.window_days,
            threshold: p.threshold,
            season_weeks: p.season_weeks,
            season_years: p.season_years,
            season_min_count: p.season_min_count,
            season_ratio: p.season_ratio,
        }
    }
}

/// When the same category at the same place is a high-frequency matter,
/// and what makes a season.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/frequency-policy",
    tag = "evaluation",
    responses(
        (status = 200, description = "The policy", body = FrequencyPolicyView),
        Authenticated,
        (status = 403, response = StaffOnly),
    ),
)]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<FrequencyPolicyView>, ApiError> {
    let p = state
        .evaluation(&caller)
        .retried(GetFrequencyPolicyRequest {}, async |mut c, r| {
            c.get_frequency_policy(r).await
        })
        .await?;
    Ok(Json(p.into()))
}

/// Replaces the policy (matters open already keep theirs).
#[utoipa::path(
    put,
    path = "/api/v1/evaluation/frequency-policy",
    tag = "evaluation",
    request_body = FrequencyPolicyView,
    responses(
        (status = 200, description = "The policy now", body = FrequencyPolicyView),
        TenantAdmin,
        JsonInput,
    ),
)]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<FrequencyPolicyView>,
) -> Result<Json<FrequencyPolicyView>, ApiError> {
    let msg = pb::FrequencyPolicy {
        level: b.level,
        window_days: b.window_days,
        threshold: b.threshold,
        season_weeks: b.season_weeks,
        season_years: b.season_years,
        season_min_count: b.season_min_count,
        season_ratio: b.season_ratio,
    };
    let p = state
        .evaluation(&caller)
        .retried(msg, async |mut c, r| c.put_frequency_policy(r).await)
        .await?;
    Ok(Json(p.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressView {
    pub at: Option<DateTime<Utc>>,
    pub by_role: String,
    pub note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EffectView {
    /// Days compared on each side.
    pub days: u32,
    /// Requests of the category at the place in the days before the item.
    pub before: i64,
    /// In the days after it was done (so far while they last).
    pub after: i64,
    /// The days after have all passed: `after` is final.
    pub complete: bool,
    /// False until the item is done.
    pub measured: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProactiveItemView {
    pub id: String,
    /// `frequency` (a high-frequency matter) or `seasonal`.
    pub source: String,
    pub category: String,
    pub category_name: String,
    /// `district`, `street` or `community`.
    pub place_level: String,
    pub place_code: String,
    pub title: String,
    pub detail: String,
    pub owner_unit_id: String,
    pub owner_unit_name: String,
    pub due_date: String,
    /// `open`, `in_progress`, `done` or `cancelled`.
    pub status: String,
    pub progress: Vec<ProgressView>,
    pub result: String,
    pub created_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The high-frequency matter's requests.
    pub requests: u32,
    /// With one item only.
    pub effect: Option<EffectView>,
}

impl From<pb::ProactiveItem> for ProactiveItemView {
    fn from(i: pb::ProactiveItem) -> Self {
        Self {
            id: i.id,
            source: i.source,
            category: i.category,
            category_name: i.category_name,
            place_level: i.place_level,
            place_code: i.place_code,
            title: i.title,
            detail: i.detail,
            owner_unit_id: i.owner_unit_id,
            owner_unit_name: i.owner_unit_name,
            due_date: i.due_date,
            status: i.status,
            progress: i
                .progress
                .into_iter()
                .map(|p| ProgressView {
                    at: at(p.at),
                    by_role: p.by_role,
                    note: p.note,
                })
                .collect(),
            result: i.result,
            created_at: at(i.created_at),
            closed_at: at(i.closed_at),
            requests: i.requests,
            effect: i.effect.map(|e| EffectView {
                days: e.days,
                before: e.before,
                after: e.after,
                complete: e.complete,
                measured: e.measured,
            }),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ItemQuery {
    /// `district`, `street` or `community`: items about places of that level.
    pub level: Option<String>,
    /// Only places under this region code.
    pub within: Option<String>,
    /// `active` (open and in progress, default), `open`, `in_progress`,
    /// `done`, `cancelled` or `all`.
    pub status: Option<String>,
    /// `frequency` or `seasonal`.
    pub source: Option<String>,
    /// 1..500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProactiveItemPage {
    pub items: Vec<ProactiveItemView>,
    pub next_page_token: String,
}

/// The proactive list (未诉先办) of a district, street or community: items
/// from high-frequency matters and seasons, the earliest due first. A
/// handler sees its own unit's.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/proactive-items",
    tag = "evaluation",
    params(ItemQuery),
    responses(
        (status = 200, description = "Items", body = ProactiveItemPage),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn list_items(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ItemQuery>, QueryRejection>,
) -> Result<Json<ProactiveItemPage>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = ListProactiveItemsRequest {
        level: q.level.unwrap_or_default(),
        within: q.within.unwrap_or_default(),
        status: q.status.unwrap_or_default(),
        source: q.source.unwrap_or_default(),
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
    };
    let r = state
        .evaluation(&caller)
        .retried(msg, async |mut c, r| c.list_proactive_items(r).await)
        .await?;
    Ok(Json(ProactiveItemPage {
        items: r.items.into_iter().map(Into::into).collect(),
        next_page_token: r.next_page_token,
    }))
}

/// One item, with its effect: requests of its category at its place in
/// the 30 days before it and the 30 days after it was done.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/proactive-items/{id}",
    tag = "evaluation",
    params(("id" = String, Path, format = Uuid, description = "Item id")),
    responses(
        (status = 200, description = "The item", body = ProactiveItemView),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 404, description = "No such item in the caller's scope", body = Problem),
    ),
)]
pub async fn get_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProactiveItemView>, ApiError> {
    let it = state
        .evaluation(&caller)
        .retried(GetProactiveItemRequest { id }, async |mut c, r| {
            c.get_proactive_item(r).await
        })
        .await?;
    Ok(Json(it.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemChangeBody {
    /// Supervisors and admins: the unit that owns it (from the units
    /// directory).
    pub owner_unit_id: Option<String>,
    /// Supervisors and admins: `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// `in_progress`, `done` (with a result) or `cancelled` (supervisors).
    pub status: Option<String>,
    /// Appended to the progress.
    #[serde(default)]
    pub progress_note: String,
    /// What was done.
    pub result: Option<String>,
}

/// The owner unit reports progress and the result; a supervisor assigns
/// it and moves its due date.
#[utoipa::path(
    patch,
    path = "/api/v1/evaluation/proactive-items/{id}",
    tag = "evaluation",
    params(("id" = String, Path, format = Uuid, description = "Item id")),
    request_body = ItemChangeBody,
    responses(
        (status = 200, description = "The item now", body = ProactiveItemView),
        Authenticated,
        JsonInput,
        (status = 403, description = "Not a supervisor, admin or the owner unit; or a field only supervisors change", body = Problem),
        (status = 404, description = "No such item in the caller's scope", body = Problem),
        (status = 409, description = "Done or cancelled already (`item_closed`)", body = Problem),
    ),
)]
pub async fn update_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ItemChangeBody>,
) -> Result<Json<ProactiveItemView>, ApiError> {
    // The owner must be a unit of the directory; its name comes from there.
    let owner_unit_name = match b.owner_unit_id.as_deref().map(str::trim) {
        Some(unit) if !unit.is_empty() => {
            let units = state
                .dispatch(&caller)
                .retried(ListUnitsRequest::default(), async |mut c, r| {
                    c.list_units(r).await
                })
                .await?;
            units
                .units
                .into_iter()
                .find(|u| u.id == unit)
                .map(|u| u.name)
                .ok_or_else(|| {
                    ApiError::field(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "owner_unit_id",
                        tr!(
                            "不是本辖区在用的单位",
                            "is not an active unit of the tenant"
                        ),
                    )
                })?
        }
        _ => String::new(),
    };
    let msg = UpdateProactiveItemRequest {
        id,
        owner_unit_id: b.owner_unit_id,
        owner_unit_name,
        due_date: b.due_date,
        status: b.status,
        progress_note: b.progress_note,
        result: b.result,
    };
    let it = state
        .evaluation(&caller)
        .once(msg, async |mut c, r| c.update_proactive_item(r).await)
        .await?;
    Ok(Json(it.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeasonScan {
    /// Items made by this scan (none for a season that has one already).
    pub created: Vec<ProactiveItemView>,
    /// Category × place pairs looked at.
    pub examined: u32,
}

/// Looks at the weeks ahead in earlier years now (the scan also runs once
/// a day): each category and place that rose in them becomes a proactive
/// item, once per season.
#[utoipa::path(
    post,
    path = "/api/v1/evaluation/seasons/scan",
    tag = "evaluation",
    responses(
        (status = 200, description = "What the scan made", body = SeasonScan),
        Authenticated,
        (status = 403, response = SupervisorsAndAdmins),
    ),
)]
pub async fn scan_seasons(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SeasonScan>, ApiError> {
    let r = state
        .evaluation(&caller)
        .once(ScanSeasonsRequest {}, async |mut c, r| {
            c.scan_seasons(r).await
        })
        .await?;
    Ok(Json(SeasonScan {
        created: r.created.into_iter().map(Into::into).collect(),
        examined: r.examined,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Check the whole file and report, writing nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryImport {
    pub rows: u32,
    pub first_day: String,
    pub last_day: String,
    pub dry_run: bool,
}

/// Requests counted before Jiesu (the city's earlier hotline system), per
/// day, category and region: `day,category,region_code,count[,category_name]`.
/// Checked whole first; a row (day, category, region) imported again replaces its count. Seasons
/// and last year's figures use them.
#[utoipa::path(
    put,
    path = "/api/v1/admin/evaluation/history",
    tag = "evaluation",
    params(HistoryQuery),
    request_body(content = String, description = "CSV, UTF-8", content_type = "text/csv"),
    responses(
        (status = 200, description = "Imported (or, with `dry_run`, checked)", body = HistoryImport),
        TenantAdmin,
        TextInput,
        (status = 422, description = "The file breaks a rule (`field` = `csv`, up to ten problems by row), or `dry_run` is not a boolean", body = Problem),
    ),
)]
pub async fn import_history(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<HistoryQuery>, QueryRejection>,
    RawBody(body): RawBody,
) -> Result<Json<HistoryImport>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let csv = text_body(
        &headers,
        &body,
        &["text/csv"],
        ("历史诉求数据", "the history"),
        "csv",
    )?;
    let r = state
        .evaluation(&caller)
        .once(
            ImportHistoryRequest {
                csv,
                dry_run: q.dry_run,
            },
            async |mut c, r| c.import_history(r).await,
        )
        .await?;
    Ok(Json(HistoryImport {
        rows: r.rows,
        first_day: r.first_day,
        last_day: r.last_day,
        dry_run: r.dry_run,
    }))
}
