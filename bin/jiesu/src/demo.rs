//! The demo tenant loaded by `jiesu seed-demo`.

use jiesu_dispatch::seed::{RouteSeed, UnitSeed};
use jiesu_intake::{
    domain::attributes::{AttributeDef, AttributeOption, Datatype},
    seed::CategorySeed,
};
use serde::Deserialize;

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
    for a in std::mem::take(&mut d.attributes) {
        let cat = d
            .categories
            .iter_mut()
            .find(|c| c.code == a.category)
            .ok_or_else(|| {
                anyhow::anyhow!("attribute {} names unknown category {}", a.code, a.category)
            })?;
        cat.attributes.push(AttributeDef {
            code: a.code,
            datatype: a.datatype,
            required: a.required,
            description: a.description,
            datatype_description: a.datatype_description,
            order: a.order,
            values: a.values,
        });
    }
    Ok(d)
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
    }
}
