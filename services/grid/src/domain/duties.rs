//! Duty rules, pure: how often a rule's task recurs and which period (in
//! China time) a moment falls in, the report periods compliance is counted
//! over, the rules a tenant starts with, which tasks a rule asks for on a
//! layer, and whether a check-in is close enough to its grid. The store
//! loads rules, people and tasks; this module decides.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use geo::{ClosestPoint, Contains, Distance, Haversine, InteriorPoint, Point};
use jiesu_common::{
    time::{china_day, china_midnight},
    tr,
};
use jiesu_proto::grid::DutyRule;

use super::{
    index::GridIndex,
    layer::{Grid, Kind},
    people::category_label,
};
use crate::error::GridError;

/// How often a rule's task recurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    Day,
    Week,
    Month,
}

impl Every {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "day" => Self::Day,
            "week" => Self::Week,
            "month" => Self::Month,
            _ => return None,
        })
    }

    /// The period holding `at` (China time): its key and its end (the
    /// task's due time).
    pub fn period(self, at: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let d = china_day(at);
        match self {
            Self::Day => (
                d.format("%Y-%m-%d").to_string(),
                china_midnight(d + Duration::days(1)),
            ),
            Self::Week => {
                let w = d.iso_week();
                let monday = d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
                (
                    format!("{}-W{:02}", w.year(), w.week()),
                    china_midnight(monday + Duration::days(7)),
                )
            }
            Self::Month => {
                let first = d.with_day(1).unwrap_or(d);
                let next = first
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap_or(first);
                (d.format("%Y-%m").to_string(), china_midnight(next))
            }
        }
    }
}

/// A report period `YYYY-MM`, `YYYY-Www` or `YYYY-MM-DD` as [start, end).
pub fn report_period(s: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some((china_midnight(d), china_midnight(d + Duration::days(1))));
    }
    if let Some((y, w)) = s.split_once("-W") {
        let d = NaiveDate::from_isoywd_opt(y.parse().ok()?, w.parse().ok()?, chrono::Weekday::Mon)?;
        return Some((china_midnight(d), china_midnight(d + Duration::days(7))));
    }
    let d = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok()?;
    let next = d.checked_add_months(chrono::Months::new(1))?;
    Some((china_midnight(d), china_midnight(next)))
}

/// What a rule's tasks visit.
pub const TARGETS: [&str; 4] = ["household", "key_person", "key_place", "patrol"];

/// The rules a tenant starts with.
pub fn default_rules() -> Vec<DutyRule> {
    let rule = |code: &str, name: &str, target: &str, cats: &[&str], every: &str| DutyRule {
        code: code.into(),
        name: name.into(),
        target: target.into(),
        categories: cats.iter().map(|c| (*c).to_owned()).collect(),
        every: every.into(),
        active: true,
    };
    vec![
        rule(
            "households",
            "入户走访（每户每月）",
            "household",
            &[],
            "month",
        ),
        rule(
            "must_visit",
            "四必访（每周）",
            "key_person",
            &[
                "elderly_alone",
                "disabled",
                "hardship",
                "newborn",
                "newly_wed",
            ],
            "week",
        ),
        rule(
            "special_care",
            "重点人员走访（每周）",
            "key_person",
            &["community_correction", "mental_illness"],
            "week",
        ),
        rule(
            "key_places",
            "重点场所巡查（每日）",
            "key_place",
            &[],
            "day",
        ),
        rule("patrol", "网格巡查（每周）", "patrol", &[], "week"),
    ]
}

/// Checks a tenant's new rule set; the first problem is named.
pub fn check_rules(rules: &[DutyRule]) -> Result<(), GridError> {
    let mut seen = std::collections::HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let at = |f: &str| format!("rules[{i}].{f}");
        if r.code.trim().is_empty() || !seen.insert(r.code.trim()) {
            return Err(GridError::field(
                at("code"),
                tr!("必填且不能重复", "required and unique"),
            ));
        }
        if r.name.trim().is_empty() {
            return Err(GridError::field(at("name"), tr!("必填", "required")));
        }
        if !TARGETS.contains(&r.target.as_str()) {
            return Err(GridError::field(
                at("target"),
                tr!(
                    "必须是以下之一：{}",
                    "must be one of {}",
                    TARGETS.join(", ")
                ),
            ));
        }
        if Every::parse(&r.every).is_none() {
            return Err(GridError::field(
                at("every"),
                tr!("必须是 day、week 或 month", "must be day, week or month"),
            ));
        }
        if let Some(c) = r.categories.iter().find(|c| category_label(c).is_none()) {
            return Err(GridError::field(
                at("categories"),
                tr!(
                    "`{c}` 不是重点人员类别",
                    "`{c}` is not a key-person category"
                ),
            ));
        }
    }
    Ok(())
}

