//! Consumers of intake's and dispatch's events: each moves the ticket's
//! facts (and with them the rollups) and logs the step, in the inbox's
//! transaction. A pull of events is applied together (one transaction, the
//! rows locked at once, the rollups written once: [`store::Changes`]); its
//! events commute, as said next. Intake's fields are the same in every copy of its event;
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
    callbacks,
    policies::Policies,
    proactive,
    store::{Changes, facts},
};

fn ticket(
    ticket_id: &str,
    tenant: &str,
    delivery: &Delivery,
) -> Result<(Uuid, String), HandleError> {
    let id = Uuid::parse_str(ticket_id)
        .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
    if tenant.is_empty() || tenant != delivery.tenant {
        return Err(HandleError::Reject(
            "tenant in the event and its header disagree".into(),
        ));
    }
    Ok((id, tenant.to_owned()))
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

/// An event that moves a ticket's facts.
pub trait FactsEvent: jiesu_proto::Event + Send + Sync {
    /// Whether a change it makes opens a callback round or counts for high
    /// frequency.
    const OBSERVED: bool;

    /// The ticket id and tenant as the event gives them.
    fn ids(&self) -> Option<(&str, &str)>;

    /// The ticket (and its tenant), checked against the delivery.
    fn ticket(&self, delivery: &Delivery) -> Result<(Uuid, String), HandleError> {
        let (id, tenant) = self
            .ids()
            .ok_or_else(|| HandleError::Reject("the event carries no change".into()))?;
        ticket(id, tenant, delivery)
    }

    /// Edits the locked row and logs the step; answers the row before and
    /// after.
    fn apply(
        &self,
        changes: &mut Changes,
        id: Uuid,
        delivery: &Delivery,
    ) -> Result<(facts::Model, facts::Model), HandleError>;
}

/// The consumer of one kind of facts event.
pub struct FactsHandler<E> {
    outbox: Outbox,
    kind: std::marker::PhantomData<fn() -> E>,
}

impl<E> FactsHandler<E> {
    pub fn new(outbox: Outbox) -> Self {
        Self {
            outbox,
            kind: std::marker::PhantomData,
        }
    }
}

#[async_trait::async_trait]
impl<E: FactsEvent + 'static> Handler for FactsHandler<E> {
    type Event = E;
    const APPLY_TOGETHER: bool = true;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: E,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        self.handle_batch(txn, vec![(ev, delivery.clone())]).await
    }

    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: Vec<(E, Delivery)>,
    ) -> Result<(), HandleError> {
        let tickets = events
            .iter()
            .map(|(ev, d)| ev.ticket(d))
            .collect::<Result<Vec<_>, _>>()?;
        let mut changes = Changes::lock(txn, &tickets).await?;
        let mut seen = Vec::with_capacity(events.len());
        for ((ev, d), (id, _)) in events.iter().zip(&tickets) {
            let (before, after) = ev.apply(&mut changes, *id, d)?;
            if E::OBSERVED && before != after {
                seen.push((before, after));
            }
        }
        let rollups = changes.save(txn).await?;
        // Then, with every row of the pull saved (high-frequency counting
        // reads its neighbours' rows), the changes: closed tickets get their
        // callback rounds; tickets whose category and place are newly known
        // are counted.
        let tenants: std::collections::BTreeSet<String> =
            seen.iter().map(|(_, a)| a.tenant.clone()).collect();
        let mut policies = Policies::load(txn, tenants.into_iter().collect()).await?;
        let closed: Vec<&facts::Model> = seen.iter().map(|(_, after)| after).collect();
        callbacks::open_rounds(txn, &self.outbox, &mut policies, &closed).await?;
        proactive::observe_all(txn, &self.outbox, &mut policies, &seen).await?;
        rollups.apply(txn).await?;
        Ok(())
    }

    fn after_commit(&self) {
        self.outbox.wake();
    }
}

/// `intake ticket.received`: tenant, places, category, channel, nature.
impl FactsEvent for TicketReceived {
    const OBSERVED: bool = true;

    fn ids(&self) -> Option<(&str, &str)> {
        Some((&self.ticket_id, &self.tenant))
    }

    fn apply(
        &self,
        changes: &mut Changes,
        id: Uuid,
        delivery: &Delivery,
    ) -> Result<(facts::Model, facts::Model), HandleError> {
        let ev = self;
        let received = at_or_now(ev.received_at.as_ref());
        let seen = changes.edit(id, |m| {
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
        })?;
        changes.step(delivery.event_id, id, "received", received, "");
        Ok(seen)
    }
}

/// `dispatch ticket.dispatched`: the order reached a unit.
impl FactsEvent for TicketDispatched {
    const OBSERVED: bool = true;

