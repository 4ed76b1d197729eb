use std::time::Duration;

use jiesu_runtime::ConfigError;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// NATS server URL(s), comma separated; credentials may be in the URL.
    pub url: String,
    /// NATS auth token, if the server wants one.
    pub token: String,
    /// First subject token: `jiesu` gives `jiesu.intake.370202.ticket.received`.
    pub subject_root: String,
    /// Prefix of stream names: empty gives `INTAKE`, `DISPATCH`...
    pub stream_prefix: String,
    /// JetStream replicas per stream (3 in a cluster).
    pub replicas: usize,
    /// How long a stream keeps events; consumers must catch up within it.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// JetStream de-duplication window for `Nats-Msg-Id`.
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// How long a target waits for NATS at start-up before giving up.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Outbox rows published per relay round.
    pub relay_batch: u32,
    /// Relay poll interval when nobody wakes it.
    #[serde(with = "humantime_serde")]
    pub relay_poll: Duration,
    /// Published outbox rows are deleted after this long.
    #[serde(with = "humantime_serde")]
    pub outbox_retention: Duration,
    /// Inbox rows (handled event ids) are kept this long; keep it longer than
    /// `max_age` so a replayed stream cannot apply an event twice.
    #[serde(with = "humantime_serde")]
    pub inbox_retention: Duration,
    /// Deliveries of one event before it goes to the dead-letter stream.
    pub max_deliver: i64,
    /// Redelivery delays; the last one repeats.
    #[serde(deserialize_with = "durations")]
    pub backoff: Vec<Duration>,
    /// A handler must finish within this; otherwise JetStream redelivers.
    /// It is also how long the events a crashed process held wait before
    /// another process gets them.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    /// Events handled concurrently per consumer.
    pub consumer_concurrency: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            token: String::new(),
            subject_root: "jiesu".into(),
            stream_prefix: String::new(),
            replicas: 1,
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(30),
            relay_batch: 256,
            relay_poll: Duration::from_millis(500),
            outbox_retention: Duration::from_secs(3 * 24 * 3600),
            inbox_retention: Duration::from_secs(30 * 24 * 3600),
            max_deliver: 8,
            backoff: vec![
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(10),
                Duration::from_secs(30),
                Duration::from_secs(120),
            ],
            ack_wait: Duration::from_secs(10),
            consumer_concurrency: 16,
        }
    }
}

fn durations<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let items: Vec<humantime_serde::Serde<Duration>> = Deserialize::deserialize(d)?;
    Ok(items.into_iter().map(|s| s.into_inner()).collect())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl BusConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.url.is_empty() {
            return Err(ConfigError::invalid("bus.url", "must not be empty"));
        }
        if !is_token(&self.subject_root) {
            return Err(ConfigError::invalid(
                "bus.subject_root",
                "must be one subject token (letters, digits, _ or -)",
            ));
        }
        if !self.stream_prefix.is_empty() && !is_token(&self.stream_prefix) {
            return Err(ConfigError::invalid(
                "bus.stream_prefix",
                "letters, digits, _ or - only",
            ));
        }
        if self.max_deliver < 1 {
            return Err(ConfigError::invalid(
                "bus.max_deliver",
                "must be at least 1",
            ));
        }
        if self.backoff.is_empty() {
            return Err(ConfigError::invalid(
                "bus.backoff",
                "needs at least one delay",
            ));
        }
        if self.relay_batch == 0 {
            return Err(ConfigError::invalid(
                "bus.relay_batch",
                "must be at least 1",
            ));
        }
        if self.consumer_concurrency == 0 {
            return Err(ConfigError::invalid(
                "bus.consumer_concurrency",
                "must be at least 1",
            ));
        }
        if self.inbox_retention < self.max_age {
            return Err(ConfigError::invalid(
                "bus.inbox_retention",
                "must be at least bus.max_age, or a replay could apply an event twice",
            ));
        }
        if self.inbox_retention < self.outbox_retention {
            return Err(ConfigError::invalid(
                "bus.inbox_retention",
                "must be at least bus.outbox_retention, or replaying a lost stream could apply an event twice",
            ));
        }
        Ok(())
    }

    /// Delay before redelivery number `delivered + 1`.
    pub fn backoff_for(&self, delivered: i64) -> Duration {
        let i = usize::try_from(delivered.max(1) - 1).unwrap_or(0);
        self.backoff
            .get(i)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}
