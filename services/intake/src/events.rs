//! What intake learns from other services' facts: a work order was
//! dispatched, so the ticket is no longer only received. The public
//! tracking answer, Open311 and the duplicate candidates then say so.

use jiesu_bus::{Delivery, HandleError, Handler};
use jiesu_proto::dispatch::TicketDispatched;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use uuid::Uuid;

use crate::{domain, store::stmt};

/// `dispatch ticket.dispatched` → status `dispatched`, if the ticket is
/// still `received` (a withdrawn or merged ticket stays so).
pub struct TicketDispatchedHandler;

#[async_trait::async_trait]
impl Handler for TicketDispatchedHandler {
    type Event = TicketDispatched;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketDispatched,
        _delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let id = Uuid::parse_str(&ev.ticket_id)
            .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
        txn.execute_raw(stmt(
            "UPDATE tickets SET status = $3, updated_at = now() \
             WHERE id = $1 AND tenant = $2 AND status = $4",
            vec![
                id.into(),
                ev.tenant.into(),
                domain::STATUS_DISPATCHED.into(),
                domain::STATUS_RECEIVED.into(),
            ],
        ))
        .await?;
        Ok(())
    }
}
