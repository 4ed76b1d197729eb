use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "work_orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub tenant: String,
    pub region_code: String,
    pub tracking_no: String,
    pub category: String,
    pub category_name: String,
    pub status: String,
    pub unit_id: Option<String>,
    pub unit_name: Option<String>,
    pub submitter_sub: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub urgency: String,
    pub level: i16,
    pub paused_at: Option<DateTimeUtc>,
    pub extension_days: Option<i32>,
    pub returns: i32,
    pub extensions: i32,
    pub reopens: i32,
    pub clock_started_at: Option<DateTimeUtc>,
    pub sign_due: Option<DateTimeUtc>,
    pub respond_due: Option<DateTimeUtc>,
    pub resolve_due: Option<DateTimeUtc>,
    pub signed_at: Option<DateTimeUtc>,
    pub responded_at: Option<DateTimeUtc>,
    pub resolved_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    pub reply: String,
    pub leadership: bool,
    pub merged_into: Option<Uuid>,
    pub status_before_merge: Option<String>,
    pub version: i32,
    pub resolve_work_minutes: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
