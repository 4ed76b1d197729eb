//! Rate limits at the public door: per client IP on the endpoints anyone can
//! call (Open311, webhooks, tracking look-ups) and per channel on the create
//! endpoints of registered channels.
//!
//! A keyed GCRA (generic cell rate algorithm): each key has a "theoretical
//! arrival time"; a request is allowed when that time is no more than
//! `burst` emission intervals ahead of now. State is one `Instant` per key,
//! in memory, per gateway replica (a replica count of N allows N times the
//! configured rate; docs/decisions/0013 says why that is acceptable).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, request::Parts},
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per minute per client IP on public endpoints; 0 disables.
    pub per_ip_per_minute: u32,
    /// Requests per minute per registered channel on its create endpoints;
    /// 0 disables.
    pub per_channel_per_minute: u32,
    /// Tracking look-ups (tracking number + phone digits) per minute per IP:
    /// low, so the four digits cannot be guessed.
    pub lookup_per_minute: u32,
    /// How many requests may arrive at once before the rate applies.
    pub burst: u32,
    /// Take the client IP from the last `X-Forwarded-For` entry (set this
    /// only behind an ingress that appends it).
    pub trust_forwarded_for: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 600,
            per_channel_per_minute: 1200,
            lookup_per_minute: 10,
            burst: 20,
            trust_forwarded_for: false,
        }
    }
}

/// Keys beyond this many trigger a sweep of the idle ones.
const SWEEP_AT: usize = 50_000;

pub struct Limiter {
    /// Emission interval: one request per `interval` on average.
    interval: Duration,
    /// How far ahead of now the arrival time may run.
    tolerance: Duration,
    state: Mutex<HashMap<String, Instant>>,
}

impl Limiter {
    /// `None` when `per_minute` is 0 (no limit).
    pub fn per_minute(per_minute: u32, burst: u32) -> Option<Self> {
        (per_minute > 0).then(|| {
            let interval = Duration::from_secs(60) / per_minute;
            Self {
                interval,
                tolerance: interval * burst.max(1),
                state: Mutex::new(HashMap::new()),
            }
        })
    }

    /// `Ok` to serve, or how long to wait.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.len() >= SWEEP_AT {
            state.retain(|_, tat| *tat > now);
        }
        let tat = state.get(key).copied().unwrap_or(now).max(now);
        let next = tat + self.interval;
        if let Some(allowed_from) = next.checked_sub(self.tolerance)
            && allowed_from > now
        {
            return Err(allowed_from - now);
        }
        state.insert(key.to_owned(), next);
        Ok(())
    }
}

/// The TCP peer of the request, when the server recorded it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// Whole seconds for `Retry-After`, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The client's address: the socket peer, or the last `X-Forwarded-For`
/// entry when the gateway runs behind a trusted ingress.
pub fn client_ip(headers: &HeaderMap, peer: Peer, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for
        && let Some(ip) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back()
    {
        return Some(ip);
    }
    peer.0.map(|a| a.ip())
}

/// The gateway's limiters.
pub struct Limits {
    ip: Option<Limiter>,
    channel: Option<Limiter>,
    lookup: Option<Limiter>,
    trust_forwarded_for: bool,
}

impl Limits {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        Self {
            ip: Limiter::per_minute(cfg.per_ip_per_minute, cfg.burst),
            channel: Limiter::per_minute(cfg.per_channel_per_minute, cfg.burst),
            lookup: Limiter::per_minute(cfg.lookup_per_minute, cfg.burst.min(5)),
            trust_forwarded_for: cfg.trust_forwarded_for,
        }
    }

    fn check(limiter: &Option<Limiter>, key: &str) -> Result<(), crate::error::ApiError> {
        match limiter {
            Some(l) => l.check(key).map_err(|wait| {
                metrics::counter!("jiesu_http_rate_limited_total").increment(1);
                crate::error::ApiError::rate_limited(retry_after_secs(wait))
            }),
            None => Ok(()),
        }
    }

    fn ip_key(&self, headers: &HeaderMap, peer: Peer) -> String {
        client_ip(headers, peer, self.trust_forwarded_for)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    /// Per client IP (public endpoints).
    pub fn check_ip(&self, headers: &HeaderMap, peer: Peer) -> Result<(), crate::error::ApiError> {
        Self::check(&self.ip, &self.ip_key(headers, peer))
    }

    /// Per registered channel (its create endpoints).
    pub fn check_channel(&self, key: &str) -> Result<(), crate::error::ApiError> {
        Self::check(&self.channel, key)
    }

    /// Per client IP for tracking look-ups.
    pub fn check_lookup(
        &self,
        headers: &HeaderMap,
        peer: Peer,
    ) -> Result<(), crate::error::ApiError> {
        Self::check(&self.lookup, &self.ip_key(headers, peer))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn burst_then_rate() {
        let l = Limiter::per_minute(60, 3).unwrap();
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
        }
        let wait = l.check("a").unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        assert!(l.check("b").is_ok(), "keys are independent");
        assert_eq!(retry_after_secs(wait), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert!(Limiter::per_minute(0, 3).is_none());
    }
}
