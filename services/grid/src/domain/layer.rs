//! A grid layer as a GeoJSON FeatureCollection: each feature one grid with
//! its code, name, kind and community, and a Polygon or MultiPolygon in
//! WGS-84 (lon, lat). Reading checks every feature and reports every
//! problem by feature number, then reports basic grids of one community
//! whose interiors overlap.

use geo::{Coord, LineString, MultiPolygon, Polygon, Relate, Validation};
use jiesu_common::{Text, tr};
use serde_json::Value;

/// What a grid is (DOMAIN.md: 网格 / 微网格 / 专属网格 / 专业网格).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 300–500 households; basic grids tile a community.
    Basic,
    /// A building or unit inside a basic grid.
    Micro,
    /// A school, hospital, market or enterprise.
    Dedicated,
    /// Police 警格, fire, enforcement, power, post: its own layer.
    Professional,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "basic" => Self::Basic,
            "micro" => Self::Micro,
            "dedicated" => Self::Dedicated,
            "professional" => Self::Professional,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Micro => "micro",
            Self::Dedicated => "dedicated",
            Self::Professional => "professional",
        }
    }
}

/// One grid as read from a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub code: String,
    pub name: String,
    pub kind: Kind,
    /// The 12-digit community code it belongs to.
    pub community: String,
    pub shape: MultiPolygon<f64>,
}

/// Most features per layer read at once.
pub const MAX_FEATURES: usize = 200_000;

fn ring(v: &Value, at: &str, errors: &mut Vec<Text>) -> Option<LineString<f64>> {
    let Some(points) = v.as_array() else {
        errors.push(tr!(
            "{at}：环必须是坐标点数组",
            "{at}: a ring must be an array of positions"
        ));
        return None;
    };
    let mut coords = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let pair = p.as_array().map(|a| {
            (
                a.first().and_then(Value::as_f64),
                a.get(1).and_then(Value::as_f64),
            )
        });
        match pair {
            Some((Some(x), Some(y))) if x.is_finite() && y.is_finite() => {
                if !(-180.0..=180.0).contains(&x) || !(-90.0..=90.0).contains(&y) {
                    errors.push(tr!(
                        "{at}[{i}]：[{x}, {y}] 不是 WGS-84 的 [经度, 纬度]",
                        "{at}[{i}]: [{x}, {y}] is not a WGS-84 [lon, lat]"
                    ));
                    return None;
                }
                coords.push(Coord { x, y });
            }
            _ => {
                errors.push(tr!(
                    "{at}[{i}]：坐标点必须是 [经度, 纬度] 两个数字",
                    "{at}[{i}]: a position is [lon, lat] numbers"
                ));
                return None;
            }
        }
    }
    if coords.len() < 4 {
        errors.push(tr!(
            "{at}：环至少需要 4 个坐标点（最后一个与第一个相同）",
            "{at}: a ring needs at least 4 positions (the last repeating the first)"
        ));
        return None;
    }
    if coords.first() != coords.last() {
        errors.push(tr!(
            "{at}：环未闭合（最后一个坐标点必须与第一个相同）",
            "{at}: the ring is not closed (its last position must repeat the first)"
        ));
        return None;
    }
    Some(LineString::new(coords))
}

fn polygon(v: &Value, at: &str, errors: &mut Vec<Text>) -> Option<Polygon<f64>> {
    let rings = v.as_array().filter(|r| !r.is_empty());
    let Some(rings) = rings else {
        errors.push(tr!(
            "{at}：多边形必须是非空的环数组",
            "{at}: a polygon is a non-empty array of rings"
        ));
        return None;
    };
    let before = errors.len();
    let mut parsed: Vec<LineString<f64>> = rings
        .iter()
        .enumerate()
        .filter_map(|(i, r)| ring(r, &format!("{at}[{i}]"), errors))
        .collect();
    if errors.len() > before || parsed.is_empty() {
        return None;
    }
    let exterior = parsed.remove(0);
    Some(Polygon::new(exterior, parsed))
}

fn geometry(g: &Value, at: &str, errors: &mut Vec<Text>) -> Option<MultiPolygon<f64>> {
    let coords = &g["coordinates"];
    let shape = match g["type"].as_str() {
        Some("Polygon") => {
            MultiPolygon::new(vec![polygon(coords, &format!("{at}.coordinates"), errors)?])
        }
        Some("MultiPolygon") => {
            let Some(parts) = coords.as_array().filter(|p| !p.is_empty()) else {
                errors.push(tr!(
                    "{at}.coordinates：MultiPolygon 必须是非空的多边形数组",
                    "{at}.coordinates: a MultiPolygon is a non-empty array of polygons"
                ));
                return None;
            };
            let before = errors.len();
            let polys: Vec<Polygon<f64>> = parts
                .iter()
                .enumerate()
                .filter_map(|(i, p)| polygon(p, &format!("{at}.coordinates[{i}]"), errors))
                .collect();
            if errors.len() > before {
                return None;
            }
            MultiPolygon::new(polys)
        }
        other => {
            let other = other.unwrap_or("missing");
            errors.push(tr!(
                "{at}.type：必须是 Polygon 或 MultiPolygon，而不是 {other}",
                "{at}.type: must be Polygon or MultiPolygon, not {other}"
            ));
            return None;
        }
    };
    if let Err(e) = shape.check_validation() {
        errors.push(tr!(
            "{at}：几何图形无效：{e}",
            "{at}: invalid geometry: {e}"
        ));
        return None;
    }
    Some(shape)
}

