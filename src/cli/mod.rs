//! Command line: `backfill`, `nightly`, `run PIPELINE.toml`, `sim`, `schema`.
//!
//! Every input is validated before anything is written; a bad input is one
//! line on stderr and exit code 2.

mod args;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::Parser;

pub use args::{Cli, Command, LogFormat, RunArgs, SimArgs};

use crate::cycle::BillCycle;
use crate::pipeline::config::{AccountsSetting, PipelineFile, SimulatorSection};
use crate::pipeline::{self, Accounts, Job, Mode};
use crate::sim::{self, SimConfig};
use crate::sink::atomic_write;
use crate::source::api::Api;
use crate::source::client::{BssClient, ClientConfig, DEFAULT_ENDPOINT, RetryPolicy};
use crate::source::credentials::{Credentials, Secret};
use crate::source::datasets;

/// Exit codes: 0 success, 1 a unit failed, 2 bad input, 3 credentials refused.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_AUTH: u8 = 3;

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

fn usage(msg: impl std::fmt::Display) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message: msg.to_string(),
    }
}

fn failed(msg: impl std::fmt::Display) -> Failure {
    Failure {
        code: EXIT_FAILED,
        message: msg.to_string(),
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("hcbill: {} (see --help)", first.trim_start_matches("error: "));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging(cli.log_format, cli.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hcbill: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match rt.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("hcbill: {}", f.message.lines().next().unwrap_or("error"));
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(format: LogFormat, verbose: bool) {
    let default = if verbose { "hcbill=debug" } else { "hcbill=info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HCBILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

pub async fn execute(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Sim(a) => run_sim(a).await,
        Command::Schema {
            dataset,
            format,
            location,
        } => {
            let specs = match dataset {
                Some(d) => datasets::parse_list(&d).map_err(usage)?,
                None => datasets::ALL.to_vec(),
            };
            for spec in specs {
                print!("{}", crate::model::contract::render(spec, format, &location));
            }
            Ok(())
        }
        Command::Backfill(a) => {
            let plan = plan(PipelineFile::default(), a, Some(Mode::Backfill), "backfill")?;
            execute_plan(plan).await
        }
        Command::Nightly(a) => {
            let plan = plan(PipelineFile::default(), a, Some(Mode::Nightly), "nightly")?;
            execute_plan(plan).await
        }
        Command::Run { pipeline, args } => {
            let file = PipelineFile::load(&pipeline).map_err(usage)?;
            let name = format!("run {}", pipeline.display());
            execute_plan(plan(file, args, None, &name)?).await
        }
    }
}

/// Everything a run needs, validated.
pub struct Plan {
    pub job: Job,
    pub source: Source,
    pub client: ClientConfig,
    pub report: Option<PathBuf>,
}

pub enum Source {
    Endpoint(Credentials),
    Simulator(SimConfig),
}

/// Merges the pipeline file and the flags (flags win) and validates it all.
pub fn plan(file: PipelineFile, a: RunArgs, forced_mode: Option<Mode>, command: &str) -> Result<Plan, Failure> {
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
    for set in &a.set {
        let (key, value) = set
            .split_once('=')
            .ok_or_else(|| usage(format!("--set {set:?}: expected <dataset>.<option>=<value>")))?;
        let (dataset, option) = key
            .split_once('.')
            .ok_or_else(|| usage(format!("--set {set:?}: expected <dataset>.<option>=<value>")))?;
        given.push((dataset.trim().into(), option.trim().into(), value.trim().into()));
    }
    let options = datasets::resolve_options(&given).map_err(usage)?;
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
    let out = a
        .out
        .clone()
        .or(file.out.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("out"));
    if out.exists() && !out.is_dir() {
        return Err(usage(format!("--out {} exists and is not a directory", out.display())));
    }
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
    let client = ClientConfig {
        endpoint: endpoint.clone(),
        language: file.source.language.clone().unwrap_or_else(|| "en_US".into()),
        timeout: Duration::from_secs(file.source.timeout_secs.unwrap_or(60)),
        retry: RetryPolicy {
            max_attempts: limits.max_attempts.unwrap_or(8).max(1),
            base: Duration::from_millis(limits.backoff_base_ms.unwrap_or(500)),
            cap: Duration::from_millis(limits.backoff_cap_ms.unwrap_or(30_000)),
            retry_after_cap: Duration::from_secs(60),
            unit_wait: Duration::from_secs(limits.retry_wait_secs.unwrap_or(300).clamp(1, 3600)),
        },
        quotas,
        ..ClientConfig::default()
    };
    if let Source::Endpoint(creds) = &source {
        // Validate the endpoint now, before anything is written.
        BssClient::new(creds.clone(), client.clone()).map_err(usage)?;
    }
    // Monthly-settlement customers' bills close on the 4th, a day after the others':
    // wait for them unless told otherwise.
    let grace_hours = a.grace_hours.or(file.grace_hours).unwrap_or(24);
    pipeline::check_grace_hours(grace_hours).map_err(|e| usage(format!("--grace-hours: {e}")))?;
    Ok(Plan {
        job: Job {
            command: command.to_string(),
            mode,
            datasets: specs,
            cycles,
            accounts,
            out,
            endpoint,
            force: a.force,
            grace: chrono::Duration::hours(grace_hours),
            unit_concurrency: limits.units.unwrap_or(4).max(1),
            page_concurrency: limits.pages.unwrap_or(8).max(1),
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
    Ok(cfg)
}

pub async fn execute_plan(plan: Plan) -> Result<(), Failure> {
    let Plan {
        job,
        source,
        mut client,
        report,
    } = plan;
    let (_sim, creds) = match source {
        Source::Endpoint(c) => (None, c),
        Source::Simulator(cfg) => {
            let creds = Credentials {
                ak: cfg.ak.clone(),
                sk: Secret::new(cfg.sk.clone()),
                domain_id: None,
                security_token: None,
            };
            let running = sim::start(cfg, SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|e| failed(format!("cannot start the embedded simulator: {e}")))?;
            tracing::info!("embedded simulator at {}", running.url());
            client.endpoint = running.url();
            (Some(running), creds)
        }
    };
    let client = std::sync::Arc::new(BssClient::new(creds, client).map_err(usage)?);
    let report_json = pipeline::run(&job, &client).await.map_err(|e| match &e {
        pipeline::RunError::State(crate::state::StateError::Locked(..)) => usage(&e),
        pipeline::RunError::Members(s) if s.is_fatal() => Failure {
            code: EXIT_AUTH,
            message: e.to_string(),
        },
        _ => failed(&e),
    })?;
    let text = serde_json::to_vec_pretty(&report_json).expect("report serialises");
    let layout = crate::sink::Layout::new(&job.out);
    let stamp = report_json.finished_at.format("%Y%m%dT%H%M%SZ");
    let saved = layout
        .reports_dir()
        .join(format!("{stamp}-{}.json", report_json.run_id));
    atomic_write(&saved, &text).map_err(failed)?;
    if let Some(p) = &report {
        atomic_write(p, &text).map_err(failed)?;
    }
    print!("{}", report_json.human());
    println!("report: {}", saved.display());
    if report_json.success {
        return Ok(());
    }
    let auth = client.halt.reason();
    Err(match auth {
        Some(why) => Failure {
            code: EXIT_AUTH,
            message: format!("run stopped: {why}"),
        },
        None => failed(format!(
            "{} of {} units failed; the next run resumes them ({})",
            report_json.units_failed,
            report_json.units_total,
            report_json.failures.first().cloned().unwrap_or_default()
        )),
    })
}

async fn run_sim(a: SimArgs) -> Result<(), Failure> {
    if !(a.scale > 0.0 && a.scale <= 1000.0) {
        return Err(usage(format!("--scale must be in (0, 1000], not {}", a.scale)));
    }
    if !(0.0..1.0).contains(&a.fault_rate) {
        return Err(usage("--fault-rate must be in [0, 1)"));
    }
    let sk = match (&a.sk, &a.sk_file) {
        (Some(sk), _) => {
            tracing::warn!(
                "--sk shows the secret key to every user of this machine (ps); prefer HUAWEICLOUD_SDK_SK or --sk-file"
            );
            Some(sk.clone())
        }
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| usage(format!("--sk-file {}: {e}", path.display())))?;
            let line = text.lines().next().unwrap_or("").trim().to_string();
            if line.is_empty() {
                return Err(usage(format!("--sk-file {} is empty", path.display())));
            }
            Some(line)
        }
        (None, None) => None,
    };
    let creds = match (a.ak.clone(), sk) {
        (Some(ak), Some(sk)) => (ak, sk),
        (None, None) => {
            let c = Credentials::from_env().map_err(|e| {
                usage(format!(
                    "the simulator needs the AK/SK it accepts: pass --ak/--sk or {e}"
                ))
            })?;
            (c.ak, c.sk.expose().to_string())
        }
        _ => return Err(usage("--ak and --sk (or --sk-file) go together")),
    };
    let mut cfg = SimConfig::new(&creds.0, &creds.1);
    cfg.seed = a.seed;
    cfg.scale = a.scale;
    if let Some(f) = a.from {
        cfg.from = f;
    }
    if let Some(t) = a.to {
        cfg.to = t;
    }
    if cfg.from > cfg.to {
        return Err(usage(format!("--from {} is after --to {}", cfg.from, cfg.to)));
    }
    cfg.members = a.members;
    cfg.latency = Duration::from_millis(a.latency_ms);
    cfg.rate_limit = a.rate_limit;
    cfg.fault_rate = a.fault_rate;
    cfg.drift = a.drift;
    cfg.denied_members = a.denied_members;
    let addr = SocketAddr::new(a.bind, a.port);
    let running = sim::start(cfg, addr)
        .await
        .map_err(|e| usage(format!("cannot listen on {addr}: {e}")))?;
    println!("{}", running.url());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tracing::info!(
        "simulating {} accounts, cycles {} to {}; Ctrl-C stops",
        running.state.ledger.accounts.len(),
        running.state.cfg.from,
        running.state.cfg.to
    );
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}
