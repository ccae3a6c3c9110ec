//! Retry delays: the [`BackoffPolicy`] trait and its default, [`ExponentialBackoff`].
//!
//! The spec asks clients to retry failed connection attempts "with exponential backoff with
//! jitter" (§"Establishing Connection") and to keep backing off after a reconnection fails
//! (§"Restoring WebSocket Connection"). The policy only computes delays; [`ClientState`]
//! decides when a retry sequence starts and ends, and combines the delay with what a throttling
//! server asks for.
//!
//! [`ClientState`]: crate::state::ClientState

use std::fmt;
use std::time::Duration;

/// Computes the delays between the attempts of one retry sequence.
///
/// [`ClientState`](crate::state::ClientState) calls [`next_backoff`](Self::next_backoff) once per
/// failed attempt and [`reset`](Self::reset) once an attempt succeeds, so one policy object
/// serves the whole life of a client.
pub trait BackoffPolicy: Send + fmt::Debug {
    /// The delay to wait before the next attempt of the current retry sequence.
    fn next_backoff(&mut self) -> Duration;

    /// Starts a new retry sequence: the next delay is the initial one again.
    fn reset(&mut self);
}

/// A source of uniformly distributed numbers in `[0, 1)` used to spread retry delays.
///
/// The default is [`RandomJitter`]; tests inject [`FixedJitter`] to make delays predictable.
pub trait JitterSource: Send + fmt::Debug {
    /// A number in `[0, 1)`. Values outside that range are clamped by the caller.
    fn sample(&mut self) -> f64;
}

/// Jitter from the thread-local random number generator of the `rand` crate.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomJitter;

impl JitterSource for RandomJitter {
    fn sample(&mut self) -> f64 {
        rand::random::<f64>()
    }
}

/// Jitter that always returns the same value (clamped to `[0, 1]`): `0.5` means "no jitter".
#[derive(Debug, Clone, Copy)]
pub struct FixedJitter(pub f64);

impl JitterSource for FixedJitter {
    fn sample(&mut self) -> f64 {
        self.0
    }
}

/// Exponential backoff with randomised jitter.
///
/// The `n`-th delay of a sequence is `initial * multiplier^(n-1)`, capped at `max_interval`,
/// then spread uniformly over `± randomization_factor` of itself. The defaults (0.5 s initial,
/// ×1.5, 60 s cap, ±50 %) are those of opamp-go, so fleets mixing both clients behave alike.
/// The policy never gives up: a management connection should come back whenever the server
/// does.
#[derive(Debug)]
pub struct ExponentialBackoff {
    initial_interval: Duration,
    multiplier: f64,
    max_interval: Duration,
    randomization_factor: f64,
    current: Duration,
    jitter: Box<dyn JitterSource>,
}

impl Default for ExponentialBackoff {
    fn default() -> Self {
        Self::new()
    }
}

impl ExponentialBackoff {
    /// The default policy: 0.5 s initial delay, ×1.5 per attempt, 60 s cap, ±50 % jitter.
    pub fn new() -> Self {
        let initial = Duration::from_millis(500);
        ExponentialBackoff {
            initial_interval: initial,
            multiplier: 1.5,
            max_interval: Duration::from_secs(60),
            randomization_factor: 0.5,
            current: initial,
            jitter: Box::new(RandomJitter),
        }
    }

    /// Sets the delay of the first retry (before jitter).
    pub fn with_initial_interval(mut self, initial: Duration) -> Self {
        self.initial_interval = initial;
        self.current = initial;
        self
    }

    /// Sets the growth factor between two delays; values below 1 are treated as 1.
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() && multiplier >= 1.0 {
            multiplier
        } else {
            1.0
        };
        self
    }

    /// Sets the cap of the delay (before jitter).
    pub fn with_max_interval(mut self, max: Duration) -> Self {
        self.max_interval = max;
        self
    }

    /// Sets how far jitter spreads a delay, as a fraction of it, clamped to `[0, 1]`.
    pub fn with_randomization_factor(mut self, factor: f64) -> Self {
        self.randomization_factor = if factor.is_finite() {
            factor.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// Replaces the jitter source (for tests: [`FixedJitter`]).
    pub fn with_jitter(mut self, jitter: impl JitterSource + 'static) -> Self {
        self.jitter = Box::new(jitter);
        self
    }
}

impl BackoffPolicy for ExponentialBackoff {
    fn next_backoff(&mut self) -> Duration {
        let base = self.current.min(self.max_interval);
        let grown = base.as_secs_f64() * self.multiplier;
        self.current = if grown >= self.max_interval.as_secs_f64() {
            self.max_interval
        } else {
            Duration::from_secs_f64(grown)
        };
        let sample = self.jitter.sample();
        let sample = if sample.is_finite() {
            sample.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let spread = 1.0 - self.randomization_factor + 2.0 * self.randomization_factor * sample;
        Duration::from_secs_f64(base.as_secs_f64() * spread)
    }

    fn reset(&mut self) {
        self.current = self.initial_interval;
    }
}

/// A policy that always waits the same time (useful in tests and for constant polling).
#[derive(Debug, Clone, Copy)]
pub struct ConstantBackoff(pub Duration);

impl BackoffPolicy for ConstantBackoff {
    fn next_backoff(&mut self) -> Duration {
        self.0
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_without_jitter() {
        let mut b = ExponentialBackoff::new()
            .with_initial_interval(Duration::from_secs(1))
            .with_multiplier(2.0)
            .with_max_interval(Duration::from_secs(5))
            .with_jitter(FixedJitter(0.5));
        let delays: Vec<_> = (0..5).map(|_| b.next_backoff().as_secs_f64()).collect();
        assert_eq!(delays, vec![1.0, 2.0, 4.0, 5.0, 5.0]);
        b.reset();
        assert_eq!(b.next_backoff(), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_over_the_factor() {
        let low = ExponentialBackoff::new()
            .with_initial_interval(Duration::from_secs(10))
            .with_jitter(FixedJitter(0.0))
            .next_backoff();
        let high = ExponentialBackoff::new()
            .with_initial_interval(Duration::from_secs(10))
            .with_jitter(FixedJitter(1.0))
            .next_backoff();
        assert_eq!(low, Duration::from_secs(5));
        assert_eq!(high, Duration::from_secs(15));
    }

    #[test]
    fn random_jitter_stays_in_range() {
        let mut b = ExponentialBackoff::new().with_initial_interval(Duration::from_secs(2));
        for _ in 0..100 {
            let d = b.next_backoff();
            b.reset();
            assert!(
                d >= Duration::from_secs(1) && d <= Duration::from_secs(3),
                "{d:?}"
            );
        }
    }

    #[test]
    fn bad_parameters_are_sanitised() {
        let mut b = ExponentialBackoff::new()
            .with_initial_interval(Duration::from_secs(1))
            .with_multiplier(f64::NAN)
            .with_randomization_factor(7.0)
            .with_jitter(FixedJitter(f64::INFINITY));
        assert_eq!(b.next_backoff(), Duration::from_secs(1));
        assert_eq!(b.next_backoff(), Duration::from_secs(1));
    }
}
