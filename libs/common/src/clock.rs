//! What time it is, as services see it. Production reads the system clock;
//! a test holds a [`ManualClock`] and moves the services' time on, so
//! "three working days later" needs no waiting and no writing into a
//! service's tables.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, TimeDelta, Utc};

/// The services' clock: the system's, unless a test moved it on.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system time (tests only).
    ahead_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        match &self.ahead_ms {
            Some(ms) => now + TimeDelta::milliseconds(ms.load(Ordering::Relaxed)),
            None => now,
        }
    }
}

/// A clock a test moves on; every [`Clock`] taken from it follows.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    ahead_ms: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// The clock to give services.
    pub fn clock(&self) -> Clock {
        Clock {
            ahead_ms: Some(self.ahead_ms.clone()),
        }
    }

    /// Moves time on by `by` (never back).
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.ahead_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Moves time on to just past `at` (nothing if it has passed).
    pub fn advance_to(&self, at: DateTime<Utc>) {
        let gap = (at - self.clock().now()).num_milliseconds() + 1;
        if gap > 0 {
            self.ahead_ms.fetch_add(gap, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_every_copy() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let before = clock.now();
        manual.advance(std::time::Duration::from_secs(3 * 86_400));
        let after = clock.now();
        assert!(after - before >= TimeDelta::days(3));
        let target = after + TimeDelta::hours(5);
        manual.advance_to(target);
        assert!(clock.now() > target);
        // The system clock is not moved by any of it.
        assert!(Clock::system().now() < target);
    }
}