fn text(props: &Value, key: &str) -> String {
    props[key].as_str().unwrap_or_default().trim().to_owned()
}

/// Reads a FeatureCollection. `Err` lists every problem (at most 100), each
/// naming the feature (`features[i]`) and the field.
pub fn read(json: &str) -> Result<Vec<Grid>, Vec<Text>> {
    Ok(read_with_geometry(json)?
        .into_iter()
        .map(|(g, _)| g)
        .collect())
}

/// [`read`], keeping each grid's geometry as the GeoJSON text it came in
/// (what the store keeps), from one parse.
pub fn read_with_geometry(json: &str) -> Result<Vec<(Grid, String)>, Vec<Text>> {
    let doc: Value = serde_json::from_str(json)
        .map_err(|e| vec![tr!("不是有效的 JSON：{e}", "not JSON: {e}")])?;
    let grids = read_doc(&doc)?;
    let geometries = doc["features"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|x| x["geometry"].to_string())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    Ok(grids.into_iter().zip(geometries).collect())
}

fn read_doc(doc: &Value) -> Result<Vec<Grid>, Vec<Text>> {
    if doc["type"] != "FeatureCollection" {
        return Err(vec![tr!(
            "type：必须是 FeatureCollection",
            "type: must be FeatureCollection"
        )]);
    }
    let Some(features) = doc["features"].as_array() else {
        return Err(vec![tr!(
            "features：必须是数组",
            "features: must be an array"
        )]);
    };
    if features.len() > MAX_FEATURES {
        return Err(vec![tr!(
            "features：每次导入最多 {MAX_FEATURES} 个",
            "features: at most {MAX_FEATURES} per import"
        )]);
    }
    let mut reader = FeatureReader::default();
    let mut grids: Vec<Grid> = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        if let Some(g) = reader.read(i, f) {
            grids.push(g);
        }
        if reader.errors.len() >= MAX_ERRORS {
            break;
        }
    }
    reader.finish(grids)
}

/// Most problems reported for one layer.
pub const MAX_ERRORS: usize = 100;

/// Reads features one at a time (a layer held whole, or streamed), keeping
/// the codes seen and every problem found.
#[derive(Debug, Default)]
pub struct FeatureReader {
    codes: std::collections::HashSet<String>,
    pub errors: Vec<Text>,
}

impl FeatureReader {
    /// Feature `i`: its grid, or `None` with the problems recorded.
    pub fn read(&mut self, i: usize, f: &Value) -> Option<Grid> {
        let errors = &mut self.errors;
        let before = errors.len();
        let at = format!("features[{i}]");
        let props = &f["properties"];
        let code = text(props, "code");
        if code.is_empty() || code.len() > 64 {
            errors.push(tr!(
                "{at}.properties.code：必填，最多 64 个字符",
                "{at}.properties.code: required, at most 64 characters"
            ));
        } else if !self.codes.insert(code.clone()) {
            errors.push(tr!(
                "{at}.properties.code：`{code}` 重复出现",
                "{at}.properties.code: `{code}` appears twice"
            ));
        }
        let kind_raw = text(props, "kind");
        let kind = if kind_raw.is_empty() {
            Some(Kind::Basic)
        } else {
            Kind::parse(&kind_raw)
        };
        if kind.is_none() {
            errors.push(tr!(
                "{at}.properties.kind：必须是 basic、micro、dedicated 或 professional",
                "{at}.properties.kind: must be basic, micro, dedicated or professional"
            ));
        }
        let community = text(props, "community_code");
        if community.len() != 12 || !community.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(tr!(
                "{at}.properties.community_code：必须是 12 位社区代码",
                "{at}.properties.community_code: must be a 12-digit community code"
            ));
        }
        let shape = geometry(&f["geometry"], &format!("{at}.geometry"), errors);
        match (kind, shape) {
            (Some(kind), Some(shape)) if errors.len() == before => Some(Grid {
                name: text(props, "name"),
                code,
                kind,
                community,
                shape,
            }),
            _ => None,
        }
    }

    /// The grids read, or every problem found.
    pub fn finish<T>(mut self, grids: Vec<T>) -> Result<Vec<T>, Vec<Text>> {
        if self.errors.is_empty() {
            Ok(grids)
        } else {
            self.errors.truncate(MAX_ERRORS);
            Err(self.errors)
        }
    }
}

