//! Loading reference data (category trees) into intake, idempotently.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

use crate::domain::attributes::{AttributeDef, check_definitions};

/// One category of a tree; `parent` empty for a top-level group.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CategorySeed {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub parent: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub keywords: String,
    /// Open311 attributes a ticket of this category answers.
    #[serde(default)]
    pub attributes: Vec<AttributeDef>,
}

/// Inserts or updates the tenant's categories; levels follow the parents.
pub async fn upsert_categories<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    cats: &[CategorySeed],
) -> Result<usize, DbErr> {
    let level_of = |code: &str| -> i16 {
        let mut level = 1;
        let mut cur = code;
        while let Some(c) = cats.iter().find(|c| c.code == cur && !c.parent.is_empty()) {
            level += 1;
            cur = &c.parent;
            if level > 8 {
                break;
            }
        }
        level
    };
    for (i, c) in cats.iter().enumerate() {
        check_definitions(&c.attributes)
            .map_err(|e| DbErr::Custom(format!("category {}: {}", c.code, e.en)))?;
        let attributes = serde_json::to_value(&c.attributes)
            .map_err(|e| DbErr::Custom(format!("category {}: {e}", c.code)))?;
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO categories (tenant, code, name, parent_code, level, sort, active, \
             description, keywords, attributes) \
             VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $8, $9) \
             ON CONFLICT (tenant, code) DO UPDATE SET name = EXCLUDED.name, \
             parent_code = EXCLUDED.parent_code, level = EXCLUDED.level, sort = EXCLUDED.sort, \
             active = TRUE, description = EXCLUDED.description, keywords = EXCLUDED.keywords, \
             attributes = EXCLUDED.attributes",
            [
                tenant.into(),
                c.code.clone().into(),
                c.name.clone().into(),
                (!c.parent.is_empty()).then(|| c.parent.clone()).into(),
                level_of(&c.code).into(),
                (i as i32).into(),
                c.description.clone().into(),
                c.keywords.clone().into(),
                attributes.into(),
            ],
        ))
        .await?;
    }
    Ok(cats.len())
}
