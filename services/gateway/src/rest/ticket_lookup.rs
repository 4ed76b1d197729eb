//! One lookup (一号查询): `GET /api/v1/tickets` finds tickets by tracking
//! number, caller phone, dates, status, category, unit, channel and region
//! for staff (a unit's handler: its unit's), and lists a citizen's own.

use jiesu_proto::{
    dispatch::ListWorkOrdersRequest,
    intake::{ListTicketsRequest, TicketSummary},
    time::to_timestamp,
};

use super::{at, prelude::*};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    /// A tracking number, e.g. `370202-20261202-00001`.
    pub tracking_no: Option<String>,
    /// The caller's phone (staff only); matched by its blind index, and the
    /// lookup is recorded as a read of personal data.
    pub phone: Option<String>,
    /// Created at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Created at or before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    pub status: Option<String>,
    pub category: Option<String>,
    /// The lead unit.
    pub unit_id: Option<String>,
    pub channel: Option<String>,
    /// A region and everything below it.
    pub region_code: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketSummaryView {
    pub id: String,
    pub tracking_no: String,
    pub status: String,
    pub channel: String,
    pub category: String,
    pub category_name: String,
    pub region_code: String,
    pub created_at: Option<DateTime<Utc>>,
    /// The first 100 characters, phone and ID numbers redacted.
    pub content: String,
    /// Masked, e.g. `138****8000`; `（保密）` for a confidential caller.
    pub phone: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub unit_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub unit_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub merged_into: String,
}

impl From<TicketSummary> for TicketSummaryView {
    fn from(t: TicketSummary) -> Self {
        Self {
            id: t.id,
            tracking_no: t.tracking_no,
            status: t.status,
            channel: t.channel,
            category: t.category,
            category_name: t.category_name,
            region_code: t.region_code,
            created_at: at(t.created_at),
            content: t.content,
            phone: t.phone,
            unit_id: t.unit_id,
            unit_name: t.unit_name,
            merged_into: t.merged_into,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketPage {
    /// Newest first.
    pub tickets: Vec<TicketSummaryView>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// A unit's handler reads as its unit: dispatch, which knows the units,
/// refuses a token naming one the account may not act for (`wrong_unit`),
/// for the reads of services that do not know units as for the others
/// (decision 0026).
pub(crate) async fn acts_for_its_unit(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    if caller
        .principal
        .reads_as_unit()
        .is_some_and(|u| !u.is_empty())
    {
        let msg = ListWorkOrdersRequest {
            queue: "mine".into(),
            page_size: 1,
            ..Default::default()
        };
        state
            .dispatch(caller)
            .retried(msg, async |mut c, r| c.list_work_orders(r).await)
            .await?;
    }
    Ok(())
}

/// Find tickets (staff, inside their scope) or list one's own (citizen).
#[utoipa::path(
    get,
    path = "/api/v1/tickets",
    tag = "tickets",
    params(LookupQuery),
    responses(
        (status = 200, description = "A page of tickets, newest first", body = TicketPage),
        Authenticated,
        (status = 403, description = "Not an agent, dispatcher, supervisor, tenant admin, handler or citizen; or a handler token naming a unit it may not act for (`wrong_unit`)", body = Problem),
        (status = 422, description = "A filter is invalid; `field` names it", body = Problem),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn list_tickets(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<LookupQuery>, QueryRejection>,
) -> Result<Json<TicketPage>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    acts_for_its_unit(&state, &caller).await?;
    let msg = ListTicketsRequest {
        tracking_no: q.tracking_no.unwrap_or_default(),
        phone: q.phone.unwrap_or_default(),
        from: q.from.map(to_timestamp),
        to: q.to.map(to_timestamp),
        status: q.status.unwrap_or_default(),
        category: q.category.unwrap_or_default(),
        unit_id: q.unit_id.unwrap_or_default(),
        channel: q.channel.unwrap_or_default(),
        region_code: q.region_code.unwrap_or_default(),
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
    };
    let r = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.list_tickets(r).await)
        .await?;
    Ok(Json(TicketPage {
        tickets: r.tickets.into_iter().map(Into::into).collect(),
        next_page_token: (!r.next_page_token.is_empty()).then_some(r.next_page_token),
    }))
}
