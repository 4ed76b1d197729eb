//! Calls without a platform JWT: signed webhook deliveries, Open311 clients
//! with an api key, and public reads that show no personal data.

use std::{collections::HashMap, sync::Arc};

use chrono::{TimeDelta, Utc};
use jiesu_pii::mask_address;
use jiesu_proto::{
    intake::{
        CreateTicketResponse, CreateWithApiKeyRequest, CreateWithApiKeyResponse,
        ListServicesRequest, ListServicesResponse, PublicRequest, ResolveTokenRequest,
        ResolveTokenResponse, SearchRequestsRequest, SearchRequestsResponse, SubmitSignedRequest,
        TrackTicketRequest, TrackTicketResponse, public_intake_service_server::PublicIntakeService,
    },
    time::{from_timestamp, to_timestamp},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    Core, IntakeError,
    accept::{Extras, Submitter},
};
use crate::{
    domain::{self, Nature, bad, credentials, says, tr, webhook},
    store::{self, channels, tickets},
};

pub const MAX_IDS: usize = 100;
pub const DEFAULT_PAGE_SIZE: i32 = 50;
/// Open311 caps a listing at 1000 requests.
pub const MAX_PAGE_SIZE: i32 = 1000;
/// Without dates a listing covers the last 90 days (GeoReport v2).
pub const DEFAULT_SPAN_DAYS: i64 = 90;

#[derive(Clone)]
pub struct PublicApi {
    core: Arc<Core>,
}

impl PublicApi {
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

impl Core {
    pub async fn submit_signed(
        &self,
        req: &SubmitSignedRequest,
    ) -> Result<CreateTicketResponse, IntakeError> {
        use webhook::Refusal;
        let channel_id = Uuid::parse_str(req.channel_id.trim())
            .map_err(|_| IntakeError::Refused(Refusal::ChannelUnknown))?;
        let window = i64::try_from(self.webhook_window.as_secs()).unwrap_or(300);
        webhook::check_freshness(&req.timestamp, &req.nonce, Utc::now().timestamp(), window)
            .map_err(IntakeError::Refused)?;
        let (channel, sealed) = channels::webhook_secrets(&self.db, channel_id)
            .await?
            .ok_or(IntakeError::Refused(Refusal::ChannelUnknown))?;
        let secrets = sealed
            .iter()
            .map(|(id, s)| {
                self.keyring
                    .decrypt(s, &format!("channel_credentials.secret:{id}"))
                    .map(String::into_bytes)
            })
            .collect::<Result<Vec<_>, _>>()?;
        webhook::verify(
            &secrets,
            &req.timestamp,
            &req.nonce,
            &req.body,
            &req.signature,
        )
        .map_err(IntakeError::Refused)?;

        let (external_id, mut ticket) = webhook::parse_delivery(&req.body)?;
        ticket.channel = channel.channel.clone();
        let t = domain::validate(&ticket)?;
        let mut accepted = self
            .accept(
                &Submitter::channel(&channel.tenant, channel.id),
                t,
                Extras {
                    external_id: Some(external_id),
                    nonce: Some(req.nonce.trim().to_owned()),
                    ..Extras::default()
                },
            )
            .await?;
        // Other people's tickets are for agents' eyes only.
        accepted.duplicates.clear();
        Ok(accepted.into())
    }

    /// The tenant's leaf categories, or "jurisdiction not found" for a
    /// tenant without any.
    pub async fn services(&self, tenant: &str) -> Result<ListServicesResponse, IntakeError> {
        let tenant = domain::tenant_code(tenant)?;
        let all = self.categories(&tenant).await?.categories;
        if all.is_empty() {
            return Err(IntakeError::NotFound(tr!("辖区", "jurisdiction")));
        }
        let group_names = all
            .iter()
            .filter(|c| !c.leaf)
            .map(|c| (c.code.clone(), c.name.clone()))
            .collect::<HashMap<_, _>>();
        Ok(ListServicesResponse {
            services: all.into_iter().filter(|c| c.leaf).collect(),
            group_names,
        })
    }

