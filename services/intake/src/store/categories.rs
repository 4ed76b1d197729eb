use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "categories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
    pub level: i16,
    pub sort: i32,
    pub active: bool,
    /// `Vec<AttributeDef>` as JSON.
    pub attributes: Json,
    pub description: String,
    pub keywords: String,
}

impl Model {
    /// The attribute definitions; a row that does not parse has none (the
    /// import path validates, so this only guards against hand edits).
    pub fn attribute_defs(&self) -> Vec<crate::domain::attributes::AttributeDef> {
        serde_json::from_value(self.attributes.clone()).unwrap_or_default()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
