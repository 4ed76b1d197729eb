//! `/api/v1/tickets`: accept a request (受理) and read it as one view of
//! intake and dispatch.

use axum::http::HeaderValue;
use jiesu_proto::{
    dispatch::{GetWorkOrderByTicketRequest, WorkOrder},
    intake::{
        AttributeValue, Citizen, CreateTicketRequest, DirectAnswer, GetTicketRequest, Location,
        Ticket,
    },
};
use tonic::Code;

use super::prelude::*;
use crate::{
    backend::is_transport_failure,
    rest::ticket_merges::{DuplicateView, duplicate_view},
    view::ticket::{Sources, TicketRef, TicketView, compose, ticket_ref},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_ticket, super::ticket_lookup::list_tickets))
        .routes(routes!(get_ticket))
}

/// A request as an agent enters it or a citizen submits it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketBody {
    /// `hotline`, `app`, `wechat`, `mini_program`, `photo`, `grid`,
    /// `enterprise`, `transfer_110`, `transfer_12368`, `transfer_12309`,
    /// `city_management`, `tenant_platform`. Citizens may use `app`,
    /// `wechat`, `mini_program` and `photo`.
    #[schema(
        example = "hotline",
        pattern = "^(hotline|app|wechat|mini_program|photo|grid|enterprise|transfer_110|transfer_12368|transfer_12309|city_management|tenant_platform)$"
    )]
    pub channel: String,
    /// `consultation`, `help`, `complaint`, `report`, `suggestion`, `praise`.
    #[schema(
        example = "complaint",
        pattern = "^(consultation|help|complaint|report|suggestion|praise)$"
    )]
    pub nature: String,
    /// Leaf category code from `GET /api/v1/categories`.
    #[schema(example = "CX0203")]
    pub category: String,
    /// What the citizen asks, up to 4000 characters.
    #[schema(
        example = "楼上装修噪音持续到晚上11点，影响休息",
        min_length = 1,
        max_length = 4000
    )]
    pub content: String,
    /// `normal` (default) or `urgent`.
    #[serde(default)]
    #[schema(pattern = "^(normal|urgent)?$")]
    pub urgency: Option<String>,
    #[serde(default)]
    pub location: Option<LocationBody>,
    pub citizen: CitizenBody,
    /// `livelihood` (民生, default), `development` (发展, default on the
    /// enterprise channel) or `enforcement` (执法).
    #[serde(default)]
    #[schema(pattern = "^(livelihood|development|enforcement)?$")]
    pub kind: Option<String>,
    /// The caller asked for confidentiality (保密).
    #[serde(default)]
    pub confidential: bool,
    /// Answers to the category's attributes: code → value, or a list of
    /// values for a multi-value list (see `GET /api/v1/categories`).
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"noise_period": "night", "source": ["renovation"]}))]
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

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Accept a request (受理).
#[utoipa::path(
    post,
    path = "/api/v1/tickets",
    tag = "tickets",
    request_body = CreateTicketBody,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Repeat a create safely: the same key returns the first ticket. 1 to 128 printable ASCII characters.",
         max_length = 128, pattern = "^[!-~]*$"),
    ),
    responses(
        (status = 201, description = "Accepted", body = TicketCreated),
        Authenticated,
        JsonInput,
        (status = 400, description = "The body is not JSON, or the Idempotency-Key is not printable ASCII", body = Problem),
        (status = 403, description = "Role may not submit (agents and citizens may)", body = Problem),
        (status = 409, description = "Idempotency key reused for another request", body = Problem),
        (status = 503, description = "Intake unavailable; retry with the same Idempotency-Key", body = Problem),
    ),
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
                    tr!("必须是可打印 ASCII 字符", "must be printable ASCII"),
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
        direct_answer: body.direct_answer.map(|a| DirectAnswer {
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
    let created = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.create_ticket(r).await)
        .await?;
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
    params(("id" = String, Path, format = Uuid, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket; personal data masked", body = TicketView),
        Authenticated,
        (status = 403, description = "Mediators and platform operators; a handler token naming a unit it may not act for (`wrong_unit`)", body = Problem),
        (status = 404, description = "No such ticket in the caller's scope", body = Problem),
        (status = 422, description = "The id is not a ticket id", body = Problem),
        (status = 503, description = "Intake unavailable", body = Problem),
    ),
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
            tr!("必须是诉求的 ID（UUID）", "must be a ticket id (UUID)"),
        ));
    }
    let msg = GetTicketRequest { id: id.clone() };
    let ticket = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.get_ticket(r).await)
        .await?;
    // Intake has answered and enforced the caller's scope; the work order is
    // extra. If dispatch cannot answer, say so instead of failing.
    let mut degraded = Vec::new();
    let order = work_order(&state, &caller, &id, &mut degraded).await?;
    // A unit's handler reads only the tickets of the work orders its unit
    // leads, co-handles or was summoned to: dispatch decides, and when it
    // cannot answer the ticket is not shown rather than shown to anyone.
    if caller.principal.reads_as_unit().is_some() && order.is_none() {
        return Err(if degraded.is_empty() {
            ApiError::not_found(tr!("诉求", "ticket"))
        } else {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                tr!(
                    "后台服务暂不可用，请稍后重试",
                    "a backend service is unavailable; retry shortly"
                ),
            )
        });
    }
    // A refusal about the master (outside the caller's scope) leaves
    // intake's record of its status.
    let master_order = if ticket.merged_into.is_empty() {
        None
    } else {
        work_order(&state, &caller, &ticket.merged_into, &mut degraded)
            .await
            .ok()
            .flatten()
    };
    Ok(Json(compose(Sources {
        requested_id: id,
        ticket,
        order,
        master_order,
        degraded,
    })))
}

/// The work order of ticket `id`, if dispatch has one. If dispatch cannot
/// answer, `degraded` says so and the ticket is served without it.
pub(crate) async fn work_order(
    state: &AppState,
    caller: &Caller,
    id: &str,
    degraded: &mut Vec<String>,
) -> Result<Option<WorkOrder>, ApiError> {
    let msg = GetWorkOrderByTicketRequest {
        ticket_id: id.to_owned(),
    };
    match state
        .dispatch(caller)
        .retried(msg, async |mut c, r| c.get_work_order_by_ticket(r).await)
        .await
    {
        Ok(o) => Ok(Some(o)),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s)
            if is_transport_failure(&s)
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

// A ticket's number and status: the answer of the writes on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketStatus {
    pub id: String,
    pub tracking_no: String,
    pub status: String,
}

impl From<Ticket> for TicketStatus {
    fn from(t: Ticket) -> Self {
        Self {
            id: t.id,
            tracking_no: t.tracking_no,
            status: t.status,
        }
    }
}
