//! gRPC handlers of evaluation: the staff service and the public one.

mod hotspots;
mod proactive;
mod rates;
mod report;
mod views;

use chrono::Utc;
use jiesu_auth::{Principal, Role, principal};
use jiesu_bus::Outbox;
use jiesu_common::{time::china_today, tr};
use jiesu_proto::{
    evaluation::{
        self as pb, evaluation_service_server::EvaluationService,
        public_evaluation_service_server::PublicEvaluationService, record_callback_request::Answer,
    },
    intake::{TrackTicketRequest, public_intake_service_client::PublicIntakeServiceClient},
    status,
    time::to_timestamp,
};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, TransactionTrait};
use tonic::{Code, Request, Response, Status, transport::Channel};
use uuid::Uuid;

use crate::{
    callbacks::{self, Answerer, Round, VerdictIn},
    domain::{CallbackPolicy, EXCLUSION_REASONS, FAILED_OUTCOMES, counts::SATISFACTIONS},
    store::{self, facts, formulas},
    warnings,
};

/// Staff who read evaluation's figures and tickets.
const READERS: &[Role] = &[
    Role::Agent,
    Role::Dispatcher,
    Role::Supervisor,
    Role::TenantAdmin,
    Role::PlatformAdmin,
];
/// Who call citizens back.
const CALLERS: &[Role] = &[Role::Agent, Role::Dispatcher, Role::Supervisor];
/// Who may take a ticket out of assessment.
const REVIEWERS: &[Role] = &[Role::Supervisor, Role::TenantAdmin];
const ADMINS: &[Role] = &[Role::TenantAdmin, Role::PlatformAdmin];

const MAX_TEXT: usize = 500;

#[derive(Clone)]
pub struct Core {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    /// Intake's public service, which checks a tracking number and phone.
    pub intake: PublicIntakeServiceClient<Channel>,
}

pub(crate) fn db_error(e: DbErr) -> Status {
    if jiesu_db::unreachable(&e) {
        tracing::warn!(error = %e, "evaluation database unreachable");
        return status::database_unavailable();
    }
    tracing::error!(error = %e, "evaluation database error");
    status::internal()
}

/// The unit a caller reads for: one with no reader role (a handler, even
/// with a grid worker's or mediator's role beside it) sees only its own
/// unit's tickets, figures and items; a handler token without a unit sees
/// none (`""`). `None`: the caller reads by scope.
pub(crate) fn own_unit(who: &Principal) -> Option<&str> {
    (!READERS.iter().any(|r| who.has_role(*r))).then(|| who.unit.as_deref().unwrap_or(""))
}

/// The digits region keys must start with: the `within` code's (a region
/// code, 2 to 12 digits at a level), or the caller's scope where that is
/// narrower, so a street's staff read their street's rows.
pub(crate) fn region_prefix(who: &Principal, within: &str) -> Result<String, Status> {
    let scope = who.scope.prefix();
    let within = match within.trim() {
        "" => String::new(),
        w => jiesu_auth::Region::parse(w)
            .map_err(|_| {
                status::invalid_field(
                    "within",
                    tr!(
                        "必须是行政区划代码（2、4、6、9 或 12 位）",
                        "must be a region code (2, 4, 6, 9 or 12 digits)"
                    ),
                )
            })?
            .prefix()
            .to_owned(),
    };
    Ok(if within.len() >= scope.len() {
        within
    } else {
        scope.to_owned()
    })
}

fn ticket_id(raw: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| status::invalid_field("ticket_id", tr!("必须是 UUID", "must be a UUID")))
}

fn invitation_not_found() -> Status {
    status::not_found(tr!("评价链接", "invitation link"))
}

fn ticket_not_found() -> Status {
    status::not_found(tr!("工单", "ticket"))
}

/// The ticket's facts if the caller may see them: in scope, and for a
/// handler only its own unit's.
async fn visible_facts(
    db: &impl sea_orm::ConnectionTrait,
    who: &Principal,
    id: Uuid,
) -> Result<facts::Model, Status> {
    let f = facts::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db_error)?
        .filter(|f| f.received_at.is_some() && who.can_see(f.region_code()))
        .ok_or_else(ticket_not_found)?;
    if let Some(unit) = own_unit(who)
        && f.unit_id != unit
    {
        return Err(ticket_not_found());
    }
    Ok(f)
}

