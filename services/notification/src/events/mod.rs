//! Consumers: each fact that someone must hear about becomes notifications.

use std::sync::Arc;

use chrono::Utc;
use jiesu_bus::{Delivery, HandleError, Handler};
use jiesu_proto::dispatch::TicketDispatched;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain;

/// `dispatch ticket.dispatched` → one notification for the unit.
pub struct TicketDispatchedHandler {
    pub wake: Arc<Notify>,
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
        let ticket_id = Uuid::parse_str(&ev.ticket_id)
            .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
        if ev.unit_id.is_empty() || ev.tenant.is_empty() {
            return Err(HandleError::Reject("event names no unit or tenant".into()));
        }
        let (title, body) = domain::new_work_order(&ev);
        let region = if ev.region_code.is_empty() {
            ev.tenant.clone()
        } else {
            ev.region_code.clone()
        };
        // The unique key (event, recipient, channel) is a second guard behind
        // the inbox: even a replay past inbox retention cannot notify twice.
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO notifications (id, tenant, region_code, recipient_kind, recipient_id, \
               recipient_name, channel, title, body, ticket_id, source_event_id, status, created_at) \
             VALUES ($1, $2, $3, 'unit', $4, $5, 'log', $6, $7, $8, $9, 'pending', $10) \
             ON CONFLICT (source_event_id, recipient_kind, recipient_id, channel) DO NOTHING",
            [
                Uuid::now_v7().into(),
                ev.tenant.clone().into(),
                region.into(),
                ev.unit_id.clone().into(),
                ev.unit_name.clone().into(),
                title.into(),
                body.into(),
                ticket_id.into(),
                delivery.event_id.into(),
                Utc::now().into(),
            ],
        ))
        .await?;
        Ok(())
    }

    fn after_commit(&self) {
        self.wake.notify_one();
    }
}
