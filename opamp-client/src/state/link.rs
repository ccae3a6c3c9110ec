//! Connection state and retry scheduling: when the next connection attempt (WebSocket) or the
//! next request after a failure (plain HTTP) may happen.

use std::time::{Duration, Instant};

use super::backoff::BackoffPolicy;

/// How an attempt (a WebSocket connect, a WebSocket write, an HTTP request) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// A network, TLS or timeout error, an unexpected HTTP status or an undecodable answer.
    /// Retried at once if the connection had been stable before (see
    /// [`StateConfig::stable_connection_time`](super::StateConfig::stable_connection_time)),
    /// otherwise with backoff.
    Transient,
    /// The server is overloaded: HTTP 429 or 503, on a request or at the WebSocket upgrade
    /// (spec §"Throttling"). The client's driver treats a refusal of its credentials (HTTP
    /// 401 or 403) the same way: retrying sooner would only be refused again. The next attempt waits at least `retry_after` (or the minimum
    /// throttle delay when there is none) and at least the backoff delay.
    Throttled {
        /// The `Retry-After` delay the server sent.
        retry_after: Option<Duration>,
    },
    /// The message itself must not be retried: HTTP 400 or 413, or it is over the local size
    /// limit. Its content is dropped (spec §"Bad Request", §"Plain HTTP Message Size Limits").
    Rejected,
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// No connection. The next attempt may happen at `retry_at` (`None`: at once).
    Disconnected { retry_at: Option<Instant> },
    /// A WebSocket connection attempt is under way.
    Connecting,
    /// Connected (WebSocket), or the last HTTP request was answered.
    Connected,
}

/// Retry bookkeeping around a [`BackoffPolicy`].
///
/// A connection counts as working once a message other than an error came back, and as
/// *stable* once it has worked for `stable_after`. Only the failure of a stable connection is
/// retried at once and starts the backoff over (spec §"Restoring WebSocket Connection":
/// reconnect, and keep backing off while re-connection fails). A server that accepts,
/// answers once and closes (a duplicate-UID kick, a policy close, an oversized message) is
/// therefore reconnected to with growing delays, never in a tight loop.
#[derive(Debug)]
pub(crate) struct Retry {
    backoff: Box<dyn BackoffPolicy>,
    min_throttle: Duration,
    /// How long a connection must have worked before its failure resets the backoff.
    stable_after: Duration,
    /// Since when the current connection has worked (the first good answer), if it has.
    up_since: Option<Instant>,
}

impl Retry {
    pub(crate) fn new(
        backoff: Box<dyn BackoffPolicy>,
        min_throttle: Duration,
        stable_after: Duration,
    ) -> Self {
        Retry {
            backoff,
            min_throttle,
            stable_after,
            up_since: None,
        }
    }

    /// The connection works (a good answer came back at `now`).
    pub(crate) fn succeeded(&mut self, now: Instant) {
        if self.up_since.is_none() {
            self.up_since = Some(now);
        }
    }

    /// The last connection did not prove to work after all (the server sent something
    /// malformed or too large): the next failure backs off.
    pub(crate) fn distrust(&mut self) {
        self.up_since = None;
    }

    /// Whether the connection that ends at `now` had been working for long enough; the
    /// working mark is cleared either way.
    fn was_stable(&mut self, now: Instant) -> bool {
        self.up_since
            .take()
            .is_some_and(|since| now.saturating_duration_since(since) >= self.stable_after)
    }

    /// How long to wait after `failure` at `now`. The result is not clamped; callers add it
    /// to the clock through [`deadline`](super::deadline).
    pub(crate) fn delay_after(&mut self, failure: Failure, now: Instant) -> Duration {
        let stable = self.was_stable(now);
        if stable {
            self.backoff.reset();
        }
        match failure {
            Failure::Transient | Failure::Rejected => {
                if stable {
                    Duration::ZERO
                } else {
                    self.backoff.next_backoff()
                }
            }
            Failure::Throttled { retry_after } => {
                let asked = retry_after.unwrap_or(self.min_throttle);
                asked.max(self.backoff.next_backoff())
            }
        }
    }

    /// How long to wait after an `UNAVAILABLE` error response (spec §"Throttling", WebSocket
    /// transport): `retry_info` if given, and never less than the backoff delay.
    pub(crate) fn delay_after_unavailable(&mut self, retry_after: Option<Duration>) -> Duration {
        self.up_since = None;
        let backoff = self.backoff.next_backoff();
        retry_after.map_or(backoff, |asked| asked.max(backoff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::backoff::ConstantBackoff;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn at_once_after_a_stable_connection_then_backoff() {
        let now = Instant::now();
        let mut r = Retry::new(Box::new(ConstantBackoff(2 * SEC)), 30 * SEC, 10 * SEC);
        assert_eq!(r.delay_after(Failure::Transient, now), 2 * SEC);
        r.succeeded(now);
        assert_eq!(
            r.delay_after(Failure::Transient, now + 10 * SEC),
            Duration::ZERO
        );
        assert_eq!(r.delay_after(Failure::Transient, now + 10 * SEC), 2 * SEC);
    }

    #[test]
    fn a_connection_that_dies_young_keeps_backing_off() {
        use crate::state::{ExponentialBackoff, FixedJitter};
        let now = Instant::now();
        let backoff = ExponentialBackoff::new()
            .with_initial_interval(SEC)
            .with_multiplier(2.0)
            .with_jitter(FixedJitter(0.5));
        let mut r = Retry::new(Box::new(backoff), 30 * SEC, 10 * SEC);
        let mut delays = Vec::new();
        for i in 0..4 {
            // Accepted, answered once, closed a moment later: not stable.
            r.succeeded(now + i * SEC);
            delays.push(r.delay_after(Failure::Transient, now + i * SEC + SEC / 10));
        }
        assert_eq!(delays, [SEC, 2 * SEC, 4 * SEC, 8 * SEC]);
        // A stable connection starts the backoff over.
        r.succeeded(now);
        assert_eq!(
            r.delay_after(Failure::Transient, now + 60 * SEC),
            Duration::ZERO
        );
        assert_eq!(r.delay_after(Failure::Transient, now + 60 * SEC), SEC);
    }

    #[test]
    fn throttling_waits_at_least_what_was_asked() {
        let mut r = Retry::new(
            Box::new(ConstantBackoff(Duration::from_secs(2))),
            Duration::from_secs(30),
            Duration::ZERO,
        );
        let now = Instant::now();
        r.succeeded(now);
        let asked = Some(Duration::from_secs(7));
        assert_eq!(
            r.delay_after(Failure::Throttled { retry_after: asked }, now),
            Duration::from_secs(7)
        );
        assert_eq!(
            r.delay_after(Failure::Throttled { retry_after: None }, now),
            Duration::from_secs(30)
        );
        let short = Some(Duration::from_secs(1));
        assert_eq!(
            r.delay_after(Failure::Throttled { retry_after: short }, now),
            Duration::from_secs(2)
        );
        assert_eq!(r.delay_after_unavailable(None), Duration::from_secs(2));
        assert_eq!(r.delay_after_unavailable(asked), Duration::from_secs(7));
    }
}
