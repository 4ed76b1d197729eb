//! 并件: finding the earlier open tickets that are likely the same problem,
//! merging a ticket into one of them (automatically for the clear case at
//! intake, or by an agent), and unmerging.
//!
//! Candidates come from index-driven look-ups inside the window (same
//! category, same caller, same address), scored by `domain::duplicates`, so
//! the cost follows the window's size, not the history's. Only open tickets
//! that are not themselves merged can be masters.

use chrono::{DateTime, Utc};
use jiesu_auth::{Principal, Role};
use jiesu_pii::redact_text;
use jiesu_proto::{
    intake::{
        DuplicateCandidate, FindDuplicatesRequest, FindDuplicatesResponse, MergeTicketRequest,
        Ticket, TicketMerged, TicketUnmerged, UnmergeTicketRequest,
    },
    time::to_timestamp,
};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Set, TransactionTrait,
};
use uuid::Uuid;

use super::{Core, IntakeError, citizen::MAX_REASON_CHARS};
use crate::{
    domain::{
        self, check_text,
        duplicates::{Report, Rules, shingles},
        parse_id,
    },
    store::{self, stmt, ticket_events, tickets},
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

fn actor(who: &Principal) -> &'static str {
    FINDERS
        .iter()
        .find(|r| who.has_role(**r))
        .map_or("agent", |r| r.as_str())
}

/// Locks rows in id order, so two merges of the same pair cannot deadlock.
async fn lock<C: ConnectionTrait>(conn: &C, ids: &[Uuid]) -> Result<(), IntakeError> {
    let ids: Vec<Uuid> = ids.to_vec();
    conn.execute_raw(stmt(
        "SELECT 1 FROM (SELECT id FROM tickets WHERE id = ANY($1) ORDER BY id FOR UPDATE) l",
        vec![ids.into()],
    ))
    .await?;
    Ok(())
}

/// Who merged and why, for the timelines and the event.
pub struct MergedBy<'a> {
    /// By a rule rather than a person.
    pub automatic: bool,
    pub actor: &'a str,
    /// Why (zh-CN), shown on both timelines.
    pub how: &'a str,
}

fn refused(code: &'static str, message: String) -> IntakeError {
    IntakeError::MergeRefused { code, message }
}

