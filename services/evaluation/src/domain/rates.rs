//! Periods, formulas and the rates computed from counts. Counts never
//! depend on a formula; a formula turns them into rates at read time, so a
//! new formula changes no past figure.

use chrono::{Datelike, Months, NaiveDate, TimeDelta};
use jiesu_common::{Text, tr};
use serde::{Deserialize, Serialize};

use super::counts::{C, Counts};

/// Days `from..=to` (China time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The calendar unit the period was named by, for its predecessor.
    pub unit: PeriodUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    Day,
    Month,
    Quarter,
    Year,
    Range,
}

/// Longest range one question may cover.
pub const MAX_DAYS: i64 = 3 * 366;

fn month_start(y: i32, m: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, 1)
}

fn months(from: NaiveDate, n: u32, unit: PeriodUnit) -> Option<Period> {
    let next = from.checked_add_months(Months::new(n))?;
    Some(Period {
        from,
        to: next - TimeDelta::days(1),
        unit,
    })
}

impl Period {
    /// `YYYY-MM-DD`, `YYYY-MM`, `YYYY-Qn` or `YYYY`.
    pub fn parse(raw: &str) -> Result<Period, Text> {
        let bad = || {
            tr!(
                "格式应为 YYYY-MM-DD、YYYY-MM、YYYY-Qn 或 YYYY",
                "must be YYYY-MM-DD, YYYY-MM, YYYY-Qn or YYYY"
            )
        };
        let raw = raw.trim();
        let num = |s: &str| s.parse::<u32>().ok();
        let parts: Vec<&str> = raw.split('-').collect();
        let year = parts
            .first()
            .filter(|y| y.len() == 4)
            .and_then(|y| y.parse::<i32>().ok())
            .filter(|y| (2000..=2100).contains(y))
            .ok_or_else(bad)?;
        let p = match parts.as_slice() {
            [_] => month_start(year, 1).and_then(|d| months(d, 12, PeriodUnit::Year)),
            [_, q] if q.len() == 2 && q.starts_with('Q') => num(&q[1..])
                .filter(|n| (1..=4).contains(n))
                .and_then(|n| month_start(year, n * 3 - 2))
                .and_then(|d| months(d, 3, PeriodUnit::Quarter)),
            [_, m] if m.len() == 2 => num(m)
                .and_then(|m| month_start(year, m))
                .and_then(|d| months(d, 1, PeriodUnit::Month)),
            [_, m, d] if m.len() == 2 && d.len() == 2 => num(m)
                .zip(num(d))
                .and_then(|(m, d)| NaiveDate::from_ymd_opt(year, m, d))
                .map(|d| Period {
                    from: d,
                    to: d,
                    unit: PeriodUnit::Day,
                }),
            _ => None,
        };
        p.ok_or_else(bad)
    }

    /// Any range of days, both included.
    pub fn range(from: NaiveDate, to: NaiveDate) -> Result<Period, Text> {
        if to < from {
            return Err(tr!("不能早于 from", "must not be before from"));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(tr!(
                "时间范围不能超过 {} 天",
                "the range may not exceed {} days",
                MAX_DAYS
            ));
        }
        Ok(Period {
            from,
            to,
            unit: PeriodUnit::Range,
        })
    }

    /// The period before: the previous month, quarter, year or day, or the
    /// same number of days just before a range.
    pub fn previous(&self) -> Option<Period> {
        let back = |n: u32| {
            let from = self.from.checked_sub_months(Months::new(n))?;
            months(from, n, self.unit)
        };
        match self.unit {
            PeriodUnit::Month => back(1),
            PeriodUnit::Quarter => back(3),
            PeriodUnit::Year => back(12),
            PeriodUnit::Day | PeriodUnit::Range => {
                let len = (self.to - self.from).num_days() + 1;
                let to = self.from - TimeDelta::days(1);
                Some(Period {
                    from: to - TimeDelta::days(len - 1),
                    to,
                    unit: self.unit,
                })
            }
        }
    }

