//! When each group runs. A run can end no sooner than its busiest API (pages
//! ÷ quota), so every API gets work from the first second: groups queue by
//! the APIs they read, each queue with its own concurrency, so a small or slow
//! API never holds up another's. The queue whose API bounds the run starts
//! first, and in a queue the largest group goes first (what is left at the
//! end is small). Sizes come from the manifests (the rows of the files a
//! group replaces), else one page per query: the figures `hcbill plan` shows.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::Job;
use super::plan::{self, Group};
use crate::source::api::Api;
use crate::source::datasets::Derivation;
use crate::source::limits::Limits;

/// The APIs whose pages a group reads, in the order it reads them.
pub fn apis_of(g: &Group) -> Vec<Api> {
    let mut apis: Vec<Api> = g.streams.iter().map(|s| s.api).collect();
    for u in &g.units {
        if let Some(Derivation::FanOut { .. }) = u.spec.derives {
            apis.push(u.spec.api);
        }
    }
    apis.dedup();
    apis
}

/// Estimated pages per API of a group: a stream's rows known from the
/// manifest (`rows_of(dataset, cycle, account)`), else one page per query (a
/// fan-out: one per id, counted as one).
pub fn pages_of(job: &Job, g: &Group, rows_of: impl Fn(&str, &str, &str) -> Option<u64>) -> BTreeMap<Api, u64> {
    let mut pages = BTreeMap::new();
    for root in &g.streams {
        let limit = u64::from(root.page_size().max(1));
        let known = rows_of(root.name, &g.cycle.to_string(), g.account.key()).map(|rows| rows.div_ceil(limit).max(1));
        let n = known.unwrap_or_else(|| plan::queries(job, root, g.cycle).len().max(1) as u64);
        *pages.entry(root.api).or_default() += n;
    }
    for api in apis_of(g) {
        pages.entry(api).or_insert(1);
    }
    pages
}

/// Orders groups for spawning: queues by their load (estimated seconds under
/// the quota of their busiest API) descending, then within a queue the
/// largest group first. Stable: equal groups keep the catalogue order.
pub fn order(groups: Vec<(Group, BTreeMap<Api, u64>)>, limits: &Limits) -> Vec<Group> {
    // An API without a limit (quota 0) never bounds a run.
    let seconds = |pages: &BTreeMap<Api, u64>| -> f64 {
        pages
            .iter()
            .filter(|(api, _)| limits.configured(**api) > 0)
            .map(|(api, n)| *n as f64 / f64::from(limits.configured(*api)))
            .fold(0.0, f64::max)
    };
    let mut load: HashMap<Vec<Api>, f64> = HashMap::new();
    for (g, pages) in &groups {
        *load.entry(apis_of(g)).or_default() += seconds(pages);
    }
    let mut keyed: Vec<(f64, f64, Group)> = groups
        .into_iter()
        .map(|(g, pages)| (load[&apis_of(&g)], seconds(&pages), g))
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    keyed.into_iter().map(|(_, _, g)| g).collect()
}

/// One queue per set of APIs: groups reading the same APIs share `per_queue`
/// slots, other queues are not held up by them. A queue hands its slots out
/// in the order the groups joined it.
pub struct Queues {
    per_queue: usize,
    queues: Mutex<HashMap<Vec<Api>, Queue>>,
}

type Waiter = oneshot::Sender<OwnedSemaphorePermit>;

/// A queue's waiting groups, served in order by its dispatcher task.
struct Queue(mpsc::UnboundedSender<Waiter>);

impl Queues {
    pub fn new(per_queue: usize) -> Self {
        Self {
            per_queue: per_queue.max(1),
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Joins `g`'s queue: the receiver yields the group's slot in its turn.
    pub fn join(&self, g: &Group) -> oneshot::Receiver<OwnedSemaphorePermit> {
        let (tx, rx) = oneshot::channel();
        let mut queues = self.queues.lock().expect("queues lock");
        let q = queues.entry(apis_of(g)).or_insert_with(|| {
            let (sender, mut waiting) = mpsc::unbounded_channel::<Waiter>();
            let slots = Arc::new(Semaphore::new(self.per_queue));
            tokio::spawn(async move {
                while let Some(waiter) = waiting.recv().await {
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    // A group gone meanwhile gives its slot straight back.
                    let _ = waiter.send(slot);
                }
            });
            Queue(sender)
        });
        // The dispatcher lives as long as the queue: a closed channel cannot happen here.
        let _ = q.0.send(tx);
        rx
    }
}

/// Permits for large units (more than one page), one set per API: each holds
/// a Parquet writer, so their number per API bounds a run's memory.
pub fn large_gates(apis: impl IntoIterator<Item = Api>, per_api: usize) -> HashMap<Api, Arc<Semaphore>> {
    apis.into_iter()
        .map(|a| (a, Arc::new(Semaphore::new(per_api.max(1)))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::BillCycle;
    use crate::pipeline::accounts::AccountRef;
    use crate::source::datasets::{bill_summary, consumption_records};

    fn group(spec: &'static crate::source::datasets::DatasetSpec, cycle: &str) -> Group {
        let cycle: BillCycle = cycle.parse().unwrap();
        Group {
            streams: vec![spec],
            cycle,
            account: AccountRef::Own,
            units: vec![plan::Unit {
                spec,
                cycle,
                account: AccountRef::Own,
            }],
        }
    }

    #[test]
    fn the_queue_that_bounds_the_run_goes_first_and_large_groups_lead_their_queue() {
        let limits = Limits::new(&HashMap::new());
        let sum = |c| {
            (
                group(&bill_summary::SPEC, c),
                BTreeMap::from([(bill_summary::SPEC.api, 1)]),
            )
        };
        let records = |c, n| {
            (
                group(&consumption_records::SPEC, c),
                BTreeMap::from([(consumption_records::SPEC.api, n)]),
            )
        };
        // Twelve one-page summaries (1.2 s at 10/s) against 120 record pages (4 s at 30/s).
        let mut groups: Vec<_> = (1..=12)
            .map(|m| sum(if m < 10 { "2026-01" } else { "2026-02" }))
            .collect();
        groups.push(records("2026-01", 20));
        groups.push(records("2026-02", 100));
        let ordered = order(groups, &limits);
        assert_eq!(ordered[0].streams[0].name, "consumption_records");
        assert_eq!(ordered[0].cycle.to_string(), "2026-02", "the largest group first");
        assert_eq!(ordered[1].cycle.to_string(), "2026-01");
        assert!(ordered[2..].iter().all(|g| g.streams[0].name == "bill_summary"));
    }

    #[tokio::test]
    async fn a_queue_serves_its_groups_in_order_and_never_holds_up_another() {
        let q = Queues::new(1);
        let first = q.join(&group(&bill_summary::SPEC, "2026-01"));
        let second = q.join(&group(&bill_summary::SPEC, "2026-02"));
        let other = q.join(&group(&consumption_records::SPEC, "2026-01"));
        let slot = first.await.unwrap();
        // The other API's queue has its own slot while the first one is held.
        let other_slot = tokio::time::timeout(std::time::Duration::from_secs(1), other).await;
        assert!(other_slot.is_ok_and(|s| s.is_ok()), "a busy queue holds up another");
        let mut second = second;
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut second)
                .await
                .is_err(),
            "one slot: the second waits for the first"
        );
        drop(slot);
        assert!(second.await.is_ok(), "then it gets the slot, in order");
    }
}
