//! Connection state and retry scheduling: when the next connection attempt (WebSocket) or the
//! next request after a failure (plain HTTP) may happen.

use std::time::{Duration, Instant};

use super::backoff::BackoffPolicy;

/// How an attempt (a WebSocket connect, a WebSocket write, an HTTP request) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// A network, TLS or timeout error, an unexpected HTTP status or an undecodable answer.
    /// Retried at once if the connection was working before, then with backoff.
    Transient,
    /// The server is overloaded: HTTP 429 or 503, on a request or at the WebSocket upgrade
    /// (spec §"Throttling"). The next attempt waits at least `retry_after` (or the minimum
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
#[derive(Debug)]
pub(crate) struct Retry {
    backoff: Box<dyn BackoffPolicy>,
    min_throttle: Duration,
    /// Whether the last connection proved to work (a message other than an error came back).
    /// A failure after a working connection is retried at once; later ones back off.
    healthy: bool,
}

impl Retry {
    pub(crate) fn new(backoff: Box<dyn BackoffPolicy>, min_throttle: Duration) -> Self {
        Retry {
            backoff,
            min_throttle,
            healthy: false,
        }
    }

    /// The connection works: the next failure is retried at once, and backoff starts over.
    pub(crate) fn succeeded(&mut self) {
        if !self.healthy {
            self.backoff.reset();
        }
        self.healthy = true;
    }

    /// The last connection did not prove to work after all (the server sent something
    /// malformed): the next failure backs off.
    pub(crate) fn distrust(&mut self) {
        self.healthy = false;
    }

    /// How long to wait after `failure`.
    pub(crate) fn delay_after(&mut self, failure: Failure) -> Duration {
        let was_healthy = std::mem::replace(&mut self.healthy, false);
        match failure {
            Failure::Transient | Failure::Rejected => {
                if was_healthy {
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
        self.healthy = false;
        let backoff = self.backoff.next_backoff();
        retry_after.map_or(backoff, |asked| asked.max(backoff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::backoff::ConstantBackoff;

    #[test]
    fn at_once_after_a_working_connection_then_backoff() {
        let mut r = Retry::new(
            Box::new(ConstantBackoff(Duration::from_secs(2))),
            Duration::from_secs(30),
        );
        assert_eq!(r.delay_after(Failure::Transient), Duration::from_secs(2));
        r.succeeded();
        assert_eq!(r.delay_after(Failure::Transient), Duration::ZERO);
        assert_eq!(r.delay_after(Failure::Transient), Duration::from_secs(2));
    }

    #[test]
    fn throttling_waits_at_least_what_was_asked() {
        let mut r = Retry::new(
            Box::new(ConstantBackoff(Duration::from_secs(2))),
            Duration::from_secs(30),
        );
        r.succeeded();
        let asked = Some(Duration::from_secs(7));
        assert_eq!(
            r.delay_after(Failure::Throttled { retry_after: asked }),
            Duration::from_secs(7)
        );
        assert_eq!(
            r.delay_after(Failure::Throttled { retry_after: None }),
            Duration::from_secs(30)
        );
        let short = Some(Duration::from_secs(1));
        assert_eq!(
            r.delay_after(Failure::Throttled { retry_after: short }),
            Duration::from_secs(2)
        );
        assert_eq!(r.delay_after_unavailable(None), Duration::from_secs(2));
        assert_eq!(r.delay_after_unavailable(asked), Duration::from_secs(7));
    }
}
