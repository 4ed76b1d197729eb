//! The demo layer of 370202 (市南区): 505 basic grids tiling roughly
//! lat 36.04–36.10, lon 120.30–120.45 (the seeds cite 505 basic grids),
//! each in one of ten streets' three communities.

use jiesu_common::Text;
use sea_orm::DatabaseConnection;

use crate::{
    domain::{layer, registry::Building},
    store,
};

const COLS: usize = 23;
const ROWS: usize = 22;
const LON: (f64, f64) = (120.30, 120.45);
const LAT: (f64, f64) = (36.04, 36.10);

/// The layer as a FeatureCollection, deterministic.
pub fn shinan_layer() -> String {
    let (w, h) = ((LON.1 - LON.0) / COLS as f64, (LAT.1 - LAT.0) / ROWS as f64);
    let mut features = Vec::with_capacity(505);
    for i in 0..505 {
        let (col, row) = (i % COLS, i / COLS);
        let (x0, y0) = (LON.0 + col as f64 * w, LAT.0 + row as f64 * h);
        let (x1, y1) = (x0 + w, y0 + h);
        let street = 1 + col * 10 / COLS;
        let community = 1 + row * 3 / ROWS;
        // Rounded so that neighbours share exactly the same edge.
        let r = |v: f64| (v * 1e7).round() / 1e7;
        features.push(serde_json::json!({
            "type": "Feature",
            "properties": {
                "code": format!("370202{street:03}{community:03}-{:03}", i + 1),
                "name": format!("第{}网格", i + 1),
                "kind": "basic",
                "community_code": format!("370202{street:03}{community:03}"),
            },
            "geometry": {"type": "Polygon", "coordinates": [[
                [r(x0), r(y0)], [r(x1), r(y0)], [r(x1), r(y1)], [r(x0), r(y1)], [r(x0), r(y0)]
            ]]},
        }));
    }
    serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
}

/// Police grids (警格) of the demo: 148 (the seeds' figure) tiling the same
/// area 37 × 4; each belongs to the community of the basic grid at its
/// centre.
pub fn shinan_police() -> String {
    let (cols, rows) = (37, 4);
    let (w, h) = ((LON.1 - LON.0) / cols as f64, (LAT.1 - LAT.0) / rows as f64);
    let basics = layer::read(&shinan_layer()).unwrap_or_default();
    let index = crate::domain::index::GridIndex::build(basics);
    let r = |v: f64| (v * 1e7).round() / 1e7;
    let mut features = Vec::with_capacity(cols * rows);
    for i in 0..cols * rows {
        let (col, row) = (i % cols, i / cols);
        let (x0, y0) = (LON.0 + col as f64 * w, LAT.0 + row as f64 * h);
        let (x1, y1) = (x0 + w, y0 + h);
        let community = index
            .locate((x0 + x1) / 2.0 + 1e-7, (y0 + y1) / 2.0 + 1e-7)
            .community
            .unwrap_or("370202001001")
            .to_owned();
        features.push(serde_json::json!({
            "type": "Feature",
            "properties": {
                "code": format!("JG-{:03}", i + 1),
                "name": format!("第{}警格", i + 1),
                "kind": "professional",
                "community_code": community,
            },
            "geometry": {"type": "Polygon", "coordinates": [[
                [r(x0), r(y0)], [r(x1), r(y0)], [r(x1), r(y1)], [r(x0), r(y1)], [r(x0), r(y0)]
            ]]},
        }));
    }
    serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
}

/// A few buildings (micro grids, with their 门牌 in the registry) and two
/// key places (dedicated grids) of the demo, around 燕儿岛路.
pub const DEMO_PLACES: [(&str, &str, &str, f64, f64); 6] = [
    ("WG-001", "micro", "燕儿岛路8号", 120.3801, 36.0611),
    ("WG-002", "micro", "燕儿岛路10号", 120.3809, 36.0611),
    ("WG-003", "micro", "山东路6号", 120.3825, 36.0641),
    ("WG-004", "micro", "南京路100号", 120.3925, 36.0701),
    ("ZS-001", "dedicated", "燕儿岛路小学", 120.3790, 36.0625),
    ("ZS-002", "dedicated", "市南区人民医院", 120.3900, 36.0680),
];

/// The micro and dedicated grids of [`DEMO_PLACES`]: small squares around
/// each point, in the community of the basic grid holding it.
pub fn shinan_places() -> String {
    let basics = layer::read(&shinan_layer()).unwrap_or_default();
    let index = crate::domain::index::GridIndex::build(basics);
    let features: Vec<serde_json::Value> = DEMO_PLACES
        .iter()
        .map(|(code, kind, name, lon, lat)| {
            let d = if *kind == "micro" { 0.0002 } else { 0.0005 };
            let community = index
                .locate(*lon, *lat)
                .community
                .unwrap_or("370202001001")
                .to_owned();
            serde_json::json!({
                "type": "Feature",
                "properties": {"code": code, "name": name, "kind": kind, "community_code": community},
                "geometry": {"type": "Polygon", "coordinates": [[
                    [lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]
                ]]},
            })
        })
        .collect();
    serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
}

/// Pairs of the demo: each police grid with every basic grid whose
/// interior it shares.
pub fn shinan_pairs() -> Vec<(String, String)> {
    use geo::Relate;
    let basics = layer::read(&shinan_layer()).unwrap_or_default();
    let police = layer::read(&shinan_police()).unwrap_or_default();
    let mut pairs = Vec::new();
    for p in &police {
        for b in &basics {
            let m = p.shape.relate(&b.shape);
            if m.is_intersects() && !m.is_touches() {
                pairs.push((p.code.clone(), b.code.clone()));
            }
        }
    }
    pairs
}

