//! Working time: a tenant's calendar of public holidays, make-up workdays
//! (调休) and working hours, and the arithmetic SLA clocks need — a
//! deadline some working time after a moment, and the working time between
//! two moments. Pure: the store loads the tenant's calendar, this module
//! computes. All days and hours are China time (UTC+8, no DST).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use jiesu_common::{Text, tr};

pub use jiesu_common::time::china;

/// One stretch of working hours in a day, e.g. 09:00–12:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Shift {
    /// Parses `09:00-12:00`.
    pub fn parse(raw: &str) -> Result<Self, Text> {
        let bad = || {
            tr!(
                "`{raw}` 不是 09:00-12:00 这样的工作时段",
                "`{raw}` is not working hours such as 09:00-12:00"
            )
        };
        let (a, b) = raw.trim().split_once('-').ok_or_else(bad)?;
        let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (t(a)?, t(b)?);
        if start >= end {
            return Err(tr!(
                "`{raw}` 的结束时间早于开始时间",
                "`{raw}` ends before it starts"
            ));
        }
        Ok(Self { start, end })
    }
}

impl std::fmt::Display for Shift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error(
        "working hours must be non-empty, each start before its end, in order and not overlapping"
    )]
    BadHours,
    #[error("{0} is both a holiday and a make-up workday")]
    Both(NaiveDate),
}

impl CalendarError {
    /// What the tenant admin reads.
    pub fn text(&self) -> Text {
        match self {
            Self::BadHours => tr!(
                "工作时段不能为空，每段的开始须早于结束，且按顺序排列、互不重叠",
                "working hours must be non-empty, each start before its end, in order and not overlapping"
            ),
            Self::Both(d) => tr!(
                "{d} 不能既是节假日又是调休工作日",
                "{d} is both a holiday and a make-up workday"
            ),
        }
    }
}

/// A tenant's working calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Days off that would otherwise be workdays (and holiday weekends).
    holidays: BTreeSet<NaiveDate>,
    /// Weekend days that are workdays (调休上班).
    workdays: BTreeSet<NaiveDate>,
    shifts: Vec<Shift>,
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

/// 09:00–12:00 and 13:00–17:00: seven working hours a day.
pub fn default_shifts() -> Vec<Shift> {
    vec![
        Shift {
            start: hm(9, 0),
            end: hm(12, 0),
        },
        Shift {
            start: hm(13, 0),
            end: hm(17, 0),
        },
    ]
}

impl Calendar {
    pub fn new(
        holidays: impl IntoIterator<Item = NaiveDate>,
        workdays: impl IntoIterator<Item = NaiveDate>,
        shifts: Vec<Shift>,
    ) -> Result<Self, CalendarError> {
        let holidays: BTreeSet<NaiveDate> = holidays.into_iter().collect();
        let workdays: BTreeSet<NaiveDate> = workdays.into_iter().collect();
        if let Some(d) = holidays.intersection(&workdays).next() {
            return Err(CalendarError::Both(*d));
        }
        let ordered = shifts.windows(2).all(|w| w[0].end <= w[1].start);
        if shifts.is_empty() || !ordered || shifts.iter().any(|s| s.start >= s.end) {
            return Err(CalendarError::BadHours);
        }
        Ok(Self {
            holidays,
            workdays,
            shifts,
        })
    }

    /// The official national arrangements this build knows, with
    /// [`default_shifts`].
    pub fn national() -> Self {
        let (holidays, workdays) = national_days();
        Self {
            holidays,
            workdays,
            shifts: default_shifts(),
        }
    }

    /// The national arrangements with a tenant's own changes on top:
    /// `Some(true)` makes a day a holiday, `Some(false)` a workday, `None`
    /// takes back the national arrangement for that day (plain weekday or
    /// weekend).
    pub fn with_overrides(
        overrides: &[(NaiveDate, Option<bool>)],
        shifts: Vec<Shift>,
    ) -> Result<Self, CalendarError> {
        let (mut holidays, mut workdays) = national_days();
        for (day, kind) in overrides {
            holidays.remove(day);
            workdays.remove(day);
            match kind {
                Some(true) => {
                    holidays.insert(*day);
                }
                Some(false) => {
                    workdays.insert(*day);
                }
                None => {}
            }
        }
        Self::new(holidays, workdays, shifts)
    }

    /// Holidays (`true`) and make-up workdays (`false`) of a year, in order.
    pub fn special_days(&self, year: i32) -> Vec<(NaiveDate, bool)> {
        let mut out: Vec<(NaiveDate, bool)> = self
            .holidays
            .iter()
            .filter(|d| d.year() == year)
            .map(|d| (*d, true))
            .chain(
                self.workdays
                    .iter()
                    .filter(|d| d.year() == year)
                    .map(|d| (*d, false)),
            )
            .collect();
        out.sort();
        out
    }

