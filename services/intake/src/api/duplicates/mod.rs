//! 并件: finding the earlier open tickets that are likely the same problem,
//! merging a ticket into one of them (automatically for the clear case at
//! intake, or by an agent), and unmerging.
//!
//! Candidates come from index-driven look-ups inside the window (same
//! category, same caller, same address), scored by `domain::duplicates`, so
//! the cost follows the window's size, not the history's. Only open tickets
//! that are not themselves merged can be masters.
//!
//! Here: the candidates; merging and unmerging are in `merge`.

mod merge;

use chrono::{DateTime, Utc};
use jiesu_auth::{Principal, Role};
use jiesu_common::tr;
use jiesu_proto::{
    intake::{DuplicateCandidate, FindDuplicatesRequest, FindDuplicatesResponse},
    time::to_timestamp,
};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

pub use self::merge::MergedBy;
use super::{Core, IntakeError};
use crate::{
    domain::{
        self,
        duplicates::{Report, Rules, shingles},
        parse_id,
    },
    store::{self, stmt, tickets},
};

const FINDERS: &[Role] = &[Role::Agent, Role::Dispatcher, Role::Supervisor];
/// Rows taken from each look-up (category, caller, address).
const PER_LOOKUP: i64 = 500;
const SHOWN: usize = 10;

pub fn report(t: &tickets::Model) -> Report {
    Report {
        text: t.content.clone(),
        category: t.category.clone(),
        point: t.lat.zip(t.lon),
        address_key: t.address_bidx.clone(),
        caller_key: t.citizen_phone_bidx.clone(),
        at: t.created_at,
    }
}

/// The columns of an earlier ticket the check compares: not the sealed
/// personal data, not the attributes.
#[derive(Debug, sea_orm::FromQueryResult)]
struct Earlier {
    id: Uuid,
    tracking_no: String,
    status: String,
    category: String,
    content: String,
    lat: Option<f64>,
    lon: Option<f64>,
    address_bidx: Option<String>,
    citizen_phone_bidx: Option<String>,
    created_at: DateTime<Utc>,
}

/// What the look-up found for one report.
pub struct Found {
    /// Best first, at most `SHOWN`.
    pub candidates: Vec<DuplicateCandidate>,
    /// Earlier tickets compared.
    pub compared: usize,
}

impl Found {
    /// The best clear case (same caller, same problem, within 24 h), if any.
    pub fn clear_case(&self) -> Option<Uuid> {
        self.candidates
            .iter()
            .find(|c| c.clear_case)
            .and_then(|c| Uuid::parse_str(&c.ticket_id).ok())
    }
}

/// Earlier open, unmerged tickets of `tenant` within `window` before
/// `new.at` that are likely the same problem as `new`, scored, best first.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    window: std::time::Duration,
    tenant: &str,
    new: &Report,
    exclude: Option<Uuid>,
) -> Result<Found, IntakeError> {
    let since: DateTime<Utc> =
        new.at - chrono::TimeDelta::from_std(window).unwrap_or(chrono::TimeDelta::days(7));
    let mut excluded: Vec<String> = domain::CLOSED_STATUSES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    excluded.push(domain::STATUS_MERGED.to_owned());
    // Three index-driven look-ups inside the window, each reading the
    // compared columns straight from its rows, united.
    let rows = conn
        .query_all_raw(stmt(
            &format!(
                "({q} AND category = $2 {tail}) UNION ({q} AND citizen_phone_bidx = $5 {tail}) \
                     UNION ({q} AND address_bidx = $6 {tail})",
                q = "SELECT id, tracking_no, status, category, content, lat, lon, \
                           address_bidx, citizen_phone_bidx, created_at FROM tickets \
                         WHERE tenant = $1 AND created_at >= $3 AND created_at <= $4 \
                           AND id IS DISTINCT FROM $7 AND NOT (status = ANY($9))",
                tail = "ORDER BY created_at DESC LIMIT $8",
            ),
            vec![
                tenant.into(),
                new.category.clone().into(),
                since.into(),
                new.at.into(),
                new.caller_key.clone().into(),
                new.address_key.clone().into(),
                exclude.into(),
                PER_LOOKUP.into(),
                excluded.into(),
            ],
        ))
        .await?;
    let earlier: Vec<Earlier> = rows
        .iter()
        .map(|r| <Earlier as sea_orm::FromQueryResult>::from_query_result(r, ""))
        .collect::<Result<_, _>>()?;
    let compared = earlier.len();
    let rules = Rules::default();
    let new_sh = shingles(&new.text);
    let mut candidates: Vec<DuplicateCandidate> = earlier
        .into_iter()
        .filter_map(|o| {
            let old = Report {
                text: o.content,
                category: o.category,
                point: o.lat.zip(o.lon),
                address_key: o.address_bidx,
                caller_key: o.citizen_phone_bidx,
                at: o.created_at,
            };
            let l = rules.compare(new, &new_sh, &old, &shingles(&old.text));
            rules
                .is_candidate(new, &old, &l)
                .then(|| DuplicateCandidate {
                    ticket_id: o.id.to_string(),
                    tracking_no: o.tracking_no,
                    status: o.status,
                    created_at: Some(to_timestamp(o.created_at)),
                    score: l.score,
                    text_likeness: (l.text * 1000.0).round() / 1000.0,
                    same_caller: l.same_caller,
                    clear_case: rules.is_auto_merge(new, &old, &l),
                    reasons: rules.explain(&l),
                    category: old.category,
                })
        })
        .collect();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(SHOWN);
    Ok(Found {
        candidates,
        compared,
    })
}

impl Core {
    /// [`find`] with intake's window.
    pub async fn duplicates_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        new: &Report,
        exclude: Option<Uuid>,
    ) -> Result<Found, IntakeError> {
        find(conn, self.duplicate_window, tenant, new, exclude).await
    }

    pub async fn find_duplicates(
        &self,
        who: &Principal,
        req: &FindDuplicatesRequest,
    ) -> Result<FindDuplicatesResponse, IntakeError> {
        who.require_any(FINDERS)?;
        let id = parse_id("ticket_id", &req.ticket_id, &tr!("诉求", "a ticket"))?;
        let t = store::find_visible_ticket(&self.db, who, id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        let found = self
            .duplicates_of(&self.db, &t.tenant, &report(&t), Some(t.id))
            .await?;
        Ok(FindDuplicatesResponse {
            candidates: found.candidates,
            compared: i32::try_from(found.compared).unwrap_or(i32::MAX),
        })
    }
}
