//! Consumers: each fact that someone must hear about becomes notifications.

use std::sync::Arc;

use chrono::Utc;
use jiesu_bus::{Delivery, HandleError, Handler};
use jiesu_proto::{
    dispatch::{TicketDispatched, WorkOrderNoticeIssued, WorkOrderWhistleBlown},
    intake::TicketMerged,
};
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
    // Each event stores its own rows: a pull is applied in one transaction.
    const APPLY_TOGETHER: bool = true;

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
        let message = domain::new_work_order(&ev);
        let region = if ev.region_code.is_empty() {
            ev.tenant.clone()
        } else {
            ev.region_code.clone()
        };
        store(
            txn,
            Pending {
                link: None,
                tenant: &ev.tenant,
                region: &region,
                recipient_kind: "unit",
                recipient_id: &ev.unit_id,
                recipient_name: &ev.unit_name,
                message,
                ticket_id: Some(ticket_id),
            },
            delivery,
        )
        .await
    }

    fn after_commit(&self) {
        self.wake.notify_one();
    }
}

/// `intake ticket.merged` → the caller is told their request is handled
/// together with an earlier one. The recipient is the ticket's caller,
/// named by the ticket id only: the contact stays in intake.
pub struct TicketMergedHandler {
    pub wake: Arc<Notify>,
}

#[async_trait::async_trait]
impl Handler for TicketMergedHandler {
    type Event = TicketMerged;
    // Each event stores its own rows: a pull is applied in one transaction.
    const APPLY_TOGETHER: bool = true;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketMerged,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        if ev.tenant.is_empty() {
            return Err(HandleError::Reject("event names no tenant".into()));
        }
        let message = domain::merged(&ev);
        to_caller(
            txn,
            &ev.ticket_id,
            &ev.tenant,
            &ev.tenant,
            message,
            None,
            delivery,
        )
        .await
    }

    fn after_commit(&self) {
        self.wake.notify_one();
    }
}

/// `dispatch work_order.notice_issued` → the 三单 notice to the unit.
pub struct NoticeIssuedHandler {
    pub wake: Arc<Notify>,
}

#[async_trait::async_trait]
impl Handler for NoticeIssuedHandler {
    type Event = WorkOrderNoticeIssued;
    // Each event stores its own rows: a pull is applied in one transaction.
    const APPLY_TOGETHER: bool = true;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: WorkOrderNoticeIssued,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let c = ev.change.clone().unwrap_or_default();
        let ticket_id = Uuid::parse_str(&c.ticket_id)
            .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
        if c.unit_id.is_empty() || c.tenant.is_empty() {
            return Err(HandleError::Reject("event names no unit or tenant".into()));
        }
        let message = domain::work_order_notice(&ev);
        store(
            txn,
            Pending {
                link: None,
                tenant: &c.tenant,
                region: &c.region_code,
                recipient_kind: "unit",
                recipient_id: &c.unit_id,
                recipient_name: &c.unit_name,
                message,
                ticket_id: Some(ticket_id),
            },
            delivery,
        )
        .await
    }

    fn after_commit(&self) {
        self.wake.notify_one();
    }
}

/// `dispatch work_order.whistle_blown` → a summons to each unit.
pub struct WhistleBlownHandler {
    pub wake: Arc<Notify>,
}

#[async_trait::async_trait]
impl Handler for WhistleBlownHandler {
    type Event = WorkOrderWhistleBlown;
    // Each event stores its own rows: a pull is applied in one transaction.
    const APPLY_TOGETHER: bool = true;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: WorkOrderWhistleBlown,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let c = ev.change.clone().unwrap_or_default();
        let ticket_id = Uuid::parse_str(&c.ticket_id)
            .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
        if c.tenant.is_empty() {
            return Err(HandleError::Reject("event names no tenant".into()));
        }
        for (i, unit) in ev.unit_ids.iter().enumerate() {
            let name = ev.unit_names.get(i).map_or(unit.as_str(), String::as_str);
            let message = domain::whistle(&ev, name);
            store(
                txn,
                Pending {
                    link: None,
                    tenant: &c.tenant,
                    region: &c.region_code,
                    recipient_kind: "unit",
                    recipient_id: unit,
                    recipient_name: name,
                    message,
                    ticket_id: Some(ticket_id),
                },
                delivery,
            )
            .await?;
        }
        Ok(())
    }

    fn after_commit(&self) {
        self.wake.notify_one();
    }
}

