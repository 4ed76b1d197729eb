//! Recognising the same problem reported twice (并件): how alike two
//! requests are, and when the likeness is clear enough to merge without
//! asking an agent. Pure: the store supplies the earlier open tickets of
//! the window, this module scores them.

use chrono::{DateTime, TimeDelta, Utc};

use super::suggest::features;

/// What is compared of a ticket.
#[derive(Debug, Clone)]
pub struct Report {
    /// The redacted text.
    pub text: String,
    pub category: String,
    pub point: Option<(f64, f64)>,
    /// Blind indexes: equal values mean the same address / the same caller.
    pub address_key: Option<String>,
    pub caller_key: Option<String>,
    pub at: DateTime<Utc>,
}

/// Thresholds; the defaults are what intake uses.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// A candidate needs at least this combined score...
    pub min_score: f64,
    /// ...and at least this text likeness.
    pub min_text: f64,
    /// Points closer than this count as the same place.
    pub near_m: f64,
    /// Beyond this, distance adds nothing.
    pub far_m: f64,
    /// Auto-merge: same caller, same category, this text likeness, within
    /// `auto_within`.
    pub auto_text: f64,
    pub auto_within: TimeDelta,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            min_score: 0.45,
            min_text: 0.25,
            near_m: 50.0,
            far_m: 500.0,
            auto_text: 0.5,
            auto_within: TimeDelta::hours(24),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Likeness {
    /// 0..1, what candidates are ranked by.
    pub score: f64,
    pub text: f64,
    /// 1 for the same address or within `near_m`, falling to 0 at `far_m`.
    pub place: f64,
    pub same_category: bool,
    pub same_caller: bool,
    /// The same address (blind index), as opposed to merely near.
    pub same_address: bool,
}

/// A text's comparable form: its hashed character n-grams, sorted and
/// without repeats (a set that intersects by one merge pass).
pub fn shingles(text: &str) -> Vec<u64> {
    let mut f = features(text);
    f.sort_unstable();
    f.dedup();
    f
}

/// Dice coefficient of two shingle sets.
pub fn text_likeness(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * common as f64 / (a.len() + b.len()) as f64
}

/// Great-circle distance in metres.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_000.0_f64;
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

impl Rules {
    fn place(&self, new: &Report, old: &Report) -> f64 {
        if new.address_key.is_some() && new.address_key == old.address_key {
            return 1.0;
        }
        match (new.point, old.point) {
            (Some(a), Some(b)) => {
                let d = distance_m(a, b);
                if d <= self.near_m {
                    1.0
                } else if d >= self.far_m {
                    0.0
                } else {
                    1.0 - (d - self.near_m) / (self.far_m - self.near_m)
                }
            }
            _ => 0.0,
        }
    }

    /// How alike `new` is to the earlier `old` (shingles precomputed).
    pub fn compare(&self, new: &Report, new_sh: &[u64], old: &Report, old_sh: &[u64]) -> Likeness {
        let text = text_likeness(new_sh, old_sh);
        let place = self.place(new, old);
        let same_category = new.category == old.category;
        let same_caller = new.caller_key.is_some() && new.caller_key == old.caller_key;
        let score = 0.6 * text
            + 0.25 * place
            + 0.1 * f64::from(u8::from(same_category))
            + 0.05 * f64::from(u8::from(same_caller));
        Likeness {
            score: (score * 1000.0).round() / 1000.0,
            text,
            place,
            same_category,
            same_caller,
            same_address: new.address_key.is_some() && new.address_key == old.address_key,
        }
    }

    /// Why, for the agent (zh-CN), e.g. "内容相似 82%，同一地址，同一来电人".
    /// Only asked for candidates, so most comparisons allocate nothing.
    pub fn explain(&self, l: &Likeness) -> String {
        let mut reasons = vec![format!("内容相似 {:.0}%", l.text * 100.0)];
        if l.place >= 1.0 {
            reasons.push(if l.same_address {
                "同一地址".into()
            } else {
                format!("相距 {:.0} 米以内", self.near_m)
            });
        } else if l.place > 0.0 {
            reasons.push("位置相近".into());
        }
        if l.same_category {
            reasons.push("同一分类".into());
        }
        if l.same_caller {
            reasons.push("同一来电人".into());
        }
        reasons.join("，")
    }

