//! Finding 并件 candidates: the earlier open tickets of the window that
//! share the category, the caller or the address, scored by
//! `domain::duplicates`. Only index-driven look-ups inside the window, so
//! the cost follows the window's size, not the history's.

use chrono::{DateTime, Utc};
use jiesu_auth::{Principal, Role};
use jiesu_proto::{
    intake::{DuplicateCandidate, FindDuplicatesRequest, FindDuplicatesResponse},
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::{Core, IntakeError};
use crate::{
    domain::{
        self,
        duplicates::{Report, Rules, shingles},
        parse_id,
    },
    store::{self, tickets},
};

const FINDERS: &[Role] = &[Role::Agent, Role::Dispatcher, Role::Supervisor];
/// Rows taken from each look-up (category, caller, address).
const PER_LOOKUP: i64 = 500;
const SHOWN: usize = 10;

fn report(t: &tickets::Model) -> Report {
    Report {
        text: t.content.clone(),
        category: t.category.clone(),
        point: t.lat.zip(t.lon),
        address_key: t.address_bidx.clone(),
        caller_key: t.citizen_phone_bidx.clone(),
        at: t.created_at,
    }
}

impl Core {
    pub async fn find_duplicates(
        &self,
        who: &Principal,
        req: &FindDuplicatesRequest,
    ) -> Result<FindDuplicatesResponse, IntakeError> {
        who.require_any(FINDERS)?;
        let id = parse_id("ticket_id", &req.ticket_id, "a ticket")?;
        let t = store::find_visible_ticket(&self.db, who, id)
            .await?
            .ok_or(IntakeError::NotFound("ticket"))?;
        let since: DateTime<Utc> = t.created_at
            - chrono::TimeDelta::from_std(self.duplicate_window)
                .unwrap_or(chrono::TimeDelta::days(7));
        let closed: Vec<String> = domain::CLOSED_STATUSES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        // Three index-driven look-ups inside the window, united.
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT * FROM tickets WHERE id IN ( \
                   (SELECT id FROM tickets WHERE tenant = $1 AND category = $2 \
                      AND created_at >= $3 AND created_at <= $4 ORDER BY created_at DESC LIMIT $8) \
                   UNION (SELECT id FROM tickets WHERE tenant = $1 AND citizen_phone_bidx = $5 \
                      AND created_at >= $3 AND created_at <= $4 LIMIT $8) \
                   UNION (SELECT id FROM tickets WHERE tenant = $1 AND address_bidx = $6 \
                      AND created_at >= $3 AND created_at <= $4 LIMIT $8)) \
                 AND id <> $7 AND NOT (status = ANY($9))",
                [
                    t.tenant.clone().into(),
                    t.category.clone().into(),
                    since.into(),
                    t.created_at.into(),
                    t.citizen_phone_bidx.clone().into(),
                    t.address_bidx.clone().into(),
                    t.id.into(),
                    PER_LOOKUP.into(),
                    closed.into(),
                ],
            ))
            .await?;
        let earlier: Vec<tickets::Model> = rows
            .iter()
            .map(|r| <tickets::Model as sea_orm::FromQueryResult>::from_query_result(r, ""))
            .collect::<Result<_, _>>()?;
        let rules = Rules::default();
        let new = report(&t);
        let new_sh = shingles(&new.text);
        let mut candidates: Vec<DuplicateCandidate> = earlier
            .iter()
            .filter_map(|o| {
                let old = report(o);
                let l = rules.compare(&new, &new_sh, &old, &shingles(&old.text));
                rules
                    .is_candidate(&new, &old, &l)
                    .then(|| DuplicateCandidate {
                        ticket_id: o.id.to_string(),
                        tracking_no: o.tracking_no.clone(),
                        status: o.status.clone(),
                        category: o.category.clone(),
                        created_at: Some(to_timestamp(o.created_at)),
                        score: l.score,
                        text_likeness: (l.text * 1000.0).round() / 1000.0,
                        same_caller: l.same_caller,
                        clear_case: rules.is_auto_merge(&new, &old, &l),
                        reasons: l.reasons,
                    })
            })
            .collect();
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        candidates.truncate(SHOWN);
        Ok(FindDuplicatesResponse {
            candidates,
            compared: earlier.len() as i32,
        })
    }
}
