use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_facts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ticket_id: Uuid,
    pub tenant: String,
    pub tracking_no: String,
    pub submitter_sub: String,
    pub received_at: Option<DateTimeUtc>,
    pub channel: String,
    pub nature: String,
    pub category: String,
    pub category_name: String,
    pub category_path: Json,
    pub category_path_names: Json,
    pub received_region: String,
    pub order_version: i32,
    pub work_order_id: Option<Uuid>,
    pub order_region: String,
    pub status: String,
    pub unit_id: String,
    pub unit_name: String,
    pub dispatched_at: Option<DateTimeUtc>,
    pub clock_started_at: Option<DateTimeUtc>,
    pub sign_due: Option<DateTimeUtc>,
    pub respond_due: Option<DateTimeUtc>,
    pub resolve_due: Option<DateTimeUtc>,
    pub signed_at: Option<DateTimeUtc>,
    pub responded_at: Option<DateTimeUtc>,
    pub resolved_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    pub returns: i32,
    pub extensions: i32,
    pub reopens: i32,
    pub resolve_work_minutes: i32,
    pub merged: bool,
    pub merge_changed_at: Option<DateTimeUtc>,
    pub withdrawn: bool,
    pub excluded_reason: Option<String>,
    pub excluded_note: String,
    pub excluded_by: String,
    pub excluded_at: Option<DateTimeUtc>,
    pub verdict_resolved: Option<bool>,
    pub verdict_satisfaction: Option<String>,
    pub unreachable: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn category_path(&self) -> Vec<String> {
        serde_json::from_value(self.category_path.clone()).unwrap_or_default()
    }

    /// The region the ticket is judged under: where dispatch placed it,
    /// else what intake was told.
    pub fn region_code(&self) -> &str {
        if self.order_region.is_empty() {
            &self.received_region
        } else {
            &self.order_region
        }
    }

    /// The pure view the counts are computed from.
    pub fn facts(&self) -> crate::domain::counts::Facts {
        crate::domain::counts::Facts {
            tenant: self.tenant.clone(),
            received_at: self.received_at,
            channel: self.channel.clone(),
            category: self.category.clone(),
            category_path: self.category_path(),
            region_code: self.region_code().to_owned(),
            status: self.status.clone(),
            unit_id: self.unit_id.clone(),
            dispatched_at: self.dispatched_at,
            clock_started_at: self.clock_started_at,
            sign_due: self.sign_due,
            respond_due: self.respond_due,
            resolve_due: self.resolve_due,
            signed_at: self.signed_at,
            responded_at: self.responded_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            returns: self.returns,
            reopens: self.reopens,
            resolve_work_minutes: self.resolve_work_minutes,
            merged: self.merged,
            withdrawn: self.withdrawn,
            excluded: self.excluded_reason.is_some(),
            verdict: self.verdict_resolved.zip(self.verdict_satisfaction.clone()),
            unreachable: self.unreachable,
        }
    }
}
