//! The work-order state machine: which action is allowed to whom in which
//! state, and what it changes. Pure: the store loads an [`Order`], asks
//! [`apply`], and saves the answer with the clock operations it names.

use std::fmt;

use jiesu_auth::Role;
use jiesu_common::{Text, tr};

/// Where a work order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// No unit is responsible yet: a dispatcher decides (研判).
    Triage,
    Dispatched,
    /// The lead unit took it (签收).
    Signed,
    InProgress,
    /// The lead unit sent it back (退单); a dispatcher arbitrates.
    Returned,
    /// The lead unit replied to the citizen (办结).
    Resolved,
    /// The level above approved the resolution.
    Reviewed,
    Closed,
    /// Its ticket was merged into another: it follows the master.
    Merged,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Triage,
        Status::Dispatched,
        Status::Signed,
        Status::InProgress,
        Status::Returned,
        Status::Resolved,
        Status::Reviewed,
        Status::Closed,
        Status::Merged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Triage => "triage",
            Status::Dispatched => "dispatched",
            Status::Signed => "signed",
            Status::InProgress => "in_progress",
            Status::Returned => "returned",
            Status::Resolved => "resolved",
            Status::Reviewed => "reviewed",
            Status::Closed => "closed",
            Status::Merged => "merged",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A unit is working on it: its clocks run.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::Dispatched | Status::Signed | Status::InProgress | Status::Returned
        )
    }

    /// zh-CN name for timelines and notices.
    pub fn label(self) -> &'static str {
        match self {
            Status::Triage => "待研判",
            Status::Dispatched => "已派单",
            Status::Signed => "已签收",
            Status::InProgress => "办理中",
            Status::Returned => "已退单",
            Status::Resolved => "已办结",
            Status::Reviewed => "已审核",
            Status::Closed => "已结案",
            Status::Merged => "已并件",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A co-handling unit and whether it has submitted its part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoUnit {
    pub unit: String,
    pub submitted: bool,
}

/// A unit summoned by a whistle and whether it has reported in (报到).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summoned {
    pub unit: String,
    pub level: u8,
    pub reported: bool,
}

/// What the rules need to know about a work order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub status: Status,
    pub lead: Option<String>,
    pub co: Vec<CoUnit>,
    pub paused: bool,
    /// Working days asked for by a pending extension request.
    pub extension_days: Option<u32>,
    pub returns: u32,
    pub extensions: u32,
    pub reopens: u32,
    /// Whistle level 1..=4.
    pub level: u8,
    pub summoned: Vec<Summoned>,
    /// The status to go back to when an unmerge undoes a merge.
    pub before_merge: Option<Status>,
    /// In the leadership queue (提级).
    pub leadership: bool,
}

impl Order {
    /// A fresh order: in triage, or dispatched to `lead`.
    pub fn new(lead: Option<String>) -> Self {
        Self {
            status: if lead.is_some() {
                Status::Dispatched
            } else {
                Status::Triage
            },
            lead,
            co: Vec::new(),
            paused: false,
            extension_days: None,
            returns: 0,
            extensions: 0,
            reopens: 0,
            level: 1,
            summoned: Vec::new(),
            before_merge: None,
            leadership: false,
        }
    }
}

/// The tenant's policy switches the state machine obeys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub review_required: bool,
    pub max_extensions: u32,
    pub max_extension_days: u32,
    pub max_reopens: u32,
    /// Returns after which the order is lifted one level; 0 = never.
    pub lift_after_returns: u32,
    pub allow_pause: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            review_required: false,
            max_extensions: 2,
            max_extension_days: 15,
            max_reopens: 2,
            lift_after_returns: 2,
            allow_pause: true,
        }
    }
}

/// Who acts. `system` is dispatch itself or another service's event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub roles: Vec<Role>,
    pub unit: Option<String>,
    pub system: bool,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            roles: Vec::new(),
            unit: None,
            system: true,
        }
    }

    fn has(&self, role: Role) -> bool {
        self.system || self.roles.contains(&role)
    }

    /// A handler acting for `unit`.
    fn handles(&self, unit: Option<&str>) -> bool {
        self.roles.contains(&Role::Handler) && unit.is_some() && self.unit.as_deref() == unit
    }
}

