//! What grid consumes from the bus: intake's `ticket.received` for a
//! whistled grid event (its submitter is `grid-event:<id>`), so that the
//! event records the ticket it became. Every other ticket is ignored.

use jiesu_bus::{Delivery, HandleError, Handler};
use jiesu_proto::intake::TicketReceived;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::store::events;

/// The submitter intake records for a whistled event's ticket.
pub const SUBMITTER_PREFIX: &str = "grid-event:";

pub struct TicketReceivedHandler;

#[async_trait::async_trait]
impl Handler for TicketReceivedHandler {
    type Event = TicketReceived;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketReceived,
        _delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let Some(event_id) = ev.submitter_sub.strip_prefix(SUBMITTER_PREFIX) else {
            return Ok(());
        };
        let id = Uuid::parse_str(event_id)
            .map_err(|_| HandleError::Reject("submitter names no grid event".into()))?;
        events::set_ticket(txn, &ev.tenant, id, &ev.ticket_id, &ev.tracking_no).await?;
        Ok(())
    }
}
