//! gRPC handlers of dispatch.

use jiesu_auth::{AuthError, Role, principal};
use jiesu_proto::{
    common::TimelineEntry,
    dispatch::{
        GetWorkOrderByTicketRequest, Unit, WorkOrder, dispatch_service_server::DispatchService,
    },
    status,
    time::to_timestamp,
};
use sea_orm::{DatabaseConnection, DbErr};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: &'static str,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("work order not found")]
    NotFound,
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl From<DispatchError> for Status {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::Field { field, message } => status::invalid_field(field, message),
            DispatchError::Auth(a) => a.into(),
            DispatchError::NotFound => status::not_found("work order"),
            DispatchError::Db(e) => {
                tracing::error!(error = %e, "dispatch database error");
                status::internal()
            }
        }
    }
}

pub struct DispatchApi {
    db: DatabaseConnection,
}

impl DispatchApi {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl DispatchService for DispatchApi {
    async fn get_work_order_by_ticket(
        &self,
        request: Request<GetWorkOrderByTicketRequest>,
    ) -> Result<Response<WorkOrder>, Status> {
        let who = principal(&request)?;
        who.require_any(&Role::ALL).map_err(DispatchError::from)?;
        let ticket_id = Uuid::parse_str(request.get_ref().ticket_id.trim()).map_err(|_| {
            DispatchError::Field {
                field: "ticket_id",
                message: "must be a ticket id (UUID)",
            }
        })?;
        let order = store::find_visible_by_ticket(&self.db, &who, ticket_id)
            .await
            .map_err(DispatchError::from)?
            .ok_or(DispatchError::NotFound)?;
        let timeline = store::timeline(&self.db, &order)
            .await
            .map_err(DispatchError::from)?
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
        let unit = match (&order.unit_id, &order.unit_name) {
            (Some(id), Some(name)) => Some(Unit {
                id: id.clone(),
                name: name.clone(),
            }),
            _ => None,
        };
        Ok(Response::new(WorkOrder {
            id: order.id.to_string(),
            ticket_id: order.ticket_id.to_string(),
            tenant: order.tenant,
            status: order.status,
            unit,
            created_at: Some(to_timestamp(order.created_at)),
            timeline,
        }))
    }
}