/// One action on a work order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Dispatcher: first dispatch from triage, or re-dispatch.
    Dispatch {
        lead: String,
        co: Vec<String>,
    },
    Sign,
    /// First response or a progress note.
    Progress,
    /// Waiting for the citizen: clocks stop.
    Pause,
    Resume,
    Return,
    Arbitrate {
        accept: bool,
        redispatch: Option<(String, Vec<String>)>,
    },
    RequestExtension {
        days: u32,
    },
    DecideExtension {
        approve: bool,
    },
    Resolve,
    Review {
        approve: bool,
    },
    Close,
    Reopen,
    /// Leader instruction (批示).
    Instruct,
    SubmitPart,
    /// Lift to `level` and summon `units`.
    Whistle {
        level: u8,
        units: Vec<String>,
    },
    ReportIn,
    /// Into the leadership queue (提级), e.g. a high-frequency matter.
    Leadership,
    Merge,
    Unmerge,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Dispatch { .. } => "dispatch",
            Action::Sign => "sign",
            Action::Progress => "progress",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Return => "return",
            Action::Arbitrate { .. } => "arbitrate",
            Action::RequestExtension { .. } => "request_extension",
            Action::DecideExtension { .. } => "decide_extension",
            Action::Resolve => "resolve",
            Action::Review { .. } => "review",
            Action::Close => "close",
            Action::Reopen => "reopen",
            Action::Instruct => "instruct",
            Action::SubmitPart => "submit_part",
            Action::Whistle { .. } => "whistle",
            Action::ReportIn => "report_in",
            Action::Leadership => "leadership",
            Action::Merge => "merge",
            Action::Unmerge => "unmerge",
        }
    }

    /// zh-CN name of the action `name` (as [`Action::name`] gives it), for
    /// messages; an unknown one is shown as it is.
    pub fn label(name: &str) -> &str {
        match name {
            "dispatch" => "派单",
            "sign" => "签收",
            "progress" => "反馈进展",
            "pause" => "暂停计时",
            "resume" => "恢复计时",
            "return" => "退单",
            "arbitrate" => "裁定退单",
            "request_extension" => "申请延期",
            "decide_extension" => "审批延期",
            "resolve" => "办结",
            "review" => "审核",
            "close" => "结案",
            "reopen" => "重办",
            "instruct" => "批示",
            "submit_part" => "提交协办意见",
            "whistle" => "吹哨",
            "report_in" => "报到",
            "leadership" => "列入领导督办",
            "merge" => "并件",
            "unmerge" => "撤销并件",
            other => other,
        }
    }

    /// Actions that need a reason or note from the person acting.
    pub fn needs_note(&self) -> bool {
        matches!(
            self,
            Action::Pause
                | Action::Return
                | Action::Arbitrate { accept: false, .. }
                | Action::RequestExtension { .. }
                | Action::Review { approve: false }
                | Action::Reopen
                | Action::Instruct
                | Action::SubmitPart
                | Action::Whistle { .. }
                | Action::Leadership
                | Action::Progress
        )
    }
}

/// What happens to the clocks; the service turns these into deadlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockOp {
    /// Fresh clocks from now (first dispatch, reopen).
    Start,
    /// Re-dispatch: restart or keep running, as the tenant's policy says.
    Redispatch,
    MetSign,
    MetRespond,
    Pause,
    Resume,
    MetResolve,
    /// A rejected review: the resolve clock runs again.
    Unresolve,
    /// Resolve deadline moves by this many working days.
    Extend(u32),
    /// Merged: pending notices are cancelled.
    Stop,
    /// Unmerged: notices for the deadlines still ahead are set again.
    Reschedule,
    /// The order went up from one level to another.
    Lift {
        from: u8,
        to: u8,
    },
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller holds none of the roles.
    WrongRole(&'static [Role]),
    /// The caller's unit is not the one the action needs.
    WrongUnit(Text),
    /// The action does not apply in this state.
    Illegal {
        action: &'static str,
        status: Status,
    },
    /// A policy rule says no: a stable code and an explanation.
    Rule {
        code: &'static str,
        message: Text,
    },
    Field {
        field: &'static str,
        message: Text,
    },
}

