//! Changing the shape of a layer, pure: whether an import fits the tenant
//! (communities inside it, no basic grids of one community overlapping),
//! whether split parts replace their grid exactly, what a merge yields,
//! and a shape as the GeoJSON text the store keeps.

use std::collections::HashSet;

use geo::{Area, BooleanOps, BoundingRect, MultiPolygon, Relate};
use jiesu_common::{Text, tr};

use super::{
    index::GridIndex,
    layer::{self, Grid},
};
use crate::error::{GridError, refuse};

/// Checks an import's grids against the tenant: each community inside
/// the tenant's region, and no basic grids of one community overlapping,
/// among themselves or with the grids of `existing` they do not replace.
pub fn check_import(
    tenant: &str,
    grids: &[(Grid, String)],
    existing: Option<&GridIndex>,
) -> Result<(), GridError> {
    let outside: Vec<Text> = grids
        .iter()
        .filter(|(g, _)| !g.community.starts_with(tenant))
        .map(|(g, _)| {
            let (code, community) = (&g.code, &g.community);
            tr!(
                "{code}：社区 {community} 不在本辖区范围内",
                "{code}: community {community} is not in the tenant's region"
            )
        })
        .collect();
    if !outside.is_empty() {
        return Err(refuse("geojson", &outside));
    }
    let new_codes: HashSet<&str> = grids.iter().map(|(g, _)| g.code.as_str()).collect();
    let kept = existing
        .into_iter()
        .flat_map(|idx| idx.grids().iter())
        .filter(|g| !new_codes.contains(g.code.as_str()));
    let clashes: Vec<Text> = layer::overlaps(kept.chain(grids.iter().map(|(g, _)| g)))
        .into_iter()
        .filter(|(a, b)| new_codes.contains(a.as_str()) || new_codes.contains(b.as_str()))
        .map(|(a, b)| {
            tr!(
                "同一社区的基础网格 {a} 与 {b} 相互重叠",
                "basic grids {a} and {b} of one community overlap"
            )
        })
        .collect();
    if !clashes.is_empty() {
        return Err(refuse("geojson", &clashes));
    }
    Ok(())
}

/// Relative slack when comparing areas (floating point, not surveying).
const AREA_SLACK: f64 = 1e-6;

/// Checks that `parts` replace `whole` exactly: each lies inside it, none
/// overlaps another, together they cover it. Every problem is named.
pub fn check_split(whole: &Grid, parts: &[Grid]) -> Vec<Text> {
    let mut problems = Vec::new();
    if parts.len() < 2 {
        problems.push(tr!(
            "拆分至少需要两个部分",
            "a split needs at least two parts"
        ));
        return problems;
    }
    let grid = &whole.code;
    for p in parts {
        if !whole.shape.relate(&p.shape).is_covers() {
            let part = &p.code;
            problems.push(tr!(
                "部分 {part} 超出了网格 {grid} 的范围",
                "part {part} reaches outside grid {grid}"
            ));
        }
    }
    for (i, a) in parts.iter().enumerate() {
        for b in parts.iter().skip(i + 1) {
            let m = a.shape.relate(&b.shape);
            if m.is_intersects() && !m.is_touches() {
                let (a, b) = (&a.code, &b.code);
                problems.push(tr!("部分 {a} 与 {b} 相互重叠", "parts {a} and {b} overlap"));
            }
        }
    }
    let sum: f64 = parts.iter().map(|p| p.shape.unsigned_area()).sum();
    let area = whole.shape.unsigned_area();
    if problems.is_empty() && (sum - area).abs() > area * AREA_SLACK {
        let share = 100.0 * sum / area;
        problems.push(tr!(
            "各部分只覆盖了网格 {grid} 的 {share:.1} %，必须完整覆盖",
            "the parts cover {share:.1} % of grid {grid}; they must cover all of it"
        ));
    }
    problems
}

