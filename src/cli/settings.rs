//! Settings, once: every default in one place (`ClientConfig`, `RetryPolicy`,
//! the `pipeline::DEFAULT_*` constants, the dataset options' declarations),
//! merged from the pipeline file and the flags (flags win; the environment
//! supplies credentials and `HCBILL_ENDPOINT`), then split into what to
//! extract (`Job`) and how to reach it (`Source`, `ClientConfig`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use super::args::RunArgs;
use super::{Failure, usage};
use crate::cycle::BillCycle;
use crate::pipeline::config::{AccountsSetting, PipelineFile, SimulatorSection};
use crate::pipeline::{self, Accounts, Job, Mode};
use crate::sim::SimConfig;
use crate::sink::output::{Location, LockMode, StoreConfig};
use crate::source::api::Api;
use crate::source::client::{BssClient, ClientConfig, DEFAULT_ENDPOINT, RetryPolicy};
use crate::source::credentials::Credentials;
use crate::source::datasets;

/// Everything a run needs, validated.
pub struct Plan {
    pub job: Job,
    pub source: Source,
    pub client: ClientConfig,
    pub report: Option<PathBuf>,
    /// Verify the touched cycles after the run.
    pub verify: bool,
    /// Prometheus metrics written at the end of the run.
    pub metrics_file: Option<PathBuf>,
}

pub enum Source {
    Endpoint(Credentials),
    Simulator(SimConfig),
}

/// `--set <dataset>.<option>=<value>` flags as (dataset, option, value).
pub fn parse_sets(sets: &[String]) -> Result<Vec<(String, String, String)>, String> {
    sets.iter()
        .map(|set| {
            let bad = || format!("--set {set:?}: expected <dataset>.<option>=<value>");
            let (key, value) = set.split_once('=').ok_or_else(bad)?;
            let (dataset, option) = key.split_once('.').ok_or_else(bad)?;
            Ok((dataset.trim().into(), option.trim().into(), value.trim().into()))
        })
        .collect()
}

