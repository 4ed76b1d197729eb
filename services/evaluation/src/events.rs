//! Consumers of intake's and dispatch's events: each moves the ticket's
//! facts (and with them the rollups) and logs the step, in the inbox's
//! transaction. Intake's fields are the same in every copy of its event;
//! dispatch's come as a snapshot kept only when its order version is the
//! highest seen; merges follow their own event time. So redelivered,
//! replayed or reordered events end in the same facts.

use chrono::{DateTime, Utc};
use jiesu_bus::{Delivery, HandleError, Handler, Outbox};
use jiesu_proto::{
    dispatch::{AnyWorkOrderEvent, TicketDispatched, WorkOrderFacts},
    intake::{TicketMerged, TicketReceived, TicketUnmerged, TicketWithdrawn},
    time::from_timestamp,
};
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::{
    callbacks, proactive,
    store::{self, facts},
};

fn ticket(ticket_id: &str, tenant: &str, delivery: &Delivery) -> Result<Uuid, HandleError> {
    let id = Uuid::parse_str(ticket_id)
        .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
    if tenant.is_empty() || tenant != delivery.tenant {
        return Err(HandleError::Reject(
            "tenant in the event and its header disagree".into(),
        ));
    }
    Ok(id)
}

fn time(ts: Option<&jiesu_proto::time::Timestamp>) -> Option<DateTime<Utc>> {
    ts.and_then(from_timestamp)
}

fn at_or_now(ts: Option<&jiesu_proto::time::Timestamp>) -> DateTime<Utc> {
    time(ts).unwrap_or_else(Utc::now)
}

/// Takes dispatch's snapshot when it is newer than the one the row has.
fn take_snapshot(m: &mut facts::Model, work_order_id: &str, s: &WorkOrderFacts) {
    if s.version <= m.order_version {
        return;
    }
    let t = |x: &Option<jiesu_proto::time::Timestamp>| time(x.as_ref());
    let n = |x: u32| i32::try_from(x).unwrap_or(i32::MAX);
    m.order_version = s.version;
    m.work_order_id = Uuid::parse_str(work_order_id).ok().or(m.work_order_id);
    m.status.clone_from(&s.status);
    m.unit_id.clone_from(&s.unit_id);
    m.unit_name.clone_from(&s.unit_name);
    if !s.region_code.is_empty() {
        m.order_region.clone_from(&s.region_code);
    }
    m.clock_started_at = t(&s.clock_started_at);
    m.sign_due = t(&s.sign_due);
    m.respond_due = t(&s.respond_due);
    m.resolve_due = t(&s.resolve_due);
    m.signed_at = t(&s.signed_at);
    m.responded_at = t(&s.responded_at);
    m.resolved_at = t(&s.resolved_at);
    m.closed_at = t(&s.closed_at);
    m.returns = n(s.returns);
    m.extensions = n(s.extensions);
    m.reopens = n(s.reopens);
    m.resolve_work_minutes = i32::try_from(s.resolve_work_minutes).unwrap_or(i32::MAX);
    // The first time the order reached a unit stays the first.
    if m.dispatched_at.is_none() && !s.unit_id.is_empty() {
        m.dispatched_at = t(&s.clock_started_at);
    }
}

/// After any change: a closed ticket gets its callback round; a ticket
/// whose category and place are newly known is counted for high
/// frequency.
async fn after_change(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    (before, after): (facts::Model, facts::Model),
) -> Result<(), HandleError> {
    callbacks::open_round_if_due(txn, &after).await?;
    proactive::observe(txn, outbox, &before, &after).await?;
    Ok(())
}

/// `intake ticket.received`: tenant, places, category, channel, nature.
pub struct TicketReceivedHandler {
    pub outbox: Outbox,
}

#[async_trait::async_trait]
impl Handler for TicketReceivedHandler {
    type Event = TicketReceived;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketReceived,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let id = ticket(&ev.ticket_id, &ev.tenant, delivery)?;
        let received = at_or_now(ev.received_at.as_ref());
        let seen = store::change_facts_seen(txn, id, &ev.tenant, |m| {
            m.tracking_no.clone_from(&ev.tracking_no);
            m.submitter_sub.clone_from(&ev.submitter_sub);
            m.received_at = Some(received);
            m.channel.clone_from(&ev.channel);
            m.nature.clone_from(&ev.nature);
            m.category.clone_from(&ev.category);
            m.category_name.clone_from(&ev.category_name);
            m.category_path = serde_json::json!(ev.category_path);
            m.category_path_names = serde_json::json!(ev.category_path_names);
            m.received_region = if ev.region_code.is_empty() {
                ev.tenant.clone()
            } else {
                ev.region_code.clone()
            };
        })
        .await?;
        store::record_step(txn, delivery.event_id, id, "received", received, "").await?;
        after_change(txn, &self.outbox, seen).await
    }

    fn after_commit(&self) {
        self.outbox.wake();
    }
}

/// `dispatch ticket.dispatched`: the order reached a unit.
pub struct TicketDispatchedHandler {
    pub outbox: Outbox,
}

