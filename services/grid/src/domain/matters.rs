//! Grid events and broadcasts, pure: the text and category checks, the
//! levels a matter is whistled up to, when an event may still be closed or
//! whistled, what a published fact may carry (no personal data in its
//! text), the share closed inside the grid, and which grids a broadcast
//! reaches inside the caller's scope.

use jiesu_common::tr;
use jiesu_pii::redact_text;
use jiesu_proto::grid::{EventStatsRow, GridEvent};

use super::{index::GridIndex, layer::Kind};
use crate::error::GridError;

/// Levels a grid event is whistled up to: community, street, district.
pub const LEVELS: [&str; 3] = ["L2", "L3", "L4"];

pub fn check_level(level: &str) -> Result<(), GridError> {
    if LEVELS.contains(&level) {
        return Ok(());
    }
    Err(GridError::field(
        "level",
        tr!(
            "必须是 L2（社区）、L3（街道）或 L4（区）",
            "must be L2 (community), L3 (street) or L4 (district)"
        ),
    ))
}

/// Free text that must be there: trimmed, at most `max` characters, no
/// control characters but line breaks.
pub fn text(field: &str, v: &str, max: usize) -> Result<String, GridError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(GridError::field(
            field,
            tr!(
                "必填，最多 {max} 个字符",
                "required, at most {max} characters"
            ),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(GridError::field(
            field,
            tr!("不能包含控制字符", "must not contain control characters"),
        ));
    }
    Ok(v.to_owned())
}

/// A category code (intake's tree; checked there), or nothing.
pub fn category(field: &str, v: &str) -> Result<String, GridError> {
    let v = v.trim();
    if v.len() > 32
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(GridError::field(
            field,
            tr!("必须是分类编码", "must be a category code"),
        ));
    }
    Ok(v.to_owned())
}

/// An event `who` may still close or whistle: in the grid they were
/// authorised for, and still only reported.
pub fn check_open(e: &GridEvent, authorized_grid: &str) -> Result<(), GridError> {
    if e.grid_code != authorized_grid {
        // Its grid was split or merged in between: ask again.
        return Err(GridError::GridChanged);
    }
    if e.status != "reported" {
        return Err(GridError::IllegalTransition(e.status.clone()));
    }
    Ok(())
}

/// A list's status filter: empty for all.
pub fn check_status_filter(status: &str) -> Result<(), GridError> {
    if ["", "reported", "closed", "whistled"].contains(&status) {
        return Ok(());
    }
    Err(GridError::field(
        "status",
        tr!(
            "必须是 reported、closed 或 whistled",
            "must be reported, closed or whistled"
        ),
    ))
}

/// What a fact about an event may carry: no personal data in the text.
pub fn public(mut e: GridEvent) -> GridEvent {
    e.content = redact_text(&e.content);
    e.result = redact_text(&e.result);
    e.reason = redact_text(&e.reason);
    e
}

/// A row of counts with its open matters and the share closed inside the
/// grid (of those that ended).
pub fn stats_row(key: String, reported: u32, closed: u32, whistled: u32) -> EventStatsRow {
    let ended = closed + whistled;
    EventStatsRow {
        key,
        reported,
        closed_in_grid: closed,
        whistled,
        open: reported.saturating_sub(ended),
        share_closed_in_grid: if ended > 0 {
            f64::from(closed) / f64::from(ended)
        } else {
            0.0
        },
    }
}

/// The rows and their total (key `total`).
pub fn stats_total(rows: &[EventStatsRow]) -> EventStatsRow {
    let sum = |f: fn(&EventStatsRow) -> u32| rows.iter().map(f).sum();
    stats_row(
        "total".into(),
        sum(|r| r.reported),
        sum(|r| r.closed_in_grid),
        sum(|r| r.whistled),
    )
}

/// What event counts are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsBy {
    Grid,
    Community,
    Street,
    County,
}

impl StatsBy {
    /// `grid`, `community` (the default), `street` or `county`.
    pub fn parse(by: &str) -> Result<Self, GridError> {
        match by.trim() {
            "grid" => Ok(Self::Grid),
            "community" | "" => Ok(Self::Community),
            "street" => Ok(Self::Street),
            "county" => Ok(Self::County),
            _ => Err(GridError::field(
                "by",
                tr!(
                    "必须是 grid、community、street 或 county",
                    "must be grid, community, street or county"
                ),
            )),
        }
    }
}

/// A broadcast's kind.
pub fn check_broadcast_kind(kind: &str) -> Result<String, GridError> {
    match kind.trim() {
        k @ ("command" | "emergency") => Ok(k.to_owned()),
        _ => Err(GridError::field(
            "kind",
            tr!(
                "必须是 command 或 emergency",
                "must be command or emergency"
            ),
        )),
    }
}

