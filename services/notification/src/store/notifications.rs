use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant: String,
    pub region_code: String,
    pub recipient_kind: String,
    pub recipient_id: String,
    pub recipient_name: String,
    pub channel: String,
    pub title: String,
    pub body: String,
    pub ticket_id: Option<Uuid>,
    pub source_event_id: Uuid,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTimeUtc,
    pub lease_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    /// Put into the body (`{link}`) only when sending; see migration 0002.
    pub link: Option<String>,
    /// The event's name (migration 0003).
    pub kind: String,
    /// Place in the recipient's chain of channels.
    pub route_step: i32,
    /// The channel that carried it, or is trying it.
    pub via: Option<String>,
    pub provider_id: Option<String>,
    pub provider_answer: Option<String>,
    pub delivered_at: Option<DateTimeUtc>,
    /// The notice's variables, for the tenant's templates.
    pub vars: Option<Json>,
    /// The broadcast it is part of.
    pub broadcast_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
