//! `/api/v1/tickets`: create and read tickets.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use jiesu_proto::{
    common::TimelineEntry,
    dispatch::GetWorkOrderByTicketRequest,
    intake::{AttributeValue, Citizen, CreateTicketRequest, GetTicketRequest, Location},
    time::from_timestamp,
};
use serde::{Deserialize, Serialize};
use tonic::Code;
use utoipa::ToSchema;

use crate::{
    AppState,
    backend::{request, with_retry},
    error::{ApiError, Problem},
    extract::{Caller, JsonBody},
};

/// A request as an agent enters it or a citizen submits it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketBody {
    /// `hotline`, `app`, `wechat`, `mini_program`, `photo`, `grid`,
    /// `enterprise`, `transfer_110`, `transfer_12368`, `transfer_12309`,
    /// `city_management`, `tenant_platform`. Citizens may use `app`,
    /// `wechat`, `mini_program` and `photo`.
    #[schema(example = "hotline")]
    pub channel: String,
    /// `consultation`, `help`, `complaint`, `report`, `suggestion`, `praise`.
    #[schema(example = "complaint")]
    pub nature: String,
    /// Leaf category code from `GET /api/v1/categories`.
    #[schema(example = "CX0203")]
    pub category: String,
    /// What the citizen asks, up to 4000 characters.
    #[schema(example = "楼上装修噪音持续到晚上11点，影响休息")]
    pub content: String,
    /// `normal` (default) or `urgent`.
    #[serde(default)]
    pub urgency: Option<String>,
    #[serde(default)]
    pub location: Option<LocationBody>,
    pub citizen: CitizenBody,
    /// `livelihood` (民生, default), `development` (发展, default on the
    /// enterprise channel) or `enforcement` (执法).
    #[serde(default)]
    pub kind: Option<String>,
    /// The caller asked for confidentiality (保密).
    #[serde(default)]
    pub confidential: bool,
    /// Answers to the category's attributes: code → value, or a list of
    /// values for a multi-value list (see `GET /api/v1/categories`).
    #[serde(default)]
    #[schema(value_type = Option<Object>, example = json!({"noise_period": "night", "source": ["renovation"]}))]
    pub attributes: std::collections::BTreeMap<String, AttributeAnswer>,
    /// Answer a consultation from the knowledge base and close it at
    /// intake (agents only; see `POST /api/v1/kb/search`).
    #[serde(default)]
    pub direct_answer: Option<DirectAnswerBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectAnswerBody {
    pub kb_entry_id: String,
    /// What the agent told the caller; the entry's text when absent.
    #[serde(default)]
    pub reply: Option<String>,
}

/// One value, or several for a multi-value list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AttributeAnswer {
    One(String),
    Many(Vec<String>),
}