impl Refusal {
    /// What the caller reads (a field's refusal without the field's path).
    pub fn text(&self) -> Text {
        match self {
            // Only the system merges and unmerges.
            Refusal::WrongRole([]) => tr!("此操作只能由系统执行", "only the system does this"),
            Refusal::WrongRole(roles) => jiesu_auth::needs_role(roles),
            Refusal::WrongUnit(why) => why.clone(),
            Refusal::Illegal { action, status } => {
                let (zh_action, zh_status) = (Action::label(action), status.label());
                tr!(
                    "工单当前为“{zh_status}”，不能执行“{zh_action}”",
                    "cannot {action} a work order that is {status}"
                )
            }
            Refusal::Rule { message, .. } | Refusal::Field { message, .. } => message.clone(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Field { field, message } => write!(f, "{field}: {}", message.en),
            other => f.write_str(&other.text().en),
        }
    }
}

/// The order after an action and what the clocks must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub order: Order,
    pub clocks: Vec<ClockOp>,
}

const DISPATCHER: &[Role] = &[Role::Dispatcher];
const HANDLER: &[Role] = &[Role::Handler];
const DECIDER: &[Role] = &[Role::Dispatcher, Role::Supervisor];
const SUPERVISOR: &[Role] = &[Role::Supervisor];
const WHISTLER: &[Role] = &[
    Role::Handler,
    Role::GridWorker,
    Role::Dispatcher,
    Role::Supervisor,
];

fn need(actor: &Actor, roles: &'static [Role]) -> Result<(), Refusal> {
    if roles.iter().any(|r| actor.has(*r)) {
        Ok(())
    } else {
        Err(Refusal::WrongRole(roles))
    }
}

fn lead_only(actor: &Actor, o: &Order) -> Result<(), Refusal> {
    need(actor, HANDLER)?;
    if actor.system || actor.handles(o.lead.as_deref()) {
        Ok(())
    } else {
        Err(Refusal::WrongUnit(tr!(
            "只有工单的主办单位可以执行此操作",
            "only the lead unit of the work order may do this"
        )))
    }
}

fn rule(code: &'static str, message: impl Into<Text>) -> Refusal {
    Refusal::Rule {
        code,
        message: message.into(),
    }
}

fn co_units(lead: &str, co: &[String]) -> Result<Vec<CoUnit>, Refusal> {
    let mut out: Vec<CoUnit> = Vec::new();
    for u in co {
        if u == lead {
            return Err(Refusal::Field {
                field: "co_unit_ids",
                message: tr!(
                    "主办单位不能同时是协办单位",
                    "the lead unit cannot also be a co-handler"
                ),
            });
        }
        if !out.iter().any(|c| &c.unit == u) {
            out.push(CoUnit {
                unit: u.clone(),
                submitted: false,
            });
        }
    }
    Ok(out)
}

fn lift(o: &mut Order, to: u8, clocks: &mut Vec<ClockOp>) {
    if to > o.level {
        clocks.push(ClockOp::Lift {
            from: o.level,
            to: to.min(4),
        });
        o.level = to.min(4);
    }
}

