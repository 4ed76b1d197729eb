//! Loading reference data (category trees) into intake, idempotently.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// One category of a tree; `parent` empty for a top-level group.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct CategorySeed {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub parent: String,
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
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO categories (tenant, code, name, parent_code, level, sort, active) \
             VALUES ($1, $2, $3, $4, $5, $6, TRUE) \
             ON CONFLICT (tenant, code) DO UPDATE SET name = EXCLUDED.name, \
             parent_code = EXCLUDED.parent_code, level = EXCLUDED.level, sort = EXCLUDED.sort, active = TRUE",
            [
                tenant.into(),
                c.code.clone().into(),
                c.name.clone().into(),
                (!c.parent.is_empty()).then(|| c.parent.clone()).into(),
                level_of(&c.code).into(),
                (i as i32).into(),
            ],
        ))
        .await?;
    }
    Ok(cats.len())
}
