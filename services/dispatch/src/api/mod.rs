//! gRPC handlers of dispatch.

mod directory;
mod settings;

use chrono::Utc;
use jiesu_auth::{AuthError, Principal, Role, principal};
use jiesu_proto::{
    common::TimelineEntry,
    dispatch::{
        self as pb, ActRequest, GetWorkOrderByTicketRequest, GetWorkOrderRequest,
        ListWorkOrdersRequest, ListWorkOrdersResponse, Unit, WorkOrder, act_request,
        dispatch_service_server::DispatchService,
    },
    status,
    time::to_timestamp,
};
use sea_orm::{DatabaseConnection, DbErr};
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::workflow::{Action, Refusal},
    engine::{self, Engine, EngineError, Loaded},
    store::{self, ListFilter, Queue, work_orders},
};

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("work order not found")]
    NotFound,
    #[error("{0}")]
    Refused(Refusal),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

pub(crate) fn field(field: &'static str, message: impl Into<String>) -> DispatchError {
    DispatchError::Field {
        field,
        message: message.into(),
    }
}

impl From<EngineError> for DispatchError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound => Self::NotFound,
            EngineError::Db(d) => Self::Db(d),
            EngineError::Refused(Refusal::Field { field, message }) => {
                Self::Field { field, message }
            }
            EngineError::Refused(r) => Self::Refused(r),
        }
    }
}

impl From<DispatchError> for Status {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::Field { field, message } => status::invalid_field(field, message),
            DispatchError::Auth(a) => a.into(),
            DispatchError::NotFound => status::not_found("work order"),
            DispatchError::Refused(r) => {
                let msg = r.to_string();
                match r {
                    Refusal::WrongRole(_) => {
                        status::coded(Code::PermissionDenied, "wrong_role", msg, None)
                    }
                    Refusal::WrongUnit(_) => {
                        status::coded(Code::PermissionDenied, "wrong_unit", msg, None)
                    }
                    Refusal::Illegal { .. } => {
                        status::coded(Code::FailedPrecondition, "illegal_transition", msg, None)
                    }
                    Refusal::Rule { code, .. } => {
                        status::coded(Code::FailedPrecondition, code, msg, None)
                    }
                    Refusal::Field { field, .. } => status::invalid_field(field, msg),
                }
            }
            DispatchError::Db(e) => {
                tracing::error!(error = %e, "dispatch database error");
                status::internal()
            }
        }
    }
}

pub struct DispatchApi {
    db: DatabaseConnection,
    engine: Engine,
}

impl DispatchApi {
    pub fn new(engine: Engine) -> Self {
        Self {
            db: engine.db.clone(),
            engine,
        }
    }
}

fn parse_id(raw: &str, name: &'static str) -> Result<Uuid, DispatchError> {
    jiesu_common::ids::parse_id(name, raw).map_err(|e| field(name, e.message))
}

fn deadline(
    due: Option<chrono::DateTime<Utc>>,
    met: Option<chrono::DateTime<Utc>>,
    now: chrono::DateTime<Utc>,
) -> Option<pb::Deadline> {
    let due = due?;
    Some(pb::Deadline {
        due_at: Some(to_timestamp(due)),
        met_at: met.map(to_timestamp),
        overdue: met.map_or(now > due, |m| m > due),
    })
}