    /// The same period one year earlier.
    pub fn year_before(&self) -> Option<Period> {
        let f = |d: NaiveDate| {
            d.with_year(d.year() - 1)
                .or_else(|| d.pred_opt()?.with_year(d.year() - 1))
        };
        Some(Period {
            from: f(self.from)?,
            to: f(self.to)?,
            unit: self.unit,
        })
    }
}

/// A tenant's formula, in force from `effective_from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Formula {
    pub satisfied_weight: f64,
    pub basic_weight: f64,
    pub response_weight: f64,
    pub resolution_weight: f64,
    pub satisfaction_weight: f64,
    /// `callback` or `closed`.
    pub resolution_basis: String,
    /// `on_time` or `any`.
    pub response_basis: String,
}

impl Default for Formula {
    /// Beijing's published weights: 响应 10%, 解决 50%, 满意 40%;
    /// 基本满意 counts 0.9 of 满意.
    fn default() -> Self {
        Self {
            satisfied_weight: 1.0,
            basic_weight: 0.9,
            response_weight: 0.1,
            resolution_weight: 0.5,
            satisfaction_weight: 0.4,
            resolution_basis: "callback".into(),
            response_basis: "on_time".into(),
        }
    }
}

impl Formula {
    /// Every problem with the formula, by field.
    pub fn check(&self) -> Result<(), (&'static str, Text)> {
        let unit = |v: f64| (0.0..=1.0).contains(&v);
        for (field, v) in [
            ("satisfied_weight", self.satisfied_weight),
            ("basic_weight", self.basic_weight),
            ("response_weight", self.response_weight),
            ("resolution_weight", self.resolution_weight),
            ("satisfaction_weight", self.satisfaction_weight),
        ] {
            if !unit(v) {
                return Err((field, tr!("必须在 0 到 1 之间", "must be between 0 and 1")));
            }
        }
        if self.basic_weight > self.satisfied_weight {
            return Err((
                "basic_weight",
                tr!(
                    "基本满意的权重不能高于满意",
                    "may not weigh more than satisfied_weight"
                ),
            ));
        }
        let sum = self.response_weight + self.resolution_weight + self.satisfaction_weight;
        if (sum - 1.0).abs() > 1e-9 {
            return Err((
                "satisfaction_weight",
                tr!(
                    "响应、解决、满意三项权重之和必须为 1（现为 {}）",
                    "the three weights must add up to 1 (they add up to {})",
                    sum
                ),
            ));
        }
        if !matches!(self.resolution_basis.as_str(), "callback" | "closed") {
            return Err((
                "resolution_basis",
                tr!("必须是 callback 或 closed", "must be callback or closed"),
            ));
        }
        if !matches!(self.response_basis.as_str(), "on_time" | "any") {
            return Err((
                "response_basis",
                tr!("必须是 on_time 或 any", "must be on_time or any"),
            ));
        }
        Ok(())
    }
}

/// Rates from counts; a rate whose base is zero is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub response: Option<f64>,
    pub resolution: Option<f64>,
    pub satisfaction: Option<f64>,
    pub composite: Option<f64>,
    pub sign_on_time: Option<f64>,
    pub resolve_on_time: Option<f64>,
    pub same_day: Option<f64>,
    pub return_rate: Option<f64>,
    pub reopen_rate: Option<f64>,
    pub avg_work_hours: Option<f64>,
}

fn ratio(num: f64, den: i64) -> Option<f64> {
    (den > 0).then(|| num / den as f64)
}

