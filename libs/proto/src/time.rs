//! Conversions between `chrono` times and protobuf `Timestamp`s.

use chrono::{DateTime, Utc};
pub use prost_types::Timestamp;

pub fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

/// `None` for a timestamp outside chrono's range.
pub fn from_timestamp(ts: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_nanoseconds() {
        let at = DateTime::from_timestamp(1_795_000_000, 123_456_789).unwrap();
        assert_eq!(from_timestamp(&to_timestamp(at)), Some(at));
    }
}
