use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant: String,
    pub region_code: String,
    pub tracking_no: String,
    pub status: String,
    pub channel: String,
    pub nature: String,
    pub category: String,
    pub urgency: String,
    pub content: String,
    pub content_enc: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub address_enc: Option<String>,
    pub citizen_name_enc: Option<String>,
    pub citizen_phone_enc: Option<String>,
    pub citizen_phone_bidx: Option<String>,
    pub submitter_sub: String,
    pub submitter_role: String,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub kind: String,
    pub confidential: bool,
    pub id_number_enc: Option<String>,
    pub attributes: Json,
    pub channel_id: Option<Uuid>,
    pub external_id: Option<String>,
    pub public_token: Option<String>,
    pub client_meta_enc: Option<String>,
    pub answered_kb_id: Option<Uuid>,
    pub answered_at: Option<DateTimeUtc>,
    pub address_bidx: Option<String>,
    pub merged_into: Option<Uuid>,
    pub merged_at: Option<DateTimeUtc>,
    pub forwarded: bool,
    pub level: String,
    /// The unit's reply (redacted), from dispatch's `ticket.progressed`.
    pub reply: String,
    pub progress_at: Option<DateTimeUtc>,
    pub reply_at: Option<DateTimeUtc>,
    /// The lead unit, as dispatch last announced it.
    pub unit_id: Option<String>,
    pub unit_name: Option<String>,
    pub unit_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
