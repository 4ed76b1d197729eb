//! The registers next to the layer: the division tree (`regions`), pairs
//! of professional and basic grids (`grid_pairs`) and the building
//! registry (`buildings`, 门牌).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

use super::stmt;
use crate::domain::registry::{Building, normalize_address};

/// Adds or renames regions in one transaction.
pub async fn upsert_regions(
    db: &DatabaseConnection,
    tenant: &str,
    regions: &[crate::domain::regions::Region],
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    for r in regions {
        txn.execute_raw(stmt(
            "INSERT INTO regions (tenant, code, name, level, parent_code) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant, code) DO UPDATE SET name = $3, level = $4, parent_code = $5",
            vec![
                tenant.into(),
                r.code.clone().into(),
                r.name.clone().into(),
                r.level.into(),
                r.parent.clone().into(),
            ],
        ))
        .await?;
    }
    txn.commit().await
}

/// Regions of the tenant whose code starts with `prefix`, in code order.
pub async fn regions<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    prefix: &str,
) -> Result<Vec<jiesu_proto::grid::Region>, DbErr> {
    conn.query_all_raw(stmt(
        "SELECT code, name, level, parent_code FROM regions WHERE tenant = $1 \
         AND starts_with(code, $2) ORDER BY code",
        vec![tenant.into(), prefix.into()],
    ))
    .await?
    .into_iter()
    .map(|r| {
        Ok(jiesu_proto::grid::Region {
            code: r.try_get("", "code")?,
            name: r.try_get("", "name")?,
            level: r.try_get("", "level")?,
            parent_code: r
                .try_get::<Option<String>>("", "parent_code")?
                .unwrap_or_default(),
        })
    })
    .collect()
}

/// Replaces the pairs of the professional grids listed in `pairs`.
pub async fn replace_pairs(
    db: &DatabaseConnection,
    tenant: &str,
    pairs: &[(String, String)],
) -> Result<(), DbErr> {
    let (profs, basics): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
    let txn = db.begin().await?;
    txn.execute_raw(stmt(
        "DELETE FROM grid_pairs WHERE tenant = $1 AND professional_code = ANY($2)",
        vec![tenant.into(), profs.clone().into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        "INSERT INTO grid_pairs (tenant, professional_code, basic_code) \
         SELECT DISTINCT $1, p, b FROM unnest($2::text[], $3::text[]) AS u(p, b) \
         ON CONFLICT DO NOTHING",
        vec![tenant.into(), profs.into(), basics.into()],
    ))
    .await?;
    txn.commit().await
}

/// Adds or replaces registry buildings.
pub async fn upsert_buildings(
    db: &DatabaseConnection,
    tenant: &str,
    rows: &[Building],
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    for b in rows {
        txn.execute_raw(stmt(
            "INSERT INTO buildings (tenant, code, address, address_norm, lat, lon) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, code) DO UPDATE \
             SET address = $3, address_norm = $4, lat = $5, lon = $6",
            vec![
                tenant.into(),
                b.code.clone().into(),
                b.address.clone().into(),
                normalize_address(&b.address).into(),
                b.lat.into(),
                b.lon.into(),
            ],
        ))
        .await?;
    }
    txn.commit().await
}

/// The registry building an address names: the same address, else the
/// longest registered address the text contains.
pub async fn building_for<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    address: &str,
) -> Result<Option<Building>, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT code, address, lat, lon FROM buildings WHERE tenant = $1 \
               AND strpos($2, address_norm) > 0 \
             ORDER BY length(address_norm) DESC, code LIMIT 1",
            vec![tenant.into(), normalize_address(address).into()],
        ))
        .await?;
    row.map(|r| {
        Ok(Building {
            code: r.try_get("", "code")?,
            address: r.try_get("", "address")?,
            lat: r.try_get("", "lat")?,
            lon: r.try_get("", "lon")?,
        })
    })
    .transpose()
}

/// The grids paired with `code` (basic grids of a professional one, or
/// the other way round), in code order.
pub async fn paired<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    code: &str,
) -> Result<Vec<String>, DbErr> {
    conn.query_all_raw(stmt(
        "SELECT basic_code AS other FROM grid_pairs WHERE tenant = $1 AND professional_code = $2 \
         UNION SELECT professional_code FROM grid_pairs WHERE tenant = $1 AND basic_code = $2 \
         ORDER BY 1",
        vec![tenant.into(), code.into()],
    ))
    .await?
    .into_iter()
    .map(|r| r.try_get("", "other"))
    .collect()
}
