//! gRPC handlers: translate requests, check the caller, call `domain` and
//! `store`, and map errors to `tonic::Status` in one place.

use std::sync::Arc;

use chrono::Utc;
use jiesu_auth::{AuthError, Principal, Role, principal};
use jiesu_bus::Outbox;
use jiesu_pii::{Keyring, PiiError, mask_address, mask_name, mask_phone, redact_text};
use jiesu_proto::{
    common::{GeoPoint, TimelineEntry},
    intake::{
        Category, Citizen, CreateTicketRequest, CreateTicketResponse, GetTicketRequest,
        ListCategoriesRequest, ListCategoriesResponse, Location, Ticket, TicketReceived,
        intake_service_server::IntakeService,
    },
    status,
    time::to_timestamp,
};
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, Set, SqlErr, TransactionTrait};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{self, FieldError, ValidTicket},
    store::{self, categories, ticket_events, tickets},
};

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{}: {}", .0.field, .0.message)]
    Field(FieldError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("ticket not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("this idempotency key was already used for a different request")]
    KeyReused,
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("personal data: {0}")]
    Pii(#[from] PiiError),
}

impl From<FieldError> for IntakeError {
    fn from(e: FieldError) -> Self {
        Self::Field(e)
    }
}

impl From<IntakeError> for Status {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Field(f) => status::invalid_field(f.field, f.message),
            IntakeError::Auth(a) => a.into(),
            IntakeError::NotFound => status::not_found("ticket"),
            IntakeError::Forbidden(m) => status::permission_denied(m),
            IntakeError::KeyReused => {
                let mut s = Status::already_exists(IntakeError::KeyReused.to_string());
                if let Ok(v) = "idempotency_key_reused".parse() {
                    s.metadata_mut().insert(status::CODE_KEY, v);
                }
                if let Ok(v) = "idempotency_key".parse() {
                    s.metadata_mut().insert(status::FIELD_KEY, v);
                }
                s
            }
            IntakeError::Db(e) => {
                tracing::error!(error = %e, "intake database error");
                status::internal()
            }
            IntakeError::Pii(e) => {
                tracing::error!(error = %e, "intake personal-data error");
                status::internal()
            }
        }
    }
}

/// Every role may read tickets inside its scope (citizens only their own).
const READERS: &[Role] = &Role::ALL;

pub struct IntakeApi {
    db: DatabaseConnection,
    outbox: Outbox,
    keyring: Arc<Keyring>,
}

impl IntakeApi {
    pub fn new(db: DatabaseConnection, outbox: Outbox, keyring: Arc<Keyring>) -> Self {
        Self {
            db,
            outbox,
            keyring,
        }
    }

