//! The tenant's duty rules (`/api/v1/admin/duty-rules`): which visits and
//! patrols are due how often, and making the current periods' tasks now.

use jiesu_proto::{grid as pb, time::to_timestamp};

use super::prelude::*;
use crate::rest::yes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_rules, put_rules))
        .routes(routes!(generate))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyRuleView {
    pub code: String,
    pub name: String,
    /// household | key_person | key_place | patrol
    pub target: String,
    /// For key_person: the categories covered; empty = all.
    #[serde(default)]
    pub categories: Vec<String>,
    /// day | week | month
    pub every: String,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyRulesView {
    pub rules: Vec<DutyRuleView>,
}

impl From<pb::DutyRules> for DutyRulesView {
    fn from(r: pb::DutyRules) -> Self {
        Self {
            rules: r
                .rules
                .into_iter()
                .map(|r| DutyRuleView {
                    code: r.code,
                    name: r.name,
                    target: r.target,
                    categories: r.categories,
                    every: r.every,
                    active: r.active,
                })
                .collect(),
        }
    }
}

/// The tenant's duty rules (the built-in ones until an admin saves some).
#[utoipa::path(
    get,
    path = "/api/v1/admin/duty-rules",
    tag = "duties",
    responses(
        (status = 200, description = "Rules", body = DutyRulesView),
        Authenticated,
        (status = 403, response = NotAllowed),
    ),
)]
pub async fn get_rules(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<DutyRulesView>, ApiError> {
    let msg = pb::GetDutyRulesRequest {};
    let r = state
        .grid(&caller)
        .retried(msg, async |mut c, r| c.get_duty_rules(r).await)
        .await?;
    Ok(Json(r.into()))
}

/// Replace the tenant's duty rules (tenant admin).
#[utoipa::path(
    put,
    path = "/api/v1/admin/duty-rules",
    tag = "duties",
    request_body = DutyRulesView,
    responses(
        (status = 200, description = "Saved", body = DutyRulesView),
        TenantAdmin,
        JsonInput,
        (status = 422, description = "A rule is invalid (field names it)", body = Problem),
    ),
)]
pub async fn put_rules(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<DutyRulesView>,
) -> Result<Json<DutyRulesView>, ApiError> {
    let msg = pb::DutyRules {
        rules: b
            .rules
            .into_iter()
            .map(|r| pb::DutyRule {
                code: r.code,
                name: r.name,
                target: r.target,
                categories: r.categories,
                every: r.every,
                active: r.active,
            })
            .collect(),
    };
    let rules = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.save_duty_rules(r).await)
        .await?;
    Ok(Json(rules.into()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    /// The moment whose periods to fill; default now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Generated {
    pub created: u32,
}

/// Create the current periods' tasks that do not exist yet (tenant admin;
/// every grid replica also does it on a timer).
#[utoipa::path(
    post,
    path = "/api/v1/admin/duties/generate",
    tag = "duties",
    request_body = GenerateBody,
    responses(
        (status = 200, description = "Tasks created now", body = Generated),
        TenantAdmin,
        JsonInput,
    ),
)]
pub async fn generate(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<GenerateBody>,
) -> Result<Json<Generated>, ApiError> {
    let msg = pb::GenerateDutiesRequest {
        at: b.at.map(to_timestamp),
    };
    let r = state
        .grid(&caller)
        .once(msg, async |mut c, r| c.generate_duties(r).await)
        .await?;
    Ok(Json(Generated { created: r.created }))
}
