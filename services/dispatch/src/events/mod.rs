//! Consumers of other contexts' events.

use chrono::Utc;
use jiesu_bus::{Delivery, HandleError, Handler, Outbox};
use jiesu_proto::{dispatch::TicketDispatched, intake::TicketReceived, time::to_timestamp};
use sea_orm::{ActiveModelTrait, DatabaseTransaction, Set};
use uuid::Uuid;

use crate::{
    domain::Placement,
    store::{self, work_order_events, work_orders},
};

/// `intake ticket.received` → a work order, routed or queued for triage.
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
        let ticket_id = Uuid::parse_str(&ev.ticket_id)
            .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
        if ev.tenant.is_empty() || ev.tenant != delivery.tenant {
            return Err(HandleError::Reject(
                "tenant in the event and its header disagree".into(),
            ));
        }
        // A ticket gets one work order. The inbox stops redeliveries; this
        // stops a second event about the same ticket (a replayed outbox).
        if store::work_order_exists(txn, ticket_id).await? {
            tracing::info!(ticket_id = %ticket_id, "work order exists already; event ignored");
            return Ok(());
        }
        let placement = match store::route_for(txn, &ev.tenant, &ev.category).await? {
            Some(unit) => Placement::Unit {
                id: unit.id,
                name: unit.name,
            },
            None => Placement::Triage,
        };
        let now = Utc::now();
        let order_id = Uuid::now_v7();
        let (unit_id, unit_name) = match &placement {
            Placement::Unit { id, name } => (Some(id.clone()), Some(name.clone())),
            Placement::Triage => (None, None),
        };
        work_orders::ActiveModel {
            id: Set(order_id),
            ticket_id: Set(ticket_id),
            tenant: Set(ev.tenant.clone()),
            region_code: Set(if ev.region_code.is_empty() {
                ev.tenant.clone()
            } else {
                ev.region_code.clone()
            }),
            tracking_no: Set(ev.tracking_no.clone()),
            category: Set(ev.category.clone()),
            category_name: Set(ev.category_name.clone()),
            status: Set(placement.status().into()),
            unit_id: Set(unit_id.clone()),
            unit_name: Set(unit_name.clone()),
            submitter_sub: Set(ev.submitter_sub.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(txn)
        .await?;
        work_order_events::ActiveModel {
            work_order_id: Set(order_id),
            tenant: Set(ev.tenant.clone()),
            at: Set(now),
            event: Set(placement.status().into()),
            actor_role: Set("system".into()),
            unit_id: Set(unit_id),
            unit_name: Set(unit_name),
            note: Set(placement.note()),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        if let Placement::Unit { id, name } = &placement {
            let event = TicketDispatched {
                ticket_id: ev.ticket_id.clone(),
                work_order_id: order_id.to_string(),
                tenant: ev.tenant.clone(),
                region_code: ev.region_code.clone(),
                tracking_no: ev.tracking_no.clone(),
                category: ev.category.clone(),
                category_name: ev.category_name.clone(),
                unit_id: id.clone(),
                unit_name: name.clone(),
                dispatched_at: Some(to_timestamp(now)),
            };
            self.outbox.enqueue(txn, &event).await?;
            tracing::info!(ticket_id = %ev.ticket_id, tenant = %ev.tenant, unit_id = %id, "ticket dispatched");
        } else {
            tracing::info!(ticket_id = %ev.ticket_id, tenant = %ev.tenant, category = %ev.category, "no route; ticket queued for triage");
        }
        Ok(())
    }

    fn after_commit(&self) {
        self.outbox.wake();
    }
}
