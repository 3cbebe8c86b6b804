//! Flags and their documentation (`hcbill --help`, `hcbill <command> --help`).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::contract::Format;
use crate::cycle::BillCycle;

#[derive(Parser, Debug)]
#[command(
    name = "hcbill",
    version,
    about = "Huawei Cloud BSS bills to typed, Hive-partitioned Parquet",
    long_about = "Extracts Huawei Cloud billing data (bill summaries, resource consumption records, …) into \
                  <out>/<dataset>/<month key>=YYYY-MM/*.parquet (bill_cycle; shared_month for amortized_costs, \
                  trade_month for account_changes) with exact decimals and UTC timestamps.\n\n\
                  Credentials come from HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK (plus HUAWEICLOUD_SDK_DOMAIN_ID, \
                  HUAWEICLOUD_SDK_SECURITY_TOKEN) or the [global] section of ~/.huaweicloud/credentials.\n\n\
                  Exit codes: 0 success, 1 a unit failed (the next run resumes), 2 bad input, 3 credentials refused, \
                  4 stopped by SIGTERM/SIGINT or a lost bucket lease (the next run resumes)."
)]
pub struct Cli {
    /// Log lines as JSON objects (for log shippers) instead of text.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// More detail in the logs (HCBILL_LOG overrides, e.g. HCBILL_LOG=hcbill=trace).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Warnings and errors only (for cron mail).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// `hcbill schema --format`: clap's side of [`Format`].
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SchemaFormat {
    Json,
    Arrow,
    Duckdb,
    Spark,
    Trino,
}

impl From<SchemaFormat> for Format {
    fn from(f: SchemaFormat) -> Format {
        match f {
            SchemaFormat::Json => Format::Json,
            SchemaFormat::Arrow => Format::Arrow,
            SchemaFormat::Duckdb => Format::Duckdb,
            SchemaFormat::Spark => Format::Spark,
            SchemaFormat::Trino => Format::Trino,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Extract a range of billing cycles.
    Backfill(RunArgs),
    /// Refresh the current cycle, the previous one, and every partition still provisional.
    Nightly(RunArgs),
    /// Run a pipeline file (pipelines/*.toml); flags override its settings.
    Run {
        /// The pipeline file.
        pipeline: PathBuf,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Serve a simulated BSS API (same paths, signing, errors, paging, throttling).
    Sim(SimArgs),
    /// List the datasets: their API, what they are derived from, and their options.
    Datasets,
    /// Shell completions, generated from this command line's definition.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page (troff), generated from this command line's definition.
    Man,
    /// What a backfill (or with --nightly, a nightly run) would do: the units and why, the pages per API and
    /// the time under the quotas. Writes nothing; spends one limit=1 probe per query of unknown size.
    Plan(PlanArgs),
    /// What the output holds: cycles per dataset, finality, rows, money totals, last extraction and
    /// restatement, the last run, and when the next nightly will change something.
    Status(StatusArgs),
    /// Check an output directory: files against their manifest (size, sha256, schema), and the datasets'
    /// money totals against each other with Huawei's rounding. Exit 1 when a final cycle fails.
    Verify(VerifyArgs),
    /// What did we spend, where, and what changed: totals, breakdowns, top resources and movers, the daily
    /// trend (needs the `report` feature: cargo build --release --features report).
    Report(ReportArgs),
    /// Print a dataset's schema, or DDL to register the output in a warehouse.
    Schema {
        /// A dataset name (default: every dataset).
        dataset: Option<String>,
        #[arg(long, value_enum, default_value_t = SchemaFormat::Json)]
        format: SchemaFormat,
        /// Where the output lives, for DDL (a local path or s3://…, obs://…).
        #[arg(long, default_value = "out")]
        location: String,
        /// A dataset option that changes its shape, e.g. --set focus.version=1.2 (repeatable).
        #[arg(long = "set", value_name = "DATASET.OPTION=VALUE")]
        set: Vec<String>,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// First billing cycle (YYYY-MM, UTC+8 calendar).
    #[arg(long)]
    pub from: Option<BillCycle>,
    /// Last billing cycle (default: the current one).
    #[arg(long)]
    pub to: Option<BillCycle>,
    /// Comma-separated dataset names, or "all".
    #[arg(long)]
    pub datasets: Option<String>,
    /// Output: a directory, obs://bucket/prefix (Huawei OBS) or s3://bucket/prefix (any S3-compatible store;
    /// endpoint from AWS_ENDPOINT_URL).
    #[arg(long)]
    pub out: Option<String>,
    /// OBS endpoint (default https://obs.<region>.myhuaweicloud.com).
    #[arg(long, env = "HCBILL_OBS_ENDPOINT")]
    pub obs_endpoint: Option<String>,
    /// OBS region (default cn-north-4).
    #[arg(long, env = "HCBILL_OBS_REGION")]
    pub obs_region: Option<String>,
    /// One writer per bucket output: "lease" (default: a lease object and conditional writes, after checking the
    /// store honours them) or "external" (the scheduler runs one job at a time; nothing guards against two).
    #[arg(long, env = "HCBILL_LOCK")]
    pub lock: Option<String>,
    /// BSS endpoint (default https://bss.myhuaweicloud.com; plain http only for loopback).
    #[arg(long, env = "HCBILL_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Use the embedded simulator instead of an endpoint.
    #[arg(long, conflicts_with = "endpoint")]
    pub simulator: bool,
    /// "auto" (default: the caller, plus every enterprise member if it has any), "self", "all", or member ids
    /// separated by commas.
    #[arg(long)]
    pub accounts: Option<String>,
    /// Re-extract final partitions too (a changed one is recorded as a restatement).
    #[arg(long)]
    pub force: bool,
    /// Hours after 10:00 UTC+8 on the 3rd before a cycle counts as final (default 24: monthly-settlement
    /// customers' bills close on the 4th; 0 for the others).
    #[arg(long)]
    pub grace_hours: Option<i64>,
    /// A dataset option, e.g. --set resource_bill_details.statistic_type=2 (repeatable; `hcbill datasets`
    /// lists every option).
    #[arg(long = "set", value_name = "DATASET.OPTION=VALUE")]
    pub set: Vec<String>,
    /// Shorthand for --set resource_bill_details.statistic_type=N: 1 by cycle, 2 by day, 3 by detail (default 3).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=3))]
    pub statistic_type: Option<i64>,
    /// Stop cleanly after this long (e.g. 6h, 90m; default 6h): exit 1, and the next run resumes.
    #[arg(long)]
    pub deadline: Option<String>,
    /// Only plan: print what `hcbill plan` prints and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// After the run, verify the cycles it touched (`hcbill verify`): exit 1 on bad data, not only on failed requests.
    #[arg(long)]
    pub verify: bool,
    /// Write Prometheus metrics here at the end of every run (for node_exporter's textfile collector).
    #[arg(long)]
    pub metrics_file: Option<PathBuf>,
    /// Also write the JSON run report here (it is always saved under <out>/.hcbill/reports/).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Plan a nightly run instead of a backfill.
    #[arg(long)]
    pub nightly: bool,
    /// A pipeline file to plan (flags override it).
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// The output: a directory, obs://bucket/prefix or s3://bucket/prefix.
    #[arg(long, default_value = "out")]
    pub out: String,
    #[arg(long, env = "HCBILL_OBS_ENDPOINT")]
    pub obs_endpoint: Option<String>,
    #[arg(long, env = "HCBILL_OBS_REGION")]
    pub obs_region: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The output: a directory, obs://bucket/prefix or s3://bucket/prefix.
    #[arg(long, default_value = "out")]
    pub out: String,
    #[arg(long, env = "HCBILL_OBS_ENDPOINT")]
    pub obs_endpoint: Option<String>,
    #[arg(long, env = "HCBILL_OBS_REGION")]
    pub obs_region: Option<String>,
    /// Only these cycles: YYYY-MM, comma-separated, or a range YYYY-MM..YYYY-MM.
    #[arg(long)]
    pub cycles: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The output: a directory, obs://bucket/prefix or s3://bucket/prefix.
    #[arg(long, default_value = "out")]
    pub out: String,
    #[arg(long, env = "HCBILL_OBS_ENDPOINT")]
    pub obs_endpoint: Option<String>,
    #[arg(long, env = "HCBILL_OBS_REGION")]
    pub obs_region: Option<String>,
    /// The cycle to report (default: the latest one held).
    #[arg(long)]
    pub cycle: Option<BillCycle>,
    /// Breakdowns, comma-separated: service, account, region, charge_mode, resource.
    #[arg(long, default_value = "service,account,region")]
    pub by: String,
    /// Lines in the top resources and top movers.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Report the amounts in this currency alone (default: a report per currency the cycle holds;
    /// amounts in two currencies are never added up).
    #[arg(long)]
    pub currency: Option<String>,
    #[arg(long, value_enum, default_value_t = CostFormat::Table)]
    pub format: CostFormat,
    /// Write the report here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum CostFormat {
    Table,
    Markdown,
    Json,
    Html,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    Table,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Port to listen on (0 picks a free one; the URL is printed as the first line).
    #[arg(long, default_value_t = 8443)]
    pub port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Seed of the deterministic ledger.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Size of the ledger: about 2000 × scale records per member and cycle (twice that for the master).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// First cycle with data (default: five cycles before the current one).
    #[arg(long)]
    pub from: Option<BillCycle>,
    /// Last cycle with data (default: the current one).
    #[arg(long)]
    pub to: Option<BillCycle>,
    /// Enterprise member accounts.
    #[arg(long, default_value_t = 3)]
    pub members: u32,
    /// Added to every answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Requests/s per API for every API (default: the documented quotas; 0 = no throttling).
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Share of requests answered with a fault: 500 CBC.0999, 503 HTML, connection reset, truncated JSON.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Insert rows at the front of a cycle while it is being paged.
    #[arg(long)]
    pub drift: bool,
    /// The last N members refuse to share their bills (403 CBC.0151 for method=sub_customer).
    #[arg(long, default_value_t = 0)]
    pub denied_members: u32,
    /// Answer the amortised cost API with 400 CBC.18000014, as when Cost Center is not enabled.
    #[arg(long)]
    pub no_cost_center: bool,
    /// The currency every answer names: CNY (China site) or USD (international site).
    #[arg(long, default_value = "CNY")]
    pub currency: String,
    /// Access key to accept (default: HUAWEICLOUD_SDK_AK).
    #[arg(long)]
    pub ak: Option<String>,
    /// Secret key to verify signatures with (default: HUAWEICLOUD_SDK_SK). Visible to every user in `ps`:
    /// prefer the environment or --sk-file.
    #[arg(long, conflicts_with = "sk_file")]
    pub sk: Option<String>,
    /// Read the secret key from this file (its first line).
    #[arg(long)]
    pub sk_file: Option<PathBuf>,
}
