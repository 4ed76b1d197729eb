//! The work-order engine: loads a work order under a row lock, asks the
//! state machine, moves the clocks, and writes the order, its timeline, its
//! events (outbox) and its timers in one transaction.

use chrono::{DateTime, Utc};
use jiesu_auth::Principal;
use jiesu_bus::Outbox;
use jiesu_common::clock::Clock;
use jiesu_proto::{
    dispatch::{self as pb, WorkOrderChange},
    time::to_timestamp,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use crate::{
    domain::{
        clock::{self, Clocks, Env},
        workflow::{self, Action, Actor, ClockOp, CoUnit, Order, Refusal, Status, Summoned},
    },
    store::{
        settings::{Settings, SettingsCache, stmt},
        work_order_events, work_orders,
    },
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

fn field(field: &'static str, message: impl Into<String>) -> EngineError {
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

fn set_clocks(a: &mut work_orders::ActiveModel, c: &Clocks) {
    a.clock_started_at = Set(c.started_at);
    a.sign_due = Set(c.sign_due);
    a.respond_due = Set(c.respond_due);
    a.resolve_due = Set(c.resolve_due);
    a.signed_at = Set(c.signed_at);
    a.responded_at = Set(c.responded_at);
    a.resolved_at = Set(c.resolved_at);
    a.paused_at = Set(c.paused_at);
}

/// Reads a work order's co-handlers and summons.
pub async fn details<C: ConnectionTrait>(
    conn: &C,
    model: work_orders::Model,
) -> Result<Loaded, DbErr> {
    let co = conn
        .query_all_raw(stmt(
            "SELECT unit_id, unit_name, part FROM work_order_co_units WHERE work_order_id = $1 \
             ORDER BY unit_id",
            vec![model.id.into()],
        ))
        .await?
        .into_iter()
        .map(|r| {
            Ok(CoRow {
                unit_id: r.try_get("", "unit_id")?,
                unit_name: r.try_get("", "unit_name")?,
                part: r.try_get("", "part")?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    let summons = conn
        .query_all_raw(stmt(
            "SELECT unit_id, unit_name, level, due_at, reported_at FROM summons \
             WHERE work_order_id = $1 ORDER BY level, unit_id",
            vec![model.id.into()],
        ))
        .await?
        .into_iter()
        .map(|r| {
            Ok(SummonsRow {
                unit_id: r.try_get("", "unit_id")?,
                unit_name: r.try_get("", "unit_name")?,
                level: r.try_get("", "level")?,
                due_at: r.try_get("", "due_at")?,
                reported_at: r.try_get("", "reported_at")?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(Loaded { model, co, summons })
}

pub async fn add_co_unit<C: ConnectionTrait>(
    conn: &C,
    order: Uuid,
    unit: &str,
    name: &str,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO work_order_co_units (work_order_id, unit_id, unit_name) VALUES ($1, $2, $3)",
        vec![order.into(), unit.into(), name.into()],
    ))
    .await?;
    Ok(())
}

/// Names of active units of the tenant, in the order asked; `Err(id)` for
/// the first id that is not one.
async fn unit_names<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    ids: &[String],
) -> Result<Result<Vec<(String, String)>, String>, DbErr> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let row = conn
            .query_one_raw(stmt(
                "SELECT name FROM units WHERE tenant = $1 AND id = $2 AND active",
                vec![tenant.into(), id.clone().into()],
            ))
            .await?;
        match row {
            Some(r) => out.push((id.clone(), r.try_get("", "name")?)),
            None => return Ok(Err(id.clone())),
        }
    }
    Ok(Ok(out))
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

pub fn change(
    m: &work_orders::Model,
    role: &str,
    note: &str,
    at: DateTime<Utc>,
) -> WorkOrderChange {
    WorkOrderChange {
        ticket_id: m.ticket_id.to_string(),
        work_order_id: m.id.to_string(),
        tenant: m.tenant.clone(),
        region_code: m.region_code.clone(),
        tracking_no: m.tracking_no.clone(),
        category: m.category.clone(),
        status: m.status.clone(),
        unit_id: m.unit_id.clone().unwrap_or_default(),
        unit_name: m.unit_name.clone().unwrap_or_default(),
        level: u32::try_from(m.level).unwrap_or(1),
        actor_role: role.to_owned(),
        note: note.to_owned(),
        at: Some(to_timestamp(at)),
    }
}

pub async fn timeline_entry<C: ConnectionTrait>(
    conn: &C,
    m: &work_orders::Model,
    at: DateTime<Utc>,
    event: &str,
    role: &str,
    note: String,
) -> Result<(), DbErr> {
    work_order_events::ActiveModel {
        work_order_id: Set(m.id),
        tenant: Set(m.tenant.clone()),
        at: Set(at),
        event: Set(event.to_owned()),
        actor_role: Set(role.to_owned()),
        unit_id: Set(m.unit_id.clone()),
        unit_name: Set(m.unit_name.clone()),
        note: Set(note),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// A timer an order needs: notice, deadline, deadline moment, due moment,
/// and the summoned unit for report-in timers.
type Wanted = (String, String, DateTime<Utc>, DateTime<Utc>, Option<String>);

/// Brings the order's pending timers in line with its clocks and summons:
/// cancels those no longer wanted and adds the missing ones. A notice that
/// already fired for the same deadline is not planned again.
pub async fn reconcile_timers<C: ConnectionTrait>(
    conn: &C,
    m: &work_orders::Model,
    summons: &[SummonsRow],
    s: &Settings,
) -> Result<(), DbErr> {
    let status = Status::parse(&m.status).unwrap_or(Status::Triage);
    let mut wanted: Vec<Wanted> = Vec::new();
    if status.is_open() {
        for p in clock::plan(&clocks_of(m), &s.calendar, s.reminder_at, s.supervise_after) {
            wanted.push((
                p.notice.into(),
                p.deadline.into(),
                p.deadline_at,
                p.due_at,
                None,
            ));
        }
        for x in summons.iter().filter(|x| x.reported_at.is_none()) {
            wanted.push((
                clock::REPORT_OVERDUE.into(),
                clock::REPORT.into(),
                x.due_at,
                x.due_at,
                Some(x.unit_id.clone()),
            ));
        }
    }
    // Timers already set or fired for this order (cancelled ones are gone).
    let existing = conn
        .query_all_raw(stmt(
            "SELECT id, notice, deadline, deadline_at, unit_id, fired_at IS NOT NULL AS fired \
             FROM timers WHERE work_order_id = $1 AND cancelled_at IS NULL",
            vec![m.id.into()],
        ))
        .await?;
    let mut have: Vec<(String, String, DateTime<Utc>, Option<String>)> = Vec::new();
    let mut cancel: Vec<i64> = Vec::new();
    for r in existing {
        let key: (String, String, DateTime<Utc>, Option<String>) = (
            r.try_get("", "notice")?,
            r.try_get("", "deadline")?,
            r.try_get("", "deadline_at")?,
            r.try_get("", "unit_id")?,
        );
        let wanted_now = wanted
            .iter()
            .any(|w| (&w.0, &w.1, &w.2, &w.4) == (&key.0, &key.1, &key.2, &key.3));
        let fired: bool = r.try_get("", "fired")?;
        if !wanted_now && !fired {
            cancel.push(r.try_get("", "id")?);
        } else {
            have.push(key);
        }
    }
    if !cancel.is_empty() {
        conn.execute_raw(stmt(
            "UPDATE timers SET cancelled_at = now() WHERE id = ANY($1)",
            vec![cancel.into()],
        ))
        .await?;
    }
    // A notice already set, or fired for the same deadline, is not set again.
    wanted.retain(|w| {
        !have
            .iter()
            .any(|h| (&h.0, &h.1, &h.2, &h.3) == (&w.0, &w.1, &w.2, &w.4))
    });
    if wanted.is_empty() {
        return Ok(());
    }
    let (mut notices, mut deadlines, mut deadline_ats, mut dues, mut units) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (notice, deadline, deadline_at, due_at, unit) in wanted {
        notices.push(notice);
        deadlines.push(deadline);
        deadline_ats.push(deadline_at);
        dues.push(due_at);
        // '' stands for "no unit" in the array; NULLIF restores it.
        units.push(unit.unwrap_or_default());
    }
    conn.execute_raw(stmt(
        "INSERT INTO timers (tenant, work_order_id, notice, deadline, deadline_at, due_at, \
         version, unit_id) \
         SELECT $1, $2, n, d, da, du, $3, NULLIF(u, '') \
         FROM unnest($4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::text[]) \
           AS t(n, d, da, du, u)",
        vec![
            m.tenant.clone().into(),
            m.id.into(),
            m.version.into(),
            notices.into(),
            deadlines.into(),
            deadline_ats.into(),
            dues.into(),
            units.into(),
        ],
    ))
    .await?;
    Ok(())
}

impl Engine {
    /// Locks a work order inside the caller's scope.
    async fn lock_visible(
        txn: &DatabaseTransaction,
        who: &Principal,
        id: Uuid,
    ) -> Result<Loaded, EngineError> {
        let model = work_orders::Entity::find_by_id(id)
            .filter(work_orders::Column::Tenant.eq(who.tenant.code()))
            .filter(work_orders::Column::RegionCode.starts_with(who.scope.prefix()))
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or(EngineError::NotFound)?;
        Ok(details(txn, model).await?)
    }

    /// One action by a person.
    pub async fn act(
        &self,
        who: &Principal,
        id: Uuid,
        req: Request,
    ) -> Result<Loaded, EngineError> {
        let note = jiesu_pii::redact_text(req.note.trim());
        if req.action.needs_note() && note.is_empty() {
            return Err(field("note", "this action needs a reason or note"));
        }
        if note.chars().count() > 2000 {
            return Err(field("note", "at most 2000 characters"));
        }
        let reply = jiesu_pii::redact_text(req.reply.trim());
        if matches!(req.action, Action::Resolve) && reply.is_empty() {
            return Err(field(
                "resolve.reply",
                "the reply to the citizen is required",
            ));
        }
        if reply.chars().count() > 4000 {
            return Err(field("resolve.reply", "at most 4000 characters"));
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
                    format!("`{id}` is not an active unit of the tenant"),
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

    /// Writes a transition: the order row, co-handlers, summons, timeline,
    /// events and timers. The caller holds the row lock and commits.
    #[allow(clippy::too_many_arguments)]
    pub async fn save(
        &self,
        txn: &DatabaseTransaction,
        loaded: Loaded,
        action: &Action,
        t: &workflow::Transition,
        s: &Settings,
        now: DateTime<Utc>,
        names: &[(String, String)],
        role: &str,
        text: &str,
        reply: String,
        actor_unit: Option<&str>,
    ) -> Result<Loaded, EngineError> {
        let before = loaded.model.clone();
        let action_is_dispatch = t
            .clocks
            .iter()
            .any(|c| matches!(c, ClockOp::Start | ClockOp::Redispatch));
        let mut clocks = clocks_of(&before);
        let env = Env {
            cal: &s.calendar,
            fresh: s
                .policy
                .deadlines(&s.calendar, &before.category, &before.urgency, now),
            restart_on_redispatch: s.restart_on_redispatch,
        };
        for op in &t.clocks {
            clocks.apply(op, now, &env);
        }
        let o = &t.order;
        let i = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let mut a = before.clone().into_active_model();
        a.status = Set(o.status.as_str().to_owned());
        if o.lead != before.unit_id {
            let name = names
                .iter()
                .find(|(id, _)| Some(id) == o.lead.as_ref())
                .map(|(_, n)| n.clone());
            a.unit_id = Set(o.lead.clone());
            a.unit_name = Set(name);
        }
        a.extension_days = Set(o.extension_days.map(i));
        a.returns = Set(i(o.returns));
        a.extensions = Set(i(o.extensions));
        a.reopens = Set(i(o.reopens));
        a.level = Set(i16::from(o.level));
        a.leadership = Set(o.leadership);
        set_clocks(&mut a, &clocks);
        if !reply.is_empty() {
            a.reply = Set(reply.clone());
        }
        a.closed_at = Set(if o.status == Status::Closed {
            Some(now)
        } else {
            None
        });
        a.status_before_merge = Set(o.before_merge.map(|b| b.as_str().to_owned()));
        if o.status != Status::Merged {
            a.merged_into = Set(None);
        }
        a.version = Set(before.version + 1);
        a.updated_at = Set(now);
        let m = a.update(txn).await?;

        // Co-handlers: replaced on (re-)dispatch, parts reset on reopen.
        let lead_changed = o.lead != before.unit_id;
        let co_ids: Vec<&str> = o.co.iter().map(|c| c.unit.as_str()).collect();
        let old_ids: Vec<&str> = loaded.co.iter().map(|c| c.unit_id.as_str()).collect();
        if co_ids != old_ids || lead_changed {
            txn.execute_raw(stmt(
                "DELETE FROM work_order_co_units WHERE work_order_id = $1",
                vec![m.id.into()],
            ))
            .await?;
            for c in &o.co {
                let name = names
                    .iter()
                    .find(|(id, _)| id == &c.unit)
                    .map_or_else(|| c.unit.clone(), |(_, n)| n.clone());
                add_co_unit(txn, m.id, &c.unit, &name).await?;
            }
        } else {
            for (c, old) in o.co.iter().zip(&loaded.co) {
                if c.submitted && old.part.is_none() {
                    txn.execute_raw(stmt(
                        "UPDATE work_order_co_units SET part = $3, part_at = $4 \
                         WHERE work_order_id = $1 AND unit_id = $2",
                        vec![m.id.into(), c.unit.clone().into(), text.into(), now.into()],
                    ))
                    .await?;
                } else if !c.submitted && old.part.is_some() {
                    txn.execute_raw(stmt(
                        "UPDATE work_order_co_units SET part = NULL, part_at = NULL \
                         WHERE work_order_id = $1 AND unit_id = $2",
                        vec![m.id.into(), c.unit.clone().into()],
                    ))
                    .await?;
                }
            }
        }
        // Summons: new ones from a whistle, reports from report-in.
        let report_due = s.report_in_within.deadline(&s.calendar, now);
        for x in &o.summoned {
            let had = loaded
                .summons
                .iter()
                .find(|y| y.unit_id == x.unit && i16::from(x.level) == y.level);
            match had {
                None => {
                    let name = names
                        .iter()
                        .find(|(id, _)| id == &x.unit)
                        .map_or_else(|| x.unit.clone(), |(_, n)| n.clone());
                    txn.execute_raw(stmt(
                        "INSERT INTO summons (work_order_id, unit_id, unit_name, level, \
                         summoned_at, due_at) VALUES ($1, $2, $3, $4, $5, $6)",
                        vec![
                            m.id.into(),
                            x.unit.clone().into(),
                            name.into(),
                            i16::from(x.level).into(),
                            now.into(),
                            report_due.into(),
                        ],
                    ))
                    .await?;
                }
                Some(y) if x.reported && y.reported_at.is_none() => {
                    txn.execute_raw(stmt(
                        "UPDATE summons SET reported_at = $4 WHERE work_order_id = $1 \
                         AND unit_id = $2 AND level = $3",
                        vec![
                            m.id.into(),
                            x.unit.clone().into(),
                            y.level.into(),
                            now.into(),
                        ],
                    ))
                    .await?;
                }
                Some(_) => {}
            }
        }
        let after = details(txn, m).await?;
        let m = &after.model;
        let event = if action_is_dispatch && o.status == Status::Dispatched {
            "dispatched"
        } else {
            action.name()
        };
        timeline_entry(txn, m, now, event, role, text.to_owned()).await?;
        self.emit(txn, &after, action, t, role, text, &reply, actor_unit, now)
            .await?;
        reconcile_timers(txn, m, &after.summons, s).await?;
        Ok(after)
    }

    #[allow(clippy::too_many_arguments)]
    async fn emit(
        &self,
        txn: &DatabaseTransaction,
        after: &Loaded,
        action: &Action,
        t: &workflow::Transition,
        role: &str,
        text: &str,
        reply: &str,
        actor_unit: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let m = &after.model;
        let c = || Some(change(m, role, text, now));
        let ob = &self.outbox;
        let dispatched = t
            .clocks
            .iter()
            .any(|x| matches!(x, ClockOp::Start | ClockOp::Redispatch));
        if dispatched && let Some(unit) = &m.unit_id {
            ob.enqueue(
                txn,
                &pb::TicketDispatched {
                    ticket_id: m.ticket_id.to_string(),
                    work_order_id: m.id.to_string(),
                    tenant: m.tenant.clone(),
                    region_code: m.region_code.clone(),
                    tracking_no: m.tracking_no.clone(),
                    category: m.category.clone(),
                    category_name: m.category_name.clone(),
                    unit_id: unit.clone(),
                    unit_name: m.unit_name.clone().unwrap_or_default(),
                    dispatched_at: Some(to_timestamp(now)),
                },
            )
            .await?;
        }
        let o = &t.order;
        match action {
            Action::Dispatch { .. } => {}
            Action::Sign => ob
                .enqueue(txn, &pb::WorkOrderSigned { change: c() })
                .await
                .map(drop)?,
            Action::Return => {
                let e = pb::WorkOrderReturned {
                    change: c(),
                    returns: o.returns,
                };
                ob.enqueue(txn, &e).await?;
            }
            Action::Arbitrate { accept, .. } => {
                let e = pb::WorkOrderReturnArbitrated {
                    change: c(),
                    accepted: *accept,
                };
                ob.enqueue(txn, &e).await?;
            }
            Action::RequestExtension { days } => {
                let e = pb::WorkOrderExtensionRequested {
                    change: c(),
                    days: *days,
                };
                ob.enqueue(txn, &e).await?;
            }
            Action::DecideExtension { approve } => {
                let e = pb::WorkOrderExtensionDecided {
                    change: c(),
                    approved: *approve,
                };
                ob.enqueue(txn, &e).await?;
            }
            Action::Resolve => {
                let e = pb::WorkOrderResolved {
                    change: c(),
                    reply: reply.to_owned(),
                };
                ob.enqueue(txn, &e).await?;
            }
            Action::Review { approve } => {
                let e = pb::WorkOrderReviewed {
                    change: c(),
                    approved: *approve,
                };
                ob.enqueue(txn, &e).await?;
            }
            Action::Close => ob
                .enqueue(txn, &pb::WorkOrderClosed { change: c() })
                .await
                .map(drop)?,
            Action::Reopen => {
                let e = pb::WorkOrderReopened {
                    change: c(),
                    reopens: o.reopens,
                };
                ob.enqueue(txn, &e).await?;
            }
            Action::Whistle { units, .. } => {
                let summoned: Vec<&SummonsRow> = units
                    .iter()
                    .filter_map(|u| {
                        after
                            .summons
                            .iter()
                            .find(|s| &s.unit_id == u && s.level == m.level)
                    })
                    .collect();
                let e = pb::WorkOrderWhistleBlown {
                    change: c(),
                    unit_ids: summoned.iter().map(|s| s.unit_id.clone()).collect(),
                    unit_names: summoned.iter().map(|s| s.unit_name.clone()).collect(),
                    report_due: summoned.first().map(|s| to_timestamp(s.due_at)),
                };
                ob.enqueue(txn, &e).await?;
            }
            Action::ReportIn => {
                let mut ch = change(m, role, text, now);
                ch.unit_id = actor_unit.unwrap_or_default().to_owned();
                ch.unit_name = after
                    .summons
                    .iter()
                    .find(|x| Some(x.unit_id.as_str()) == actor_unit)
                    .map(|x| x.unit_name.clone())
                    .unwrap_or_default();
                ob.enqueue(txn, &pb::WorkOrderUnitReported { change: Some(ch) })
                    .await?;
            }
            Action::Progress
            | Action::Pause
            | Action::Resume
            | Action::Instruct
            | Action::SubmitPart
            | Action::Leadership
            | Action::Merge
            | Action::Unmerge => {
                let e = pb::WorkOrderUpdated {
                    change: c(),
                    action: action.name().to_owned(),
                };
                ob.enqueue(txn, &e).await?;
            }
        }
        for op in &t.clocks {
            if let ClockOp::Lift { from, .. } = op {
                let e = pb::WorkOrderEscalated {
                    change: c(),
                    from_level: u32::from(*from),
                };
                ob.enqueue(txn, &e).await?;
            }
        }
        Ok(())
    }
}
