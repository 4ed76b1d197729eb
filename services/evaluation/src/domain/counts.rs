//! What one ticket adds to the rollups: formula-free counts, placed on the
//! day it was received under each dimension key it belongs to. A pure
//! function of the facts row, so a change is rolled up exactly by
//! subtracting the old contribution and adding the new one.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use jiesu_common::time::china_day;

/// The counters, in the order of the `rollup_day` columns.
pub const COUNTERS: [&str; 22] = [
    "received",
    "excluded",
    "merged",
    "withdrawn",
    "assessed",
    "dispatched",
    "signed_on_time",
    "responded",
    "responded_on_time",
    "resolved",
    "resolved_on_time",
    "resolved_same_day",
    "closed",
    "returned",
    "reopened",
    "callbacks_valid",
    "satisfied",
    "basic",
    "unsatisfied",
    "callback_resolved",
    "unreachable",
    "resolve_work_minutes",
];

/// Index of each counter in [`Counts::0`].
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub enum C {
    Received,
    Excluded,
    Merged,
    Withdrawn,
    Assessed,
    Dispatched,
    SignedOnTime,
    Responded,
    RespondedOnTime,
    Resolved,
    ResolvedOnTime,
    ResolvedSameDay,
    Closed,
    Returned,
    Reopened,
    CallbacksValid,
    Satisfied,
    Basic,
    Unsatisfied,
    CallbackResolved,
    Unreachable,
    ResolveWorkMinutes,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts(pub [i64; COUNTERS.len()]);

impl Counts {
    pub fn get(&self, c: C) -> i64 {
        self.0[c as usize]
    }

    fn set(&mut self, c: C, v: i64) {
        self.0[c as usize] = v;
    }

    fn flag(&mut self, c: C, on: bool) {
        self.set(c, i64::from(on));
    }

    pub fn add(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    pub fn sub(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a -= b;
        }
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|v| *v == 0)
    }
}

/// The dimensions a ticket is rolled up under.
pub const DIMENSIONS: [&str; 9] = [
    "tenant",
    "unit",
    "district",
    "street",
    "community",
    "category1",
    "category2",
    "category",
    "channel",
];

/// Satisfaction given at a callback.
pub const SATISFACTIONS: [&str; 3] = ["satisfied", "basic", "unsatisfied"];

/// The judged facts of one ticket (one `ticket_facts` row).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub tenant: String,
    pub received_at: Option<DateTime<Utc>>,
    pub channel: String,
    pub category: String,
    pub category_path: Vec<String>,
    /// The order's (located) region when dispatch has one, else intake's.
    pub region_code: String,
    pub status: String,
    pub unit_id: String,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub clock_started_at: Option<DateTime<Utc>>,
    pub sign_due: Option<DateTime<Utc>>,
    pub respond_due: Option<DateTime<Utc>>,
    pub resolve_due: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
    pub responded_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub returns: i32,
    pub reopens: i32,
    pub resolve_work_minutes: i32,
    pub merged: bool,
    pub withdrawn: bool,
    pub excluded: bool,
    /// The latest round's verdict: (resolved, satisfaction).
    pub verdict: Option<(bool, String)>,
    /// The latest round ended unreachable.
    pub unreachable: bool,
}

/// The region levels of a 12-digit code: district (6), street (9),
/// community (12); a level whose digits are all zero is not named.
pub fn region_levels(code: &str) -> [Option<String>; 3] {
    let level = |n: usize| -> Option<String> {
        let c = code.get(..n)?;
        let own = c.get(n - 3..)?;
        (c.len() == n && c.bytes().all(|b| b.is_ascii_digit()) && own != "000")
            .then(|| format!("{c:0<12}"))
    };
    [level(6), level(9), level(12)]
}

/// The (dimension, key) pairs a ticket is counted under.
pub fn keys(f: &Facts) -> Vec<(&'static str, String)> {
    let mut out = vec![("tenant", f.tenant.clone())];
    if !f.unit_id.is_empty() {
        out.push(("unit", f.unit_id.clone()));
    }
    let [d, s, c] = region_levels(&f.region_code);
    for (dim, key) in [("district", d), ("street", s), ("community", c)] {
        if let Some(k) = key {
            out.push((dim, k));
        }
    }
    if let Some(top) = f.category_path.first() {
        out.push(("category1", top.clone()));
    }
    if f.category_path.len() > 2
        && let Some(second) = f.category_path.get(1)
    {
        out.push(("category2", second.clone()));
    }
    if !f.category.is_empty() {
        out.push(("category", f.category.clone()));
    }
    if !f.channel.is_empty() {
        out.push(("channel", f.channel.clone()));
    }
    out
}

