//! A channel's own rate limit: at most `per_minute` messages in any
//! 60-second window per key (a WeCom robot, a provider account). A message
//! over the limit is deferred, not failed and not counted as an attempt.
//! The count is per process: with several replicas, give each its share.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

const WINDOW: Duration = Duration::from_secs(60);

pub struct PerMinute {
    limit: usize,
    sent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl PerMinute {
    /// `limit` 0: unlimited.
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit as usize,
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// Messages a minute per key; 0: unlimited.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `n` places for `key` now, or says how long until they free.
    pub fn take(&self, key: &str, n: usize) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let times = sent.entry(key.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        let n = n.min(self.limit);
        if times.len() + n > self.limit {
            // The place that frees first for the n-th message.
            let idx = times.len() + n - self.limit - 1;
            let wait = times
                .get(idx)
                .map_or(WINDOW, |t| WINDOW.saturating_sub(now.duration_since(*t)));
            return Err(wait.max(Duration::from_millis(50)));
        }
        times.extend(std::iter::repeat_n(now, n));
        Ok(())
    }

    /// Gives back places taken for a send that did not happen.
    pub fn give_back(&self, key: &str, n: usize) {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(times) = sent.get_mut(key) {
            for _ in 0..n.min(times.len()) {
                times.pop_back();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_a_minute_then_a_wait() {
        let l = PerMinute::new(20);
        for _ in 0..20 {
            assert!(l.take("robot-a", 1).is_ok());
        }
        let wait = l.take("robot-a", 1).unwrap_err();
        assert!(wait > Duration::from_secs(59) && wait <= WINDOW, "{wait:?}");
        // Another robot has its own window.
        assert!(l.take("robot-b", 3).is_ok());
        l.give_back("robot-a", 2);
        assert!(l.take("robot-a", 2).is_ok());
        assert!(l.take("robot-a", 1).is_err());
    }

    #[test]
    fn zero_is_unlimited() {
        let l = PerMinute::new(0);
        for _ in 0..1000 {
            assert!(l.take("x", 1).is_ok());
        }
    }
}
