//! Performance of the release binary, measured from outside: `cargo bench --bench perf`.
//!
//! The simulator runs as a separate process (`hcbill sim`), so the figures are
//! the client's own. Printed, in one run:
//! * quota use: wall ÷ (pages ÷ quota) for a month of 400+ pages of
//!   res-fee-records with 200 ms latency (1.00 is the quota's limit), then
//!   for one, two and every dataset over four months, all accounts: wall ÷
//!   (max over APIs of requests ÷ quota), with the throttled answers;
//! * CPU: rows per second per core of the hcbill process (user + system time);
//! * memory: the hcbill process's peak RSS for 0.1M, 0.5M and 2M-row months;
//! * against the official Python SDK paging the same month sequentially
//!   (`benches/sdk_pager.py`) at 100 ms latency: records/s of each, and the
//!   ratio. Needs a Python with `huaweicloudsdkbss` (HCBILL_SDK_PYTHON, or the
//!   venv `.ci/run` makes); skipped without one.
//!
//! Options (environment): HCBILL_BENCH_SIZES (e.g. "0.1,0.5,2", millions of
//! rows), HCBILL_BENCH_LATENCY_MS (200).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const AK: &str = "AKBENCHHCBILL";
const SK: &str = "SK-bench-secret-0123456789";
const CYCLE: &str = "2026-10";
/// Members of the simulated enterprise: rows ≈ 2000 × scale × (2 + members).
const MEMBERS: u32 = 3;

struct Sim {
    child: Child,
    url: String,
}

impl Sim {
    fn start(bin: &str, scale: f64, latency_ms: u64, dir: &Path) -> Sim {
        Self::months(bin, scale, latency_ms, dir, CYCLE, CYCLE)
    }

