//! The storing transaction of an accepted ticket: its personal data sealed,
//! 并件 candidates (and the clear case merged at once), the tracking number,
//! the row, its first timeline entries and its event.

use chrono::Utc;
use jiesu_pii::redact_text;
use jiesu_proto::{common::GeoPoint, intake::TicketReceived, time::to_timestamp};
use sea_orm::{ActiveModelTrait, DatabaseTransaction, Set};
use uuid::Uuid;

use super::{Accepted, Extras, Submitter};
use crate::{
    api::{Core, IntakeError, duplicates::MergedBy},
    domain::{self, ValidTicket, duplicates::Report},
    store::{self, categories, ticket_events, tickets},
};

impl Core {
    pub(super) async fn insert(
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
            reply: Set(String::new()),
            progress_at: Set(None),
            reply_at: Set(None),
            unit_id: Set(None),
            unit_name: Set(None),
            unit_at: Set(None),
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
                let path = store::category_path(&txn, &tenant, &row.category).await?;
                self.outbox
                    .enqueue(&txn, &received_event(&row, &category.name, &path))
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
pub fn received_event(
    t: &tickets::Model,
    category_name: &str,
    path: &[(String, String)],
) -> TicketReceived {
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
        category_path: path.iter().map(|(c, _)| c.clone()).collect(),
        category_path_names: path.iter().map(|(_, n)| n.clone()).collect(),
    }
}