/// The proto view of a work order at `now`; `timeline` may be empty (lists).
pub fn view(l: &Loaded, timeline: Vec<TimelineEntry>, now: chrono::DateTime<Utc>) -> WorkOrder {
    let m = &l.model;
    WorkOrder {
        id: m.id.to_string(),
        ticket_id: m.ticket_id.to_string(),
        tenant: m.tenant.clone(),
        status: m.status.clone(),
        unit: match (&m.unit_id, &m.unit_name) {
            (Some(id), Some(name)) => Some(Unit {
                id: id.clone(),
                name: name.clone(),
            }),
            _ => None,
        },
        created_at: Some(to_timestamp(m.created_at)),
        timeline,
        tracking_no: m.tracking_no.clone(),
        region_code: m.region_code.clone(),
        category: m.category.clone(),
        category_name: m.category_name.clone(),
        urgency: m.urgency.clone(),
        level: u32::try_from(m.level).unwrap_or(1),
        co_handlers: l
            .co
            .iter()
            .map(|c| pb::CoHandler {
                unit_id: c.unit_id.clone(),
                unit_name: c.unit_name.clone(),
                part_submitted: c.part.is_some(),
                part: c.part.clone().unwrap_or_default(),
            })
            .collect(),
        sign_due: deadline(m.sign_due, m.signed_at, now),
        respond_due: deadline(m.respond_due, m.responded_at, now),
        resolve_due: deadline(m.resolve_due, m.resolved_at, now),
        paused: m.paused_at.is_some(),
        extension_pending: m.extension_days.is_some(),
        returns: u32::try_from(m.returns).unwrap_or(0),
        extensions: u32::try_from(m.extensions).unwrap_or(0),
        reopens: u32::try_from(m.reopens).unwrap_or(0),
        reply: m.reply.clone(),
        summons: l
            .summons
            .iter()
            .map(|s| pb::Summons {
                unit_id: s.unit_id.clone(),
                unit_name: s.unit_name.clone(),
                level: u32::try_from(s.level).unwrap_or(1),
                due_at: Some(to_timestamp(s.due_at)),
                reported_at: s.reported_at.map(to_timestamp),
            })
            .collect(),
        leadership: m.leadership,
        merged_into_ticket_id: m.merged_into.map(|u| u.to_string()).unwrap_or_default(),
        suggested_units: Vec::new(),
    }
}

/// Timeline events a citizen sees of their own ticket's work order.
const PUBLIC_EVENTS: [&str; 7] = [
    "dispatched",
    "triage",
    "sign",
    "resolve",
    "close",
    "reopen",
    "merge",
];

/// What the citizen who raised the ticket sees: the steps and the reply,
/// not staff notes, co-handlers' parts, summons or levels.
fn for_citizen(mut w: WorkOrder) -> WorkOrder {
    w.timeline
        .retain(|e| PUBLIC_EVENTS.contains(&e.event.as_str()));
    for e in &mut w.timeline {
        // Staff notes are "<label>：<note>"; the citizen gets the label.
        if let Some((label, _)) = e.note.split_once('：')
            && e.actor_role != "system"
        {
            e.note = label.to_owned();
        }
    }
    for c in &mut w.co_handlers {
        c.part.clear();
    }
    w.summons.clear();
    w.level = 0;
    w.leadership = false;
    w
}

/// Adds the 研判 suggestions to a triage order's view.
async fn with_suggestions(
    db: &DatabaseConnection,
    mut w: WorkOrder,
    now: chrono::DateTime<Utc>,
) -> Result<WorkOrder, DispatchError> {
    if w.status == "triage" {
        let today = jiesu_common::time::china_day(now);
        w.suggested_units = store::directory::suggest(db, &w.tenant, &w.category, today)
            .await?
            .into_iter()
            .map(|(id, name)| Unit { id, name })
            .collect();
    }
    Ok(w)
}

impl DispatchApi {
    async fn full_view(&self, model: work_orders::Model) -> Result<WorkOrder, DispatchError> {
        let timeline = store::timeline(&self.db, &model)
            .await?
            .into_iter()
            .map(|e| TimelineEntry {
                at: Some(to_timestamp(e.at)),
                event: e.event,
                actor_role: e.actor_role,
                note: e.note,
                unit_id: e.unit_id.unwrap_or_default(),
                unit_name: e.unit_name.unwrap_or_default(),
            })
            .collect();
        let loaded = engine::details(&self.db, model).await?;
        let now = self.engine.clock.now();
        with_suggestions(&self.db, view(&loaded, timeline, now), now).await
    }
}

fn dispatch_of(
    d: Option<pb::Dispatch>,
    name: &'static str,
) -> Result<(String, Vec<String>), DispatchError> {
    let d = d.unwrap_or_default();
    let lead = d.lead_unit_id.trim().to_owned();
    if lead.is_empty() {
        return Err(field(name, "the lead unit is required"));
    }
    if d.co_unit_ids.len() > 10 {
        return Err(field("co_unit_ids", "at most 10 co-handling units"));
    }
    Ok((
        lead,
        d.co_unit_ids.iter().map(|u| u.trim().to_owned()).collect(),
    ))
}

