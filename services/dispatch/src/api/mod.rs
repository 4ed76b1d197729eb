//! gRPC handlers of dispatch.
//!
//! The tonic impl here only delegates: work orders in `work_orders` (their
//! views in `views`), the units directory in `directory`, the SLA policy and
//! calendar in `settings`.

mod directory;
mod settings;
mod views;
mod work_orders;

use jiesu_auth::{AuthError, Principal, Role};
use jiesu_common::{Text, tr};
use jiesu_proto::{
    dispatch::{
        self as pb, ActRequest, GetWorkOrderByTicketRequest, GetWorkOrderRequest,
        ListWorkOrdersRequest, ListWorkOrdersResponse, WorkOrder,
        dispatch_service_server::DispatchService,
    },
    status,
};
use sea_orm::{DatabaseConnection, DbErr};
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

pub use self::views::view;
use crate::{
    domain::workflow::Refusal,
    engine::{Engine, EngineError},
};

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("{field}: {}", message.en)]
    Field { field: &'static str, message: Text },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("work order not found")]
    NotFound,
    #[error("{0}")]
    Refused(Refusal),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

pub(crate) fn field(field: &'static str, message: impl Into<Text>) -> DispatchError {
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
            DispatchError::NotFound => status::not_found(tr!("工单", "work order")),
            DispatchError::Refused(r) => {
                let msg = r.text();
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
            DispatchError::Db(e) if jiesu_db::unreachable(&e) => {
                tracing::warn!(error = %e, "dispatch database unreachable");
                status::database_unavailable()
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

/// Staff who read work orders inside their scope (a unit's handler: its
/// unit's): those who take calls, route, handle, whistle, oversee or
/// administer. Mediators and platform operators handle no orders
/// (docs/access-roles.csv).
pub(crate) const ORDER_READERS: &[Role] = &[
    Role::Agent,
    Role::Dispatcher,
    Role::Handler,
    Role::GridWorker,
    Role::Supervisor,
    Role::TenantAdmin,
];

/// Who may act on a work order at all; each action then asks for its own
/// role (`domain::workflow`).
pub(crate) const ORDER_ACTORS: &[Role] = &[
    Role::Dispatcher,
    Role::Handler,
    Role::GridWorker,
    Role::Supervisor,
];

#[tonic::async_trait]
impl DispatchService for DispatchApi {
    async fn get_work_order_by_ticket(
        &self,
        request: Request<GetWorkOrderByTicketRequest>,
    ) -> Result<Response<WorkOrder>, Status> {
        work_orders::get_by_ticket(self, request).await
    }

    async fn get_work_order(
        &self,
        request: Request<GetWorkOrderRequest>,
    ) -> Result<Response<WorkOrder>, Status> {
        work_orders::get(self, request).await
    }

    async fn act(&self, request: Request<ActRequest>) -> Result<Response<WorkOrder>, Status> {
        work_orders::act(self, request).await
    }

    async fn list_work_orders(
        &self,
        request: Request<ListWorkOrdersRequest>,
    ) -> Result<Response<ListWorkOrdersResponse>, Status> {
        work_orders::list(self, request).await
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