    async fn create(
        &self,
        who: &Principal,
        req: &CreateTicketRequest,
    ) -> Result<CreateTicketResponse, IntakeError> {
        who.require_any(&[Role::Agent, Role::Citizen])?;
        let t = domain::validate(req)?;
        if !who.has_role(Role::Agent) && !t.channel.open_to_citizens() {
            return Err(IntakeError::Forbidden(format!(
                "citizens submit through app, wechat, mini_program or photo; channel {} is entered by agents",
                t.channel.as_str()
            )));
        }
        let hash = domain::request_hash(&t);
        if let Some(key) = &t.idempotency_key
            && let Some(existing) = store::find_by_idempotency_key(&self.db, who, key).await?
        {
            return replay(existing, &hash);
        }
        let (category, leaf) = store::category_for_ticket(&self.db, who.tenant.code(), &t.category)
            .await?
            .ok_or_else(|| FieldError {
                field: "category",
                message: "is not a category of this tenant (see GET /api/v1/categories)".into(),
            })?;
        if !leaf {
            return Err(FieldError {
                field: "category",
                message: "must be a leaf category, not a group".into(),
            }
            .into());
        }
        match self.insert(who, &t, &category, &hash).await {
            Ok(resp) => {
                self.outbox.wake();
                tracing::info!(ticket_id = %resp.id, tracking_no = %resp.tracking_no, tenant = %who.tenant, channel = t.channel.as_str(), "ticket received");
                Ok(resp)
            }
            // Two concurrent requests with one key: the loser answers with
            // the winner's ticket.
            Err(IntakeError::Db(e))
                if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
                    && t.idempotency_key.is_some() =>
            {
                let key = t.idempotency_key.as_deref().unwrap_or_default();
                match store::find_by_idempotency_key(&self.db, who, key).await? {
                    Some(existing) => replay(existing, &hash),
                    None => Err(IntakeError::Db(e)),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn insert(
        &self,
        who: &Principal,
        t: &ValidTicket,
        category: &categories::Model,
        hash: &str,
    ) -> Result<CreateTicketResponse, IntakeError> {
        let now = Utc::now();
        let id = Uuid::now_v7();
        let tenant = who.tenant.code().to_owned();
        let aad = |field: &str| format!("tickets.{field}:{id}");
        let seal = |value: &str, field: &str| self.keyring.encrypt(value, &aad(field));
        let actor = if who.has_role(Role::Agent) {
            Role::Agent
        } else {
            Role::Citizen
        };

        let redacted = redact_text(&t.content);
        let txn = self.db.begin().await?;
        let seq = store::next_tracking_seq(&txn, &tenant, domain::china_day(now)).await?;
        let tracking_no = domain::tracking_no(&tenant, domain::china_day(now), seq);
        tickets::ActiveModel {
            id: Set(id),
            tenant: Set(tenant.clone()),
            region_code: Set(tenant.clone()),
            tracking_no: Set(tracking_no.clone()),
            status: Set(domain::STATUS_RECEIVED.into()),
            channel: Set(t.channel.as_str().into()),
            nature: Set(t.nature.as_str().into()),
            category: Set(t.category.clone()),
            urgency: Set(t.urgency.as_str().into()),
            content: Set(redacted.clone()),
            content_enc: Set(seal(&t.content, "content")?),
            lat: Set(t.point.map(|p| p.0)),
            lon: Set(t.point.map(|p| p.1)),
            address_enc: Set(t
                .address
                .as_deref()
                .map(|a| seal(a, "address"))
                .transpose()?),
            citizen_name_enc: Set(t
                .citizen_name
                .as_deref()
                .map(|n| seal(n, "citizen_name"))
                .transpose()?),
            citizen_phone_enc: Set(Some(seal(&t.citizen_phone, "citizen_phone")?)),
            citizen_phone_bidx: Set(Some(self.keyring.blind_index("phone", &t.citizen_phone))),
            submitter_sub: Set(who.sub.clone()),
            submitter_role: Set(actor.as_str().into()),
            idempotency_key: Set(t.idempotency_key.clone()),
            request_hash: Set(Some(hash.to_owned())),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        ticket_events::ActiveModel {
            ticket_id: Set(id),
            tenant: Set(tenant.clone()),
            at: Set(now),
            event: Set("received".into()),
            actor_role: Set(actor.as_str().into()),
            note: Set(domain::received_note(t.channel)),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let event = TicketReceived {
            ticket_id: id.to_string(),
            tenant: tenant.clone(),
            region_code: tenant.clone(),
            tracking_no: tracking_no.clone(),
            channel: t.channel.as_str().into(),
            nature: t.nature.as_str().into(),
            category: t.category.clone(),
            category_name: category.name.clone(),
            urgency: t.urgency.as_str().into(),
            content_redacted: redacted,
            point: t.point.map(|(lat, lon)| GeoPoint { lat, lon }),
            submitter_sub: who.sub.clone(),
            received_at: Some(to_timestamp(now)),
        };
        self.outbox.enqueue(&txn, &event).await?;
        txn.commit().await?;
        Ok(CreateTicketResponse {
            id: id.to_string(),
            tracking_no,
            status: domain::STATUS_RECEIVED.into(),
            replayed: false,
        })
    }

    async fn get(&self, who: &Principal, id: &str) -> Result<Ticket, IntakeError> {
        who.require_any(READERS)?;
        let id = Uuid::parse_str(id.trim()).map_err(|_| FieldError {
            field: "id",
            message: "must be a ticket id (UUID)".into(),
        })?;
        let t = store::find_visible_ticket(&self.db, who, id)
            .await?
            .ok_or(IntakeError::NotFound)?;
        let category_name = store::category_for_ticket(&self.db, &t.tenant, &t.category)
            .await?
            .map(|(c, _)| c.name)
            .unwrap_or_default();
        let timeline = store::timeline(&self.db, &t)
            .await?
            .into_iter()
            .map(|e| TimelineEntry {
                at: Some(to_timestamp(e.at)),
                event: e.event,
                actor_role: e.actor_role,
                note: e.note,
                unit_id: String::new(),
                unit_name: String::new(),
            })
            .collect();
        let open = |sealed: &Option<String>, field: &str| -> Result<Option<String>, PiiError> {
            sealed
                .as_deref()
                .map(|s| {
                    self.keyring
                        .decrypt(s, &format!("tickets.{field}:{}", t.id))
                })
                .transpose()
        };
        let phone = open(&t.citizen_phone_enc, "citizen_phone")?;
        let name = open(&t.citizen_name_enc, "citizen_name")?;
        let address = open(&t.address_enc, "address")?;
        Ok(Ticket {
            id: t.id.to_string(),
            tenant: t.tenant.clone(),
            region_code: t.region_code.clone(),
            tracking_no: t.tracking_no.clone(),
            status: t.status.clone(),
            channel: t.channel.clone(),
            nature: t.nature.clone(),
            category: t.category.clone(),
            category_name,
            content: t.content.clone(),
            urgency: t.urgency.clone(),
            citizen: Some(Citizen {
                name: name.as_deref().map(mask_name).unwrap_or_default(),
                phone: phone.as_deref().map(mask_phone).unwrap_or_default(),
            }),
            location: Some(Location {
                lat: t.lat,
                lon: t.lon,
                address: address.as_deref().map(mask_address).unwrap_or_default(),
            }),
            created_at: Some(to_timestamp(t.created_at)),
            timeline,
        })
    }
}

fn replay(existing: tickets::Model, hash: &str) -> Result<CreateTicketResponse, IntakeError> {
    if existing.request_hash.as_deref() != Some(hash) {
        return Err(IntakeError::KeyReused);
    }
    Ok(CreateTicketResponse {
        id: existing.id.to_string(),
        tracking_no: existing.tracking_no,
        status: existing.status,
        replayed: true,
    })
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    async fn create_ticket(
        &self,
        request: Request<CreateTicketRequest>,
    ) -> Result<Response<CreateTicketResponse>, Status> {
        let who = principal(&request)?;
        Ok(Response::new(self.create(&who, request.get_ref()).await?))
    }

    async fn get_ticket(
        &self,
        request: Request<GetTicketRequest>,
    ) -> Result<Response<Ticket>, Status> {
        let who = principal(&request)?;
        Ok(Response::new(self.get(&who, &request.get_ref().id).await?))
    }

    async fn list_categories(
        &self,
        request: Request<ListCategoriesRequest>,
    ) -> Result<Response<ListCategoriesResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(READERS).map_err(IntakeError::from)?;
        let rows = store::categories_of(&self.db, who.tenant.code())
            .await
            .map_err(IntakeError::from)?;
        let parents: std::collections::HashSet<String> =
            rows.iter().filter_map(|c| c.parent_code.clone()).collect();
        let categories = rows
            .into_iter()
            .map(|c| Category {
                leaf: !parents.contains(&c.code),
                code: c.code,
                name: c.name,
                parent_code: c.parent_code.unwrap_or_default(),
                level: i32::from(c.level),
            })
            .collect();
        Ok(Response::new(ListCategoriesResponse { categories }))
    }
}
