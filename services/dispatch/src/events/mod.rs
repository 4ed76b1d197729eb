//! Consumers of other contexts' events.

use jiesu_bus::{Delivery, HandleError, Handler};

use crate::locate::Where;
use jiesu_proto::{
    dispatch::TicketDispatched,
    intake::{TicketMerged, TicketReceived, TicketUnmerged},
    time::to_timestamp,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, Set,
};
use uuid::Uuid;

use crate::{
    domain::{
        Placement,
        calendar::china,
        clock::{Clocks, Env},
        workflow::{self, Action, Actor, ClockOp},
    },
    engine::{self, Engine},
    store::{self, directory, work_orders},
};

fn ids(ticket_id: &str, tenant: &str, delivery: &Delivery) -> Result<Uuid, HandleError> {
    let id = Uuid::parse_str(ticket_id)
        .map_err(|_| HandleError::Reject("ticket_id is not a UUID".into()))?;
    if tenant.is_empty() || tenant != delivery.tenant {
        return Err(HandleError::Reject(
            "tenant in the event and its header disagree".into(),
        ));
    }
    Ok(id)
}

/// `intake ticket.received` → a work order, routed (clocks started) or
/// queued for triage.
pub struct TicketReceivedHandler {
    pub engine: Engine,
    /// Grid, when configured: where a ticket with coordinates lies.
    pub locator: Option<crate::locate::Locator>,
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
        let ticket_id = ids(&ev.ticket_id, &ev.tenant, delivery)?;
        // A ticket gets one work order. The inbox stops redeliveries; this
        // stops a second event about the same ticket (a replayed outbox).
        if store::work_order_exists(txn, ticket_id).await? {
            tracing::info!(ticket_id = %ticket_id, "work order exists already; event ignored");
            return Ok(());
        }
        let now = self.engine.clock.now();
        let given = if ev.region_code.is_empty() {
            ev.tenant.clone()
        } else {
            ev.region_code.clone()
        };
        // A ticket with coordinates is asked of grid: outside the tenant's
        // territory it waits for a dispatcher, saying so; naming only its
        // tenant, it is placed by the grid it lies in (street and
        // community); otherwise by what it says.
        let located = match (&self.locator, &ev.point) {
            (Some(l), Some(p)) => l.locate(&ev.tenant, p.lat, p.lon).await,
            _ => Where::Unknown,
        };
        let region = match &located {
            Where::Community(c) if given == ev.tenant && c.starts_with(&ev.tenant) => c.clone(),
            _ => given,
        };
        let today = now.with_timezone(&china()).date_naive();
        let placement = if located == Where::Outside {
            Placement::Outside
        } else {
            match directory::route(txn, &ev.tenant, &ev.category, &region, today).await? {
                Some(entry) => {
                    let lead = directory::unit_by_id(txn, &ev.tenant, &entry.lead).await?;
                    let mut co = Vec::with_capacity(entry.co.len());
                    for id in &entry.co {
                        // An inactive or deleted co-handler is left out, not fatal.
                        if let Some(u) = directory::unit_by_id(txn, &ev.tenant, id).await?
                            && u.active
                        {
                            co.push((u.id, u.name));
                        }
                    }
                    match lead {
                        Some(u) => Placement::Unit {
                            id: u.id,
                            name: u.name,
                            co,
                        },
                        None => Placement::Triage,
                    }
                }
                None => Placement::Triage,
            }
        };
        let settings = self.engine.settings.get(txn, &ev.tenant).await?;
        let order_id = Uuid::now_v7();
        let urgency = if ev.urgency == "urgent" {
            "urgent"
        } else {
            "normal"
        };
        let (unit_id, unit_name) = match &placement {
            Placement::Unit { id, name, .. } => (Some(id.clone()), Some(name.clone())),
            Placement::Triage | Placement::Outside => (None, None),
        };
        // A grid worker's whistle (吹哨) starts the matter at L2..L4.
        let start_level: i16 = match ev.level.as_str() {
            "L2" => 2,
            "L3" => 3,
            "L4" => 4,
            _ => 1,
        };
        let mut clocks = Clocks::default();
        if unit_id.is_some() {
            let env = Env {
                cal: &settings.calendar,
                fresh: settings
                    .policy
                    .deadlines(&settings.calendar, &ev.category, urgency, now),
                restart_on_redispatch: settings.restart_on_redispatch,
            };
            clocks.apply(&ClockOp::Start, now, &env);
        }
        let m = work_orders::ActiveModel {
            id: Set(order_id),
            ticket_id: Set(ticket_id),
            tenant: Set(ev.tenant.clone()),
            region_code: Set(region.clone()),
            tracking_no: Set(ev.tracking_no.clone()),
            category: Set(ev.category.clone()),
            category_name: Set(ev.category_name.clone()),
            status: Set(placement.status().into()),
            unit_id: Set(unit_id.clone()),
            unit_name: Set(unit_name.clone()),
            submitter_sub: Set(ev.submitter_sub.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            urgency: Set(urgency.into()),
            level: Set(start_level),
            paused_at: Set(None),
            extension_days: Set(None),
            returns: Set(0),
            extensions: Set(0),
            reopens: Set(0),
            clock_started_at: Set(clocks.started_at),
            sign_due: Set(clocks.sign_due),
            respond_due: Set(clocks.respond_due),
            resolve_due: Set(clocks.resolve_due),
            signed_at: Set(None),
            responded_at: Set(None),
            resolved_at: Set(None),
            closed_at: Set(None),
            reply: Set(String::new()),
            // A matter whistled up to the district (L4) is the leadership's.
            leadership: Set(start_level >= 4),
            merged_into: Set(None),
            status_before_merge: Set(None),
            version: Set(0),
            resolve_work_minutes: Set(None),
        }
        .insert(txn)
        .await?;
        engine::timeline_entry(txn, &m, now, placement.status(), "system", placement.note())
            .await?;
        if let Placement::Unit { id, name, co } = &placement {
            for (cid, cname) in co {
                engine::add_co_unit(txn, order_id, cid, cname).await?;
            }
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
                facts: Some(engine::facts(&m)),
                ..Default::default()
            };
            self.engine.outbox.enqueue(txn, &event).await?;
            let mut unit_ids = vec![id.clone()];
            unit_ids.extend(co.iter().map(|(cid, _)| cid.clone()));
            let units = jiesu_proto::dispatch::TicketUnits {
                ticket_id: ev.ticket_id.clone(),
                work_order_id: order_id.to_string(),
                tenant: ev.tenant.clone(),
                unit_ids,
                at: Some(to_timestamp(now)),
            };
            self.engine.outbox.enqueue(txn, &units).await?;
            if let Some(e) = engine::progressed(&m, "dispatched", "", now) {
                self.engine.outbox.enqueue(txn, &e).await?;
            }
            engine::reconcile_timers(txn, &m, &[], &settings).await?;
            tracing::info!(ticket_id = %ev.ticket_id, tenant = %ev.tenant, unit_id = %id, "ticket dispatched");
        } else {
            tracing::info!(ticket_id = %ev.ticket_id, tenant = %ev.tenant, category = %ev.category, "no route; ticket queued for triage");
        }
        Ok(())
    }

    fn after_commit(&self) {
        self.engine.outbox.wake();
    }
}