    pub async fn create_with_api_key(
        &self,
        req: &CreateWithApiKeyRequest,
    ) -> Result<CreateWithApiKeyResponse, IntakeError> {
        let tenant = domain::tenant_code(&req.tenant)?;
        let key = req.api_key.trim();
        if key.is_empty() || key.len() > 128 {
            return Err(IntakeError::ApiKeyInvalid);
        }
        let channel = channels::by_api_key(&self.db, &tenant, &credentials::api_key_digest(key))
            .await?
            .ok_or(IntakeError::ApiKeyInvalid)?;
        let mut ticket = req.ticket.clone().unwrap_or_default();
        ticket.channel = channel.channel.clone();
        if ticket.nature.trim().is_empty() {
            ticket.nature = Nature::Complaint.as_str().into();
        }
        let t = domain::validate(&ticket)?;
        if t.point.is_none() && t.address.is_none() {
            return Err(bad(
                "location",
                tr!(
                    "必须给出 lat 和 long，或 address_string",
                    "lat and long, or address_string, is required"
                ),
            )
            .into());
        }
        let meta: serde_json::Map<String, serde_json::Value> = [
            ("account_id", &req.account_id),
            ("device_id", &req.device_id),
            ("email", &req.email),
            ("media_url", &req.media_url),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.trim().to_owned())))
        .collect();
        for (field, limit) in [
            ("account_id", 128),
            ("device_id", 128),
            ("email", 254),
            ("media_url", 2048),
        ] {
            if meta
                .get(field)
                .and_then(|v| v.as_str())
                .is_some_and(|v| v.chars().count() > limit)
            {
                return Err(bad(field, says::at_most_chars(limit)).into());
            }
        }
        let accepted = self
            .accept(
                &Submitter::channel(&tenant, channel.id),
                t,
                Extras {
                    public_token: true,
                    client_meta: (!meta.is_empty()).then_some(serde_json::Value::Object(meta)),
                    ..Extras::default()
                },
            )
            .await?;
        Ok(CreateWithApiKeyResponse {
            tracking_no: accepted.tracking_no,
            token: accepted.public_token.unwrap_or_default(),
            service_notice: "诉求已受理，可凭受理编号查询办理进度".into(),
            account_id: req.account_id.trim().to_owned(),
        })
    }

    pub async fn search_requests(
        &self,
        req: &SearchRequestsRequest,
    ) -> Result<SearchRequestsResponse, IntakeError> {
        let tenant = domain::tenant_code(&req.tenant)?;
        let names: HashMap<String, String> = store::categories_of(&self.db, &tenant)
            .await?
            .into_iter()
            .map(|c| (c.code, c.name))
            .collect();
        if names.is_empty() {
            return Err(IntakeError::NotFound(tr!("辖区", "jurisdiction")));
        }
        let mut q = tickets::Entity::find().filter(tickets::Column::Tenant.eq(tenant.clone()));
        if !req.ids.is_empty() {
            if req.ids.len() > MAX_IDS {
                return Err(bad(
                    "service_request_id",
                    tr!("最多 {MAX_IDS} 个编号", "at most {MAX_IDS} ids"),
                )
                .into());
            }
            q = q.filter(
                tickets::Column::TrackingNo.is_in(req.ids.iter().map(|i| i.trim().to_owned())),
            );
        } else {
            let end = req
                .end
                .as_ref()
                .and_then(from_timestamp)
                .unwrap_or_else(Utc::now);
            let start = req
                .start
                .as_ref()
                .and_then(from_timestamp)
                .unwrap_or(end - TimeDelta::days(DEFAULT_SPAN_DAYS));
            if start > end {
                return Err(bad("start_date", says::not_after("end_date")).into());
            }
            q = q
                .filter(tickets::Column::CreatedAt.gte(start))
                .filter(tickets::Column::CreatedAt.lte(end))
                // A confidential request is not listed, only found by its id.
                .filter(tickets::Column::Confidential.eq(false));
            if !req.service_codes.is_empty() {
                q = q.filter(tickets::Column::Category.is_in(req.service_codes.clone()));
            }
            match req.status.trim() {
                "" => {}
                "open" => {
                    q = q.filter(
                        tickets::Column::Status.is_not_in(domain::CLOSED_STATUSES.iter().copied()),
                    )
                }
                "closed" => {
                    q = q.filter(
                        tickets::Column::Status.is_in(domain::CLOSED_STATUSES.iter().copied()),
                    )
                }
                _ => {
                    return Err(bad(
                        "status",
                        tr!("必须是 open 或 closed", "must be open or closed"),
                    )
                    .into());
                }
            }
        }
        let page = match req.page {
            0 => 1,
            p if p >= 1 => p,
            _ => return Err(bad("page", tr!("必须大于等于 1", "must be 1 or more")).into()),
        };
        let size = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            s if (1..=MAX_PAGE_SIZE).contains(&s) => s,
            _ => {
                return Err(bad(
                    "page_size",
                    tr!(
                        "必须在 1 到 {MAX_PAGE_SIZE} 之间",
                        "must be between 1 and {MAX_PAGE_SIZE}"
                    ),
                )
                .into());
            }
        };
        let rows = q
            .order_by_desc(tickets::Column::CreatedAt)
            .order_by_desc(tickets::Column::Id)
            .offset(u64::try_from(page - 1).unwrap_or(0) * u64::try_from(size).unwrap_or(0))
            .limit(u64::try_from(size).unwrap_or(0))
            .all(&self.db)
            .await?;
        let requests = rows
            .into_iter()
            .map(|t| self.public_view(t, &names))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SearchRequestsResponse { requests })
    }

    /// What anyone may see: no identity; for a confidential ticket only its
    /// status.
    fn public_view(
        &self,
        t: tickets::Model,
        names: &HashMap<String, String>,
    ) -> Result<PublicRequest, IntakeError> {
        let status = if domain::is_closed(&t.status) {
            "closed"
        } else {
            "open"
        };
        let mut out = PublicRequest {
            tracking_no: t.tracking_no.clone(),
            status: status.into(),
            detail_status: t.status.clone(),
            // The unit's answer, once there is one (redacted by dispatch).
            status_notes: t.reply.clone(),
            service_code: t.category.clone(),
            service_name: names.get(&t.category).cloned().unwrap_or_default(),
            requested_at: Some(to_timestamp(t.created_at)),
            updated_at: Some(to_timestamp(t.updated_at)),
            ..Default::default()
        };
        if t.confidential {
            return Ok(out);
        }
        out.description = t.content.clone();
        out.lat = t.lat;
        out.lon = t.lon;
        if let Some(sealed) = &t.address_enc {
            let address = self
                .keyring
                .decrypt(sealed, &format!("tickets.address:{}", t.id))?;
            out.address = mask_address(&address);
        }
        Ok(out)
    }

    pub async fn resolve_token(
        &self,
        req: &ResolveTokenRequest,
    ) -> Result<ResolveTokenResponse, IntakeError> {
        let tenant = domain::tenant_code(&req.tenant)?;
        let token = req.token.trim();
        if token.is_empty() || token.len() > 64 {
            return Err(IntakeError::NotFound(tr!("受理凭证", "token")));
        }
        let t = tickets::Entity::find()
            .filter(tickets::Column::Tenant.eq(tenant))
            .filter(tickets::Column::PublicToken.eq(token))
            .one(&self.db)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("受理凭证", "token")))?;
        Ok(ResolveTokenResponse {
            tracking_no: t.tracking_no,
        })
    }
}

