//! Liveness of one agent from the time of its last message.
//!
//! Spec §"OpAMPConnectionSettings.heartbeat_interval_seconds": an agent with
//! `ReportsHeartbeat` sends a message at least once per heartbeat interval, and a plain-HTTP
//! agent polls at that interval; a server may use this to decide that an agent is gone. Here
//! an agent is gone once it stayed silent for `missed` whole intervals. All times are inputs:
//! this module never reads a clock.

use std::time::{Duration, Instant};

/// Last-seen time and the silence after which the agent counts as gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    last_seen: Instant,
    interval: Option<Duration>,
    missed: u32,
}

impl Liveness {
    /// Starts tracking at `now`. `interval` is the expected time between two messages
    /// (`None`: the agent is not expected to send regularly, so it never times out) and
    /// `missed` how many intervals of silence make it gone (at least 1 is used).
    pub fn new(now: Instant, interval: Option<Duration>, missed: u32) -> Self {
        Self {
            last_seen: now,
            interval: interval.filter(|i| !i.is_zero()),
            missed: missed.max(1),
        }
    }

    /// Records a message received at `now`.
    pub fn record(&mut self, now: Instant) {
        if now > self.last_seen {
            self.last_seen = now;
        }
    }

    /// Changes the expected interval (e.g. when the agent's capabilities change).
    pub fn set_interval(&mut self, interval: Option<Duration>) {
        self.interval = interval.filter(|i| !i.is_zero());
    }

    /// The expected interval between messages, if any.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// When the last message arrived.
    pub fn last_seen(&self) -> Instant {
        self.last_seen
    }

    /// The instant at which the agent becomes gone if it sends nothing before.
    pub fn deadline(&self) -> Option<Instant> {
        let interval = self.interval?;
        let silence = interval.checked_mul(self.missed)?;
        self.last_seen.checked_add(silence)
    }

    /// True if the agent has been silent past its deadline at `now`.
    pub fn is_gone(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|deadline| now >= deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gone_after_missed_intervals() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, Some(Duration::from_secs(30)), 3);
        assert_eq!(l.deadline(), Some(t0 + Duration::from_secs(90)));
        assert!(!l.is_gone(t0 + Duration::from_secs(89)));
        assert!(l.is_gone(t0 + Duration::from_secs(90)));
        l.record(t0 + Duration::from_secs(60));
        assert!(!l.is_gone(t0 + Duration::from_secs(120)));
        assert!(l.is_gone(t0 + Duration::from_secs(150)));
        // A time going backwards never moves last_seen back.
        l.record(t0);
        assert_eq!(l.last_seen(), t0 + Duration::from_secs(60));
    }

    #[test]
    fn no_interval_never_gone() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, None, 3);
        assert_eq!(l.deadline(), None);
        assert!(!l.is_gone(t0 + Duration::from_secs(1_000_000)));
        l.set_interval(Some(Duration::ZERO));
        assert_eq!(l.interval(), None);
        l.set_interval(Some(Duration::from_secs(1)));
        assert!(l.is_gone(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn zero_missed_means_one() {
        let t0 = Instant::now();
        let l = Liveness::new(t0, Some(Duration::from_secs(5)), 0);
        assert_eq!(l.deadline(), Some(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn huge_interval_does_not_overflow() {
        let t0 = Instant::now();
        let l = Liveness::new(t0, Some(Duration::MAX), 10);
        assert_eq!(l.deadline(), None);
        assert!(!l.is_gone(t0));
    }
}