#[async_trait::async_trait]
impl Handler for TicketDispatchedHandler {
    type Event = TicketDispatched;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketDispatched,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let id = ticket(&ev.ticket_id, &ev.tenant, delivery)?;
        let at = at_or_now(ev.dispatched_at.as_ref());
        let seen = store::change_facts_seen(txn, id, &ev.tenant, |m| {
            if m.tracking_no.is_empty() {
                m.tracking_no.clone_from(&ev.tracking_no);
            }
            m.dispatched_at = Some(m.dispatched_at.map_or(at, |d| d.min(at)));
            if let Some(s) = &ev.facts {
                take_snapshot(m, &ev.work_order_id, s);
            }
        })
        .await?;
        store::record_step(txn, delivery.event_id, id, "dispatched", at, &ev.unit_id).await?;
        after_change(txn, &self.outbox, seen).await
    }

    fn after_commit(&self) {
        self.outbox.wake();
    }
}

/// Every `dispatch work_order.*` event: the order's snapshot; a closed
/// order's callback round; the step.
pub struct WorkOrderHandler {
    pub outbox: Outbox,
}

#[async_trait::async_trait]
impl Handler for WorkOrderHandler {
    type Event = AnyWorkOrderEvent;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: AnyWorkOrderEvent,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let c = ev
            .change
            .ok_or_else(|| HandleError::Reject("the event carries no change".into()))?;
        let id = ticket(&c.ticket_id, &c.tenant, delivery)?;
        let at = at_or_now(c.at.as_ref());
        let seen = store::change_facts_seen(txn, id, &c.tenant, |m| {
            if m.tracking_no.is_empty() {
                m.tracking_no.clone_from(&c.tracking_no);
            }
            if let Some(s) = &c.facts {
                take_snapshot(m, &c.work_order_id, s);
            }
        })
        .await?;
        let step = delivery
            .subject
            .rsplit('.')
            .next()
            .unwrap_or("work_order")
            .to_owned();
        store::record_step(txn, delivery.event_id, id, &step, at, &c.unit_id).await?;
        after_change(txn, &self.outbox, seen).await
    }

    fn after_commit(&self) {
        self.outbox.wake();
    }
}

/// `intake ticket.merged` / `ticket.unmerged`: a merged ticket is not
/// judged on its own; the latest of the two by event time stands.
pub struct TicketMergedHandler;

async fn set_merged(
    txn: &DatabaseTransaction,
    id: Uuid,
    tenant: &str,
    merged: bool,
    at: DateTime<Utc>,
) -> Result<(), HandleError> {
    store::change_facts(txn, id, tenant, |m| {
        if m.merge_changed_at.is_none_or(|x| x < at) {
            m.merged = merged;
            m.merge_changed_at = Some(at);
        }
    })
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Handler for TicketMergedHandler {
    type Event = TicketMerged;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketMerged,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let id = ticket(&ev.ticket_id, &ev.tenant, delivery)?;
        let at = at_or_now(ev.at.as_ref());
        // A ticket merged as it was accepted has no ticket.received: it is
        // counted as a request (received, merged) from this event.
        if let Some(received) = time(ev.received_at.as_ref()) {
            store::change_facts(txn, id, &ev.tenant, |m| {
                if m.received_at.is_none() {
                    m.received_at = Some(received);
                    m.tracking_no.clone_from(&ev.tracking_no);
                    m.channel.clone_from(&ev.channel);
                    m.nature.clone_from(&ev.nature);
                    m.category.clone_from(&ev.category);
                    m.received_region = if ev.region_code.is_empty() {
                        ev.tenant.clone()
                    } else {
                        ev.region_code.clone()
                    };
                }
            })
            .await?;
        }
        set_merged(txn, id, &ev.tenant, true, at).await?;
        store::record_step(txn, delivery.event_id, id, "merged", at, "").await?;
        Ok(())
    }
}

pub struct TicketUnmergedHandler;

#[async_trait::async_trait]
impl Handler for TicketUnmergedHandler {
    type Event = TicketUnmerged;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketUnmerged,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let id = ticket(&ev.ticket_id, &ev.tenant, delivery)?;
        let at = at_or_now(ev.at.as_ref());
        set_merged(txn, id, &ev.tenant, false, at).await?;
        store::record_step(txn, delivery.event_id, id, "unmerged", at, "").await?;
        Ok(())
    }
}

/// `intake ticket.withdrawn`: the citizen took it back; not judged.
pub struct TicketWithdrawnHandler;

#[async_trait::async_trait]
impl Handler for TicketWithdrawnHandler {
    type Event = TicketWithdrawn;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketWithdrawn,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let id = ticket(&ev.ticket_id, &ev.tenant, delivery)?;
        let at = at_or_now(ev.at.as_ref());
        store::change_facts(txn, id, &ev.tenant, |m| m.withdrawn = true).await?;
        store::record_step(txn, delivery.event_id, id, "withdrawn", at, "").await?;
        Ok(())
    }
}