/// `grid broadcast.requested` → one message to each grid's residents'
/// group (居民群).
pub struct BroadcastHandler {
    pub wake: Arc<Notify>,
}

#[async_trait::async_trait]
impl Handler for BroadcastHandler {
    type Event = jiesu_proto::grid::BroadcastRequested;
    // Each event stores its own rows: a pull is applied in one transaction.
    const APPLY_TOGETHER: bool = true;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: jiesu_proto::grid::BroadcastRequested,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        if ev.tenant.is_empty() || ev.grid_codes.is_empty() {
            return Err(HandleError::Reject(
                "broadcast names no tenant or grids".into(),
            ));
        }
        let broadcast_id = Uuid::parse_str(&ev.id)
            .map_err(|_| HandleError::Reject("broadcast id is not a UUID".into()))?;
        let message = domain::broadcast(&ev);
        // One statement for every grid, however many: a broadcast to a
        // whole district is stored at once, or (rolled back) not at all and
        // stored again on redelivery; the unique key keeps each group once.
        let mut grids: Vec<&str> = ev.grid_codes.iter().map(String::as_str).collect();
        grids.sort_unstable();
        grids.dedup();
        let names: Vec<String> = grids.iter().map(|g| format!("{g}居民群")).collect();
        let ids: Vec<Uuid> = grids.iter().map(|_| Uuid::now_v7()).collect();
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO notifications (id, tenant, region_code, recipient_kind, recipient_id, \
               recipient_name, channel, title, body, source_event_id, status, created_at, kind, \
               vars, broadcast_id) \
             SELECT r.id, $1, $1, $2, r.grid, r.name, 'log', $3, $4, $5, 'queued', now(), $6, $7, $8 \
             FROM unnest($9::uuid[], $10::text[], $11::text[]) AS r(id, grid, name) \
             ON CONFLICT (source_event_id, recipient_kind, recipient_id, channel) DO NOTHING",
            [
                ev.tenant.clone().into(),
                domain::RECIPIENT_GRID_GROUP.into(),
                message.title.into(),
                message.body.into(),
                delivery.event_id.into(),
                message.kind.into(),
                message.vars.into(),
                broadcast_id.into(),
                ids.into(),
                grids.iter().map(|g| (*g).to_owned()).collect::<Vec<String>>().into(),
                names.into(),
            ],
        ))
        .await?;
        Ok(())
    }

    fn after_commit(&self) {
        self.wake.notify_one();
    }
}

/// `evaluation warning.raised` / `warning.cleared` → the warned unit and
/// the tenant's supervisors.
pub struct WarningHandler<E> {
    pub wake: Arc<Notify>,
    pub _event: std::marker::PhantomData<fn() -> E>,
}

impl<E> WarningHandler<E> {
    pub fn new(wake: Arc<Notify>) -> Self {
        Self {
            wake,
            _event: std::marker::PhantomData,
        }
    }
}

/// The warning an event carries, and its message.
pub trait WarningEvent: jiesu_proto::Event {
    fn message(&self) -> Option<(&jiesu_proto::evaluation::Warning, domain::Message)>;
}

impl WarningEvent for jiesu_proto::evaluation::WarningRaised {
    fn message(&self) -> Option<(&jiesu_proto::evaluation::Warning, domain::Message)> {
        self.warning
            .as_ref()
            .map(|w| (w, domain::warning_raised(w)))
    }
}

impl WarningEvent for jiesu_proto::evaluation::WarningCleared {
    fn message(&self) -> Option<(&jiesu_proto::evaluation::Warning, domain::Message)> {
        self.warning
            .as_ref()
            .map(|w| (w, domain::warning_cleared(w)))
    }
}

#[async_trait::async_trait]
impl<E: WarningEvent> Handler for WarningHandler<E> {
    type Event = E;
    // Each event stores its own rows: a pull is applied in one transaction.
    const APPLY_TOGETHER: bool = true;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: E,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let (w, message) = ev
            .message()
            .ok_or_else(|| HandleError::Reject("the event carries no warning".into()))?;
        if w.tenant.is_empty() || w.tenant != delivery.tenant {
            return Err(HandleError::Reject(
                "event names no tenant, or another".into(),
            ));
        }
        let region = if w.dimension == "unit" {
            w.tenant.clone()
        } else {
            w.key.clone()
        };
        let mut recipients = vec![(domain::RECIPIENT_SUPERVISORS, w.tenant.as_str(), "督办人员")];
        if w.dimension == "unit" {
            recipients.insert(0, ("unit", w.key.as_str(), w.name.as_str()));
        }
        for (kind, id, name) in recipients {
            store(
                txn,
                Pending {
                    link: None,
                    tenant: &w.tenant,
                    region: &region,
                    recipient_kind: kind,
                    recipient_id: id,
                    recipient_name: name,
                    message: message.clone(),
                    ticket_id: None,
                },
                delivery,
            )
            .await?;
        }
        Ok(())
    }

    fn after_commit(&self) {
        self.wake.notify_one();
    }
}

