//! Persisting a transition: the order row with its clocks, co-handlers,
//! summons and timeline, then its events and timers, in the caller's
//! transaction.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseTransaction, DbErr,
    IntoActiveModel,
};
use uuid::Uuid;

use super::{Engine, EngineError, Loaded, clocks_of, details, reconcile_timers};
use crate::{
    domain::{
        clock::{Clocks, Env},
        workflow::{self, Action, ClockOp, Status},
    },
    store::{
        settings::{Settings, stmt},
        work_order_events, work_orders,
    },
};

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

impl Engine {
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
        // Working time to resolve, by the calendar in force when resolved.
        a.resolve_work_minutes = Set(match (clocks.started_at, clocks.resolved_at) {
            (Some(start), Some(done)) if before.resolved_at != Some(done) => Some(
                i32::try_from(s.calendar.between(start, done).num_minutes()).unwrap_or(i32::MAX),
            ),
            (_, Some(_)) => before.resolve_work_minutes,
            (_, None) => None,
        });
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
        // The entry names the unit that acted: a co-handler submitting its
        // part or a summoned unit reporting in, not the lead unit.
        let acting = actor_unit
            .filter(|u| m.unit_id.as_deref() != Some(*u))
            .and_then(|u| {
                let co = after
                    .co
                    .iter()
                    .find(|c| c.unit_id == u)
                    .map(|c| &c.unit_name);
                let summoned = after.summons.iter().find(|x| x.unit_id == u);
                co.or(summoned.map(|x| &x.unit_name))
                    .map(|name| (u.to_owned(), name.clone()))
            });
        match acting {
            Some((id, name)) => {
                let mut by = m.clone();
                by.unit_id = Some(id);
                by.unit_name = Some(name);
                timeline_entry(txn, &by, now, event, role, text.to_owned()).await?;
            }
            None => timeline_entry(txn, m, now, event, role, text.to_owned()).await?,
        }
        self.emit(txn, &after, action, t, role, text, &reply, actor_unit, now)
            .await?;
        reconcile_timers(txn, m, &after.summons, s).await?;
        Ok(after)
    }
}
