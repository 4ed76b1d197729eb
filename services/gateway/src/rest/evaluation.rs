//! Evaluation: a ticket's judged facts and exclusion, the 三率 and the other
//! rates ranked per period, the tenant's formulas and callback policy.

use jiesu_proto::evaluation::{
    self as pb, ExcludeTicketRequest, GetCallbackPolicyRequest, GetRatesRequest,
    GetTicketEvaluationRequest, IncludeTicketRequest, ListFormulasRequest,
};

use super::{at, callbacks::CallbackView, prelude::*};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ticket_evaluation))
        .routes(routes!(exclude, include))
        .routes(routes!(get_rates))
        .routes(routes!(list_formulas, add_formula))
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(list_rules, add_rule))
        .routes(routes!(change_rule))
        .routes(routes!(list_warnings))
}

/// Counts are formula-free: what the rates are computed from.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountsView {
    /// Received in the period (by the day received, China time).
    pub received: i64,
    /// Excluded by a reviewer (不合理诉求, duplicate, out of scope).
    pub excluded: i64,
    pub merged: i64,
    pub withdrawn: i64,
    /// Received, not excluded, merged or withdrawn: what is judged.
    pub assessed: i64,
    pub dispatched: i64,
    pub signed_on_time: i64,
    pub responded: i64,
    pub responded_on_time: i64,
    pub resolved: i64,
    pub resolved_on_time: i64,
    pub resolved_same_day: i64,
    pub closed: i64,
    pub returned: i64,
    pub reopened: i64,
    pub callbacks_valid: i64,
    pub satisfied: i64,
    pub basic: i64,
    pub unsatisfied: i64,
    pub callback_resolved: i64,
    pub unreachable: i64,
    pub resolve_work_minutes: i64,
}

impl From<pb::Counts> for CountsView {
    fn from(c: pb::Counts) -> Self {
        Self {
            received: c.received,
            excluded: c.excluded,
            merged: c.merged,
            withdrawn: c.withdrawn,
            assessed: c.assessed,
            dispatched: c.dispatched,
            signed_on_time: c.signed_on_time,
            responded: c.responded,
            responded_on_time: c.responded_on_time,
            resolved: c.resolved,
            resolved_on_time: c.resolved_on_time,
            resolved_same_day: c.resolved_same_day,
            closed: c.closed,
            returned: c.returned,
            reopened: c.reopened,
            callbacks_valid: c.callbacks_valid,
            satisfied: c.satisfied,
            basic: c.basic,
            unsatisfied: c.unsatisfied,
            callback_resolved: c.callback_resolved,
            unreachable: c.unreachable,
            resolve_work_minutes: c.resolve_work_minutes,
        }
    }
}

/// Rates as fractions (0..1), the composite as a score (0..100); a rate
/// whose base is zero is null.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatesView {
    /// 响应率.
    pub response: Option<f64>,
    /// 解决率.
    pub resolution: Option<f64>,
    /// 满意率.
    pub satisfaction: Option<f64>,
    /// 综合得分.
    pub composite: Option<f64>,
    pub sign_on_time: Option<f64>,
    pub resolve_on_time: Option<f64>,
    /// 当日解决率.
    pub same_day: Option<f64>,
    pub return_rate: Option<f64>,
    pub reopen_rate: Option<f64>,
    /// Average working hours from dispatch to resolution.
    pub avg_work_hours: Option<f64>,
}

