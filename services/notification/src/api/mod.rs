//! gRPC handlers of notification.

use jiesu_auth::{AuthError, Role, principal};
use jiesu_common::tr;
use jiesu_proto::{
    notification::{
        ListNotificationsRequest, ListNotificationsResponse, Notification,
        notification_service_server::NotificationService,
    },
    status,
    time::to_timestamp,
};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::store::{self, ListFilter};

const STAFF: &[Role] = &[
    Role::Dispatcher,
    Role::Supervisor,
    Role::TenantAdmin,
    Role::PlatformAdmin,
];

pub struct NotificationApi {
    db: DatabaseConnection,
}

impl NotificationApi {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

fn parse_uuid(field: &'static str, raw: &str) -> Result<Option<Uuid>, Status> {
    jiesu_common::ids::parse_optional_id(field, raw)
        .map_err(|e| status::invalid_field(&e.field, tr!("必须是 UUID", "must be a UUID")))
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let who = principal(&request)?;
        let req = request.get_ref();
        let mut allowed = STAFF.to_vec();
        allowed.push(Role::Handler);
        who.require_any(&allowed)?;
        // Staff see the notifications of their scope; a handler only its unit's.
        let own_unit_only = !who.roles.iter().any(|r| STAFF.contains(r));
        if own_unit_only && who.unit.is_none() {
            return Err(AuthError::Forbidden(tr!(
                "承办人员的令牌必须指明所属单位（声明 `unit`）",
                "a handler token must name its unit (claim `unit`)"
            ))
            .into());
        }
        let page_size = match req.page_size {
            0 => 50,
            n if (1..=500).contains(&n) => n,
            _ => {
                return Err(status::invalid_field(
                    "page_size",
                    tr!("必须在 1 到 500 之间", "must be between 1 and 500"),
                ));
            }
        };
        let filter = ListFilter {
            ticket_id: parse_uuid("ticket_id", &req.ticket_id)?,
            recipient_id: (!req.recipient_id.trim().is_empty())
                .then(|| req.recipient_id.trim().to_owned()),
            after: parse_uuid("page_token", &req.page_token)?,
            limit: page_size as u64,
        };
        let rows = store::list_visible(&self.db, &who, &filter, own_unit_only)
            .await
            .map_err(|e| {
                if jiesu_db::unreachable(&e) {
                    tracing::warn!(error = %e, "notification database unreachable");
                    return status::database_unavailable();
                }
                tracing::error!(error = %e, "notification database error");
                status::internal()
            })?;
        let next_page_token = if rows.len() as i32 == page_size {
            rows.last().map(|n| n.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let notifications = rows
            .into_iter()
            .map(|n| Notification {
                id: n.id.to_string(),
                tenant: n.tenant,
                recipient_kind: n.recipient_kind,
                recipient_id: n.recipient_id,
                recipient_name: n.recipient_name,
                channel: n.channel,
                title: n.title,
                body: n
                    .body
                    .replace(crate::domain::LINK, crate::domain::LINK_SHOWN),
                ticket_id: n.ticket_id.map(|t| t.to_string()).unwrap_or_default(),
                status: n.status,
                created_at: Some(to_timestamp(n.created_at)),
                sent_at: n.sent_at.map(to_timestamp),
            })
            .collect();
        Ok(Response::new(ListNotificationsResponse {
            notifications,
            next_page_token,
        }))
    }
}
