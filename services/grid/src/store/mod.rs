//! Every SQL statement of grid, as functions over a connection or a
//! transaction and plain types. Personal fields are sealed here on the way
//! in and opened on the way out (`aad` binds each to its row and column);
//! callers see plain values and decide what to mask.

pub mod duties;
pub mod events;
pub mod grids;
pub mod history;
pub mod imports;
pub mod layers;
pub mod registry;
pub mod reshape;
pub mod residents;
pub mod workers;

use jiesu_pii::Keyring;
use sea_orm::{DbBackend, DbErr, Statement, Value};
use uuid::Uuid;

pub use grids::{
    Row, UpsertError, Upserted, bump_layer, count, feature, feature_collection, page, rows, upsert,
};
pub use layers::{Layers, refresh};
pub use registry::{regions, replace_pairs, upsert_buildings, upsert_regions};

pub fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The associated data a sealed field is bound to (row and column); the
/// same template is in `crate::rekey::COLUMNS`.
pub(crate) fn aad(tenant: &str, table: &str, id: Uuid, field: &str) -> String {
    format!("grid.{table}.{field}:{tenant}:{id}")
}

/// Seals and opens the personal fields of one row.
pub(crate) struct Sealed<'a> {
    pub keyring: &'a Keyring,
    pub tenant: &'a str,
    pub table: &'static str,
    pub id: Uuid,
}

impl Sealed<'_> {
    pub fn seal(&self, field: &str, value: &str) -> Result<String, jiesu_pii::PiiError> {
        self.keyring
            .encrypt(value, &aad(self.tenant, self.table, self.id, field))
    }

    pub fn open(&self, field: &str, sealed: &str) -> Result<String, jiesu_pii::PiiError> {
        self.keyring
            .decrypt(sealed, &aad(self.tenant, self.table, self.id, field))
    }
}

/// Whether `e` is a unique constraint refusing a second row.
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
