//! Quota use and memory: `cargo bench --bench quota`.
//!
//! A multi-cycle backfill of consumption records against the simulator with
//! 200 ms latency and the documented quotas (30 requests/s for res-fee-records).
//! A run bounded by the quota, not by latency, takes about pages ÷ quota; the
//! benchmark prints that ratio, and the peak RSS for a small and a 4× larger
//! month, which should stay flat.
//!
//! Options (environment): HCBILL_BENCH_SCALE (default 8), HCBILL_BENCH_LATENCY_MS (200).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hcbill::cycle::BillCycle;
use hcbill::pipeline::{self, Accounts, Job, Mode};
use hcbill::sim::{self, SimConfig};
use hcbill::source::client::{BssClient, ClientConfig};
use hcbill::source::credentials::{Credentials, Secret};
use hcbill::source::datasets;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn backfill(scale: f64, latency_ms: u64, cycles: (&str, &str)) -> (f64, u64, u64, u64) {
    let from: BillCycle = cycles.0.parse().unwrap();
    let to: BillCycle = cycles.1.parse().unwrap();
    let mut cfg = SimConfig::new("AKBENCH", "SKBENCH");
    cfg.scale = scale;
    cfg.from = from;
    cfg.to = to;
    cfg.latency = Duration::from_millis(latency_ms);
    let sim = sim::start(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let creds = Credentials {
        ak: "AKBENCH".into(),
        sk: Secret::new("SKBENCH"),
        domain_id: None,
        security_token: None,
    };
    let client = std::sync::Arc::new(
        BssClient::new(
            creds,
            ClientConfig {
                endpoint: sim.url(),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let out = tempfile::tempdir().unwrap();
    let job = Job {
        command: "bench".into(),
        mode: Mode::Backfill,
        datasets: datasets::parse_list("consumption_records").unwrap(),
        options: Default::default(),
        cycles: BillCycle::range(from, to).collect(),
        accounts: Accounts::Own,
        out: out.path().into(),
        store: Default::default(),
        endpoint: sim.url(),
        force: false,
        grace: chrono::Duration::zero(),
        unit_concurrency: 4,
        page_concurrency: 8,
        max_restarts: 5,
        progress: false,
        deadline: hcbill::pipeline::DEFAULT_DEADLINE,
        unit_deadline: hcbill::pipeline::DEFAULT_UNIT_DEADLINE,
        max_pages: hcbill::pipeline::DEFAULT_MAX_PAGES,
    };
    let t = Instant::now();
    let report = pipeline::run(&job, &client).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(report.success, "{:?}", report.failures);
    let throttled = sim.state.stats.throttled.load(std::sync::atomic::Ordering::Relaxed);
    (secs, report.requests.requests, report.rows, throttled)
}

fn main() {
    let scale: f64 = std::env::var("HCBILL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8.0);
    let latency: u64 = std::env::var("HCBILL_BENCH_LATENCY_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let quota = f64::from(hcbill::source::api::Api::named("res-fee-records").quota());

    let (secs, requests, rows, throttled) = rt.block_on(backfill(scale, latency, ("2026-05", "2026-10")));
    let ideal = requests as f64 / quota;
    println!("quota use: 6 cycles, {rows} rows, {requests} requests, {latency} ms latency, quota {quota}/s");
    println!(
        "  elapsed {secs:.2} s, pages/quota {ideal:.2} s, ratio {:.3} (target <= 1.10), 429s {throttled}",
        secs / ideal
    );
    println!(
        "  throughput {:.0} rows/s, {:.1} requests/s",
        rows as f64 / secs,
        requests as f64 / secs
    );

    // Memory: one month, then a month four times larger; peak RSS should not scale with it.
    let (_, _, small_rows, _) = rt.block_on(backfill(scale, 0, ("2026-10", "2026-10")));
    let small = peak_rss_kib();
    let (_, _, big_rows, _) = rt.block_on(backfill(scale * 4.0, 0, ("2026-10", "2026-10")));
    let big = peak_rss_kib();
    println!(
        "memory: peak RSS {} MiB after a {small_rows}-row month, {} MiB after a {big_rows}-row month",
        small / 1024,
        big / 1024
    );
}
