//! The demo tenant loaded by `jiesu seed-demo`, and each target's part of
//! loading it (the target table names them).

use anyhow::anyhow;
use jiesu_dispatch::seed::{RouteSeed, UnitSeed};
use jiesu_intake::{
    domain::attributes::{AttributeDef, AttributeOption, Datatype},
    seed::CategorySeed,
};
use serde::Deserialize;

use crate::targets::Fut;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoTenant {
    pub tenant: String,
    pub name: String,
    pub categories: Vec<CategorySeed>,
    pub units: Vec<UnitSeed>,
    pub routes: Vec<RouteSeed>,
    /// Open311 attributes, each naming its category.
    #[serde(default)]
    pub attributes: Vec<DemoAttribute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoAttribute {
    pub category: String,
    pub code: String,
    pub datatype: Datatype,
    #[serde(default)]
    pub required: bool,
    pub description: String,
    #[serde(default)]
    pub datatype_description: String,
    #[serde(default)]
    pub order: i32,
    #[serde(default)]
    pub values: Vec<AttributeOption>,
}

pub const SHINAN: &str = include_str!("demo/370202.toml");

pub fn shinan() -> anyhow::Result<DemoTenant> {
    let mut d: DemoTenant = toml::from_str(SHINAN)?;
    // Routes and attributes given on a group apply to each of its leaves.
    let leaves_under = |code: &str, cats: &[CategorySeed]| -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![code.to_owned()];
        while let Some(c) = stack.pop() {
            let children: Vec<String> = cats
                .iter()
                .filter(|x| x.parent == c)
                .map(|x| x.code.clone())
                .collect();
            if children.is_empty() {
                out.push(c);
            } else {
                stack.extend(children);
            }
        }
        out.sort();
        out
    };
    let mut routes = Vec::new();
    for r in std::mem::take(&mut d.routes) {
        for leaf in leaves_under(&r.category, &d.categories) {
            routes.push(RouteSeed {
                category: leaf,
                unit: r.unit.clone(),
            });
        }
    }
    d.routes = routes;
    for a in std::mem::take(&mut d.attributes) {
        if !d.categories.iter().any(|c| c.code == a.category) {
            anyhow::bail!("attribute {} names unknown category {}", a.code, a.category);
        }
        for leaf in leaves_under(&a.category, &d.categories) {
            if let Some(cat) = d.categories.iter_mut().find(|c| c.code == leaf) {
                cat.attributes.push(AttributeDef {
                    code: a.code.clone(),
                    datatype: a.datatype,
                    required: a.required,
                    description: a.description.clone(),
                    datatype_description: a.datatype_description.clone(),
                    order: a.order,
                    values: a.values.clone(),
                });
            }
        }
    }
    Ok(d)
}

/// What a target's demo seed gets: its database, the demo tenant and the
/// keyring for personal data.
pub struct Seeding<'a> {
    pub db: &'a jiesu_db::sea_orm::DatabaseConnection,
    pub demo: &'a DemoTenant,
    pub keyring: &'a jiesu_pii::Keyring,
}

/// Intake: the category tree with its Open311 attributes.
pub fn seed_intake<'a>(s: &'a Seeding<'a>) -> Fut<'a, anyhow::Result<()>> {
    Box::pin(async move {
        let d = s.demo;
        let n = jiesu_intake::seed::upsert_categories(s.db, &d.tenant, &d.categories).await?;
        println!("{} ({}): {n} categories", d.name, d.tenant);
        Ok(())
    })
}

/// Dispatch: units and the category -> unit routes.
pub fn seed_dispatch<'a>(s: &'a Seeding<'a>) -> Fut<'a, anyhow::Result<()>> {
    Box::pin(async move {
        let d = s.demo;
        let n = jiesu_dispatch::seed::upsert_units(s.db, &d.tenant, &d.units).await?;
        println!(
            "{} ({}): {n} units (streets, communities, departments)",
            d.name, d.tenant
        );
        let n = jiesu_dispatch::seed::upsert_routes(s.db, &d.tenant, &d.routes).await?;
        println!("{} ({}): {n} category -> unit routes", d.name, d.tenant);
        Ok(())
    })
}