fn by(at: Option<DateTime<Utc>>, due: Option<DateTime<Utc>>) -> bool {
    match (at, due) {
        (Some(a), Some(d)) => a <= d,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The counts one ticket adds, and the day they go to; none before its
/// `ticket.received` has arrived (its day is not known yet).
pub fn contribution(f: &Facts) -> Option<(NaiveDate, Counts)> {
    let received = f.received_at?;
    let day = china_day(received);
    let mut c = Counts::default();
    c.set(C::Received, 1);
    if f.merged || f.withdrawn || f.excluded {
        // Not judged: counted once, under the first that applies.
        let why = if f.excluded {
            C::Excluded
        } else if f.merged {
            C::Merged
        } else {
            C::Withdrawn
        };
        c.set(why, 1);
        return Some((day, c));
    }
    c.set(C::Assessed, 1);
    let dispatched = f.dispatched_at.is_some() || f.clock_started_at.is_some();
    c.flag(C::Dispatched, dispatched);
    c.flag(C::SignedOnTime, by(f.signed_at, f.sign_due));
    c.flag(C::Responded, f.responded_at.is_some());
    c.flag(C::RespondedOnTime, by(f.responded_at, f.respond_due));
    let resolved = f.resolved_at.is_some();
    c.flag(C::Resolved, resolved);
    c.flag(C::ResolvedOnTime, by(f.resolved_at, f.resolve_due));
    c.flag(
        C::ResolvedSameDay,
        f.resolved_at.is_some_and(|r| china_day(r) == day),
    );
    c.flag(C::Closed, f.status == "closed" && f.closed_at.is_some());
    c.flag(C::Returned, f.returns > 0);
    c.flag(C::Reopened, f.reopens > 0);
    match &f.verdict {
        Some((resolved_said, satisfaction)) => {
            c.set(C::CallbacksValid, 1);
            c.flag(C::CallbackResolved, *resolved_said);
            match satisfaction.as_str() {
                "satisfied" => c.set(C::Satisfied, 1),
                "basic" => c.set(C::Basic, 1),
                _ => c.set(C::Unsatisfied, 1),
            }
        }
        None => c.flag(C::Unreachable, f.unreachable),
    }
    if resolved {
        c.set(
            C::ResolveWorkMinutes,
            i64::from(f.resolve_work_minutes.max(0)),
        );
    }
    Some((day, c))
}

/// Row key of `rollup_day` below the tenant.
pub type RollupKey = (&'static str, NaiveDate, String);

/// The month rows of a dimension: the same counts summed per calendar
/// month (under the month's first day), kept beside the day rows so that a
/// month is read as one row per key, not thirty.
pub fn monthly(dim: &str) -> Option<&'static str> {
    Some(match dim {
        "tenant" => "tenant@m",
        "unit" => "unit@m",
        "district" => "district@m",
        "street" => "street@m",
        "community" => "community@m",
        "category1" => "category1@m",
        "category2" => "category2@m",
        "category" => "category@m",
        "channel" => "channel@m",
        _ => return None,
    })
}

pub fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// `rows` with their month rows added (zero rows dropped).
pub fn with_months(rows: BTreeMap<RollupKey, Counts>) -> BTreeMap<RollupKey, Counts> {
    let mut out = rows.clone();
    for ((dim, day, key), c) in rows {
        if let Some(m) = monthly(dim) {
            out.entry((m, month_start(day), key)).or_default().add(&c);
        }
    }
    out.retain(|_, c| !c.is_zero());
    out
}

/// What moving a ticket from `before` to `after` changes in the rollups:
/// the old contribution taken out, the new one put in, zero rows dropped.
pub fn delta(before: Option<&Facts>, after: &Facts) -> BTreeMap<RollupKey, Counts> {
    let mut out: BTreeMap<RollupKey, Counts> = BTreeMap::new();
    if let Some(b) = before
        && let Some((day, counts)) = contribution(b)
    {
        for (dim, key) in keys(b) {
            out.entry((dim, day, key)).or_default().sub(&counts);
        }
    }
    if let Some((day, counts)) = contribution(after) {
        for (dim, key) in keys(after) {
            out.entry((dim, day, key)).or_default().add(&counts);
        }
    }
    out.retain(|_, c| !c.is_zero());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32) -> Option<DateTime<Utc>> {
        // China time d-th of November 2026 at h o'clock.
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0)
            .single()
            .map(|t| t - chrono::TimeDelta::hours(8))
    }

    fn base() -> Facts {
        Facts {
            tenant: "370202000000".into(),
            received_at: at(3, 9),
            channel: "hotline".into(),
            category: "CG02".into(),
            category_path: vec!["CG".into(), "CG02".into()],
            region_code: "370202001002".into(),
            unit_id: "u1".into(),
            ..Facts::default()
        }
    }

    #[test]
    fn region_levels_name_district_street_and_community() {
        assert_eq!(
            region_levels("370202001002"),
            [
                Some("370202000000".into()),
                Some("370202001000".into()),
                Some("370202001002".into())
            ]
        );
        assert_eq!(
            region_levels("370202000000"),
            [Some("370202000000".into()), None, None]
        );
        assert_eq!(region_levels("37"), [None, None, None]);
    }

    #[test]
    fn a_resolved_satisfied_ticket_counts_on_its_received_day() {
        let mut f = base();
        f.status = "closed".into();
        f.clock_started_at = at(3, 9);
        f.sign_due = at(3, 11);
        f.signed_at = at(3, 10);
        f.respond_due = at(4, 9);
        f.responded_at = at(5, 9);
        f.resolve_due = at(10, 9);
        f.resolved_at = at(3, 16);
        f.closed_at = at(3, 17);
        f.resolve_work_minutes = 420;
        f.verdict = Some((true, "basic".into()));
        let (day, c) = contribution(&f).unwrap_or_default();
        assert_eq!(day.to_string(), "2026-11-03");
        assert_eq!(c.get(C::Assessed), 1);
        assert_eq!(c.get(C::SignedOnTime), 1);
        assert_eq!(c.get(C::Responded), 1);
        assert_eq!(c.get(C::RespondedOnTime), 0, "responded after its due time");
        assert_eq!(c.get(C::ResolvedOnTime), 1);
        assert_eq!(c.get(C::ResolvedSameDay), 1);
        assert_eq!(c.get(C::Closed), 1);
        assert_eq!(c.get(C::Basic), 1);
        assert_eq!(c.get(C::CallbackResolved), 1);
        assert_eq!(c.get(C::ResolveWorkMinutes), 420);
    }

    #[test]
    fn an_excluded_ticket_counts_only_as_received_and_excluded() {
        let mut f = base();
        f.excluded = true;
        f.merged = true;
        f.resolved_at = at(3, 10);
        let (_, c) = contribution(&f).unwrap_or_default();
        let mut want = Counts::default();
        want.set(C::Received, 1);
        want.set(C::Excluded, 1);
        assert_eq!(c, want);
    }

    #[test]
    fn nothing_is_counted_before_the_ticket_is_received() {
        let mut f = base();
        f.received_at = None;
        f.resolved_at = at(3, 10);
        assert!(contribution(&f).is_none());
        assert!(delta(None, &f).is_empty());
    }

    #[test]
    fn a_change_moves_counts_between_keys_exactly() {
        let before = base();
        let mut after = base();
        after.unit_id = "u2".into();
        after.resolved_at = at(4, 10);
        let d = delta(Some(&before), &after);
        let day = contribution(&before).map(|x| x.0).unwrap_or_default();
        let u1 = &d[&("unit", day, "u1".to_owned())];
        let u2 = &d[&("unit", day, "u2".to_owned())];
        assert_eq!(u1.get(C::Received), -1);
        assert_eq!(u2.get(C::Received), 1);
        assert_eq!(u2.get(C::Resolved), 1);
        // The tenant row keeps its ticket and gains the resolution only.
        let t = &d[&("tenant", day, "370202000000".to_owned())];
        assert_eq!(t.get(C::Received), 0);
        assert_eq!(t.get(C::Resolved), 1);
        // Applying the same facts again changes nothing.
        assert!(delta(Some(&after), &after).is_empty());
        // The month rows move with the days.
        let m = with_months(d);
        let month = month_start(day);
        assert_eq!(m[&("unit@m", month, "u2".to_owned())].get(C::Received), 1);
        assert_eq!(m[&("unit@m", month, "u1".to_owned())].get(C::Received), -1);
        let t = &m[&("tenant@m", month, "370202000000".to_owned())];
        assert_eq!((t.get(C::Received), t.get(C::Resolved)), (0, 1));
    }
}
