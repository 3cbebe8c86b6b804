//! Runs a job. The flow, one module a step:
//! `plan` (datasets × cycles × accounts → units, grouped by shared pages) →
//! `unit` (skip rules, restarts, deadlines) → `write` (pages → normaliser →
//! staged file) → `commit` (publish, manifest, checkpoint; its crash-safety
//! protocol is written at its top) → `report`. `accounts` resolves whose bills
//! a run covers; `progress` draws the terminal line; `error` maps failures to
//! exit codes.

pub mod accounts;
mod commit;
pub mod config;
pub mod dry_run;
pub mod error;
pub mod metrics;
pub mod plan;
mod progress;
pub mod report;
mod schedule;
pub mod status;
mod unit;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{Duration, Utc};

pub use accounts::{AccountRef, check_account_id, check_members};
pub use error::{Outcome, RunError};

use crate::cycle::BillCycle;
use crate::sink::manifest::Manifest;
use crate::sink::output::Output;
use crate::source::api::Api;
use crate::source::client::BssClient;
use crate::source::datasets::{DatasetOptions, DatasetSpec};
use crate::state::StateStore;
use commit::Committer;
use report::{RunReport, UnitReport, UnitStatus};
use unit::Deadline;

/// Which accounts' bills to extract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accounts {
    /// The default: the caller, and every enterprise member when the listing
    /// shows any, so a master's export is never silently missing its members.
    Auto,
    /// The caller's own account (`method=oneself`).
    Own,
    /// The caller and every enterprise member (`method=sub_customer` each).
    All,
    /// These members only.
    Members(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Backfill,
    Nightly,
}

/// The run stops cleanly after this by default: a nightly cron run always ends.
pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
/// A unit running longer than this fails; the next run resumes it.
pub const DEFAULT_UNIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2 * 3600);
/// Pages per unit: 100 million rows, thirty times the largest month seen.
pub const DEFAULT_MAX_PAGES: u64 = 100_000;
/// Pages of one unit in flight at once: the quota (30 requests/s) times the
/// latency, with room: 12 keep res-fee-records busy up to 400 ms a request.
pub const DEFAULT_PAGES: usize = 12;
/// Units of more than one page fetched at once, per API. One keeps a quota
/// busy (it has `limits.pages` requests in flight, and hands over to the next
/// large unit as soon as its last page is asked for), and each holds a Parquet
/// writer of some 40 MB: with the number of APIs a run reads, this is what
/// bounds its memory.
pub const DEFAULT_LARGE_UNITS: usize = 1;

/// What to extract and how. Built by `cli::settings` from flags, pipeline
/// file and defaults; nothing here is specific to one dataset.
#[derive(Clone)]
pub struct Job {
    pub command: String,
    pub mode: Mode,
    pub datasets: Vec<&'static DatasetSpec>,
    /// Options of the datasets that have any, resolved (defaults filled in).
    pub options: BTreeMap<&'static str, DatasetOptions>,
    /// Cycles asked for; nightly adds the provisional ones of the manifests.
    pub cycles: Vec<BillCycle>,
    pub accounts: Accounts,
    /// A local directory, or `obs://` / `s3://` bucket and prefix.
    pub out: crate::sink::output::Location,
    /// How to reach a bucket output.
    pub store: crate::sink::output::StoreConfig,
    pub endpoint: String,
    pub force: bool,
    /// Added to Huawei's 10:00-on-the-3rd finality time.
    pub grace: Duration,
    pub unit_concurrency: usize,
    pub page_concurrency: usize,
    /// Units of more than one page that fetch at once (`limits.large_units`).
    pub large_units: usize,
    /// Restarts of a unit whose data moved while paging.
    pub max_restarts: u32,
    /// Redraw a one-line progress display on stderr (set when it is a terminal).
    pub progress: bool,
    /// The run stops cleanly (exit 1, resumable) when this much time has passed.
    pub deadline: std::time::Duration,
    /// A unit running longer than this fails; the next run resumes it.
    pub unit_deadline: std::time::Duration,
    /// Pages one unit may fetch: a `total_count` needing more fails the unit.
    pub max_pages: u64,
}

