//! The one backoff schedule behind every poll: connecting, the advisory lock, DDL lock retries.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff};

/// Exponential delays, doubled from `initial` and capped at `max`, each drawn at random from
/// its upper half. The jitter is applied after the cap, so replicas polling at the cap still
/// spread out, and it is seeded per process: replicas started together never retry in
/// lockstep.
pub struct Backoff {
    delays: ExponentialBackoff,
    max: Duration,
    random: RandomState,
    drawn: u64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let delays = backon::ExponentialBuilder::default()
            .with_min_delay(initial)
            .with_max_delay(max)
            .with_factor(2.0)
            .without_max_times()
            .build();
        Backoff {
            delays,
            max,
            random: RandomState::new(),
            drawn: 0,
        }
    }

    /// The next delay: between half and all of the capped exponential step, never zero, so a
    /// tiny setting cannot busy-loop.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.delays.next().unwrap_or(self.max).min(self.max);
        self.drawn += 1;
        let mut h = self.random.build_hasher();
        h.write_u64(self.drawn);
        h.write_u32(std::process::id());
        let fraction = 0.5 + (h.finish() >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
        step.mul_f64(fraction).max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_capped_jittered_at_the_cap_and_differ_between_schedules() {
        let take = || {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
            (0..12).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        let (a, b) = (take(), take());
        assert!(a.iter().all(|d| *d <= Duration::from_secs(1)));
        assert!(a.iter().all(|d| *d >= Duration::from_millis(50)));
        assert_ne!(a, b, "two schedules drew the same jitter");
        let at_cap = &a[6..];
        assert!(
            at_cap.windows(2).any(|w| w[0] != w[1]),
            "no jitter at the cap: {at_cap:?}"
        );
    }

    #[test]
    fn zero_settings_do_not_spin() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert!(b.next_delay() >= Duration::from_millis(1));
    }
}