/// Applies a system action (merge, unmerge, reopen, leadership) to a ticket's work order, if
/// it has one. A merged ticket's order stops its clocks and follows its
/// master; unmerged, it carries on where it stood.
async fn system_action(
    engine: &Engine,
    txn: &DatabaseTransaction,
    ticket_id: Uuid,
    action: Action,
    master: Option<Uuid>,
    note: String,
) -> Result<(), HandleError> {
    let Some(model) = work_orders::Entity::find()
        .filter(work_orders::Column::TicketId.eq(ticket_id))
        .lock_exclusive()
        .one(txn)
        .await?
    else {
        // Merged before dispatch ever saw it: nothing to follow.
        return Ok(());
    };
    let loaded = engine::details(txn, model).await?;
    let settings = engine.settings.get(txn, &loaded.model.tenant).await?;
    let t = match workflow::apply(&loaded.order(), &Actor::system(), &action, &settings.rules) {
        Ok(t) => t,
        Err(r) => {
            // e.g. a closed order, or one in the leadership queue already.
            tracing::info!(ticket_id = %ticket_id, refusal = %r, "system action not applied to the work order");
            return Ok(());
        }
    };
    let after = engine
        .save(
            txn,
            loaded,
            &action,
            &t,
            &settings,
            engine.clock.now(),
            &[],
            "system",
            &note,
            String::new(),
            None,
        )
        .await
        .map_err(|e| match e {
            engine::EngineError::Db(d) => HandleError::from(d),
            other => HandleError::Reject(other.to_string()),
        })?;
    store::set_merged_into(txn, after.model.id, master).await?;
    Ok(())
}

