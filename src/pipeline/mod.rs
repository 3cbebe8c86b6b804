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
use crate::source::client::BssClient;
use crate::source::datasets::{DatasetSpec, QueryCtx, TransformCtx};
use crate::source::error::SourceError;
use crate::source::paging::{PagingError, page_through};
use crate::state::{OutputLock, StateError, StateStore, fingerprint};
use report::{RunReport, UnitReport, UnitStatus};

/// Which accounts' bills to extract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accounts {
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

/// Lists the enterprise's member ids (fact sheet #7).
pub async fn list_members(client: &BssClient, concurrency: usize) -> Result<Vec<String>, SourceError> {
    let mut ids = Vec::new();
    let r = page_through(
        client,
        Api::SubCustomers,
        &Vec::new(),
        Api::SubCustomers.max_limit(),
        concurrency,
        |page| {
            for rec in page.records {
                #[derive(serde::Deserialize)]
                struct Member {
                    id: String,
                }
                let m: Member = serde_json::from_str(rec.get()).map_err(|e| format!("member record: {e}"))?;
                ids.push(m.id);
            }
            Ok(())
        },
    )
    .await;
    match r {
        Ok(_) => Ok(ids),
        Err(PagingError::Source(e)) => Err(e),
        Err(e) => Err(SourceError::Exhausted {
            api: Api::SubCustomers.name(),
            attempts: 1,
            last: e.to_string(),
        }),
    }
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
    for spec in &job.datasets {
        if let Some(sidecar) = spec.sidecar {
            let (name, text) = sidecar(spec);
            crate::sink::atomic_write(&layout.dataset_dir(spec.name).join(name), text.as_bytes())?;
        }
    }
    let snapshot_cycle = BillCycle::containing(Utc::now());

    let mut accounts = match &job.accounts {
        Accounts::Own => vec![AccountRef::Own],
        Accounts::Members(ids) => ids.iter().cloned().map(AccountRef::Member).collect(),
        Accounts::All => {
            let mut v = vec![AccountRef::Own];
            let ids = list_members(client, job.page_concurrency)
                .await
                .map_err(RunError::Members)?;
            v.extend(ids.into_iter().map(AccountRef::Member));
            v
        }
    };
    let mut seen = std::collections::HashSet::new();
    accounts.retain(|a| seen.insert(a.clone()));
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
    let work = futures::stream::iter(units)
        .map(|u| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let r = run_unit(&ctx, &u).await;
                ctx.rows_done.fetch_add(r.rows, std::sync::atomic::Ordering::Relaxed);
                let n = ctx.units_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                log_unit(&r, n, total);
                r
            })
        })
        .buffer_unordered(job.unit_concurrency.max(1))
        .collect::<Vec<_>>();
    let reports = tokio::select! {
        r = work => r.into_iter().map(|joined| joined.unwrap_or_else(panicked)).collect::<Vec<_>>(),
        _ = ticker => unreachable!("the ticker never ends"),
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
        failures,
        units: reports,
    })
}

/// A unit whose task panicked is a failed unit, not a dead run.
fn panicked(e: tokio::task::JoinError) -> UnitReport {
    let mut r = UnitReport::failed(String::new(), String::new(), String::new(), None);
    r.error = Some(format!("internal error: a unit task failed ({e})"));
    r
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

async fn run_unit(ctx: &Ctx, unit: &Unit) -> UnitReport {
    let start = Instant::now();
    let mut report = UnitReport::failed(
        unit.spec.name.to_string(),
        unit.cycle.to_string(),
        unit.account.key().to_string(),
        unit.spec.money_columns.first().copied(),
    );
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
    loop {
        match extract(ctx, unit, &mut report).await {
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
    Data(String),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<PagingError> for UnitError {
    fn from(e: PagingError) -> Self {
        match e {
            PagingError::Source(s) => UnitError::Source(s),
            PagingError::Drift(d) => UnitError::Drift(d),
            PagingError::Consumer(c) => UnitError::Data(c),
        }
    }
}

/// Rows accumulated before a record batch is cut.
const BATCH_ROWS: usize = 8192;

/// The queries of a unit, with fan-out resolved: each fan-out base query is
/// listed first, and one query per listed id follows.
async fn unit_queries(ctx: &Ctx, unit: &Unit) -> Result<Vec<Params>, UnitError> {
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
        page_through(
            &ctx.client,
            fan.api,
            &base,
            fan.api.max_limit(),
            ctx.job.page_concurrency,
            |page| {
                for rec in &page.records {
                    let row: HashMap<String, serde_json::Value> =
                        serde_json::from_str(rec.get()).map_err(|e| format!("{}: {e}", fan.api))?;
                    match row.get(fan.id_key) {
                        Some(serde_json::Value::String(id)) if !id.is_empty() => ids.push(id.clone()),
                        _ => return Err(format!("{}: a row without {}", fan.api, fan.id_key)),
                    }
                }
                Ok(())
            },
        )
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
    norm: &mut Normalizer,
    writer: &mut StagedWriter,
    pages: &mut u64,
) -> Result<(), UnitError> {
    let spec = unit.spec;
    for params in unit_queries(ctx, unit).await? {
        norm.set_params(
            params
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_query_value()))
                .collect(),
        );
        let stats = page_through(
            &ctx.client,
            spec.api,
            &params,
            spec.page_size(),
            ctx.job.page_concurrency,
            |page| {
                let tctx = TransformCtx {
                    cycle: unit.cycle,
                    currency: page.currency.as_deref(),
                    payer: ctx.client.domain_id(),
                };
                for rec in &page.records {
                    let at = |e: String| format!("offset {}: {e}", page.offset);
                    match spec.transform {
                        Some(t) => norm.push(&t(rec, &tctx).map_err(at)?),
                        None => norm.push(rec),
                    }
                    .map_err(|e| at(e.to_string()))?;
                }
                if norm.pending() >= BATCH_ROWS {
                    let batch = norm.take_batch().map_err(|e| e.to_string())?;
                    writer.write(&batch).map_err(|e| e.to_string())?;
                }
                Ok(())
            },
        )
        .await?;
        *pages += stats.pages;
    }
    Ok(())
}

/// Extracts one unit into a staging file and publishes it (or leaves the
/// published file untouched when the served content did not change).
async fn extract(ctx: &Ctx, unit: &Unit, report: &mut UnitReport) -> Result<(), UnitError> {
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
    let mut norm = Normalizer::new(schema.clone(), spec.columns, spec.money_columns, lineage);
    let staging = ctx.layout.staging_dir().join(format!(
        "{}-{}-{}-{}.parquet",
        spec.name,
        unit.cycle,
        unit.account.key(),
        uuid::Uuid::new_v4()
    ));
    let mut writer = StagedWriter::create(staging, schema)?;
    let mut pages = 0;
    let result = fetch_into(ctx, unit, &mut norm, &mut writer, &mut pages).await;
    if let Err(e) = result {
        writer.abandon();
        return Err(e);
    }
    let batch = norm.take_batch().map_err(|e| UnitError::Data(e.to_string()))?;
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
