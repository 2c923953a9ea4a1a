//! The wall clock, read in one place. The core never reads it: times are
//! passed in (`plan(…, now)`), so it stays pure and testable.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    // A clock set before 1970 reads as the epoch rather than failing a run.
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    since_epoch().as_secs() as i64
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    since_epoch().as_millis() as i64
}

/// Unix milliseconds as RFC 3339 (UTC), for people.
pub fn timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}