fn text_field(field: &str, raw: &str, required: bool) -> Result<String, Status> {
    let t = raw.trim();
    if required && t.is_empty() {
        return Err(status::invalid_field(
            field,
            tr!("不能为空", "must not be empty"),
        ));
    }
    if t.chars().count() > MAX_TEXT {
        return Err(status::invalid_field(
            field,
            tr!(
                "不能超过 {} 个字",
                "must not exceed {} characters",
                MAX_TEXT
            ),
        ));
    }
    Ok(jiesu_pii::redact_text(t))
}

fn verdict_in(v: Option<&pb::VerdictInput>, field: &str) -> Result<VerdictIn, Status> {
    let v = v.ok_or_else(|| status::invalid_field(field, tr!("不能为空", "must not be empty")))?;
    if !SATISFACTIONS.contains(&v.satisfaction.as_str()) {
        return Err(status::invalid_field(
            &format!("{field}.satisfaction"),
            tr!(
                "必须是 satisfied（满意）、basic（基本满意）或 unsatisfied（不满意）",
                "must be satisfied, basic or unsatisfied"
            ),
        ));
    }
    Ok(VerdictIn {
        resolved: v.resolved,
        satisfaction: v.satisfaction.clone(),
        comment: text_field(&format!("{field}.comment"), &v.comment, false)?,
    })
}

/// Refuses an answer to a round that is not open.
fn open_or_refuse(r: Option<Round>) -> Result<Round, Status> {
    let r = r.ok_or_else(|| {
        status::coded(
            Code::FailedPrecondition,
            "no_callback",
            tr!(
                "该工单没有回访任务（尚未办结，或其诉求性质不需回访）",
                "the ticket has no callback (not closed yet, or its nature is not called back)"
            ),
            None,
        )
    })?;
    match r.status.as_str() {
        "open" => Ok(r),
        "answered" => Err(status::coded(
            Code::AlreadyExists,
            "verdict_given",
            tr!(
                "第 {} 轮回访已有评价（{}），以首次评价为准",
                "round {} has a verdict already ({}); the first one stands",
                r.round,
                crate::domain::satisfaction_zh(r.satisfaction.as_deref().unwrap_or(""))
            ),
            None,
        )),
        other => Err(status::coded(
            Code::FailedPrecondition,
            "callback_closed",
            tr!(
                "第 {} 轮回访已结束（{}）",
                "round {} has ended ({})",
                r.round,
                match other {
                    "unreachable" => "联系不上",
                    "refused" => "拒绝评价",
                    _ => "已被新一轮取代",
                }
            ),
            None,
        )),
    }
}

pub struct EvaluationApi {
    core: Core,
}

impl EvaluationApi {
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    async fn answer(
        &self,
        f: &facts::Model,
        round: u32,
        verdict: VerdictIn,
        who: Answerer<'_>,
    ) -> Result<pb::CallbackTask, Status> {
        let txn = self.core.db.begin().await.map_err(db_error)?;
        let r = open_or_refuse(
            callbacks::lock_round(&txn, f.ticket_id, round)
                .await
                .map_err(db_error)?,
        )?;
        callbacks::give_verdict(
            &txn,
            &self.core.outbox,
            &r,
            &verdict,
            &who,
            &f.tracking_no,
            Utc::now(),
        )
        .await
        .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        self.core.outbox.wake();
        tracing::info!(ticket_id = %f.ticket_id, round = r.round, method = who.method, "callback verdict recorded");
        self.task(f, r.round).await
    }

    async fn task(&self, f: &facts::Model, round: i32) -> Result<pb::CallbackTask, Status> {
        let rounds = callbacks::rounds(&self.core.db, f.ticket_id)
            .await
            .map_err(db_error)?;
        let log = callbacks::attempts(&self.core.db, f.ticket_id)
            .await
            .map_err(db_error)?;
        rounds
            .iter()
            .find(|r| r.round == round)
            .map(|r| views::task(r, f, &log))
            .ok_or_else(status::internal)
    }
}

#[tonic::async_trait]
impl EvaluationService for EvaluationApi {
    async fn get_ticket_evaluation(
        &self,
        request: Request<pb::GetTicketEvaluationRequest>,
    ) -> Result<Response<pb::TicketEvaluation>, Status> {
        let who = principal(&request)?;
        let mut roles = READERS.to_vec();
        roles.push(Role::Handler);
        who.require_any(&roles)?;
        let id = ticket_id(&request.get_ref().ticket_id)?;
        let f = visible_facts(&self.core.db, &who, id).await?;
        Ok(Response::new(views::ticket(&self.core.db, &f).await?))
    }

