//! China Standard Time: UTC+8 all year, no daylight saving. Days, years
//! and the times people read (tracking numbers, working calendars, duty
//! periods, notices, Open311 datetimes) are counted in it; everything is
//! stored and carried in UTC.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, TimeDelta, Utc};

/// Seconds east of UTC.
const OFFSET_SECONDS: i32 = 8 * 3600;

/// The UTC+8 offset.
pub fn china() -> FixedOffset {
    // 8 hours is inside chrono's ±24 h bound: the fallback is never taken.
    FixedOffset::east_opt(OFFSET_SECONDS).unwrap_or_else(|| Utc.fix())
}

/// `at` as a China wall-clock time.
pub fn in_china(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&china())
}

/// The calendar day of `at` in China.
pub fn china_day(at: DateTime<Utc>) -> NaiveDate {
    (at + TimeDelta::seconds(i64::from(OFFSET_SECONDS))).date_naive()
}

/// Today in China.
pub fn china_today() -> NaiveDate {
    china_day(Utc::now())
}

/// The UTC instant at which `day` begins in China.
pub fn china_midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc() - TimeDelta::seconds(i64::from(OFFSET_SECONDS))
}

/// ISO 8601 with the China offset, seconds precision:
/// `2026-11-22T08:30:00+08:00`.
pub fn iso_china(at: DateTime<Utc>) -> String {
    in_china(at).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_day_turns_at_sixteen_utc() {
        let before = Utc.with_ymd_and_hms(2026, 11, 30, 15, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).unwrap();
        assert_eq!(china_day(before).to_string(), "2026-11-30");
        assert_eq!(china_day(after).to_string(), "2026-12-01");
    }

    #[test]
    fn midnight_is_the_day_turning() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let m = china_midnight(day);
        assert_eq!(m, Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).unwrap());
        assert_eq!(china_day(m), day);
        assert_eq!(
            china_day(m - TimeDelta::seconds(1)),
            day.pred_opt().unwrap()
        );
    }

    #[test]
    fn iso_carries_the_offset() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 0, 30, 0).unwrap();
        assert_eq!(iso_china(at), "2026-11-22T08:30:00+08:00");
        assert_eq!(in_china(at).offset().local_minus_utc(), 8 * 3600);
    }
}
