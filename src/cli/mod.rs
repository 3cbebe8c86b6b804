//! Command line: `backfill`, `nightly`, `run PIPELINE.toml`, `sim`, `schema`.
//!
//! Every input is validated before anything is written; a bad input is one
//! line on stderr and exit code 2.

mod args;
mod settings;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

pub use args::{Cli, Command, LogFormat, RunArgs, SimArgs};
pub use settings::{Plan, Source};

use crate::pipeline::config::PipelineFile;
use crate::pipeline::{self, Mode, Outcome};
use crate::sim::{self, SimConfig};
use crate::sink::atomic_write;
use crate::source::client::{BssClient, ClientConfig};
use crate::source::credentials::{Credentials, Secret};
use crate::source::datasets;

/// Exit codes: decided by [`Outcome`] (0 success, 1 a unit failed, 2 bad input, 3 credentials refused, 4 stopped).
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

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
    init_logging(cli.log_format, cli.verbose, cli.quiet);
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

/// Colour only on a terminal, and never when NO_COLOR is set (no-color.org):
/// cron mail and log shippers get plain text.
pub fn colour_wanted(is_terminal: bool, no_color: Option<&str>) -> bool {
    is_terminal && no_color.is_none_or(str::is_empty)
}

fn init_logging(format: LogFormat, verbose: bool, quiet: bool) {
    let default = if verbose {
        "hcbill=debug"
    } else if quiet {
        "hcbill=warn"
    } else {
        "hcbill=info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HCBILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = colour_wanted(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var("NO_COLOR").ok().as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
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
            set,
        } => {
            let specs = match dataset {
                Some(d) => datasets::parse_list(&d).map_err(usage)?,
                None => datasets::ALL.to_vec(),
            };
            let options = datasets::resolve_options(&settings::parse_sets(&set).map_err(usage)?).map_err(usage)?;
            for spec in specs {
                let spec = options.get(spec.name).map_or(spec, |o| spec.edition(o));
                print!("{}", crate::contract::render(spec, format.into(), &location));
            }
            Ok(())
        }
        Command::Datasets => {
            print!("{}", datasets_listing());
            Ok(())
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "hcbill", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out).map_err(failed)?;
            use std::io::Write;
            std::io::stdout().write_all(&out).map_err(failed)?;
            Ok(())
        }
        Command::Verify(a) => {
            let cycles = a
                .cycles
                .as_deref()
                .map(settings::parse_cycles)
                .transpose()
                .map_err(usage)?;
            let out = open_to_read(&a.out, a.obs_endpoint, a.obs_region)?;
            let report = crate::verify::verify_output(&out, cycles.as_ref())
                .await
                .map_err(|e| match e {
                    crate::verify::VerifyError::NotAnOutput(_) => usage(e),
                    e => failed(e),
                })?;
            match a.format {
                args::ReportFormat::Table => print!("{}", report.table()),
                args::ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"))
                }
            }
            verify_outcome(&report)
        }
        Command::Report(a) => cost_report(a).await,
        Command::Backfill(a) => {
            let dry = a.dry_run;
            let plan = settings::resolve(PipelineFile::default(), a, Some(Mode::Backfill), "backfill")?;
            if dry {
                dry_run(plan, args::ReportFormat::Table).await
            } else {
                execute_plan(plan).await
            }
        }
        Command::Nightly(a) => {
            let dry = a.dry_run;
            let plan = settings::resolve(PipelineFile::default(), a, Some(Mode::Nightly), "nightly")?;
            if dry {
                dry_run(plan, args::ReportFormat::Table).await
            } else {
                execute_plan(plan).await
            }
        }
        Command::Run { pipeline, args } => {
            let file = PipelineFile::load(&pipeline).map_err(usage)?;
            let name = format!("run {}", pipeline.display());
            let dry = args.dry_run;
            let plan = settings::resolve(file, args, None, &name)?;
            if dry {
                dry_run(plan, args::ReportFormat::Table).await
            } else {
                execute_plan(plan).await
            }
        }
        Command::Plan(a) => {
            let (file, name) = match &a.pipeline {
                Some(p) => (PipelineFile::load(p).map_err(usage)?, format!("run {}", p.display())),
                None => (
                    PipelineFile::default(),
                    if a.nightly {
                        "nightly".to_string()
                    } else {
                        "backfill".to_string()
                    },
                ),
            };
            let mode = match (&a.pipeline, a.nightly) {
                (_, true) => Some(Mode::Nightly),
                (None, false) => Some(Mode::Backfill),
                (Some(_), false) => None,
            };
            let plan = settings::resolve(file, a.run, mode, &name)?;
            dry_run(plan, a.format).await
        }
        Command::Status(a) => {
            let out = open_to_read(&a.out, a.obs_endpoint, a.obs_region)?;
            let st = pipeline::status::status(&out).await.map_err(failed)?;
            if st.datasets.is_empty() && st.last_run.is_none() {
                return Err(usage(format!("{} holds no hcbill output", out.url())));
            }
            match a.format {
                args::ReportFormat::Table => print!("{}", st.table()),
                args::ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&st).expect("status serialises"))
                }
            }
            Ok(())
        }
    }
}