    /// Alike enough to show an agent. Two located reports far apart are
    /// different problems however alike the words (two potholes), unless
    /// the same caller made both.
    pub fn is_candidate(&self, new: &Report, old: &Report, l: &Likeness) -> bool {
        let located_apart = new.point.is_some() && old.point.is_some() && l.place == 0.0;
        l.score >= self.min_score && l.text >= self.min_text && (!located_apart || l.same_caller)
    }

    /// The clear case: the same caller about the same problem, again,
    /// within a day.
    pub fn is_auto_merge(&self, new: &Report, old: &Report, l: &Likeness) -> bool {
        l.same_caller
            && l.same_category
            && l.text >= self.auto_text
            && new.at - old.at <= self.auto_within
            && new.at >= old.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(
        text: &str,
        cat: &str,
        point: Option<(f64, f64)>,
        caller: Option<&str>,
        hours_ago: i64,
    ) -> Report {
        Report {
            text: text.into(),
            category: cat.into(),
            point,
            address_key: None,
            caller_key: caller.map(str::to_owned),
            at: Utc::now() - TimeDelta::hours(hours_ago),
        }
    }

    fn cmp(r: &Rules, a: &Report, b: &Report) -> Likeness {
        r.compare(a, &shingles(&a.text), b, &shingles(&b.text))
    }

    #[test]
    fn the_same_problem_told_twice_is_a_candidate_and_by_the_same_caller_merges() {
        let r = Rules::default();
        let old = report(
            "燕儿岛路10号楼下烧烤店油烟很大，晚上吵到十二点",
            "SH0102",
            Some((36.0662, 120.3826)),
            Some("p1"),
            5,
        );
        let again = report(
            "燕儿岛路10号楼下的烧烤店晚上吵到十二点，油烟大",
            "SH0102",
            Some((36.0663, 120.3827)),
            Some("p1"),
            0,
        );
        let l = cmp(&r, &again, &old);
        assert!(r.is_candidate(&again, &old, &l), "{l:?}");
        assert!(l.place >= 1.0 && l.same_caller && l.same_category);
        assert!(r.is_auto_merge(&again, &old, &l));
        let why = r.explain(&l);
        assert!(why.contains("同一来电人"), "{why}");

        // A neighbour reporting the same shop: a candidate, not merged.
        let neighbour = report(
            "楼下烧烤店晚上很吵，油烟也大",
            "SH0102",
            Some((36.0665, 120.3829)),
            Some("p2"),
            1,
        );
        let l = cmp(&r, &neighbour, &old);
        assert!(r.is_candidate(&neighbour, &old, &l), "{l:?}");
        assert!(!r.is_auto_merge(&neighbour, &old, &l));

        // The same caller two days later: candidate only.
        let late = report(
            "燕儿岛路10号楼下烧烤店油烟很大，晚上吵到十二点",
            "SH0102",
            None,
            Some("p1"),
            0,
        );
        let mut old_late = old.clone();
        old_late.at = Utc::now() - TimeDelta::hours(50);
        let l = cmp(&r, &late, &old_late);
        assert!(!r.is_auto_merge(&late, &old_late, &l));
    }

    #[test]
    fn different_problems_are_not_candidates() {
        let r = Rules::default();
        let a = report(
            "小区门口井盖丢了，很危险",
            "CG0702",
            Some((36.06, 120.38)),
            Some("p1"),
            1,
        );
        let b = report(
            "楼上装修噪音到晚上十一点",
            "SH0101",
            Some((36.06, 120.38)),
            Some("p1"),
            0,
        );
        let l = cmp(&r, &b, &a);
        assert!(!r.is_candidate(&b, &a, &l), "{l:?}");
        // Same words, far apart and in another category.
        let c = report("路面有个大坑", "CG0701", Some((36.06, 120.38)), None, 1);
        let d = report("路面有个大坑", "CG0701", Some((36.10, 120.45)), None, 0);
        let l = cmp(&r, &d, &c);
        assert_eq!(l.place, 0.0);
        assert!(
            !r.is_candidate(&d, &c, &l),
            "two potholes 8 km apart: {l:?}"
        );
        // Without coordinates, identical text in the same category is one.
        let (mut e, mut f) = (c.clone(), d.clone());
        e.point = None;
        f.point = None;
        let l = cmp(&r, &f, &e);
        assert!(r.is_candidate(&f, &e, &l), "{l:?}");
    }

    #[test]
    fn distance_is_in_metres() {
        let d = distance_m((36.0662, 120.3826), (36.0671, 120.3826));
        assert!((d - 100.0).abs() < 2.0, "{d}");
    }
}
