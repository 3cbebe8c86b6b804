//! How long to wait between attempts, and how much waiting a unit may spend
//! in all: a server that keeps refusing makes the unit give up, and the run end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// A server's `Retry-After` is honoured up to this, never beyond.
    pub retry_after_cap: Duration,
    /// Waiting between retries a unit may spend in all, over all its requests.
    pub unit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            retry_after_cap: Duration::from_secs(60),
            unit_wait: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter; a server's Retry-After is a floor,
    /// capped so one answer cannot park a run for hours.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.cap);
        let jittered = exp.mul_f64(fastrand::f64());
        retry_after.map_or(jittered, |ra| ra.min(self.retry_after_cap).max(jittered))
    }
}

/// The retry waiting one unit may still spend, shared by all its requests:
/// a server that keeps refusing makes the unit give up, and the run end.
#[derive(Debug)]
pub struct WaitBudget {
    limit: Duration,
    spent_ms: AtomicU64,
}

impl WaitBudget {
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            spent_ms: AtomicU64::new(0),
        }
    }

    /// Books `d` of waiting; false (and nothing booked) when it would exceed the budget.
    pub fn take(&self, d: Duration) -> bool {
        let limit = self.limit.as_millis() as u64;
        let d = d.as_millis() as u64;
        self.spent_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                s.checked_add(d).filter(|t| *t <= limit)
            })
            .is_ok()
    }

    pub fn spent(&self) -> Duration {
        Duration::from_millis(self.spent_ms.load(Ordering::Acquire))
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            retry_after_cap: Duration::from_secs(60),
            unit_wait: Duration::from_secs(300),
        };
        for attempt in 0..30 {
            assert!(p.delay(attempt, None) <= Duration::from_secs(1));
        }
        assert!(p.delay(0, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert_eq!(p.delay(0, Some(Duration::from_secs(100_000))), Duration::from_secs(60));
    }

    #[test]
    fn the_wait_budget_is_shared_and_never_overdrawn() {
        let b = WaitBudget::new(Duration::from_secs(10));
        assert!(b.take(Duration::from_secs(6)));
        assert!(!b.take(Duration::from_secs(5)), "6 + 5 > 10");
        assert!(b.take(Duration::from_secs(4)));
        assert_eq!(b.spent(), Duration::from_secs(10));
        assert!(!b.take(Duration::from_millis(1)));
    }
}
