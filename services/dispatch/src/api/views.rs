//! The proto views of a work order: the full one staff see (timeline and
//! 研判 suggestions), the one lists show, and what a citizen may see.

use chrono::Utc;
use jiesu_proto::{
    common::TimelineEntry,
    dispatch::{self as pb, Unit, WorkOrder},
    time::to_timestamp,
};
use sea_orm::DatabaseConnection;

use super::{DispatchApi, DispatchError};
use crate::{
    engine::{self, Loaded},
    store::{self, work_orders},
};

fn deadline(
    due: Option<chrono::DateTime<Utc>>,
    met: Option<chrono::DateTime<Utc>>,
    now: chrono::DateTime<Utc>,
) -> Option<pb::Deadline> {
    let due = due?;
    Some(pb::Deadline {
        due_at: Some(to_timestamp(due)),
        met_at: met.map(to_timestamp),
        overdue: met.map_or(now > due, |m| m > due),
    })
}

/// The proto view of a work order at `now`; `timeline` may be empty (lists).
pub fn view(l: &Loaded, timeline: Vec<TimelineEntry>, now: chrono::DateTime<Utc>) -> WorkOrder {
    let m = &l.model;
    WorkOrder {
        id: m.id.to_string(),
        ticket_id: m.ticket_id.to_string(),
        tenant: m.tenant.clone(),
        status: m.status.clone(),
        unit: match (&m.unit_id, &m.unit_name) {
            (Some(id), Some(name)) => Some(Unit {
                id: id.clone(),
                name: name.clone(),
            }),
            _ => None,
        },
        created_at: Some(to_timestamp(m.created_at)),
        timeline,
        tracking_no: m.tracking_no.clone(),
        region_code: m.region_code.clone(),
        category: m.category.clone(),
        category_name: m.category_name.clone(),
        urgency: m.urgency.clone(),
        level: u32::try_from(m.level).unwrap_or(1),
        co_handlers: l
            .co
            .iter()
            .map(|c| pb::CoHandler {
                unit_id: c.unit_id.clone(),
                unit_name: c.unit_name.clone(),
                part_submitted: c.part.is_some(),
                part: c.part.clone().unwrap_or_default(),
            })
            .collect(),
        sign_due: deadline(m.sign_due, m.signed_at, now),
        respond_due: deadline(m.respond_due, m.responded_at, now),
        resolve_due: deadline(m.resolve_due, m.resolved_at, now),
        paused: m.paused_at.is_some(),
        extension_pending: m.extension_days.is_some(),
        returns: u32::try_from(m.returns).unwrap_or(0),
        extensions: u32::try_from(m.extensions).unwrap_or(0),
        reopens: u32::try_from(m.reopens).unwrap_or(0),
        reply: m.reply.clone(),
        summons: l
            .summons
            .iter()
            .map(|s| pb::Summons {
                unit_id: s.unit_id.clone(),
                unit_name: s.unit_name.clone(),
                level: u32::try_from(s.level).unwrap_or(1),
                due_at: Some(to_timestamp(s.due_at)),
                reported_at: s.reported_at.map(to_timestamp),
            })
            .collect(),
        leadership: m.leadership,
        merged_into_ticket_id: m.merged_into.map(|u| u.to_string()).unwrap_or_default(),
        suggested_units: Vec::new(),
    }
}

/// Timeline events a citizen sees of their own ticket's work order.
const PUBLIC_EVENTS: [&str; 7] = [
    "dispatched",
    "triage",
    "sign",
    "resolve",
    "close",
    "reopen",
    "merge",
];

/// What the citizen who raised the ticket sees: the steps and the reply,
/// not staff notes, co-handlers' parts, summons or levels.
pub(super) fn for_citizen(mut w: WorkOrder) -> WorkOrder {
    w.timeline
        .retain(|e| PUBLIC_EVENTS.contains(&e.event.as_str()));
    for e in &mut w.timeline {
        // Staff notes are "<label>：<note>"; the citizen gets the label.
        if let Some((label, _)) = e.note.split_once('：')
            && e.actor_role != "system"
        {
            e.note = label.to_owned();
        }
    }
    for c in &mut w.co_handlers {
        c.part.clear();
    }
    w.summons.clear();
    w.level = 0;
    w.leadership = false;
    w
}

/// Adds the 研判 suggestions to a triage order's view.
pub(super) async fn with_suggestions(
    db: &DatabaseConnection,
    mut w: WorkOrder,
    now: chrono::DateTime<Utc>,
) -> Result<WorkOrder, DispatchError> {
    if w.status == "triage" {
        let today = jiesu_common::time::china_day(now);
        w.suggested_units = store::directory::suggest(db, &w.tenant, &w.category, today)
            .await?
            .into_iter()
            .map(|(id, name)| Unit { id, name })
            .collect();
    }
    Ok(w)
}

impl DispatchApi {
    pub(super) async fn full_view(
        &self,
        model: work_orders::Model,
    ) -> Result<WorkOrder, DispatchError> {
        let timeline = store::timeline(&self.db, &model)
            .await?
            .into_iter()
            .map(|e| TimelineEntry {
                at: Some(to_timestamp(e.at)),
                event: e.event,
                actor_role: e.actor_role,
                note: e.note,
                unit_id: e.unit_id.unwrap_or_default(),
                unit_name: e.unit_name.unwrap_or_default(),
            })
            .collect();
        let loaded = engine::details(&self.db, model).await?;
        let now = self.engine.clock.now();
        with_suggestions(&self.db, view(&loaded, timeline, now), now).await
    }
}
