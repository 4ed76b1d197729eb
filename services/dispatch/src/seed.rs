//! Loading units and the category -> unit table, idempotently.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

#[derive(Debug, Clone, serde::Deserialize)]
pub struct UnitSeed {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub region_code: String,
    #[serde(default)]
    pub parent: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct RouteSeed {
    pub category: String,
    pub unit: String,
}

pub async fn upsert_units<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    units: &[UnitSeed],
) -> Result<usize, DbErr> {
    for u in units {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO units (tenant, id, name, kind, region_code, parent_id, active) \
             VALUES ($1, $2, $3, $4, $5, $6, TRUE) \
             ON CONFLICT (tenant, id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, \
             region_code = EXCLUDED.region_code, parent_id = EXCLUDED.parent_id, active = TRUE",
            [
                tenant.into(),
                u.id.clone().into(),
                u.name.clone().into(),
                u.kind.clone().into(),
                u.region_code.clone().into(),
                (!u.parent.is_empty()).then(|| u.parent.clone()).into(),
            ],
        ))
        .await?;
    }
    Ok(units.len())
}

pub async fn upsert_routes<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    routes: &[RouteSeed],
) -> Result<usize, DbErr> {
    for r in routes {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO category_routes (tenant, category, unit_id) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant, category) DO UPDATE SET unit_id = EXCLUDED.unit_id",
            [
                tenant.into(),
                r.category.clone().into(),
                r.unit.clone().into(),
            ],
        ))
        .await?;
    }
    Ok(routes.len())
}