/// Merges the pipeline file and the flags (flags win) and validates it all.
pub fn resolve(file: PipelineFile, a: RunArgs, forced_mode: Option<Mode>, command: &str) -> Result<Plan, Failure> {
    let mode = match forced_mode {
        Some(m) => m,
        None => match file.mode.as_deref() {
            Some("nightly") => Mode::Nightly,
            _ => Mode::Backfill,
        },
    };
    let names = a
        .datasets
        .clone()
        .or_else(|| file.dataset_names().map(|v| v.join(",")))
        .unwrap_or_else(|| "all".into());
    let specs = datasets::parse_list(&names).map_err(usage)?;
    let now = Utc::now();
    let current = BillCycle::containing(now);
    let cycles: Vec<BillCycle> = match mode {
        Mode::Nightly => vec![current.pred(), current],
        Mode::Backfill => {
            let from = a
                .from
                .or(file.from)
                .ok_or_else(|| usage("--from YYYY-MM is required for a backfill"))?;
            let to = a.to.or(file.to).unwrap_or(current);
            if from > to {
                return Err(usage(format!("--from {from} is after --to {to}")));
            }
            if to > current {
                return Err(usage(format!(
                    "--to {to} is in the future (the current billing cycle is {current}, UTC+8)"
                )));
            }
            BillCycle::range(from, to).collect()
        }
    };
    // Dataset options: the pipeline file's, then the flags' (later settings win).
    let mut given = file.dataset_options();
    if let Some(t) = a.statistic_type {
        given.push(("resource_bill_details".into(), "statistic_type".into(), t.to_string()));
    }
    given.extend(parse_sets(&a.set).map_err(usage)?);
    let options = datasets::resolve_options(&given).map_err(usage)?;
    // An option may select another shape of a dataset (focus.version).
    let specs: Vec<_> = specs
        .into_iter()
        .map(|s| match options.get(s.name) {
            Some(o) => s.edition(o),
            None => s,
        })
        .collect();
    let limits = &file.limits;
    let accounts = match a
        .accounts
        .as_deref()
        .map(parse_accounts)
        .or(file.accounts.clone().map(Ok))
    {
        None => Accounts::Auto,
        Some(r) => match r.map_err(usage)? {
            AccountsSetting::Keyword(k) if k == "all" => Accounts::All,
            AccountsSetting::Keyword(k) if k == "self" => Accounts::Own,
            AccountsSetting::Keyword(_) => Accounts::Auto,
            AccountsSetting::Members(ids) => Accounts::Members(ids),
        },
    };
    let deadline = match a.deadline.as_deref().or(file.deadline.as_deref()) {
        Some(d) => pipeline::parse_duration(d).map_err(|e| usage(format!("--deadline: {e}")))?,
        None => pipeline::DEFAULT_DEADLINE,
    };
    let unit_deadline = match limits.unit_deadline.as_deref() {
        Some(d) => pipeline::parse_duration(d).map_err(|e| usage(format!("limits.unit_deadline: {e}")))?,
        None => pipeline::DEFAULT_UNIT_DEADLINE,
    };
    let out: Location = a
        .out
        .clone()
        .or(file.out.clone())
        .unwrap_or_else(|| "out".to_string())
        .parse()
        .map_err(usage)?;
    if let Location::Local(dir) = &out
        && dir.exists()
        && !dir.is_dir()
    {
        return Err(usage(format!("--out {} exists and is not a directory", dir.display())));
    }
    // OBS: its own keys if given, else the BSS client's (the same Huawei account).
    let obs_keys = obs_keys_from_env();
    let lock = match a.lock.as_deref() {
        Some(l) => l.parse().map_err(usage)?,
        None => LockMode::Lease,
    };
    let lease_ttl = lease_ttl_from_env().map_err(usage)?;
    let store_config = |bss: Option<&Credentials>| StoreConfig {
        lock,
        lease_ttl,
        obs_endpoint: a.obs_endpoint.clone(),
        obs_region: a.obs_region.clone(),
        obs_keys: obs_keys.clone().or_else(|| bss.map(keys_of)),
        for_reading: false,
    };
    let quotas: HashMap<Api, u32> = limits.quotas().map_err(usage)?;
    let endpoint_flag = a.endpoint.clone().or(file.source.endpoint.clone());
    let sim_section = if a.simulator || (endpoint_flag.is_none() && file.source.simulator.is_some()) {
        Some(file.source.simulator.clone().unwrap_or_default())
    } else {
        None
    };
    let (source, endpoint) = match sim_section {
        Some(s) => (Source::Simulator(sim_config(&s)?), "embedded-simulator".to_string()),
        None => {
            let creds = Credentials::from_env().map_err(usage)?;
            (
                Source::Endpoint(creds),
                endpoint_flag.unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            )
        }
    };
    // Defaults live in ClientConfig / RetryPolicy; the file only overrides.
    let defaults = ClientConfig::default();
    let retry = defaults.retry.clone();
    let client = ClientConfig {
        endpoint: endpoint.clone(),
        language: file.source.language.clone().unwrap_or(defaults.language.clone()),
        timeout: file.source.timeout_secs.map_or(defaults.timeout, Duration::from_secs),
        retry: RetryPolicy {
            max_attempts: limits.max_attempts.map_or(retry.max_attempts, |n| n.max(1)),
            base: limits.backoff_base_ms.map_or(retry.base, Duration::from_millis),
            cap: limits.backoff_cap_ms.map_or(retry.cap, Duration::from_millis),
            unit_wait: limits
                .retry_wait_secs
                .map_or(retry.unit_wait, |s| Duration::from_secs(s.clamp(1, 3600))),
            ..retry
        },
        quotas,
        ..defaults
    };
    if let Source::Endpoint(creds) = &source {
        // Validate the endpoint now, before anything is written.
        BssClient::new(creds.clone(), client.clone()).map_err(usage)?;
    }
    // Monthly-settlement customers' bills close on the 4th, a day after the others':
    // wait for them unless told otherwise.
    let grace_hours = a.grace_hours.or(file.grace_hours).unwrap_or(24);
    pipeline::check_grace_hours(grace_hours).map_err(|e| usage(format!("--grace-hours: {e}")))?;
    let store = store_config(match &source {
        Source::Endpoint(c) => Some(c),
        Source::Simulator(_) => None,
    });
    Ok(Plan {
        job: Job {
            command: command.to_string(),
            store,
            mode,
            datasets: specs,
            cycles,
            accounts,
            out,
            endpoint,
            force: a.force,
            grace: chrono::Duration::hours(grace_hours),
            unit_concurrency: limits.units.unwrap_or(4).max(1),
            page_concurrency: limits.pages.unwrap_or(pipeline::DEFAULT_PAGES).max(1),
            large_units: limits.large_units.unwrap_or(pipeline::DEFAULT_LARGE_UNITS).max(1),
            max_restarts: 5,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            deadline,
            unit_deadline,
            max_pages: limits.max_pages.unwrap_or(pipeline::DEFAULT_MAX_PAGES).max(1),
            options,
        },
        source,
        client,
        report: a.report,
        verify: a.verify,
        metrics_file: a.metrics_file.clone(),
    })
}

