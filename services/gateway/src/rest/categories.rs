//! `/api/v1/categories`: the tenant's category tree, suggestions for a
//! request text, and the admin's export and import of the tree.

use jiesu_proto::intake::{
    ExportCategoriesRequest, ImportCategoriesRequest, ListCategoriesRequest,
    SuggestCategoriesRequest,
};

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_categories))
        .routes(routes!(suggest_categories))
        .routes(routes!(export_categories))
        .routes(routes!(import_categories))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    #[schema(example = "CX0203")]
    pub code: String,
    #[schema(example = "噪声扰民")]
    pub name: String,
    /// Empty for a top-level group.
    pub parent_code: String,
    pub level: i32,
    /// Only leaves can be put on a ticket.
    pub leaf: bool,
    pub description: String,
    /// Questions a ticket of this category answers in `attributes`.
    pub attributes: Vec<AttributeView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttributeView {
    #[schema(example = "noise_period")]
    pub code: String,
    /// `string`, `number`, `datetime` (ISO 8601 with zone), `text`,
    /// `singlevaluelist` or `multivaluelist`.
    pub datatype: String,
    pub required: bool,
    #[schema(example = "噪声主要出现在什么时段？")]
    pub description: String,
    pub order: i32,
    /// Allowed keys for the list types.
    pub values: Vec<OptionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OptionView {
    pub key: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryList {
    pub categories: Vec<CategoryView>,
}

/// The caller's tenant category tree.
#[utoipa::path(
    get,
    path = "/api/v1/categories",
    tag = "reference",
    responses(
        (status = 200, description = "Categories, tree order", body = CategoryList),
        Authenticated,
        (status = 503, description = "Intake unavailable", body = Problem),
    ),
)]
pub async fn list_categories(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CategoryList>, ApiError> {
    let msg = ListCategoriesRequest {};
    let resp = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.list_categories(r).await)
        .await?;
    Ok(Json(CategoryList {
        categories: resp
            .categories
            .into_iter()
            .map(|c| CategoryView {
                code: c.code,
                name: c.name,
                parent_code: c.parent_code,
                level: c.level,
                leaf: c.leaf,
                description: c.description,
                attributes: c
                    .attributes
                    .into_iter()
                    .map(|a| AttributeView {
                        code: a.code,
                        datatype: a.datatype,
                        required: a.required,
                        description: a.description,
                        order: a.order,
                        values: a
                            .values
                            .into_iter()
                            .map(|o| OptionView {
                                key: o.key,
                                name: o.name,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestBody {
    /// The request text as the agent typed it, up to 4000 characters.
    #[schema(
        example = "小区门口白色轿车天天堵消防通道",
        min_length = 1,
        max_length = 4000
    )]
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionView {
    pub code: String,
    pub name: String,
    /// 0 to 1.
    pub score: f64,
    /// `model` (learned from this tenant's tickets), `keywords`, or both.
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestions {
    /// At most three, likeliest first.
    pub suggestions: Vec<SuggestionView>,
    /// Tickets the tenant's model learned from.
    pub training_tickets: i64,
}

/// Suggest leaf categories for a request text (top 3 with scores).
#[utoipa::path(
    post,
    path = "/api/v1/categories/suggest",
    tag = "reference",
    request_body = SuggestBody,
    responses(
        (status = 200, description = "Suggestions", body = Suggestions),
        Authenticated,
        JsonInput,
        (status = 403, description = "Role may not ask", body = Problem),
        (status = 422, description = "text missing or too long", body = Problem),
    ),
)]
pub async fn suggest_categories(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<SuggestBody>,
) -> Result<Json<Suggestions>, ApiError> {
    let msg = SuggestCategoriesRequest { text: body.text };
    let resp = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.suggest_categories(r).await)
        .await?;
    Ok(Json(Suggestions {
        suggestions: resp
            .suggestions
            .into_iter()
            .map(|s| SuggestionView {
                code: s.code,
                name: s.name,
                score: s.score,
                source: s.source,
            })
            .collect(),
        training_tickets: resp.training_tickets,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `json` (default, with attribute definitions) or `csv`.
    #[serde(default)]
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// One category as the export writes it and the import reads it (the
/// gateway passes intake's bytes through; this type only describes them).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct CategoryRow {
    #[schema(example = "CX0203")]
    pub code: String,
    #[schema(example = "噪声扰民")]
    pub name: String,
    /// The parent's code; empty for a top-level group.
    pub parent: String,
    pub description: String,
    /// Comma-separated words that suggest the category.
    pub keywords: String,
    pub attributes: Vec<AttributeRow>,
}

/// An attribute of a [`CategoryRow`].
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct AttributeRow {
    pub code: String,
    /// `string`, `number`, `datetime`, `text`, `singlevaluelist` or
    /// `multivaluelist`.
    pub datatype: String,
    pub required: bool,
    pub description: String,
    pub datatype_description: String,
    pub order: i32,
    pub values: Vec<OptionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportSummary {
    pub created: i32,
    pub updated: i32,
    /// Categories left out of the import; tickets keep their codes.
    pub deactivated: i32,
    pub leaves: i32,
    /// True when nothing was changed (`?dry_run=true`).
    pub dry_run: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Check the whole file and report what would change, changing nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Export the tenant's category tree (tenant admin).
#[utoipa::path(
    get,
    path = "/api/v1/admin/categories/export",
    tag = "reference",
    params(ExportQuery),
    responses(
        (status = 200, description = "The tree: a JSON list, or for format=csv a CSV file with the columns code,name,parent,description,keywords,attributes", content(
            (Vec<CategoryRow> = "application/json"),
            (String = "text/csv"),
        )),
        TenantAdmin,
        (status = 422, description = "format is neither json nor csv", body = Problem),
    ),
)]
pub async fn export_categories(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let format = q.format.unwrap_or_else(|| "json".into());
    let msg = ExportCategoriesRequest { format };
    let resp = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.export_categories(r).await)
        .await?;
    Ok(([(header::CONTENT_TYPE, resp.content_type)], resp.data).into_response())
}

/// Replace the tenant's category tree from JSON or CSV (tenant admin).
/// Categories left out are deactivated, never deleted.
#[utoipa::path(
    post,
    path = "/api/v1/admin/categories/import",
    tag = "reference",
    params(ImportQuery),
    request_body(description = "The export format: a JSON list or a CSV file", content(
        (Vec<CategoryRow> = "application/json"),
        (String = "text/csv"),
    )),
    responses(
        (status = 200, description = "Imported", body = ImportSummary),
        TenantAdmin,
        TextInput,
        (status = 415, description = "Neither JSON nor CSV", body = Problem),
        (status = 422, description = "The file breaks a rule (an unknown or missing column, a bad row, the tree's rules; `message` lists every problem), or `dry_run` is not a boolean", body = Problem),
    ),
)]
pub async fn import_categories(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<ImportQuery>, QueryRejection>,
    RawBody(body): RawBody,
) -> Result<Json<ImportSummary>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let format = if ct.starts_with("application/json") {
        "json"
    } else if ct.starts_with("text/csv") {
        "csv"
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            tr!(
                "请以 application/json 或 text/csv 格式发送分类树",
                "send the tree as application/json or text/csv"
            ),
        ));
    };
    let msg = ImportCategoriesRequest {
        format: format.into(),
        data: body.to_vec(),
        dry_run: q.dry_run,
    };
    let r = state
        .intake(&caller)
        .once(msg, async |mut c, r| c.import_categories(r).await)
        .await?;
    Ok(Json(ImportSummary {
        created: r.created,
        updated: r.updated,
        deactivated: r.deactivated,
        leaves: r.leaves,
        dry_run: r.dry_run,
    }))
}
