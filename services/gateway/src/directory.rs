//! The units directory and the responsibility list (责任清单).

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use jiesu_proto::{dispatch as pb, intake::ListCategoriesRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    backend::{request, with_retry},
    error::{ApiError, Problem, invalid_query},
    extract::{Caller, JsonBody, RawBody},
};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnitRecordView {
    pub id: String,
    pub name: String,
    /// department | street | community | utility
    pub kind: String,
    pub region_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The duty office's number (an office line).
    pub duty_phone: String,
    /// Accounts (JWT `sub`) that may act for the unit; empty = anyone whose
    /// token names it.
    pub members: Vec<String>,
    pub active: bool,
}

impl From<pb::UnitRecord> for UnitRecordView {
    fn from(u: pb::UnitRecord) -> Self {
        Self {
            id: u.id,
            name: u.name,
            kind: u.kind,
            region_code: u.region_code,
            parent_id: (!u.parent_id.is_empty()).then_some(u.parent_id),
            duty_phone: u.duty_phone,
            members: u.members,
            active: u.active,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UnitsQuery {
    pub kind: Option<String>,
    /// Units under this division code.
    pub region_code: Option<String>,
    #[serde(default)]
    pub include_inactive: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitList {
    pub units: Vec<UnitRecordView>,
}

/// The tenant's handling units: departments, streets, communities, utilities.
#[utoipa::path(
    get,
    path = "/api/v1/units",
    tag = "work orders",
    params(UnitsQuery),
    responses(
        (status = 200, description = "Units", body = UnitList),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Staff only", body = Problem),
        (status = 422, description = "A query parameter is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_units(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<UnitsQuery>, QueryRejection>,
) -> Result<Json<UnitList>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::ListUnitsRequest {
        kind: q.kind.unwrap_or_default(),
        region_code: q.region_code.unwrap_or_default(),
        include_inactive: q.include_inactive,
    };
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(&caller.token, msg.clone());
        async move { client.list_units(req?).await }
    })
    .await?;
    Ok(Json(UnitList {
        units: resp
            .into_inner()
            .units
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitBody {
    #[schema(example = "市南区住房和城乡建设局")]
    pub name: String,
    pub kind: String,
    #[schema(example = "370202")]
    pub region_code: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub duty_phone: String,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Add or change a unit (tenant admin). Deactivating a unit the current
/// responsibility list names is refused (409 `unit_in_use`).
#[utoipa::path(
    put,
    path = "/api/v1/admin/units/{id}",
    tag = "work orders",
    params(("id" = String, Path, description = "Unit id, e.g. sn-zjj")),
    request_body = UnitBody,
    responses(
        (status = 200, description = "Saved", body = UnitRecordView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 409, description = "The unit is still named by the responsibility list", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn put_unit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<UnitBody>,
) -> Result<Json<UnitRecordView>, ApiError> {
    let msg = pb::UnitRecord {
        id,
        name: b.name,
        kind: b.kind,
        region_code: b.region_code,
        parent_id: b.parent_id.unwrap_or_default(),
        duty_phone: b.duty_phone,
        members: b.members,
        active: b.active,
    };
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(&caller.token, msg.clone());
        async move { client.put_unit(req?).await }
    })
    .await?;
    Ok(Json(resp.into_inner().into()))
}

/// The responsibility list as CSV (`category,region_code,lead_unit_id,
/// co_unit_ids,valid_from,valid_to,note`; co-handlers separated by `;`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/responsibilities",
    tag = "work orders",
    responses(
        (status = 200, description = "The list", body = String, content_type = "text/csv"),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Admins, dispatchers and supervisors only", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn export_responsibilities(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(&caller.token, pb::ExportResponsibilitiesRequest {});
        async move { client.export_responsibilities(req?).await }
    })
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        resp.into_inner().csv,
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResponsibilityImport {
    pub entries: u32,
}

/// Replace the responsibility list from CSV (tenant admin). Refused whole
/// (422, `field` = `csv`) with every bad line and every conflict — two
/// entries giving the same category and region a lead unit on the same day.
#[utoipa::path(
    put,
    path = "/api/v1/admin/responsibilities",
    tag = "work orders",
    request_body(content = String, description = "The export format", content_type = "text/csv"),
    responses(
        (status = 200, description = "Replaced", body = ResponsibilityImport),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a tenant admin", body = Problem),
        (status = 415, description = "Not text/csv", body = Problem),
        (status = 422, description = "Bad lines or conflicts, all listed", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn import_responsibilities(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<ResponsibilityImport>, ApiError> {
    let csv = crate::extract::text_body(&headers, &body, &["text/csv"], "the list", "csv")?;
    let mut client = state.backends.dispatch.clone();
    let req = request(&caller.token, pb::ResponsibilitiesCsv { csv })?;
    let r = client.import_responsibilities(req).await?.into_inner();
    Ok(Json(ResponsibilityImport { entries: r.entries }))
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
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Admins, dispatchers and supervisors only", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn gaps(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<GapReport>, ApiError> {
    let cats = with_retry(state.backends.retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(&caller.token, ListCategoriesRequest {});
        async move { client.list_categories(req?).await }
    })
    .await?
    .into_inner()
    .categories;
    let leaves: Vec<(String, String)> = cats
        .into_iter()
        .filter(|c| c.leaf)
        .map(|c| (c.code, c.name))
        .collect();
    let msg = pb::ResponsibilityGapsRequest {
        categories: leaves.iter().map(|(c, _)| c.clone()).collect(),
    };
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(&caller.token, msg.clone());
        async move { client.responsibility_gaps(req?).await }
    })
    .await?
    .into_inner();
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