    fn ids(&self) -> Option<(&str, &str)> {
        Some((&self.ticket_id, &self.tenant))
    }

    fn apply(
        &self,
        changes: &mut Changes,
        id: Uuid,
        delivery: &Delivery,
    ) -> Result<(facts::Model, facts::Model), HandleError> {
        let ev = self;
        let at = at_or_now(ev.dispatched_at.as_ref());
        let seen = changes.edit(id, |m| {
            if m.tracking_no.is_empty() {
                m.tracking_no.clone_from(&ev.tracking_no);
            }
            m.dispatched_at = Some(m.dispatched_at.map_or(at, |d| d.min(at)));
            if let Some(s) = &ev.facts {
                take_snapshot(m, &ev.work_order_id, s);
            }
        })?;
        changes.step(delivery.event_id, id, "dispatched", at, &ev.unit_id);
        Ok(seen)
    }
}

/// Every `dispatch work_order.*` event: the order's snapshot; a closed
/// order's callback round; the step.
impl FactsEvent for AnyWorkOrderEvent {
    const OBSERVED: bool = true;

    fn ids(&self) -> Option<(&str, &str)> {
        self.change
            .as_ref()
            .map(|c| (c.ticket_id.as_str(), c.tenant.as_str()))
    }

    fn apply(
        &self,
        changes: &mut Changes,
        id: Uuid,
        delivery: &Delivery,
    ) -> Result<(facts::Model, facts::Model), HandleError> {
        let c = self
            .change
            .as_ref()
            .ok_or_else(|| HandleError::Reject("the event carries no change".into()))?;
        let at = at_or_now(c.at.as_ref());
        let seen = changes.edit(id, |m| {
            if m.tracking_no.is_empty() {
                m.tracking_no.clone_from(&c.tracking_no);
            }
            if let Some(s) = &c.facts {
                take_snapshot(m, &c.work_order_id, s);
            }
        })?;
        let step = delivery.subject.rsplit('.').next().unwrap_or("work_order");
        changes.step(delivery.event_id, id, step, at, &c.unit_id);
        Ok(seen)
    }
}

/// A merged ticket is not judged on its own; of a merge and an unmerge the
/// latest by event time stands.
fn set_merged(
    changes: &mut Changes,
    id: Uuid,
    merged: bool,
    at: DateTime<Utc>,
) -> Result<(facts::Model, facts::Model), HandleError> {
    Ok(changes.edit(id, |m| {
        if m.merge_changed_at.is_none_or(|x| x < at) {
            m.merged = merged;
            m.merge_changed_at = Some(at);
        }
    })?)
}

/// `intake ticket.merged`.
impl FactsEvent for TicketMerged {
    const OBSERVED: bool = false;

    fn ids(&self) -> Option<(&str, &str)> {
        Some((&self.ticket_id, &self.tenant))
    }

    fn apply(
        &self,
        changes: &mut Changes,
        id: Uuid,
        delivery: &Delivery,
    ) -> Result<(facts::Model, facts::Model), HandleError> {
        let ev = self;
        let at = at_or_now(ev.at.as_ref());
        // A ticket merged as it was accepted has no ticket.received: it is
        // counted as a request (received, merged) from this event.
        if let Some(received) = time(ev.received_at.as_ref()) {
            changes.edit(id, |m| {
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
            })?;
        }
        let seen = set_merged(changes, id, true, at)?;
        changes.step(delivery.event_id, id, "merged", at, "");
        Ok(seen)
    }
}

/// `intake ticket.unmerged`.
impl FactsEvent for TicketUnmerged {
    const OBSERVED: bool = false;

    fn ids(&self) -> Option<(&str, &str)> {
        Some((&self.ticket_id, &self.tenant))
    }

    fn apply(
        &self,
        changes: &mut Changes,
        id: Uuid,
        delivery: &Delivery,
    ) -> Result<(facts::Model, facts::Model), HandleError> {
        let at = at_or_now(self.at.as_ref());
        let seen = set_merged(changes, id, false, at)?;
        changes.step(delivery.event_id, id, "unmerged", at, "");
        Ok(seen)
    }
}

/// `intake ticket.withdrawn`: the citizen took it back; not judged.
impl FactsEvent for TicketWithdrawn {
    const OBSERVED: bool = false;

    fn ids(&self) -> Option<(&str, &str)> {
        Some((&self.ticket_id, &self.tenant))
    }

    fn apply(
        &self,
        changes: &mut Changes,
        id: Uuid,
        delivery: &Delivery,
    ) -> Result<(facts::Model, facts::Model), HandleError> {
        let at = at_or_now(self.at.as_ref());
        let seen = changes.edit(id, |m| m.withdrawn = true)?;
        changes.step(delivery.event_id, id, "withdrawn", at, "");
        Ok(seen)
    }
}
