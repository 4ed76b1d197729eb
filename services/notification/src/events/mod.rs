//! Consumers: each fact that someone must hear about becomes notifications.

use std::sync::Arc;

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

    /// The pull's notifications written by one statement.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: Vec<(TicketDispatched, Delivery)>,
    ) -> Result<(), HandleError> {
        each_together(self, txn, events).await
    }

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

    /// The pull's notifications written by one statement.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: Vec<(WorkOrderNoticeIssued, Delivery)>,
    ) -> Result<(), HandleError> {
        each_together(self, txn, events).await
    }

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

    /// The pull's notifications written by one statement.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: Vec<(WorkOrderWhistleBlown, Delivery)>,
    ) -> Result<(), HandleError> {
        each_together(self, txn, events).await
    }

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
/// replay past inbox retention cannot notify twice. Inside [`together`] the
/// row waits to be written with the rest of the pull.
async fn store(
    txn: &DatabaseTransaction,
    n: Pending<'_>,
    delivery: &Delivery,
) -> Result<(), HandleError> {
    let row = Row {
        id: Uuid::now_v7(),
        tenant: n.tenant.to_owned(),
        region: n.region.to_owned(),
        recipient_kind: n.recipient_kind.to_owned(),
        recipient_id: n.recipient_id.to_owned(),
        recipient_name: n.recipient_name.to_owned(),
        title: n.message.title,
        body: n.message.body,
        ticket_id: n.ticket_id,
        source_event_id: delivery.event_id,
        link: n.link,
        kind: n.message.kind,
        vars: n.message.vars.to_string(),
    };
    let mut row = Some(row);
    let collected = PULL.try_with(|rows| {
        if let Some(r) = row.take() {
            rows.borrow_mut().push(r);
        }
    });
    match (collected, row) {
        (Ok(()), _) | (Err(_), None) => Ok(()),
        (Err(_), Some(r)) => store_rows(txn, vec![r]).await,
    }
}

/// A notification row to insert.
struct Row {
    id: Uuid,
    tenant: String,
    region: String,
    recipient_kind: String,
    recipient_id: String,
    recipient_name: String,
    title: String,
    body: String,
    ticket_id: Option<Uuid>,
    source_event_id: Uuid,
    link: Option<String>,
    kind: &'static str,
    vars: String,
}

tokio::task_local! {
    /// The rows of the pull being applied together.
    static PULL: std::cell::RefCell<Vec<Row>>;
}

/// Applies `handle` (the pull's events one after another) with every row
/// they store written by one statement at the end.
async fn together(
    txn: &DatabaseTransaction,
    handle: impl std::future::Future<Output = Result<(), HandleError>> + Send,
) -> Result<(), HandleError> {
    let (handled, rows) = PULL
        .scope(std::cell::RefCell::new(Vec::new()), async {
            let handled = handle.await;
            (handled, PULL.with(std::cell::RefCell::take))
        })
        .await;
    handled?;
    store_rows(txn, rows).await
}

/// A pull's events handled one after another by `handler`, their rows
/// written together ([`together`]): the `handle_batch` of the busiest
/// consumers.
async fn each_together<H: Handler>(
    handler: &H,
    txn: &DatabaseTransaction,
    events: Vec<(H::Event, Delivery)>,
) -> Result<(), HandleError> {
    together(txn, async {
        for (ev, delivery) in events {
            handler.handle(txn, ev, &delivery).await?;
        }
        Ok(())
    })
    .await
}

/// Inserts notification rows with one statement, each announced to the
/// inbox watchers (on commit) when it is new: tenant, recipient and id
/// only.
async fn store_rows(txn: &DatabaseTransaction, rows: Vec<Row>) -> Result<(), HandleError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut cols: [Vec<String>; 13] = Default::default();
    for r in rows {
        let values = [
            r.id.to_string(),
            r.tenant,
            r.region,
            r.recipient_kind,
            r.recipient_id,
            r.recipient_name,
            r.title,
            r.body,
            r.ticket_id.map(|t| t.to_string()).unwrap_or_default(),
            r.source_event_id.to_string(),
            r.link.unwrap_or_default(),
            r.kind.to_owned(),
            r.vars,
        ];
        for (c, v) in cols.iter_mut().zip(values) {
            c.push(v);
        }
    }
    let values: Vec<sea_orm::Value> = cols.into_iter().map(Into::into).collect();
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "WITH stored AS (INSERT INTO notifications (id, tenant, region_code, recipient_kind, \
           recipient_id, recipient_name, channel, title, body, ticket_id, source_event_id, status, \
           created_at, link, kind, vars) \
         SELECT r.id::uuid, r.tenant, r.region, r.rkind, r.rid, r.rname, 'log', r.title, r.body, \
           NULLIF(r.ticket, '')::uuid, r.source::uuid, 'queued', now(), NULLIF(r.link, ''), \
           r.kind, r.vars::jsonb \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
           $13::text[]) \
           AS r(id, tenant, region, rkind, rid, rname, title, body, ticket, source, link, kind, vars) \
         ON CONFLICT (source_event_id, recipient_kind, recipient_id, channel) DO NOTHING \
         RETURNING tenant, recipient_kind, recipient_id, id) \
         SELECT pg_notify('jiesu_notification_new', \
           concat_ws(' ', tenant, recipient_kind, replace(recipient_id, ' ', '_'), id::text)) \
         FROM stored",
        values,
    ))
    .await?;
    Ok(())
}