    fn months(bin: &str, scale: f64, latency_ms: u64, dir: &Path, from: &str, to: &str) -> Sim {
        let sk = dir.join("sk");
        std::fs::write(&sk, SK).unwrap();
        let mut child = Command::new(bin)
            .args(["sim", "--port", "0", "--ak", AK, "--sk-file"])
            .arg(&sk)
            .args(["--seed", "42", "--from", from, "--to", to])
            .args(["--members", &MEMBERS.to_string(), "--scale", &scale.to_string()])
            .args(["--latency-ms", &latency_ms.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hcbill sim starts");
        let mut url = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut url)
            .unwrap();
        Sim {
            child,
            url: url.trim().to_string(),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Measured {
    rows: u64,
    pages: u64,
    wall: f64,
    cpu: f64,
    peak_rss_mib: f64,
    /// The busiest API's requests ÷ its quota, from the run report.
    bound: f64,
    critical_api: String,
    throttled: u64,
}

/// Runs one backfill of consumption records and measures the hcbill process.
fn run(bin: &str, sim: &Sim, dir: &Path, accounts: &str) -> Measured {
    run_of(bin, sim, dir, accounts, "consumption_records", CYCLE, CYCLE)
}

/// Runs one backfill of `datasets` and measures the hcbill process.
fn run_of(bin: &str, sim: &Sim, dir: &Path, accounts: &str, datasets: &str, from: &str, to: &str) -> Measured {
    let out = dir.join("out");
    let report = dir.join("report.json");
    let _ = std::fs::remove_dir_all(&out);
    let t = Instant::now();
    #[allow(clippy::zombie_processes)]
    let child = Command::new(bin)
        .args(["backfill", "--endpoint", &sim.url, "--from", from, "--to", to])
        .args(["--datasets", datasets, "--accounts", accounts, "--out"])
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .env("HUAWEICLOUD_SDK_AK", AK)
        .env("HUAWEICLOUD_SDK_SK", SK)
        .env("HCBILL_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("hcbill runs");
    // wait4 (not Child::wait): the child's own CPU time and peak RSS.
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let wall = t.elapsed().as_secs_f64();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the backfill failed"
    );
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    // Huawei's quotas (requests/s): 30 for the record APIs, 10 for the others.
    let (critical_api, bound) = report["requests"]["requests_per_api"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(api, n)| {
            let quota = if matches!(api.as_str(), "res-fee-records" | "res-records") {
                30.0
            } else {
                10.0
            };
            (api.clone(), n.as_f64().unwrap() / quota)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or_default();
    Measured {
        rows: report["rows"].as_u64().unwrap(),
        pages: report["pages"].as_u64().unwrap(),
        wall,
        cpu: secs(usage.ru_utime) + secs(usage.ru_stime),
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        bound,
        critical_api,
        throttled: report["requests"]["throttled_429"].as_u64().unwrap_or(0),
    }
}

/// Quota use of one, two and every dataset: wall ÷ (max over APIs of
/// requests ÷ quota), the run's lower bound. Four months, all accounts.
fn mixed_cases(bin: &str, dir: &Path, latency: u64) {
    let (from, to) = ("2026-05", "2026-08");
    // About 100 res-fee-records pages a month over the four months.
    let sim = Sim::months(bin, scale_for(0.42) / 4.0, latency, dir, from, to);
    let print = |what: &str, m: &Measured| {
        println!(
            "quota, {what} {from}..{to}, {latency} ms latency: {:.1} s for a bound of {:.1} s ({}) -> ratio {:.3}, {} throttled, hcbill CPU {:.0}%",
            m.wall,
            m.bound,
            m.critical_api,
            m.wall / m.bound.max(1e-9),
            m.throttled,
            100.0 * m.cpu / m.wall
        );
    };
    for datasets in ["consumption_records", "bill_summary,consumption_records", "all"] {
        print(datasets, &run_of(bin, &sim, dir, "all", datasets, from, to));
    }
    drop(sim);
    // At this size every dataset's rows cost two cores more than the quotas
    // allow (hcbill and the simulator share them): the same mix at a quarter
    // of the rows shows the scheduling alone.
    let sim = Sim::months(bin, scale_for(0.42) / 16.0, latency, dir, from, to);
    print("all (quarter size)", &run_of(bin, &sim, dir, "all", "all", from, to));
}

fn scale_for(million_rows: f64) -> f64 {
    (million_rows * 1e6 / (2000.0 * f64::from(2 + MEMBERS))).max(0.01)
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_hcbill");
    let dir = tempfile::tempdir().unwrap();
    let latency: u64 = std::env::var("HCBILL_BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let sizes: Vec<f64> = std::env::var("HCBILL_BENCH_SIZES")
        .unwrap_or_else(|_| "0.1,0.5,2".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();

    // Quota use: 400+ pages under latency.
    let sim = Sim::start(bin, scale_for(0.42), latency, dir.path());
    let m = run(bin, &sim, dir.path(), "all");
    drop(sim);
    let ideal = m.pages as f64 / 30.0;
    println!(
        "quota: {} pages, {} rows, {latency} ms latency: {:.1} s for an ideal {:.1} s at 30 req/s -> ratio {:.3}",
        m.pages,
        m.rows,
        m.wall,
        ideal,
        m.wall / ideal
    );

    mixed_cases(bin, dir.path(), latency);

    println!(
        "{:>10} {:>7} {:>9} {:>12} {:>14} {:>12}",
        "rows", "pages", "wall s", "cpu s", "rows/s/core", "peak RSS"
    );
    for size in sizes {
        let sim = Sim::start(bin, scale_for(size), 0, dir.path());
        let m = run(bin, &sim, dir.path(), "all");
        drop(sim);
        println!(
            "{:>10} {:>7} {:>9.1} {:>12.2} {:>14.0} {:>9.1} MiB",
            m.rows,
            m.pages,
            m.wall,
            m.cpu,
            m.rows as f64 / m.cpu.max(1e-9),
            m.peak_rss_mib
        );
    }

    sdk_comparison(bin, dir.path());
}

/// hcbill and the official SDK paging the caller's own records of one month
/// from the same simulator at 100 ms latency.
fn sdk_comparison(bin: &str, dir: &Path) {
    let python = std::env::var("HCBILL_SDK_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/hcbill-sdk-venv/bin/python")
    });
    let has_sdk = Command::new(&python)
        .args(["-c", "import huaweicloudsdkbss"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_sdk {
        println!("sdk: skipped ({python} cannot import huaweicloudsdkbss; set HCBILL_SDK_PYTHON)");
        return;
    }
    // About 40 pages of the caller's own records.
    let sim = Sim::start(bin, scale_for(0.085), 100, dir);
    let m = run(bin, &sim, dir, "self");
    let ours = m.rows as f64 / m.wall;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/sdk_pager.py");
    let out = Command::new(&python)
        .args([script, &sim.url, AK, SK, CYCLE])
        .stderr(Stdio::inherit())
        .output()
        .expect("the SDK script runs");
    drop(sim);
    assert!(out.status.success(), "the SDK script failed");
    let sdk: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the SDK script prints JSON");
    let (records, seconds) = (sdk["records"].as_f64().unwrap(), sdk["seconds"].as_f64().unwrap());
    assert_eq!(records as u64, m.rows, "both read the same month");
    let theirs = records / seconds;
    println!(
        "sdk: {} records, 100 ms latency: hcbill {:.1} s ({ours:.0} records/s), official SDK sequentially {seconds:.1} s ({theirs:.0} records/s) -> {:.1}x",
        m.rows,
        m.wall,
        ours / theirs
    );
}