#[tonic::async_trait]
impl PublicIntakeService for PublicApi {
    async fn submit_signed(
        &self,
        request: Request<SubmitSignedRequest>,
    ) -> Result<Response<CreateTicketResponse>, Status> {
        let req = request.into_inner();
        let created = self
            .core
            .guarded(move |core| async move { core.submit_signed(&req).await })
            .await?;
        Ok(Response::new(created))
    }

    async fn list_services(
        &self,
        request: Request<ListServicesRequest>,
    ) -> Result<Response<ListServicesResponse>, Status> {
        Ok(Response::new(
            self.core.services(&request.get_ref().tenant).await?,
        ))
    }

    async fn create_with_api_key(
        &self,
        request: Request<CreateWithApiKeyRequest>,
    ) -> Result<Response<CreateWithApiKeyResponse>, Status> {
        let req = request.into_inner();
        let created = self
            .core
            .guarded(move |core| async move { core.create_with_api_key(&req).await })
            .await?;
        Ok(Response::new(created))
    }

    async fn search_requests(
        &self,
        request: Request<SearchRequestsRequest>,
    ) -> Result<Response<SearchRequestsResponse>, Status> {
        Ok(Response::new(
            self.core.search_requests(request.get_ref()).await?,
        ))
    }

    async fn resolve_token(
        &self,
        request: Request<ResolveTokenRequest>,
    ) -> Result<Response<ResolveTokenResponse>, Status> {
        Ok(Response::new(
            self.core.resolve_token(request.get_ref()).await?,
        ))
    }

    async fn track_ticket(
        &self,
        request: Request<TrackTicketRequest>,
    ) -> Result<Response<TrackTicketResponse>, Status> {
        Ok(Response::new(self.core.track(request.get_ref()).await?))
    }
}