pub fn rates(c: &Counts, f: &Formula) -> Rates {
    let n = |x: C| c.get(x) as f64;
    let dispatched = c.get(C::Dispatched);
    let valid = c.get(C::CallbacksValid);
    let response = match f.response_basis.as_str() {
        "any" => ratio(n(C::Responded), dispatched),
        _ => ratio(n(C::RespondedOnTime), dispatched),
    };
    let resolution = match f.resolution_basis.as_str() {
        "closed" => ratio(n(C::Closed), dispatched),
        _ => ratio(n(C::CallbackResolved), valid),
    };
    let satisfaction = ratio(
        n(C::Satisfied) * f.satisfied_weight + n(C::Basic) * f.basic_weight,
        valid,
    );
    let composite = match (response, resolution, satisfaction) {
        (Some(a), Some(b), Some(s)) => Some(
            100.0 * (a * f.response_weight + b * f.resolution_weight + s * f.satisfaction_weight),
        ),
        _ => None,
    };
    Rates {
        response,
        resolution,
        satisfaction,
        composite,
        sign_on_time: ratio(n(C::SignedOnTime), dispatched),
        resolve_on_time: ratio(n(C::ResolvedOnTime), c.get(C::Resolved)),
        same_day: ratio(n(C::ResolvedSameDay), c.get(C::Assessed)),
        return_rate: ratio(n(C::Returned), dispatched),
        reopen_rate: ratio(n(C::Reopened), dispatched),
        avg_work_hours: ratio(n(C::ResolveWorkMinutes) / 60.0, c.get(C::Resolved)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn periods_parse_and_know_their_predecessor() {
        let m = Period::parse("2026-03").ok();
        assert_eq!(
            m.map(|p| (p.from, p.to)),
            Some((d("2026-03-01"), d("2026-03-31")))
        );
        let prev = m.and_then(|p| p.previous());
        assert_eq!(
            prev.map(|p| (p.from, p.to)),
            Some((d("2026-02-01"), d("2026-02-28")))
        );
        let q = Period::parse("2026-Q1").ok().and_then(|p| p.previous());
        assert_eq!(
            q.map(|p| (p.from, p.to)),
            Some((d("2025-10-01"), d("2025-12-31")))
        );
        let y = Period::parse("2025").ok();
        assert_eq!(
            y.map(|p| (p.from, p.to)),
            Some((d("2025-01-01"), d("2025-12-31")))
        );
        let r = Period::range(d("2026-01-10"), d("2026-01-19"))
            .ok()
            .and_then(|p| p.previous());
        assert_eq!(
            r.map(|p| (p.from, p.to)),
            Some((d("2025-12-31"), d("2026-01-09")))
        );
        for bad in ["2026-13", "26-01", "2026-Q5", "2026-02-30", "", "abc"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        assert!(Period::range(d("2026-02-01"), d("2026-01-01")).is_err());
    }

    #[test]
    fn rates_follow_the_formula() {
        let mut c = Counts::default();
        let mut put = |k: C, v: i64| c.0[k as usize] = v;
        put(C::Dispatched, 10);
        put(C::RespondedOnTime, 8);
        put(C::Responded, 9);
        put(C::CallbacksValid, 5);
        put(C::CallbackResolved, 4);
        put(C::Satisfied, 3);
        put(C::Basic, 1);
        put(C::Unsatisfied, 1);
        let r = rates(&c, &Formula::default());
        assert_eq!(r.response, Some(0.8));
        assert_eq!(r.resolution, Some(0.8));
        // (3 + 0.9 × 1) / 5
        assert!((r.satisfaction.unwrap_or(0.0) - 0.78).abs() < 1e-12);
        // 100 × (0.1 × 0.8 + 0.5 × 0.8 + 0.4 × 0.78)
        assert!((r.composite.unwrap_or(0.0) - 79.2).abs() < 1e-9);
        let other = Formula {
            basic_weight: 0.5,
            response_basis: "any".into(),
            ..Formula::default()
        };
        let r = rates(&c, &other);
        assert_eq!(r.response, Some(0.9));
        assert!((r.satisfaction.unwrap_or(0.0) - 0.7).abs() < 1e-12);
        assert_eq!(rates(&Counts::default(), &other), Rates::default());
    }

    #[test]
    fn formulas_are_checked_field_by_field() {
        assert!(Formula::default().check().is_ok());
        let f = Formula {
            response_weight: 0.3,
            ..Formula::default()
        };
        assert_eq!(f.check().err().map(|e| e.0), Some("satisfaction_weight"));
        let f = Formula {
            basic_weight: 1.2,
            ..Formula::default()
        };
        assert_eq!(f.check().err().map(|e| e.0), Some("basic_weight"));
    }
}
