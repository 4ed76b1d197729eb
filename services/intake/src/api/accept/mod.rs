//! The one way a ticket is accepted, whoever submits it.
//!
//! Here: who submits and what a channel adds, the replay of a retry, and
//! the checks against the tenant's data before anything is written; the
//! storing transaction is in `insert`.

mod insert;

use jiesu_auth::{Principal, Role};
use jiesu_proto::intake::{CreateTicketRequest, CreateTicketResponse, DuplicateCandidate};
use sea_orm::{ConnectionTrait, SqlErr, TransactionTrait};
use uuid::Uuid;

pub use self::insert::received_event;
use super::{Core, IntakeError};
use crate::{
    domain::{self, FieldError, ValidTicket, attributes, bad, tr, webhook::Refusal},
    store::{self, categories, tickets},
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
            let channel = t.channel.as_str();
            return Err(IntakeError::Forbidden(tr!(
                "市民通过 app、wechat、mini_program 或 photo 渠道提交；{channel} 渠道由话务员录入",
                "citizens submit through app, wechat, mini_program or photo; channel {channel} is entered by agents"
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
                tr!("必须在本辖区范围内", "must lie inside the tenant's region"),
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
                    tr!(
                        "不是本辖区的分类（见 GET /api/v1/categories）",
                        "is not a category of this tenant (see GET /api/v1/categories)"
                    ),
                )
            })?;
        if !leaf {
            return Err(FieldError {
                field: "category".into(),
                message: tr!(
                    "必须是末级分类，不能是分类组",
                    "must be a leaf category, not a group"
                ),
            }
            .into());
        }
        Ok(category)
    }
}
