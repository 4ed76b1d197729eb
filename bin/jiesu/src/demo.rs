//! The demo tenant loaded by `jiesu seed-demo`.

use jiesu_dispatch::seed::{RouteSeed, UnitSeed};
use jiesu_intake::seed::CategorySeed;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoTenant {
    pub tenant: String,
    pub name: String,
    pub categories: Vec<CategorySeed>,
    pub units: Vec<UnitSeed>,
    pub routes: Vec<RouteSeed>,
}

pub const SHINAN: &str = include_str!("demo/370202.toml");

pub fn shinan() -> anyhow::Result<DemoTenant> {
    Ok(toml::from_str(SHINAN)?)
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
