//! Handing a caller's contact to the notification path at the moment it
//! sends, and to nobody else: the caller's service key must be one intake
//! was configured with, the ticket must be of the tenant the caller names,
//! and every hand-over is recorded in `contact_reads`. The contact travels
//! only in this answer; no event, log line or other service's table holds
//! it.

use std::sync::Arc;

use jiesu_proto::{
    SERVICE_KEY,
    intake::{Contact, GetContactRequest, contact_service_server::ContactService},
    status,
};
use sea_orm::{ConnectionTrait, EntityTrait};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::{Core, IntakeError};
use crate::{
    domain::{bad, check_text, credentials::hex, parse_id},
    store::{stmt, tickets},
};

const MAX_PURPOSE_CHARS: usize = 200;

/// `intake.contact_key_digests`: comma-separated SHA-256 hex digests.
pub fn parse_digests(raw: &str) -> Result<Vec<String>, jiesu_runtime::ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let d = d.to_ascii_lowercase();
            if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(d)
            } else {
                Err(jiesu_runtime::ConfigError::invalid(
                    "intake.contact_key_digests",
                    "must be SHA-256 digests in hex (64 characters), separated by commas",
                ))
            }
        })
        .collect()
}

/// Constant-time equality of two digests.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
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
        let refused = || {
            status::unauthenticated(
                "service_key_invalid",
                "a valid x-jiesu-service-key is required",
            )
        };
        let key = request
            .metadata()
            .get(SERVICE_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(refused)?;
        let digest = hex(&Sha256::digest(key.as_bytes()));
        if self.core.contact_clients.iter().any(|d| same(d, &digest)) {
            Ok(digest)
        } else {
            Err(refused())
        }
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
        let id = parse_id("ticket_id", &req.ticket_id, "a ticket")?;
        let purpose = check_text("purpose", &req.purpose, MAX_PURPOSE_CHARS, true)?;
        if req.tenant.trim().is_empty() {
            return Err(bad("tenant", "is required").into());
        }
        let t = tickets::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|t| t.tenant == req.tenant.trim())
            .ok_or(IntakeError::NotFound("ticket"))?;
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
