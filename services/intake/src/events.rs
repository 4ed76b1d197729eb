//! What intake learns from other services' facts: a work order was
//! dispatched, signed, resolved, closed or reopened, so the public tracking
//! answer, Open311 and the duplicate candidates say so; a grid worker
//! whistled a matter up, so it becomes a ticket.

use jiesu_bus::{Delivery, HandleError, Handler};
use jiesu_proto::dispatch::{TicketDispatched, TicketProgressed, TicketUnits};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use uuid::Uuid;

use crate::{domain, store::stmt};

/// `dispatch ticket.units` → the units the ticket's order involves now,
/// unless a later set was applied already (events may arrive out of order).
pub struct TicketUnitsHandler;

#[async_trait::async_trait]
impl Handler for TicketUnitsHandler {
    type Event = TicketUnits;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketUnits,
        _delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let id = Uuid::parse_str(&ev.ticket_id)
            .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
        let at = ev
            .at
            .as_ref()
            .and_then(jiesu_proto::time::from_timestamp)
            .ok_or_else(|| HandleError::Reject("at is missing".into()))?;
        let newer = txn
            .execute_raw(stmt(
                "UPDATE tickets SET units_at = $3 \
                 WHERE id = $1 AND tenant = $2 AND (units_at IS NULL OR units_at <= $3)",
                vec![id.into(), ev.tenant.into(), at.into()],
            ))
            .await?
            .rows_affected();
        if newer == 0 {
            return Ok(());
        }
        txn.execute_raw(stmt(
            "DELETE FROM ticket_units WHERE ticket_id = $1",
            vec![id.into()],
        ))
        .await?;
        for unit in ev.unit_ids.into_iter().filter(|u| !u.is_empty()) {
            txn.execute_raw(stmt(
                "INSERT INTO ticket_units (ticket_id, unit_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                vec![id.into(), unit.into()],
            ))
            .await?;
        }
        Ok(())
    }
}

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
                ev.tenant.clone().into(),
                domain::STATUS_DISPATCHED.into(),
                domain::STATUS_RECEIVED.into(),
            ],
        ))
        .await?;
        // The lead unit, for the one lookup (a re-dispatch moves it; a late
        // event of an earlier dispatch does not move it back).
        let at = ev
            .dispatched_at
            .as_ref()
            .and_then(jiesu_proto::time::from_timestamp)
            .unwrap_or_else(chrono::Utc::now);
        txn.execute_raw(stmt(
            "UPDATE tickets SET unit_id = $3, unit_name = $4, unit_at = $5 \
             WHERE id = $1 AND tenant = $2 AND (unit_at IS NULL OR unit_at <= $5)",
            vec![
                id.into(),
                ev.tenant.into(),
                ev.unit_id.into(),
                ev.unit_name.into(),
                at.into(),
            ],
        ))
        .await?;
        Ok(())
    }
}

/// `dispatch ticket.progressed` → intake's copy of the public steps: the
/// step joins the public timeline, and the status and reply follow unless
/// the ticket was withdrawn, merged or answered at intake, or a later step
/// was applied already (events may arrive out of order).
pub struct TicketProgressedHandler;

#[async_trait::async_trait]
impl Handler for TicketProgressedHandler {
    type Event = TicketProgressed;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketProgressed,
        _delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let id = Uuid::parse_str(&ev.ticket_id)
            .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
        let at = ev
            .at
            .as_ref()
            .and_then(jiesu_proto::time::from_timestamp)
            .ok_or_else(|| HandleError::Reject("at is missing".into()))?;
        txn.execute_raw(stmt(
            "UPDATE tickets SET status = $3, progress_at = $4, updated_at = now() \
             WHERE id = $1 AND tenant = $2 AND status NOT IN ($5, $6, $7) \
             AND (progress_at IS NULL OR progress_at <= $4)",
            vec![
                id.into(),
                ev.tenant.clone().into(),
                ev.status.clone().into(),
                at.into(),
                domain::STATUS_WITHDRAWN.into(),
                domain::STATUS_MERGED.into(),
                domain::STATUS_ANSWERED.into(),
            ],
        ))
        .await?;
        // A resolve brings the reply, a reopen takes it back; whichever
        // happened last wins, whatever order they arrive in.
        let reply = match ev.step.as_str() {
            "resolve" => Some(ev.reply_redacted.clone()),
            "reopen" => Some(String::new()),
            _ => None,
        };
        if let Some(reply) = reply {
            txn.execute_raw(stmt(
                "UPDATE tickets SET reply = $3, reply_at = $4 \
                 WHERE id = $1 AND tenant = $2 AND (reply_at IS NULL OR reply_at <= $4)",
                vec![id.into(), ev.tenant.clone().into(), reply.into(), at.into()],
            ))
            .await?;
        }
        txn.execute_raw(stmt(
            "INSERT INTO ticket_progress (ticket_id, tenant, step, note, at) \
             SELECT id, tenant, $3, $4, $5 FROM tickets WHERE id = $1 AND tenant = $2",
            vec![
                id.into(),
                ev.tenant.into(),
                ev.step.into(),
                ev.note.into(),
                at.into(),
            ],
        ))
        .await?;
        Ok(())
    }
}

