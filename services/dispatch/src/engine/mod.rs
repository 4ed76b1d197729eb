//! The work-order engine: loads a work order under a row lock, asks the
//! state machine, moves the clocks, and writes the order, its timeline, its
//! events (outbox) and its timers in one transaction.
//!
//! `act` is the entry point: it checks the request, locks the order
//! (`details`), asks the rules, and hands the transition to `save`, which
//! writes it with its events (`emit`) and timers (`timers`).

mod details;
mod emit;
mod save;
mod timers;

use chrono::{DateTime, Utc};
use jiesu_auth::Principal;
use jiesu_bus::Outbox;
use jiesu_common::{Text, clock::Clock, text::says, tr};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use uuid::Uuid;

use self::details::unit_names;
pub use self::{
    details::details,
    emit::{change, facts, progressed, units},
    save::{add_co_unit, timeline_entry},
    timers::reconcile_timers,
};
use crate::{
    domain::{
        clock::Clocks,
        workflow::{self, Action, Actor, CoUnit, Order, Refusal, Status, Summoned},
    },
    store::{settings::SettingsCache, work_orders},
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Refused(Refusal),
    #[error("work order not found")]
    NotFound,
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl From<Refusal> for EngineError {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

fn field(field: &'static str, message: impl Into<Text>) -> EngineError {
    EngineError::Refused(Refusal::Field {
        field,
        message: message.into(),
    })
}

/// An action as asked, with its free text.
#[derive(Debug, Clone)]
pub struct Request {
    pub action: Action,
    pub note: String,
    /// The reply to the citizen, for `resolve`.
    pub reply: String,
}

#[derive(Clone)]
pub struct Engine {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub settings: SettingsCache,
    /// Business time: deadlines, due notices, overdue queues.
    pub clock: Clock,
}

/// A locked work order with what the rules need.
pub struct Loaded {
    pub model: work_orders::Model,
    pub co: Vec<CoRow>,
    pub summons: Vec<SummonsRow>,
}

#[derive(Debug, Clone)]
pub struct CoRow {
    pub unit_id: String,
    pub unit_name: String,
    pub part: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SummonsRow {
    pub unit_id: String,
    pub unit_name: String,
    pub level: i16,
    pub due_at: DateTime<Utc>,
    pub reported_at: Option<DateTime<Utc>>,
}

impl Loaded {
    pub fn order(&self) -> Order {
        let m = &self.model;
        let u = |n: i32| u32::try_from(n).unwrap_or(0);
        Order {
            status: Status::parse(&m.status).unwrap_or(Status::Triage),
            lead: m.unit_id.clone(),
            co: self
                .co
                .iter()
                .map(|c| CoUnit {
                    unit: c.unit_id.clone(),
                    submitted: c.part.is_some(),
                })
                .collect(),
            paused: m.paused_at.is_some(),
            extension_days: m.extension_days.map(u),
            returns: u(m.returns),
            extensions: u(m.extensions),
            reopens: u(m.reopens),
            level: u8::try_from(m.level).unwrap_or(1),
            summoned: self
                .summons
                .iter()
                .map(|s| Summoned {
                    unit: s.unit_id.clone(),
                    level: u8::try_from(s.level).unwrap_or(1),
                    reported: s.reported_at.is_some(),
                })
                .collect(),
            before_merge: m.status_before_merge.as_deref().and_then(Status::parse),
            leadership: m.leadership,
        }
    }
}

pub fn clocks_of(m: &work_orders::Model) -> Clocks {
    Clocks {
        started_at: m.clock_started_at,
        sign_due: m.sign_due,
        respond_due: m.respond_due,
        resolve_due: m.resolve_due,
        signed_at: m.signed_at,
        responded_at: m.responded_at,
        resolved_at: m.resolved_at,
        paused_at: m.paused_at,
    }
}

/// zh-CN label of an action for the timeline.
fn label(a: &Action) -> &'static str {
    match a {
        Action::Dispatch { .. } => "派单",
        Action::Sign => "签收",
        Action::Progress => "办理进展",
        Action::Pause => "暂停计时（等待群众）",
        Action::Resume => "恢复计时",
        Action::Return => "退单",
        Action::Arbitrate { accept: true, .. } => "退单仲裁：同意退单并改派",
        Action::Arbitrate { accept: false, .. } => "退单仲裁：驳回退单",
        Action::RequestExtension { .. } => "申请延期",
        Action::DecideExtension { approve: true } => "延期审批：同意",
        Action::DecideExtension { approve: false } => "延期审批：不同意",
        Action::Resolve => "办结",
        Action::Review { approve: true } => "审核通过",
        Action::Review { approve: false } => "审核退回",
        Action::Close => "结案",
        Action::Reopen => "重办",
        Action::Instruct => "领导批示",
        Action::SubmitPart => "协办反馈",
        Action::Whistle { .. } => "吹哨",
        Action::ReportIn => "报到",
        Action::Leadership => "提级：转领导督办",
        Action::Merge => "并件",
        Action::Unmerge => "取消并件",
    }
}

fn actor_of(who: &Principal) -> Actor {
    Actor {
        roles: who.roles.clone(),
        unit: who.unit.clone(),
        system: false,
    }
}

fn actor_role(who: Option<&Principal>) -> String {
    who.and_then(|w| w.roles.first())
        .map_or("system", |r| r.as_str())
        .to_owned()
}

impl Engine {
    /// One action by a person.
    pub async fn act(
        &self,
        who: &Principal,
        id: Uuid,
        req: Request,
    ) -> Result<Loaded, EngineError> {
        let note = jiesu_pii::redact_text(req.note.trim());
        if req.action.needs_note() && note.is_empty() {
            return Err(field(
                "note",
                tr!(
                    "此操作需要填写理由或说明",
                    "this action needs a reason or note"
                ),
            ));
        }
        if note.chars().count() > 2000 {
            return Err(field("note", says::at_most_chars(2000)));
        }
        let reply = jiesu_pii::redact_text(req.reply.trim());
        if matches!(req.action, Action::Resolve) && reply.is_empty() {
            return Err(field(
                "resolve.reply",
                tr!(
                    "必须填写给市民的答复",
                    "the reply to the citizen is required"
                ),
            ));
        }
        if reply.chars().count() > 4000 {
            return Err(field("resolve.reply", says::at_most_chars(4000)));
        }
        let txn = self.db.begin().await?;
        let loaded = Self::lock_visible(&txn, who, id).await?;
        let tenant = loaded.model.tenant.clone();
        // Units named in the request must exist in the tenant.
        let (named, field_name): (Vec<String>, &'static str) = match &req.action {
            Action::Dispatch { lead, co } => (
                std::iter::once(lead.clone())
                    .chain(co.iter().cloned())
                    .collect(),
                "dispatch.lead_unit_id",
            ),
            Action::Arbitrate {
                redispatch: Some((lead, co)),
                ..
            } => (
                std::iter::once(lead.clone())
                    .chain(co.iter().cloned())
                    .collect(),
                "arbitrate.redispatch.lead_unit_id",
            ),
            Action::Whistle { units, .. } => (units.clone(), "whistle.unit_ids"),
            _ => (Vec::new(), ""),
        };
        let names = match unit_names(&txn, &tenant, &named).await? {
            Ok(n) => n,
            Err(id) => {
                return Err(field(
                    field_name,
                    tr!(
                        "`{id}` 不是本辖区在用的单位",
                        "`{id}` is not an active unit of the tenant"
                    ),
                ));
            }
        };
        let settings = self.settings.get(&txn, &tenant).await?;
        let before = loaded.order();
        let t = workflow::apply(&before, &actor_of(who), &req.action, &settings.rules)?;
        let role = actor_role(Some(who));
        let now = self.clock.now();
        let text = if note.is_empty() {
            label(&req.action).to_owned()
        } else {
            format!("{}：{note}", label(&req.action))
        };
        let out = self
            .save(
                &txn,
                loaded,
                &req.action,
                &t,
                &settings,
                now,
                &names,
                &role,
                &text,
                reply,
                who.unit.as_deref(),
            )
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(out)
    }
}