/// Grid: the division tree, 市南区's basic grids, police and dedicated
/// grids, their pairs, grid workers and the building registry.
pub fn seed_grid<'a>(s: &'a Seeding<'a>) -> Fut<'a, anyhow::Result<()>> {
    use jiesu_grid::seed;
    Box::pin(async move {
        let (d, grid) = (s.demo, s.db);
        let streets: Vec<(String, String)> = d
            .units
            .iter()
            .filter(|u| u.kind == "street")
            .map(|u| (u.region_code.clone(), u.name.clone()))
            .collect();
        let n = seed::import_regions(grid, &d.tenant, &seed::shinan_regions(&streets))
            .await
            .map_err(|e| anyhow!("demo regions: {e}"))?;
        println!(
            "{} ({}): {n} regions (district, streets, communities)",
            d.name, d.tenant
        );
        let (created, updated) = seed::import(grid, &d.tenant, &seed::shinan_layer())
            .await
            .map_err(|e| anyhow!("demo grid layer: {e}"))?;
        println!(
            "{} ({}): {} basic grids",
            d.name,
            d.tenant,
            created + updated
        );
        for layer in &[seed::shinan_police(), seed::shinan_places()] {
            seed::import(grid, &d.tenant, layer)
                .await
                .map_err(|e| anyhow!("demo grid layer: {e}"))?;
        }
        let pairs = seed::import_pairs(grid, &d.tenant, &seed::shinan_pairs())
            .await
            .map_err(|e| anyhow!("demo pairs: {e}"))?;
        let workers = seed::import_workers(grid, &d.tenant, s.keyring)
            .await
            .map_err(|e| anyhow!("demo grid workers: {e}"))?;
        println!(
            "{} ({}): {workers} grid workers serving {}",
            d.name,
            d.tenant,
            seed::DEMO_WORKER_GRID
        );
        let buildings = seed::import_buildings(grid, &d.tenant)
            .await
            .map_err(|e| anyhow!("demo buildings: {e}"))?;
        println!(
            "{} ({}): 148 police grids ({pairs} pairs with basic grids), {} micro and dedicated grids, {buildings} registry buildings",
            d.name,
            d.tenant,
            seed::DEMO_PLACES.len()
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_is_consistent() {
        let d = shinan().unwrap();
        assert_eq!(d.tenant, "370202");
        let cats: std::collections::HashSet<_> =
            d.categories.iter().map(|c| c.code.as_str()).collect();
        let units: std::collections::HashSet<_> = d.units.iter().map(|u| u.id.as_str()).collect();
        for c in &d.categories {
            assert!(
                c.parent.is_empty() || cats.contains(c.parent.as_str()),
                "{}",
                c.code
            );
        }
        for r in &d.routes {
            assert!(cats.contains(r.category.as_str()), "{}", r.category);
            assert!(units.contains(r.unit.as_str()), "{}", r.unit);
        }
        for must in [
            "物业管理",
            "噪声扰民",
            "预付卡消费",
            "占道经营",
            "违章停车",
            "加装电梯",
            "房屋漏水",
            "树木挡光",
        ] {
            assert!(d.categories.iter().any(|c| c.name == must), "{must}");
        }
        assert!(d.units.iter().filter(|u| u.kind == "street").count() >= 5);
        // Three levels; routes and attributes land on leaves only.
        let parents: std::collections::HashSet<_> =
            d.categories.iter().map(|c| c.parent.as_str()).collect();
        let depth = |code: &str| {
            let mut n = 1;
            let mut cur = code;
            while let Some(c) = d
                .categories
                .iter()
                .find(|c| c.code == cur && !c.parent.is_empty())
            {
                n += 1;
                cur = &c.parent;
            }
            n
        };
        assert!(d.categories.iter().all(|c| depth(&c.code) <= 3));
        assert!(d.categories.iter().filter(|c| depth(&c.code) == 3).count() >= 40);
        assert!(
            d.routes
                .iter()
                .all(|r| !parents.contains(r.category.as_str()))
        );
        let noise = d.categories.iter().find(|c| c.code == "SH0101").unwrap();
        assert_eq!(noise.attributes[0].code, "noise_period");
    }
}
