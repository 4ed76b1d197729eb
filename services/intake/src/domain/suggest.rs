//! Category suggestion: which leaf categories a request text most likely
//! belongs to, learned from the tenant's own past tickets.
//!
//! A multinomial naive Bayes over character bigrams and trigrams (Chinese
//! has no spaces; character n-grams need no word segmentation), with
//! Laplace smoothing. While a tenant's history is thin the category names
//! and keywords carry the suggestion; as tickets accumulate the learned
//! model takes over. No external service, no I/O: `store` feeds it.

use std::collections::HashMap;

/// Below this many training tickets the keywords decide alone.
pub const MIN_TRAINING_DOCS: usize = 50;
/// Weight of the keyword score once the model has plenty of history.
pub const KEYWORD_WEIGHT_TRAINED: f64 = 0.15;
/// Tickets per category at which the keyword weight reaches its floor: the
/// model's share grows linearly with the history it has.
pub const DOCS_PER_CATEGORY_FOR_FULL_TRUST: f64 = 20.0;

/// A leaf category as the suggester sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub code: String,
    pub name: String,
    /// Comma-separated words pointing to the category.
    pub keywords: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub code: String,
    pub name: String,
    /// 0..1; the three returned do not need to sum to 1.
    pub score: f64,
    /// `model`, `keywords` or `model+keywords`.
    pub source: &'static str,
}

#[derive(Debug, Default)]
struct ClassStats {
    docs: u32,
    total: u64,
    counts: HashMap<u64, u32>,
}

/// A trained model for one tenant.
#[derive(Debug, Default)]
pub struct Model {
    candidates: Vec<Candidate>,
    classes: Vec<ClassStats>,
    docs: usize,
    vocabulary: usize,
}

