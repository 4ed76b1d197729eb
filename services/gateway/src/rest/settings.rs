//! The tenant's settings dispatch keeps: the SLA policy
//! (`/api/v1/admin/sla-policy`) and the working calendar
//! (`/api/v1/admin/calendar`).

use jiesu_proto::dispatch as pb;

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(get_calendar, set_calendar))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaRuleBody {
    /// Category code or group prefix; empty = every category.
    #[serde(default)]
    pub category: String,
    /// normal | urgent
    pub urgency: String,
    /// `Nh` working hours or `Nd` working days.
    #[schema(example = "2h")]
    pub sign_for: String,
    #[schema(example = "1d")]
    pub first_response: String,
    #[schema(example = "15d")]
    pub resolve: String,
}

/// A tenant's SLA policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicyBody {
    pub rules: Vec<SlaRuleBody>,
    /// Reminder (提醒单) when this share of the time is used, 0.5..0.95.
    pub reminder_at: f64,
    /// Supervise order (督办单) this long past the deadline (`Nh`/`Nd`).
    pub supervise_after: String,
    pub review_required: bool,
    pub max_extensions: u32,
    pub max_extension_days: u32,
    pub max_reopens: u32,
    /// Returns after which the order is lifted a level; 0 = never.
    pub lift_after_returns: u32,
    pub allow_pause: bool,
    pub restart_on_redispatch: bool,
    /// Time a summoned unit has to report in (`Nh`/`Nd`).
    pub report_in_within: String,
}

impl From<pb::SlaPolicy> for SlaPolicyBody {
    fn from(p: pb::SlaPolicy) -> Self {
        Self {
            rules: p
                .rules
                .into_iter()
                .map(|r| SlaRuleBody {
                    category: r.category,
                    urgency: r.urgency,
                    sign_for: r.sign_for,
                    first_response: r.first_response,
                    resolve: r.resolve,
                })
                .collect(),
            reminder_at: p.reminder_at,
            supervise_after: p.supervise_after,
            review_required: p.review_required,
            max_extensions: p.max_extensions,
            max_extension_days: p.max_extension_days,
            max_reopens: p.max_reopens,
            lift_after_returns: p.lift_after_returns,
            allow_pause: p.allow_pause,
            restart_on_redispatch: p.restart_on_redispatch,
            report_in_within: p.report_in_within,
        }
    }
}

impl From<SlaPolicyBody> for pb::SlaPolicy {
    fn from(p: SlaPolicyBody) -> Self {
        Self {
            rules: p
                .rules
                .into_iter()
                .map(|r| pb::SlaRule {
                    category: r.category,
                    urgency: r.urgency,
                    sign_for: r.sign_for,
                    first_response: r.first_response,
                    resolve: r.resolve,
                })
                .collect(),
            reminder_at: p.reminder_at,
            supervise_after: p.supervise_after,
            review_required: p.review_required,
            max_extensions: p.max_extensions,
            max_extension_days: p.max_extension_days,
            max_reopens: p.max_reopens,
            lift_after_returns: p.lift_after_returns,
            allow_pause: p.allow_pause,
            restart_on_redispatch: p.restart_on_redispatch,
            report_in_within: p.report_in_within,
        }
    }
}

/// The tenant's SLA policy (built-in defaults until the admin sets one).
#[utoipa::path(
    get,
    path = "/api/v1/admin/sla-policy",
    tag = "work orders",
    responses(
        (status = 200, description = "The policy", body = SlaPolicyBody),
        Authenticated,
        (status = 403, description = "Dispatchers, supervisors and admins only", body = Problem),
    ),
)]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SlaPolicyBody>, ApiError> {
    let msg = pb::GetSlaPolicyRequest {};
    let resp = state
        .dispatch(&caller)
        .retried(msg, async |mut c, r| c.get_sla_policy(r).await)
        .await?;
    Ok(Json(resp.into()))
}

