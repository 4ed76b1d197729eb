//! `/api/v1/intake/stats`: what intake received in a period, with the
//! consultations answered directly counted apart.

use jiesu_proto::{intake::IntakeStatsRequest, time::to_timestamp};

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stats))
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
        Authenticated,
        (status = 403, description = "Role may not read counts", body = Problem),
    ),
)]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<IntakeStatsView>, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            tr!(
                "from 和 to 必须是 RFC 3339 格式的日期时间",
                "from and to must be RFC 3339 date-times"
            ),
        )
    })?;
    let msg = IntakeStatsRequest {
        from: q.from.map(to_timestamp),
        to: q.to.map(to_timestamp),
    };
    let resp = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.get_intake_stats(r).await)
        .await?;
    Ok(Json(IntakeStatsView {
        total: resp.total,
        answered_directly: resp.answered_directly,
        withdrawn: resp.withdrawn,
        passed_on: resp.passed_on,
        by_channel: resp.by_channel.into_iter().collect(),
    }))
}