impl Job {
    /// The options of `spec`: those set, else its defaults.
    pub fn options_of(&self, spec: &DatasetSpec) -> DatasetOptions {
        self.options
            .get(spec.name)
            .cloned()
            .unwrap_or_else(|| spec.options_from(&[]).expect("declared defaults are valid"))
    }
}

/// What every unit task shares.
pub(crate) struct Ctx {
    pub job: Job,
    pub client: Arc<BssClient>,
    pub committer: Committer,
    counters: progress::Counters,
    /// Permits for units of more than one page, per API: each holds a
    /// Parquet writer, so their number, not the month's size, sets the memory
    /// a run needs.
    pub large: Arc<HashMap<Api, Arc<tokio::sync::Semaphore>>>,
}

/// Runs `job`. Groups run as tasks of their own, so parsing and writing use
/// every core while requests wait on the network.
pub async fn run(job: &Job, client: &Arc<BssClient>) -> Result<RunReport, RunError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let out = Arc::new(Output::open(&job.out, &job.store, client.stop.clone())?);
    let new_run_id = uuid::Uuid::now_v7().to_string();
    // One writer at a time, checked before any request is spent.
    let guard = out.lock(&new_run_id).await?;
    let result = run_locked(job, client, out, &new_run_id, started_at, clock).await;
    guard.release().await;
    result
}

