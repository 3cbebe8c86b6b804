//! Runs a job: units (dataset × cycle × account) extracted concurrently, each
//! staged, published atomically, recorded in the manifest, then checkpointed.

pub mod config;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{Duration, Utc};
use futures::StreamExt;

use crate::cycle::BillCycle;
use crate::model::{Lineage, Normalizer};
use crate::sink::manifest::{FileEntry, Finality, Manifest};
use crate::sink::parquet::StagedWriter;
use crate::sink::{Layout, SinkError, publish};
use crate::source::api::{Api, Param, Params};
use crate::source::client::{BssClient, WaitBudget};
use crate::source::datasets::{DatasetSpec, QueryCtx, TransformCtx};
use crate::source::error::SourceError;
use crate::source::paging::{Pager, PagingError};
use crate::state::{OutputLock, StateError, StateStore, fingerprint};
use report::{RunReport, UnitReport, UnitStatus};

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

#[derive(Clone)]
pub struct Job {
    pub command: String,
    pub mode: Mode,
    pub datasets: Vec<&'static DatasetSpec>,
    /// Cycles asked for; nightly adds the provisional ones of the manifests.
    pub cycles: Vec<BillCycle>,
    pub accounts: Accounts,
    pub out: PathBuf,
    pub endpoint: String,
    pub force: bool,
    /// Added to Huawei's 10:00-on-the-3rd finality time.
    pub grace: Duration,
    pub unit_concurrency: usize,
    pub page_concurrency: usize,
    /// Restarts of a unit whose data moved while paging.
    pub max_restarts: u32,
    /// Redraw a one-line progress display on stderr (set when it is a terminal).
    pub progress: bool,
    /// The run stops cleanly (exit 1, resumable) when this much time has passed.
    pub deadline: std::time::Duration,
    /// A unit still running after this fails; the next run resumes it.
    pub unit_deadline: std::time::Duration,
    /// Pages one unit may fetch: a `total_count` needing more fails the unit.
    pub max_pages: u64,
    /// `statistic_type` for resource bill details (1 by cycle, 2 by day, 3 by detail).
    pub statistic_type: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("listing enterprise members: {0}")]
    Members(SourceError),
    #[error("{0}")]
    Account(#[from] AccountIdError),
}

/// An account id that is not a Huawei account id.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {reason}")]
pub struct AccountIdError {
    pub source_name: String,
    pub reason: String,
}