/// A household or key person a rule may visit, as the store lists them
/// (`category` empty for households).
#[derive(Debug, Clone)]
pub struct Visitable {
    pub id: String,
    pub grid: String,
    pub category: String,
}

/// One task to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub grid: String,
    pub community: String,
    pub kind: &'static str,
    pub target: String,
    pub label: String,
}

/// The tasks a rule of `target` asks for on `index`: one per household or
/// key person in a current grid (`people`), one per key place (done by
/// the basic grid around it), else one patrol per basic grid.
pub fn plan(target: &str, index: &GridIndex, people: Vec<Visitable>) -> Vec<NewTask> {
    let community = |code: &str| index.get(code).map(|g| g.community.clone());
    let mut tasks = Vec::new();
    match target {
        "household" | "key_person" => {
            for p in people {
                let Some(c) = community(&p.grid) else {
                    continue;
                };
                let (kind, label) = if target == "household" {
                    ("household", "入户走访".to_owned())
                } else {
                    let cat = category_label(&p.category).unwrap_or("其他");
                    ("key_person", format!("重点人员走访（{cat}）"))
                };
                tasks.push(NewTask {
                    grid: p.grid,
                    community: c,
                    kind,
                    target: p.id,
                    label,
                });
            }
        }
        "key_place" => {
            for g in index.grids().iter().filter(|g| g.kind == Kind::Dedicated) {
                // The basic grid around the place does the visit.
                let Some(p) = g.shape.interior_point() else {
                    continue;
                };
                let Some(basic) = index.locate(p.x(), p.y()).basic else {
                    continue;
                };
                tasks.push(NewTask {
                    grid: basic.code.clone(),
                    community: basic.community.clone(),
                    kind: "key_place",
                    target: g.code.clone(),
                    label: format!("重点场所巡查（{}）", g.name),
                });
            }
        }
        _ => {
            for g in index.grids().iter().filter(|g| g.kind == Kind::Basic) {
                tasks.push(NewTask {
                    grid: g.code.clone(),
                    community: g.community.clone(),
                    kind: "patrol",
                    target: g.code.clone(),
                    label: "网格巡查".into(),
                });
            }
        }
    }
    tasks
}

/// Meters from a point to a grid: 0 inside, else to its nearest edge.
pub fn distance_m(grid: &Grid, lon: f64, lat: f64) -> f64 {
    let p = Point::new(lon, lat);
    if grid.shape.contains(&p) {
        return 0.0;
    }
    match grid.shape.closest_point(&p) {
        geo::Closest::Intersection(_) => 0.0,
        geo::Closest::SinglePoint(q) => Haversine.distance(p, q),
        geo::Closest::Indeterminate => f64::INFINITY,
    }
}

/// How far from `grid` a check-in at (`lon`, `lat`) lies, if it is within
/// `tolerance_m` (GPS drifts, a doorway may sit on the boundary).
pub fn check_position(grid: &Grid, lon: f64, lat: f64, tolerance_m: f64) -> Result<f64, GridError> {
    let distance = distance_m(grid, lon, lat);
    if distance > tolerance_m {
        return Err(GridError::field(
            "position",
            tr!(
                "打卡位置在网格 {} 之外 {distance:.0} 米；请在网格内或 {tolerance_m:.0} 米范围内打卡",
                "the position lies {distance:.0} m outside grid {}; check in inside it or within {tolerance_m:.0} m",
                grid.code
            ),
        ));
    }
    Ok(distance)
}

