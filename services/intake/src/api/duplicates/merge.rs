//! Merging a ticket into an earlier open one (automatically for the clear
//! case at intake, or by an agent), unmerging it, and handing a withdrawn
//! master's merged tickets to the oldest of them: rows locked in id order,
//! both timelines, and `ticket.merged` / `ticket.unmerged`.

use chrono::{DateTime, Utc};
use jiesu_auth::Principal;
use jiesu_common::{Text, tr};
use jiesu_pii::redact_text;
use jiesu_proto::{
    intake::{MergeTicketRequest, Ticket, TicketMerged, TicketUnmerged, UnmergeTicketRequest},
    time::to_timestamp,
};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Set, TransactionTrait,
};
use uuid::Uuid;

use super::FINDERS;
use crate::{
    api::{Core, IntakeError, accept, citizen::MAX_REASON_CHARS},
    domain::{self, check_text, parse_id},
    store::{self, stmt, ticket_events, tickets},
};

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

fn refused(code: &'static str, message: Text) -> IntakeError {
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

impl Core {
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
                    received_at: Some(to_timestamp(t.created_at)),
                    nature: t.nature.clone(),
                    category: t.category.clone(),
                    category_name: String::new(),
                    region_code: t.region_code.clone(),
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
        let id = parse_id("ticket_id", &req.ticket_id, &tr!("诉求", "a ticket"))?;
        let master_id = parse_id("master_id", &req.master_id, &tr!("诉求", "a ticket"))?;
        if id == master_id {
            return Err(domain::bad(
                "master_id",
                tr!(
                    "必须是被并件诉求以外的另一件诉求",
                    "must be another ticket than the one merged"
                ),
            )
            .into());
        }
        let remark = check_text("note", &req.note, MAX_REASON_CHARS, false)?;
        let now = Utc::now();
        let txn = self.db.begin().await?;
        lock(&txn, &[id, master_id]).await?;
        let t = store::find_visible_ticket(&txn, who, id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        let master = store::find_visible_ticket(&txn, who, master_id)
            .await?
            .filter(|m| m.tenant == t.tenant)
            .ok_or_else(|| IntakeError::NotFound(tr!("主件", "master ticket")))?;
        if domain::is_closed(&t.status) {
            return Err(IntakeError::Closed(t.status));
        }
        if let Some(into) = t.merged_into {
            return Err(refused(
                "already_merged",
                tr!(
                    "该诉求已并入 {into}，请先撤销并件",
                    "the ticket is already merged (into {into}); unmerge it first"
                ),
            ));
        }
        let children = store::merged_into(&txn, t.id).await?;
        if !children.is_empty() {
            return Err(refused(
                "has_merged_tickets",
                tr!(
                    "已有 {} 件诉求并入该诉求；请反向并件，或先撤销它们的并件",
                    "{} ticket(s) are merged into this one; merge the other way round or unmerge them first",
                    children.len()
                ),
            ));
        }
        if domain::is_closed(&master.status) {
            return Err(refused("master_closed", {
                let zh = domain::status_zh(&master.status);
                let en = &master.status;
                tr!(
                    "主件{zh}，不能再并入诉求",
                    "the master ticket is {en} and takes no more merges"
                )
            }));
        }
        if let Some(into) = master.merged_into {
            return Err(refused(
                "master_merged",
                tr!(
                    "主件本身已并入 {into}，请并入该诉求",
                    "the master ticket is itself merged into {into}; merge into that one"
                ),
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
        let id = parse_id("ticket_id", &req.ticket_id, &tr!("诉求", "a ticket"))?;
        let reason = check_text("reason", &req.reason, MAX_REASON_CHARS, true)?;
        let now = Utc::now();
        let txn = self.db.begin().await?;
        lock(&txn, &[id]).await?;
        let t = store::find_visible_ticket(&txn, who, id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        if t.merged_into.is_none() || t.status != domain::STATUS_MERGED {
            return Err(refused("not_merged", {
                let zh = domain::status_zh(&t.status);
                let en = &t.status;
                tr!("该诉求{zh}，并未并件", "the ticket is {en}, not merged")
            }));
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
            .ok_or_else(|| IntakeError::NotFound(tr!("主件", "master ticket")))?;
        let master = tickets::Entity::find_by_id(master_id)
            .one(conn)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("主件", "master ticket")))?;
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
            let path = store::category_path(conn, &own.tenant, &own.category).await?;
            self.outbox
                .enqueue(conn, &accept::received_event(&own, &category_name, &path))
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
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
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
