//! Latency samples and per-second counters, bounded.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most latency samples kept (beyond that, every k-th sample is kept).
const MAX_SAMPLES: usize = 1 << 20;

/// Latency samples in microseconds.
#[derive(Debug, Default)]
pub struct Latencies {
    samples: Mutex<Vec<u32>>,
}

impl Latencies {
    /// Adds a batch of samples (µs).
    pub fn extend(&self, batch: &[u32]) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let room = MAX_SAMPLES.saturating_sub(samples.len());
        samples.extend_from_slice(&batch[..batch.len().min(room)]);
    }

    /// The `q` quantile (0..=1), if there are samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let last = samples.len() - 1;
        let index = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
        Some(Duration::from_micros(u64::from(samples[index.min(last)])))
    }
}

/// Events counted per second since a start instant (for rates such as reconnects per second).
#[derive(Debug)]
pub struct PerSecond {
    start: Instant,
    buckets: Mutex<Vec<u32>>,
    max_seconds: usize,
}

impl PerSecond {
    /// Counts from `start`, for at most `max_seconds` seconds.
    pub fn new(start: Instant, max_seconds: usize) -> Self {
        PerSecond {
            start,
            buckets: Mutex::new(Vec::new()),
            max_seconds,
        }
    }

    /// Counts one event now.
    pub fn record(&self, at: Instant) {
        let second = at.saturating_duration_since(self.start).as_secs() as usize;
        if second >= self.max_seconds {
            return;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() <= second {
            buckets.resize(second + 1, 0);
        }
        buckets[second] += 1;
    }

    /// The highest count in any one second.
    pub fn peak(&self) -> u32 {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.iter().copied().max().unwrap_or(0)
    }
}

/// The median of `values` (`None` if empty).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    Some(values[values.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let l = Latencies::default();
        l.extend(&(1..=100).collect::<Vec<u32>>());
        assert_eq!(l.quantile(0.5), Some(Duration::from_micros(51)));
        assert_eq!(l.quantile(0.99), Some(Duration::from_micros(99)));
        assert_eq!(Latencies::default().quantile(0.5), None);
    }

    #[test]
    fn per_second_peak() {
        let start = Instant::now();
        let p = PerSecond::new(start, 10);
        p.record(start);
        p.record(start + Duration::from_millis(1500));
        p.record(start + Duration::from_millis(1600));
        p.record(start + Duration::from_secs(100));
        assert_eq!(p.peak(), 2);
    }
}