    pub fn shifts(&self) -> &[Shift] {
        &self.shifts
    }

    pub fn is_workday(&self, day: NaiveDate) -> bool {
        if self.workdays.contains(&day) {
            return true;
        }
        if self.holidays.contains(&day) {
            return false;
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// Working time in one day.
    pub fn day_length(&self) -> Duration {
        self.shifts
            .iter()
            .map(|s| s.end - s.start)
            .fold(Duration::zero(), |a, b| a + b)
    }

    fn at(day: NaiveDate, t: NaiveTime) -> DateTime<Utc> {
        china()
            .from_local_datetime(&day.and_time(t))
            .single()
            .map_or_else(|| day.and_time(t).and_utc(), |d| d.with_timezone(&Utc))
    }

    /// The working stretches of `day` as UTC intervals (none on a day off).
    fn stretches(&self, day: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.is_workday(day) {
            return Vec::new();
        }
        self.shifts
            .iter()
            .map(|s| (Self::at(day, s.start), Self::at(day, s.end)))
            .collect()
    }

    /// The moment `amount` of working time after `from`. A clock started
    /// outside working hours starts at the next working moment; a deadline
    /// that falls exactly at the end of a stretch stays there.
    pub fn add(&self, from: DateTime<Utc>, amount: Duration) -> DateTime<Utc> {
        let mut left = amount.max(Duration::zero());
        let mut day = from.with_timezone(&china()).date_naive();
        // A year without a single working day cannot be a tenant calendar;
        // the bound keeps a broken one from looping forever.
        for _ in 0..(366 * 3) {
            for (start, end) in self.stretches(day) {
                if end <= from {
                    continue;
                }
                let begin = start.max(from);
                let available = end - begin;
                if left <= available {
                    return begin + left;
                }
                left -= available;
            }
            day = day.succ_opt().unwrap_or(day);
        }
        from + amount
    }

    /// `n` working days after `from`: `n` days' worth of working time.
    pub fn add_days(&self, from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        self.add(
            from,
            self.day_length() * i32::try_from(n).unwrap_or(i32::MAX),
        )
    }

    /// Working time between `a` and `b` (zero if `b` is not after `a`).
    pub fn between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        if b <= a {
            return Duration::zero();
        }
        let mut total = Duration::zero();
        let mut day = a.with_timezone(&china()).date_naive();
        let last = b.with_timezone(&china()).date_naive();
        while day <= last {
            for (start, end) in self.stretches(day) {
                let (s, e) = (start.max(a), end.min(b));
                if e > s {
                    total += e - s;
                }
            }
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        total
    }
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap_or(NaiveDate::MIN)
}

fn span(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |x| *x <= to)
}

/// Holidays and make-up workdays (调休上班) from the State Council's
/// notices: 国办发明电〔2024〕12号 for 2025 and the notice of 2025-11-04 for
/// 2026. The 2027 arrangement had not been found published when this was
/// written; tenant admins add it through the calendar when it is.
pub fn national_days() -> (BTreeSet<NaiveDate>, BTreeSet<NaiveDate>) {
    let holidays = [
        // 2025
        (d(2025, 1, 1), d(2025, 1, 1)),
        (d(2025, 1, 28), d(2025, 2, 4)),
        (d(2025, 4, 4), d(2025, 4, 6)),
        (d(2025, 5, 1), d(2025, 5, 5)),
        (d(2025, 5, 31), d(2025, 6, 2)),
        (d(2025, 10, 1), d(2025, 10, 8)),
        // 2026
        (d(2026, 1, 1), d(2026, 1, 3)),
        (d(2026, 2, 15), d(2026, 2, 23)),
        (d(2026, 4, 4), d(2026, 4, 6)),
        (d(2026, 5, 1), d(2026, 5, 5)),
        (d(2026, 6, 19), d(2026, 6, 21)),
        (d(2026, 9, 25), d(2026, 9, 27)),
        (d(2026, 10, 1), d(2026, 10, 7)),
    ]
    .into_iter()
    .flat_map(|(a, b)| span(a, b))
    .collect();
    let workdays = [
        d(2025, 1, 26),
        d(2025, 2, 8),
        d(2025, 4, 27),
        d(2025, 9, 28),
        d(2025, 10, 11),
        d(2026, 1, 4),
        d(2026, 2, 14),
        d(2026, 2, 28),
        d(2026, 5, 9),
        d(2026, 9, 20),
        d(2026, 10, 10),
    ]
    .into_iter()
    .collect();
    (holidays, workdays)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A China-time moment (an impossible one is MIN, failing any
    /// comparison).
    pub(crate) fn cn(y: i32, m: u32, day: u32, h: u32, min: u32) -> DateTime<Utc> {
        china()
            .with_ymd_and_hms(y, m, day, h, min, 0)
            .single()
            .map_or(DateTime::<Utc>::MIN_UTC, |d| d.with_timezone(&Utc))
    }

    fn hours(h: i64) -> Duration {
        Duration::hours(h)
    }

    #[test]
    fn adding_working_time_skips_nights_weekends_holidays_and_counts_make_up_days() {
        let cal = Calendar::national();
        let cases: &[(&str, DateTime<Utc>, Duration, DateTime<Utc>)] = &[
            (
                "inside a morning",
                cn(2026, 3, 10, 9, 30),
                hours(2),
                cn(2026, 3, 10, 11, 30),
            ),
            (
                "across lunch",
                cn(2026, 3, 10, 11, 0),
                hours(2),
                cn(2026, 3, 10, 14, 0),
            ),
            (
                "overnight",
                cn(2026, 3, 10, 16, 0),
                hours(2),
                cn(2026, 3, 11, 10, 0),
            ),
            (
                "started at night",
                cn(2026, 3, 10, 22, 0),
                hours(1),
                cn(2026, 3, 11, 10, 0),
            ),
            (
                "started before opening",
                cn(2026, 3, 10, 7, 0),
                hours(1),
                cn(2026, 3, 10, 10, 0),
            ),
            (
                "started at lunch",
                cn(2026, 3, 10, 12, 30),
                hours(1),
                cn(2026, 3, 10, 14, 0),
            ),
            (
                "friday to monday",
                cn(2026, 3, 13, 16, 0),
                hours(2),
                cn(2026, 3, 16, 10, 0),
            ),
            (
                "saturday start",
                cn(2026, 3, 14, 10, 0),
                hours(1),
                cn(2026, 3, 16, 10, 0),
            ),
            (
                "ends exactly at close",
                cn(2026, 3, 10, 16, 0),
                hours(1),
                cn(2026, 3, 10, 17, 0),
            ),
            (
                "zero",
                cn(2026, 3, 10, 10, 0),
                hours(0),
                cn(2026, 3, 10, 10, 0),
            ),
            // 国庆 2026: Oct 1-7 off, Sat Oct 10 a workday; Sun Sep 20 too.
            (
                "into national day",
                cn(2026, 9, 30, 16, 0),
                hours(2),
                cn(2026, 10, 8, 10, 0),
            ),
            (
                "make-up saturday",
                cn(2026, 10, 9, 16, 0),
                hours(2),
                cn(2026, 10, 10, 10, 0),
            ),
            (
                "make-up sunday",
                cn(2026, 9, 19, 10, 0),
                hours(1),
                cn(2026, 9, 20, 10, 0),
            ),
            // 中秋 2026 Fri Sep 25 - Sun Sep 27.
            (
                "mid-autumn friday",
                cn(2026, 9, 24, 16, 30),
                hours(1),
                cn(2026, 9, 28, 9, 30),
            ),
            // 春节 2026: Feb 15-23 off, Sat Feb 14 and Sat Feb 28 work.
            (
                "spring festival",
                cn(2026, 2, 13, 16, 0),
                hours(2),
                cn(2026, 2, 14, 10, 0),
            ),
            (
                "through the festival",
                cn(2026, 2, 14, 16, 0),
                hours(2),
                cn(2026, 2, 24, 10, 0),
            ),
            // Year end: 2025-12-31 (Wed) to the 2026 New Year (Jan 1-3 off,
            // Sun Jan 4 a workday).
            (
                "year end",
                cn(2025, 12, 31, 16, 0),
                hours(2),
                cn(2026, 1, 4, 10, 0),
            ),
            // 2025 New Year on a Wednesday: one day only.
            (
                "new year 2025",
                cn(2024, 12, 31, 16, 0),
                hours(2),
                cn(2025, 1, 2, 10, 0),
            ),
            (
                "labour day 2025",
                cn(2025, 4, 30, 16, 0),
                hours(2),
                cn(2025, 5, 6, 10, 0),
            ),
            (
                "make-up sunday 2025",
                cn(2025, 4, 26, 10, 0),
                hours(1),
                cn(2025, 4, 27, 10, 0),
            ),
        ];
        for (name, from, amount, want) in cases {
            assert_eq!(cal.add(*from, *amount), *want, "{name}");
        }
    }

    #[test]
    fn working_days_are_days_worth_of_working_time() {
        let cal = Calendar::national();
        assert_eq!(cal.day_length(), hours(7));
        // Tue 10:00 + 3 working days = Fri 10:00.
        assert_eq!(
            cal.add_days(cn(2026, 3, 10, 10, 0), 3),
            cn(2026, 3, 13, 10, 0)
        );
        // Fri 10:00 + 1 = Mon 10:00.
        assert_eq!(
            cal.add_days(cn(2026, 3, 13, 10, 0), 1),
            cn(2026, 3, 16, 10, 0)
        );
        // Received on a holiday evening: 1 working day = end of the first
        // working day after it.
        assert_eq!(
            cal.add_days(cn(2026, 10, 3, 20, 0), 1),
            cn(2026, 10, 8, 17, 0)
        );
        // 5 working days over 劳动节 2026 (May 1-5 off, Sat May 9 works).
        assert_eq!(
            cal.add_days(cn(2026, 4, 30, 10, 0), 5),
            cn(2026, 5, 11, 10, 0)
        );
    }

    #[test]
    fn working_time_between_is_the_inverse_of_adding_it() {
        let cal = Calendar::national();
        let cases = [
            (cn(2026, 3, 10, 9, 30), cn(2026, 3, 10, 11, 30), hours(2)),
            (cn(2026, 3, 10, 11, 0), cn(2026, 3, 10, 14, 0), hours(2)),
            (cn(2026, 3, 13, 16, 0), cn(2026, 3, 16, 10, 0), hours(2)),
            (cn(2026, 9, 30, 16, 0), cn(2026, 10, 8, 10, 0), hours(2)),
            (cn(2026, 3, 14, 8, 0), cn(2026, 3, 15, 20, 0), hours(0)),
            (cn(2026, 3, 10, 12, 10), cn(2026, 3, 10, 12, 50), hours(0)),
        ];
        for (a, b, want) in cases {
            assert_eq!(cal.between(a, b), want, "{a} → {b}");
            assert_eq!(cal.between(b, a), Duration::zero());
        }
        // add then between gives back the amount, from any start.
        let mut from = cn(2025, 12, 20, 0, 0);
        while from < cn(2026, 3, 1, 0, 0) {
            for h in [0, 1, 5, 7, 30] {
                let to = cal.add(from, hours(h));
                assert_eq!(cal.between(from, to), hours(h), "{from} + {h}h");
            }
            from += Duration::minutes(97);
        }
    }

    #[test]
    fn a_pause_stops_the_clock_and_the_deadline_moves_by_what_was_paused() {
        let cal = Calendar::national();
        // Dispatched Tue 10:00 with 7 working hours; paused (waiting for the
        // citizen) from 11:00 to Wed 15:00, resumed then.
        let start = cn(2026, 3, 10, 10, 0);
        let (pause, resume) = (cn(2026, 3, 10, 11, 0), cn(2026, 3, 11, 15, 0));
        let used = cal.between(start, pause);
        assert_eq!(used, hours(1));
        let deadline = cal.add(resume, hours(7) - used);
        // The 6 h left: Wed 15-17 (2 h), Thu 9-12 (3 h), Thu 13-14 (1 h).
        assert_eq!(deadline, cn(2026, 3, 12, 14, 0));
    }

    #[test]
    fn tenants_change_hours_and_days_and_bad_calendars_are_refused() -> Result<(), CalendarError> {
        let cal = Calendar::new(
            [d(2026, 3, 11)],
            [d(2026, 3, 14)],
            vec![Shift {
                start: hm(8, 30),
                end: hm(17, 30),
            }],
        )?;
        assert!(!cal.is_workday(d(2026, 3, 11)));
        assert!(cal.is_workday(d(2026, 3, 14)));
        assert_eq!(
            cal.add(cn(2026, 3, 10, 17, 0), hours(1)),
            cn(2026, 3, 12, 9, 0)
        );
        assert_eq!(
            Calendar::new([d(2026, 3, 11)], [d(2026, 3, 11)], default_shifts()).unwrap_err(),
            CalendarError::Both(d(2026, 3, 11))
        );
        for bad in [
            vec![],
            vec![Shift {
                start: hm(12, 0),
                end: hm(9, 0),
            }],
            vec![
                Shift {
                    start: hm(9, 0),
                    end: hm(12, 0),
                },
                Shift {
                    start: hm(11, 0),
                    end: hm(17, 0),
                },
            ],
        ] {
            assert_eq!(
                Calendar::new([], [], bad).unwrap_err(),
                CalendarError::BadHours
            );
        }
        Ok(())
    }

    #[test]
    fn the_national_days_match_the_notices() {
        let (holidays, workdays) = national_days();
        // 2025: 1 + 8 + 3 + 5 + 3 + 8 = 28 days; 2026: 3 + 9 + 3 + 5 + 3 + 3 + 7 = 33.
        assert_eq!(holidays.iter().filter(|x| x.year() == 2025).count(), 28);
        assert_eq!(holidays.iter().filter(|x| x.year() == 2026).count(), 33);
        // Every make-up workday is a weekend day.
        assert!(
            workdays
                .iter()
                .all(|x| matches!(x.weekday(), Weekday::Sat | Weekday::Sun))
        );
        assert_eq!(workdays.len(), 11);
    }
}