/// [`check_split`], and no part may take the code of another current grid
/// (`is_grid`); the whole's own code may go on.
pub fn check_split_in(
    whole: &Grid,
    parts: &[Grid],
    is_grid: impl Fn(&str) -> bool,
) -> Result<(), GridError> {
    let mut problems = check_split(whole, parts);
    for g in parts {
        if g.code != whole.code && is_grid(&g.code) {
            let code = &g.code;
            problems.push(tr!(
                "部分的编码 {code} 已是现有网格",
                "part code {code} is already a grid"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(refuse("parts_geojson", &problems))
    }
}

/// The union of grids of one kind and community, or what stops the merge.
pub fn merged_shape(sources: &[&Grid]) -> Result<MultiPolygon<f64>, Vec<Text>> {
    let mut problems = Vec::new();
    if sources.len() < 2 {
        problems.push(too_few_to_merge());
    }
    if let Some(first) = sources.first() {
        for g in sources.iter().skip(1) {
            if g.kind != first.kind || g.community != first.community {
                let (a, b) = (&first.code, &g.code);
                problems.push(tr!(
                    "codes：{a} 与 {b} 的类型或所属社区不同；只有同类型、同社区的网格才能合并",
                    "codes: {a} and {b} differ in kind or community; only grids of one kind and community merge"
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut shape = MultiPolygon::new(Vec::new());
    for g in sources {
        shape = shape.union(&g.shape);
    }
    Ok(shape)
}

fn too_few_to_merge() -> Text {
    tr!(
        "codes：合并至少需要两个网格",
        "codes: a merge needs at least two grids"
    )
}

/// What a merge asks for: the grids (`codes`) and the new grid's code and
/// name (the code alone when no name is given).
pub struct MergeRequest<'a> {
    pub codes: &'a [String],
    pub code: &'a str,
    pub name: &'a str,
}

/// The merged grid and the codes it ends, from the current grids (`get`).
pub fn plan_merge(
    req: &MergeRequest<'_>,
    get: impl Fn(&str) -> Option<Grid>,
) -> Result<(Grid, Vec<String>), GridError> {
    let mut sources = Vec::new();
    let mut seen = HashSet::new();
    for (i, code) in req.codes.iter().enumerate() {
        if !seen.insert(code.trim()) {
            return Err(GridError::field(
                format!("codes[{i}]"),
                tr!("重复出现", "appears twice"),
            ));
        }
        sources.push(get(code.trim()).ok_or_else(|| {
            GridError::field(
                format!("codes[{i}]"),
                tr!("没有网格 {code}", "no grid {code}"),
            )
        })?);
    }
    let code = req.code.trim();
    if code.is_empty() || code.len() > 64 {
        return Err(GridError::field(
            "code",
            tr!("必填，最多 64 个字符", "required, at most 64 characters"),
        ));
    }
    if !seen.contains(code) && get(code).is_some() {
        return Err(GridError::field(
            "code",
            tr!("{code} 已是现有网格", "{code} is already a grid"),
        ));
    }
    let refs: Vec<&Grid> = sources.iter().collect();
    let shape = merged_shape(&refs).map_err(|p| refuse("codes", &p))?;
    let Some(first) = sources.first() else {
        return Err(refuse("codes", &[too_few_to_merge()]));
    };
    let merged = Grid {
        code: code.to_owned(),
        name: match req.name.trim() {
            "" => code.to_owned(),
            n => n.to_owned(),
        },
        kind: first.kind,
        community: first.community.clone(),
        shape,
    };
    Ok((merged, sources.iter().map(|g| g.code.clone()).collect()))
}

/// A MultiPolygon as GeoJSON geometry text (what the store keeps).
pub fn geometry_json(shape: &MultiPolygon<f64>) -> String {
    let polys: Vec<serde_json::Value> = shape
        .0
        .iter()
        .map(|p| {
            let ring = |r: &geo::LineString<f64>| -> Vec<[f64; 2]> {
                r.0.iter().map(|c| [c.x, c.y]).collect()
            };
            let mut rings = vec![ring(p.exterior())];
            rings.extend(p.interiors().iter().map(ring));
            serde_json::json!(rings)
        })
        .collect();
    if polys.len() == 1 {
        serde_json::json!({"type": "Polygon", "coordinates": polys[0]}).to_string()
    } else {
        serde_json::json!({"type": "MultiPolygon", "coordinates": polys}).to_string()
    }
}

/// Reads split parts, taking kind and community from the grid they split.
pub fn read_parts(whole: &Grid, geojson: &str) -> Result<Vec<(Grid, String)>, Vec<Text>> {
    let mut doc: serde_json::Value = serde_json::from_str(geojson)
        .map_err(|e| vec![tr!("不是有效的 JSON：{e}", "not JSON: {e}")])?;
    // Only what has the expected shape is filled in (indexing a string or a
    // number as an object would panic); the layer reader names the rest.
    let features = doc.get_mut("features").and_then(|f| f.as_array_mut());
    for f in features.into_iter().flatten() {
        let Some(f) = f.as_object_mut() else { continue };
        let props = f.entry("properties").or_insert(serde_json::Value::Null);
        if props.is_null() {
            *props = serde_json::json!({});
        }
        if let Some(p) = props.as_object_mut() {
            p.insert("kind".into(), whole.kind.as_str().into());
            p.insert("community_code".into(), whole.community.clone().into());
        }
    }
    layer::read_with_geometry(&doc.to_string())
}

/// A shape's bounding box `[min lon, min lat, max lon, max lat]` (the
/// columns an "as of" lookup narrows by).
pub fn bbox(shape: &MultiPolygon<f64>) -> [Option<f64>; 4] {
    shape.bounding_rect().map_or([None; 4], |r| {
        [
            Some(r.min().x),
            Some(r.min().y),
            Some(r.max().x),
            Some(r.max().y),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::layer::tests::{layer, square};

    fn grid(code: &str, x0: f64, x1: f64) -> Grid {
        let l = layer(vec![square(code, "basic", x0, 0.0, x1, 1.0)]);
        layer::read(&l).unwrap_or_default().remove(0)
    }

    #[test]
    fn parts_of_any_shape_are_refused_not_panicked_on() {
        let whole = grid("G", 0.0, 2.0);
        for bad in [
            r#""""#,
            "[]",
            "5",
            r#"{"features": 5}"#,
            r#"{"type": "FeatureCollection", "features": [5, "x"]}"#,
            r#"{"type": "FeatureCollection", "features": [{"properties": "x"}]}"#,
            r#"{"type": "FeatureCollection", "features": [{"properties": null}]}"#,
        ] {
            assert!(read_parts(&whole, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_split_must_cover_the_grid_exactly() {
        let whole = grid("G", 0.0, 2.0);
        assert!(check_split(&whole, &[grid("A", 0.0, 1.0), grid("B", 1.0, 2.0)]).is_empty());
        let gap = check_split(&whole, &[grid("A", 0.0, 1.0), grid("B", 1.5, 2.0)]);
        assert!(gap[0].en.contains("must cover all"), "{gap:?}");
        assert!(gap[0].zh.contains("必须完整覆盖"), "{gap:?}");
        let out = check_split(&whole, &[grid("A", 0.0, 1.0), grid("B", 1.0, 3.0)]);
        assert!(out[0].en.contains("reaches outside"), "{out:?}");
        assert_eq!(out[0].zh, "部分 B 超出了网格 G 的范围");
        let overlap = check_split(&whole, &[grid("A", 0.0, 1.2), grid("B", 1.0, 2.0)]);
        assert!(
            overlap.iter().any(|p| p.en.contains("overlap")),
            "{overlap:?}"
        );
        assert!(!check_split(&whole, &[grid("A", 0.0, 2.0)]).is_empty());
        let taken = check_split_in(&whole, &[grid("G", 0.0, 1.0), grid("H", 1.0, 2.0)], |c| {
            c == "G" || c == "H"
        });
        let msg = taken.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg, "parts_geojson: part code H is already a grid");
    }

    #[test]
    fn merging_neighbours_gives_their_union() {
        let (a, b) = (grid("A", 0.0, 1.0), grid("B", 1.0, 2.0));
        let shape = merged_shape(&[&a, &b]).unwrap_or_else(|_| MultiPolygon::new(vec![]));
        assert!((shape.unsigned_area() - 2.0).abs() < 1e-9);
        assert_eq!(shape.0.len(), 1, "neighbours merge into one polygon");
        let mut other = grid("C", 2.0, 3.0);
        other.community = "370202006002".into();
        assert!(merged_shape(&[&a, &other]).is_err());
        let back: serde_json::Value =
            serde_json::from_str(&geometry_json(&shape)).unwrap_or_default();
        assert_eq!(back["type"], "Polygon");
    }

    #[test]
    fn a_merge_is_refused_field_by_field() {
        let current = [
            grid("A", 0.0, 1.0),
            grid("B", 1.0, 2.0),
            grid("X", 5.0, 6.0),
        ];
        let get = |c: &str| current.iter().find(|g| g.code == c).cloned();
        let s = |v: &[&str]| v.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        let plan = |codes: &[&str], code: &str| {
            let codes = s(codes);
            plan_merge(
                &MergeRequest {
                    codes: &codes,
                    code,
                    name: "",
                },
                get,
            )
            .map(|(g, ended)| (g.code, g.name, ended))
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            plan(&["A", "B"], "A"),
            Ok(("A".into(), "A".into(), s(&["A", "B"])))
        );
        let cases = [
            (&["A", "A"][..], "M", "codes[1]: appears twice"),
            (&["A", "NOPE"], "M", "codes[1]: no grid NOPE"),
            (&["A", "B"], "", "code: required, at most 64 characters"),
            (&["A", "B"], "X", "code: X is already a grid"),
            (
                &["A"],
                "M",
                "codes: codes: a merge needs at least two grids",
            ),
        ];
        for (codes, code, want) in cases {
            assert_eq!(
                plan(codes, code),
                Err(want.to_owned()),
                "{codes:?} → {code}"
            );
        }
    }

    #[test]
    fn an_import_stays_in_the_tenant_and_does_not_overlap_what_it_keeps() {
        let read = |features| layer::read_with_geometry(&layer(features)).unwrap_or_default();
        let kept = GridIndex::build(
            layer::read(&layer(vec![square("G1", "basic", 0.0, 0.0, 1.0, 1.0)]))
                .unwrap_or_default(),
        );
        let over = read(vec![square("G5", "basic", 0.5, 0.5, 1.5, 1.5)]);
        let e = check_import("370202", &over, Some(&kept))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("geojson: basic grids G1 and G5 of one community overlap")
        );
        // Replacing G1 itself is no clash.
        let moved = read(vec![square("G1", "basic", 0.5, 0.5, 1.5, 1.5)]);
        assert!(check_import("370202", &moved, Some(&kept)).is_ok());
        let e = check_import("370203", &moved, None)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("geojson: G1: community 370202006001 is not in the tenant's region")
        );
    }
}
