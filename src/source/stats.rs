//! Request counters for the run report, and the halt switch a fatal error trips.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::api::Api;

/// Counters for the run report.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub transport_errors: AtomicU64,
    pub bad_bodies: AtomicU64,
    pub per_api: Mutex<HashMap<Api, u64>>,
    pub retries_per_api: Mutex<HashMap<Api, u64>>,
    pub throttled_per_api: Mutex<HashMap<Api, u64>>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub retries: u64,
    pub throttled_429: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    pub unparseable_bodies: u64,
    pub requests_per_api: std::collections::BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub retries_per_api: std::collections::BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub throttled_per_api: std::collections::BTreeMap<String, u64>,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttled_429: self.throttled.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
            unparseable_bodies: self.bad_bodies.load(Ordering::Relaxed),
            requests_per_api: by_name(&self.per_api),
            retries_per_api: by_name(&self.retries_per_api),
            throttled_per_api: by_name(&self.throttled_per_api),
        }
    }

    /// Counts one event of an API.
    pub fn bump(map: &Mutex<HashMap<Api, u64>>, api: Api) {
        *map.lock().expect("stats lock").entry(api).or_default() += 1;
    }
}

fn by_name(m: &Mutex<HashMap<Api, u64>>) -> std::collections::BTreeMap<String, u64> {
    m.lock()
        .expect("stats lock")
        .iter()
        .map(|(a, n)| (a.name().to_string(), *n))
        .collect()
}

/// Set once by the first fatal error; every later request stops before sending.
#[derive(Debug, Default)]
pub struct Halt(Mutex<Option<String>>);

impl Halt {
    pub fn trip(&self, why: &str) {
        let mut g = self.0.lock().expect("halt lock");
        if g.is_none() {
            *g = Some(why.to_string());
        }
    }

    pub fn reason(&self) -> Option<String> {
        self.0.lock().expect("halt lock").clone()
    }
}