/// A check-in photo's MIME type: none sent, or a JPEG or PNG of at most
/// `max_bytes` (other images are refused: the console shows these two).
pub fn photo_type(photo: &[u8], max_bytes: usize) -> Result<Option<&'static str>, GridError> {
    if photo.is_empty() {
        return Ok(None);
    }
    if photo.len() > max_bytes {
        return Err(GridError::field(
            "photo",
            tr!("最多 {max_bytes} 字节", "at most {max_bytes} bytes"),
        ));
    }
    match jiesu_common::media::sniff(photo) {
        Some((_, mime @ ("image/jpeg" | "image/png"))) => Ok(Some(mime)),
        _ => Err(GridError::field(
            "photo",
            tr!("必须是 JPEG 或 PNG 图片", "must be a JPEG or PNG image"),
        )),
    }
}

/// The tenant's rules, or the default ones while it has none.
pub fn or_default(rules: Vec<DutyRule>) -> Vec<DutyRule> {
    if rules.is_empty() {
        default_rules()
    } else {
        rules
    }
}

/// What compliance is counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplianceBy {
    Grid,
    Community,
    Worker,
}

impl ComplianceBy {
    /// `grid` (the default), `community` or `worker`.
    pub fn parse(by: &str) -> Result<Self, GridError> {
        match by.trim() {
            "grid" | "" => Ok(Self::Grid),
            "community" => Ok(Self::Community),
            "worker" => Ok(Self::Worker),
            _ => Err(GridError::field(
                "by",
                tr!(
                    "必须是 worker、grid 或 community",
                    "must be worker, grid or community"
                ),
            )),
        }
    }
}

/// Which tasks a listing shows: `open` (the default), `done` or `all`.
pub fn task_state(state: &str) -> Result<&'static str, GridError> {
    match state.trim() {
        "" | "open" => Ok("open"),
        "done" => Ok("done"),
        "all" => Ok("all"),
        _ => Err(GridError::field(
            "state",
            tr!("必须是 open、done 或 all", "must be open, done or all"),
        )),
    }
}

