//! The in-memory spatial index every grid replica keeps: an R-tree over the
//! grids' bounding boxes narrows a point to a few candidates, an exact
//! point-in-polygon test decides. A point on a boundary belongs to no grid
//! (as `ST_Contains` has it), so neighbours never both claim it.

use geo::{BoundingRect, Contains, MultiPolygon, Point};
use rstar::{
    AABB, RTree,
    primitives::{GeomWithData, Rectangle},
};

use super::layer::{Grid, Kind};

type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// How far beyond its grids' extent a point may lie and still count as the
/// tenant's (about 2 km): a caller standing just across a boundary street is
/// not "outside the territory", one in another city is.
pub const TERRITORY_MARGIN_DEG: f64 = 0.02;

/// Grids by position.
pub struct GridIndex {
    tree: RTree<Entry>,
    grids: Vec<Grid>,
    /// Position in `grids` by code: handlers look grids up by code often.
    by_code: std::collections::HashMap<String, u32>,
    /// The joint bounding box of the basic grids: the known territory.
    basic_extent: Option<geo::Rect<f64>>,
}

/// The grids holding a point, one per kind (professional grids may be
/// several: police, fire, power...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Located<'a> {
    pub basic: Option<&'a Grid>,
    pub micro: Option<&'a Grid>,
    pub dedicated: Option<&'a Grid>,
    pub professional: Vec<&'a Grid>,
    /// The community of the basic grid (or of any grid found).
    pub community: Option<&'a str>,
}

impl GridIndex {
    /// Builds the index (bulk-loaded R-tree).
    pub fn build(grids: Vec<Grid>) -> Self {
        let entries: Vec<Entry> = grids
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let r = g.shape.bounding_rect()?;
                Some(GeomWithData::new(
                    Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                    u32::try_from(i).ok()?,
                ))
            })
            .collect();
        let by_code = grids
            .iter()
            .enumerate()
            .filter_map(|(i, g)| Some((g.code.clone(), u32::try_from(i).ok()?)))
            .collect();
        let basic_extent = grids
            .iter()
            .filter(|g| g.kind == Kind::Basic)
            .filter_map(|g| g.shape.bounding_rect())
            .reduce(|a, b| {
                geo::Rect::new(
                    geo::coord! { x: a.min().x.min(b.min().x), y: a.min().y.min(b.min().y) },
                    geo::coord! { x: a.max().x.max(b.max().x), y: a.max().y.max(b.max().y) },
                )
            });
        Self {
            tree: RTree::bulk_load(entries),
            grids,
            by_code,
            basic_extent,
        }
    }

    /// The grid with this code.
    pub fn get(&self, code: &str) -> Option<&Grid> {
        self.grids.get(*self.by_code.get(code)? as usize)
    }

    /// The indexed grids, in the order given.
    pub fn grids(&self) -> &[Grid] {
        &self.grids
    }

    pub fn len(&self) -> usize {
        self.grids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grids.is_empty()
    }

    /// Whether (`lon`, `lat`) lies clearly outside the tenant's territory as
    /// its basic grids cover it: beyond their joint bounding box by more
    /// than [`TERRITORY_MARGIN_DEG`]. A point in a gap between grids inside
    /// the district is not "outside"; a tenant without basic grids has no
    /// known territory and nothing is outside it.
    pub fn outside(&self, lon: f64, lat: f64) -> bool {
        let Some(r) = self.basic_extent else {
            return false;
        };
        let m = TERRITORY_MARGIN_DEG;
        lon < r.min().x - m || lon > r.max().x + m || lat < r.min().y - m || lat > r.max().y + m
    }

    /// The grids holding (`lon`, `lat`).
    pub fn locate(&self, lon: f64, lat: f64) -> Located<'_> {
        let p = Point::new(lon, lat);
        let mut out = Located::default();
        for e in self
            .tree
            .locate_in_envelope_intersecting(&AABB::from_point([lon, lat]))
        {
            let Some(g) = self.grids.get(e.data as usize) else {
                continue;
            };
            if !g.shape.contains(&p) {
                continue;
            }
            match g.kind {
                Kind::Basic => {
                    out.basic = Some(g);
                    out.community = Some(&g.community);
                }
                Kind::Micro => out.micro = Some(g),
                Kind::Dedicated => out.dedicated = Some(g),
                Kind::Professional => out.professional.push(g),
            }
            if out.community.is_none() {
                out.community = Some(&g.community);
            }
        }
        out.professional
            .sort_unstable_by(|a, b| a.code.cmp(&b.code));
        out
    }

    /// Bytes held by the polygons' coordinates and the tree's entries: a
    /// lower bound the bench compares with the process's resident memory.
    pub fn coordinate_bytes(&self) -> usize {
        let coords: usize = self.grids.iter().map(|g| count_coords(&g.shape)).sum();
        coords * std::mem::size_of::<geo::Coord<f64>>()
            + self.tree.size() * std::mem::size_of::<Entry>()
    }
}