#[cfg(not(feature = "report"))]
async fn cost_report(_: args::ReportArgs) -> Result<(), Failure> {
    Err(usage(
        "hcbill report needs the report feature (polars): cargo build --release --features report",
    ))
}

#[cfg(feature = "report")]
async fn cost_report(a: args::ReportArgs) -> Result<(), Failure> {
    use crate::report::{self, Dimension, Format};
    use crate::sink::mirror::{self, Data};
    let by = Dimension::parse(&a.by).map_err(usage)?;
    if a.top == 0 {
        return Err(usage("--top must be at least 1"));
    }
    let out = open_to_read(&a.out, a.obs_endpoint.clone(), a.obs_region.clone())?;
    // A bucket is read from a local copy of the cycle reported and the one before it.
    let spec = &datasets::consumption_records::SPEC;
    let readable = mirror::readable(&out, &[spec], Data::None).await.map_err(failed)?;
    let cycle = match a.cycle {
        Some(c) => Some(c),
        None => crate::sink::manifest::Manifest::load(&readable.dir.join(spec.name), spec.name, spec.version)
            .map_err(failed)?
            .and_then(|m| m.partitions.keys().filter_map(|c| c.parse().ok()).max()),
    };
    if let Some(c) = cycle {
        let wanted: std::collections::BTreeSet<crate::cycle::BillCycle> = [c, c.pred()].into();
        readable
            .add(&out, &[spec], Data::Cycles(&wanted))
            .await
            .map_err(failed)?;
    }
    let r = report::build(&report::Options {
        out: &readable.dir,
        cycle: a.cycle,
        by,
        top: a.top,
        currency: a.currency.clone(),
    })
    .map_err(failed)?;
    let format = match a.format {
        args::CostFormat::Table => Format::Table,
        args::CostFormat::Markdown => Format::Markdown,
        args::CostFormat::Json => Format::Json,
        args::CostFormat::Html => Format::Html,
    };
    let text = report::render_all(&r, format);
    match &a.output {
        Some(p) => atomic_write(p, text.as_bytes()).map_err(failed),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// An output opened to be read (`status`, `verify`, `report`).
fn open_to_read(
    out: &str,
    obs_endpoint: Option<String>,
    obs_region: Option<String>,
) -> Result<crate::sink::output::Output, Failure> {
    let location: crate::sink::output::Location = out.parse().map_err(usage)?;
    let cfg = settings::reading_store(obs_endpoint, obs_region);
    crate::sink::output::Output::open(&location, &cfg, Default::default()).map_err(usage)
}

/// The client of a run: to the endpoint, or to an embedded simulator started
/// here (alive as long as the returned handle).
async fn connect(source: Source, mut client: ClientConfig) -> Result<(Option<sim::Running>, BssClient), Failure> {
    let (running, creds) = match source {
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
    Ok((running, BssClient::new(creds, client).map_err(usage)?))
}

/// `hcbill plan` / `--dry-run`: the plan, printed; nothing written.
async fn dry_run(plan: Plan, format: args::ReportFormat) -> Result<(), Failure> {
    let Plan {
        job, source, client, ..
    } = plan;
    let (_sim, client) = connect(source, client).await?;
    let report = pipeline::dry_run::dry_run(&job, &std::sync::Arc::new(client))
        .await
        .map_err(|e| Failure {
            code: Outcome::of_error(&e).exit_code(),
            message: e.to_string(),
        })?;
    match format {
        args::ReportFormat::Table => print!("{}", report.table()),
        args::ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report).expect("plan serialises")),
    }
    Ok(())
}

/// Exit 1, with the first failure as the line, when verification failed.
fn verify_outcome(report: &crate::verify::VerifyReport) -> Result<(), Failure> {
    if report.success() {
        return Ok(());
    }
    let first = report
        .findings
        .iter()
        .find(|f| f.verdict == crate::verify::Verdict::Failed)
        .map(|f| format!("{} {} {} {}: {}", f.check, f.dataset, f.bill_cycle, f.account, f.detail))
        .unwrap_or_default();
    Err(failed(format!(
        "verify found {} failures in {} ({first})",
        report.failures, report.out
    )))
}

/// `hcbill datasets`: one paragraph per dataset.
fn datasets_listing() -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for d in datasets::ALL {
        let from = match d.derives {
            Some(datasets::Derivation::Rows { from, .. }) => format!(", made from {}'s pages", from.name),
            Some(datasets::Derivation::FanOut { from, .. }) => format!(", one query per row of {}", from.name),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "{}\n  {}\n  API {} {}{}{}",
            d.name,
            d.description,
            d.api.sdk_operation(),
            d.api.path(),
            if d.member_scoped() { ", per member account" } else { "" },
            from
        );
        for o in d.options {
            let _ = writeln!(
                s,
                "  --set {}.{}={}  {} ({}, default {})",
                d.name,
                o.name,
                if o.choices.is_empty() { "N" } else { "V" },
                o.help,
                o.accepts(),
                o.label(o.default)
            );
        }
    }
    s
}

