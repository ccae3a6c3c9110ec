//! How long to wait before reconnecting when the server is overloaded.
//!
//! Spec §"Throttling": over plain HTTP (and when a WebSocket upgrade is refused) an overloaded
//! server MAY answer 503 or 429 with a `Retry-After` header, which is either a number of
//! seconds or an HTTP-date (RFC 9110 §10.2.3); over WebSocket it sends
//! `ServerErrorResponse{type: UNAVAILABLE, retry_info: RetryInfo{retry_after_nanoseconds}}`.
//! This module converts both forms to a [`Duration`]. It reads no clock: the caller passes
//! `now`. The spec's recommended minimum retry interval (30 s) is a policy for the caller to
//! apply; see [`MIN_RECOMMENDED_RETRY_INTERVAL`].
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use opamp_transport::codec::retry_after::{format_retry_after, parse_retry_after};
//!
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
//! assert_eq!(
//!     parse_retry_after("Tue, 14 Nov 2023 22:13:27 GMT", now),
//!     Some(Duration::from_secs(7))
//! );
//! assert_eq!(format_retry_after(Duration::from_millis(1500)), "2");
//! ```

use std::time::{Duration, SystemTime};

/// The minimum retry interval the spec recommends (§"Throttling"): 30 seconds.
pub const MIN_RECOMMENDED_RETRY_INTERVAL: Duration = Duration::from_secs(30);

/// Parses a `Retry-After` header value into the time to wait from `now`.
///
/// Accepts delta-seconds (ASCII digits; values too large for `u64` saturate to `u64::MAX`
/// seconds, so callers should cap the result) and the three HTTP-date formats
/// (IMF-fixdate, RFC 850, asctime). A date at or before `now` gives [`Duration::ZERO`].
/// Surrounding spaces are ignored; anything else gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Formats a wait as `Retry-After` delta-seconds, rounding a fraction of a second up so the
/// client never retries early.
pub fn format_retry_after(wait: Duration) -> String {
    let secs = wait.as_secs();
    let secs = if wait.subsec_nanos() > 0 {
        secs.saturating_add(1)
    } else {
        secs
    };
    secs.to_string()
}

/// Converts `RetryInfo.retry_after_nanoseconds` to a [`Duration`].
pub fn retry_after_from_nanos(retry_after_nanoseconds: u64) -> Duration {
    Duration::from_nanos(retry_after_nanoseconds)
}

/// Converts a wait to `RetryInfo.retry_after_nanoseconds`, saturating at `u64::MAX`
/// (about 584 years).
pub fn retry_after_to_nanos(wait: Duration) -> u64 {
    u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn delta_seconds() {
        let now = at(1_000);
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(" 30 ", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", " ", "-1", "+5", "1.5", "5s", "0x10", "１２"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn http_dates() {
        // 1994-11-06 08:49:37 UTC, RFC 9110's example, in its three formats.
        let date = at(784_111_777);
        let now = date - Duration::from_secs(100);
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(text, now),
                Some(Duration::from_secs(100)),
                "{text:?}"
            );
            assert_eq!(parse_retry_after(text, date), Some(Duration::ZERO));
            assert_eq!(
                parse_retry_after(text, date + Duration::from_secs(5)),
                Some(Duration::ZERO)
            );
        }
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 25:49:37 GMT", now),
            None
        );
        assert_eq!(parse_retry_after("yesterday", now), None);
    }

    #[test]
    fn formatting_rounds_up() {
        assert_eq!(format_retry_after(Duration::ZERO), "0");
        assert_eq!(format_retry_after(Duration::from_secs(30)), "30");
        assert_eq!(format_retry_after(Duration::from_nanos(1)), "1");
        assert_eq!(format_retry_after(Duration::from_millis(30_001)), "31");
        assert_eq!(format_retry_after(Duration::MAX), u64::MAX.to_string());
    }

    #[test]
    fn nanos() {
        assert_eq!(
            retry_after_from_nanos(1_500_000_000),
            Duration::from_millis(1500)
        );
        assert_eq!(
            retry_after_to_nanos(Duration::from_millis(1500)),
            1_500_000_000
        );
        assert_eq!(retry_after_to_nanos(Duration::MAX), u64::MAX);
    }
}
