//! Restart delays for an agent that exits: exponential, capped, reset after a long run, so a
//! crash loop never spins and a rare crash restarts quickly.

use std::time::Duration;

/// Restart delay settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackoffSettings {
    /// Delay after the first failure.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
    /// A run at least this long counts as a success: the next delay is `initial` again.
    pub reset_after: Duration,
}

impl BackoffSettings {
    /// Settings with these values.
    pub fn new(initial: Duration, max: Duration, reset_after: Duration) -> Self {
        BackoffSettings {
            initial,
            max: max.max(initial),
            reset_after,
        }
    }
}

impl Default for BackoffSettings {
    fn default() -> Self {
        BackoffSettings::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
            Duration::from_secs(60),
        )
    }
}

/// Counts consecutive failures and turns them into delays.
#[derive(Debug, Clone)]
pub struct RestartBackoff {
    settings: BackoffSettings,
    failures: u32,
}

impl RestartBackoff {
    /// No failure yet.
    pub fn new(settings: BackoffSettings) -> Self {
        RestartBackoff {
            settings,
            failures: 0,
        }
    }

    /// The agent exited after running `ran_for`: the delay before starting it again
    /// (before jitter). `initial` doubled per consecutive failure, at most `max`.
    pub fn next_delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= self.settings.reset_after {
            self.failures = 0;
        }
        let factor = 1u32 << self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        self.settings
            .initial
            .saturating_mul(factor)
            .min(self.settings.max)
    }

    /// Forgets the failures (e.g. after a deliberate restart).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Spreads `delay` over ±20 % with `unit` in `[0, 1)` (a random draw), so that many
/// supervisors restarting together do not stay in step.
pub fn jitter(delay: Duration, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    delay.mul_f64(0.8 + 0.4 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BackoffSettings {
        BackoffSettings::new(
            Duration::from_secs(1),
            Duration::from_secs(8),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut backoff = RestartBackoff::new(settings());
        let delays: Vec<u64> = (0..6)
            .map(|_| backoff.next_delay(Duration::from_millis(10)).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 8, 8]);
        assert_eq!(backoff.failures(), 6);
    }

    #[test]
    fn a_long_run_resets() {
        let mut backoff = RestartBackoff::new(settings());
        for _ in 0..4 {
            backoff.next_delay(Duration::ZERO);
        }
        assert_eq!(
            backoff.next_delay(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(backoff.next_delay(Duration::ZERO), Duration::from_secs(2));
        backoff.reset();
        assert_eq!(backoff.next_delay(Duration::ZERO), Duration::from_secs(1));
    }

    #[test]
    fn never_overflows() {
        let mut backoff = RestartBackoff::new(BackoffSettings::new(
            Duration::from_secs(u64::MAX / 4),
            Duration::MAX,
            Duration::MAX,
        ));
        for _ in 0..100 {
            assert!(backoff.next_delay(Duration::ZERO) >= Duration::from_secs(u64::MAX / 4));
        }
    }

    #[test]
    fn jitter_bounds() {
        let d = Duration::from_secs(10);
        assert_eq!(jitter(d, 0.0), Duration::from_secs(8));
        assert_eq!(jitter(d, 1.0), Duration::from_secs(12));
        assert_eq!(jitter(d, f64::NAN), Duration::from_secs(10));
    }
}
