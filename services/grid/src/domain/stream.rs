//! A layer read as it arrives: a FeatureCollection parsed from any byte
//! source one feature at a time (never the whole document as a JSON
//! tree), each feature checked as [`super::layer`] checks it, and counted
//! so that progress can be reported while an upload runs.

use std::{
    io::Read,
    sync::atomic::{AtomicU32, Ordering},
};

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use jiesu_common::{Text, tr};

use super::layer::{FeatureReader, Grid, MAX_FEATURES};

/// What the parser gathers: each grid with its geometry text.
struct Gathered<'a> {
    reader: FeatureReader,
    grids: Vec<(Grid, String)>,
    seen: &'a AtomicU32,
    collection: bool,
}

impl Gathered<'_> {
    fn feature(&mut self, f: &Value) {
        let i = self.seen.fetch_add(1, Ordering::Relaxed) as usize;
        if i >= MAX_FEATURES {
            if i == MAX_FEATURES {
                self.reader.errors.push(tr!(
                    "features：每次导入最多 {MAX_FEATURES} 个",
                    "features: at most {MAX_FEATURES} per import"
                ));
            }
            return;
        }
        if let Some(g) = self.reader.read(i, f) {
            self.grids.push((g, f["geometry"].to_string()));
        }
    }
}

struct Document<'a, 'b>(&'a mut Gathered<'b>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a GeoJSON FeatureCollection")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => {
                    let t: String = map.next_value()?;
                    self.0.collection = t == "FeatureCollection";
                }
                "features" => map.next_value_seed(Features(&mut *self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Features<'a, 'b>(&'a mut Gathered<'b>);

impl<'de> DeserializeSeed<'de> for Features<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Features<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of features")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(f) = seq.next_element::<Value>()? {
            self.0.feature(&f);
        }
        Ok(())
    }
}

/// Parses a FeatureCollection from `input` feature by feature, counting
/// them in `seen`.
pub fn parse(input: impl Read, seen: &AtomicU32) -> Result<Vec<(Grid, String)>, Vec<Text>> {
    let mut g = Gathered {
        reader: FeatureReader::default(),
        grids: Vec::new(),
        seen,
        collection: false,
    };
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(input));
    if let Err(e) = Document(&mut g)
        .deserialize(&mut de)
        .and_then(|()| de.end())
    {
        return Err(vec![tr!(
            "不是 GeoJSON FeatureCollection：{e}",
            "not a GeoJSON FeatureCollection: {e}"
        )]);
    }
    if !g.collection {
        return Err(vec![tr!(
            "type：必须是 FeatureCollection",
            "type: must be FeatureCollection"
        )]);
    }
    g.reader.finish(g.grids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::layer::tests::{layer, square};

    /// The text in tiny reads, as a slow upload delivers it.
    struct Trickle<'a> {
        text: &'a [u8],
        size: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.size.min(buf.len()).min(self.text.len());
            buf[..n].copy_from_slice(&self.text[..n]);
            self.text = &self.text[n..];
            Ok(n)
        }
    }

    fn chunked(text: &str, size: usize) -> Trickle<'_> {
        Trickle {
            text: text.as_bytes(),
            size,
        }
    }

    #[test]
    fn a_layer_in_small_chunks_reads_like_a_whole_one() {
        let l = layer(vec![
            square("G1", "basic", 120.30, 36.04, 120.31, 36.05),
            square("G2", "basic", 120.31, 36.04, 120.32, 36.05),
        ]);
        let seen = AtomicU32::new(0);
        let grids = parse(chunked(&l, 7), &seen).unwrap_or_default();
        assert_eq!(grids.len(), 2);
        assert_eq!(seen.load(Ordering::Relaxed), 2);
        assert_eq!(grids[1].0.code, "G2");
        let whole = crate::domain::layer::read_with_geometry(&l).unwrap_or_default();
        assert_eq!(grids[0].1, whole[0].1, "the same geometry text is kept");
    }

    #[test]
    fn a_broken_layer_names_what_is_wrong() {
        let seen = AtomicU32::new(0);
        let mut bad = square("G3", "basic", 0.0, 0.0, 1.0, 1.0);
        bad["geometry"]["coordinates"][0] = serde_json::json!([[0, 0], [1, 0], [1, 1], [0, 1]]);
        let bad = layer(vec![bad]);
        let cases = [
            (
                bad.as_str(),
                "features[0].geometry.coordinates[0]: the ring is not closed",
            ),
            (
                r#"{"type":"FeatureCollection","features":[{"#,
                "not a GeoJSON FeatureCollection",
            ),
            (
                r#"{"type":"Feature","features":[]}"#,
                "type: must be FeatureCollection",
            ),
        ];
        for (text, want) in cases {
            let errors = parse(chunked(text, 3), &seen).err().unwrap_or_default();
            assert!(errors[0].en.starts_with(want), "{text}: {errors:?}");
        }
    }
}