/// Stores pairs without a caller (seed-demo), replacing the listed
/// professional grids' pairs.
pub async fn import_pairs(
    db: &DatabaseConnection,
    tenant: &str,
    pairs: &[(String, String)],
) -> Result<usize, String> {
    store::replace_pairs(db, tenant, pairs)
        .await
        .map_err(|e| e.to_string())?;
    Ok(pairs.len())
}

/// The registry buildings of the demo (the micro grids' 门牌).
pub async fn import_buildings(db: &DatabaseConnection, tenant: &str) -> Result<usize, String> {
    let rows: Vec<Building> = DEMO_PLACES
        .iter()
        .filter(|p| p.1 == "micro")
        .map(|(code, _, name, lon, lat)| Building {
            code: (*code).to_owned(),
            address: format!("市南区{name}"),
            lat: *lat,
            lon: *lon,
        })
        .collect();
    store::upsert_buildings(db, tenant, &rows)
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows.len())
}

/// Grid workers of the demo, serving the basic grid around 燕儿岛路8号:
/// (account, name, phone, kind, occupation).
pub const DEMO_WORKERS: [(&str, &str, &str, &str, &str); 3] = [
    ("gw-shinan-174", "王海燕", "13805320174", "full_time", ""),
    (
        "gw-shinan-174b",
        "刘建国",
        "13905320175",
        "part_time",
        "courier",
    ),
    ("gc-shinan-006001", "陈静", "13605326001", "chief", ""),
];

/// The basic grid the demo workers serve.
pub const DEMO_WORKER_GRID: &str = "370202006001-174";

/// Registers the demo workers (phones sealed) and assigns them to
/// [`DEMO_WORKER_GRID`]; safe to run again.
pub async fn import_workers(
    db: &DatabaseConnection,
    tenant: &str,
    keyring: &jiesu_pii::Keyring,
) -> Result<usize, String> {
    for (account, name, phone, kind, occupation) in DEMO_WORKERS {
        // A stable id per account, so that a second run updates.
        let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, account.as_bytes());
        let worker = jiesu_proto::grid::Worker {
            account: account.into(),
            name: name.into(),
            phone: phone.into(),
            kind: kind.into(),
            occupation: occupation.into(),
            ..Default::default()
        };
        store::workers::seed(db, keyring, tenant, id, &worker, DEMO_WORKER_GRID)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(DEMO_WORKERS.len())
}

/// The division tree of the demo: the district, its streets (named as the
/// directory names them) and the three communities of each street the demo
/// layer uses.
pub fn shinan_regions(streets: &[(String, String)]) -> String {
    let mut csv = String::from("code,name\n370202,市南区\n");
    for s in 1..=10 {
        let code = format!("370202{s:03}");
        let name = streets
            .iter()
            .find(|(c, _)| *c == code)
            .map_or_else(|| format!("第{s}街道"), |(_, n)| n.replace("办事处", ""));
        csv.push_str(&format!("{code},{name}\n"));
        for c in 1..=3 {
            csv.push_str(&format!("{code}{c:03},{name}第{c}社区\n"));
        }
    }
    csv
}

/// Imports the division tree without a caller (seed-demo).
pub async fn import_regions(
    db: &DatabaseConnection,
    tenant: &str,
    csv: &str,
) -> Result<usize, String> {
    let list = crate::domain::regions::read_csv(csv, tenant).map_err(|e| Text::join(&e).en)?;
    store::upsert_regions(db, tenant, &list)
        .await
        .map_err(|e| e.to_string())?;
    Ok(list.len())
}

/// Imports a layer without a caller (seed-demo); returns (created, updated).
pub async fn import(
    db: &DatabaseConnection,
    tenant: &str,
    geojson: &str,
) -> Result<(u32, u32), String> {
    let pairs = layer::read_with_geometry(geojson).map_err(|e| Text::join(&e).en)?;
    let grids: Vec<_> = pairs.iter().map(|(g, _)| g.clone()).collect();
    let clashes = layer::overlaps(&grids);
    if !clashes.is_empty() {
        return Err(format!("{} overlapping pairs", clashes.len()));
    }
    let done = store::upsert(db, tenant, &pairs, None, None)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        u32::try_from(done.created.len()).unwrap_or(u32::MAX),
        u32::try_from(done.updated.len()).unwrap_or(u32::MAX),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::index::GridIndex;

    #[test]
    fn the_demo_layer_tiles_shinan_without_overlaps() {
        let grids = layer::read(&shinan_layer()).unwrap_or_default();
        assert_eq!(grids.len(), 505);
        assert!(layer::overlaps(&grids).is_empty());
        let idx = GridIndex::build(grids);
        let at = idx.locate(120.3800, 36.0610);
        assert!(at.basic.is_some(), "燕儿岛路 lies in a grid");
        assert!(at.community.is_some_and(|c| c.starts_with("370202")));
        let police = layer::read(&shinan_police()).unwrap_or_default();
        assert_eq!(police.len(), 148, "the seeds' 148 police grids");
        let places = layer::read(&shinan_places()).unwrap_or_default();
        assert_eq!(places.len(), DEMO_PLACES.len());
        let pairs = shinan_pairs();
        let paired: std::collections::HashSet<&str> =
            pairs.iter().map(|(_, b)| b.as_str()).collect();
        assert_eq!(paired.len(), 505, "every basic grid has a police grid");
    }
}
