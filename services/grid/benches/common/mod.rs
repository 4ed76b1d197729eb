//! What the grid benches share: a deterministic generator of grids of 8 to
//! 16 vertices over a 2° × 2° box in Shandong, and measuring helpers.

#![allow(dead_code)]

use std::time::Duration;

use geo::{Coord, LineString, MultiPolygon, Polygon};
use jiesu_grid::domain::layer::{Grid, Kind};

/// xorshift64*: deterministic and dependency-free.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The area: a 2° × 2° box in Shandong.
pub const LON0: f64 = 117.0;
pub const LAT0: f64 = 35.0;
pub const SPAN: f64 = 2.0;

pub fn generate(n: usize, rng: &mut Rng) -> Vec<Grid> {
    let side = (n as f64).sqrt().ceil() as usize;
    let cell = SPAN / side as f64;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (cx, cy) = (
            LON0 + ((i % side) as f64 + 0.5) * cell,
            LAT0 + ((i / side) as f64 + 0.5) * cell,
        );
        let k = 8 + (rng.next() % 9) as usize;
        let mut ring: Vec<Coord<f64>> = (0..k)
            .map(|j| {
                let a = std::f64::consts::TAU * (j as f64 + 0.8 * rng.unit()) / k as f64;
                let r = cell * (0.30 + 0.19 * rng.unit());
                Coord {
                    x: cx + r * a.cos(),
                    y: cy + r * a.sin(),
                }
            })
            .collect();
        ring.push(ring[0]);
        out.push(Grid {
            code: format!("G{i}"),
            name: String::new(),
            kind: Kind::Basic,
            community: "370202006001".into(),
            shape: MultiPolygon::new(vec![Polygon::new(LineString::new(ring), vec![])]),
        });
    }
    out
}

pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

pub fn pct(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e6
}

pub fn geojson(m: &MultiPolygon<f64>) -> String {
    let polys: Vec<serde_json::Value> =
        m.0.iter()
            .map(|p| {
                let ring: Vec<[f64; 2]> = p.exterior().0.iter().map(|c| [c.x, c.y]).collect();
                serde_json::json!([ring])
            })
            .collect();
    serde_json::json!({"type": "MultiPolygon", "coordinates": polys}).to_string()
}