fn parse_accounts(s: &str) -> Result<AccountsSetting, String> {
    match s {
        "auto" | "self" | "all" => Ok(AccountsSetting::Keyword(s.to_string())),
        list => {
            let ids: Vec<String> = list
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect();
            if ids.is_empty() {
                return Err("--accounts must be auto, self, all, or a comma-separated list of member ids".into());
            }
            pipeline::check_members(&ids, "--accounts").map_err(|e| e.to_string())?;
            Ok(AccountsSetting::Members(ids))
        }
    }
}

fn sim_config(s: &SimulatorSection) -> Result<SimConfig, Failure> {
    // Fresh random credentials: the embedded simulator still verifies every signature.
    let mut cfg = SimConfig::new(
        &format!("EMBEDDED{}", uuid::Uuid::new_v4().simple()),
        &uuid::Uuid::new_v4().simple().to_string(),
    );
    if let Some(v) = s.seed {
        cfg.seed = v;
    }
    if let Some(v) = s.scale {
        if !(v > 0.0 && v <= 1000.0) {
            return Err(usage(format!("simulator scale must be in (0, 1000], not {v}")));
        }
        cfg.scale = v;
    }
    if let Some(v) = s.from {
        cfg.from = v;
    }
    if let Some(v) = s.to {
        cfg.to = v;
    }
    if let Some(v) = s.latency_ms {
        cfg.latency = Duration::from_millis(v);
    }
    if let Some(v) = s.members {
        cfg.members = v;
    }
    if let Some(v) = &s.currency {
        cfg.currency = sim_currency(v).map_err(usage)?;
    }
    Ok(cfg)
}

/// A currency the simulator answers in: the two the SDK models document.
pub fn sim_currency(v: &str) -> Result<String, String> {
    match v.trim() {
        c @ ("CNY" | "USD") => Ok(c.to_string()),
        other => Err(format!(
            "simulator currency must be CNY (China site) or USD (international site), not {other:?}"
        )),
    }
}

/// `--cycles`: `YYYY-MM`, a comma-separated list, or a range `YYYY-MM..YYYY-MM`.
pub fn parse_cycles(s: &str) -> Result<std::collections::BTreeSet<BillCycle>, String> {
    let mut out = std::collections::BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once("..") {
            Some((a, b)) => {
                let (a, b): (BillCycle, BillCycle) = (
                    a.trim().parse().map_err(|e| format!("--cycles {part}: {e}"))?,
                    b.trim().parse().map_err(|e| format!("--cycles {part}: {e}"))?,
                );
                if a > b {
                    return Err(format!("--cycles {part}: {a} is after {b}"));
                }
                out.extend(BillCycle::range(a, b));
            }
            None => {
                out.insert(part.parse().map_err(|e| format!("--cycles {part}: {e}"))?);
            }
        }
    }
    if out.is_empty() {
        return Err("--cycles names no cycle".into());
    }
    Ok(out)
}

/// OBS keys of their own (`HCBILL_OBS_AK`/`SK`/`SECURITY_TOKEN`), if set.
pub fn obs_keys_from_env() -> Option<(String, String, Option<String>)> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (env("HCBILL_OBS_AK"), env("HCBILL_OBS_SK")) {
        (Some(ak), Some(sk)) => Some((ak, sk, env("HCBILL_OBS_SECURITY_TOKEN"))),
        _ => None,
    }
}

/// `HCBILL_LEASE_SECONDS`: how long a bucket lease lives without renewal
/// (default 180). A dead run's lease blocks the next run this long.
pub fn lease_ttl_from_env() -> Result<std::time::Duration, String> {
    match std::env::var("HCBILL_LEASE_SECONDS") {
        Err(_) => Ok(crate::sink::location::DEFAULT_LEASE_TTL),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(s) if (5..=3600).contains(&s) => Ok(std::time::Duration::from_secs(s)),
            _ => Err(format!(
                "HCBILL_LEASE_SECONDS={v:?}: a number of seconds between 5 and 3600"
            )),
        },
    }
}

/// How `status`, `verify` and `report` reach a bucket: they only read.
pub fn reading_store(obs_endpoint: Option<String>, obs_region: Option<String>) -> StoreConfig {
    StoreConfig {
        obs_endpoint,
        obs_region,
        obs_keys: obs_keys_from_env().or_else(|| Credentials::from_env().ok().as_ref().map(keys_of)),
        for_reading: true,
        ..StoreConfig::default()
    }
}

/// The BSS client's keys, for OBS (the same Huawei account).
fn keys_of(c: &Credentials) -> (String, String, Option<String>) {
    (
        c.ak.clone(),
        c.sk.expose().to_string(),
        c.security_token.as_ref().map(|t| t.expose().to_string()),
    )
}
