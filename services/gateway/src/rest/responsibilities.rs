//! `/api/v1/admin/responsibilities`: the responsibility list (责任清单) as
//! CSV, and where it leaves a category without a unit.

use jiesu_proto::{dispatch as pb, intake::ListCategoriesRequest};

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_responsibilities, import_responsibilities))
        .routes(routes!(gaps))
}

/// The responsibility list as CSV (`category,region_code,lead_unit_id,
/// co_unit_ids,valid_from,valid_to,note`; co-handlers separated by `;`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/responsibilities",
    tag = "work orders",
    responses(
        (status = 200, description = "The list", body = String, content_type = "text/csv"),
        Authenticated,
        (status = 403, description = "Admins, dispatchers and supervisors only", body = Problem),
    ),
)]
pub async fn export_responsibilities(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let msg = pb::ExportResponsibilitiesRequest {};
    let resp = state
        .dispatch(&caller)
        .retried(msg, async |mut c, r| c.export_responsibilities(r).await)
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        resp.csv,
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResponsibilityImport {
    pub entries: u32,
    /// True when nothing was changed (`?dry_run=true`).
    pub dry_run: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Check the whole list and report, changing nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Replace the responsibility list from CSV (tenant admin). Refused whole
/// (422, `field` = `csv`) with every problem at once: bad lines, conflicts
/// (two entries giving the same category and region a lead unit on the same
/// day), categories the tenant does not have, units that are not active.
#[utoipa::path(
    put,
    path = "/api/v1/admin/responsibilities",
    tag = "work orders",
    params(ImportQuery),
    request_body(content = String, description = "The export format", content_type = "text/csv"),
    responses(
        (status = 200, description = "Replaced (or, with `dry_run`, checked)", body = ResponsibilityImport),
        TenantAdmin,
        TextInput,
        (status = 422, description = "The file breaks a rule (`field` = `csv`: every bad line, conflict, unknown category and unit, all listed), or `dry_run` is not a boolean", body = Problem),
    ),
)]
pub async fn import_responsibilities(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<ImportQuery>, QueryRejection>,
    RawBody(body): RawBody,
) -> Result<Json<ResponsibilityImport>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let csv = text_body(
        &headers,
        &body,
        &["text/csv"],
        ("责任清单", "the list"),
        "csv",
    )?;
    // Dispatch checks each line's category against the tenant's tree.
    let known_categories = state
        .intake(&caller)
        .retried(ListCategoriesRequest {}, async |mut c, r| {
            c.list_categories(r).await
        })
        .await?
        .categories
        .into_iter()
        .map(|c| c.code)
        .collect();
    let msg = pb::ResponsibilitiesCsv {
        csv,
        known_categories,
        dry_run: q.dry_run,
    };
    let r = state
        .dispatch(&caller)
        .once(msg, async |mut c, r| c.import_responsibilities(r).await)
        .await?;
    Ok(Json(ResponsibilityImport {
        entries: r.entries,
        dry_run: r.dry_run,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GapView {
    pub category: String,
    pub category_name: String,
    pub region_code: String,
    pub region_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GapReport {
    /// Leaf categories with no responsible unit today in a region.
    pub gaps: Vec<GapView>,
    /// The regions checked: the tenant's streets, or the tenant itself.
    pub regions: Vec<String>,
    pub categories_checked: usize,
}

/// Where the responsibility list leaves a category without a unit.
#[utoipa::path(
    get,
    path = "/api/v1/admin/responsibilities/gaps",
    tag = "work orders",
    responses(
        (status = 200, description = "The gaps", body = GapReport),
        Authenticated,
        (status = 403, description = "Admins, dispatchers and supervisors only", body = Problem),
    ),
)]
pub async fn gaps(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<GapReport>, ApiError> {
    let msg = ListCategoriesRequest {};
    let cats = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.list_categories(r).await)
        .await?
        .categories;
    let leaves: Vec<(String, String)> = cats
        .into_iter()
        .filter(|c| c.leaf)
        .map(|c| (c.code, c.name))
        .collect();
    let msg = pb::ResponsibilityGapsRequest {
        categories: leaves.iter().map(|(c, _)| c.clone()).collect(),
    };
    let resp = state
        .dispatch(&caller)
        .retried(msg, async |mut c, r| c.responsibility_gaps(r).await)
        .await?;
    Ok(Json(GapReport {
        gaps: resp
            .gaps
            .into_iter()
            .map(|g| GapView {
                category_name: leaves
                    .iter()
                    .find(|(c, _)| *c == g.category)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default(),
                category: g.category,
                region_code: g.region_code,
                region_name: g.region_name,
            })
            .collect(),
        regions: resp.regions,
        categories_checked: leaves.len(),
    }))
}
