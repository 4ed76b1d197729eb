//! Handing a caller's contact to the notification path at the moment it
//! sends, and to nobody else: the caller's service key must be one intake
//! was configured with, the ticket must be of the tenant the caller names,
//! and every hand-over is recorded in `contact_reads`. The contact travels
//! only in this answer; no event, log line or other service's table holds
//! it.

use std::sync::Arc;

use jiesu_auth::{Principal, Role};
use jiesu_common::tr;
use jiesu_proto::{
    intake::{
        Contact, ContactRead, GetContactRequest, ListContactReadsRequest, ListContactReadsResponse,
        contact_service_server::ContactService,
    },
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, EntityTrait};
use tonic::{Request, Response, Status};

use super::{Core, IntakeError};
use crate::{
    domain::{bad, check_text, parse_id, says},
    store::{self, stmt, tickets},
};

const MAX_PURPOSE_CHARS: usize = 200;

/// `intake.contact_key_digests`: comma-separated SHA-256 hex digests.
pub fn parse_digests(raw: &str) -> Result<Vec<String>, jiesu_runtime::ConfigError> {
    jiesu_auth::service_key::parse_digests(raw, "intake.contact_key_digests")
}

#[derive(Clone)]
pub struct ContactApi {
    core: Arc<Core>,
}

impl ContactApi {
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// The digest of the presented key if it is one of the configured.
    fn client(&self, request: &Request<GetContactRequest>) -> Result<String, Status> {
        jiesu_auth::service_key::verify(request, &self.core.contact_clients)
    }
}

#[tonic::async_trait]
impl ContactService for ContactApi {
    async fn get_contact(
        &self,
        request: Request<GetContactRequest>,
    ) -> Result<Response<Contact>, Status> {
        let client = self.client(&request)?;
        let req = request.get_ref();
        Ok(Response::new(
            self.core
                .contact(&client, req)
                .await
                .map_err(Status::from)?,
        ))
    }
}

impl Core {
    async fn contact(&self, client: &str, req: &GetContactRequest) -> Result<Contact, IntakeError> {
        let id = parse_id("ticket_id", &req.ticket_id, &tr!("诉求", "a ticket"))?;
        let purpose = check_text("purpose", &req.purpose, MAX_PURPOSE_CHARS, true)?;
        if req.tenant.trim().is_empty() {
            return Err(bad("tenant", says::required()).into());
        }
        let t = tickets::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|t| t.tenant == req.tenant.trim())
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        let open = |sealed: &Option<String>, field: &str| {
            sealed
                .as_deref()
                .map(|s| {
                    self.keyring
                        .decrypt(s, &format!("tickets.{field}:{}", t.id))
                })
                .transpose()
        };
        let phone = open(&t.citizen_phone_enc, "citizen_phone")?.unwrap_or_default();
        let name = open(&t.citizen_name_enc, "citizen_name")?.unwrap_or_default();
        self.db
            .execute_raw(stmt(
                "INSERT INTO contact_reads (ticket_id, tenant, client, purpose) VALUES ($1, $2, $3, $4)",
                vec![
                    t.id.into(),
                    t.tenant.clone().into(),
                    client.chars().take(12).collect::<String>().into(),
                    purpose.into(),
                ],
            ))
            .await?;
        tracing::info!(ticket_id = %t.id, client = %client.chars().take(12).collect::<String>(), "contact handed over");
        Ok(Contact {
            phone,
            name,
            confidential: t.confidential,
        })
    }
}

impl Core {
    /// The hand-overs of a ticket's caller contact, oldest first, for the
    /// tenant admin (inside their scope).
    pub async fn contact_reads(
        &self,
        who: &Principal,
        req: &ListContactReadsRequest,
    ) -> Result<ListContactReadsResponse, IntakeError> {
        who.require_any(&[Role::TenantAdmin])?;
        let id = parse_id("ticket_id", &req.ticket_id, &tr!("诉求", "a ticket"))?;
        let t = store::find_visible_ticket(&self.db, who, id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT client, purpose, at FROM contact_reads \
                 WHERE ticket_id = $1 AND tenant = $2 ORDER BY at, id",
                vec![t.id.into(), t.tenant.clone().into()],
            ))
            .await?;
        let reads = rows
            .iter()
            .map(|r| {
                Ok(ContactRead {
                    client: r.try_get("", "client")?,
                    purpose: r.try_get("", "purpose")?,
                    at: Some(to_timestamp(r.try_get("", "at")?)),
                })
            })
            .collect::<Result<_, sea_orm::DbErr>>()?;
        Ok(ListContactReadsResponse { reads })
    }
}