/// `evaluation callback.invited` → the SMS asking the caller to rate the
/// closed request through its one-time link.
pub struct CallbackInvitedHandler {
    pub wake: Arc<Notify>,
    /// The gateway's public address, the base of the link.
    pub public_url: String,
}

#[async_trait::async_trait]
impl Handler for CallbackInvitedHandler {
    type Event = jiesu_proto::evaluation::CallbackInvited;
    // Each event stores its own rows: a pull is applied in one transaction.
    const APPLY_TOGETHER: bool = true;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: jiesu_proto::evaluation::CallbackInvited,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        if ev.tenant.is_empty() || ev.token.is_empty() {
            return Err(HandleError::Reject("event names no tenant or token".into()));
        }
        let region = if ev.region_code.is_empty() {
            &ev.tenant
        } else {
            &ev.region_code
        };
        let link = format!("{}/r/{}", self.public_url, ev.token);
        let message = domain::callback_invitation(&ev);
        to_caller(
            txn,
            &ev.ticket_id,
            &ev.tenant,
            region,
            message,
            Some(link),
            delivery,
        )
        .await
    }

    fn after_commit(&self) {
        self.wake.notify_one();
    }
}

/// Stores a notice to the ticket's caller, named by the ticket id only:
/// the contact stays in intake until the moment of sending.
async fn to_caller(
    txn: &DatabaseTransaction,
    ticket_id: &str,
    tenant: &str,
    region: &str,
    message: domain::Message,
    link: Option<String>,
    delivery: &Delivery,
) -> Result<(), HandleError> {
    let id = Uuid::parse_str(ticket_id)
        .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
    store(
        txn,
        Pending {
            link,
            tenant,
            region,
            recipient_kind: domain::RECIPIENT_CITIZEN,
            recipient_id: ticket_id,
            recipient_name: domain::CITIZEN_NAME,
            message,
            ticket_id: Some(id),
        },
        delivery,
    )
    .await
}

struct Pending<'a> {
    tenant: &'a str,
    /// A link with a one-time token, for the body's `{link}`.
    link: Option<String>,
    region: &'a str,
    recipient_kind: &'a str,
    recipient_id: &'a str,
    recipient_name: &'a str,
    /// Its kind, variables and default text.
    message: domain::Message,
    ticket_id: Option<Uuid>,
}

/// Stores one pending notification for the deliverer. The unique key
/// (event, recipient, channel) is a second guard behind the inbox: even a
/// replay past inbox retention cannot notify twice.
async fn store(
    txn: &DatabaseTransaction,
    n: Pending<'_>,
    delivery: &Delivery,
) -> Result<(), HandleError> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        // Announced to the inbox watchers (on commit) when it is new:
        // tenant, recipient and id only.
        "WITH stored AS (INSERT INTO notifications (id, tenant, region_code, recipient_kind, \
           recipient_id, recipient_name, channel, title, body, ticket_id, source_event_id, status, \
           created_at, link, kind, vars) \
         VALUES ($1, $2, $3, $4, $5, $6, 'log', $7, $8, $9, $10, 'queued', $11, $12, $13, $14) \
         ON CONFLICT (source_event_id, recipient_kind, recipient_id, channel) DO NOTHING \
         RETURNING tenant, recipient_kind, recipient_id, id) \
         SELECT pg_notify('jiesu_notification_new', \
           concat_ws(' ', tenant, recipient_kind, replace(recipient_id, ' ', '_'), id::text)) \
         FROM stored",
        [
            Uuid::now_v7().into(),
            n.tenant.into(),
            n.region.into(),
            n.recipient_kind.into(),
            n.recipient_id.into(),
            n.recipient_name.into(),
            n.message.title.into(),
            n.message.body.into(),
            n.ticket_id.into(),
            delivery.event_id.into(),
            Utc::now().into(),
            n.link.into(),
            n.message.kind.into(),
            n.message.vars.into(),
        ],
    ))
    .await?;
    Ok(())
}