/// Applies `action` by `actor` to `order` under `rules`.
pub fn apply(
    order: &Order,
    actor: &Actor,
    action: &Action,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    use Status::*;
    let illegal = || Refusal::Illegal {
        action: action.name(),
        status: order.status,
    };
    let mut o = order.clone();
    let mut clocks = Vec::new();
    match action {
        Action::Dispatch { lead, co } => {
            need(actor, DISPATCHER)?;
            if !matches!(order.status, Triage | Dispatched | Signed | InProgress) {
                return Err(illegal());
            }
            o.co = co_units(lead, co)?;
            o.lead = Some(lead.clone());
            o.status = Dispatched;
            o.paused = false;
            o.extension_days = None;
            clocks.push(if order.status == Triage {
                ClockOp::Start
            } else {
                ClockOp::Redispatch
            });
        }
        Action::Sign => {
            lead_only(actor, order)?;
            if order.status != Dispatched {
                return Err(illegal());
            }
            o.status = Signed;
            clocks.push(ClockOp::MetSign);
        }
        Action::Progress => {
            lead_only(actor, order)?;
            if !matches!(order.status, Signed | InProgress) {
                return Err(illegal());
            }
            o.status = InProgress;
            clocks.push(ClockOp::MetRespond);
        }
        Action::Pause => {
            lead_only(actor, order)?;
            if !matches!(order.status, Signed | InProgress) {
                return Err(illegal());
            }
            if !rules.allow_pause {
                return Err(rule(
                    "pause_not_allowed",
                    tr!("本辖区不允许暂停计时", "this tenant does not pause clocks"),
                ));
            }
            if order.paused {
                return Err(rule(
                    "already_paused",
                    tr!("计时已经暂停", "the clocks are paused already"),
                ));
            }
            o.paused = true;
            clocks.push(ClockOp::Pause);
        }
        Action::Resume => {
            lead_only(actor, order)?;
            if !matches!(order.status, Signed | InProgress) {
                return Err(illegal());
            }
            if !order.paused {
                return Err(rule(
                    "not_paused",
                    tr!("计时并未暂停", "the clocks are not paused"),
                ));
            }
            o.paused = false;
            clocks.push(ClockOp::Resume);
        }
        Action::Return => {
            lead_only(actor, order)?;
            if !matches!(order.status, Dispatched | Signed) {
                return Err(illegal());
            }
            o.status = Returned;
            o.paused = false;
            o.extension_days = None;
            o.returns += 1;
            if rules.lift_after_returns > 0 && o.returns.is_multiple_of(rules.lift_after_returns) {
                let to = o.level + 1;
                lift(&mut o, to, &mut clocks);
            }
        }
        Action::Arbitrate { accept, redispatch } => {
            need(actor, DISPATCHER)?;
            if order.status != Returned {
                return Err(illegal());
            }
            if *accept {
                let Some((lead, co)) = redispatch else {
                    return Err(Refusal::Field {
                        field: "redispatch.lead_unit_id",
                        message: tr!(
                            "同意退单时须指定改派的单位",
                            "an accepted return names the unit to dispatch to"
                        ),
                    });
                };
                o.co = co_units(lead, co)?;
                o.lead = Some(lead.clone());
                clocks.push(ClockOp::Redispatch);
            }
            o.status = Dispatched;
        }
        Action::RequestExtension { days } => {
            lead_only(actor, order)?;
            if !matches!(order.status, Signed | InProgress) {
                return Err(illegal());
            }
            if order.extension_days.is_some() {
                return Err(rule(
                    "extension_pending",
                    tr!(
                        "已有延期申请等待审批",
                        "an extension request is waiting for a decision"
                    ),
                ));
            }
            if order.extensions >= rules.max_extensions {
                return Err(rule(
                    "extension_cap_reached",
                    tr!(
                        "每张工单最多延期 {} 次",
                        "at most {} extensions per work order",
                        rules.max_extensions
                    ),
                ));
            }
            if *days == 0 || *days > rules.max_extension_days {
                return Err(Refusal::Field {
                    field: "request_extension.days",
                    message: tr!(
                        "必须是 1 到 {} 个工作日",
                        "must be 1 to {} working days",
                        rules.max_extension_days
                    ),
                });
            }
            o.extension_days = Some(*days);
        }
        Action::DecideExtension { approve } => {
            need(actor, DECIDER)?;
            let Some(days) = order.extension_days else {
                return Err(rule(
                    "no_extension_pending",
                    tr!("没有待审批的延期申请", "no extension request is waiting"),
                ));
            };
            o.extension_days = None;
            if *approve {
                o.extensions += 1;
                clocks.push(ClockOp::Extend(days));
            }
        }
        Action::Resolve => {
            lead_only(actor, order)?;
            if !matches!(order.status, Signed | InProgress) {
                return Err(illegal());
            }
            if order.paused {
                return Err(rule(
                    "paused",
                    tr!(
                        "请先恢复计时，再办结工单",
                        "resume the clocks before resolving the work order"
                    ),
                ));
            }
            if let Some(c) = order.co.iter().find(|c| !c.submitted) {
                return Err(rule(
                    "parts_missing",
                    tr!(
                        "协办单位 {} 尚未提交协办意见",
                        "co-handler {} has not submitted its part",
                        c.unit
                    ),
                ));
            }
            o.status = Resolved;
            o.extension_days = None;
            clocks.push(ClockOp::MetRespond);
            clocks.push(ClockOp::MetResolve);
        }
        Action::Review { approve } => {
            need(actor, SUPERVISOR)?;
            if order.status != Resolved {
                return Err(illegal());
            }
            if !rules.review_required {
                return Err(rule(
                    "review_not_required",
                    tr!(
                        "本辖区办结的工单无需审核即可结案",
                        "this tenant closes resolved orders without review"
                    ),
                ));
            }
            if *approve {
                o.status = Reviewed;
            } else {
                o.status = InProgress;
                clocks.push(ClockOp::Unresolve);
            }
        }
        Action::Close => {
            need(actor, DECIDER)?;
            match order.status {
                Reviewed => {}
                Resolved if !rules.review_required => {}
                Resolved => {
                    return Err(rule(
                        "review_pending",
                        tr!(
                            "办结结果正等待上级审核",
                            "the resolution waits for review by the level above"
                        ),
                    ));
                }
                _ => return Err(illegal()),
            }
            o.status = Closed;
        }
        Action::Reopen => {
            need(actor, DISPATCHER)?;
            if !matches!(order.status, Resolved | Reviewed | Closed) {
                return Err(illegal());
            }
            if order.reopens >= rules.max_reopens {
                return Err(rule(
                    "reopen_limit_reached",
                    tr!(
                        "每张工单最多重办 {} 次",
                        "at most {} reopenings per work order",
                        rules.max_reopens
                    ),
                ));
            }
            o.reopens += 1;
            o.status = Dispatched;
            for c in &mut o.co {
                c.submitted = false;
            }
            clocks.push(ClockOp::Start);
        }
        Action::Instruct => {
            need(actor, SUPERVISOR)?;
            if matches!(order.status, Closed | Merged) {
                return Err(illegal());
            }
        }
        Action::SubmitPart => {
            need(actor, HANDLER)?;
            if !matches!(order.status, Signed | InProgress) {
                return Err(illegal());
            }
            let unit = actor.unit.as_deref().unwrap_or_default();
            let Some(c) = o.co.iter_mut().find(|c| c.unit == unit) else {
                return Err(Refusal::WrongUnit(tr!(
                    "只有工单的协办单位可以提交协办意见",
                    "only a co-handling unit of the work order submits a part"
                )));
            };
            if c.submitted {
                return Err(rule(
                    "part_submitted",
                    tr!("本单位已提交过协办意见", "this unit's part is in already"),
                ));
            }
            c.submitted = true;
        }
        Action::Whistle { level, units } => {
            need(actor, WHISTLER)?;
            if !order.status.is_open() {
                return Err(illegal());
            }
            if actor.roles == [Role::Handler] && !actor.handles(order.lead.as_deref()) {
                return Err(Refusal::WrongUnit(tr!(
                    "承办人员只能为本单位的工单吹哨",
                    "a handler whistles only for its own unit's work orders"
                )));
            }
            let to = if *level == 0 { order.level + 1 } else { *level };
            if to <= order.level || to > 4 {
                return Err(Refusal::Field {
                    field: "whistle.level",
                    message: tr!(
                        "必须高于当前层级 {}，且不超过 4",
                        "must be above the current level {} and at most 4",
                        order.level
                    ),
                });
            }
            if units.is_empty() {
                return Err(Refusal::Field {
                    field: "whistle.unit_ids",
                    message: tr!(
                        "吹哨至少要召集一个单位",
                        "a whistle summons at least one unit"
                    ),
                });
            }
            lift(&mut o, to, &mut clocks);
            for u in units {
                if !o.summoned.iter().any(|s| &s.unit == u && s.level == to) {
                    o.summoned.push(Summoned {
                        unit: u.clone(),
                        level: to,
                        reported: false,
                    });
                }
            }
        }
        Action::ReportIn => {
            need(actor, HANDLER)?;
            let unit = actor.unit.as_deref().unwrap_or_default();
            let Some(s) = o
                .summoned
                .iter_mut()
                .find(|s| s.unit == unit && !s.reported)
            else {
                return Err(Refusal::WrongUnit(tr!(
                    "本单位未被召集到该工单，或已经报到",
                    "this unit has not been summoned to the work order, or reported in already"
                )));
            };
            s.reported = true;
        }
        Action::Leadership => {
            need(actor, SUPERVISOR)?;
            if matches!(order.status, Closed | Merged) {
                return Err(illegal());
            }
            if order.leadership {
                return Err(rule(
                    "already_in_leadership_queue",
                    tr!(
                        "该工单已在领导督办队列中",
                        "the work order is in the leadership queue already"
                    ),
                ));
            }
            o.leadership = true;
        }
        Action::Merge => {
            if !actor.system {
                return Err(Refusal::WrongRole(&[]));
            }
            if matches!(order.status, Closed | Merged) {
                return Err(illegal());
            }
            o.before_merge = Some(order.status);
            o.status = Merged;
            o.paused = false;
            o.extension_days = None;
            clocks.push(ClockOp::Stop);
        }
        Action::Unmerge => {
            if !actor.system {
                return Err(Refusal::WrongRole(&[]));
            }
            if order.status != Merged {
                return Err(illegal());
            }
            o.status = order.before_merge.unwrap_or(if order.lead.is_some() {
                Dispatched
            } else {
                Triage
            });
            o.before_merge = None;
            clocks.push(ClockOp::Reschedule);
        }
    }
    Ok(Transition { order: o, clocks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(unit: &str) -> Actor {
        Actor {
            roles: vec![Role::Handler],
            unit: Some(unit.into()),
            system: false,
        }
    }

    fn role(r: Role) -> Actor {
        Actor {
            roles: vec![r],
            unit: None,
            system: false,
        }
    }

    fn run(o: &Order, a: &Actor, act: Action) -> Result<Order, Refusal> {
        apply(o, a, &act, &Rules::default()).map(|t| t.order)
    }

    #[test]
    fn the_normal_path_from_dispatch_to_close() -> Result<(), Refusal> {
        let o = Order::new(Some("u1".into()));
        let o = run(&o, &handler("u1"), Action::Sign)?;
        let o = run(&o, &handler("u1"), Action::Progress)?;
        let o = run(&o, &handler("u1"), Action::Resolve)?;
        let o = run(&o, &role(Role::Dispatcher), Action::Close)?;
        assert_eq!(o.status, Status::Closed);
        Ok(())
    }

    #[test]
    fn refusals_name_role_unit_state_and_rule() -> Result<(), Refusal> {
        let o = Order::new(Some("u1".into()));
        assert_eq!(
            run(&o, &role(Role::Agent), Action::Sign),
            Err(Refusal::WrongRole(HANDLER))
        );
        assert!(matches!(
            run(&o, &handler("u2"), Action::Sign),
            Err(Refusal::WrongUnit(_))
        ));
        assert_eq!(
            run(&o, &handler("u1"), Action::Resolve),
            Err(Refusal::Illegal {
                action: "resolve",
                status: Status::Dispatched
            })
        );
        let signed = run(&o, &handler("u1"), Action::Sign)?;
        let r = Rules {
            max_extensions: 0,
            ..Rules::default()
        };
        assert!(matches!(
            apply(
                &signed,
                &handler("u1"),
                &Action::RequestExtension { days: 3 },
                &r
            ),
            Err(Refusal::Rule {
                code: "extension_cap_reached",
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn review_is_needed_when_the_tenant_says_so() -> Result<(), Refusal> {
        let r = Rules {
            review_required: true,
            ..Rules::default()
        };
        let lead = handler("u1");
        let mut o = Order::new(Some("u1".into()));
        for a in [Action::Sign, Action::Resolve] {
            o = apply(&o, &lead, &a, &r)?.order;
        }
        let close = apply(&o, &role(Role::Dispatcher), &Action::Close, &r);
        assert!(matches!(
            close,
            Err(Refusal::Rule {
                code: "review_pending",
                ..
            })
        ));
        let back = apply(
            &o,
            &role(Role::Supervisor),
            &Action::Review { approve: false },
            &r,
        )?;
        assert_eq!(back.order.status, Status::InProgress);
        let ok = apply(
            &o,
            &role(Role::Supervisor),
            &Action::Review { approve: true },
            &r,
        )?;
        let closed = apply(&ok.order, &role(Role::Dispatcher), &Action::Close, &r)?;
        assert_eq!(closed.order.status, Status::Closed);
        Ok(())
    }

    #[test]
    fn returns_lift_the_level_and_arbitration_redispatches() -> Result<(), Refusal> {
        let d = role(Role::Dispatcher);
        let mut o = Order::new(Some("u1".into()));
        o = run(&o, &handler("u1"), Action::Return)?;
        assert_eq!((o.status, o.level), (Status::Returned, 1));
        o = run(
            &o,
            &d,
            Action::Arbitrate {
                accept: false,
                redispatch: None,
            },
        )?;
        assert_eq!(
            (o.status, o.lead.as_deref()),
            (Status::Dispatched, Some("u1"))
        );
        let t = apply(&o, &handler("u1"), &Action::Return, &Rules::default())?;
        assert_eq!(t.order.level, 2, "the second return lifts the order");
        assert!(t.clocks.contains(&ClockOp::Lift { from: 1, to: 2 }));
        o = run(
            &t.order,
            &d,
            Action::Arbitrate {
                accept: true,
                redispatch: Some(("u2".into(), vec!["u3".into()])),
            },
        )?;
        assert_eq!(o.lead.as_deref(), Some("u2"));
        assert!(matches!(
            run(&o, &handler("u1"), Action::Sign),
            Err(Refusal::WrongUnit(_))
        ));
        Ok(())
    }

    #[test]
    fn co_handlers_submit_before_the_lead_resolves() -> Result<(), Refusal> {
        let d = role(Role::Dispatcher);
        let mut o = Order::new(None);
        o = run(
            &o,
            &d,
            Action::Dispatch {
                lead: "u1".into(),
                co: vec!["u2".into()],
            },
        )?;
        o = run(&o, &handler("u1"), Action::Sign)?;
        assert!(matches!(
            run(&o, &handler("u1"), Action::Resolve),
            Err(Refusal::Rule {
                code: "parts_missing",
                ..
            })
        ));
        assert!(matches!(
            run(&o, &handler("u9"), Action::SubmitPart),
            Err(Refusal::WrongUnit(_))
        ));
        o = run(&o, &handler("u2"), Action::SubmitPart)?;
        o = run(&o, &handler("u1"), Action::Resolve)?;
        assert_eq!(o.status, Status::Resolved);
        Ok(())
    }

    #[test]
    fn whistles_summon_units_who_report_in_once() -> Result<(), Refusal> {
        let o = Order::new(Some("u1".into()));
        let w = Action::Whistle {
            level: 3,
            units: vec!["u5".into()],
        };
        let o = run(&o, &role(Role::GridWorker), w.clone())?;
        assert_eq!(o.level, 3);
        assert!(matches!(
            run(&o, &role(Role::GridWorker), w),
            Err(Refusal::Field {
                field: "whistle.level",
                ..
            })
        ));
        let o = run(&o, &handler("u5"), Action::ReportIn)?;
        assert!(o.summoned.iter().all(|s| s.reported));
        assert!(run(&o, &handler("u5"), Action::ReportIn).is_err());
        Ok(())
    }

    #[test]
    fn merge_and_unmerge_restore_the_state() -> Result<(), Refusal> {
        let o = run(&Order::new(Some("u1".into())), &handler("u1"), Action::Sign)?;
        let m = run(&o, &Actor::system(), Action::Merge)?;
        assert_eq!(m.status, Status::Merged);
        assert!(run(&m, &handler("u1"), Action::Resolve).is_err());
        assert!(run(&o, &role(Role::Dispatcher), Action::Merge).is_err());
        let u = run(&m, &Actor::system(), Action::Unmerge)?;
        assert_eq!(u.status, Status::Signed);
        Ok(())
    }
}
