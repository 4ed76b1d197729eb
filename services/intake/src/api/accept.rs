//! The one way a ticket is accepted, whoever submits it.

use chrono::Utc;
use jiesu_auth::{Principal, Role};
use jiesu_pii::redact_text;
use jiesu_proto::{
    common::GeoPoint,
    intake::{CreateTicketRequest, CreateTicketResponse, DuplicateCandidate, TicketReceived},
    time::to_timestamp,
};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, Set, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use super::{Core, IntakeError, duplicates::MergedBy};
use crate::{
    domain::{
        self, FieldError, ValidTicket, attributes, bad, duplicates::Report, webhook::Refusal,
    },
    store::{self, categories, ticket_events, tickets},
};

/// Who submits, as intake records it.
#[derive(Debug, Clone)]
pub struct Submitter {
    pub tenant: String,
    /// The JWT `sub`, or `channel:<id>` for a registered channel.
    pub sub: String,
    /// `agent`, `citizen` or `channel`: the timeline's actor.
    pub actor: &'static str,
    pub channel_id: Option<Uuid>,
}

impl Submitter {
    pub fn person(who: &Principal) -> Self {
        Self {
            tenant: who.tenant.code().to_owned(),
            sub: who.sub.clone(),
            actor: if who.has_role(Role::Agent) {
                Role::Agent.as_str()
            } else {
                Role::Citizen.as_str()
            },
            channel_id: None,
        }
    }

    pub fn channel(tenant: &str, channel_id: Uuid) -> Self {
        Self {
            tenant: tenant.to_owned(),
            sub: format!("channel:{channel_id}"),
            actor: "channel",
            channel_id: Some(channel_id),
        }
    }
}

/// What a channel adds to a ticket besides its content.
#[derive(Debug, Default)]
pub struct Extras {
    /// The sending system's id (webhook): a redelivery is the same ticket.
    pub external_id: Option<String>,
    /// The webhook nonce, recorded in the ticket's transaction.
    pub nonce: Option<String>,
    /// Issue an Open311 token.
    pub public_token: bool,
    /// Open311 account_id, device_id, email, media_url (stored encrypted).
    pub client_meta: Option<serde_json::Value>,
    /// Answered and closed at intake from the knowledge base.
    pub answer: Option<Answer>,
    /// The level the matter starts at (a grid worker's whistle: L2..L4).
    pub level: Option<String>,
}

/// A direct answer (直接答复) checked against the knowledge base.
#[derive(Debug, Clone)]
pub struct Answer {
    pub kb_entry_id: Uuid,
    pub title: String,
    pub reply: String,
}

/// A ticket accepted now, or an earlier one a retry refers to.
#[derive(Debug)]
pub struct Accepted {
    pub id: Uuid,
    pub tracking_no: String,
    pub status: String,
    pub replayed: bool,
    pub public_token: Option<String>,
    /// 并件 candidates found at acceptance, best first.
    pub duplicates: Vec<DuplicateCandidate>,
    /// The master it was merged into at once (clear case): id, tracking no.
    pub merged_into: Option<(Uuid, String)>,
}

impl From<Accepted> for CreateTicketResponse {
    fn from(a: Accepted) -> Self {
        Self {
            id: a.id.to_string(),
            tracking_no: a.tracking_no,
            status: a.status,
            replayed: a.replayed,
            duplicates: a.duplicates,
            merged_into: a
                .merged_into
                .as_ref()
                .map(|m| m.0.to_string())
                .unwrap_or_default(),
            merged_into_tracking_no: a.merged_into.map(|m| m.1).unwrap_or_default(),
        }
    }
}

fn replay(existing: tickets::Model, hash: &str, err: IntakeError) -> Result<Accepted, IntakeError> {
    if existing.request_hash.as_deref() != Some(hash) {
        return Err(err);
    }
    Ok(Accepted {
        id: existing.id,
        tracking_no: existing.tracking_no,
        status: existing.status,
        replayed: true,
        public_token: existing.public_token,
        duplicates: Vec::new(),
        merged_into: None,
    })
}

