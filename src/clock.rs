//! The wall clock, read in one place. The core never reads it: times are
//! passed in (`plan(…, now)`), so it stays pure and testable.
//!
//! `DIRSYNC_CLOCK_OFFSET` (seconds, may be negative, or with a `d` suffix
//! for days: `2d`) moves this clock, for tests of what falls due on a later
//! day (`[lifecycle]`): the daemon started with `DIRSYNC_CLOCK_OFFSET=2d`
//! lives two days ahead. Not for production.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The variable that moves the clock.
pub const OFFSET_VAR: &str = "DIRSYNC_CLOCK_OFFSET";

/// `DIRSYNC_CLOCK_OFFSET` in milliseconds, read once (0 unset; an unreadable
/// value is ignored with a warning).
fn offset_ms() -> i64 {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        let Ok(text) = std::env::var(OFFSET_VAR) else { return 0 };
        match parse_offset(&text) {
            Some(ms) => {
                tracing::warn!(offset = %text, "{OFFSET_VAR} moves dirsync's clock; for tests only.");
                ms
            }
            None => {
                tracing::warn!(offset = %text, "{OFFSET_VAR} is not seconds or days (\"86400\", \"-2d\"); ignored.");
                0
            }
        }
    })
}

/// "86400" → 86 400 000 ms; "2d" → two days; "-1d" → a day back.
fn parse_offset(text: &str) -> Option<i64> {
    let t = text.trim();
    let (n, unit) = match t.strip_suffix('d') {
        Some(days) => (days, 86_400_000),
        None => (t.strip_suffix('s').unwrap_or(t), 1000),
    };
    n.parse::<i64>().ok()?.checked_mul(unit)
}

fn since_epoch_ms() -> i64 {
    // A clock set before 1970 reads as the epoch rather than failing a run.
    let real = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (real.as_millis() as i64).saturating_add(offset_ms())
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    since_epoch_ms().div_euclid(1000)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    since_epoch_ms()
}

/// Unix milliseconds as RFC 3339 (UTC), for people.
pub fn timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn offsets_read_as_seconds_or_days() {
        assert_eq!(super::parse_offset("86400"), Some(86_400_000));
        assert_eq!(super::parse_offset("2d"), Some(172_800_000));
        assert_eq!(super::parse_offset("-1d"), Some(-86_400_000));
        assert_eq!(super::parse_offset("soon"), None);
    }
}