/// Keeps letters and digits (CJK included), lower-cased; everything else
/// is a break between runs.
fn runs(text: &str) -> Vec<Vec<char>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for c in text.chars() {
        if c.is_alphanumeric() && c != '*' {
            cur.extend(c.to_lowercase());
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn hash(chars: &[char]) -> u64 {
    // FNV-1a: stable across runs and processes.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in chars {
        for b in (*c as u32).to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The features of a text: hashed character bigrams and trigrams.
pub fn features(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for run in runs(text) {
        for n in 2..=3 {
            if run.len() >= n {
                out.extend(run.windows(n).map(hash));
            }
        }
        if run.len() == 1 {
            out.push(hash(&run));
        }
    }
    out
}

impl Model {
    /// Trains on `(category code, text)` pairs; pairs whose category is not
    /// a candidate (retired, or a group) are skipped.
    pub fn train<'a>(
        candidates: Vec<Candidate>,
        examples: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let index: HashMap<&str, usize> = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| (c.code.as_str(), i))
            .collect();
        let mut classes: Vec<ClassStats> =
            candidates.iter().map(|_| ClassStats::default()).collect();
        let mut vocabulary: HashMap<u64, ()> = HashMap::new();
        let mut docs = 0;
        for (code, text) in examples {
            let Some(&i) = index.get(code) else { continue };
            let class = &mut classes[i];
            class.docs += 1;
            docs += 1;
            for f in features(text) {
                *class.counts.entry(f).or_default() += 1;
                class.total += 1;
                vocabulary.insert(f, ());
            }
        }
        Self {
            candidates,
            classes,
            docs,
            vocabulary: vocabulary.len(),
        }
    }

    pub fn training_docs(&self) -> usize {
        self.docs
    }

    /// Posterior probabilities from the learned counts (empty when the
    /// history is too thin to trust).
    fn model_scores(&self, feats: &[u64]) -> Vec<f64> {
        if self.docs < MIN_TRAINING_DOCS || feats.is_empty() {
            return Vec::new();
        }
        let v = self.vocabulary.max(1) as f64;
        let n = self.docs as f64;
        let k = self.classes.len() as f64;
        let logs: Vec<f64> = self
            .classes
            .iter()
            .map(|c| {
                // Prior with add-one smoothing so a category never seen still
                // has a (small) chance.
                let mut lp = ((f64::from(c.docs) + 1.0) / (n + k)).ln();
                let denom = c.total as f64 + v;
                for f in feats {
                    let count = c.counts.get(f).copied().unwrap_or(0);
                    lp += ((f64::from(count) + 1.0) / denom).ln();
                }
                lp
            })
            .collect();
        let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = logs.iter().map(|l| (l - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        exp.into_iter().map(|e| e / sum).collect()
    }

    /// Share of each category's keywords (and name) found in the text,
    /// normalised to sum to 1 over the categories that match.
    fn keyword_scores(&self, text: &str) -> Vec<f64> {
        let lower = text.to_lowercase();
        let raw: Vec<f64> = self
            .candidates
            .iter()
            .map(|c| {
                let mut hits = 0.0;
                if !c.name.is_empty() && lower.contains(&c.name.to_lowercase()) {
                    hits += 2.0;
                }
                for kw in c.keywords.split([',', '，', ' ']).map(str::trim) {
                    if kw.chars().count() >= 2 && lower.contains(&kw.to_lowercase()) {
                        hits += 1.0;
                    }
                }
                hits
            })
            .collect();
        let sum: f64 = raw.iter().sum();
        if sum == 0.0 {
            return raw;
        }
        raw.into_iter().map(|r| r / sum).collect()
    }

    /// The `k` most likely categories, best first.
    pub fn suggest(&self, text: &str, k: usize) -> Vec<Suggestion> {
        let feats = features(text);
        let model = self.model_scores(&feats);
        let keywords = self.keyword_scores(text);
        let any_keyword = keywords.iter().any(|s| *s > 0.0);
        let full = DOCS_PER_CATEGORY_FOR_FULL_TRUST * self.candidates.len().max(1) as f64;
        let kw_weight = (1.0 - self.docs as f64 / full).clamp(KEYWORD_WEIGHT_TRAINED, 1.0);
        let mut scored: Vec<(usize, f64, &'static str)> = (0..self.candidates.len())
            .map(|i| match (model.get(i), any_keyword) {
                (Some(m), true) => (
                    i,
                    (1.0 - kw_weight) * m + kw_weight * keywords[i],
                    "model+keywords",
                ),
                (Some(m), false) => (i, *m, "model"),
                (None, _) => (i, keywords[i], "keywords"),
            })
            .filter(|(_, s, _)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored
            .into_iter()
            .take(k)
            .map(|(i, score, source)| Suggestion {
                code: self.candidates[i].code.clone(),
                name: self.candidates[i].name.clone(),
                score: (score * 1000.0).round() / 1000.0,
                source,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cands() -> Vec<Candidate> {
        vec![
            Candidate {
                code: "N".into(),
                name: "噪声扰民".into(),
                keywords: "噪音,广场舞".into(),
            },
            Candidate {
                code: "P".into(),
                name: "违章停车".into(),
                keywords: "停车,消防通道".into(),
            },
            Candidate {
                code: "W".into(),
                name: "停水".into(),
                keywords: "没水,停水".into(),
            },
        ]
    }

    #[test]
    fn keywords_decide_while_history_is_thin() {
        let m = Model::train(cands(), []);
        let s = m.suggest("小区门口有车堵住消防通道", 3);
        assert_eq!(s[0].code, "P");
        assert_eq!(s[0].source, "keywords");
        assert!(m.suggest("今天天气不错", 3).is_empty());
    }

    #[test]
    fn the_model_learns_words_the_keywords_do_not_have() {
        let mut examples = Vec::new();
        for _ in 0..30 {
            examples.push(("N", "楼上半夜蹦迪吵得睡不着"));
            examples.push(("P", "白色轿车一直占着出入口"));
            examples.push(("W", "水龙头拧开一滴都不出来"));
        }
        let m = Model::train(cands(), examples);
        assert_eq!(m.training_docs(), 90);
        assert_eq!(m.suggest("隔壁蹦迪吵得睡不着觉", 3)[0].code, "N");
        assert_eq!(m.suggest("水龙头不出来水", 3)[0].code, "W");
        let s = m.suggest("轿车占着出入口", 3);
        assert_eq!(s[0].code, "P");
        assert_eq!(s[0].source, "model");
        assert!(s[0].score > 0.5 && s[0].score <= 1.0);
        assert_eq!(s.len(), 3);
    }
}
