//! High-frequency matters and seasons: the tenant's policy, where a ticket
//! is counted, and when earlier years make a window a season.

use jiesu_common::{Text, tr};
use serde::{Deserialize, Serialize};

use super::counts::region_levels;

/// When the same category at the same place is a high-frequency matter,
/// and what makes a season.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrequencyPolicy {
    /// `community` or `street`.
    pub level: String,
    pub window_days: u32,
    pub threshold: u32,
    /// Seasons: the weeks ahead looked at, the earlier years compared, the
    /// fewest requests a season needs in a year's window, and how many
    /// times its ordinary level the window must reach.
    pub season_weeks: u32,
    pub season_years: u32,
    pub season_min_count: u32,
    pub season_ratio: f64,
}

impl Default for FrequencyPolicy {
    fn default() -> Self {
        Self {
            level: "community".into(),
            window_days: 7,
            threshold: 5,
            season_weeks: 4,
            season_years: 3,
            season_min_count: 10,
            season_ratio: 1.5,
        }
    }
}

impl FrequencyPolicy {
    pub fn check(&self) -> Result<(), (&'static str, Text)> {
        if !matches!(self.level.as_str(), "community" | "street") {
            return Err((
                "level",
                tr!("必须是 community 或 street", "must be community or street"),
            ));
        }
        if !(1..=90).contains(&self.window_days) {
            return Err((
                "window_days",
                tr!("必须在 1 到 90 之间", "must be between 1 and 90"),
            ));
        }
        if !(2..=10_000).contains(&self.threshold) {
            return Err((
                "threshold",
                tr!("必须在 2 到 10000 之间", "must be between 2 and 10000"),
            ));
        }
        if !(1..=13).contains(&self.season_weeks) {
            return Err((
                "season_weeks",
                tr!("必须在 1 到 13 之间", "must be between 1 and 13"),
            ));
        }
        if !(1..=10).contains(&self.season_years) {
            return Err((
                "season_years",
                tr!("必须在 1 到 10 之间", "must be between 1 and 10"),
            ));
        }
        if self.season_min_count == 0 {
            return Err(("season_min_count", tr!("必须大于 0", "must be above 0")));
        }
        if !(1.0..=100.0).contains(&self.season_ratio) {
            return Err((
                "season_ratio",
                tr!("必须在 1 到 100 之间", "must be between 1 and 100"),
            ));
        }
        Ok(())
    }

    /// Index of the policy's level in [`region_levels`].
    fn level_index(&self) -> usize {
        if self.level == "street" { 1 } else { 2 }
    }

    /// The place a ticket in `region_code` is counted at, if it has one.
    pub fn place(&self, region_code: &str) -> Option<String> {
        region_levels(region_code)[self.level_index()].clone()
    }
}

/// The digits every region under `place` starts with.
pub fn place_prefix(place: &str) -> &str {
    let mut p = place;
    while p.len() > 6 && p.ends_with("000") {
        p = &p[..p.len() - 3];
    }
    p
}

/// One earlier year: requests in its copy of the window, and in the whole
/// year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Year {
    pub window: i64,
    pub total: i64,
}

/// A season: the window's average over the years that had it, and how
/// many times the ordinary level that is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Season {
    pub average: f64,
    pub ratio: f64,
    pub years: usize,
}

/// Whether earlier years make a window of `window_days` a season: in at
/// least two of the years with data (or the only one), the window held at
/// least `min_count` requests and `ratio` times its share of the year.
pub fn season(years: &[Year], window_days: u32, min_count: u32, ratio: f64) -> Option<Season> {
    let with_data: Vec<&Year> = years.iter().filter(|y| y.total > 0).collect();
    if with_data.is_empty() {
        return None;
    }
    let share = f64::from(window_days) / 365.0;
    let rises: Vec<f64> = with_data
        .iter()
        .filter(|y| y.window >= i64::from(min_count))
        .map(|y| y.window as f64 / (y.total as f64 * share))
        .filter(|r| *r >= ratio)
        .collect();
    let needed = with_data.len().min(2);
    (rises.len() >= needed).then(|| Season {
        average: with_data.iter().map(|y| y.window as f64).sum::<f64>() / with_data.len() as f64,
        ratio: rises.iter().sum::<f64>() / rises.len() as f64,
        years: rises.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_follow_the_policy_level() {
        let p = FrequencyPolicy::default();
        assert_eq!(p.place("370202006001").as_deref(), Some("370202006001"));
        assert_eq!(p.place("370202006000"), None);
        let street = FrequencyPolicy {
            level: "street".into(),
            ..p
        };
        assert_eq!(
            street.place("370202006001").as_deref(),
            Some("370202006000")
        );
        assert_eq!(place_prefix("370202006000"), "370202006");
        assert_eq!(place_prefix("370202006001"), "370202006001");
    }

    #[test]
    fn heating_in_november_is_a_season_and_a_flat_year_is_not() {
        // 28 days: 28/365 of a year. 40 of 200 a year is 2.6 times that.
        let heating = [
            Year {
                window: 40,
                total: 200,
            },
            Year {
                window: 36,
                total: 180,
            },
        ];
        let s = season(&heating, 28, 10, 1.5);
        assert!(
            s.is_some_and(|s| s.years == 2 && s.ratio > 2.5 && s.average == 38.0),
            "{s:?}"
        );
        let flat = [
            Year {
                window: 16,
                total: 200,
            },
            Year {
                window: 15,
                total: 190,
            },
        ];
        assert_eq!(season(&flat, 28, 10, 1.5), None);
        // One year of the two rose: not a season.
        assert_eq!(season(&[heating[0], flat[0]], 28, 10, 1.5), None);
        // Too few to be a trend.
        assert_eq!(
            season(
                &[Year {
                    window: 4,
                    total: 10
                }],
                28,
                10,
                1.5
            ),
            None
        );
        assert_eq!(season(&[], 28, 10, 1.5), None);
    }
}