impl Core {
    /// An agent or citizen with a JWT.
    pub async fn create_as(
        &self,
        who: &Principal,
        req: &CreateTicketRequest,
    ) -> Result<CreateTicketResponse, IntakeError> {
        who.require_any(&[Role::Agent, Role::Citizen])?;
        let t = domain::validate(req)?;
        if !who.has_role(Role::Agent) && !t.channel.open_to_citizens() {
            return Err(IntakeError::Forbidden(format!(
                "citizens submit through app, wechat, mini_program or photo; channel {} is entered by agents",
                t.channel.as_str()
            )));
        }
        let answer = match &req.direct_answer {
            Some(a) => Some(self.check_direct_answer(who, &t, a).await?),
            None => None,
        };
        let mut accepted = self
            .accept(
                &Submitter::person(who),
                t,
                Extras {
                    answer,
                    ..Extras::default()
                },
            )
            .await?;
        // Other people's tickets are for agents' eyes only.
        if !who.has_role(Role::Agent) {
            accepted.duplicates.clear();
        }
        Ok(accepted.into())
    }

    /// Finds the earlier ticket a retry refers to, by idempotency key or
    /// external id.
    async fn earlier<C: ConnectionTrait>(
        &self,
        conn: &C,
        s: &Submitter,
        t: &ValidTicket,
        x: &Extras,
        hash: &str,
    ) -> Result<Option<Accepted>, IntakeError> {
        if let (Some(ch), Some(ext)) = (s.channel_id, &x.external_id)
            && let Some(existing) = store::find_by_external_id(conn, ch, ext).await?
        {
            return replay(existing, hash, IntakeError::ExternalIdReused).map(Some);
        }
        if let Some(key) = &t.idempotency_key
            && let Some(existing) =
                store::find_by_idempotency_key(conn, &s.tenant, &s.sub, key).await?
        {
            return replay(existing, hash, IntakeError::KeyReused).map(Some);
        }
        Ok(None)
    }

