//! `/api/v1/categories` and `/api/v1/notifications`.

use axum::{
    Json,
    extract::{Query, State},
};
use chrono::{DateTime, Utc};
use jiesu_proto::{
    intake::ListCategoriesRequest, notification::ListNotificationsRequest, time::from_timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    backend::{request, with_retry},
    error::{ApiError, Problem},
    extract::Caller,
};

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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 503, description = "Intake unavailable", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_categories(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CategoryList>, ApiError> {
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(&caller.token, ListCategoriesRequest {});
        async move { client.list_categories(req?).await }
    })
    .await?
    .into_inner();
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// Only notifications about this ticket.
    pub ticket_id: Option<String>,
    /// Only notifications to this recipient (unit id).
    pub recipient_id: Option<String>,
    /// 1..500, default 50.
    pub page_size: Option<i32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub recipient_kind: String,
    pub recipient_id: String,
    pub recipient_name: String,
    pub channel: String,
    pub title: String,
    pub body: String,
    pub ticket_id: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub notifications: Vec<NotificationView>,
    /// Empty on the last page.
    pub next_page_token: String,
}

/// Notifications in the caller's scope; a handler sees its own unit's.
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    tag = "notifications",
    params(NotificationQuery),
    responses(
        (status = 200, description = "Oldest first", body = NotificationPage),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Role may not read notifications", body = Problem),
        (status = 422, description = "A parameter is invalid", body = Problem),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<NotificationQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<NotificationPage>, ApiError> {
    let Query(q) = query.map_err(|e| crate::error::invalid_query(&e))?;
    let msg = ListNotificationsRequest {
        ticket_id: q.ticket_id.unwrap_or_default(),
        recipient_id: q.recipient_id.unwrap_or_default(),
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
    };
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.notification.clone();
        let req = request(&caller.token, msg.clone());
        async move { client.list_notifications(req?).await }
    })
    .await?
    .into_inner();
    Ok(Json(NotificationPage {
        notifications: resp
            .notifications
            .into_iter()
            .map(|n| NotificationView {
                id: n.id,
                recipient_kind: n.recipient_kind,
                recipient_id: n.recipient_id,
                recipient_name: n.recipient_name,
                channel: n.channel,
                title: n.title,
                body: n.body,
                ticket_id: n.ticket_id,
                status: n.status,
                created_at: n.created_at.as_ref().and_then(from_timestamp),
                sent_at: n.sent_at.as_ref().and_then(from_timestamp),
            })
            .collect(),
        next_page_token: resp.next_page_token,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestBody {
    /// The request text as the agent typed it.
    #[schema(example = "小区门口白色轿车天天堵消防通道")]
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Role may not ask", body = Problem),
        (status = 422, description = "text missing or too long", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn suggest_categories(
    State(state): State<AppState>,
    caller: Caller,
    crate::extract::JsonBody(body): crate::extract::JsonBody<SuggestBody>,
) -> Result<Json<Suggestions>, ApiError> {
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(
            &caller.token,
            jiesu_proto::intake::SuggestCategoriesRequest {
                text: body.text.clone(),
            },
        );
        async move { client.suggest_categories(req?).await }
    })
    .await?
    .into_inner();
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
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportSummary {
    pub created: i32,
    pub updated: i32,
    /// Categories left out of the import; tickets keep their codes.
    pub deactivated: i32,
    pub leaves: i32,
}

/// Export the tenant's category tree (tenant admin).
#[utoipa::path(
    get,
    path = "/api/v1/admin/categories/export",
    tag = "reference",
    params(ExportQuery),
    responses(
        (status = 200, description = "JSON list, or CSV with the columns code,name,parent,description,keywords,attributes for format=csv", body = String, content_type = "application/json"),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 422, description = "format is neither json nor csv", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn export_categories(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let format = q.format.unwrap_or_else(|| "json".into());
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(
            &caller.token,
            jiesu_proto::intake::ExportCategoriesRequest {
                format: format.clone(),
            },
        );
        async move { client.export_categories(req?).await }
    })
    .await?
    .into_inner();
    Ok((
        [(axum::http::header::CONTENT_TYPE, resp.content_type)],
        resp.data,
    )
        .into_response())
}

/// Replace the tenant's category tree from JSON or CSV (tenant admin).
/// Categories left out are deactivated, never deleted.
#[utoipa::path(
    post,
    path = "/api/v1/admin/categories/import",
    tag = "reference",
    request_body(content = String, description = "The export format: a JSON list (application/json) or CSV (text/csv)", content_type = "text/csv"),
    responses(
        (status = 200, description = "Imported", body = ImportSummary),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
        (status = 415, description = "Neither JSON nor CSV", body = Problem),
        (status = 422, description = "The tree breaks a rule; `message` lists the entries", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn import_categories(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    crate::extract::RawBody(body): crate::extract::RawBody,
) -> Result<Json<ImportSummary>, ApiError> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let format = if ct.starts_with("application/json") {
        "json"
    } else if ct.starts_with("text/csv") {
        "csv"
    } else {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the tree as application/json or text/csv",
        ));
    };
    let mut client = state.backends.intake.clone();
    let req = request(
        &caller.token,
        jiesu_proto::intake::ImportCategoriesRequest {
            format: format.into(),
            data: body.to_vec(),
        },
    )?;
    let r = client.import_categories(req).await?.into_inner();
    Ok(Json(ImportSummary {
        created: r.created,
        updated: r.updated,
        deactivated: r.deactivated,
        leaves: r.leaves,
    }))
}