/// Basic grids of the same community whose interiors overlap (touching
/// along an edge is not overlapping), as pairs of codes.
pub fn overlaps<'a>(grids: impl IntoIterator<Item = &'a Grid>) -> Vec<(String, String)> {
    use geo::BoundingRect;
    use rstar::{AABB, RTree, primitives::GeomWithData};
    let basic: Vec<&Grid> = grids
        .into_iter()
        .filter(|g| g.kind == Kind::Basic)
        .collect();
    let boxes: Vec<GeomWithData<rstar::primitives::Rectangle<[f64; 2]>, usize>> = basic
        .iter()
        .enumerate()
        .filter_map(|(i, g)| {
            let r = g.shape.bounding_rect()?;
            Some(GeomWithData::new(
                rstar::primitives::Rectangle::from_corners(
                    [r.min().x, r.min().y],
                    [r.max().x, r.max().y],
                ),
                i,
            ))
        })
        .collect();
    let tree = RTree::bulk_load(boxes);
    let mut out = Vec::new();
    for (i, a) in basic.iter().enumerate() {
        let Some(r) = a.shape.bounding_rect() else {
            continue;
        };
        let env = AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
        for hit in tree.locate_in_envelope_intersecting(&env) {
            let j = hit.data;
            if j <= i {
                continue;
            }
            let b = basic[j];
            if a.community != b.community {
                continue;
            }
            let m = a.shape.relate(&b.shape);
            if m.is_intersects() && !m.is_touches() {
                out.push((a.code.clone(), b.code.clone()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A square feature `[x0, y0]`–`[x1, y1]`.
    pub(crate) fn square(code: &str, kind: &str, x0: f64, y0: f64, x1: f64, y1: f64) -> Value {
        serde_json::json!({
            "type": "Feature",
            "properties": {"code": code, "name": code, "kind": kind, "community_code": "370202006001"},
            "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
        })
    }

    pub(crate) fn layer(features: Vec<Value>) -> String {
        serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
    }

    #[test]
    fn a_good_layer_reads_back_its_grids() {
        let l = layer(vec![
            square("G1", "basic", 120.30, 36.04, 120.31, 36.05),
            square("G2", "", 120.31, 36.04, 120.32, 36.05),
        ]);
        let grids = read(&l).unwrap_or_default();
        assert_eq!(grids.len(), 2);
        assert_eq!(grids[1].kind, Kind::Basic, "kind defaults to basic");
        assert!(
            overlaps(&grids).is_empty(),
            "neighbours that share an edge do not overlap"
        );
    }

    #[test]
    fn every_bad_feature_is_named() {
        let mut open = square("G3", "basic", 0.0, 0.0, 1.0, 1.0);
        open["geometry"]["coordinates"][0] = serde_json::json!([[0, 0], [1, 0], [1, 1], [0, 1]]);
        let bowtie = serde_json::json!({
            "type": "Feature",
            "properties": {"code": "G4", "community_code": "370202006001"},
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
        });
        let mut line = square("G5", "basic", 0.0, 0.0, 1.0, 1.0);
        line["geometry"] =
            serde_json::json!({"type": "LineString", "coordinates": [[0, 0], [1, 1]]});
        let mut nocode = square("", "basic", 0.0, 0.0, 1.0, 1.0);
        nocode["properties"]["community_code"] = serde_json::json!("3702");
        let l = layer(vec![
            square("G1", "basic", 0.0, 0.0, 1.0, 1.0),
            square("G1", "village", 0.0, 0.0, 1.0, 1.0),
            open,
            bowtie,
            line,
            nocode,
        ]);
        let errors = read(&l).err().unwrap_or_default();
        let has = |s: &str| errors.iter().any(|e| e.en.starts_with(s));
        assert!(
            has("features[1].properties.code: `G1` appears twice"),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.zh == "features[1].properties.code：`G1` 重复出现"),
            "{errors:?}"
        );
        assert!(has("features[1].properties.kind"), "{errors:?}");
        assert!(
            has("features[2].geometry.coordinates[0]: the ring is not closed"),
            "{errors:?}"
        );
        assert!(has("features[3].geometry: invalid geometry"), "{errors:?}");
        assert!(has("features[4].geometry.type"), "{errors:?}");
        assert!(has("features[5].properties.code"), "{errors:?}");
        assert!(has("features[5].properties.community_code"), "{errors:?}");
        assert_eq!(errors.len(), 7, "{errors:?}");
        assert!(read("{").is_err());
        assert!(read(r#"{"type":"Feature"}"#).is_err());
    }

    #[test]
    fn overlapping_basic_grids_in_a_community_are_reported() {
        let l = layer(vec![
            square("G1", "basic", 0.0, 0.0, 2.0, 2.0),
            square("G2", "basic", 1.0, 1.0, 3.0, 3.0),
            square("G3", "basic", 2.0, 0.0, 4.0, 1.5),
            // G4 only touches G3 along an edge.
            square("G4", "basic", 4.0, 0.0, 5.0, 1.0),
            // A micro grid inside G1 is not an overlap.
            square("M1", "micro", 0.2, 0.2, 0.4, 0.4),
        ]);
        let grids = read(&l).unwrap_or_default();
        assert_eq!(
            overlaps(&grids),
            vec![
                ("G1".to_owned(), "G2".to_owned()),
                ("G2".to_owned(), "G3".to_owned())
            ]
        );
    }
}
