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

/// Makes each seed's unit responsible for its category across the whole
/// tenant (an entry of the responsibility list valid from 2000-01-01);
/// run again, it updates the lead unit instead of adding a second entry.
pub async fn upsert_routes<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    routes: &[RouteSeed],
) -> Result<usize, DbErr> {
    for r in routes {
        let values = || -> Vec<sea_orm::Value> {
            vec![
                tenant.into(),
                r.category.clone().into(),
                r.unit.clone().into(),
            ]
        };
        let updated = conn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE responsibilities SET lead_unit_id = $3 WHERE tenant = $1 \
                 AND category = $2 AND region_code = $1 AND valid_from = DATE '2000-01-01'",
                values(),
            ))
            .await?
            .rows_affected();
        if updated == 0 {
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO responsibilities (tenant, category, region_code, lead_unit_id, valid_from) \
                 VALUES ($1, $2, $1, $3, DATE '2000-01-01')",
                values(),
            ))
            .await?;
        }
    }
    Ok(routes.len())
}