impl From<pb::Rates> for RatesView {
    fn from(r: pb::Rates) -> Self {
        Self {
            response: r.response,
            resolution: r.resolution,
            satisfaction: r.satisfaction,
            composite: r.composite,
            sign_on_time: r.sign_on_time,
            resolve_on_time: r.resolve_on_time,
            same_day: r.same_day,
            return_rate: r.return_rate,
            reopen_rate: r.reopen_rate,
            avg_work_hours: r.avg_work_hours,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketEvaluationView {
    pub ticket_id: String,
    pub tracking_no: String,
    pub region_code: String,
    pub category: String,
    pub category_name: String,
    pub channel: String,
    pub nature: String,
    pub unit_id: String,
    pub unit_name: String,
    pub status: String,
    pub received_at: Option<DateTime<Utc>>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
    pub responded_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub sign_due: Option<DateTime<Utc>>,
    pub respond_due: Option<DateTime<Utc>>,
    pub resolve_due: Option<DateTime<Utc>>,
    pub returns: u32,
    pub extensions: u32,
    pub reopens: u32,
    pub excluded: bool,
    pub exclusion_reason: String,
    pub exclusion_note: String,
    /// Callback rounds, oldest first.
    pub rounds: Vec<CallbackView>,
    /// What this ticket adds to the rates (0 or 1 each).
    pub counts: Option<CountsView>,
}

impl From<pb::TicketEvaluation> for TicketEvaluationView {
    fn from(t: pb::TicketEvaluation) -> Self {
        Self {
            ticket_id: t.ticket_id,
            tracking_no: t.tracking_no,
            region_code: t.region_code,
            category: t.category,
            category_name: t.category_name,
            channel: t.channel,
            nature: t.nature,
            unit_id: t.unit_id,
            unit_name: t.unit_name,
            status: t.status,
            received_at: at(t.received_at),
            dispatched_at: at(t.dispatched_at),
            signed_at: at(t.signed_at),
            responded_at: at(t.responded_at),
            resolved_at: at(t.resolved_at),
            closed_at: at(t.closed_at),
            sign_due: at(t.sign_due),
            respond_due: at(t.respond_due),
            resolve_due: at(t.resolve_due),
            returns: t.returns,
            extensions: t.extensions,
            reopens: t.reopens,
            excluded: t.excluded,
            exclusion_reason: t.exclusion_reason,
            exclusion_note: t.exclusion_note,
            rounds: t.rounds.into_iter().map(Into::into).collect(),
            counts: t.counts.map(Into::into),
        }
    }
}

/// A ticket as evaluation judges it: its steps against their deadlines,
/// its callback rounds and what it counts.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}/evaluation",
    tag = "evaluation",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    responses(
        (status = 200, description = "The judged facts", body = TicketEvaluationView),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 404, description = "No such ticket in the caller's scope (or not yet known to evaluation)", body = Problem),
    ),
)]
pub async fn ticket_evaluation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TicketEvaluationView>, ApiError> {
    let msg = GetTicketEvaluationRequest { ticket_id: id };
    let t = state
        .evaluation(&caller)
        .retried(msg, async |mut c, r| c.get_ticket_evaluation(r).await)
        .await?;
    Ok(Json(t.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExclusionBody {
    /// `unreasonable` (不合理诉求), `duplicate` (重复诉求) or
    /// `out_of_scope` (不属于受理范围).
    pub reason: String,
    /// Why, for the record (required, up to 500 characters).
    pub note: String,
}

/// A reviewer takes the ticket out of assessment; the rates count it as
/// excluded.
#[utoipa::path(
    put,
    path = "/api/v1/tickets/{id}/exclusion",
    tag = "evaluation",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    request_body = ExclusionBody,
    responses(
        (status = 200, description = "The ticket, excluded", body = TicketEvaluationView),
        Authenticated,
        JsonInput,
        (status = 403, response = SupervisorsAndAdmins),
        (status = 404, description = "No such ticket in the caller's scope", body = Problem),
        (status = 409, description = "Excluded already (`already_excluded`)", body = Problem),
    ),
)]
pub async fn exclude(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ExclusionBody>,
) -> Result<Json<TicketEvaluationView>, ApiError> {
    let msg = ExcludeTicketRequest {
        ticket_id: id,
        reason: body.reason,
        note: body.note,
    };
    let t = state
        .evaluation(&caller)
        .once(msg, async |mut c, r| c.exclude_ticket(r).await)
        .await?;
    Ok(Json(t.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionBody {
    /// Why it counts again (required).
    pub note: String,
}

/// The exclusion withdrawn: the ticket counts again.
#[utoipa::path(
    delete,
    path = "/api/v1/tickets/{id}/exclusion",
    tag = "evaluation",
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    request_body = InclusionBody,
    responses(
        (status = 200, description = "The ticket, counted again", body = TicketEvaluationView),
        Authenticated,
        JsonInput,
        (status = 403, response = SupervisorsAndAdmins),
        (status = 404, description = "No such ticket in the caller's scope", body = Problem),
        (status = 409, description = "Not excluded (`not_excluded`)", body = Problem),
    ),
)]
pub async fn include(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<InclusionBody>,
) -> Result<Json<TicketEvaluationView>, ApiError> {
    let msg = IncludeTicketRequest {
        ticket_id: id,
        note: body.note,
    };
    let t = state
        .evaluation(&caller)
        .once(msg, async |mut c, r| c.include_ticket(r).await)
        .await?;
    Ok(Json(t.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RatesQuery {
    /// `tenant`, `unit`, `district`, `street`, `community`, `category1`,
    /// `category2`, `category` or `channel`.
    pub dimension: String,
    /// `YYYY-MM-DD`, `YYYY-MM`, `YYYY-Qn` or `YYYY`; or give `from` and `to`.
    pub period: Option<String>,
    /// First day, `YYYY-MM-DD` (China time).
    pub from: Option<String>,
    /// Last day, included.
    pub to: Option<String>,
    /// Only these keys, comma-separated (unit ids, region or category codes).
    pub keys: Option<String>,
    /// Region dimensions: only rows under this region code.
    pub within: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RateRowView {
    pub key: String,
    /// The unit's or category's name; empty for regions and channels.
    pub name: String,
    pub counts: Option<CountsView>,
    pub rates: Option<RatesView>,
    /// 1 = best composite score; 0 = not ranked (nothing to judge).
    pub rank: u32,
    pub previous: Option<RatesView>,
    pub previous_rank: u32,
}

impl From<pb::RateRow> for RateRowView {
    fn from(r: pb::RateRow) -> Self {
        Self {
            key: r.key,
            name: r.name,
            counts: r.counts.map(Into::into),
            rates: r.rates.map(Into::into),
            rank: r.rank,
            previous: r.previous.map(Into::into),
            previous_rank: r.previous_rank,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RatesAnswer {
    pub dimension: String,
    pub from: String,
    pub to: String,
    pub previous_from: String,
    pub previous_to: String,
    /// The formula in force on the period's first day.
    pub formula: Option<FormulaView>,
    /// Days inside the period on which another formula took effect.
    pub formula_changes_within: Vec<String>,
    /// Ranked, best first; unranked rows last.
    pub rows: Vec<RateRowView>,
    pub total: Option<RateRowView>,
}

/// The 三率 and the other rates per unit, region, category or channel over
/// a period, ranked, beside the period before (a city or province token
/// sees its counties side by side with `dimension=tenant`). A handler sees
/// its own unit's row only.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/rates",
    tag = "evaluation",
    params(RatesQuery),
    responses(
        (status = 200, description = "Counts, rates and ranks", body = RatesAnswer),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn get_rates(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<RatesQuery>, QueryRejection>,
) -> Result<Json<RatesAnswer>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = GetRatesRequest {
        dimension: q.dimension,
        period: q.period.unwrap_or_default(),
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
        keys: q
            .keys
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        within: q.within.unwrap_or_default(),
    };
    let r = state
        .evaluation(&caller)
        .retried(msg, async |mut c, r| c.get_rates(r).await)
        .await?;
    let mut rows: Vec<RateRowView> = r.rows.into_iter().map(Into::into).collect();
    name_regions(&state, &caller, &mut rows).await;
    Ok(Json(RatesAnswer {
        dimension: r.dimension,
        from: r.from,
        to: r.to,
        previous_from: r.previous_from,
        previous_to: r.previous_to,
        formula: r.formula.map(Into::into),
        formula_changes_within: r.formula_changes_within,
        rows,
        total: r.total.map(Into::into),
    }))
}

/// Names the rows keyed by a region code (districts, streets,
/// communities, counties) from grid's regions, else from the street units
/// of the directory. Best effort: a row grid and dispatch cannot name
/// keeps its code.
pub async fn name_regions(state: &AppState, caller: &Caller, rows: &mut [RateRowView]) {
    let pad = |c: &str| format!("{c:0<12}");
    let unnamed = |r: &RateRowView| {
        r.name.is_empty() && r.key.len() == 12 && r.key.bytes().all(|b| b.is_ascii_digit())
    };
    if !rows.iter().any(unnamed) {
        return;
    }
    let mut names = std::collections::BTreeMap::new();
    match state
        .grid(caller)
        .retried(
            jiesu_proto::grid::ListRegionsRequest::default(),
            async |mut c, r| c.list_regions(r).await,
        )
        .await
    {
        Ok(r) => {
            for region in r.regions {
                names.insert(pad(&region.code), region.name);
            }
        }
        Err(e) => tracing::debug!(error = %e, "regions not named from grid"),
    }
    if let Ok(units) = state
        .dispatch(caller)
        .retried(
            jiesu_proto::dispatch::ListUnitsRequest {
                kind: "street".into(),
                ..Default::default()
            },
            async |mut c, r| c.list_units(r).await,
        )
        .await
    {
        for u in units.units {
            names.entry(pad(&u.region_code)).or_insert(u.name);
        }
    }
    for r in rows.iter_mut().filter(|r| unnamed(r)) {
        if let Some(n) = names.get(&r.key) {
            r.name.clone_from(n);
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormulaView {
    /// In force from this day (China time); empty for the built-in one.
    pub effective_from: String,
    pub satisfied_weight: f64,
    pub basic_weight: f64,
    pub response_weight: f64,
    pub resolution_weight: f64,
    pub satisfaction_weight: f64,
    /// `callback` or `closed`.
    pub resolution_basis: String,
    /// `on_time` or `any`.
    pub response_basis: String,
    pub note: String,
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
    pub builtin: bool,
}

impl From<pb::Formula> for FormulaView {
    fn from(f: pb::Formula) -> Self {
        Self {
            effective_from: f.effective_from,
            satisfied_weight: f.satisfied_weight,
            basic_weight: f.basic_weight,
            response_weight: f.response_weight,
            resolution_weight: f.resolution_weight,
            satisfaction_weight: f.satisfaction_weight,
            resolution_basis: f.resolution_basis,
            response_basis: f.response_basis,
            note: f.note,
            created_by: f.created_by,
            created_at: at(f.created_at),
            builtin: f.builtin,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormulaList {
    /// Oldest first; the built-in one first of all.
    pub formulas: Vec<FormulaView>,
}

/// The tenant's formulas, each in force from its day.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/formulas",
    tag = "evaluation",
    responses(
        (status = 200, description = "Formulas, oldest first", body = FormulaList),
        Authenticated,
        (status = 403, response = StaffOnly),
    ),
)]
pub async fn list_formulas(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<FormulaList>, ApiError> {
    let r = state
        .evaluation(&caller)
        .retried(ListFormulasRequest {}, async |mut c, r| {
            c.list_formulas(r).await
        })
        .await?;
    Ok(Json(FormulaList {
        formulas: r.formulas.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormulaBody {
    /// `YYYY-MM-DD`, tomorrow (China time) or later.
    pub effective_from: String,
    /// 满意率 = (满意 × satisfied_weight + 基本满意 × basic_weight) / valid callbacks.
    pub satisfied_weight: f64,
    pub basic_weight: f64,
    /// Composite = 100 × (响应 × response_weight + 解决 × resolution_weight +
    /// 满意 × satisfaction_weight); the three add up to 1.
    pub response_weight: f64,
    pub resolution_weight: f64,
    pub satisfaction_weight: f64,
    /// `callback` (citizens who say resolved / valid callbacks) or `closed`.
    pub resolution_basis: String,
    /// `on_time` (responded in time / dispatched) or `any`.
    pub response_basis: String,
    #[serde(default)]
    pub note: String,
}

/// Adds a formula from a future day. Formulas are never edited: the past
/// keeps the formula it was judged by.
#[utoipa::path(
    post,
    path = "/api/v1/evaluation/formulas",
    tag = "evaluation",
    request_body = FormulaBody,
    responses(
        (status = 200, description = "The formula added", body = FormulaView),
        TenantAdmin,
        JsonInput,
        (status = 409, description = "A formula starts that day already (`formula_exists`)", body = Problem),
    ),
)]
pub async fn add_formula(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<FormulaBody>,
) -> Result<Json<FormulaView>, ApiError> {
    let msg = pb::Formula {
        effective_from: b.effective_from,
        satisfied_weight: b.satisfied_weight,
        basic_weight: b.basic_weight,
        response_weight: b.response_weight,
        resolution_weight: b.resolution_weight,
        satisfaction_weight: b.satisfaction_weight,
        resolution_basis: b.resolution_basis,
        response_basis: b.response_basis,
        note: b.note,
        ..Default::default()
    };
    let f = state
        .evaluation(&caller)
        .once(msg, async |mut c, r| c.put_formula(r).await)
        .await?;
    Ok(Json(f.into()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackPolicyView {
    /// Natures called back; empty = all but `skip_natures`.
    #[serde(default)]
    pub natures: Vec<String>,
    #[serde(default)]
    pub skip_natures: Vec<String>,
    /// Hours after closing within which the callback is due (1..720).
    pub due_hours: u32,
    /// Failed attempts before the round is unreachable (1..10).
    pub max_attempts: u32,
    /// Reopenings (重办) a callback may ask for per ticket (0..10).
    pub max_reopens: u32,
    /// Whether the caller gets an SMS with a one-time link to rate the
    /// closed request (回访短信); default on.
    #[serde(default = "super::yes")]
    pub sms_invite: bool,
}

impl From<pb::CallbackPolicy> for CallbackPolicyView {
    fn from(p: pb::CallbackPolicy) -> Self {
        Self {
            natures: p.natures,
            skip_natures: p.skip_natures,
            due_hours: p.due_hours,
            max_attempts: p.max_attempts,
            max_reopens: p.max_reopens,
            sms_invite: p.sms_invite.unwrap_or(true),
        }
    }
}

/// The tenant's callback policy.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/callback-policy",
    tag = "evaluation",
    responses(
        (status = 200, description = "The policy", body = CallbackPolicyView),
        Authenticated,
        (status = 403, response = StaffOnly),
    ),
)]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CallbackPolicyView>, ApiError> {
    let p = state
        .evaluation(&caller)
        .retried(GetCallbackPolicyRequest {}, async |mut c, r| {
            c.get_callback_policy(r).await
        })
        .await?;
    Ok(Json(p.into()))
}

/// Replaces the tenant's callback policy (rounds already open keep theirs).
#[utoipa::path(
    put,
    path = "/api/v1/evaluation/callback-policy",
    tag = "evaluation",
    request_body = CallbackPolicyView,
    responses(
        (status = 200, description = "The policy now", body = CallbackPolicyView),
        TenantAdmin,
        JsonInput,
    ),
)]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<CallbackPolicyView>,
) -> Result<Json<CallbackPolicyView>, ApiError> {
    let msg = pb::CallbackPolicy {
        natures: b.natures,
        skip_natures: b.skip_natures,
        due_hours: b.due_hours,
        max_attempts: b.max_attempts,
        max_reopens: b.max_reopens,
        sms_invite: Some(b.sms_invite),
    };
    let p = state
        .evaluation(&caller)
        .retried(msg, async |mut c, r| c.put_callback_policy(r).await)
        .await?;
    Ok(Json(p.into()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WarningRuleBody {
    /// e.g. 解决率低于75%预警.
    pub name: String,
    /// Below the threshold: `response`, `resolution`, `satisfaction`,
    /// `composite`; above it: `late_share` (resolutions after their
    /// deadline); `satisfaction_falling`: 满意率 fell two windows running.
    pub metric: String,
    /// `unit`, `street` or `district`.
    pub dimension: String,
    /// Days judged, ending today (1..366).
    pub window_days: u32,
    /// A fraction 0..1 (composite: a score 0..100).
    #[serde(default)]
    pub threshold: f64,
    /// Fewer tickets in the rate's base: not judged.
    pub min_tickets: u32,
    #[serde(default = "super::yes")]
    pub active: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarningRuleView {
    pub id: String,
    #[serde(flatten)]
    pub rule: WarningRuleBody,
}

impl From<pb::WarningRule> for WarningRuleView {
    fn from(r: pb::WarningRule) -> Self {
        Self {
            id: r.id,
            rule: WarningRuleBody {
                name: r.name,
                metric: r.metric,
                dimension: r.dimension,
                window_days: r.window_days,
                threshold: r.threshold,
                min_tickets: r.min_tickets,
                active: r.active,
            },
        }
    }
}

fn rule_message(id: String, b: WarningRuleBody) -> pb::WarningRule {
    pb::WarningRule {
        id,
        name: b.name,
        metric: b.metric,
        dimension: b.dimension,
        window_days: b.window_days,
        threshold: b.threshold,
        min_tickets: b.min_tickets,
        active: b.active,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarningRuleList {
    pub rules: Vec<WarningRuleView>,
}

/// The tenant's early-warning rules.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/warning-rules",
    tag = "evaluation",
    responses(
        (status = 200, description = "Rules", body = WarningRuleList),
        Authenticated,
        (status = 403, response = StaffOnly),
    ),
)]
pub async fn list_rules(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WarningRuleList>, ApiError> {
    let r = state
        .evaluation(&caller)
        .retried(pb::ListWarningRulesRequest {}, async |mut c, r| {
            c.list_warning_rules(r).await
        })
        .await?;
    Ok(Json(WarningRuleList {
        rules: r.rules.into_iter().map(Into::into).collect(),
    }))
}

/// Adds an early-warning rule (e.g. 解决率 under 75% over 30 days with at
/// least 10 valid callbacks). Rules are checked every few minutes.
#[utoipa::path(
    post,
    path = "/api/v1/evaluation/warning-rules",
    tag = "evaluation",
    request_body = WarningRuleBody,
    responses(
        (status = 200, description = "The rule added", body = WarningRuleView),
        TenantAdmin,
        JsonInput,
    ),
)]
pub async fn add_rule(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<WarningRuleBody>,
) -> Result<Json<WarningRuleView>, ApiError> {
    // Not retried: a lost answer may mean the rule exists.
    let r = state
        .evaluation(&caller)
        .once(rule_message(String::new(), b), async |mut c, r| {
            c.put_warning_rule(r).await
        })
        .await?;
    Ok(Json(r.into()))
}

/// Changes a rule; `active: false` retires it and clears its warnings.
#[utoipa::path(
    put,
    path = "/api/v1/evaluation/warning-rules/{id}",
    tag = "evaluation",
    params(("id" = String, Path, format = Uuid, description = "Rule id")),
    request_body = WarningRuleBody,
    responses(
        (status = 200, description = "The rule now", body = WarningRuleView),
        TenantAdmin,
        JsonInput,
        (status = 404, description = "No such rule of the tenant", body = Problem),
    ),
)]
pub async fn change_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<WarningRuleBody>,
) -> Result<Json<WarningRuleView>, ApiError> {
    if id.trim().is_empty() {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id",
            tr!("不能为空", "must not be empty"),
        ));
    }
    let r = state
        .evaluation(&caller)
        .retried(rule_message(id, b), async |mut c, r| {
            c.put_warning_rule(r).await
        })
        .await?;
    Ok(Json(r.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WarningQuery {
    /// `open` (default), `cleared` or `all` (the history).
    pub status: Option<String>,
    /// 1..500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarningView {
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub dimension: String,
    /// The unit id or region code warned.
    pub key: String,
    pub name: String,
    pub metric: String,
    /// The figure when raised and the threshold it broke.
    pub figure: f64,
    pub threshold: f64,
    pub base: i64,
    /// `open` or `cleared`.
    pub status: String,
    pub opened_at: Option<DateTime<Utc>>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub cleared_figure: f64,
    pub last_figure: f64,
    pub window_from: String,
    pub window_to: String,
    pub tenant: String,
    /// When the rule last judged it.
    pub checked_at: Option<DateTime<Utc>>,
}

impl From<pb::Warning> for WarningView {
    fn from(w: pb::Warning) -> Self {
        Self {
            id: w.id,
            rule_id: w.rule_id,
            rule_name: w.rule_name,
            dimension: w.dimension,
            key: w.key,
            name: w.name,
            metric: w.metric,
            figure: w.figure,
            threshold: w.threshold,
            base: w.base,
            status: w.status,
            opened_at: at(w.opened_at),
            cleared_at: at(w.cleared_at),
            cleared_figure: w.cleared_figure,
            last_figure: w.last_figure,
            window_from: w.window_from,
            window_to: w.window_to,
            tenant: w.tenant,
            checked_at: at(w.checked_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarningPage {
    pub warnings: Vec<WarningView>,
    pub next_page_token: String,
}

/// Early warnings in the caller's scope, newest first: open ones, or the
/// history with those cleared.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/warnings",
    tag = "evaluation",
    params(WarningQuery),
    responses(
        (status = 200, description = "Warnings", body = WarningPage),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn list_warnings(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<WarningQuery>, QueryRejection>,
) -> Result<Json<WarningPage>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = pb::ListWarningsRequest {
        status: q.status.unwrap_or_default(),
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
    };
    let r = state
        .evaluation(&caller)
        .retried(msg, async |mut c, r| c.list_warnings(r).await)
        .await?;
    Ok(Json(WarningPage {
        warnings: r.warnings.into_iter().map(Into::into).collect(),
        next_page_token: r.next_page_token,
    }))
}