pub async fn execute_plan(plan: Plan) -> Result<(), Failure> {
    let started_at = chrono::Utc::now();
    let metrics_file = plan.metrics_file.clone();
    let command = plan.job.command.clone();
    let (result, report) = run_plan(plan).await;
    if let Some(path) = metrics_file {
        let code = result.as_ref().err().map_or(0, |f| f.code);
        let previous = std::fs::read_to_string(&path).ok();
        let text = pipeline::metrics::render(
            &command,
            started_at,
            chrono::Utc::now(),
            code,
            report.as_ref(),
            previous.as_deref(),
        );
        if let Err(e) = atomic_write(&path, text.as_bytes()) {
            tracing::error!("writing the metrics file: {e}");
        }
    }
    result
}

async fn run_plan(plan: Plan) -> (Result<(), Failure>, Option<pipeline::report::RunReport>) {
    let Plan {
        job,
        source,
        client,
        report,
        verify,
        ..
    } = plan;
    let (_sim, client) = match connect(source, client).await {
        Ok((sim, c)) => (sim, std::sync::Arc::new(c)),
        Err(f) => return (Err(f), None),
    };
    // SIGTERM/SIGINT: no new request or unit, uploads aborted, the lease released.
    crate::stop::on_signals(client.stop.clone());
    let report_json = match pipeline::run(&job, &client).await {
        Ok(r) => r,
        // Stopped (a signal, a lost lease) before the units ran: still a stop.
        Err(e) => {
            let failure = match client.stop.reason() {
                Some(why) => Failure {
                    code: Outcome::Stopped.exit_code(),
                    message: format!("run stopped: {why}; the next run resumes it"),
                },
                None => Failure {
                    code: Outcome::of_error(&e).exit_code(),
                    message: e.to_string(),
                },
            };
            return (Err(failure), None);
        }
    };
    let r = finish_run(&job, &client, &report, verify, &report_json).await;
    (r, Some(report_json))
}

async fn finish_run(
    job: &pipeline::Job,
    client: &BssClient,
    report: &Option<std::path::PathBuf>,
    verify: bool,
    report_json: &pipeline::report::RunReport,
) -> Result<(), Failure> {
    let text = serde_json::to_vec_pretty(report_json).expect("report serialises");
    if let Some(p) = &report {
        atomic_write(p, &text).map_err(failed)?;
    }
    print!("{}", report_json.human());
    println!("report: {}", report_json.saved_as);
    let halted = client.halt.reason();
    let stopped = client.stop.reason();
    let code = Outcome::of_run(report_json.success, halted.is_some(), stopped.is_some()).exit_code();
    if verify && halted.is_none() && stopped.is_none() {
        let cycles: std::collections::BTreeSet<crate::cycle::BillCycle> = report_json
            .units
            .iter()
            .filter_map(|u| u.bill_cycle.parse().ok())
            .collect();
        if !cycles.is_empty() {
            let reading = crate::sink::output::StoreConfig {
                for_reading: true,
                ..job.store.clone()
            };
            let out = crate::sink::output::Output::open(&job.out, &reading, Default::default()).map_err(failed)?;
            let v = crate::verify::verify_output(&out, Some(&cycles))
                .await
                .map_err(failed)?;
            print!("{}", v.table());
            if code == 0 {
                return verify_outcome(&v);
            }
        }
    }
    if code == 0 {
        return Ok(());
    }
    Err(Failure {
        code,
        message: match stopped.or(halted) {
            Some(why) => format!("run stopped: {why}; the next run resumes it"),
            None => format!(
                "{} of {} units failed; the next run resumes them ({})",
                report_json.units_failed,
                report_json.units_total,
                report_json.failures.first().cloned().unwrap_or_default()
            ),
        },
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
    cfg.cost_center = !a.no_cost_center;
    cfg.currency = settings::sim_currency(&a.currency).map_err(usage)?;
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