    async fn list_callbacks(
        &self,
        request: Request<pb::ListCallbacksRequest>,
    ) -> Result<Response<pb::ListCallbacksResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(READERS)?;
        let req = request.get_ref();
        views::list_callbacks(&self.core.db, &who, req)
            .await
            .map(Response::new)
    }

    async fn record_callback(
        &self,
        request: Request<pb::RecordCallbackRequest>,
    ) -> Result<Response<pb::CallbackTask>, Status> {
        let who = principal(&request)?;
        who.require_any(CALLERS)?;
        let req = request.get_ref();
        let id = ticket_id(&req.ticket_id)?;
        let answer = req.answer.as_ref().ok_or_else(|| {
            status::invalid_field(
                "verdict",
                tr!(
                    "必须给出评价（verdict）或未接通的结果（failed）",
                    "give a verdict, or the outcome of a failed attempt (failed)"
                ),
            )
        })?;
        let role = if who.has_role(Role::Agent) {
            "agent"
        } else if who.has_role(Role::Dispatcher) {
            "dispatcher"
        } else {
            "supervisor"
        };
        let by = Answerer {
            sub: &who.sub,
            role,
            method: "phone",
        };
        let f = visible_facts(&self.core.db, &who, id).await?;
        match answer {
            Answer::Verdict(v) => {
                let verdict = verdict_in(Some(v), "verdict")?;
                self.answer(&f, req.round, verdict, by)
                    .await
                    .map(Response::new)
            }
            Answer::Failed(x) => {
                if !FAILED_OUTCOMES.contains(&x.outcome.as_str()) {
                    return Err(status::invalid_field(
                        "failed.outcome",
                        tr!(
                            "必须是 no_answer（无人接听）、busy（占线）、wrong_number（号码错误）或 refused（拒绝评价）",
                            "must be no_answer, busy, wrong_number or refused"
                        ),
                    ));
                }
                let note = text_field("failed.note", &x.note, false)?;
                let txn = self.core.db.begin().await.map_err(db_error)?;
                let r = open_or_refuse(
                    callbacks::lock_round(&txn, id, req.round)
                        .await
                        .map_err(db_error)?,
                )?;
                callbacks::failed_attempt(&txn, &r, &x.outcome, &note, &by, Utc::now())
                    .await
                    .map_err(db_error)?;
                txn.commit().await.map_err(db_error)?;
                self.task(&f, r.round).await.map(Response::new)
            }
        }
    }

    async fn rate_as_citizen(
        &self,
        request: Request<pb::RateAsCitizenRequest>,
    ) -> Result<Response<pb::CallbackTask>, Status> {
        let who = principal(&request)?;
        // Staff enter tickets under their own `sub`: a staff token that
        // also says citizen must not rate what it entered.
        if !who.is_citizen_only() {
            return Err(status::permission_denied(tr!(
                "只有诉求人本人（市民令牌）可以评价",
                "only the citizen who raised it (a citizen token) may rate it"
            )));
        }
        let req = request.get_ref();
        let id = ticket_id(&req.ticket_id)?;
        let verdict = verdict_in(req.verdict.as_ref(), "verdict")?;
        let f = facts::Entity::find_by_id(id)
            .one(&self.core.db)
            .await
            .map_err(db_error)?
            .filter(|f| {
                f.received_at.is_some()
                    && !f.submitter_sub.is_empty()
                    && f.submitter_sub == who.sub
                    && f.tenant == who.tenant.code()
            })
            .ok_or_else(ticket_not_found)?;
        let by = Answerer {
            sub: &who.sub,
            role: "citizen",
            method: "app",
        };
        self.answer(&f, 0, verdict, by).await.map(Response::new)
    }

    async fn exclude_ticket(
        &self,
        request: Request<pb::ExcludeTicketRequest>,
    ) -> Result<Response<pb::TicketEvaluation>, Status> {
        let who = principal(&request)?;
        who.require_any(REVIEWERS)?;
        let req = request.get_ref();
        let id = ticket_id(&req.ticket_id)?;
        if !EXCLUSION_REASONS.iter().any(|(r, _)| *r == req.reason) {
            return Err(status::invalid_field(
                "reason",
                tr!(
                    "必须是 unreasonable（不合理诉求）、duplicate（重复诉求）或 out_of_scope（不属于受理范围）",
                    "must be unreasonable, duplicate or out_of_scope"
                ),
            ));
        }
        let note = text_field("note", &req.note, true)?;
        let f = visible_facts(&self.core.db, &who, id).await?;
        if f.excluded_reason.is_some() {
            return Err(status::coded(
                Code::FailedPrecondition,
                "already_excluded",
                tr!("该工单已不计入考核", "the ticket is excluded already"),
                None,
            ));
        }
        let (reason, sub) = (req.reason.clone(), who.sub.clone());
        self.set_exclusion(&f, move |m| {
            m.excluded_reason = Some(reason);
            m.excluded_note = note;
            m.excluded_by = sub;
            m.excluded_at = Some(Utc::now());
        })
        .await
        .map(Response::new)
    }

    async fn include_ticket(
        &self,
        request: Request<pb::IncludeTicketRequest>,
    ) -> Result<Response<pb::TicketEvaluation>, Status> {
        let who = principal(&request)?;
        who.require_any(REVIEWERS)?;
        let req = request.get_ref();
        let id = ticket_id(&req.ticket_id)?;
        let note = text_field("note", &req.note, true)?;
        let f = visible_facts(&self.core.db, &who, id).await?;
        if f.excluded_reason.is_none() {
            return Err(status::coded(
                Code::FailedPrecondition,
                "not_excluded",
                tr!("该工单没有被排除在考核之外", "the ticket is not excluded"),
                None,
            ));
        }
        let sub = who.sub.clone();
        self.set_exclusion(&f, move |m| {
            m.excluded_reason = None;
            m.excluded_note = format!("恢复计入考核：{note}");
            m.excluded_by = sub;
            m.excluded_at = Some(Utc::now());
        })
        .await
        .map(Response::new)
    }

    async fn get_rates(
        &self,
        request: Request<pb::GetRatesRequest>,
    ) -> Result<Response<pb::RatesResponse>, Status> {
        let who = principal(&request)?;
        let mut roles = READERS.to_vec();
        roles.push(Role::Handler);
        who.require_any(&roles)?;
        rates::get(&self.core.db, &who, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_formulas(
        &self,
        request: Request<pb::ListFormulasRequest>,
    ) -> Result<Response<pb::ListFormulasResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(READERS)?;
        let all = formulas::list(&self.core.db, who.tenant.code())
            .await
            .map_err(db_error)?;
        Ok(Response::new(pb::ListFormulasResponse {
            formulas: all.iter().map(views::formula).collect(),
        }))
    }

    async fn put_formula(
        &self,
        request: Request<pb::Formula>,
    ) -> Result<Response<pb::Formula>, Status> {
        let who = principal(&request)?;
        who.require_any(ADMINS)?;
        let req = request.get_ref();
        let day = chrono::NaiveDate::parse_from_str(req.effective_from.trim(), "%Y-%m-%d")
            .map_err(|_| {
                status::invalid_field(
                    "effective_from",
                    tr!("格式应为 YYYY-MM-DD", "must be YYYY-MM-DD"),
                )
            })?;
        if day <= china_today() || chrono::Datelike::year(&day) > 2100 {
            return Err(status::invalid_field(
                "effective_from",
                tr!(
                    "新公式最早从明天起生效（最晚 2100 年），已经过去的日子保持原公式",
                    "a new formula takes effect tomorrow at the earliest (2100 at the latest); past days keep theirs"
                ),
            ));
        }
        let formula = crate::domain::rates::Formula {
            satisfied_weight: req.satisfied_weight,
            basic_weight: req.basic_weight,
            response_weight: req.response_weight,
            resolution_weight: req.resolution_weight,
            satisfaction_weight: req.satisfaction_weight,
            resolution_basis: req.resolution_basis.trim().to_owned(),
            response_basis: req.response_basis.trim().to_owned(),
        };
        formula
            .check()
            .map_err(|(field, msg)| status::invalid_field(field, msg))?;
        let stored = formulas::Stored {
            effective_from: day,
            formula,
            note: text_field("note", &req.note, false)?,
            created_by: who.sub.clone(),
            created_at: None,
            builtin: false,
        };
        let added = formulas::insert(&self.core.db, who.tenant.code(), &stored)
            .await
            .map_err(db_error)?;
        if !added {
            return Err(status::coded(
                Code::AlreadyExists,
                "formula_exists",
                tr!(
                    "{} 起生效的公式已经存在；公式不能修改，只能另定生效日期",
                    "a formula in force from {} exists; formulas are never edited, add one from another day",
                    day
                ),
                Some("effective_from"),
            ));
        }
        tracing::info!(tenant = %who.tenant.code(), effective_from = %day, "formula added");
        let all = formulas::list(&self.core.db, who.tenant.code())
            .await
            .map_err(db_error)?;
        all.iter()
            .find(|s| s.effective_from == day && !s.builtin)
            .map(|s| Response::new(views::formula(s)))
            .ok_or_else(status::internal)
    }

    async fn get_callback_policy(
        &self,
        request: Request<pb::GetCallbackPolicyRequest>,
    ) -> Result<Response<pb::CallbackPolicy>, Status> {
        let who = principal(&request)?;
        who.require_any(READERS)?;
        let p = callbacks::policy(&self.core.db, who.tenant.code())
            .await
            .map_err(db_error)?;
        Ok(Response::new(views::policy(&p)))
    }

    async fn put_callback_policy(
        &self,
        request: Request<pb::CallbackPolicy>,
    ) -> Result<Response<pb::CallbackPolicy>, Status> {
        let who = principal(&request)?;
        who.require_any(ADMINS)?;
        let req = request.get_ref();
        let p = CallbackPolicy {
            natures: req.natures.iter().map(|n| n.trim().to_owned()).collect(),
            skip_natures: req
                .skip_natures
                .iter()
                .map(|n| n.trim().to_owned())
                .collect(),
            due_hours: req.due_hours,
            max_attempts: req.max_attempts,
            max_reopens: req.max_reopens,
            sms_invite: req.sms_invite.unwrap_or(true),
        };
        p.check()
            .map_err(|(field, msg)| status::invalid_field(field, msg))?;
        callbacks::put_policy(&self.core.db, who.tenant.code(), &p, &who.sub)
            .await
            .map_err(db_error)?;
        Ok(Response::new(views::policy(&p)))
    }

    async fn list_warning_rules(
        &self,
        request: Request<pb::ListWarningRulesRequest>,
    ) -> Result<Response<pb::ListWarningRulesResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(READERS)?;
        let rules = warnings::rules(&self.core.db, who.tenant.code())
            .await
            .map_err(db_error)?;
        Ok(Response::new(pb::ListWarningRulesResponse {
            rules: rules.iter().map(views::rule).collect(),
        }))
    }

    async fn put_warning_rule(
        &self,
        request: Request<pb::WarningRule>,
    ) -> Result<Response<pb::WarningRule>, Status> {
        let who = principal(&request)?;
        who.require_any(ADMINS)?;
        let req = request.get_ref();
        let id =
            match req.id.trim() {
                "" => None,
                raw => Some(Uuid::parse_str(raw).map_err(|_| {
                    status::invalid_field("id", tr!("必须是 UUID", "must be a UUID"))
                })?),
            };
        let rule = crate::domain::warnings::Rule {
            name: req.name.trim().to_owned(),
            metric: req.metric.trim().to_owned(),
            dimension: req.dimension.trim().to_owned(),
            window_days: req.window_days,
            threshold: req.threshold,
            min_tickets: req.min_tickets,
        };
        rule.check()
            .map_err(|(field, msg)| status::invalid_field(field, msg))?;
        let stored = warnings::put_rule(
            &self.core.db,
            who.tenant.code(),
            id,
            &rule,
            req.active,
            &who.sub,
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| status::not_found(tr!("预警规则", "warning rule")))?;
        tracing::info!(tenant = %who.tenant.code(), rule = %stored.id, "warning rule saved");
        Ok(Response::new(views::rule(&stored)))
    }

    async fn list_warnings(
        &self,
        request: Request<pb::ListWarningsRequest>,
    ) -> Result<Response<pb::ListWarningsResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(READERS)?;
        let req = request.get_ref();
        let state = match req.status.trim() {
            "" => "open",
            s @ ("open" | "cleared" | "all") => s,
            _ => {
                return Err(status::invalid_field(
                    "status",
                    tr!(
                        "必须是 open、cleared 或 all",
                        "must be open, cleared or all"
                    ),
                ));
            }
        };
        let (size, offset) = views::page(req.page_size, &req.page_token)?;
        let ever = (
            chrono::DateTime::UNIX_EPOCH,
            jiesu_common::time::china_midnight(
                chrono::NaiveDate::from_ymd_opt(9999, 1, 1).unwrap_or_default(),
            ),
        );
        let list = warnings::list(&self.core.db, who.scope.prefix(), state, ever, size, offset)
            .await
            .map_err(db_error)?;
        let next_page_token = views::next_page(list.len(), size, offset);
        Ok(Response::new(pb::ListWarningsResponse {
            warnings: list,
            next_page_token,
        }))
    }

    async fn get_frequency_policy(
        &self,
        request: Request<pb::GetFrequencyPolicyRequest>,
    ) -> Result<Response<pb::FrequencyPolicy>, Status> {
        let who = principal(&request)?;
        proactive::get_policy(&self.core, &who)
            .await
            .map(Response::new)
    }

    async fn put_frequency_policy(
        &self,
        request: Request<pb::FrequencyPolicy>,
    ) -> Result<Response<pb::FrequencyPolicy>, Status> {
        let who = principal(&request)?;
        proactive::put_policy(&self.core, &who, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_proactive_items(
        &self,
        request: Request<pb::ListProactiveItemsRequest>,
    ) -> Result<Response<pb::ListProactiveItemsResponse>, Status> {
        let who = principal(&request)?;
        proactive::list(&self.core, &who, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn get_proactive_item(
        &self,
        request: Request<pb::GetProactiveItemRequest>,
    ) -> Result<Response<pb::ProactiveItem>, Status> {
        let who = principal(&request)?;
        proactive::get(&self.core, &who, &request.get_ref().id)
            .await
            .map(Response::new)
    }

    async fn update_proactive_item(
        &self,
        request: Request<pb::UpdateProactiveItemRequest>,
    ) -> Result<Response<pb::ProactiveItem>, Status> {
        let who = principal(&request)?;
        proactive::update(&self.core, &who, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn scan_seasons(
        &self,
        request: Request<pb::ScanSeasonsRequest>,
    ) -> Result<Response<pb::ScanSeasonsResponse>, Status> {
        let who = principal(&request)?;
        proactive::scan(&self.core, &who).await.map(Response::new)
    }

    async fn get_hotspots(
        &self,
        request: Request<pb::GetHotspotsRequest>,
    ) -> Result<Response<pb::HotspotsResponse>, Status> {
        let who = principal(&request)?;
        hotspots::get(&self.core.db, &who, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn get_monthly_report(
        &self,
        request: Request<pb::GetMonthlyReportRequest>,
    ) -> Result<Response<pb::MonthlyReport>, Status> {
        let who = principal(&request)?;
        report::get(&self.core.db, &who, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn import_history(
        &self,
        request: Request<pb::ImportHistoryRequest>,
    ) -> Result<Response<pb::ImportHistoryResponse>, Status> {
        let who = principal(&request)?;
        proactive::import_history(&self.core, &who, request.get_ref())
            .await
            .map(Response::new)
    }
}

impl EvaluationApi {
    async fn set_exclusion(
        &self,
        f: &facts::Model,
        edit: impl FnOnce(&mut facts::Model),
    ) -> Result<pb::TicketEvaluation, Status> {
        let txn = self.core.db.begin().await.map_err(db_error)?;
        let saved = store::change_facts(&txn, f.ticket_id, &f.tenant, edit)
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        views::ticket(&self.core.db, &saved).await
    }
}

/// The tracking page's rating, proved by tracking number and phone digits.
pub struct PublicEvaluationApi {
    core: Core,
}

impl PublicEvaluationApi {
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    /// The invitation a link's token opens and its ticket's facts; not
    /// found alike for a token that is malformed, unknown or forged.
    async fn invitation(
        &self,
        token: &str,
    ) -> Result<(callbacks::InvitationRow, facts::Model), Status> {
        let token = token.trim();
        if token.is_empty() || token.len() > 64 {
            return Err(invitation_not_found());
        }
        let inv = callbacks::find_invitation(&self.core.db, token)
            .await
            .map_err(db_error)?
            .ok_or_else(invitation_not_found)?;
        let f = facts::Entity::find_by_id(inv.ticket_id)
            .one(&self.core.db)
            .await
            .map_err(db_error)?
            .ok_or_else(invitation_not_found)?;
        Ok((inv, f))
    }
}

#[tonic::async_trait]
impl PublicEvaluationService for PublicEvaluationApi {
    async fn rate_by_tracking(
        &self,
        request: Request<pb::RateByTrackingRequest>,
    ) -> Result<Response<pb::PublicVerdict>, Status> {
        let req = request.get_ref();
        let tracking_no = req.tracking_no.trim().to_owned();
        let verdict = verdict_in(req.verdict.as_ref(), "verdict")?;
        // Intake checks the number and the digits, and answers as it does
        // on the tracking page (not found for either being wrong).
        let mut intake = self.core.intake.clone();
        intake
            .track_ticket(TrackTicketRequest {
                tracking_no: tracking_no.clone(),
                phone_last4: req.phone_last4.trim().to_owned(),
            })
            .await?;
        let f = facts::Entity::find()
            .filter(facts::Column::TrackingNo.eq(tracking_no.clone()))
            .one(&self.core.db)
            .await
            .map_err(db_error)?
            .filter(|f| f.received_at.is_some())
            .ok_or_else(ticket_not_found)?;
        let by_sub = format!("tracking:{tracking_no}");
        let api = EvaluationApi::new(self.core.clone());
        let by = Answerer {
            sub: &by_sub,
            role: "citizen",
            method: "tracking",
        };
        let task = api.answer(&f, 0, verdict, by).await?;
        Ok(Response::new(pb::PublicVerdict {
            tracking_no,
            round: task.round,
            verdict: task.verdict,
        }))
    }

    async fn get_invitation(
        &self,
        request: Request<pb::GetInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let (inv, f) = self.invitation(&request.get_ref().token).await?;
        let rounds = callbacks::rounds(&self.core.db, f.ticket_id)
            .await
            .map_err(db_error)?;
        let r = rounds
            .iter()
            .find(|r| r.round == inv.round)
            .ok_or_else(invitation_not_found)?;
        let status = match r.status.as_str() {
            "open" if inv.expires_at <= Utc::now() => "expired",
            "open" => "open",
            "answered" => "answered",
            "superseded" => "superseded",
            // unreachable, or any other end an agent gave the round
            _ => "closed",
        };
        Ok(Response::new(pb::Invitation {
            tracking_no: f.tracking_no.clone(),
            round: u32::try_from(inv.round).unwrap_or(0),
            category_name: f.category_name.clone(),
            unit_name: f.unit_name.clone(),
            closed_at: f.closed_at.map(to_timestamp),
            expires_at: Some(to_timestamp(inv.expires_at)),
            status: status.to_owned(),
        }))
    }

    async fn rate_by_invitation(
        &self,
        request: Request<pb::RateByInvitationRequest>,
    ) -> Result<Response<pb::PublicVerdict>, Status> {
        let req = request.get_ref();
        let verdict = verdict_in(req.verdict.as_ref(), "verdict")?;
        let (inv, f) = self.invitation(&req.token).await?;
        if inv.expires_at <= Utc::now() {
            return Err(status::coded(
                Code::FailedPrecondition,
                "invitation_expired",
                tr!(
                    "评价链接已过期，工作人员将电话回访",
                    "the link has expired; an agent will call back"
                ),
                None,
            ));
        }
        let by_sub = format!("sms:{}", f.tracking_no);
        let api = EvaluationApi::new(self.core.clone());
        let by = Answerer {
            sub: &by_sub,
            role: "citizen",
            method: "sms",
        };
        // One verdict per round: a second use of the link finds the round
        // answered (409 verdict_given), as does a link to a round an agent
        // has answered by phone since.
        let round = u32::try_from(inv.round).unwrap_or(u32::MAX);
        let task = api.answer(&f, round, verdict, by).await?;
        // For the record only: the verdict above is what makes the link
        // spent (one per round), so a failure here fails nothing.
        if let Err(e) = callbacks::invitation_used(&self.core.db, f.ticket_id, inv.round).await {
            tracing::warn!(error = %e, "could not mark the invitation used");
        }
        Ok(Response::new(pb::PublicVerdict {
            tracking_no: f.tracking_no.clone(),
            round: task.round,
            verdict: task.verdict,
        }))
    }
}
