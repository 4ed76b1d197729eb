//! `/api/v1/track`: a request's progress for anyone holding its tracking
//! number and the phone's last four digits. No token; a low per-address
//! rate keeps the digits from being guessed.

use jiesu_proto::{intake::TrackTicketRequest, time::from_timestamp};

use super::prelude::*;
use crate::ratelimit::Peer;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(track))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrackQuery {
    /// 受理编号, e.g. `370202-20261122-00042`.
    #[param(pattern = "^[0-9]{6}-[0-9]{8}-[0-9]{5,}$")]
    pub tracking_no: String,
    /// Last four digits of the phone given with the request.
    #[param(pattern = "^[0-9]{4}$")]
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
    /// Intake's own steps and the work order's public ones (派单, 签收,
    /// 办结, 归档, 重办), oldest first.
    pub timeline: Vec<PublicTimelineItem>,
    /// The unit's reply once the request is resolved (phone and ID numbers
    /// redacted); empty before, and again after a reopen.
    pub reply: String,
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
        (status = 422, response = InvalidQuery),
        (status = 429, response = RateLimited),
    ),
    security(()),
)]
pub async fn track(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    query: Result<Query<TrackQuery>, QueryRejection>,
) -> Result<Json<Tracking>, ApiError> {
    state.limits.check_lookup(&headers, peer)?;
    let Query(q) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            tr!(
                "请给出 tracking_no 和 phone_last4",
                "give tracking_no and phone_last4"
            ),
        )
    })?;
    let msg = TrackTicketRequest {
        tracking_no: q.tracking_no,
        phone_last4: q.phone_last4,
    };
    let resp = state
        .public()
        .retried(msg, async |mut c, r| c.track_ticket(r).await)
        .await?;
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
        reply: resp.reply,
    }))
}
