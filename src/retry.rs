//! The one backoff schedule behind every poll: connecting, the advisory lock, DDL lock retries.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff};

/// Exponential delays with jitter, doubled from `initial` and capped at `max`. The jitter is
/// seeded per process: replicas started together must not retry in lockstep.
pub struct Backoff {
    delays: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let delays = backon::ExponentialBuilder::default()
            .with_min_delay(initial)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .with_jitter_seed(process_seed())
            .without_max_times()
            .build();
        Backoff { delays, max }
    }

    /// The next delay. backon's jitter can add up to one more delay; the cap keeps a poll
    /// noticing readiness within `max`. Never zero, so a zero setting cannot busy-loop.
    pub fn next_delay(&mut self) -> Duration {
        self.delays
            .next()
            .unwrap_or(self.max)
            .min(self.max)
            .max(Duration::from_millis(1))
    }
}

/// A random seed: the standard library seeds `RandomState` from the OS for each process.
fn process_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_capped_and_differ_between_schedules() {
        let take = || {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        let (a, b) = (take(), take());
        assert!(a.iter().all(|d| *d <= Duration::from_secs(1)));
        assert_ne!(a, b, "two schedules drew the same jitter");
    }

    #[test]
    fn zero_settings_do_not_spin() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert!(b.next_delay() >= Duration::from_millis(1));
    }
}