impl AttributeAnswer {
    fn into_values(self) -> Vec<String> {
        match self {
            AttributeAnswer::One(v) => vec![v],
            AttributeAnswer::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    #[schema(example = 36.06)]
    pub lat: Option<f64>,
    #[schema(example = 120.38)]
    pub lon: Option<f64>,
    /// Exact address; stored encrypted, shown masked.
    #[serde(default)]
    #[schema(example = "香港中路街道燕儿岛路10号")]
    pub address: Option<String>,
    /// Street (9 digits) or community (12 digits) division code inside the
    /// tenant, if known: dispatch routes by it.
    #[serde(default)]
    #[schema(example = "370202006")]
    pub region_code: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CitizenBody {
    #[serde(default)]
    #[schema(example = "张先生")]
    pub name: Option<String>,
    /// Mobile or landline; stored encrypted, shown masked.
    #[schema(example = "13800138000")]
    pub phone: String,
    /// Resident ID number (optional); stored encrypted, shown masked.
    #[serde(default)]
    pub id_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketCreated {
    #[schema(example = "0195f0c2-7d2a-7c3e-9a61-3f2b6f1c8e10")]
    pub id: String,
    #[schema(example = "370202-20261122-00042")]
    pub tracking_no: String,
    #[schema(example = "received")]
    pub status: String,
    /// 并件 candidates found for it, best first (agents only; empty
    /// otherwise).
    pub duplicates: Vec<DuplicateView>,
    /// Set when it was merged at once into an earlier ticket of the same
    /// caller about the same problem (status `merged`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<TicketRef>,
}

/// Another ticket, by id and tracking number.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketRef {
    pub id: String,
    pub tracking_no: String,
}

pub fn ticket_ref(id: String, tracking_no: String) -> Option<TicketRef> {
    (!id.is_empty()).then_some(TicketRef { id, tracking_no })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CitizenView {
    pub name: String,
    /// Always masked, e.g. `138****8000`; `（保密）` for a confidential
    /// caller unless the reader is an agent.
    #[schema(example = "138****8000")]
    pub phone: String,
    /// Masked, empty when not given.
    pub id_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocationView {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Masked address.
    pub address: String,
    /// The street or community the ticket belongs to (the tenant if unknown).
    pub region_code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitView {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineItem {
    pub at: Option<DateTime<Utc>>,
    /// `received`, `dispatched`, `triage`, ...
    pub event: String,
    /// Which service recorded it: `intake` or `dispatch`.
    pub source: String,
    pub actor_role: String,
    pub note: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub id: String,
    pub tracking_no: String,
    /// `received`, `triage`, `dispatched`, ...; a merged ticket shows its
    /// master's status.
    pub status: String,
    /// Its work order in dispatch (`/api/v1/work-orders/{id}`), once
    /// dispatch has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<String>,
    /// The unit's reply once resolved (办结答复).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// The master this ticket is merged into (并件), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<TicketRef>,
    /// Tickets merged into this one (staff only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<TicketRef>,
    pub channel: String,
    pub nature: String,
    pub category: String,
    pub category_name: String,
    pub content: String,
    pub urgency: String,
    /// `livelihood`, `development` or `enforcement`.
    pub kind: String,
    pub confidential: bool,
    /// Attribute code → values.
    #[schema(value_type = Object)]
    pub attributes: std::collections::BTreeMap<String, Vec<String>>,
    /// The registered channel (tenant platform, Open311 client) it came
    /// through, with that system's own id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub citizen: CitizenView,
    pub location: LocationView,
    /// The responsible unit once dispatched.
    pub unit: Option<UnitView>,
    pub timeline: Vec<TimelineItem>,
    /// Photos and recordings.
    pub attachments: Vec<crate::attachments::AttachmentView>,
    /// Parts that could not be read right now (e.g. `["dispatch"]`); the
    /// rest of the ticket is still correct.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<String>,
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Accept a request (受理).
#[utoipa::path(
    post,
    path = "/api/v1/tickets",
    tag = "tickets",
    request_body = CreateTicketBody,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Repeat a create safely: the same key returns the first ticket."),
    ),
    responses(
        (status = 201, description = "Accepted", body = TicketCreated),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Role may not submit (agents and citizens may)", body = Problem),
        (status = 409, description = "Idempotency key reused for another request", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "A field is invalid; `field` names it", body = Problem),
        (status = 503, description = "Intake unavailable; retry with the same Idempotency-Key", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_ticket(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateTicketBody>,
) -> Result<Response, ApiError> {
    // Without a client key the gateway makes one, so its own retries of an
    // unavailable intake can never create the ticket twice.
    let given = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| {
            v.to_str().map(|k| k.trim().to_owned()).map_err(|_| {
                ApiError::field(
                    StatusCode::BAD_REQUEST,
                    "Idempotency-Key",
                    "must be printable ASCII",
                )
            })
        })
        .transpose()?;
    let key = match given {
        Some(k) if !k.is_empty() => k,
        _ => format!("gw-{}", uuid::Uuid::now_v7()),
    };
    let msg = CreateTicketRequest {
        idempotency_key: key,
        channel: body.channel,
        nature: body.nature,
        category: body.category,
        content: body.content,
        location: body.location.map(|l| Location {
            lat: l.lat,
            lon: l.lon,
            address: l.address.unwrap_or_default(),
            region_code: l.region_code.unwrap_or_default(),
        }),
        citizen: Some(Citizen {
            name: body.citizen.name.unwrap_or_default(),
            phone: body.citizen.phone,
            id_number: body.citizen.id_number.unwrap_or_default(),
        }),
        urgency: body.urgency.unwrap_or_default(),
        kind: body.kind.unwrap_or_default(),
        confidential: body.confidential,
        direct_answer: body
            .direct_answer
            .map(|a| jiesu_proto::intake::DirectAnswer {
                kb_entry_id: a.kb_entry_id,
                reply: a.reply.unwrap_or_default(),
            }),
        attributes: body
            .attributes
            .into_iter()
            .map(|(code, v)| AttributeValue {
                code,
                values: v.into_values(),
            })
            .collect(),
    };
    let created = with_retry(state.backends.retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(&caller.token, msg.clone());
        async move { client.create_ticket(req?).await }
    })
    .await?
    .into_inner();
    let mut resp = (
        StatusCode::CREATED,
        Json(TicketCreated {
            id: created.id,
            tracking_no: created.tracking_no,
            status: created.status,
            duplicates: created.duplicates.into_iter().map(duplicate_view).collect(),
            merged_into: ticket_ref(created.merged_into, created.merged_into_tracking_no),
        }),
    )
        .into_response();
    if created.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

/// Read a ticket with its unit and timeline.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}",
    tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket; personal data masked", body = TicketView),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 404, description = "No such ticket in the caller's scope", body = Problem),
        (status = 422, description = "The id is not a ticket id", body = Problem),
        (status = 503, description = "Intake unavailable", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TicketView>, ApiError> {
    if !jiesu_common::ids::is_id(&id) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id",
            "must be a ticket id (UUID)",
        ));
    }
    let retries = state.backends.retries;
    let ticket = with_retry(retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(&caller.token, GetTicketRequest { id: id.clone() });
        async move { client.get_ticket(req?).await }
    })
    .await?
    .into_inner();
    // Intake has answered and enforced the caller's scope; the work order is
    // extra. If dispatch cannot answer, say so instead of failing.
    let mut degraded = Vec::new();
    let order = work_order(&state, &caller, &id, &mut degraded).await?;
    // A merged ticket follows its master: dispatch's status of the master
    // when there is one, else intake's.
    let master_status = if ticket.merged_into.is_empty() {
        None
    } else {
        let master = work_order(&state, &caller, &ticket.merged_into, &mut degraded)
            .await
            .ok()
            .flatten();
        Some(master.map_or_else(|| ticket.merged_into_status.clone(), |o| o.status))
    };

    let mut timeline: Vec<TimelineItem> = ticket
        .timeline
        .iter()
        .map(|e| timeline_item(e, "intake"))
        .collect();
    if let Some(o) = &order {
        timeline.extend(o.timeline.iter().map(|e| timeline_item(e, "dispatch")));
    }
    timeline.sort_by_key(|e| e.at);
    // Dispatch owns the status from the moment a work order exists.
    let status = master_status.unwrap_or_else(|| {
        order
            .as_ref()
            .map(|o| o.status.clone())
            .unwrap_or(ticket.status)
    });
    let work_order_id = order.as_ref().map(|o| o.id.clone());
    let reply = order
        .as_ref()
        .map(|o| o.reply.clone())
        .filter(|r| !r.is_empty());
    let unit = order.and_then(|o| o.unit).map(|u| UnitView {
        id: u.id,
        name: u.name,
    });
    let citizen = ticket.citizen.unwrap_or_default();
    let location = ticket.location.unwrap_or_default();
    Ok(Json(TicketView {
        id: ticket.id,
        tracking_no: ticket.tracking_no,
        status,
        merged_into: ticket_ref(ticket.merged_into, ticket.merged_into_tracking_no),
        work_order_id,
        reply,
        merged: ticket
            .merged
            .into_iter()
            .filter_map(|m| ticket_ref(m.ticket_id, m.tracking_no))
            .collect(),
        channel: ticket.channel,
        nature: ticket.nature,
        category: ticket.category,
        category_name: ticket.category_name,
        content: ticket.content,
        urgency: ticket.urgency,
        kind: ticket.kind,
        confidential: ticket.confidential,
        attributes: ticket
            .attributes
            .into_iter()
            .map(|a| (a.code, a.values))
            .collect(),
        channel_id: (!ticket.channel_id.is_empty()).then_some(ticket.channel_id),
        external_id: (!ticket.external_id.is_empty()).then_some(ticket.external_id),
        created_at: ticket.created_at.as_ref().and_then(from_timestamp),
        citizen: CitizenView {
            name: citizen.name,
            phone: citizen.phone,
            id_number: citizen.id_number,
        },
        location: LocationView {
            lat: location.lat,
            lon: location.lon,
            address: location.address,
            region_code: location.region_code,
        },
        unit,
        timeline,
        attachments: ticket
            .attachments
            .into_iter()
            .map(|a| crate::attachments::view(&id, a))
            .collect(),
        degraded,
    }))
}

/// The work order of ticket `id`, if dispatch has one. If dispatch cannot
/// answer, `degraded` says so and the ticket is served without it.
async fn work_order(
    state: &AppState,
    caller: &Caller,
    id: &str,
    degraded: &mut Vec<String>,
) -> Result<Option<jiesu_proto::dispatch::WorkOrder>, ApiError> {
    match with_retry(state.backends.retries, || {
        let mut client = state.backends.dispatch.clone();
        let req = request(
            &caller.token,
            GetWorkOrderByTicketRequest {
                ticket_id: id.to_owned(),
            },
        );
        async move { client.get_work_order_by_ticket(req?).await }
    })
    .await
    {
        Ok(o) => Ok(Some(o.into_inner())),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s)
            if crate::backend::is_transport_failure(&s)
                || matches!(s.code(), Code::DeadlineExceeded | Code::Cancelled) =>
        {
            tracing::warn!(grpc_code = ?s.code(), "dispatch did not answer; serving a degraded ticket");
            if !degraded.iter().any(|d| d == "dispatch") {
                degraded.push("dispatch".to_owned());
            }
            Ok(None)
        }
        Err(s) => Err(s.into()),
    }
}

pub fn timeline_item(e: &TimelineEntry, source: &str) -> TimelineItem {
    TimelineItem {
        at: e.at.as_ref().and_then(from_timestamp),
        event: e.event.clone(),
        source: source.to_owned(),
        actor_role: e.actor_role.clone(),
        note: e.note.clone(),
        unit: (!e.unit_id.is_empty()).then(|| UnitView {
            id: e.unit_id.clone(),
            name: e.unit_name.clone(),
        }),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InformationBody {
    /// What the citizen adds, up to 2000 characters.
    #[schema(example = "补充：噪音主要在周末上午")]
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    /// Why, optional, up to 500 characters.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketStatus {
    pub id: String,
    pub tracking_no: String,
    pub status: String,
}

impl From<jiesu_proto::intake::Ticket> for TicketStatus {
    fn from(t: jiesu_proto::intake::Ticket) -> Self {
        Self {
            id: t.id,
            tracking_no: t.tracking_no,
            status: t.status,
        }
    }
}

/// The citizen (or an agent for them) adds information (补充信息).
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/information",
    tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body = InformationBody,
    responses(
        (status = 201, description = "Added to the ticket", body = TicketStatus),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Only the citizen or an agent", body = Problem),
        (status = 404, description = "No such ticket of the caller", body = Problem),
        (status = 409, description = "The ticket is closed (`ticket_closed`)", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn add_information(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<InformationBody>,
) -> Result<Response, ApiError> {
    let mut client = state.backends.intake.clone();
    let req = request(
        &caller.token,
        jiesu_proto::intake::AddInformationRequest {
            ticket_id: id,
            text: body.text,
        },
    )?;
    let t = client.add_information(req).await?.into_inner();
    Ok((StatusCode::CREATED, Json(TicketStatus::from(t))).into_response())
}

/// The citizen (or an agent for them) withdraws the ticket (撤回).
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/withdraw",
    tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body = WithdrawBody,
    responses(
        (status = 200, description = "Withdrawn", body = TicketStatus),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Only the citizen or an agent", body = Problem),
        (status = 404, description = "No such ticket of the caller", body = Problem),
        (status = 409, description = "The ticket is already closed (`ticket_closed`)", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<WithdrawBody>,
) -> Result<Json<TicketStatus>, ApiError> {
    let mut client = state.backends.intake.clone();
    let req = request(
        &caller.token,
        jiesu_proto::intake::WithdrawTicketRequest {
            ticket_id: id,
            reason: body.reason.unwrap_or_default(),
        },
    )?;
    Ok(Json(client.withdraw_ticket(req).await?.into_inner().into()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrackQuery {
    /// 受理编号, e.g. `370202-20261122-00042`.
    pub tracking_no: String,
    /// Last four digits of the phone given with the request.
    pub phone_last4: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicTimelineItem {
    pub at: Option<DateTime<Utc>>,
    pub event: String,
    pub note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Tracking {
    pub tracking_no: String,
    pub status: String,
    pub category_name: String,
    pub created_at: Option<DateTime<Utc>>,
    pub timeline: Vec<PublicTimelineItem>,
}

/// Progress of a request for anyone holding its tracking number and the
/// phone's last four digits (no login; 10 look-ups a minute per address).
#[utoipa::path(
    get,
    path = "/api/v1/track",
    tag = "tickets",
    params(TrackQuery),
    responses(
        (status = 200, description = "Status and public timeline", body = Tracking),
        (status = 400, description = "Query missing or malformed", body = Problem),
        (status = 401, description = "Never: no token needed", body = Problem),
        (status = 404, description = "No ticket with this number and these digits", body = Problem),
        (status = 422, description = "A parameter is invalid", body = Problem),
        (status = 429, description = "Too many look-ups; see Retry-After", body = Problem),
    ),
)]
pub async fn track(
    State(state): State<AppState>,
    peer: crate::ratelimit::Peer,
    headers: HeaderMap,
    query: Result<axum::extract::Query<TrackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Tracking>, ApiError> {
    state.limits.check_lookup(&headers, peer)?;
    let axum::extract::Query(q) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "give tracking_no and phone_last4",
        )
    })?;
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.public.clone();
        let req = crate::backend::public_request(jiesu_proto::intake::TrackTicketRequest {
            tracking_no: q.tracking_no.clone(),
            phone_last4: q.phone_last4.clone(),
        });
        async move { client.track_ticket(req).await }
    })
    .await?
    .into_inner();
    Ok(Json(Tracking {
        tracking_no: resp.tracking_no,
        status: resp.status,
        category_name: resp.category_name,
        created_at: resp.created_at.as_ref().and_then(from_timestamp),
        timeline: resp
            .timeline
            .into_iter()
            .map(|e| PublicTimelineItem {
                at: e.at.as_ref().and_then(from_timestamp),
                event: e.event,
                note: e.note,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicateView {
    pub ticket_id: String,
    pub tracking_no: String,
    pub status: String,
    pub category: String,
    pub created_at: Option<DateTime<Utc>>,
    /// 0 to 1, what candidates are ranked by.
    pub score: f64,
    pub text_likeness: f64,
    pub same_caller: bool,
    /// Why (zh-CN), e.g. `内容相似 82%，同一地址，同一分类`.
    pub reasons: String,
    /// The same caller about the same problem within 24 hours.
    pub clear_case: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Duplicates {
    /// At most ten, best first.
    pub candidates: Vec<DuplicateView>,
    /// Earlier tickets of the window compared.
    pub compared: i32,
}

/// Earlier open tickets that are likely the same problem (并件 candidates).
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}/duplicates",
    tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "Candidates, best first", body = Duplicates),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Agents, dispatchers and supervisors only", body = Problem),
        (status = 404, description = "No such ticket in the caller's scope", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn duplicates(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Duplicates>, ApiError> {
    let resp = with_retry(state.backends.retries, || {
        let mut client = state.backends.intake.clone();
        let req = request(
            &caller.token,
            jiesu_proto::intake::FindDuplicatesRequest {
                ticket_id: id.clone(),
            },
        );
        async move { client.find_duplicates(req?).await }
    })
    .await?
    .into_inner();
    Ok(Json(Duplicates {
        compared: resp.compared,
        candidates: resp.candidates.into_iter().map(duplicate_view).collect(),
    }))
}

fn duplicate_view(c: jiesu_proto::intake::DuplicateCandidate) -> DuplicateView {
    DuplicateView {
        ticket_id: c.ticket_id,
        tracking_no: c.tracking_no,
        status: c.status,
        category: c.category,
        created_at: c.created_at.as_ref().and_then(from_timestamp),
        score: c.score,
        text_likeness: c.text_likeness,
        same_caller: c.same_caller,
        reasons: c.reasons,
        clear_case: c.clear_case,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The open ticket this one joins (主件).
    pub master_id: String,
    /// Why, optional, up to 500 characters.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmergeBody {
    /// Why the tickets are not the same problem, up to 500 characters.
    pub reason: String,
}

/// Merge a ticket into another open one (并件); it then follows the
/// master's status and its caller is told.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/merge",
    tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body = MergeBody,
    responses(
        (status = 200, description = "Merged", body = TicketStatus),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Agents, dispatchers and supervisors only", body = Problem),
        (status = 404, description = "No such ticket or master in the caller's scope", body = Problem),
        (status = 409, description = "`ticket_closed`, `already_merged`, `has_merged_tickets`, `master_closed` or `master_merged`", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MergeBody>,
) -> Result<Json<TicketStatus>, ApiError> {
    let mut client = state.backends.intake.clone();
    let req = request(
        &caller.token,
        jiesu_proto::intake::MergeTicketRequest {
            ticket_id: id,
            master_id: body.master_id,
            note: body.note.unwrap_or_default(),
        },
    )?;
    Ok(Json(client.merge_ticket(req).await?.into_inner().into()))
}

/// Undo a merge: the ticket is handled on its own again.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/unmerge",
    tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body = UnmergeBody,
    responses(
        (status = 200, description = "Unmerged", body = TicketStatus),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Agents, dispatchers and supervisors only", body = Problem),
        (status = 404, description = "No such ticket in the caller's scope", body = Problem),
        (status = 409, description = "`not_merged`", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn unmerge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UnmergeBody>,
) -> Result<Json<TicketStatus>, ApiError> {
    let mut client = state.backends.intake.clone();
    let req = request(
        &caller.token,
        jiesu_proto::intake::UnmergeTicketRequest {
            ticket_id: id,
            reason: body.reason,
        },
    )?;
    Ok(Json(client.unmerge_ticket(req).await?.into_inner().into()))
}
