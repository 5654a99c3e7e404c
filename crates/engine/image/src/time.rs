//! Timestamps as images and the Docker API write them (RFC 3339, UTC, nanoseconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// `2024-05-01T12:00:00.123456789Z` from nanoseconds since the epoch.
pub fn rfc3339(nanos: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64);
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Seconds since the epoch of an RFC 3339 time as found in image configs; `None` if unreadable.
pub fn parse_rfc3339_secs(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z').split('+').next().unwrap_or(s))
        .or_else(|_| humantime::parse_rfc3339(s))
        .ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_config_times() {
        assert_eq!(parse_rfc3339_secs("2024-01-02T03:04:05Z"), Some(1704164645));
        assert_eq!(
            parse_rfc3339_secs("2024-01-02T03:04:05.123456789Z"),
            Some(1704164645)
        );
        assert_eq!(parse_rfc3339_secs("garbage"), None);
        assert!(rfc3339(1_704_164_645_000_000_000).starts_with("2024-01-02T03:04:05"));
    }
}