/// Replace the tenant's SLA policy (tenant admin). Applies to clocks
/// started from now on.
#[utoipa::path(
    put,
    path = "/api/v1/admin/sla-policy",
    tag = "work orders",
    request_body = SlaPolicyBody,
    responses(
        (status = 200, description = "The policy as saved", body = SlaPolicyBody),
        TenantAdmin,
        JsonInput,
        (status = 422, description = "A field is invalid, or two rules clash", body = Problem),
    ),
)]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<SlaPolicyBody>,
) -> Result<Json<SlaPolicyBody>, ApiError> {
    let msg: pb::SlaPolicy = body.into();
    let resp = state
        .dispatch(&caller)
        .retried(msg, async |mut c, r| c.put_sla_policy(r).await)
        .await?;
    Ok(Json(resp.into()))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarDayBody {
    /// YYYY-MM-DD
    #[schema(example = "2026-10-01")]
    pub date: String,
    /// holiday | workday (调休上班) | default (undo the tenant's change)
    pub kind: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarBody {
    pub year: i32,
    /// Holidays and make-up workdays of the year (national ones included).
    pub days: Vec<CalendarDayBody>,
    /// Working hours, e.g. `09:00-12:00`.
    pub shifts: Vec<String>,
}

impl From<pb::CalendarView> for CalendarBody {
    fn from(c: pb::CalendarView) -> Self {
        Self {
            year: c.year,
            days: c
                .days
                .into_iter()
                .map(|d| CalendarDayBody {
                    date: d.date,
                    kind: d.kind,
                    note: d.note,
                })
                .collect(),
            shifts: c.shifts,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CalendarQuery {
    /// Default: this year (China time).
    #[param(minimum = 2000, maximum = 2100)]
    pub year: Option<i32>,
}

/// The tenant's working calendar for a year.
#[utoipa::path(
    get,
    path = "/api/v1/admin/calendar",
    tag = "work orders",
    params(CalendarQuery),
    responses(
        (status = 200, description = "Holidays, make-up workdays and working hours", body = CalendarBody),
        Authenticated,
        (status = 403, description = "Dispatchers, supervisors and admins only", body = Problem),
        (status = 422, description = "year out of range", body = Problem),
    ),
)]
pub async fn get_calendar(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<CalendarQuery>, QueryRejection>,
) -> Result<Json<CalendarBody>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let year = q.year.unwrap_or(0);
    let msg = pb::GetCalendarRequest { year };
    let resp = state
        .dispatch(&caller)
        .retried(msg, async |mut c, r| c.get_calendar(r).await)
        .await?;
    Ok(Json(resp.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarChange {
    #[serde(default)]
    pub days: Vec<CalendarDayBody>,
    /// Replaces the working hours when given.
    #[serde(default)]
    pub shifts: Vec<String>,
}

/// Change days of the tenant's calendar or its working hours (tenant
/// admin), e.g. add next year's national arrangement.
#[utoipa::path(
    put,
    path = "/api/v1/admin/calendar",
    tag = "work orders",
    request_body = CalendarChange,
    responses(
        (status = 200, description = "The calendar of the first changed day's year", body = CalendarBody),
        TenantAdmin,
        JsonInput,
        (status = 422, description = "A day or the working hours are invalid", body = Problem),
    ),
)]
pub async fn set_calendar(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CalendarChange>,
) -> Result<Json<CalendarBody>, ApiError> {
    let msg = pb::SetCalendarDaysRequest {
        days: body
            .days
            .into_iter()
            .map(|d| pb::CalendarDay {
                date: d.date,
                kind: d.kind,
                note: d.note,
            })
            .collect(),
        shifts: body.shifts,
    };
    let resp = state
        .dispatch(&caller)
        .retried(msg, async |mut c, r| c.set_calendar_days(r).await)
        .await?;
    Ok(Json(resp.into()))
}