/// The domain action of a request, or the field that is wrong.
fn action_of(a: Option<act_request::Action>) -> Result<Action, DispatchError> {
    use act_request::Action as A;
    let a = a.ok_or_else(|| field("action", "say which action (sign, resolve, return, ...)"))?;
    Ok(match a {
        A::Dispatch(d) => {
            let (lead, co) = dispatch_of(Some(d), "dispatch.lead_unit_id")?;
            Action::Dispatch { lead, co }
        }
        A::Sign(_) => Action::Sign,
        A::Progress(_) => Action::Progress,
        A::Pause(_) => Action::Pause,
        A::Resume(_) => Action::Resume,
        A::Return(_) => Action::Return,
        A::Arbitrate(x) => Action::Arbitrate {
            accept: x.accept,
            redispatch: match x.redispatch {
                Some(d) if x.accept => {
                    Some(dispatch_of(Some(d), "arbitrate.redispatch.lead_unit_id")?)
                }
                _ => None,
            },
        },
        A::RequestExtension(x) => Action::RequestExtension { days: x.days },
        A::DecideExtension(x) => Action::DecideExtension { approve: x.approve },
        A::Resolve(_) => Action::Resolve,
        A::Review(x) => Action::Review { approve: x.approve },
        A::Close(_) => Action::Close,
        A::Reopen(_) => Action::Reopen,
        A::Instruct(_) => Action::Instruct,
        A::SubmitPart(_) => Action::SubmitPart,
        A::Whistle(w) => {
            if w.unit_ids.len() > 20 {
                return Err(field("whistle.unit_ids", "at most 20 units"));
            }
            Action::Whistle {
                level: u8::try_from(w.level)
                    .map_err(|_| field("whistle.level", "must be 2 to 4"))?,
                units: w.unit_ids.iter().map(|u| u.trim().to_owned()).collect(),
            }
        }
        A::ReportIn(_) => Action::ReportIn,
        A::Leadership(_) => Action::Leadership,
    })
}

pub(crate) fn staff(who: &Principal) -> Result<(), DispatchError> {
    Ok(who.require_any(&[
        Role::Agent,
        Role::Dispatcher,
        Role::Handler,
        Role::GridWorker,
        Role::Mediator,
        Role::Supervisor,
        Role::TenantAdmin,
        Role::PlatformAdmin,
    ])?)
}

#[tonic::async_trait]
impl DispatchService for DispatchApi {
    async fn get_work_order_by_ticket(
        &self,
        request: Request<GetWorkOrderByTicketRequest>,
    ) -> Result<Response<WorkOrder>, Status> {
        let who = principal(&request)?;
        who.require_any(&Role::ALL).map_err(DispatchError::from)?;
        let ticket_id = parse_id(&request.get_ref().ticket_id, "ticket_id")?;
        let order = store::find_visible_by_ticket(&self.db, &who, ticket_id)
            .await
            .map_err(DispatchError::from)?
            .ok_or(DispatchError::NotFound)?;
        let view = self.full_view(order).await?;
        Ok(Response::new(if who.is_citizen_only() {
            for_citizen(view)
        } else {
            view
        }))
    }

    async fn get_work_order(
        &self,
        request: Request<GetWorkOrderRequest>,
    ) -> Result<Response<WorkOrder>, Status> {
        let who = principal(&request)?;
        staff(&who)?;
        let id = parse_id(&request.get_ref().id, "id")?;
        let order = store::find_visible(&self.db, &who, id)
            .await
            .map_err(DispatchError::from)?
            .ok_or(DispatchError::NotFound)?;
        Ok(Response::new(self.full_view(order).await?))
    }

    async fn act(&self, request: Request<ActRequest>) -> Result<Response<WorkOrder>, Status> {
        let who = principal(&request)?;
        let r = request.into_inner();
        let id = parse_id(&r.work_order_id, "work_order_id")?;
        if who.has_role(Role::Handler) && !directory::may_act_for_unit(&self.db, &who).await? {
            return Err(DispatchError::Refused(Refusal::WrongUnit(
                "this account may not act for the unit its token names",
            ))
            .into());
        }
        let reply = match &r.action {
            Some(act_request::Action::Resolve(x)) => x.reply.clone(),
            _ => String::new(),
        };
        let action = action_of(r.action)?;
        let req = engine::Request {
            action,
            note: r.note,
            reply,
        };
        let loaded = self
            .engine
            .act(&who, id, req)
            .await
            .map_err(DispatchError::from)?;
        Ok(Response::new(self.full_view(loaded.model).await?))
    }

