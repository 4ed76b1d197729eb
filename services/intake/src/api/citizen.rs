//! The citizen's side of a ticket: adding information, withdrawing, and the
//! public tracking look-up (tracking number + last four phone digits).

use chrono::Utc;
use jiesu_auth::{Principal, Role};
use jiesu_common::tr;
use jiesu_pii::redact_text;
use jiesu_proto::{
    intake::{
        AddInformationRequest, PublicTimelineEntry, Ticket, TicketInformationAdded,
        TicketWithdrawn, TrackTicketRequest, TrackTicketResponse, WithdrawTicketRequest,
    },
    time::to_timestamp,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel,
    QueryFilter, Set, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::{Core, IntakeError};
use crate::{
    domain::{self, bad, check_text, parse_id},
    store::{self, ticket_events, tickets},
};

pub const MAX_SUPPLEMENT_CHARS: usize = 2000;
pub const MAX_REASON_CHARS: usize = 500;
const ACTORS: &[Role] = &[Role::Citizen, Role::Agent];

fn actor(who: &Principal) -> &'static str {
    if who.has_role(Role::Agent) {
        Role::Agent.as_str()
    } else {
        Role::Citizen.as_str()
    }
}

impl Core {
    /// The open ticket the caller may act on, locked for the change.
    async fn open_ticket_for_update<C: ConnectionTrait>(
        &self,
        conn: &C,
        who: &Principal,
        id: Uuid,
    ) -> Result<tickets::Model, IntakeError> {
        who.require_any(ACTORS)?;
        let t = store::find_visible_ticket(conn, who, id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE",
            [id.into()],
        ))
        .await?;
        let t = tickets::Entity::find_by_id(t.id)
            .one(conn)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        if domain::is_closed(&t.status) {
            return Err(IntakeError::Closed(t.status));
        }
        Ok(t)
    }

    pub async fn add_information(
        &self,
        who: &Principal,
        req: &AddInformationRequest,
    ) -> Result<Ticket, IntakeError> {
        let id = parse_id("ticket_id", &req.ticket_id, &tr!("诉求", "a ticket"))?;
        let text = check_text("text", &req.text, MAX_SUPPLEMENT_CHARS, true)?;
        let now = Utc::now();
        let redacted = redact_text(&text);
        let txn = self.db.begin().await?;
        let t = self.open_ticket_for_update(&txn, who, id).await?;
        let sealed = self
            .keyring
            .encrypt(&text, &format!("ticket_supplements.text:{id}"))?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO ticket_supplements (ticket_id, at, actor_role, text_redacted, text_enc) \
             VALUES ($1, $2, $3, $4, $5)",
            [
                id.into(),
                now.into(),
                actor(who).into(),
                redacted.clone().into(),
                sealed.into(),
            ],
        ))
        .await?;
        self.record(
            &txn,
            &t,
            "information_added",
            actor(who),
            "市民补充了诉求信息",
            now,
        )
        .await?;
        self.outbox
            .enqueue(
                &txn,
                &TicketInformationAdded {
                    ticket_id: id.to_string(),
                    tenant: t.tenant.clone(),
                    tracking_no: t.tracking_no.clone(),
                    text_redacted: redacted,
                    actor_role: actor(who).into(),
                    at: Some(to_timestamp(now)),
                },
            )
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        self.get(who, &id.to_string()).await
    }

    pub async fn withdraw(
        &self,
        who: &Principal,
        req: &WithdrawTicketRequest,
    ) -> Result<Ticket, IntakeError> {
        let id = parse_id("ticket_id", &req.ticket_id, &tr!("诉求", "a ticket"))?;
        let reason = check_text("reason", &req.reason, MAX_REASON_CHARS, false)?;
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let t = self.open_ticket_for_update(&txn, who, id).await?;
        let mut row = t.clone().into_active_model();
        row.status = Set(domain::STATUS_WITHDRAWN.into());
        row.updated_at = Set(now);
        row.update(&txn).await?;
        let note = if reason.is_empty() {
            "诉求人撤回诉求".to_owned()
        } else {
            format!("诉求人撤回诉求：{}", redact_text(&reason))
        };
        self.record(&txn, &t, "withdrawn", actor(who), &note, now)
            .await?;
        self.promote_merged(&txn, &t, now).await?;
        self.outbox
            .enqueue(
                &txn,
                &TicketWithdrawn {
                    ticket_id: id.to_string(),
                    tenant: t.tenant.clone(),
                    tracking_no: t.tracking_no.clone(),
                    reason_redacted: redact_text(&reason),
                    actor_role: actor(who).into(),
                    at: Some(to_timestamp(now)),
                },
            )
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(ticket_id = %id, "ticket withdrawn");
        self.get(who, &id.to_string()).await
    }

    async fn record<C: ConnectionTrait>(
        &self,
        conn: &C,
        t: &tickets::Model,
        event: &str,
        actor: &str,
        note: &str,
        at: chrono::DateTime<Utc>,
    ) -> Result<(), IntakeError> {
        ticket_events::ActiveModel {
            ticket_id: Set(t.id),
            tenant: Set(t.tenant.clone()),
            at: Set(at),
            event: Set(event.into()),
            actor_role: Set(actor.into()),
            note: Set(note.into()),
            ..Default::default()
        }
        .insert(conn)
        .await?;
        Ok(())
    }

    /// Status and public timeline for whoever knows the tracking number and
    /// the phone's last four digits. A wrong pair is "not found", exactly
    /// like an unknown number, so the answer tells nothing.
    pub async fn track(
        &self,
        req: &TrackTicketRequest,
    ) -> Result<TrackTicketResponse, IntakeError> {
        let no = req.tracking_no.trim();
        let last4 = req.phone_last4.trim();
        if no.is_empty() || no.len() > 40 {
            return Err(bad(
                "tracking_no",
                tr!(
                    "必填（如 370202-20261122-00042）",
                    "is required (e.g. 370202-20261122-00042)"
                ),
            )
            .into());
        }
        if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "phone_last4",
                tr!(
                    "必须是电话号码的后 4 位",
                    "must be the last 4 digits of the phone"
                ),
            )
            .into());
        }
        // One snapshot: the status, the steps and the reply agree even while
        // a step is being applied.
        let read = self
            .db
            .begin_with_config(
                Some(sea_orm::IsolationLevel::RepeatableRead),
                Some(sea_orm::AccessMode::ReadOnly),
            )
            .await?;
        let t = tickets::Entity::find()
            .filter(tickets::Column::TrackingNo.eq(no))
            .one(&read)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        let phone = match &t.citizen_phone_enc {
            Some(sealed) => self
                .keyring
                .decrypt(sealed, &format!("tickets.citizen_phone:{}", t.id))?,
            None => return Err(IntakeError::NotFound(tr!("诉求", "ticket"))),
        };
        if !phone.ends_with(last4) {
            return Err(IntakeError::NotFound(tr!("诉求", "ticket")));
        }
        // A merged ticket follows its master: status, steps and reply.
        let master = match t.merged_into.filter(|_| t.status == domain::STATUS_MERGED) {
            Some(m) => tickets::Entity::find_by_id(m).one(&read).await?,
            None => None,
        };
        let followed = master.as_ref().unwrap_or(&t);
        let status = followed.status.clone();
        let reply = followed.reply.clone();
        let progress = store::progress(&read, followed).await?;
        let category_name = store::category_for_ticket(&read, &t.tenant, &t.category)
            .await?
            .map(|(c, _)| c.name)
            .unwrap_or_default();
        let mut timeline: Vec<(chrono::DateTime<chrono::Utc>, PublicTimelineEntry)> =
            store::timeline(&read, &t)
                .await?
                .into_iter()
                .map(|e| (e.at, e.event, e.note))
                .chain(progress.into_iter().map(|p| (p.at, p.step, p.note)))
                .map(|(at, event, note)| {
                    let entry = PublicTimelineEntry {
                        at: Some(to_timestamp(at)),
                        event,
                        note,
                    };
                    (at, entry)
                })
                .collect();
        // Intake's own entries and the work order's steps, by time (stable:
        // a step at the same moment comes after intake's entry).
        timeline.sort_by_key(|(at, _)| *at);
        read.commit().await?;
        Ok(TrackTicketResponse {
            tracking_no: t.tracking_no,
            status,
            category_name,
            created_at: Some(to_timestamp(t.created_at)),
            timeline: timeline.into_iter().map(|(_, e)| e).collect(),
            reply,
        })
    }
}