/// The grids a broadcast reaches: the named grids (each inside `scope`)
/// and the basic grids of the named regions (a region above the scope
/// reaches only the scope), sorted, each once.
pub fn broadcast_grids(
    index: &GridIndex,
    scope: &str,
    grid_codes: &[String],
    region_codes: &[String],
) -> Result<Vec<String>, GridError> {
    let mut grids: Vec<String> = Vec::new();
    for (i, code) in grid_codes.iter().enumerate() {
        if !index
            .get(code)
            .is_some_and(|g| g.community.starts_with(scope))
        {
            return Err(GridError::field(
                format!("grid_codes[{i}]"),
                tr!(
                    "您的管辖范围内没有网格 {code}",
                    "no grid {code} inside your scope"
                ),
            ));
        }
        grids.push(code.clone());
    }
    for (i, region) in region_codes.iter().enumerate() {
        let within = if region.starts_with(scope) {
            region.as_str()
        } else if scope.starts_with(region.as_str()) {
            scope
        } else {
            return Err(GridError::field(
                format!("region_codes[{i}]"),
                tr!("必须在您的管辖范围内", "must lie inside your scope"),
            ));
        };
        grids.extend(
            index
                .grids()
                .iter()
                .filter(|g| g.kind == Kind::Basic && g.community.starts_with(within))
                .map(|g| g.code.clone()),
        );
    }
    grids.sort();
    grids.dedup();
    if grids.is_empty() {
        return Err(GridError::field(
            "grid_codes",
            tr!(
                "请指定网格，或包含网格的区划",
                "name grids or regions that hold grids"
            ),
        ));
    }
    Ok(grids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::layer::{
        read,
        tests::{layer, square},
    };

    fn refusal<T: std::fmt::Debug>(r: Result<T, GridError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn texts_and_categories() {
        assert_eq!(
            text("content", " 楼道灯不亮\n ", 10).ok().as_deref(),
            Some("楼道灯不亮")
        );
        let cases = [
            ("", "content: required, at most 10 characters"),
            (
                "一二三四五六七八九十一",
                "content: required, at most 10 characters",
            ),
            ("a\u{7}b", "content: must not contain control characters"),
        ];
        for (raw, want) in cases {
            assert_eq!(refusal(text("content", raw, 10)), want, "{raw:?}");
        }
        assert_eq!(category("category", " SH01 ").ok().as_deref(), Some("SH01"));
        assert_eq!(category("category", "").ok().as_deref(), Some(""));
        assert_eq!(
            refusal(category("category", "SH 01")),
            "category: must be a category code"
        );
        assert!(check_level("L3").is_ok());
        assert!(refusal(check_level("L9")).starts_with("level: must be L2"));
        assert!(check_status_filter("").is_ok());
        assert!(check_status_filter("open").is_err());
        assert_eq!(StatsBy::parse("").ok(), Some(StatsBy::Community));
        assert_eq!(StatsBy::parse("street").ok(), Some(StatsBy::Street));
        assert!(refusal(StatsBy::parse("city")).starts_with("by: must be grid,"));
    }

    #[test]
    fn only_a_reported_event_of_the_authorised_grid_moves_on() {
        let e = |grid: &str, status: &str| GridEvent {
            grid_code: grid.into(),
            status: status.into(),
            ..GridEvent::default()
        };
        assert!(check_open(&e("G1", "reported"), "G1").is_ok());
        assert!(matches!(
            check_open(&e("G1-A", "reported"), "G1"),
            Err(GridError::GridChanged)
        ));
        assert_eq!(
            refusal(check_open(&e("G1", "closed"), "G1")),
            "the event is already closed"
        );
    }

    #[test]
    fn a_published_event_carries_no_phone_number() {
        let e = public(GridEvent {
            content: "张先生电话13912345678，楼道堵塞".into(),
            result: "已联系13912345678".into(),
            ..GridEvent::default()
        });
        assert!(!e.content.contains("13912345678"), "{}", e.content);
        assert!(!e.result.contains("13912345678"), "{}", e.result);
        assert!(e.content.contains("楼道堵塞"));
    }

    #[test]
    fn the_share_closed_in_the_grid_counts_ended_matters_only() {
        let rows = [
            stats_row("G1".into(), 3, 1, 1),
            stats_row("G2".into(), 2, 0, 0),
        ];
        assert_eq!((rows[0].open, rows[0].share_closed_in_grid), (1, 0.5));
        assert_eq!((rows[1].open, rows[1].share_closed_in_grid), (2, 0.0));
        let total = stats_total(&rows);
        assert_eq!(
            (
                total.key.as_str(),
                total.reported,
                total.open,
                total.share_closed_in_grid
            ),
            ("total", 5, 3, 0.5)
        );
    }

    #[test]
    fn a_broadcast_reaches_grids_inside_the_scope_only() {
        let zs = "370202006001";
        let mut g3 = square("G3", "basic", 120.38, 36.07, 120.40, 36.08);
        g3["properties"]["community_code"] = "370202006002".into();
        let grids = read(&layer(vec![
            square("G1", "basic", 120.38, 36.06, 120.40, 36.07),
            square("G2", "basic", 120.40, 36.06, 120.42, 36.07),
            g3,
        ]))
        .unwrap_or_default();
        let index = GridIndex::build(grids);
        let s = |v: &[&str]| v.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            broadcast_grids(&index, "370202", &s(&["G3"]), &s(&[zs])).ok(),
            Some(s(&["G1", "G2", "G3"]))
        );
        // A district-wide region from a community supervisor reaches the
        // community only.
        assert_eq!(
            broadcast_grids(&index, zs, &[], &s(&["370202"])).ok(),
            Some(s(&["G1", "G2"]))
        );
        assert_eq!(
            refusal(broadcast_grids(&index, zs, &s(&["G3"]), &[])),
            "grid_codes[0]: no grid G3 inside your scope"
        );
        assert_eq!(
            refusal(broadcast_grids(&index, zs, &[], &s(&["370203"]))),
            "region_codes[0]: must lie inside your scope"
        );
        assert_eq!(
            refusal(broadcast_grids(&index, "370202", &[], &s(&["370202009"]))),
            "grid_codes: name grids or regions that hold grids"
        );
    }
}
