//! Where a duration (often one the server chose) meets a clock: every such sum goes through
//! here, so that no value the server sends can overflow an [`Instant`] and panic.
//!
//! Nothing in the spec bounds `heartbeat_interval_seconds`, `retry_info` or `Retry-After`, so
//! the client bounds them itself: a server-supplied interval or delay longer than
//! [`MAX_SERVER_INTERVAL`] is taken as [`MAX_SERVER_INTERVAL`] (and persisted as such).

use std::time::{Duration, Instant};

/// The longest heartbeat interval, polling interval or retry delay the client accepts from
/// a server (or from its own settings): one day. Longer values are clamped to it.
pub const MAX_SERVER_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// Clamps a server-supplied interval or delay to [`MAX_SERVER_INTERVAL`].
pub(crate) fn clamp_interval(interval: Duration) -> Duration {
    interval.min(MAX_SERVER_INTERVAL)
}

/// `heartbeat_interval_seconds` as a duration, clamped to [`MAX_SERVER_INTERVAL`].
pub(crate) fn interval_from_secs(seconds: u64) -> Duration {
    clamp_interval(Duration::from_secs(
        seconds.min(MAX_SERVER_INTERVAL.as_secs()),
    ))
}

/// `at + delay`, never panicking: the delay is clamped to [`MAX_SERVER_INTERVAL`], and a sum
/// that still does not fit in an [`Instant`] gives `at` plus the largest delay that fits.
pub(crate) fn deadline(at: Instant, delay: Duration) -> Instant {
    let delay = clamp_interval(delay);
    at.checked_add(delay)
        .or_else(|| at.checked_add(Duration::from_secs(1)))
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_values_are_clamped_and_never_overflow() {
        let now = Instant::now();
        assert_eq!(interval_from_secs(u64::MAX), MAX_SERVER_INTERVAL);
        assert_eq!(interval_from_secs(30), Duration::from_secs(30));
        assert_eq!(deadline(now, Duration::MAX), now + MAX_SERVER_INTERVAL);
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }
}
