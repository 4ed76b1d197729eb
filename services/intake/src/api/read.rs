//! Reading tickets and categories back, personal data masked.

use std::collections::HashSet;

use jiesu_auth::{Principal, Role};
use jiesu_common::tr;
use jiesu_pii::{PiiError, mask_address, mask_id_number, mask_name, mask_phone};
use jiesu_proto::{
    common::TimelineEntry,
    intake::{
        AttributeDefinition, AttributeOption, AttributeValue, Category, Citizen,
        ListCategoriesResponse, Location, MergedTicket, Ticket,
    },
    time::to_timestamp,
};
use sea_orm::EntityTrait;

use super::{Core, IntakeError, TICKET_READERS};
use crate::{
    domain::{self, parse_id},
    store::{self, categories, tickets},
};

/// Shown instead of a confidential caller's identity.
pub const CONFIDENTIAL: &str = "（保密）";

/// A ticket's stored attribute answers.
pub fn attribute_values(t: &tickets::Model) -> Vec<AttributeValue> {
    #[derive(serde::Deserialize)]
    struct Stored {
        code: String,
        values: Vec<String>,
    }
    serde_json::from_value::<Vec<Stored>>(t.attributes.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|s| AttributeValue {
            code: s.code,
            values: s.values,
        })
        .collect()
}

/// A category with its attribute definitions, as the API shows it.
pub fn category_message(c: categories::Model, leaf: bool) -> Category {
    let attributes = c
        .attribute_defs()
        .into_iter()
        .map(|d| AttributeDefinition {
            code: d.code,
            datatype: d.datatype.as_str().into(),
            required: d.required,
            description: d.description,
            datatype_description: d.datatype_description,
            order: d.order,
            values: d
                .values
                .into_iter()
                .map(|o| AttributeOption {
                    key: o.key,
                    name: o.name,
                })
                .collect(),
        })
        .collect();
    Category {
        leaf,
        description: c.description,
        keywords: c.keywords,
        code: c.code,
        name: c.name,
        parent_code: c.parent_code.unwrap_or_default(),
        level: i32::from(c.level),
        attributes,
    }
}

impl Core {
    pub async fn get(&self, who: &Principal, id: &str) -> Result<Ticket, IntakeError> {
        who.require_any(TICKET_READERS)?;
        let id = parse_id("id", id, &tr!("诉求", "a ticket"))?;
        let t = store::find_visible_ticket(&self.db, who, id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        let category_name = store::category_for_ticket(&self.db, &t.tenant, &t.category)
            .await?
            .map(|(c, _)| c.name)
            .unwrap_or_default();
        let timeline = store::timeline(&self.db, &t)
            .await?
            .into_iter()
            .map(|e| TimelineEntry {
                at: Some(to_timestamp(e.at)),
                event: e.event,
                actor_role: e.actor_role,
                note: e.note,
                unit_id: String::new(),
                unit_name: String::new(),
            })
            .collect();
        let open = |sealed: &Option<String>, field: &str| -> Result<Option<String>, PiiError> {
            sealed
                .as_deref()
                .map(|s| {
                    self.keyring
                        .decrypt(s, &format!("tickets.{field}:{}", t.id))
                })
                .transpose()
        };
        // A confidential caller is known (masked) to the agents who call
        // back and to the citizen themself; to everyone else only as 保密.
        let hide_identity = t.confidential
            && !(who.has_role(Role::Agent)
                || (who.is_citizen_only() && who.sub == t.submitter_sub));
        let masked = |v: Option<String>, mask: fn(&str) -> String| {
            if hide_identity {
                v.map(|_| CONFIDENTIAL.to_owned()).unwrap_or_default()
            } else {
                v.as_deref().map(mask).unwrap_or_default()
            }
        };
        let citizen = Citizen {
            name: masked(open(&t.citizen_name_enc, "citizen_name")?, mask_name),
            phone: masked(open(&t.citizen_phone_enc, "citizen_phone")?, mask_phone),
            id_number: masked(open(&t.id_number_enc, "id_number")?, mask_id_number),
        };
        let address = open(&t.address_enc, "address")?;
        let attachments = self.attachments_of(&self.db, t.id).await?;
        let master = match t.merged_into.filter(|_| t.status == domain::STATUS_MERGED) {
            Some(m) => tickets::Entity::find_by_id(m).one(&self.db).await?,
            None => None,
        };
        // Other callers' tickets merged into this one: staff only.
        let merged = if who.is_citizen_only() {
            Vec::new()
        } else {
            store::merged_into(&self.db, t.id).await?
        };
        let merged = merged
            .into_iter()
            .map(|c| MergedTicket {
                ticket_id: c.id.to_string(),
                tracking_no: c.tracking_no,
                merged_at: c.merged_at.map(to_timestamp),
            })
            .collect();
        Ok(Ticket {
            merged_into: master
                .as_ref()
                .map(|m| m.id.to_string())
                .unwrap_or_default(),
            merged_into_tracking_no: master
                .as_ref()
                .map(|m| m.tracking_no.clone())
                .unwrap_or_default(),
            merged_into_status: master.map(|m| m.status).unwrap_or_default(),
            merged,
            attachments,
            id: t.id.to_string(),
            tenant: t.tenant.clone(),
            region_code: t.region_code.clone(),
            tracking_no: t.tracking_no.clone(),
            status: t.status.clone(),
            channel: t.channel.clone(),
            nature: t.nature.clone(),
            category: t.category.clone(),
            category_name,
            content: t.content.clone(),
            urgency: t.urgency.clone(),
            citizen: Some(citizen),
            location: Some(Location {
                lat: t.lat,
                lon: t.lon,
                address: address.as_deref().map(mask_address).unwrap_or_default(),
                region_code: t.region_code.clone(),
            }),
            created_at: Some(to_timestamp(t.created_at)),
            timeline,
            kind: t.kind.clone(),
            confidential: t.confidential,
            attributes: attribute_values(&t),
            channel_id: t.channel_id.map(|c| c.to_string()).unwrap_or_default(),
            external_id: t.external_id.clone().unwrap_or_default(),
        })
    }

    /// The tenant's active category tree with attribute definitions.
    pub async fn categories(&self, tenant: &str) -> Result<ListCategoriesResponse, IntakeError> {
        let rows = store::categories_of(&self.db, tenant).await?;
        let parents: HashSet<String> = rows.iter().filter_map(|c| c.parent_code.clone()).collect();
        let categories = rows
            .into_iter()
            .map(|c| {
                let leaf = !parents.contains(&c.code);
                category_message(c, leaf)
            })
            .collect();
        Ok(ListCategoriesResponse { categories })
    }
}