async fn note<C: ConnectionTrait>(
    conn: &C,
    t: &tickets::Model,
    event: &str,
    actor: &str,
    note: String,
    at: DateTime<Utc>,
) -> Result<(), IntakeError> {
    ticket_events::ActiveModel {
        ticket_id: Set(t.id),
        tenant: Set(t.tenant.clone()),
        at: Set(at),
        event: Set(event.into()),
        actor_role: Set(actor.into()),
        note: Set(note),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
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
        let id = parse_id("ticket_id", &req.ticket_id)?;
        let t = store::find_visible_ticket(&self.db, who, id)
            .await?
            .ok_or(IntakeError::NotFound("ticket"))?;
        let found = self
            .duplicates_of(&self.db, &t.tenant, &report(&t), Some(t.id))
            .await?;
        Ok(FindDuplicatesResponse {
            candidates: found.candidates,
            compared: i32::try_from(found.compared).unwrap_or(i32::MAX),
        })
    }

    /// Writes what a merge of `t` (already marked merged) into `master`
    /// leaves behind: both timelines (saying `how`, zh-CN) and
    /// `ticket.merged`.
    pub(crate) async fn record_merge<C: ConnectionTrait>(
        &self,
        conn: &C,
        t: &tickets::Model,
        master: &tickets::Model,
        by: MergedBy<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), IntakeError> {
        let MergedBy {
            automatic,
            actor,
            how,
        } = by;
        note(
            conn,
            t,
            "merged",
            actor,
            format!("并入 {}（{how}），随主件办理", master.tracking_no),
            at,
        )
        .await?;
        note(
            conn,
            master,
            "merged_in",
            actor,
            format!("{} 并入本件（{how}）", t.tracking_no),
            at,
        )
        .await?;
        self.outbox
            .enqueue(
                conn,
                &TicketMerged {
                    ticket_id: t.id.to_string(),
                    tenant: t.tenant.clone(),
                    tracking_no: t.tracking_no.clone(),
                    master_id: master.id.to_string(),
                    master_tracking_no: master.tracking_no.clone(),
                    automatic,
                    forwarded: t.forwarded,
                    actor_role: actor.into(),
                    at: Some(to_timestamp(at)),
                    channel: t.channel.clone(),
                },
            )
            .await?;
        Ok(())
    }

    /// The master a new ticket may be merged into at once: the clear case,
    /// locked and still open and unmerged.
    pub(crate) async fn lock_master<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: Uuid,
    ) -> Result<Option<tickets::Model>, IntakeError> {
        lock(conn, &[id]).await?;
        Ok(tickets::Entity::find_by_id(id)
            .one(conn)
            .await?
            .filter(|m| !domain::is_closed(&m.status) && m.merged_into.is_none()))
    }

    pub async fn merge(
        &self,
        who: &Principal,
        req: &MergeTicketRequest,
    ) -> Result<Ticket, IntakeError> {
        who.require_any(FINDERS)?;
        let id = parse_id("ticket_id", &req.ticket_id)?;
        let master_id = parse_id("master_id", &req.master_id)?;
        if id == master_id {
            return Err(
                domain::bad("master_id", "must be another ticket than the one merged").into(),
            );
        }
        let remark = check_text("note", &req.note, MAX_REASON_CHARS, false)?;
        let now = Utc::now();
        let txn = self.db.begin().await?;
        lock(&txn, &[id, master_id]).await?;
        let t = store::find_visible_ticket(&txn, who, id)
            .await?
            .ok_or(IntakeError::NotFound("ticket"))?;
        let master = store::find_visible_ticket(&txn, who, master_id)
            .await?
            .filter(|m| m.tenant == t.tenant)
            .ok_or(IntakeError::NotFound("master ticket"))?;
        if domain::is_closed(&t.status) {
            return Err(IntakeError::Closed(t.status));
        }
        if let Some(into) = t.merged_into {
            return Err(refused(
                "already_merged",
                format!("the ticket is already merged (into {into}); unmerge it first"),
            ));
        }
        let children = store::merged_into(&txn, t.id).await?;
        if !children.is_empty() {
            return Err(refused(
                "has_merged_tickets",
                format!(
                    "{} ticket(s) are merged into this one; merge the other way round or unmerge them first",
                    children.len()
                ),
            ));
        }
        if domain::is_closed(&master.status) {
            return Err(refused(
                "master_closed",
                format!(
                    "the master ticket is {} and takes no more merges",
                    master.status
                ),
            ));
        }
        if let Some(into) = master.merged_into {
            return Err(refused(
                "master_merged",
                format!("the master ticket is itself merged into {into}; merge into that one"),
            ));
        }
        let mut row = t.clone().into_active_model();
        row.status = Set(domain::STATUS_MERGED.into());
        row.merged_into = Set(Some(master.id));
        row.merged_at = Set(Some(now));
        row.updated_at = Set(now);
        let merged = row.update(&txn).await?;
        let how = if remark.is_empty() {
            "人工并件".to_owned()
        } else {
            format!("人工并件：{}", redact_text(&remark))
        };
        let by = MergedBy {
            automatic: false,
            actor: actor(who),
            how: &how,
        };
        self.record_merge(&txn, &merged, &master, by, now).await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(ticket_id = %id, master_id = %master.id, "ticket merged");
        self.get(who, &id.to_string()).await
    }

    pub async fn unmerge(
        &self,
        who: &Principal,
        req: &UnmergeTicketRequest,
    ) -> Result<Ticket, IntakeError> {
        who.require_any(FINDERS)?;
        let id = parse_id("ticket_id", &req.ticket_id)?;
        let reason = check_text("reason", &req.reason, MAX_REASON_CHARS, true)?;
        let now = Utc::now();
        let txn = self.db.begin().await?;
        lock(&txn, &[id]).await?;
        let t = store::find_visible_ticket(&txn, who, id)
            .await?
            .ok_or(IntakeError::NotFound("ticket"))?;
        if t.merged_into.is_none() || t.status != domain::STATUS_MERGED {
            return Err(refused(
                "not_merged",
                format!("the ticket is {}, not merged", t.status),
            ));
        }
        let note_text = format!("撤销并件：{}", redact_text(&reason));
        self.split_off(&txn, &t, actor(who), &reason, &note_text, now)
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(ticket_id = %id, "ticket unmerged");
        self.get(who, &id.to_string()).await
    }

    /// Makes merged ticket `t` stand on its own again: status received,
    /// both timelines, `ticket.unmerged`, and `ticket.received` if dispatch
    /// never had it.
    pub(crate) async fn split_off<C: ConnectionTrait>(
        &self,
        conn: &C,
        t: &tickets::Model,
        actor: &str,
        reason: &str,
        note_text: &str,
        at: DateTime<Utc>,
    ) -> Result<(), IntakeError> {
        let master_id = t
            .merged_into
            .ok_or(IntakeError::NotFound("master ticket"))?;
        let master = tickets::Entity::find_by_id(master_id)
            .one(conn)
            .await?
            .ok_or(IntakeError::NotFound("master ticket"))?;
        let mut row = t.clone().into_active_model();
        row.status = Set(domain::STATUS_RECEIVED.into());
        row.merged_into = Set(None);
        row.merged_at = Set(None);
        row.forwarded = Set(true);
        row.updated_at = Set(at);
        let own = row.update(conn).await?;
        note(conn, &own, "unmerged", actor, note_text.to_owned(), at).await?;
        note(
            conn,
            &master,
            "unmerged_out",
            actor,
            format!("{} 撤销并件，转为单独办理", t.tracking_no),
            at,
        )
        .await?;
        self.outbox
            .enqueue(
                conn,
                &TicketUnmerged {
                    ticket_id: t.id.to_string(),
                    tenant: t.tenant.clone(),
                    tracking_no: t.tracking_no.clone(),
                    former_master_id: master.id.to_string(),
                    reason_redacted: redact_text(reason),
                    actor_role: actor.into(),
                    at: Some(to_timestamp(at)),
                },
            )
            .await?;
        if !t.forwarded {
            let category_name = store::category_for_ticket(conn, &own.tenant, &own.category)
                .await?
                .map(|(c, _)| c.name)
                .unwrap_or_default();
            self.outbox
                .enqueue(conn, &super::accept::received_event(&own, &category_name))
                .await?;
        }
        Ok(())
    }

    /// When a master is withdrawn its merged tickets still stand for their
    /// callers: the oldest becomes the master of the rest.
    pub(crate) async fn promote_merged<C: ConnectionTrait>(
        &self,
        conn: &C,
        master: &tickets::Model,
        at: DateTime<Utc>,
    ) -> Result<(), IntakeError> {
        let found = store::merged_into(conn, master.id).await?;
        if found.is_empty() {
            return Ok(());
        }
        // Locked, then read again: a concurrent unmerge may have taken one.
        let ids: Vec<Uuid> = found.iter().map(|c| c.id).collect();
        lock(conn, &ids).await?;
        let children = store::merged_into(conn, master.id).await?;
        let Some((first, rest)) = children.split_first() else {
            return Ok(());
        };
        let text = format!("主件 {} 已撤回，本件转为单独办理", master.tracking_no);
        self.split_off(conn, first, "system", "主件已撤回", &text, at)
            .await?;
        let new_master = tickets::Entity::find_by_id(first.id)
            .one(conn)
            .await?
            .ok_or(IntakeError::NotFound("ticket"))?;
        for c in rest {
            let mut row = c.clone().into_active_model();
            row.merged_into = Set(Some(new_master.id));
            row.merged_at = Set(Some(at));
            row.updated_at = Set(at);
            let moved = row.update(conn).await?;
            let how = format!("原主件 {} 已撤回", master.tracking_no);
            let by = MergedBy {
                automatic: true,
                actor: "system",
                how: &how,
            };
            self.record_merge(conn, &moved, &new_master, by, at).await?;
        }
        Ok(())
    }
}