/// `intake ticket.merged` → the ticket's work order follows its master.
pub struct TicketMergedHandler {
    pub engine: Engine,
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
        let ticket_id = ids(&ev.ticket_id, &ev.tenant, delivery)?;
        let master = Uuid::parse_str(&ev.master_id)
            .map_err(|_| HandleError::Reject("master_id is not a UUID".into()))?;
        let note = format!(
            "并件：与工单 {} 合并办理，随主件处理",
            ev.master_tracking_no
        );
        system_action(
            &self.engine,
            txn,
            ticket_id,
            Action::Merge,
            Some(master),
            note,
        )
        .await
    }

    fn after_commit(&self) {
        self.engine.outbox.wake();
    }
}

/// `intake ticket.unmerged` → the work order stands on its own again.
pub struct TicketUnmergedHandler {
    pub engine: Engine,
}

#[async_trait::async_trait]
impl Handler for TicketUnmergedHandler {
    type Event = TicketUnmerged;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketUnmerged,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let ticket_id = ids(&ev.ticket_id, &ev.tenant, delivery)?;
        let note = "取消并件：恢复单独办理".to_owned();
        system_action(&self.engine, txn, ticket_id, Action::Unmerge, None, note).await
    }

    fn after_commit(&self) {
        self.engine.outbox.wake();
    }
}

/// `evaluation callback.verdict` → 重办: a citizen unsatisfied and
/// unresolved at the callback, within evaluation's policy, reopens the
/// order as the system actor (within dispatch's own `max_reopens`, which
/// refuses quietly when reached).
pub struct CallbackVerdictHandler {
    pub engine: Engine,
}

#[async_trait::async_trait]
impl Handler for CallbackVerdictHandler {
    type Event = jiesu_proto::evaluation::CallbackVerdictGiven;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: jiesu_proto::evaluation::CallbackVerdictGiven,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let ticket_id = ids(&ev.ticket_id, &ev.tenant, delivery)?;
        if !ev.reopen_requested {
            return Ok(());
        }
        let why = if ev.reason.trim().is_empty() {
            "回访不满意且未解决".to_owned()
        } else {
            ev.reason.clone()
        };
        let note = format!("回访第 {} 轮：{why}", ev.round);
        system_action(&self.engine, txn, ticket_id, Action::Reopen, None, note).await
    }

    fn after_commit(&self) {
        self.engine.outbox.wake();
    }
}

/// `evaluation frequent_matter.lifted` → 提级: each order of a
/// high-frequency matter goes to the leadership queue, as the system
/// actor (an order there already, or closed, stays as it is). An order
/// dispatch has not made yet is waited for a few deliveries.
pub struct FrequentMatterHandler {
    pub engine: Engine,
}

#[async_trait::async_trait]
impl Handler for FrequentMatterHandler {
    type Event = jiesu_proto::evaluation::FrequentMatterLifted;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: jiesu_proto::evaluation::FrequentMatterLifted,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let mut tickets = Vec::with_capacity(ev.ticket_ids.len());
        for raw in &ev.ticket_ids {
            tickets.push(ids(raw, &ev.tenant, delivery)?);
        }
        for ticket_id in tickets {
            if !store::work_order_exists(txn, ticket_id).await? {
                if delivery.delivered < 5 {
                    return Err(HandleError::Retry(format!(
                        "no work order yet for ticket {ticket_id}"
                    )));
                }
                tracing::warn!(ticket_id = %ticket_id, "no work order to lift; left out");
                continue;
            }
            system_action(
                &self.engine,
                txn,
                ticket_id,
                Action::Leadership,
                None,
                ev.note.clone(),
            )
            .await?;
        }
        Ok(())
    }

    fn after_commit(&self) {
        self.engine.outbox.wake();
    }
}