    async fn list_work_orders(
        &self,
        request: Request<ListWorkOrdersRequest>,
    ) -> Result<Response<ListWorkOrdersResponse>, Status> {
        let who = principal(&request)?;
        staff(&who)?;
        let r = request.get_ref();
        let queue = Queue::parse(r.queue.trim()).ok_or_else(|| {
            field(
                "queue",
                "must be one of mine, triage, overdue, due_soon, leadership, all",
            )
        })?;
        if queue == Queue::Mine && who.unit.is_none() {
            return Err(field("queue", "`mine` needs a token that names a unit").into());
        }
        if who.has_role(Role::Handler)
            && !who.has_role(Role::Dispatcher)
            && !who.has_role(Role::Supervisor)
            && queue != Queue::Mine
        {
            return Err(DispatchError::Refused(Refusal::WrongRole(&[
                Role::Dispatcher,
                Role::Supervisor,
            ]))
            .into());
        }
        let status = match r.status.trim() {
            "" => None,
            s if crate::domain::workflow::Status::parse(s).is_some() => Some(s.to_owned()),
            _ => return Err(field("status", "is not a work-order status").into()),
        };
        if r.level > 4 {
            return Err(field("level", "must be 1 to 4").into());
        }
        let limit = match r.page_size {
            0 => 50,
            n if n <= 200 => u64::from(n),
            _ => return Err(field("page_size", "at most 200").into()),
        };
        let offset: u64 = match r.page_token.trim() {
            "" => 0,
            t => t
                .parse()
                .map_err(|_| field("page_token", "is not a token from an earlier page"))?,
        };
        let f = ListFilter {
            queue,
            unit: who.unit.clone(),
            status,
            level: (r.level > 0).then(|| i16::try_from(r.level).unwrap_or(1)),
            limit: limit + 1,
            offset,
            now: self.engine.clock.now(),
        };
        let mut rows = store::list(&self.db, &who, &f)
            .await
            .map_err(DispatchError::from)?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(50));
        let mut work_orders = Vec::with_capacity(rows.len());
        for m in rows {
            let l = engine::details(&self.db, m)
                .await
                .map_err(DispatchError::from)?;
            let now = self.engine.clock.now();
            work_orders.push(with_suggestions(&self.db, view(&l, Vec::new(), now), now).await?);
        }
        Ok(Response::new(ListWorkOrdersResponse {
            work_orders,
            next_page_token: if more {
                (offset + limit).to_string()
            } else {
                String::new()
            },
        }))
    }

    async fn get_sla_policy(
        &self,
        request: Request<pb::GetSlaPolicyRequest>,
    ) -> Result<Response<pb::SlaPolicy>, Status> {
        settings::get_policy(&self.engine, request).await
    }

    async fn put_sla_policy(
        &self,
        request: Request<pb::SlaPolicy>,
    ) -> Result<Response<pb::SlaPolicy>, Status> {
        settings::put_policy(&self.engine, request).await
    }

    async fn get_calendar(
        &self,
        request: Request<pb::GetCalendarRequest>,
    ) -> Result<Response<pb::CalendarView>, Status> {
        settings::get_calendar(&self.engine, request).await
    }

    async fn set_calendar_days(
        &self,
        request: Request<pb::SetCalendarDaysRequest>,
    ) -> Result<Response<pb::CalendarView>, Status> {
        settings::set_calendar(&self.engine, request).await
    }

    async fn list_units(
        &self,
        request: Request<pb::ListUnitsRequest>,
    ) -> Result<Response<pb::ListUnitsResponse>, Status> {
        directory::list_units(&self.engine, request).await
    }

    async fn put_unit(
        &self,
        request: Request<pb::UnitRecord>,
    ) -> Result<Response<pb::UnitRecord>, Status> {
        directory::put_unit(&self.engine, request).await
    }

    async fn export_responsibilities(
        &self,
        request: Request<pb::ExportResponsibilitiesRequest>,
    ) -> Result<Response<pb::ResponsibilitiesCsv>, Status> {
        directory::export(&self.engine, request).await
    }

    async fn import_responsibilities(
        &self,
        request: Request<pb::ResponsibilitiesCsv>,
    ) -> Result<Response<pb::ImportResponsibilitiesResponse>, Status> {
        directory::import(&self.engine, request).await
    }

    async fn responsibility_gaps(
        &self,
        request: Request<pb::ResponsibilityGapsRequest>,
    ) -> Result<Response<pb::ResponsibilityGapsResponse>, Status> {
        directory::gaps(&self.engine, request).await
    }
}