fn count_coords(m: &MultiPolygon<f64>) -> usize {
    m.0.iter()
        .map(|p| p.exterior().0.len() + p.interiors().iter().map(|r| r.0.len()).sum::<usize>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::layer::{
        read,
        tests::{layer, square},
    };

    #[test]
    fn a_point_far_from_every_basic_grid_is_outside_the_territory() {
        let l = layer(vec![
            square("G1", "basic", 120.30, 36.04, 120.31, 36.05),
            square("G2", "basic", 120.35, 36.04, 120.36, 36.05),
            square("P1", "professional", 110.0, 30.0, 130.0, 40.0),
        ]);
        let idx = GridIndex::build(read(&l).unwrap_or_default());
        for (lon, lat, outside) in [
            (120.305, 36.045, false), // in G1
            (120.33, 36.045, false),  // between G1 and G2
            (120.37, 36.045, false),  // just beyond G2, within the margin
            (116.40, 39.90, true),    // Beijing: the professional grid does not count
            (120.33, 36.10, true),    // 5 km north
        ] {
            assert_eq!(idx.outside(lon, lat), outside, "({lon}, {lat})");
        }
        let none = GridIndex::build(Vec::new());
        assert!(!none.outside(116.40, 39.90), "no grids, no known territory");
    }

    #[test]
    fn a_point_finds_its_basic_micro_and_professional_grids() {
        let l = layer(vec![
            square("G1", "basic", 120.30, 36.04, 120.31, 36.05),
            square("G2", "basic", 120.31, 36.04, 120.32, 36.05),
            square("M1", "micro", 120.301, 36.041, 120.302, 36.042),
            square("P1", "professional", 120.295, 36.035, 120.315, 36.055),
        ]);
        let idx = GridIndex::build(read(&l).unwrap_or_default());
        assert_eq!(idx.len(), 4);
        let at = idx.locate(120.3015, 36.0415);
        let code = |g: Option<&Grid>| g.map(|g| g.code.clone());
        assert_eq!(
            (
                code(at.basic),
                code(at.micro),
                code(at.professional.first().copied()),
                at.community
            ),
            (
                Some("G1".into()),
                Some("M1".into()),
                Some("P1".into()),
                Some("370202006001")
            )
        );
        assert_eq!(
            code(idx.locate(120.315, 36.045).basic).as_deref(),
            Some("G2")
        );
        let outside = idx.locate(121.0, 37.0);
        assert_eq!(outside, Located::default());
        // On the shared edge: neither claims it.
        assert!(idx.locate(120.31, 36.045).basic.is_none());
        assert!(idx.coordinate_bytes() > 0);
        assert_eq!(idx.get("M1").map(|g| g.kind), Some(Kind::Micro));
        assert!(idx.get("nope").is_none());
    }
}