/// `evaluation callback.verdict` → the callback's verdict joins the public
/// timeline (the tracking page and Open311 say how the citizen judged it).
pub struct CallbackVerdictHandler;

#[async_trait::async_trait]
impl Handler for CallbackVerdictHandler {
    type Event = jiesu_proto::evaluation::CallbackVerdictGiven;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: jiesu_proto::evaluation::CallbackVerdictGiven,
        _delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let id = Uuid::parse_str(&ev.ticket_id)
            .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
        let at = ev
            .at
            .as_ref()
            .and_then(jiesu_proto::time::from_timestamp)
            .ok_or_else(|| HandleError::Reject("at is missing".into()))?;
        let said = match ev.satisfaction.as_str() {
            "satisfied" => "满意",
            "basic" => "基本满意",
            _ => "不满意",
        };
        let mut note = format!(
            "第 {} 轮回访：评价“{said}”，问题{}",
            ev.round,
            if ev.resolved {
                "已解决"
            } else {
                "未解决"
            }
        );
        if ev.reopen_requested {
            note.push_str("，将重新交办");
        }
        txn.execute_raw(stmt(
            "INSERT INTO ticket_progress (ticket_id, tenant, step, note, at) \
             SELECT id, tenant, 'callback', $3, $4 FROM tickets WHERE id = $1 AND tenant = $2",
            vec![id.into(), ev.tenant.into(), note.into(), at.into()],
        ))
        .await?;
        Ok(())
    }
}

/// `grid grid_event.whistled` → a ticket on channel `grid` at the chosen
/// level (吹哨): submitted as `grid-event:<id>` with the event id as the
/// idempotency key, so a redelivery finds the ticket already made. Grid
/// learns the ticket from the `ticket.received` that follows.
pub struct GridEventWhistledHandler {
    pub core: std::sync::Arc<crate::api::Core>,
}

#[async_trait::async_trait]
impl Handler for GridEventWhistledHandler {
    type Event = jiesu_proto::grid::GridEventWhistled;

    async fn handle(
        &self,
        _txn: &DatabaseTransaction,
        ev: jiesu_proto::grid::GridEventWhistled,
        _delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let e = ev
            .event
            .ok_or_else(|| HandleError::Reject("the event carries no grid event".into()))?;
        let content = format!(
            "【网格员吹哨·{}】{}\n吹哨理由：{}",
            e.level, e.content, e.reason
        );
        let ticket = domain::ValidTicket {
            idempotency_key: Some(e.id.clone()),
            channel: domain::Channel::Grid,
            kind: domain::Kind::Livelihood,
            nature: domain::Nature::Help,
            category: e.category.clone(),
            content,
            urgency: domain::Urgency::Normal,
            point: Some((e.lat, e.lon)),
            address: None,
            region_code: Some(e.community_code.clone()),
            citizen_name: None,
            citizen_phone: String::new(),
            citizen_id_number: None,
            confidential: false,
            attributes: Vec::new(),
        };
        let submitter = crate::api::accept::Submitter {
            tenant: ev.tenant.clone(),
            sub: format!("grid-event:{}", e.id),
            actor: "grid_worker",
            channel_id: None,
        };
        let extras = crate::api::accept::Extras {
            level: Some(e.level.clone()),
            ..Default::default()
        };
        match self.core.accept(&submitter, ticket, extras).await {
            Ok(a) => {
                tracing::info!(tenant = %ev.tenant, grid_event = %e.id, tracking_no = %a.tracking_no, replayed = a.replayed, "whistled grid event became a ticket");
                Ok(())
            }
            Err(crate::api::IntakeError::Field(f)) => Err(HandleError::Reject(format!(
                "grid event {} cannot become a ticket: {}: {}",
                e.id, f.field, f.message.en
            ))),
            Err(other) => Err(HandleError::Retry(other.to_string())),
        }
    }
}
