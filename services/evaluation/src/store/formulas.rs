//! Formulas per tenant, each in force from its day. A new formula is a new
//! row; a day's formula is the latest whose day is not after it.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::stmt;
use crate::domain::rates::Formula;

#[derive(Debug, Clone)]
pub struct Stored {
    pub effective_from: NaiveDate,
    pub formula: Formula,
    pub note: String,
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
    /// The built-in default (no row).
    pub builtin: bool,
}

impl Stored {
    pub fn builtin() -> Self {
        Self {
            effective_from: NaiveDate::MIN,
            formula: Formula::default(),
            note: "默认公式：满意率 =（满意 + 0.9 × 基本满意）/ 有效回访；综合 = 10% 响应 + 50% 解决 + 40% 满意".into(),
            created_by: String::new(),
            created_at: None,
            builtin: true,
        }
    }
}

/// The tenant's formulas, oldest first; the built-in one first of all.
pub async fn list(conn: &impl ConnectionTrait, tenant: &str) -> Result<Vec<Stored>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT effective_from, definition, note, created_by, created_at FROM formulas \
             WHERE tenant = $1 ORDER BY effective_from",
            vec![tenant.into()],
        ))
        .await?;
    let mut out = vec![Stored::builtin()];
    for r in &rows {
        out.push(Stored {
            effective_from: r.try_get("", "effective_from")?,
            formula: serde_json::from_value(r.try_get("", "definition")?)
                .map_err(|e| DbErr::Custom(format!("formula definition: {e}")))?,
            note: r.try_get("", "note")?,
            created_by: r.try_get("", "created_by")?,
            created_at: Some(r.try_get("", "created_at")?),
            builtin: false,
        });
    }
    Ok(out)
}

/// The formula in force on `day`, and the later ones that start by `to`.
pub fn in_force(all: &[Stored], day: NaiveDate, to: NaiveDate) -> (Stored, Vec<NaiveDate>) {
    let current = all
        .iter()
        .rev()
        .find(|s| s.effective_from <= day)
        .cloned()
        .unwrap_or_else(Stored::builtin);
    let later = all
        .iter()
        .filter(|s| s.effective_from > day && s.effective_from <= to)
        .map(|s| s.effective_from)
        .collect();
    (current, later)
}

/// Adds a formula; refused (false) when one starts on that day already.
pub async fn insert(conn: &impl ConnectionTrait, tenant: &str, s: &Stored) -> Result<bool, DbErr> {
    let done = conn
        .execute_raw(stmt(
            "INSERT INTO formulas (tenant, effective_from, definition, note, created_by) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, effective_from) DO NOTHING",
            vec![
                tenant.into(),
                s.effective_from.into(),
                serde_json::to_value(&s.formula).unwrap_or_default().into(),
                s.note.clone().into(),
                s.created_by.clone().into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}
