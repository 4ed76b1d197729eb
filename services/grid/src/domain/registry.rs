//! The registers next to the layer, pure: pairs of professional and basic
//! grids and the building registry (门牌) as CSV, how two spellings of one
//! address compare, and which part of the division tree a caller lists.

use jiesu_common::{
    Text,
    geo::{is_latitude, is_longitude},
    tr,
};

use super::{index::GridIndex, layer::Kind};
use crate::error::{GridError, refuse};

/// Numbered data lines of a CSV after its header (checked).
pub fn csv_lines<'a>(
    csv: &'a str,
    header: &str,
    problems: &mut Vec<Text>,
) -> Vec<(usize, &'a str)> {
    let mut lines = csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, h)) if h.trim().trim_start_matches('\u{feff}') == header => {}
        _ => {
            problems.push(tr!(
                "第 1 行：表头必须是 {header}",
                "line 1: the header must be {header}"
            ));
            return Vec::new();
        }
    }
    lines.map(|(i, l)| (i + 1, l)).collect()
}

/// `professional_code,basic_code` lines, each naming a professional and a
/// basic grid (`kind_of` a current grid's kind).
pub fn read_pairs(
    csv: &str,
    kind_of: impl Fn(&str) -> Option<Kind>,
) -> Result<Vec<(String, String)>, GridError> {
    let mut problems = Vec::new();
    let mut pairs = Vec::new();
    for (n, line) in csv_lines(csv, "professional_code,basic_code", &mut problems) {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let [p, b] = cols[..] else {
            problems.push(tr!("第 {n} 行：需要两列", "line {n}: needs two columns"));
            continue;
        };
        if kind_of(p) != Some(Kind::Professional) {
            problems.push(tr!(
                "第 {n} 行：{p} 不是专业网格",
                "line {n}: {p} is not a professional grid"
            ));
        }
        if kind_of(b) != Some(Kind::Basic) {
            problems.push(tr!(
                "第 {n} 行：{b} 不是基础网格",
                "line {n}: {b} is not a basic grid"
            ));
        }
        pairs.push((p.to_owned(), b.to_owned()));
    }
    if problems.is_empty() {
        Ok(pairs)
    } else {
        Err(refuse("csv", &problems))
    }
}

/// A registry building: its code, address and point.
#[derive(Debug, Clone, PartialEq)]
pub struct Building {
    pub code: String,
    pub address: String,
    pub lat: f64,
    pub lon: f64,
}

/// `code,address,lat,lon` lines.
pub fn read_buildings(csv: &str) -> Result<Vec<Building>, GridError> {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    for (n, line) in csv_lines(csv, "code,address,lat,lon", &mut problems) {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let [code, address, lat, lon] = cols[..] else {
            problems.push(tr!("第 {n} 行：需要四列", "line {n}: needs four columns"));
            continue;
        };
        let (Ok(lat), Ok(lon)) = (lat.parse::<f64>(), lon.parse::<f64>()) else {
            problems.push(tr!(
                "第 {n} 行：lat 和 lon 必须是数字",
                "line {n}: lat and lon must be numbers"
            ));
            continue;
        };
        if code.is_empty() || address.is_empty() || !is_latitude(lat) || !is_longitude(lon) {
            problems.push(tr!(
                "第 {n} 行：code 和 address 必填，lat/lon 须在有效范围内",
                "line {n}: code and address required, lat/lon in range"
            ));
            continue;
        }
        rows.push(Building {
            code: code.to_owned(),
            address: address.to_owned(),
            lat,
            lon,
        });
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(refuse("csv", &problems))
    }
}

/// The codes of the buildings in no basic grid (stored all the same: the
/// layer may come later).
pub fn outside(index: Option<&GridIndex>, buildings: &[Building]) -> Vec<String> {
    buildings
        .iter()
        .filter(|b| {
            index
                .and_then(|i| i.locate(b.lon, b.lat).basic.map(|_| ()))
                .is_none()
        })
        .map(|b| b.code.clone())
        .collect()
}

/// Spaces dropped, full-width digits and letters made ASCII: how two
/// spellings of one 门牌 compare.
pub fn normalize_address(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{ff10}'..='\u{ff5a}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '號' => '号',
            _ => c,
        })
        .collect()
}

/// The code prefix a region listing reads: the caller's `scope` bounds it,
/// `under` narrows it; `None` when `under` lies outside the scope.
pub fn listing_prefix<'a>(scope: &'a str, under: &'a str) -> Option<&'a str> {
    if under.is_empty() || scope.starts_with(under) {
        Some(scope)
    } else if under.starts_with(scope) {
        Some(under)
    } else {
        None
    }
}