async fn run_locked(
    job: &Job,
    client: &Arc<BssClient>,
    out: Arc<Output>,
    new_run_id: &str,
    started_at: chrono::DateTime<Utc>,
    clock: Instant,
) -> Result<RunReport, RunError> {
    // Staging files of a killed run are garbage: their units were not published.
    out.clear_staging();

    let mut manifests = HashMap::new();
    for spec in &job.datasets {
        let m = match out.manifest(spec).await? {
            // A lake written with another partition key is moved first.
            Some(m) => crate::sink::migrate::to_current_layout(&out, spec, m).await?,
            None => Manifest::new(spec.name, spec.version),
        };
        manifests.insert(spec.name, m);
    }
    let cycles = plan::cycles_of_job(job, &manifests, BillCycle::containing(Utc::now()));
    let job_fingerprint = plan::fingerprint_of(job, &cycles);
    let mut state = StateStore::begin(out.clone(), &job_fingerprint, new_run_id).await?;
    let resumed = state.resumed;
    let run_id = state.run_id();
    let committer = Committer::new(out.clone(), manifests, run_id.clone());
    if resumed {
        tracing::info!(done = committer.done_count(), "resuming the interrupted run {run_id}");
    }
    let apis: Vec<Api> = {
        let mut apis: Vec<Api> = job
            .datasets
            .iter()
            .flat_map(|d| plan::streams_of(d).into_iter().map(|s| s.api).chain([d.api]))
            .collect();
        apis.sort();
        apis.dedup();
        apis
    };
    let ctx = Arc::new(Ctx {
        job: job.clone(),
        client: client.clone(),
        committer,
        counters: progress::Counters::default(),
        large: Arc::new(schedule::large_gates(apis.iter().copied(), job.large_units)),
    });
    let quota: u32 = apis.iter().map(|a| client.limits().configured(*a)).sum();
    // Every group ends by the run deadline on its own (those not started by
    // then send nothing), so the run always ends and reports every unit.
    let run_deadline = Deadline {
        at: tokio::time::Instant::now() + job.deadline,
        what: format!("the run deadline of {}", humantime(job.deadline)),
    };
    let queues = Arc::new(schedule::Queues::new(job.unit_concurrency));
    // Set when the run gives up: groups still waiting for a slot do not start.
    let cancelled: Arc<std::sync::OnceLock<String>> = Arc::new(std::sync::OnceLock::new());
    let spawn = |groups: Vec<plan::Group>,
                 listing: Option<Arc<accounts::MemberListing>>,
                 ended: Option<Arc<tokio::sync::Semaphore>>|
     -> Vec<Spawned> {
        let sized = groups
            .into_iter()
            .map(|g| {
                let pages = schedule::pages_of(job, &g, |dataset, cycle, account| {
                    ctx.committer.entry_of(dataset, cycle, account).map(|e| e.rows)
                });
                (g, pages)
            })
            .collect();
        let ordered = schedule::order(sized, client.limits());
        ctx.counters
            .units_total
            .fetch_add(ordered.iter().map(|g| g.units.len()).sum(), Ordering::Relaxed);
        ordered
            .into_iter()
            .map(|group| {
                let blanks: Vec<UnitReport> = group.units.iter().map(|u| u.blank_report()).collect();
                let turn = queues.join(&group);
                let (ctx, listing, run_deadline, ended, cancelled) = (
                    ctx.clone(),
                    listing.clone(),
                    run_deadline.clone(),
                    ended.clone(),
                    cancelled.clone(),
                );
                let not_started = blanks.clone();
                let task = tokio::spawn(async move {
                    // A slot of the group's own queue, in its turn: other APIs' queues go on meanwhile.
                    let _slot = turn.await;
                    if let Some(why) = cancelled.get() {
                        if let Some(e) = ended {
                            e.add_permits(1);
                        }
                        return not_started
                            .into_iter()
                            .map(|mut r| {
                                r.error = Some(format!("not started: {why}"));
                                r
                            })
                            .collect();
                    }
                    let unit_deadline = tokio::time::Instant::now() + ctx.job.unit_deadline;
                    let deadline = if unit_deadline < run_deadline.at {
                        Deadline {
                            at: unit_deadline,
                            what: format!("its deadline of {}", humantime(ctx.job.unit_deadline)),
                        }
                    } else {
                        run_deadline
                    };
                    let reports = unit::run_group(&ctx, &group, &deadline, listing.as_deref()).await;
                    for r in &reports {
                        ctx.counters.rows_done.fetch_add(r.rows, Ordering::Relaxed);
                        let n = ctx.counters.units_done.fetch_add(1, Ordering::Relaxed) + 1;
                        log_unit(r, n, ctx.counters.units_total.load(Ordering::Relaxed));
                    }
                    if let Some(e) = ended {
                        e.add_permits(1);
                    }
                    reports
                });
                Spawned { blanks, task }
            })
            .collect()
    };
    let mut ticker = std::pin::pin!(async {
        if job.progress {
            progress::ticker(client, &ctx.counters, quota).await
        } else {
            std::future::pending::<()>().await
        }
    });
    // The caller's own units start at once; the member listing runs beside
    // them, and the members' units (and sub_customers, which is the listing)
    // follow as soon as it returns.
    let listed = matches!(job.accounts, Accounts::All | Accounts::Auto);
    let own_first = |g: &plan::Group| listed && g.account == AccountRef::Own && !needs_listing(g);
    // A permit per caller's group that has ended.
    let own_ended = Arc::new(tokio::sync::Semaphore::new(0));
    let mut spawned: Vec<Spawned> = if listed {
        let own = plan::groups(job, &[AccountRef::Own], |spec| plan::cycles_in(&cycles, spec));
        spawn(
            own.into_iter().filter(|g| own_first(g)).collect(),
            None,
            Some(own_ended.clone()),
        )
    } else {
        Vec::new()
    };
    // Until one request is answered they go one at a time (bad credentials
    // cost one request): a page of the caller's goes first, so the listing
    // holds up nothing. It waits for that answer, or for the caller's units to
    // end without asking anything (all final), or a second at most.
    let own = spawned.len() as u32;
    let listing = async {
        if own > 0 {
            let wait = async {
                tokio::select! {
                    () = client.verified() => {}
                    _ = own_ended.acquire_many(own) => {}
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), wait).await;
        }
        accounts::resolve(job, client).await
    };
    let resolved = tokio::select! {
        r = listing => r,
        () = &mut ticker => unreachable!("the ticker never ends"),
    };
    let accounts = match resolved {
        Ok((accounts, listing)) => {
            let members = accounts.iter().filter(|a| **a != AccountRef::Own).count();
            tracing::info!(
                "accounts covered: {}",
                if members == 0 {
                    "the caller's own".to_string()
                } else {
                    format!("the caller's own and {members} enterprise members")
                }
            );
            if matches!(job.accounts, Accounts::Members(_)) {
                for spec in job.datasets.iter().filter(|d| !d.member_scoped()) {
                    tracing::warn!(
                        dataset = spec.name,
                        "not extracted: it has no member view, and --accounts lists members only"
                    );
                }
            }
            let rest = plan::groups(job, &accounts, |spec| plan::cycles_in(&cycles, spec));
            spawned.extend(spawn(
                rest.into_iter().filter(|g| !own_first(g)).collect(),
                listing.map(Arc::new),
                None,
            ));
            accounts
        }
        Err(e) => {
            // The caller's units already running finish (each is whole), those
            // still queued do not start; the run fails with the listing's error.
            let _ = cancelled.set(format!("the member listing failed ({e})"));
            for s in spawned {
                let _ = s.task.await;
            }
            if job.progress {
                progress::clear();
            }
            return Err(e);
        }
    };
    let work = futures::future::join_all(spawned.into_iter().map(|s| async move {
        match s.task.await {
            Ok(r) => r,
            Err(e) => panicked(&s.blanks, e),
        }
    }));
    let reports: Vec<UnitReport> = tokio::select! {
        r = work => r.into_iter().flatten().collect(),
        () = &mut ticker => unreachable!("the ticker never ends"),
    };
    if job.progress {
        progress::clear();
    }

    let failures: Vec<String> = reports
        .iter()
        .filter(|r| r.status == UnitStatus::Failed)
        .map(|r| {
            format!(
                "{} {} {}: {}",
                r.dataset,
                r.bill_cycle,
                r.account,
                r.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    // A stopped run (signal, lost lease) still reports; what it can no longer
    // write is left to the run that resumes it.
    let stopped = client.stop.reason();
    let tolerate = |r: Result<(), crate::sink::output::OutputError>| match (r, &stopped) {
        (Err(e), Some(why)) => {
            tracing::warn!("not written ({why}): {e}");
            Ok(())
        }
        (r, _) => r,
    };
    // Sidecars describe the manifest as this run left it.
    for spec in &job.datasets {
        if let Some(sidecar) = spec.sidecar {
            let (name, text) = sidecar(spec, &ctx.committer.manifest(spec.name));
            tolerate(
                out.write(&format!("{}/{name}", spec.name), text.as_bytes(), false)
                    .await,
            )?;
        }
    }
    if failures.is_empty() && stopped.is_none() {
        state.complete().await?;
    }
    let finished_at = Utc::now();
    let report = RunReport {
        run_id,
        command: job.command.clone(),
        resumed,
        out: out.url(),
        started_at,
        finished_at,
        duration_seconds: clock.elapsed().as_secs_f64(),
        success: failures.is_empty(),
        units_total: reports.len(),
        units_failed: failures.len(),
        rows: reports.iter().map(|r| r.rows).sum(),
        pages: reports.iter().map(|r| r.pages).sum(),
        requests: client.stats.snapshot(),
        quota: report::QuotaUse::of(
            &client.stats.snapshot().requests_per_api,
            |name| name.parse::<Api>().map_or(0, |a| client.limits().configured(a)),
            clock.elapsed().as_secs_f64(),
        ),
        restatements: ctx.committer.restatements(),
        accounts: accounts.iter().map(|a| a.key().to_string()).collect(),
        failures,
        units: reports,
        saved_as: String::new(),
    };
    // The run report lives with the data, so a fresh container sees the last run.
    let rel = format!(
        ".hcbill/reports/{}-{}.json",
        report.finished_at.format("%Y%m%dT%H%M%SZ"),
        report.run_id
    );
    let mut report = report;
    report.saved_as = format!("{}/{rel}", out.url());
    let text = serde_json::to_vec_pretty(&report).expect("report serialises");
    tolerate(out.write(&rel, &text, false).await)?;
    Ok(report)
}

/// A group's task, and its units' reports should the task panic.
struct Spawned {
    blanks: Vec<UnitReport>,
    task: tokio::task::JoinHandle<Vec<UnitReport>>,
}

/// Whether a group reads the member listing (the sub_customers dataset is it).
fn needs_listing(g: &plan::Group) -> bool {
    g.streams
        .iter()
        .any(|s| s.api == Api(&crate::source::datasets::sub_customers::API))
}

/// The units of a group whose task panicked are failed units, not a dead run.
fn panicked(blanks: &[UnitReport], e: tokio::task::JoinError) -> Vec<UnitReport> {
    blanks
        .iter()
        .map(|b| {
            let mut r = b.clone();
            r.status = UnitStatus::Failed;
            r.error = Some(format!("internal error: the unit's task failed ({e})"));
            r
        })
        .collect()
}

fn log_unit(r: &UnitReport, n: usize, total: usize) {
    match r.status {
        UnitStatus::Failed => tracing::error!(
            dataset = r.dataset,
            cycle = r.bill_cycle,
            account = r.account,
            "[{n}/{total}] failed: {}",
            r.error.as_deref().unwrap_or("")
        ),
        s => tracing::info!(
            dataset = r.dataset,
            cycle = r.bill_cycle,
            account = r.account,
            rows = r.rows,
            pages = r.pages,
            "[{n}/{total}] {}",
            format!("{s:?}").to_lowercase()
        ),
    }
}

/// Grace hours past Huawei's finality time: a month at most.
pub fn check_grace_hours(h: i64) -> Result<(), String> {
    if (0..=31 * 24).contains(&h) {
        Ok(())
    } else {
        Err(format!("grace hours must be between 0 and 744 (31 days), not {h}"))
    }
}

/// `6h`, `90m`, `45s`: durations as people write them in cron files.
pub fn humantime(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 3600 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s >= 60 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// Parses `6h`, `90m`, `45s` or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'h')) => (&t[..i], 3600),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 's')) => (&t[..i], 1),
        _ => (t, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 6h, 90m, 45s)"))?;
    let secs = n
        .checked_mul(mult)
        .filter(|v| (1..=30 * 24 * 3600).contains(v))
        .ok_or_else(|| format!("{s:?} must be between 1s and 30 days"))?;
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_group_keeps_its_units_names_in_the_report() {
        let blank = UnitReport::failed("bill_summary".into(), "2026-10".into(), "m1".into(), None);
        let joined = tokio::spawn(async { panic!("boom") }).await.unwrap_err();
        let r = panicked(&[blank], joined);
        assert_eq!(
            (r[0].dataset.as_str(), r[0].bill_cycle.as_str(), r[0].account.as_str()),
            ("bill_summary", "2026-10", "m1")
        );
        assert_eq!(r[0].status, UnitStatus::Failed);
        assert!(r[0].error.as_deref().unwrap().contains("internal error"));
    }

    #[test]
    fn durations_and_grace() {
        assert_eq!(parse_duration("6h").unwrap().as_secs(), 21_600);
        assert_eq!(parse_duration("90m").unwrap().as_secs(), 5_400);
        assert_eq!(parse_duration("45").unwrap().as_secs(), 45);
        for bad in ["0s", "-1h", "soon", "", "99999999999999999999h", "31d", "1000h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(humantime(std::time::Duration::from_secs(7200)), "2h");
        assert!(check_grace_hours(744).is_ok() && check_grace_hours(745).is_err() && check_grace_hours(-1).is_err());
    }
}
