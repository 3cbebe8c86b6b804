//! Client-side quotas: one GCRA limiter per (API, caller account), at the
//! documented rate, lowered when the server throttles anyway.
//!
//! Huawei throttles per (source IP, API, ParentUid): member fan-out calls are
//! made by the master's credentials, so they share the master's quota.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::api::Api;

struct Slot {
    rate: u32,
    limiter: Arc<DefaultDirectRateLimiter>,
    lowered_at: Option<std::time::Instant>,
}

/// A fifth of a second's worth of burst: a permit missed while a task was
/// busy (parsing a page) is not lost, yet any window of t seconds carries at
/// most rate × (t + 0.2) requests, well inside the server's bucket of one
/// second's quota, with room for network jitter.
pub fn burst(rate: u32) -> u32 {
    (rate / 5).max(1)
}

fn limiter(rate: u32) -> Arc<DefaultDirectRateLimiter> {
    let r = NonZeroU32::new(rate.max(1)).expect("rate >= 1");
    let b = NonZeroU32::new(burst(rate)).expect("burst >= 1");
    Arc::new(RateLimiter::direct(Quota::per_second(r).allow_burst(b)))
}

pub struct Limits {
    configured: HashMap<Api, u32>,
    slots: Mutex<HashMap<(Api, String), Slot>>,
}

impl Limits {
    /// `overrides` replace the documented quota of an API; 0 disables limiting for it.
    pub fn new(overrides: &HashMap<Api, u32>) -> Self {
        let configured = Api::all()
            .into_iter()
            .map(|a| (a, overrides.get(&a).copied().unwrap_or(a.quota())))
            .collect();
        Self {
            configured,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn configured(&self, api: Api) -> u32 {
        self.configured[&api]
    }

    /// Current (possibly lowered) rate.
    pub fn current(&self, api: Api, account: &str) -> u32 {
        let slots = self.slots.lock().expect("limits lock");
        slots
            .get(&(api, account.to_string()))
            .map_or(self.configured(api), |s| s.rate)
    }

    fn get(&self, api: Api, account: &str) -> Option<Arc<DefaultDirectRateLimiter>> {
        let rate = self.configured(api);
        if rate == 0 {
            return None;
        }
        let mut slots = self.slots.lock().expect("limits lock");
        let slot = slots.entry((api, account.to_string())).or_insert_with(|| Slot {
            rate,
            limiter: limiter(rate),
            lowered_at: None,
        });
        Some(slot.limiter.clone())
    }

    /// Waits for a permit.
    pub async fn acquire(&self, api: Api, account: &str) {
        if let Some(l) = self.get(api, account) {
            l.until_ready().await;
        }
    }

    /// The server throttled us although we kept to the quota (another client
    /// shares it, or the quota is lower than documented): halve it.
    pub fn throttled(&self, api: Api, account: &str) -> u32 {
        let mut slots = self.slots.lock().expect("limits lock");
        let Some(slot) = slots.get_mut(&(api, account.to_string())) else {
            return 0;
        };
        // The 429s of requests already in flight answer the same excess: lower
        // at most once a second.
        if slot
            .lowered_at
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1))
        {
            return slot.rate;
        }
        let lowered = (slot.rate / 2).max(1);
        if lowered < slot.rate {
            slot.rate = lowered;
            slot.limiter = limiter(lowered);
            slot.lowered_at = Some(std::time::Instant::now());
        }
        slot.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn keeps_to_the_quota_and_lowers_on_throttling() {
        let limits = Limits::new(&HashMap::from([(Api::named("monthly-sum"), 20)]));
        assert_eq!(limits.configured(Api::named("res-fee-records")), 30);
        let t = Instant::now();
        for _ in 0..(burst(20) + 10) {
            limits.acquire(Api::named("monthly-sum"), "a").await;
        }
        // After the burst, 10 more permits at 20/s: at least 10 intervals of 50 ms.
        assert!(t.elapsed().as_millis() >= 480, "{:?}", t.elapsed());
        assert!(t.elapsed().as_millis() < 1000, "{:?}", t.elapsed());
        assert_eq!(limits.throttled(Api::named("monthly-sum"), "a"), 10);
        assert_eq!(limits.current(Api::named("monthly-sum"), "a"), 10);
        assert_eq!(
            limits.current(Api::named("monthly-sum"), "b"),
            20,
            "accounts are independent"
        );
        for _ in 0..20 {
            limits.throttled(Api::named("monthly-sum"), "a");
        }
        assert_eq!(
            limits.current(Api::named("monthly-sum"), "a"),
            10,
            "a burst of 429s lowers the rate once"
        );
    }

    #[tokio::test]
    async fn zero_disables() {
        let limits = Limits::new(&HashMap::from([(Api::named("monthly-sum"), 0)]));
        let t = Instant::now();
        for _ in 0..100 {
            limits.acquire(Api::named("monthly-sum"), "a").await;
        }
        assert!(t.elapsed().as_millis() < 50);
    }
}