/// A division tree CSV's problems, the first 20 (the tree names its own
/// lines; no count of the rest).
pub fn refuse_regions(problems: &[Text]) -> GridError {
    GridError::field("csv", Text::join(problems.iter().take(20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<T: std::fmt::Debug>(r: Result<T, GridError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn addresses_compare_without_spaces_or_full_width_digits() {
        let cases = [
            ("东海西路 １５号", "东海西路15号"),
            ("市南区 燕儿岛路８号3单元502", "市南区燕儿岛路8号3单元502"),
            ("山东路６號", "山东路6号"),
            ("ＡＢＣ栋", "ABC栋"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_address(raw), want, "{raw}");
        }
    }

    #[test]
    fn csv_headers_are_checked_and_lines_numbered() {
        let mut p = Vec::new();
        assert_eq!(
            csv_lines("code,x\n1,2", "code,address,lat,lon", &mut p).len(),
            0
        );
        assert_eq!(
            p,
            vec![tr!(
                "第 1 行：表头必须是 code,address,lat,lon",
                "line 1: the header must be code,address,lat,lon"
            )]
        );
        let mut p = Vec::new();
        let lines = csv_lines("\u{feff}code,name\n\nA,1\nB,2\n", "code,name", &mut p);
        assert_eq!(lines, vec![(3, "A,1"), (4, "B,2")]);
    }

    #[test]
    fn pairs_name_a_professional_and_a_basic_grid() {
        let kind_of = |c: &str| match c {
            "JG-1" => Some(Kind::Professional),
            "G1" | "G2" => Some(Kind::Basic),
            _ => None,
        };
        let ok = read_pairs("professional_code,basic_code\nJG-1,G1\nJG-1, G2\n", kind_of);
        assert_eq!(ok.ok().map(|p| p.len()), Some(2));
        let msg = refusal(read_pairs(
            "professional_code,basic_code\nJG-1,G1\nG2,JG-1\nJG-1,NOPE\nJG-1\n",
            kind_of,
        ));
        assert_eq!(
            msg,
            "csv: line 3: G2 is not a professional grid; line 3: JG-1 is not a basic grid; \
             line 4: NOPE is not a basic grid; line 5: needs two columns"
        );
        let zh = read_pairs("professional_code,basic_code\nJG-1\n", kind_of)
            .err()
            .map(|e| e.text().zh);
        assert_eq!(zh.as_deref(), Some("csv：第 2 行：需要两列"));
    }

    #[test]
    fn buildings_need_a_code_an_address_and_a_point_on_earth() {
        let ok = read_buildings("code,address,lat,lon\nB-8,市南区燕儿岛路8号,36.0611,120.3801\n");
        assert_eq!(
            ok.ok(),
            Some(vec![Building {
                code: "B-8".into(),
                address: "市南区燕儿岛路8号".into(),
                lat: 36.0611,
                lon: 120.3801
            }])
        );
        let msg = refusal(read_buildings(
            "code,address,lat,lon\nB-1,x,91,120\nB-2,x,north,120\n,x,36,120\nB-4,x\n",
        ));
        assert_eq!(
            msg,
            "csv: line 2: code and address required, lat/lon in range; \
             line 3: lat and lon must be numbers; \
             line 4: code and address required, lat/lon in range; line 5: needs four columns"
        );
        assert!(refusal(read_buildings("code,address\nB-1,x\n")).starts_with("csv: line 1:"));
        let far = Building {
            code: "B-FAR".into(),
            address: "崂山区某路1号".into(),
            lat: 36.2,
            lon: 120.6,
        };
        assert_eq!(outside(None, std::slice::from_ref(&far)), vec!["B-FAR"]);
    }

    #[test]
    fn a_listing_stays_inside_the_callers_scope() {
        let cases = [
            ("370202", "", Some("370202")),
            ("370202", "370202006", Some("370202006")),
            ("370202007", "370202", Some("370202007")),
            ("370202007", "370202006", None),
        ];
        for (scope, under, want) in cases {
            assert_eq!(listing_prefix(scope, under), want, "{scope} {under}");
        }
        let many: Vec<Text> = (0..25).map(|i| tr!("第 {i} 行", "line {i}")).collect();
        let refused = refuse_regions(&many).text();
        assert!(refused.en.ends_with("line 19") && refused.zh.ends_with("第 19 行"));
    }
}
