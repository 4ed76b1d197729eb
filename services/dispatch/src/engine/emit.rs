//! The events a transition publishes through the outbox, in the same
//! transaction as the change they report.

use chrono::{DateTime, Utc};
use jiesu_proto::{
    dispatch::{self as pb, WorkOrderChange},
    time::to_timestamp,
};
use sea_orm::{DatabaseTransaction, DbErr};

use super::{Engine, Loaded, SummonsRow};
use crate::{
    domain::workflow::{self, Action, ClockOp},
    store::work_orders,
};

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
        facts: Some(facts(m)),
    }
}

/// The order's judged facts as saved (see `WorkOrderFacts`).
pub fn facts(m: &work_orders::Model) -> pb::WorkOrderFacts {
    let ts = |t: Option<DateTime<Utc>>| t.map(to_timestamp);
    let n = |x: i32| u32::try_from(x).unwrap_or(0);
    pb::WorkOrderFacts {
        version: m.version,
        status: m.status.clone(),
        unit_id: m.unit_id.clone().unwrap_or_default(),
        unit_name: m.unit_name.clone().unwrap_or_default(),
        urgency: m.urgency.clone(),
        level: u32::try_from(m.level).unwrap_or(1),
        clock_started_at: ts(m.clock_started_at),
        sign_due: ts(m.sign_due),
        respond_due: ts(m.respond_due),
        resolve_due: ts(m.resolve_due),
        signed_at: ts(m.signed_at),
        responded_at: ts(m.responded_at),
        resolved_at: ts(m.resolved_at),
        closed_at: ts(m.closed_at),
        returns: n(m.returns),
        extensions: n(m.extensions),
        reopens: n(m.reopens),
        leadership: m.leadership,
        resolve_work_minutes: i64::from(m.resolve_work_minutes.unwrap_or(0)),
        region_code: m.region_code.clone(),
    }
}

/// A step the citizen may see (`ticket.progressed`), or none for the
/// steps that stay inside the platform (co-handling, levels, pauses...).
pub fn progressed(
    m: &work_orders::Model,
    step: &str,
    reply: &str,
    at: DateTime<Utc>,
) -> Option<pb::TicketProgressed> {
    let unit = m.unit_name.clone().unwrap_or_default();
    let note = match step {
        "dispatched" => format!("已派至{unit}办理"),
        "sign" => format!("{unit}已签收"),
        "resolve" => format!("{unit}已办结并答复"),
        "close" => "工单已办结归档".to_owned(),
        "reopen" => "诉求未解决，已重新交办（重办）".to_owned(),
        _ => return None,
    };
    Some(pb::TicketProgressed {
        ticket_id: m.ticket_id.to_string(),
        work_order_id: m.id.to_string(),
        tenant: m.tenant.clone(),
        tracking_no: m.tracking_no.clone(),
        step: step.to_owned(),
        status: m.status.clone(),
        unit_name: unit,
        note,
        reply_redacted: if step == "resolve" {
            jiesu_pii::redact_text(reply)
        } else {
            String::new()
        },
        at: Some(to_timestamp(at)),
    })
}

/// The units the order involves now: lead, co-handlers, summoned.
pub fn units(after: &Loaded, at: DateTime<Utc>) -> pb::TicketUnits {
    let m = &after.model;
    let mut unit_ids: Vec<String> = m.unit_id.iter().cloned().collect();
    for u in after
        .co
        .iter()
        .map(|c| &c.unit_id)
        .chain(after.summons.iter().map(|s| &s.unit_id))
    {
        if !unit_ids.contains(u) {
            unit_ids.push(u.clone());
        }
    }
    pb::TicketUnits {
        ticket_id: m.ticket_id.to_string(),
        work_order_id: m.id.to_string(),
        tenant: m.tenant.clone(),
        unit_ids,
        at: Some(to_timestamp(at)),
    }
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn emit(
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
                    reopens: if matches!(action, Action::Reopen) {
                        t.order.reopens
                    } else {
                        0
                    },
                    reopen_reason: match action {
                        Action::Reopen => text
                            .split_once('：')
                            .map(|(_, why)| jiesu_pii::redact_text(why))
                            .unwrap_or_default(),
                        _ => String::new(),
                    },
                    facts: Some(facts(m)),
                },
            )
            .await?;
        }
        let units_may_change = dispatched
            || matches!(
                action,
                Action::Dispatch { .. }
                    | Action::Whistle { .. }
                    | Action::Arbitrate { .. }
                    | Action::Reopen
            );
        if units_may_change {
            ob.enqueue(txn, &units(after, now)).await?;
        }
        let step = match action {
            Action::Reopen => "reopen",
            _ if dispatched && m.unit_id.is_some() => "dispatched",
            Action::Sign => "sign",
            Action::Resolve => "resolve",
            Action::Close => "close",
            _ => "",
        };
        if let Some(e) = progressed(m, step, reply, now) {
            ob.enqueue(txn, &e).await?;
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
