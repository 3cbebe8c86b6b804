//! Shared helpers: a simulator per test, a fast-retrying client, Parquet readers.

use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow_array::{Array, Decimal128Array, RecordBatch, StringArray};
use hcbill::cycle::BillCycle;
use hcbill::pipeline::{Accounts, Job, Mode};
use hcbill::sim::{self, Running, SimConfig};
use hcbill::source::client::{BssClient, ClientConfig, RetryPolicy};
use hcbill::source::credentials::{Credentials, Secret};
use hcbill::source::datasets;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rust_decimal::Decimal;

pub const AK: &str = "AKTESTHCBILL00000000";
pub const SK: &str = "SK-very-secret-value-0123456789abcdef";

pub fn cycle(s: &str) -> BillCycle {
    s.parse().unwrap()
}

/// A small simulator: cycles 2026-08..2026-10, two members.
pub async fn start_sim(tweak: impl FnOnce(&mut SimConfig)) -> Running {
    let mut cfg = SimConfig::new(AK, SK);
    cfg.seed = 7;
    cfg.scale = 0.3;
    cfg.from = cycle("2026-08");
    cfg.to = cycle("2026-10");
    cfg.members = 2;
    tweak(&mut cfg);
    sim::start(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

pub fn creds(sk: &str) -> Credentials {
    Credentials {
        ak: AK.into(),
        sk: Secret::new(sk),
        domain_id: Some("0123456789abcdef0123456789abcdef".into()),
        security_token: None,
    }
}

pub fn client_config(url: &str) -> ClientConfig {
    ClientConfig {
        endpoint: url.to_string(),
        retry: RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(100),
            ..RetryPolicy::default()
        },
        ..Default::default()
    }
}

pub fn client(url: &str) -> std::sync::Arc<BssClient> {
    std::sync::Arc::new(BssClient::new(creds(SK), client_config(url)).unwrap())
}

pub fn job(out: &Path, names: &str, from: &str, to: &str) -> Job {
    Job {
        command: "test".into(),
        mode: Mode::Backfill,
        datasets: datasets::parse_list(names).unwrap(),
        options: Default::default(),
        cycles: BillCycle::range(cycle(from), cycle(to)).collect(),
        accounts: Accounts::Own,
        out: out.into(),
        store: Default::default(),
        endpoint: "test".into(),
        force: false,
        grace: chrono::Duration::zero(),
        unit_concurrency: 4,
        page_concurrency: 4,
        large_units: 2,
        max_restarts: 5,
        progress: false,
        deadline: hcbill::pipeline::DEFAULT_DEADLINE,
        unit_deadline: hcbill::pipeline::DEFAULT_UNIT_DEADLINE,
        max_pages: hcbill::pipeline::DEFAULT_MAX_PAGES,
    }
}

/// A unit's file, under its dataset's partition key.
pub fn part(out: &Path, dataset: &str, cycle: &str, account: &str) -> PathBuf {
    let key = hcbill::source::datasets::by_name(dataset).map_or("bill_cycle", |d| d.partition_key);
    out.join(dataset)
        .join(format!("{key}={cycle}"))
        .join(format!("part-{account}.parquet"))
}

pub fn read(path: &Path) -> Vec<RecordBatch> {
    let f = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

pub fn dec_sum(batches: &[RecordBatch], col: &str) -> Decimal {
    let mut sum: i128 = 0;
    let mut scale = 0;
    for b in batches {
        let a = b
            .column_by_name(col)
            .unwrap()
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        scale = a.scale() as u32;
        sum += a.iter().flatten().sum::<i128>();
    }
    Decimal::from_i128_with_scale(sum, scale).normalize()
}

pub fn strings(batches: &[RecordBatch], col: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(col)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every data file of an output tree, with its rows minus the lineage columns
/// (which name the run and the time): what "the same output" means.
pub fn data_fingerprint(out: &Path) -> HashMap<String, Vec<String>> {
    let mut m = HashMap::new();
    for ds in datasets::ALL {
        let dir = out.join(ds.name);
        let Ok(parts) = std::fs::read_dir(&dir) else {
            continue;
        };
        for p in parts.flatten().filter(|p| p.path().is_dir()) {
            let files = std::fs::read_dir(p.path()).unwrap().flatten();
            for f in files.filter(|f| f.path().extension().is_some_and(|x| x == "parquet")) {
                let batches = read(&f.path());
                let mut lines = Vec::new();
                for b in &batches {
                    let keep: Vec<usize> = (0..b.num_columns())
                        .filter(|i| {
                            let name = b.schema().field(*i).name().clone();
                            !name.starts_with("hcbill_") && !name.starts_with("x_hcbill_")
                        })
                        .collect();
                    let b = b.project(&keep).unwrap();
                    for r in 0..b.num_rows() {
                        let cells: Vec<String> = (0..b.num_columns())
                            .map(|c| arrow_cast_display(b.column(c).as_ref(), r))
                            .collect();
                        lines.push(cells.join("|"));
                    }
                }
                let rel = f.path().strip_prefix(out).unwrap().display().to_string();
                m.insert(rel, lines);
            }
        }
    }
    m
}

fn arrow_cast_display(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return "∅".into();
    }
    format!("{:?}", a.slice(i, 1))
}

/// A dataset's manifest (its per-partition shards) as one JSON value, in the
/// shape `{"partitions": {cycle: partition}}`.
pub fn manifest_json(dataset_dir: &Path) -> serde_json::Value {
    let mut partitions = serde_json::Map::new();
    for (cycle, shard) in shards(dataset_dir) {
        partitions.insert(cycle, shard["partition"].clone());
    }
    serde_json::json!({ "partitions": partitions })
}

/// Writes back a value read by [`manifest_json`] (each partition to its shard).
pub fn write_manifest_json(dataset_dir: &Path, m: &serde_json::Value) {
    for (cycle, mut shard) in shards(dataset_dir) {
        shard["partition"] = m["partitions"][&cycle].clone();
        let path = dataset_dir.join("_manifest").join(format!("{cycle}.json"));
        std::fs::write(path, serde_json::to_vec_pretty(&shard).unwrap()).unwrap();
    }
}

/// Every shard's text, for looking for a string in a manifest.
pub fn manifest_text(dataset_dir: &Path) -> String {
    shards(dataset_dir)
        .into_values()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn shards(dataset_dir: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    let dir = dataset_dir.join("_manifest");
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(cycle) = name.strip_suffix(".json") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            out.insert(cycle.to_string(), v);
        }
    }
    out
}