/// Done over due, 0 when nothing was due.
pub fn share(done: i64, due: i64) -> f64 {
    if due > 0 {
        done as f64 / due as f64
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::layer::{
        read,
        tests::{layer, square},
    };

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now())
    }

    #[test]
    fn periods_follow_china_time() {
        // 2026-11-22 20:00 UTC is 2026-11-23 04:00 in China (a Monday).
        let t = at("2026-11-22T20:00:00Z");
        let cases = [
            (Every::Day, "2026-11-23", "2026-11-23T16:00:00Z"),
            (Every::Week, "2026-W48", "2026-11-29T16:00:00Z"),
            (Every::Month, "2026-11", "2026-11-30T16:00:00Z"),
        ];
        for (every, key, due) in cases {
            assert_eq!(every.period(t), (key.into(), at(due)), "{every:?}");
        }
        // The last second of a Sunday in China is still that week.
        let sunday = at("2026-11-29T15:59:59Z");
        assert_eq!(Every::Week.period(sunday).0, "2026-W48");
        assert_eq!(Every::Week.period(at("2026-11-29T16:00:00Z")).0, "2026-W49");
        // A month ends when the next begins in China (16:00 UTC the day before).
        assert_eq!(
            Every::Month.period(at("2027-01-31T10:00:00Z")),
            ("2027-01".into(), at("2027-01-31T16:00:00Z"))
        );
    }

    #[test]
    fn report_periods_are_days_weeks_or_months() {
        let cases = [
            (
                "2026-11",
                Some(("2026-10-31T16:00:00Z", "2026-11-30T16:00:00Z")),
            ),
            (
                "2026-W48",
                Some(("2026-11-22T16:00:00Z", "2026-11-29T16:00:00Z")),
            ),
            (
                "2026-11-23",
                Some(("2026-11-22T16:00:00Z", "2026-11-23T16:00:00Z")),
            ),
            (
                "2026-12",
                Some(("2026-11-30T16:00:00Z", "2026-12-31T16:00:00Z")),
            ),
            ("November", None),
            ("2026-W60", None),
            ("last-month", None),
        ];
        for (raw, want) in cases {
            assert_eq!(
                report_period(raw),
                want.map(|(s, e)| (at(s), at(e))),
                "{raw}"
            );
        }
    }

    #[test]
    fn the_default_rules_pass_their_own_check() {
        let rules = default_rules();
        assert_eq!(rules.len(), 5);
        assert_eq!(or_default(vec![]).len(), 5);
        assert_eq!(or_default(rules[..1].to_vec()).len(), 1);
        assert!(check_rules(&rules).is_ok());
        let mut bad = rules.clone();
        bad[1].every = "fortnight".into();
        let e = check_rules(&bad).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("rules[1].every: must be day, week or month")
        );
        let mut twice = rules.clone();
        twice[2].code = twice[0].code.clone();
        let e = check_rules(&twice).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("rules[2].code: required and unique"));
        let mut cat = rules;
        cat[1].categories.push("wizard".into());
        let e = check_rules(&cat).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("rules[1].categories: `wizard` is not a key-person category")
        );
    }

    fn one(code: &str, kind: &str, x0: f64, y0: f64, x1: f64, y1: f64) -> Grid {
        read(&layer(vec![square(code, kind, x0, y0, x1, y1)]))
            .unwrap_or_default()
            .remove(0)
    }

    #[test]
    fn a_rule_plans_one_task_per_target() {
        let index = GridIndex::build(vec![
            one("G1", "basic", 120.38, 36.06, 120.40, 36.07),
            one("G2", "basic", 120.40, 36.06, 120.42, 36.07),
            one("XX-1", "dedicated", 120.385, 36.062, 120.386, 36.063),
        ]);
        let person = |id: &str, grid: &str, category: &str| Visitable {
            id: id.into(),
            grid: grid.into(),
            category: category.into(),
        };
        let patrols = plan("patrol", &index, vec![]);
        assert_eq!(patrols.len(), 2);
        let places = plan("key_place", &index, vec![]);
        assert_eq!(
            (places[0].grid.as_str(), places[0].label.as_str()),
            ("G1", "重点场所巡查（XX-1）")
        );
        let people = vec![person("k1", "G1", "disabled"), person("k2", "GONE", "")];
        let visits = plan("key_person", &index, people);
        assert_eq!(visits.len(), 1, "a person in a retired grid waits");
        assert_eq!(visits[0].label, "重点人员走访（残疾人）");
        let homes = plan("household", &index, vec![person("h1", "G2", "")]);
        assert_eq!(
            (homes[0].kind, homes[0].label.as_str()),
            ("household", "入户走访")
        );
    }

    #[test]
    fn distance_is_zero_inside_and_meters_outside() {
        let g = one("G", "basic", 120.30, 36.04, 120.31, 36.05);
        assert!(distance_m(&g, 120.305, 36.045).abs() < f64::EPSILON);
        // 0.001° of latitude is about 111 m.
        let d = distance_m(&g, 120.305, 36.051);
        assert!((d - 111.2).abs() < 1.0, "{d}");
        assert!(check_position(&g, 120.305, 36.0502, 50.0).is_ok());
        let far = check_position(&g, 120.305, 36.051, 50.0)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            far.starts_with("position: the position lies 111 m outside grid G"),
            "{far}"
        );
    }

    #[test]
    fn photos_are_jpeg_or_png_within_the_limit() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0];
        assert_eq!(photo_type(&jpeg, 16).ok().flatten(), Some("image/jpeg"));
        assert_eq!(photo_type(b"", 10).ok().flatten(), None);
        for (bytes, want) in [
            (&b"GIF89a"[..], "photo: must be a JPEG or PNG image"),
            (
                b"RIFF\0\0\0\0WEBPVP8 ",
                "photo: must be a JPEG or PNG image",
            ),
            (
                &[0xFF, 0xD8, 0xFF, 0xE0].repeat(5),
                "photo: at most 16 bytes",
            ),
        ] {
            let e = photo_type(bytes, 16).err().map(|e| e.to_string());
            assert_eq!(e.as_deref(), Some(want), "{bytes:?}");
        }
        assert!((share(1, 4) - 0.25).abs() < f64::EPSILON);
        assert_eq!(ComplianceBy::parse("").ok(), Some(ComplianceBy::Grid));
        assert_eq!(
            ComplianceBy::parse(" worker ").ok(),
            Some(ComplianceBy::Worker)
        );
        assert!(ComplianceBy::parse("street").is_err());
        assert_eq!(task_state("").ok(), Some("open"));
        assert_eq!(
            task_state("late").err().map(|e| e.to_string()).as_deref(),
            Some("state: must be open, done or all")
        );
        assert!(share(0, 0).abs() < f64::EPSILON);
    }
}
