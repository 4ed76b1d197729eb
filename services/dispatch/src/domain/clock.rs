//! The clocks of one work order: its three deadlines (sign for, first
//! response, resolve), when each was met, pauses, and the notices (三单) to
//! plan from them. Pure: the store saves [`Clocks`] on the work order and
//! turns [`plan`] into durable timers.

use chrono::{DateTime, Duration, Utc};

use super::{
    calendar::Calendar,
    sla::{Deadlines, Limit},
    workflow::ClockOp,
};

/// The deadlines of a work order and when they were met.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clocks {
    pub started_at: Option<DateTime<Utc>>,
    pub sign_due: Option<DateTime<Utc>>,
    pub respond_due: Option<DateTime<Utc>>,
    pub resolve_due: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
    pub responded_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
}

/// What the clocks need from the tenant's settings.
pub struct Env<'a> {
    pub cal: &'a Calendar,
    /// Deadlines for clocks started now (from the SLA policy).
    pub fresh: Deadlines,
    pub restart_on_redispatch: bool,
}

/// The deadlines a notice can be about.
pub const SIGN: &str = "sign";
pub const RESPOND: &str = "respond";
pub const RESOLVE: &str = "resolve";
pub const REPORT: &str = "report";

/// Notices: reminder (提醒) before, urge (催办) at, supervise (督办) after.
pub const REMINDER: &str = "reminder";
pub const URGE: &str = "urge";
pub const SUPERVISE: &str = "supervise";
pub const REPORT_OVERDUE: &str = "report_overdue";

impl Clocks {
    fn start(&mut self, now: DateTime<Utc>, d: &Deadlines) {
        *self = Clocks {
            started_at: Some(now),
            sign_due: Some(d.sign_for),
            respond_due: Some(d.first_response),
            resolve_due: Some(d.resolve),
            ..Clocks::default()
        };
    }

    fn resume(&mut self, now: DateTime<Utc>, cal: &Calendar) {
        let Some(paused) = self.paused_at.take() else {
            return;
        };
        // What was left of each running clock at the pause is left again
        // from now; a deadline already passed when paused stays passed.
        let shift = |due: &mut Option<DateTime<Utc>>, met: Option<DateTime<Utc>>| {
            if let (Some(d), None) = (*due, met)
                && d > paused
            {
                *due = Some(cal.add(now, cal.between(paused, d)));
            }
        };
        shift(&mut self.sign_due, self.signed_at);
        shift(&mut self.respond_due, self.responded_at);
        shift(&mut self.resolve_due, self.resolved_at);
    }

    /// Applies one clock operation at `now`.
    pub fn apply(&mut self, op: &ClockOp, now: DateTime<Utc>, env: &Env<'_>) {
        match op {
            ClockOp::Start => self.start(now, &env.fresh),
            ClockOp::Redispatch => {
                self.resume(now, env.cal);
                if env.restart_on_redispatch || self.started_at.is_none() {
                    self.start(now, &env.fresh);
                } else {
                    // The new unit signs for it afresh; the other clocks run on.
                    self.sign_due = Some(env.fresh.sign_for);
                    self.signed_at = None;
                }
            }
            ClockOp::MetSign => {
                self.signed_at.get_or_insert(now);
            }
            ClockOp::MetRespond => {
                self.responded_at.get_or_insert(now);
            }
            ClockOp::MetResolve => {
                self.resolved_at.get_or_insert(now);
            }
            ClockOp::Unresolve => self.resolved_at = None,
            ClockOp::Pause => {
                self.paused_at.get_or_insert(now);
            }
            ClockOp::Resume => self.resume(now, env.cal),
            ClockOp::Extend(days) => {
                self.resolve_due = self.resolve_due.map(|d| env.cal.add_days(d, *days));
            }
            ClockOp::Stop | ClockOp::Reschedule | ClockOp::Lift { .. } => {}
        }
    }

    /// The deadlines not met yet, by name.
    pub fn running(&self) -> Vec<(&'static str, DateTime<Utc>)> {
        [
            (SIGN, self.sign_due, self.signed_at),
            (RESPOND, self.respond_due, self.responded_at),
            (RESOLVE, self.resolve_due, self.resolved_at),
        ]
        .into_iter()
        .filter_map(|(name, due, met)| match (due, met) {
            (Some(d), None) => Some((name, d)),
            _ => None,
        })
        .collect()
    }
}

/// A notice to fire at `due_at` about the deadline `deadline_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub notice: &'static str,
    pub deadline: &'static str,
    pub deadline_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
}