/// Checks that `id` is a Huawei account id (`[A-Za-z0-9_-]{1,64}`): ids reach
/// file names, so anything else (`..`, `/`, spaces) is refused where it enters.
/// `self` names the caller's own file and cannot name a member.
pub fn check_account_id(id: &str) -> Result<(), String> {
    let shown: String = id.chars().take(70).filter(|c| !c.is_control()).collect();
    if id.is_empty() || id.len() > 64 {
        return Err(format!("{shown:?} is not an account id (1 to 64 characters)"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!(
            "{shown:?} is not an account id (only letters, digits, - and _)"
        ));
    }
    if id.eq_ignore_ascii_case("self") {
        return Err(format!(
            "{shown:?} cannot name a member: \"self\" is the caller's own account"
        ));
    }
    Ok(())
}

/// Validates member ids and refuses two that would share a file (ids that
/// differ only in case collide on case-insensitive file systems).
pub fn check_members(ids: &[String], source_name: &str) -> Result<(), AccountIdError> {
    let mut seen = std::collections::HashMap::new();
    for id in ids {
        check_account_id(id).map_err(|reason| AccountIdError {
            source_name: source_name.to_string(),
            reason,
        })?;
        if let Some(other) = seen.insert(id.to_ascii_lowercase(), id)
            && other != id
        {
            return Err(AccountIdError {
                source_name: source_name.to_string(),
                reason: format!("{other:?} and {id:?} differ only in case and would share one file"),
            });
        }
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AccountRef {
    Own,
    Member(String),
}

impl AccountRef {
    pub fn key(&self) -> &str {
        match self {
            AccountRef::Own => "self",
            AccountRef::Member(id) => id,
        }
    }

    fn params(&self) -> Params {
        match self {
            AccountRef::Own => vec![("method", Param::from("oneself"))],
            AccountRef::Member(id) => vec![
                ("method", Param::from("sub_customer")),
                ("sub_customer_id", Param::Str(id.clone())),
            ],
        }
    }
}

struct Unit {
    spec: &'static DatasetSpec,
    cycle: BillCycle,
    account: AccountRef,
}

impl Unit {
    fn key(&self) -> String {
        format!("{}/{}/{}", self.spec.name, self.cycle, self.account.key())
    }

    /// The report of this unit before it ran: "failed" until it proves otherwise.
    fn blank_report(&self) -> UnitReport {
        UnitReport::failed(
            self.spec.name.to_string(),
            self.cycle.to_string(),
            self.account.key().to_string(),
            self.spec.money_columns.first().copied(),
        )
    }

    /// What the dataset's queries depend on for this unit.
    fn query_ctx(&self, job: &Job) -> QueryCtx {
        QueryCtx {
            cycle: self.cycle,
            statistic_type: job.statistic_type,
        }
    }
}

/// What every unit task shares.
struct Ctx {
    job: Job,
    client: Arc<BssClient>,
    units_done: std::sync::atomic::AtomicUsize,
    rows_done: std::sync::atomic::AtomicU64,
    layout: Layout,
    state: StateStore,
    manifests: Mutex<HashMap<&'static str, Manifest>>,
    run_id: String,
}

/// Lists the enterprise's member ids (fact sheet #7), each checked.
pub async fn list_members(client: &BssClient, job: &Job) -> Result<Vec<String>, RunError> {
    let budget = client.unit_budget();
    let pager = Pager::new(client, &budget, job.page_concurrency, job.max_pages);
    let mut ids = Vec::new();
    let r = pager
        .page_through(Api::SubCustomers, &Vec::new(), Api::SubCustomers.max_limit(), |page| {
            for rec in page.records {
                #[derive(serde::Deserialize)]
                struct Member {
                    id: String,
                }
                let m: Member = serde_json::from_str(rec.get()).map_err(|e| format!("member record: {e}"))?;
                ids.push(m.id);
            }
            Ok::<(), String>(())
        })
        .await;
    match r {
        Ok(_) => {
            check_members(&ids, "the enterprise member listing")?;
            Ok(ids)
        }
        Err(PagingError::Source(e)) => Err(RunError::Members(e)),
        Err(e) => Err(RunError::Members(SourceError::Exhausted {
            api: Api::SubCustomers.name(),
            attempts: 1,
            last: e.to_string(),
        })),
    }
}

/// The accounts a run covers, with members listed once.
async fn resolve_accounts(job: &Job, client: &BssClient) -> Result<Vec<AccountRef>, RunError> {
    let mut accounts = match &job.accounts {
        Accounts::Own => vec![AccountRef::Own],
        Accounts::Members(ids) => {
            check_members(ids, "--accounts")?;
            ids.iter().cloned().map(AccountRef::Member).collect()
        }
        Accounts::All => {
            let mut v = vec![AccountRef::Own];
            v.extend(list_members(client, job).await?.into_iter().map(AccountRef::Member));
            v
        }
        Accounts::Auto => {
            let mut v = vec![AccountRef::Own];
            match list_members(client, job).await {
                Ok(ids) => v.extend(ids.into_iter().map(AccountRef::Member)),
                Err(RunError::Members(e)) if !e.is_fatal() => {
                    tracing::info!("no enterprise members listed ({e}); extracting the caller's own account only")
                }
                Err(e) => return Err(e),
            }
            v
        }
    };
    let mut seen = std::collections::HashSet::new();
    accounts.retain(|a| seen.insert(a.clone()));
    Ok(accounts)
}

/// Runs `job`. Units run as tasks of their own, so parsing and writing use
/// every core while requests wait on the network.
pub async fn run(job: &Job, client: &Arc<BssClient>) -> Result<RunReport, RunError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let layout = Layout::new(&job.out);
    let _lock = OutputLock::acquire(&layout.meta_dir())?;
    // Staging files of a killed run are garbage: their units were not published.
    let _ = std::fs::remove_dir_all(layout.staging_dir());

    let mut manifests = HashMap::new();
    for spec in &job.datasets {
        manifests.insert(
            spec.name,
            Manifest::load(&layout.manifest_path(spec.name), spec.name, spec.version)?,
        );
    }
    let snapshot_cycle = BillCycle::containing(Utc::now());

    let accounts = resolve_accounts(job, client).await?;
    for spec in &job.datasets {
        if let Some(sidecar) = spec.sidecar {
            let (name, text) = sidecar(spec);
            crate::sink::atomic_write(&layout.dataset_dir(spec.name).join(name), text.as_bytes())?;
        }
    }
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
        for spec in job.datasets.iter().filter(|d| !d.member_scoped) {
            tracing::warn!(
                dataset = spec.name,
                "not extracted: it has no member view, and --accounts lists members only"
            );
        }
    }

    let mut units = Vec::new();
    for spec in &job.datasets {
        for cycle in &dataset_cycles(job, spec, &manifests[spec.name], snapshot_cycle) {
            for account in &accounts {
                if !spec.member_scoped && *account != AccountRef::Own {
                    continue;
                }
                units.push(Unit {
                    spec,
                    cycle: *cycle,
                    account: account.clone(),
                });
            }
        }
    }

    let mut fp_parts = vec![
        job.command.clone(),
        job.endpoint.clone(),
        format!("{:?}", job.accounts),
        format!(
            "statistic_type={} force={} grace={}",
            job.statistic_type, job.force, job.grace
        ),
    ];
    fp_parts.extend(units.iter().map(Unit::key));
    let new_run_id = uuid::Uuid::now_v7().to_string();
    let state = StateStore::begin(&layout.meta_dir(), &fingerprint(&fp_parts), &new_run_id)?;
    let resumed = state.resumed;
    if resumed {
        tracing::info!(
            done = state.done_count(),
            total = units.len(),
            "resuming the interrupted run {}",
            state.run_id()
        );
    }
    let run_id = state.run_id();
    let ctx = Arc::new(Ctx {
        job: job.clone(),
        client: client.clone(),
        units_done: std::sync::atomic::AtomicUsize::new(0),
        rows_done: std::sync::atomic::AtomicU64::new(0),
        layout,
        state,
        manifests: Mutex::new(manifests),
        run_id: run_id.clone(),
    });
    let total = units.len();
    let quota: u32 = {
        let mut apis: Vec<Api> = job.datasets.iter().map(|d| d.api).collect();
        apis.sort();
        apis.dedup();
        apis.iter().map(|a| client.limits().configured(*a)).sum()
    };
    let ticker = async {
        if !job.progress {
            return std::future::pending::<()>().await;
        }
        let mut last = client.stats.snapshot().requests;
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let now = client.stats.snapshot().requests;
            let done = ctx.units_done.load(std::sync::atomic::Ordering::Relaxed);
            let eta = if done == 0 {
                "?".to_string()
            } else {
                format!(
                    "{:.0}s",
                    clock.elapsed().as_secs_f64() / done as f64 * (total - done) as f64
                )
            };
            eprint!(
                "\r\x1b[2Kunits {done}/{total} · rows {} · {} req/s (quota {quota}/s) · ETA {eta}",
                ctx.rows_done.load(std::sync::atomic::Ordering::Relaxed),
                now - last
            );
            last = now;
        }
    };
    // Every unit ends by the run deadline on its own (those not started by then
    // send nothing), so the run always ends and reports every unit.
    let run_deadline = Deadline {
        at: tokio::time::Instant::now() + job.deadline,
        what: format!("the run deadline of {}", humantime(job.deadline)),
    };
    let blanks: Vec<UnitReport> = units.iter().map(Unit::blank_report).collect();
    let work = futures::stream::iter(units.into_iter().enumerate())
        .map(|(i, u)| {
            let ctx = ctx.clone();
            let run_deadline = run_deadline.clone();
            let task = tokio::spawn(async move {
                let unit_deadline = tokio::time::Instant::now() + ctx.job.unit_deadline;
                let deadline = if unit_deadline < run_deadline.at {
                    Deadline {
                        at: unit_deadline,
                        what: format!("its deadline of {}", humantime(ctx.job.unit_deadline)),
                    }
                } else {
                    run_deadline
                };
                let r = run_unit(&ctx, &u, &deadline).await;
                ctx.rows_done.fetch_add(r.rows, std::sync::atomic::Ordering::Relaxed);
                let n = ctx.units_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                log_unit(&r, n, total);
                r
            });
            async move { (i, task.await) }
        })
        .buffer_unordered(job.unit_concurrency.max(1))
        .collect::<Vec<_>>();
    let reports: Vec<UnitReport> = tokio::select! {
        r = work => r.into_iter().map(|(i, joined)| joined.unwrap_or_else(|e| panicked(&blanks[i], e))).collect(),
        () = ticker => unreachable!("the ticker never ends"),
    };
    if job.progress {
        eprint!("\r\x1b[2K");
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
    if failures.is_empty() {
        ctx.state.complete()?;
    }
    let restatements = ctx
        .manifests
        .lock()
        .expect("manifest lock")
        .values()
        .flat_map(|m| m.partitions.values())
        .flat_map(|p| &p.restatements)
        .filter(|r| r.run_id == run_id)
        .count();
    let finished_at = Utc::now();
    Ok(RunReport {
        run_id,
        command: job.command.clone(),
        resumed,
        out: job.out.display().to_string(),
        started_at,
        finished_at,
        duration_seconds: clock.elapsed().as_secs_f64(),
        success: failures.is_empty(),
        units_total: reports.len(),
        units_failed: failures.len(),
        rows: reports.iter().map(|r| r.rows).sum(),
        pages: reports.iter().map(|r| r.pages).sum(),
        requests: client.stats.snapshot(),
        restatements,
        accounts: accounts.iter().map(|a| a.key().to_string()).collect(),
        failures,
        units: reports,
    })
}

/// A unit whose task panicked is a failed unit, not a dead run.
fn panicked(blank: &UnitReport, e: tokio::task::JoinError) -> UnitReport {
    let mut r = blank.clone();
    r.status = UnitStatus::Failed;
    r.error = Some(format!("internal error: the unit's task failed ({e})"));
    r
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

/// The cycles of one dataset: those asked for, plus (nightly) every partition
/// of that dataset still provisional; a snapshot dataset has only the current one.
fn dataset_cycles(job: &Job, spec: &DatasetSpec, manifest: &Manifest, now: BillCycle) -> Vec<BillCycle> {
    if spec.snapshot {
        return vec![now];
    }
    let mut cycles: Vec<BillCycle> = job.cycles.clone();
    if job.mode == Mode::Nightly {
        cycles.extend(
            manifest
                .provisional_cycles()
                .filter_map(|c| c.parse::<BillCycle>().ok()),
        );
    }
    cycles.sort();
    cycles.dedup();
    cycles
}

/// Identifies what was asked of the API for a unit (statistic_type, windows…).
fn query_digest(spec: &DatasetSpec, qctx: &QueryCtx) -> String {
    let text = format!("{:?}", (spec.queries)(qctx));
    crate::source::signer::sha256_hex(text.as_bytes())[..16].to_string()
}

/// When a unit must stop, and what to call that moment in its error.
#[derive(Clone)]
struct Deadline {
    at: tokio::time::Instant,
    what: String,
}

async fn run_unit(ctx: &Ctx, unit: &Unit, deadline: &Deadline) -> UnitReport {
    let start = Instant::now();
    let mut report = unit.blank_report();
    if tokio::time::Instant::now() >= deadline.at {
        report.error = Some(format!(
            "not started: {} passed; the next run resumes it",
            deadline.what
        ));
        return report;
    }
    let cycle_key = unit.cycle.to_string();
    let existing = ctx
        .manifests
        .lock()
        .expect("manifest lock")
        .get(unit.spec.name)
        .and_then(|m| m.file(&cycle_key, unit.account.key()).cloned());
    if ctx.state.is_done(&unit.key()) {
        report.status = UnitStatus::AlreadyDone;
        if let Some(entry) = existing {
            report.finality = Some(entry.finality);
            report.rows = entry.rows;
            report.money_totals = entry.money_totals;
        }
        return report;
    }
    let qctx = unit.query_ctx(&ctx.job);
    if let Some(entry) = &existing
        && entry.finality == Finality::Final
        && !ctx.job.force
        && entry.schema_version == unit.spec.version
        && entry.query_digest == query_digest(unit.spec, &qctx)
        && ctx.layout.dataset_dir(unit.spec.name).join(&entry.path).exists()
    {
        report.status = UnitStatus::SkippedFinal;
        report.finality = Some(Finality::Final);
        report.rows = entry.rows;
        report.money_totals = entry.money_totals.clone();
        return report;
    }
    let budget = ctx.client.unit_budget();
    loop {
        let attempt = tokio::time::timeout_at(deadline.at, extract(ctx, unit, &budget, &mut report));
        let outcome = attempt
            .await
            .unwrap_or_else(|_| Err(UnitError::Deadline(deadline.what.clone())));
        match outcome {
            Ok(()) => break,
            Err(UnitError::Drift(why)) if report.restarts < ctx.job.max_restarts => {
                report.restarts += 1;
                tracing::warn!(unit = unit.key(), "restarting: {why}");
            }
            Err(e) => {
                report.status = UnitStatus::Failed;
                report.error = Some(e.to_string());
                break;
            }
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    report
}

#[derive(Debug, thiserror::Error)]
enum UnitError {
    #[error("{0}")]
    Source(SourceError),
    #[error("data kept changing while paging: {0}")]
    Drift(String),
    #[error("{0}")]
    TooManyPages(String),
    /// A row the model refuses (a value that does not fit its column…).
    #[error("offset {offset}: {source}")]
    Data {
        offset: u64,
        source: crate::model::ModelError,
    },
    /// A row a derived dataset cannot build.
    #[error("offset {offset}: {reason}")]
    Transform { offset: u64, reason: String },
    #[error("{0}")]
    FanOut(String),
    #[error("building the last record batch: {0}")]
    Batch(crate::model::ModelError),
    #[error("not finished: {0} passed; the next run resumes it")]
    Deadline(String),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<PagingError<UnitError>> for UnitError {
    fn from(e: PagingError<UnitError>) -> Self {
        match e {
            PagingError::Source(s) => UnitError::Source(s),
            PagingError::Drift(d) => UnitError::Drift(d),
            e @ PagingError::TooManyPages { .. } => UnitError::TooManyPages(e.to_string()),
            PagingError::Consumer(c) => c,
        }
    }
}

impl UnitError {
    /// A repeated key means overlapping pages: the data moved, so page again.
    fn data(offset: u64, source: crate::model::ModelError) -> Self {
        match source {
            crate::model::ModelError::Duplicate { .. } => UnitError::Drift(format!("offset {offset}: {source}")),
            source => UnitError::Data { offset, source },
        }
    }
}

/// Rows accumulated before a record batch is cut.
const BATCH_ROWS: usize = 8192;

/// The queries of a unit, with fan-out resolved: each fan-out base query is
/// listed first, and one query per listed id follows.
async fn unit_queries(ctx: &Ctx, unit: &Unit, pager: &Pager<'_>) -> Result<Vec<Params>, UnitError> {
    let spec = unit.spec;
    let qctx = unit.query_ctx(&ctx.job);
    let mut queries = (spec.queries)(&qctx);
    if spec.member_scoped {
        for q in &mut queries {
            q.extend(unit.account.params());
        }
    }
    let Some(fan) = spec.fanout else { return Ok(queries) };
    let mut expanded = Vec::new();
    for base in queries {
        let mut ids: Vec<String> = Vec::new();
        pager
            .page_through(fan.api, &base, fan.api.max_limit(), |page| {
                for rec in &page.records {
                    let row: HashMap<String, serde_json::Value> =
                        serde_json::from_str(rec.get()).map_err(|e| UnitError::FanOut(format!("{}: {e}", fan.api)))?;
                    match row.get(fan.id_key) {
                        Some(serde_json::Value::String(id)) if !id.is_empty() => ids.push(id.clone()),
                        _ => {
                            return Err(UnitError::FanOut(format!("{}: a row without {}", fan.api, fan.id_key)));
                        }
                    }
                }
                Ok(())
            })
            .await?;
        for id in ids {
            let mut q = base.clone();
            q.push((fan.param, Param::Str(id)));
            expanded.push(q);
        }
    }
    Ok(expanded)
}

/// Pages every query of a unit into the normaliser and the staging file.
async fn fetch_into(
    ctx: &Ctx,
    unit: &Unit,
    pager: &Pager<'_>,
    norm: &mut Normalizer,
    writer: &mut StagedWriter,
    pages: &mut u64,
) -> Result<(), UnitError> {
    let spec = unit.spec;
    for params in unit_queries(ctx, unit, pager).await? {
        norm.set_params(
            params
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_query_value()))
                .collect(),
        );
        let stats = pager
            .page_through(spec.api, &params, spec.page_size(), |page| {
                let tctx = TransformCtx {
                    cycle: unit.cycle,
                    currency: page.currency.as_deref(),
                    payer: ctx.client.domain_id(),
                };
                let offset = page.offset;
                for rec in &page.records {
                    match spec.transform {
                        Some(t) => {
                            let row = t(rec, &tctx).map_err(|reason| UnitError::Transform { offset, reason })?;
                            norm.push(&row)
                        }
                        None => norm.push(rec),
                    }
                    .map_err(|e| UnitError::data(offset, e))?;
                }
                if norm.pending() >= BATCH_ROWS {
                    let batch = norm.take_batch().map_err(|e| UnitError::data(offset, e))?;
                    writer.write(&batch)?;
                }
                Ok(())
            })
            .await?;
        *pages += stats.pages;
    }
    Ok(())
}

/// Extracts one unit into a staging file and publishes it (or leaves the
/// published file untouched when the served content did not change).
async fn extract(ctx: &Ctx, unit: &Unit, budget: &WaitBudget, report: &mut UnitReport) -> Result<(), UnitError> {
    let spec = unit.spec;
    let schema = spec.schema();
    let extracted_at = Utc::now();
    let lineage = Lineage {
        account_id: match &unit.account {
            AccountRef::Own => ctx.client.domain_id().unwrap_or("self").to_string(),
            AccountRef::Member(id) => id.clone(),
        },
        run_id: ctx.run_id.clone(),
        extracted_at_micros: extracted_at.timestamp_micros(),
    };
    let mut norm =
        Normalizer::new(schema.clone(), spec.columns, spec.money_columns, lineage).with_unique_key(spec.key_columns);
    // Staging names carry no text from the API or the command line.
    let staging =
        ctx.layout
            .staging_dir()
            .join(format!("{}-{}-{}.parquet", spec.name, unit.cycle, uuid::Uuid::new_v4()));
    let mut writer = StagedWriter::create(staging, schema)?;
    let mut pages = 0;
    let pager = Pager::new(&ctx.client, budget, ctx.job.page_concurrency, ctx.job.max_pages);
    // On any error (or a deadline dropping this future) the writer's drop
    // removes the staging file: nothing of the unit is published.
    fetch_into(ctx, unit, &pager, &mut norm, &mut writer, &mut pages).await?;
    let batch = norm.take_batch().map_err(UnitError::Batch)?;
    writer.write(&batch)?;
    let staged = writer.finish()?;
    if !norm.unknown_keys.is_empty() {
        tracing::warn!(
            dataset = spec.name,
            "the API returned fields this version does not know (kept out of the output): {:?}",
            norm.unknown_keys
        );
    }

    let qctx = unit.query_ctx(&ctx.job);
    let final_at = unit.cycle.final_at(ctx.job.grace);
    let finality = if extracted_at >= final_at {
        Finality::Final
    } else {
        Finality::Provisional
    };
    let rel = Layout::file_rel(unit.cycle, unit.account.key());
    let dest = ctx.layout.dataset_dir(spec.name).join(&rel);
    let digest = norm.content_digest();
    let cycle_key = unit.cycle.to_string();
    let money_totals: BTreeMap<String, String> = norm
        .money_totals()
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();

    let mut manifests = ctx.manifests.lock().expect("manifest lock");
    let manifest = manifests.get_mut(spec.name).expect("manifest loaded for every dataset");
    let unchanged = manifest
        .file(&cycle_key, unit.account.key())
        .is_some_and(|e| e.content_digest == digest && e.schema_version == spec.version && dest.exists());
    let entry = if unchanged {
        // The file stays as it was, lineage included; only its finality may advance.
        let _ = std::fs::remove_file(&staged.path);
        let mut e = manifest.file(&cycle_key, unit.account.key()).expect("checked").clone();
        e.finality = finality;
        e.query_digest = query_digest(spec, &qctx);
        e
    } else {
        publish(&staged.path, &dest)?;
        FileEntry {
            path: rel,
            rows: staged.rows,
            bytes: staged.bytes,
            sha256: staged.sha256,
            content_digest: digest,
            money_totals: money_totals.clone(),
            schema_version: spec.version,
            query_digest: query_digest(spec, &qctx),
            finality,
            extracted_at,
            run_id: ctx.run_id.clone(),
        }
    };
    let rows = entry.rows;
    if let Some(r) = manifest.record(&cycle_key, unit.account.key(), final_at, entry) {
        tracing::warn!(
            dataset = spec.name,
            cycle = cycle_key,
            "final partition restated: {} rows before, {} now",
            r.previous_rows,
            r.new_rows
        );
    }
    manifest.save(&ctx.layout.manifest_path(spec.name), Utc::now())?;
    drop(manifests);
    ctx.state.mark_done(&unit.key())?;

    report.status = if unchanged {
        UnitStatus::Unchanged
    } else {
        UnitStatus::Published
    };
    report.finality = Some(finality);
    report.rows = rows;
    report.pages = pages;
    report.money_totals = money_totals;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_unit_keeps_its_name_in_the_report() {
        let blank = UnitReport::failed("bill_summary".into(), "2026-10".into(), "m1".into(), None);
        let joined = tokio::spawn(async { panic!("boom") }).await.unwrap_err();
        let r = panicked(&blank, joined);
        assert_eq!(
            (r.dataset.as_str(), r.bill_cycle.as_str(), r.account.as_str()),
            ("bill_summary", "2026-10", "m1")
        );
        assert_eq!(r.status, UnitStatus::Failed);
        assert!(r.error.unwrap().contains("internal error"));
    }

    #[test]
    fn account_ids_are_checked_where_they_enter() {
        for ok in ["0123456789abcdef0123456789abcdef", "m-1", "M_2", &"a".repeat(64)] {
            assert!(check_account_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a.b",
            "a b",
            "self",
            "SELF",
            "é",
            &"a".repeat(65),
            "a/b",
            "a\0b",
        ] {
            assert!(check_account_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_members(&["a".into(), "b".into()], "x").is_ok());
        let e = check_members(&["Ab".into(), "aB".into()], "x").unwrap_err().to_string();
        assert!(e.contains("differ only in case"), "{e}");
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
