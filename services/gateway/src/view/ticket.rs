//! The ticket as a reader sees it: intake's ticket and dispatch's work order
//! (and, for a merged ticket, its master's work order) made one answer
//! (docs/decisions/0008-ticket-view.md).
//!
//! The rules: a merged ticket (并件) shows its master's status, dispatch's
//! when the master has a work order, else intake's record of it; any other
//! ticket shows dispatch's status once a work order exists, else intake's.
//! The two timelines merge by time, each entry naming its source. What
//! dispatch could not say is listed in `degraded`, never an error.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use jiesu_proto::{
    common::TimelineEntry, dispatch::WorkOrder, intake::Attachment, intake::Ticket,
    time::from_timestamp,
};
use serde::Serialize;
use utoipa::ToSchema;

/// Another ticket, by id and tracking number.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketRef {
    pub id: String,
    pub tracking_no: String,
}

/// A reference to ticket `id`; none when intake left it empty.
pub fn ticket_ref(id: String, tracking_no: String) -> Option<TicketRef> {
    (!id.is_empty()).then_some(TicketRef { id, tracking_no })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CitizenView {
    pub name: String,
    /// Always masked, e.g. `138****8000`; `（保密）` for a confidential
    /// caller unless the reader is an agent.
    #[schema(example = "138****8000")]
    pub phone: String,
    /// Masked, empty when not given.
    pub id_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocationView {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Masked address.
    pub address: String,
    /// The street or community the ticket belongs to (the tenant if unknown).
    pub region_code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitView {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineItem {
    pub at: Option<DateTime<Utc>>,
    /// `received`, `dispatched`, `triage`, ...
    pub event: String,
    /// Which service recorded it: `intake` or `dispatch`.
    pub source: String,
    pub actor_role: String,
    pub note: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitView>,
}

/// One entry of a service's timeline, labelled with that service.
pub fn timeline_item(e: &TimelineEntry, source: &str) -> TimelineItem {
    TimelineItem {
        at: e.at.as_ref().and_then(from_timestamp),
        event: e.event.clone(),
        source: source.to_owned(),
        actor_role: e.actor_role.clone(),
        note: e.note.clone(),
        unit: (!e.unit_id.is_empty()).then(|| UnitView {
            id: e.unit_id.clone(),
            name: e.unit_name.clone(),
        }),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: String,
    /// `image` or `audio`.
    pub kind: String,
    /// Decided from the bytes: image/jpeg, image/png, audio/amr, ...
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_at: Option<DateTime<Utc>>,
    /// Where to fetch it (same authorisation as the ticket).
    pub url: String,
}

/// An attachment of ticket `ticket_id`, with the URL that serves its bytes.
pub fn attachment_view(ticket_id: &str, a: Attachment) -> AttachmentView {
    AttachmentView {
        url: format!("/api/v1/tickets/{ticket_id}/attachments/{}", a.id),
        id: a.id,
        kind: a.kind,
        content_type: a.content_type,
        size_bytes: a.size_bytes,
        sha256: a.sha256,
        created_at: a.created_at.as_ref().and_then(from_timestamp),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub id: String,
    pub tracking_no: String,
    /// `received`, `triage`, `dispatched`, ...; a merged ticket shows its
    /// master's status.
    pub status: String,
    /// Its work order in dispatch (`/api/v1/work-orders/{id}`), once
    /// dispatch has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<String>,
    /// The unit's reply once resolved (办结答复).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// The master this ticket is merged into (并件), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<TicketRef>,
    /// Tickets merged into this one (staff only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<TicketRef>,
    pub channel: String,
    pub nature: String,
    pub category: String,
    pub category_name: String,
    pub content: String,
    pub urgency: String,
    /// `livelihood`, `development` or `enforcement`.
    pub kind: String,
    pub confidential: bool,
    /// Attribute code → values.
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, Vec<String>>,
    /// The registered channel (tenant platform, Open311 client) it came
    /// through, with that system's own id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub citizen: CitizenView,
    pub location: LocationView,
    /// The responsible unit once dispatched.
    pub unit: Option<UnitView>,
    pub timeline: Vec<TimelineItem>,
    /// Photos and recordings.
    pub attachments: Vec<AttachmentView>,
    /// Parts that could not be read right now (e.g. `["dispatch"]`); the
    /// rest of the ticket is still correct.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<String>,
}

/// What the services answered about one ticket.
pub struct Sources {
    /// The id as the caller wrote it: attachment URLs repeat it.
    pub requested_id: String,
    pub ticket: Ticket,
    /// Its work order, when dispatch has one and answered.
    pub order: Option<WorkOrder>,
    /// For a merged ticket, the master's work order, when dispatch has one
    /// and answered.
    pub master_order: Option<WorkOrder>,
    /// Services that did not answer (`dispatch`).
    pub degraded: Vec<String>,
}

/// The status a reader sees (see the module's rules).
pub fn status(
    ticket: &Ticket,
    order: Option<&WorkOrder>,
    master_order: Option<&WorkOrder>,
) -> String {
    let own = if ticket.merged_into.is_empty() {
        order
    } else {
        master_order
    };
    match own {
        Some(o) => o.status.clone(),
        None if ticket.merged_into.is_empty() => ticket.status.clone(),
        None => ticket.merged_into_status.clone(),
    }
}

/// Both timelines in time order; entries of the same moment keep intake's
/// before dispatch's.
pub fn timeline(ticket: &Ticket, order: Option<&WorkOrder>) -> Vec<TimelineItem> {
    let mut items: Vec<TimelineItem> = ticket
        .timeline
        .iter()
        .map(|e| timeline_item(e, "intake"))
        .chain(
            order
                .into_iter()
                .flat_map(|o| o.timeline.iter().map(|e| timeline_item(e, "dispatch"))),
        )
        .collect();
    items.sort_by_key(|e| e.at);
    items
}

/// The one answer for `GET /api/v1/tickets/{id}`.
pub fn compose(s: Sources) -> TicketView {
    let status = status(&s.ticket, s.order.as_ref(), s.master_order.as_ref());
    let timeline = timeline(&s.ticket, s.order.as_ref());
    let work_order_id = s.order.as_ref().map(|o| o.id.clone());
    let reply = s
        .order
        .as_ref()
        .map(|o| o.reply.clone())
        .filter(|r| !r.is_empty());
    let unit = s.order.and_then(|o| o.unit).map(|u| UnitView {
        id: u.id,
        name: u.name,
    });
    let ticket = s.ticket;
    let citizen = ticket.citizen.unwrap_or_default();
    let location = ticket.location.unwrap_or_default();
    TicketView {
        id: ticket.id,
        tracking_no: ticket.tracking_no,
        status,
        merged_into: ticket_ref(ticket.merged_into, ticket.merged_into_tracking_no),
        work_order_id,
        reply,
        merged: ticket
            .merged
            .into_iter()
            .filter_map(|m| ticket_ref(m.ticket_id, m.tracking_no))
            .collect(),
        channel: ticket.channel,
        nature: ticket.nature,
        category: ticket.category,
        category_name: ticket.category_name,
        content: ticket.content,
        urgency: ticket.urgency,
        kind: ticket.kind,
        confidential: ticket.confidential,
        attributes: ticket
            .attributes
            .into_iter()
            .map(|a| (a.code, a.values))
            .collect(),
        channel_id: (!ticket.channel_id.is_empty()).then_some(ticket.channel_id),
        external_id: (!ticket.external_id.is_empty()).then_some(ticket.external_id),
        created_at: ticket.created_at.as_ref().and_then(from_timestamp),
        citizen: CitizenView {
            name: citizen.name,
            phone: citizen.phone,
            id_number: citizen.id_number,
        },
        location: LocationView {
            lat: location.lat,
            lon: location.lon,
            address: location.address,
            region_code: location.region_code,
        },
        unit,
        timeline,
        attachments: ticket
            .attachments
            .into_iter()
            .map(|a| attachment_view(&s.requested_id, a))
            .collect(),
        degraded: s.degraded,
    }
}

#[cfg(test)]
mod tests {
    use jiesu_proto::{dispatch::Unit, intake::MergedTicket};
    use prost_types::Timestamp;

    use super::*;

    fn ticket(status: &str, merged_into: &str, merged_into_status: &str) -> Ticket {
        Ticket {
            id: "t1".into(),
            status: status.into(),
            merged_into: merged_into.into(),
            merged_into_tracking_no: if merged_into.is_empty() {
                String::new()
            } else {
                "370202-20261122-00001".into()
            },
            merged_into_status: merged_into_status.into(),
            ..Default::default()
        }
    }

    fn order(status: &str) -> WorkOrder {
        WorkOrder {
            id: format!("wo-{status}"),
            status: status.into(),
            ..Default::default()
        }
    }

    fn entry(secs: i64, event: &str) -> TimelineEntry {
        TimelineEntry {
            at: Some(Timestamp {
                seconds: secs,
                nanos: 0,
            }),
            event: event.into(),
            ..Default::default()
        }
    }

    #[test]
    fn status_precedence() {
        // (ticket status, merged into, intake's master status, own order,
        // master's order, expected, why)
        let cases = [
            (
                "received",
                "",
                "",
                None,
                None,
                "received",
                "intake's until dispatch has it",
            ),
            (
                "received",
                "",
                "",
                Some("signed"),
                None,
                "signed",
                "dispatch owns it once it has an order",
            ),
            (
                "received",
                "",
                "",
                Some("signed"),
                Some("closed"),
                "signed",
                "a master's order means nothing unmerged",
            ),
            (
                "merged",
                "m1",
                "dispatched",
                None,
                None,
                "dispatched",
                "merged, master unknown to dispatch: intake's record",
            ),
            (
                "merged",
                "m1",
                "dispatched",
                None,
                Some("resolved"),
                "resolved",
                "merged: the master's order wins",
            ),
            (
                "merged",
                "m1",
                "dispatched",
                Some("merged"),
                Some("resolved"),
                "resolved",
                "merged: over its own order too",
            ),
            (
                "merged",
                "m1",
                "dispatched",
                Some("merged"),
                None,
                "dispatched",
                "merged: never its own order's `merged`",
            ),
        ];
        for (st, into, into_status, own, master, want, why) in cases {
            let t = ticket(st, into, into_status);
            let own = own.map(order);
            let master = master.map(order);
            assert_eq!(status(&t, own.as_ref(), master.as_ref()), want, "{why}");
        }
    }

    #[test]
    fn timelines_merge_by_time_and_name_their_source() {
        let mut t = ticket("dispatched", "", "");
        t.timeline = vec![entry(10, "received"), entry(30, "information")];
        let mut o = order("signed");
        o.timeline = vec![entry(20, "dispatched"), entry(30, "signed")];
        let got: Vec<(String, String)> = timeline(&t, Some(&o))
            .into_iter()
            .map(|i| (i.event, i.source))
            .collect();
        let want = [
            ("received", "intake"),
            ("dispatched", "dispatch"),
            ("information", "intake"),
            ("signed", "dispatch"),
        ]
        .map(|(e, s)| (e.to_owned(), s.to_owned()));
        assert_eq!(got, want, "same moment: intake's entry first");
        assert_eq!(
            timeline(&t, None).len(),
            2,
            "without an order, intake's alone"
        );
    }

    #[test]
    fn composed_view() {
        let mut t = ticket("merged", "m1", "dispatched");
        t.merged = vec![
            MergedTicket {
                ticket_id: "c1".into(),
                tracking_no: "n1".into(),
                merged_at: None,
            },
            MergedTicket::default(),
        ];
        t.attachments = vec![Attachment {
            id: "a1".into(),
            ..Default::default()
        }];
        let mut own = order("merged");
        own.reply = String::new();
        own.unit = Some(Unit {
            id: "sn-zjj".into(),
            name: "住建局".into(),
        });
        let mut master = order("resolved");
        master.reply = "已处理".into();
        let v = compose(Sources {
            requested_id: "T1".into(),
            ticket: t,
            order: Some(own),
            master_order: Some(master),
            degraded: vec!["dispatch".into()],
        });
        assert_eq!(v.status, "resolved");
        assert_eq!(v.work_order_id.as_deref(), Some("wo-merged"));
        assert_eq!(v.reply, None, "the reply is the ticket's own order's");
        assert_eq!(v.unit.map(|u| u.id).as_deref(), Some("sn-zjj"));
        assert_eq!(v.merged_into.map(|m| m.id).as_deref(), Some("m1"));
        assert_eq!(v.merged.len(), 1, "entries without an id are dropped");
        assert_eq!(v.attachments[0].url, "/api/v1/tickets/T1/attachments/a1");
        assert_eq!(v.degraded, ["dispatch"]);
        assert_eq!(v.channel_id, None);
    }
}