/// The notices of the running clocks: a reminder when `reminder_at` of the
/// working time is used, an urge at the deadline, a supervise order
/// `supervise_after` past it. Nothing while paused.
pub fn plan(c: &Clocks, cal: &Calendar, reminder_at: f64, supervise_after: Limit) -> Vec<Planned> {
    let (Some(start), None) = (c.started_at, c.paused_at) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (deadline, due) in c.running() {
        let span = cal.between(start, due);
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let used = Duration::milliseconds((span.num_milliseconds() as f64 * reminder_at) as i64);
        let at = |notice, due_at| Planned {
            notice,
            deadline,
            deadline_at: due,
            due_at,
        };
        if used > Duration::zero() {
            out.push(at(REMINDER, cal.add(start, used)));
        }
        out.push(at(URGE, due));
        out.push(at(SUPERVISE, supervise_after.deadline(cal, due)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::tests::cn;

    fn env(cal: &Calendar, now: DateTime<Utc>) -> Env<'_> {
        let d = |h| cal.add(now, Duration::hours(h));
        Env {
            cal,
            fresh: Deadlines {
                sign_for: d(2),
                first_response: d(7),
                resolve: d(35),
            },
            restart_on_redispatch: false,
        }
    }

    #[test]
    fn a_pause_moves_the_running_deadlines_by_the_working_time_paused() {
        let cal = Calendar::national();
        // Monday 2026-03-02 09:00 China time.
        let t0 = cn(2026, 3, 2, 9, 0);
        let mut c = Clocks::default();
        c.apply(&ClockOp::Start, t0, &env(&cal, t0));
        assert_eq!(c.sign_due, Some(cn(2026, 3, 2, 11, 0)));
        c.apply(&ClockOp::MetSign, cn(2026, 3, 2, 10, 0), &env(&cal, t0));
        // Paused at 10:00 Monday, resumed at 10:00 Tuesday: one working day.
        c.apply(&ClockOp::Pause, cn(2026, 3, 2, 10, 0), &env(&cal, t0));
        assert!(
            plan(&c, &cal, 0.8, Limit::Days(1)).is_empty(),
            "no notices while paused"
        );
        let t1 = cn(2026, 3, 3, 10, 0);
        c.apply(&ClockOp::Resume, t1, &env(&cal, t1));
        // Signed: that deadline stays where it was.
        assert_eq!(c.sign_due, Some(cn(2026, 3, 2, 11, 0)));
        // First response was due Monday 17:00; 6 h were left at the pause.
        assert_eq!(c.respond_due, Some(cn(2026, 3, 3, 17, 0)));
        // Resolve was due Friday 17:00 (5 working days), now a day later.
        assert_eq!(c.resolve_due, Some(cn(2026, 3, 9, 17, 0)));
    }

    #[test]
    fn redispatch_keeps_or_restarts_as_the_policy_says() {
        let cal = Calendar::national();
        let t0 = cn(2026, 3, 2, 9, 0);
        let t1 = cn(2026, 3, 3, 9, 0);
        let mut keep = Clocks::default();
        keep.apply(&ClockOp::Start, t0, &env(&cal, t0));
        keep.apply(&ClockOp::MetSign, t0, &env(&cal, t0));
        let mut restart = keep.clone();
        keep.apply(&ClockOp::Redispatch, t1, &env(&cal, t1));
        assert_eq!(keep.signed_at, None, "the new unit signs again");
        assert_eq!(keep.sign_due, Some(cn(2026, 3, 3, 11, 0)));
        assert_eq!(keep.resolve_due, Some(cn(2026, 3, 6, 17, 0)));
        let mut e = env(&cal, t1);
        e.restart_on_redispatch = true;
        restart.apply(&ClockOp::Redispatch, t1, &e);
        assert_eq!(restart.resolve_due, Some(cn(2026, 3, 9, 17, 0)));
    }

    #[test]
    fn notices_come_before_at_and_after_each_running_deadline() {
        let cal = Calendar::national();
        let t0 = cn(2026, 3, 2, 9, 0);
        let mut c = Clocks::default();
        c.apply(&ClockOp::Start, t0, &env(&cal, t0));
        c.apply(&ClockOp::MetSign, t0, &env(&cal, t0));
        c.apply(&ClockOp::Extend(2), t0, &env(&cal, t0));
        let p = plan(&c, &cal, 0.8, Limit::Days(1));
        let resolve: Vec<_> = p.iter().filter(|x| x.deadline == RESOLVE).collect();
        // 35 working hours + 2 days = 49 h; 80 % = 39.2 h = 5 days 4.2 h.
        assert_eq!(resolve[0].notice, REMINDER);
        assert_eq!(resolve[0].due_at, cn(2026, 3, 9, 14, 12));
        assert_eq!(resolve[1].due_at, cn(2026, 3, 10, 17, 0));
        assert_eq!(resolve[2].due_at, cn(2026, 3, 11, 17, 0));
        assert!(
            p.iter().all(|x| x.deadline != SIGN),
            "signed: no sign notices"
        );
        assert_eq!(p.len(), 6);
    }
}
