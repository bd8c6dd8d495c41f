use std::time::Duration;

/// When to retry a notifier's failed deliveries, and when to give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// After this long since the job was written, a failure is final.
    pub max_age: Duration,
    /// The delay before the 2nd attempt; it doubles each time.
    pub initial_delay: Duration,
    /// The longest delay between attempts.
    pub max_delay: Duration,
    /// How long one call to the notifier may take.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            max_age: Duration::from_secs(24 * 3600),
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1-based): `initial * 2^(attempt-1)`,
    /// capped at `max_delay`, with "equal jitter" (half fixed, half random) so retries of
    /// many jobs spread out yet still grow. A channel's `retry_after` lengthens it, never
    /// shortens it: a channel that keeps answering "after 1 s" (or 0) would otherwise use up
    /// `max_attempts` in seconds, where the backoff spreads them over `max_age`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(attempt);
        retry_after.map_or(backoff, |after| after.min(self.max_age).max(backoff))
    }

    /// [`Self::delay`] without a channel's word.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(fastrand::u64(0..=jitter_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_within_bounds_and_honour_retry_after() {
        let p = RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        for _ in 0..200 {
            for attempt in 1..=10u32 {
                let full =
                    Duration::from_millis(100 * 2u64.pow(attempt - 1)).min(Duration::from_secs(10));
                let d = p.delay(attempt, None);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        assert_eq!(
            p.delay(3, Some(Duration::from_secs(42))),
            Duration::from_secs(42)
        );
        // A shorter word than the backoff does not hurry the retries.
        for attempt in 1..=10u32 {
            let full =
                Duration::from_millis(100 * 2u64.pow(attempt - 1)).min(Duration::from_secs(10));
            for after in [Duration::ZERO, Duration::from_millis(1)] {
                assert!(p.delay(attempt, Some(after)) >= full / 2);
            }
        }
        // Nor does a longer one outlast the retries' time.
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7 * 24 * 3600))),
            p.max_age
        );
        // No overflow on absurd attempt numbers.
        assert!(p.delay(u32::MAX, None) <= Duration::from_secs(10));
    }
}