    /// Validates against the tenant's data and stores the ticket, its first
    /// timeline entry and `ticket.received` in one transaction.
    pub async fn accept(
        &self,
        s: &Submitter,
        mut t: ValidTicket,
        x: Extras,
    ) -> Result<Accepted, IntakeError> {
        let hash = domain::request_hash(&t);
        if x.nonce.is_none()
            && let Some(found) = self.earlier(&self.db, s, &t, &x, &hash).await?
        {
            return Ok(found);
        }
        if let Some(rc) = &t.region_code
            && !rc.starts_with(s.tenant.as_str())
        {
            return Err(bad(
                "location.region_code",
                "must lie inside the tenant's region",
            )
            .into());
        }
        let category = self.leaf_category(&s.tenant, &t.category).await?;
        t.attributes = attributes::check(&category.attribute_defs(), &t.attributes)?;
        let txn = self.db.begin().await?;
        if let (Some(ch), Some(nonce)) = (s.channel_id, &x.nonce) {
            if !store::channels::record_nonce(&txn, ch, nonce).await? {
                return Err(IntakeError::Refused(Refusal::NonceReplayed));
            }
            // A redelivery with a fresh nonce: the nonce is spent, the
            // ticket is the earlier one.
            if let Some(found) = self.earlier(&txn, s, &t, &x, &hash).await? {
                txn.commit().await?;
                return Ok(found);
            }
        }
        match self.insert(txn, s, &t, &x, &category, &hash).await {
            Ok(accepted) => {
                self.outbox.wake();
                tracing::info!(ticket_id = %accepted.id, tracking_no = %accepted.tracking_no, tenant = %s.tenant, channel = t.channel.as_str(), "ticket received");
                Ok(accepted)
            }
            // Two concurrent requests with one key or external id: the loser
            // answers with the winner's ticket.
            Err(IntakeError::Db(e))
                if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
            {
                match self.earlier(&self.db, s, &t, &x, &hash).await? {
                    Some(found) => Ok(found),
                    None => Err(IntakeError::Db(e)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The tenant's active leaf category `code`.
    pub async fn leaf_category(
        &self,
        tenant: &str,
        code: &str,
    ) -> Result<categories::Model, IntakeError> {
        let (category, leaf) = store::category_for_ticket(&self.db, tenant, code)
            .await?
            .ok_or_else(|| {
                bad(
                    "category",
                    "is not a category of this tenant (see GET /api/v1/categories)",
                )
            })?;
        if !leaf {
            return Err(FieldError {
                field: "category".into(),
                message: "must be a leaf category, not a group".into(),
            }
            .into());
        }
        Ok(category)
    }

    async fn insert(
        &self,
        txn: DatabaseTransaction,
        s: &Submitter,
        t: &ValidTicket,
        x: &Extras,
        category: &categories::Model,
        hash: &str,
    ) -> Result<Accepted, IntakeError> {
        let now = Utc::now();
        let id = Uuid::now_v7();
        let tenant = s.tenant.clone();
        let aad = |field: &str| format!("tickets.{field}:{id}");
        let seal = |value: &str, field: &str| self.keyring.encrypt(value, &aad(field));
        let sealed = |value: Option<&str>, field: &str| value.map(|v| seal(v, field)).transpose();
        let public_token = if x.public_token {
            Some(domain::credentials::new_public_token()?)
        } else {
            None
        };
        let attributes = serde_json::to_value(
            t.attributes
                .iter()
                .map(|(code, values)| serde_json::json!({"code": code, "values": values}))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();

        let redacted = redact_text(&t.content);
        // A grid worker's whistle has no caller: no key, so it never
        // counts as "the same caller" as anything.
        let caller_key = (!t.citizen_phone.is_empty())
            .then(|| self.keyring.blind_index("phone", &t.citizen_phone));
        let address_key = t
            .address
            .as_deref()
            .map(|a| self.keyring.blind_index("address", a));
        // 并件 on every new ticket (not on one answered and closed here).
        let found = if x.answer.is_none() {
            let new = Report {
                text: redacted.clone(),
                category: t.category.clone(),
                point: t.point,
                address_key: address_key.clone(),
                caller_key: caller_key.clone(),
                at: now,
            };
            Some(self.duplicates_of(&txn, &s.tenant, &new, None).await?)
        } else {
            None
        };

        let (duplicates, clear) = found.map_or((Vec::new(), None), |f| {
            let clear = f.clear_case();
            (f.candidates, clear)
        });
        let master = match clear {
            Some(m) => self.lock_master(&txn, m).await?,
            None => None,
        };
        let status = if x.answer.is_some() {
            domain::STATUS_ANSWERED
        } else if master.is_some() {
            domain::STATUS_MERGED
        } else {
            domain::STATUS_RECEIVED
        };
        let day = domain::china_day(now);
        let seq = store::next_tracking_seq(&txn, &tenant, day).await?;
        let tracking_no = domain::tracking_no(&tenant, day, seq);
        let row = tickets::ActiveModel {
            id: Set(id),
            tenant: Set(tenant.clone()),
            region_code: Set(t.region_code.clone().unwrap_or_else(|| tenant.clone())),
            tracking_no: Set(tracking_no.clone()),
            status: Set(status.into()),
            channel: Set(t.channel.as_str().into()),
            nature: Set(t.nature.as_str().into()),
            category: Set(t.category.clone()),
            urgency: Set(t.urgency.as_str().into()),
            content: Set(redacted.clone()),
            content_enc: Set(seal(&t.content, "content")?),
            lat: Set(t.point.map(|p| p.0)),
            lon: Set(t.point.map(|p| p.1)),
            address_enc: Set(sealed(t.address.as_deref(), "address")?),
            citizen_name_enc: Set(sealed(t.citizen_name.as_deref(), "citizen_name")?),
            citizen_phone_enc: Set(caller_key
                .is_some()
                .then(|| seal(&t.citizen_phone, "citizen_phone"))
                .transpose()?),
            citizen_phone_bidx: Set(caller_key),
            submitter_sub: Set(s.sub.clone()),
            submitter_role: Set(s.actor.into()),
            idempotency_key: Set(t.idempotency_key.clone()),
            request_hash: Set(Some(hash.to_owned())),
            created_at: Set(now),
            updated_at: Set(now),
            address_bidx: Set(address_key),
            answered_kb_id: Set(x.answer.as_ref().map(|a| a.kb_entry_id)),
            answered_at: Set(x.answer.as_ref().map(|_| now)),
            kind: Set(t.kind.as_str().into()),
            confidential: Set(t.confidential),
            id_number_enc: Set(sealed(t.citizen_id_number.as_deref(), "id_number")?),
            attributes: Set(attributes),
            channel_id: Set(s.channel_id),
            external_id: Set(x.external_id.clone()),
            public_token: Set(public_token.clone()),
            client_meta_enc: Set(x
                .client_meta
                .as_ref()
                .map(|m| seal(&m.to_string(), "client_meta"))
                .transpose()?),
            merged_into: Set(master.as_ref().map(|m| m.id)),
            merged_at: Set(master.as_ref().map(|_| now)),
            // Dispatch hears of a ticket merged at intake only if it is
            // unmerged.
            forwarded: Set(master.is_none()),
            level: Set(x.level.clone().unwrap_or_default()),
        }
        .insert(&txn)
        .await?;
        ticket_events::ActiveModel {
            ticket_id: Set(id),
            tenant: Set(tenant.clone()),
            at: Set(now),
            event: Set("received".into()),
            actor_role: Set(s.actor.into()),
            note: Set(domain::received_note(t.channel)),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        if let Some(a) = &x.answer {
            let reply: String = redact_text(&a.reply).chars().take(500).collect();
            ticket_events::ActiveModel {
                ticket_id: Set(id),
                tenant: Set(tenant.clone()),
                at: Set(now),
                event: Set("answered".into()),
                actor_role: Set(s.actor.into()),
                note: Set(format!("直接答复（知识库：{}）：{reply}", a.title)),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            // Closed here: dispatch is never told, evaluation counts it.
            self.outbox
                .enqueue(
                    &txn,
                    &jiesu_proto::intake::TicketAnsweredDirectly {
                        ticket_id: id.to_string(),
                        tenant: tenant.clone(),
                        tracking_no: tracking_no.clone(),
                        channel: t.channel.as_str().into(),
                        category: t.category.clone(),
                        kb_entry_id: a.kb_entry_id.to_string(),
                        at: Some(to_timestamp(now)),
                    },
                )
                .await?;
            txn.commit().await?;
            return Ok(Accepted {
                id,
                tracking_no,
                status: status.into(),
                replayed: false,
                public_token,
                duplicates: Vec::new(),
                merged_into: None,
            });
        }
        match &master {
            Some(m) => {
                let by = MergedBy {
                    automatic: true,
                    actor: "system",
                    how: "同一来电人 24 小时内反映同一问题，系统自动并件",
                };
                self.record_merge(&txn, &row, m, by, now).await?;
            }
            None => {
                self.outbox
                    .enqueue(&txn, &received_event(&row, &category.name))
                    .await?;
            }
        }
        txn.commit().await?;
        Ok(Accepted {
            id,
            tracking_no,
            status: status.into(),
            replayed: false,
            public_token,
            duplicates,
            merged_into: master.map(|m| (m.id, m.tracking_no)),
        })
    }
}

/// `ticket.received` for a stored ticket: what dispatch needs, no personal
/// data (the content is the redacted text).
pub fn received_event(t: &tickets::Model, category_name: &str) -> TicketReceived {
    TicketReceived {
        ticket_id: t.id.to_string(),
        tenant: t.tenant.clone(),
        region_code: t.region_code.clone(),
        tracking_no: t.tracking_no.clone(),
        channel: t.channel.clone(),
        nature: t.nature.clone(),
        category: t.category.clone(),
        category_name: category_name.to_owned(),
        urgency: t.urgency.clone(),
        content_redacted: t.content.clone(),
        point: t.lat.zip(t.lon).map(|(lat, lon)| GeoPoint { lat, lon }),
        submitter_sub: t.submitter_sub.clone(),
        received_at: Some(to_timestamp(t.created_at)),
        kind: t.kind.clone(),
        confidential: t.confidential,
        channel_id: t.channel_id.map(|c| c.to_string()).unwrap_or_default(),
        level: t.level.clone(),
    }
}
