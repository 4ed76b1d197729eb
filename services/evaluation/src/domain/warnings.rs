//! Early-warning rules and the judgement of one key's figures against one.

use jiesu_common::{Text, tr};

use super::{
    counts::{C, Counts},
    rates::{Formula, rates},
};

/// Metrics a rule may watch.
pub const METRICS: [&str; 6] = [
    "response",
    "resolution",
    "satisfaction",
    "composite",
    "late_share",
    "satisfaction_falling",
];

pub const DIMENSIONS: [&str; 3] = ["unit", "street", "district"];

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub metric: String,
    pub dimension: String,
    pub window_days: u32,
    pub threshold: f64,
    pub min_tickets: u32,
}

impl Rule {
    pub fn check(&self) -> Result<(), (&'static str, Text)> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err((
                "name",
                tr!("不能为空，且不超过 100 个字", "must be 1 to 100 characters"),
            ));
        }
        if !METRICS.contains(&self.metric.as_str()) {
            return Err((
                "metric",
                tr!("必须是 {} 之一", "must be one of {}", METRICS.join(", ")),
            ));
        }
        if !DIMENSIONS.contains(&self.dimension.as_str()) {
            return Err((
                "dimension",
                tr!("必须是 {} 之一", "must be one of {}", DIMENSIONS.join(", ")),
            ));
        }
        if !(1..=366).contains(&self.window_days) {
            return Err((
                "window_days",
                tr!("必须在 1 到 366 之间", "must be between 1 and 366"),
            ));
        }
        let max = if self.metric == "composite" {
            100.0
        } else {
            1.0
        };
        if self.metric != "satisfaction_falling" && !(0.0..=max).contains(&self.threshold) {
            return Err((
                "threshold",
                tr!("必须在 0 到 {} 之间", "must be between 0 and {}", max),
            ));
        }
        if !(1..=100_000).contains(&self.min_tickets) {
            return Err((
                "min_tickets",
                tr!("必须在 1 到 100000 之间", "must be between 1 and 100000"),
            ));
        }
        Ok(())
    }

    /// Chinese name of the metric, for notices.
    pub fn metric_zh(metric: &str) -> &'static str {
        match metric {
            "response" => "响应率",
            "resolution" => "解决率",
            "satisfaction" => "满意率",
            "composite" => "综合得分",
            "late_share" => "超期办结占比",
            _ => "满意率连续下降",
        }
    }
}

/// One window's figure for `metric` and the size of its base.
pub fn figure(metric: &str, c: &Counts, f: &Formula) -> Option<(f64, i64)> {
    let r = rates(c, f);
    let (value, base) = match metric {
        "response" => (r.response, c.get(C::Dispatched)),
        "resolution" => (
            r.resolution,
            if f.resolution_basis == "closed" {
                c.get(C::Dispatched)
            } else {
                c.get(C::CallbacksValid)
            },
        ),
        "satisfaction" | "satisfaction_falling" => (r.satisfaction, c.get(C::CallbacksValid)),
        "composite" => (r.composite, c.get(C::Assessed)),
        "late_share" => {
            let resolved = c.get(C::Resolved);
            let late = resolved - c.get(C::ResolvedOnTime);
            (
                (resolved > 0).then(|| late as f64 / resolved as f64),
                resolved,
            )
        }
        _ => (None, 0),
    };
    value.map(|v| (v, base))
}

/// What the rule says of a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Judgement {
    /// Too few tickets to judge: an open warning stays as it is.
    Unjudged,
    Breach {
        figure: f64,
        threshold: f64,
        base: i64,
    },
    Fine {
        figure: f64,
    },
}

/// Judges a key: `windows` are the counts of consecutive windows, the
/// current one last (one for most metrics, three for a fall).
pub fn judge(rule: &Rule, windows: &[Counts], f: &Formula) -> Judgement {
    let min = i64::from(rule.min_tickets);
    let figs: Vec<Option<(f64, i64)>> = windows
        .iter()
        .map(|c| figure(&rule.metric, c, f).filter(|(_, b)| *b >= min))
        .collect();
    match (rule.metric.as_str(), figs.as_slice()) {
        ("satisfaction_falling", [Some(a), Some(b), Some(c)]) => {
            if a.0 > b.0 && b.0 > c.0 {
                Judgement::Breach {
                    figure: c.0,
                    threshold: b.0,
                    base: c.1,
                }
            } else {
                Judgement::Fine { figure: c.0 }
            }
        }
        ("satisfaction_falling", _) => Judgement::Unjudged,
        ("late_share", [.., Some((v, base))]) if *v > rule.threshold => Judgement::Breach {
            figure: *v,
            threshold: rule.threshold,
            base: *base,
        },
        (m, [.., Some((v, base))]) if m != "late_share" && *v < rule.threshold => {
            Judgement::Breach {
                figure: *v,
                threshold: rule.threshold,
                base: *base,
            }
        }
        (_, [.., Some((v, _))]) => Judgement::Fine { figure: *v },
        _ => Judgement::Unjudged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(C, i64)]) -> Counts {
        let mut c = Counts::default();
        for (k, v) in pairs {
            c.0[*k as usize] = *v;
        }
        c
    }

    fn rule(metric: &str, threshold: f64, min: u32) -> Rule {
        Rule {
            name: "解决率低于75%".into(),
            metric: metric.into(),
            dimension: "unit".into(),
            window_days: 30,
            threshold,
            min_tickets: min,
        }
    }

    #[test]
    fn shinan_warns_below_75_percent_resolution_with_enough_tickets() {
        let f = Formula::default();
        let low = counts(&[(C::CallbacksValid, 4), (C::CallbackResolved, 2)]);
        let r = rule("resolution", 0.75, 4);
        assert_eq!(
            judge(&r, &[low], &f),
            Judgement::Breach {
                figure: 0.5,
                threshold: 0.75,
                base: 4
            }
        );
        assert_eq!(
            judge(&rule("resolution", 0.75, 5), &[low], &f),
            Judgement::Unjudged
        );
        let ok = counts(&[(C::CallbacksValid, 4), (C::CallbackResolved, 3)]);
        assert_eq!(judge(&r, &[ok], &f), Judgement::Fine { figure: 0.75 });
    }

    #[test]
    fn late_share_breaks_above_and_falls_need_three_windows() {
        let f = Formula::default();
        let late = counts(&[(C::Resolved, 4), (C::ResolvedOnTime, 2)]);
        assert!(matches!(
            judge(&rule("late_share", 0.3, 1), &[late], &f),
            Judgement::Breach { .. }
        ));
        let s = |sat: i64| counts(&[(C::CallbacksValid, 10), (C::Satisfied, sat)]);
        let r = rule("satisfaction_falling", 0.0, 5);
        assert!(matches!(
            judge(&r, &[s(9), s(8), s(7)], &f),
            Judgement::Breach { .. }
        ));
        assert_eq!(
            judge(&r, &[s(9), s(7), s(8)], &f),
            Judgement::Fine { figure: 0.8 }
        );
        assert_eq!(judge(&r, &[s(9), s(8)], &f), Judgement::Unjudged);
    }
}
