//! Unattended runs: faults, drift, throttling, auth failures, kill -9 and
//! resume, the output lock, nightly semantics, and secrets kept out of output.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use hcbill::cycle::BillCycle;
use hcbill::pipeline::report::UnitStatus;
use hcbill::pipeline::{self, Mode};
use hcbill::sink::manifest::{Finality, Manifest};
use hcbill::source::api::Api;
use hcbill::source::client::BssClient;

use crate::cli::bin;
use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn ten_percent_faults_still_give_the_exact_output() {
    let clean = start_sim(|_| {}).await;
    let faulty = start_sim(|c| c.fault_rate = 0.10).await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ds = "bill_summary,consumption_records";
    assert!(
        pipeline::run(&job(a.path(), ds, "2026-08", "2026-10"), &client(&clean.url()))
            .await
            .unwrap()
            .success
    );
    let c = client(&faulty.url());
    let r = pipeline::run(&job(b.path(), ds, "2026-08", "2026-10"), &c)
        .await
        .unwrap();
    assert!(r.success, "{:?}", r.failures);
    let faults = faulty.state.stats.faults.load(std::sync::atomic::Ordering::Relaxed);
    assert!(faults > 0, "faults were injected");
    let s = c.stats.snapshot();
    assert!(s.retries >= faults, "every fault was retried: {s:?}, {faults} faults");
    assert!(s.unparseable_bodies > 0 || s.transport_errors > 0 || s.server_errors > 0);
    assert_eq!(data_fingerprint(a.path()), data_fingerprint(b.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_while_paging_restarts_the_unit_without_duplicates_or_gaps() {
    let sim = start_sim(|c| {
        c.drift = true;
        c.scale = 1.0;
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    let mut job = job(out.path(), "consumption_records", "2026-09", "2026-10");
    job.page_concurrency = 2;
    let r = pipeline::run(&job, &client(&sim.url())).await.unwrap();
    assert!(r.success, "{:?}", r.failures);
    assert!(r.units.iter().all(|u| u.restarts >= 1), "{:?}", r.units);
    let ledger = &sim.state.ledger;
    for c in ["2026-09", "2026-10"] {
        let cy = cycle(c);
        assert!(ledger.extra_lines(0, cy) > 0, "rows were inserted while paging");
        let ids: Vec<String> = strings(&read(&part(out.path(), "consumption_records", c, "self")), "id")
            .into_iter()
            .map(Option::unwrap)
            .collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{c}: duplicates");
        let served: HashSet<String> = (0..ledger.line_count(0, cy))
            .map(|i| ledger.line(0, cy, i).id)
            .collect();
        assert_eq!(unique.len(), served.len(), "{c}: gaps");
        assert!(ids.iter().all(|i| served.contains(i)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn default_quotas_are_never_exceeded() {
    let sim = start_sim(|c| {
        c.latency = Duration::from_millis(20);
        c.scale = 1.0;
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    let mut job = job(out.path(), "all", "2026-10", "2026-10");
    job.accounts = hcbill::pipeline::Accounts::All;
    job.unit_concurrency = 8;
    job.page_concurrency = 8;
    let c = client(&sim.url());
    let r = pipeline::run(&job, &c).await.unwrap();
    assert!(r.success, "{:?}", r.failures);
    assert!(c.stats.snapshot().requests > 20);
    assert_eq!(
        sim.state.stats.throttled.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "zero 429s"
    );
    assert_eq!(c.stats.snapshot().throttled_429, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lower_server_quota_is_absorbed_by_backoff_and_a_lower_rate() {
    let sim = start_sim(|c| {
        c.rate_limit = Some(2);
        c.scale = 1.0;
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    // Backoff of the order Huawei advises (seconds), scaled down for the test.
    let mut cfg = client_config(&sim.url());
    cfg.retry.base = Duration::from_millis(100);
    cfg.retry.cap = Duration::from_secs(2);
    let c = std::sync::Arc::new(BssClient::new(creds(SK), cfg).unwrap());
    let r = pipeline::run(&job(out.path(), "consumption_records", "2026-08", "2026-10"), &c)
        .await
        .unwrap();
    assert!(r.success, "{:?}", r.failures);
    assert!(c.stats.snapshot().throttled_429 > 0);
    assert!(
        c.limits().current(Api::named("res-fee-records"), AK) < 30,
        "rate lowered after 429s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_stop_the_run_after_one_request() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let c = std::sync::Arc::new(BssClient::new(creds("not-the-secret"), client_config(&sim.url())).unwrap());
    let r = pipeline::run(
        &job(out.path(), "bill_summary,consumption_records", "2026-08", "2026-10"),
        &c,
    )
    .await
    .unwrap();
    assert!(!r.success);
    assert_eq!(r.units_failed, 6);
    assert_eq!(c.stats.snapshot().requests, 1, "one request per credential");
    assert_eq!(
        sim.state.stats.auth_failures.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(
        r.failures[0].contains("401") || r.failures[0].contains("halted"),
        "{:?}",
        r.failures
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nightly_refreshes_provisional_partitions_and_records_restatements() {
    let now = BillCycle::containing(chrono::Utc::now());
    let sim = start_sim(|c| {
        c.from = now.pred().pred();
        c.to = now;
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    let mut job = job(out.path(), "bill_summary", "2026-01", "2026-01");
    job.mode = Mode::Nightly;
    job.cycles = vec![now.pred().pred(), now];
    let c = client(&sim.url());
    assert!(pipeline::run(&job, &c).await.unwrap().success);
    let m = Manifest::load(&out.path().join("bill_summary"), "bill_summary", 1)
        .unwrap()
        .unwrap();
    assert_eq!(m.partitions[&now.to_string()].finality, Finality::Provisional);
    assert_eq!(m.partitions[&now.pred().pred().to_string()].finality, Finality::Final);

    // Next night: the provisional cycle is refreshed even if not asked for; the final one is skipped.
    job.cycles = vec![];
    let r = pipeline::run(&job, &c).await.unwrap();
    assert_eq!(r.units.len(), 1, "{:?}", r.units);
    assert_eq!(r.units[0].bill_cycle, now.to_string());
    assert_eq!(r.units[0].status, UnitStatus::Unchanged);

    // A forced refresh of a final partition whose data changed is a restatement.
    let changed = start_sim(|c| {
        c.seed = 99;
        c.from = now.pred().pred();
        c.to = now;
    })
    .await;
    job.cycles = vec![now.pred().pred()];
    job.force = true;
    let r = pipeline::run(&job, &client(&changed.url())).await.unwrap();
    assert!(r.success);
    assert_eq!(r.restatements, 1, "{:?}", r.units);
    let m = Manifest::load(&out.path().join("bill_summary"), "bill_summary", 1)
        .unwrap()
        .unwrap();
    assert_eq!(m.partitions[&now.pred().pred().to_string()].restatements.len(), 1);
}

/// Every dataset but the 95th-percentile points (hundreds of requests at 10/s).
const KILL_DATASETS: &str =
    "bill_summary,consumption_records,resource_bill_details,transaction_records,account_changes,focus";

fn spawn_backfill(url: &str, out: &Path) -> Child {
    bin()
        .args([
            "backfill",
            "--from",
            "2026-08",
            "--to",
            "2026-10",
            "--datasets",
            KILL_DATASETS,
            "--out",
        ])
        .arg(out)
        .env("HCBILL_ENDPOINT", url)
        .env("HUAWEICLOUD_SDK_AK", AK)
        .env("HUAWEICLOUD_SDK_SK", SK)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_any_point_then_resume_equals_an_uninterrupted_run() {
    let sim = start_sim(|c| {
        c.latency = Duration::from_millis(40);
        c.scale = 1.0;
    })
    .await;
    let reference = tempfile::tempdir().unwrap();
    let st = spawn_backfill(&sim.url(), reference.path()).wait().unwrap();
    assert!(st.success());
    let want = data_fingerprint(reference.path());
    assert!(!want.is_empty());

    for kill_after_ms in [150u64, 600, 1200] {
        let out = tempfile::tempdir().unwrap();
        let mut child = spawn_backfill(&sim.url(), out.path());
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        let report = out.path().join("report.json");
        let st = bin()
            .args([
                "backfill",
                "--from",
                "2026-08",
                "--to",
                "2026-10",
                "--datasets",
                KILL_DATASETS,
                "--report",
            ])
            .arg(&report)
            .arg("--out")
            .arg(out.path())
            .env("HCBILL_ENDPOINT", sim.url())
            .env("HUAWEICLOUD_SDK_AK", AK)
            .env("HUAWEICLOUD_SDK_SK", SK)
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        assert_eq!(data_fingerprint(out.path()), want, "killed after {kill_after_ms} ms");
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let done_before = r["units"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["status"] == "already_done")
            .count();
        if r["resumed"] == true {
            assert!(
                done_before > 0 || kill_after_ms < 300,
                "resumed without skipping anything"
            );
        }
        let staging = out.path().join(".hcbill/staging");
        assert!(
            !staging.exists() || std::fs::read_dir(&staging).unwrap().next().is_none(),
            "staging left over"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_on_the_same_output_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let _held = hcbill::sink::lease::OutputLock::acquire(&out.path().join(".hcbill")).unwrap();
    let sim = start_sim(|_| {}).await;
    let o = bin()
        .args(["backfill", "--from", "2026-08", "--to", "2026-08", "--out"])
        .arg(out.path())
        .env("HCBILL_ENDPOINT", sim.url())
        .env("HUAWEICLOUD_SDK_AK", AK)
        .env("HUAWEICLOUD_SDK_SK", SK)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("another hcbill run"));
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_appear_in_logs_reports_or_errors() {
    const TOKEN: &str = "SECURITY-TOKEN-abcdef-0123456789";
    let sim = start_sim(|c| c.fault_rate = 0.2).await;
    let out = tempfile::tempdir().unwrap();
    let mut texts = Vec::new();
    for sk in [SK, "WRONG-SECRET-KEY-0123456789"] {
        for format in ["text", "json"] {
            let o = bin()
                .args([
                    "-v",
                    "--log-format",
                    format,
                    "backfill",
                    "--from",
                    "2026-09",
                    "--to",
                    "2026-09",
                    "--force",
                    "--out",
                ])
                .arg(out.path())
                .env("HCBILL_ENDPOINT", sim.url())
                .env("HUAWEICLOUD_SDK_AK", AK)
                .env("HUAWEICLOUD_SDK_SK", sk)
                .env("HUAWEICLOUD_SDK_SECURITY_TOKEN", TOKEN)
                .output()
                .unwrap();
            if sk != SK {
                assert_eq!(o.status.code(), Some(3), "credentials refused");
                assert!(String::from_utf8_lossy(&o.stderr).contains("401"));
            }
            texts.push(String::from_utf8_lossy(&o.stdout).to_string());
            texts.push(String::from_utf8_lossy(&o.stderr).to_string());
        }
    }
    for f in walk(out.path()) {
        if f.extension().is_some_and(|e| e == "json") {
            texts.push(std::fs::read_to_string(&f).unwrap());
        }
    }
    let all = texts.join("\n");
    assert!(all.contains("APIGW.0301"), "the refusal is reported");
    for secret in [SK, "WRONG-SECRET-KEY-0123456789", TOKEN] {
        assert!(!all.contains(secret), "secret {secret} leaked");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

/// With one large unit at a time (`limits.large_units`), a unit's pages past
/// the first are asked for only once the previous large unit has asked for
/// its last: at most two accounts page at once, during a handover of at most
/// `page_concurrency` requests. The output is what four at once give.
#[tokio::test(flavor = "multi_thread")]
async fn one_large_unit_at_a_time_hands_over_and_gives_the_same_output() {
    let sim = start_sim(|c| c.scale = 4.0).await;
    let (one, four) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut job = job(one.path(), "consumption_records", "2026-10", "2026-10");
    job.accounts = hcbill::pipeline::Accounts::All;
    job.large_units = 1;
    job.page_concurrency = 2;
    let r = pipeline::run(&job, &client(&sim.url())).await.unwrap();
    assert!(r.success, "{:?}", r.failures);
    assert!(
        r.units.len() >= 3 && r.units.iter().all(|u| u.pages >= 2),
        "{:?}",
        r.units
    );

    // Requests past the first page, in the order the server answered them.
    let path = Api::named("res-fee-records").path();
    let order: Vec<String> = sim
        .state
        .stats
        .recent
        .lock()
        .unwrap()
        .iter()
        .filter(|k| k.starts_with(path) && !k.contains("offset=0&"))
        .map(|k| {
            k.split('&')
                .find_map(|p| p.strip_prefix("sub_customer_id="))
                .unwrap_or("self")
                .to_string()
        })
        .collect();
    // Each account's requests, by position in the order.
    let mut accounts: Vec<String> = order.clone();
    accounts.sort();
    accounts.dedup();
    assert_eq!(accounts.len(), r.units.len(), "{order:?}");
    let mut units: Vec<Vec<usize>> = accounts
        .iter()
        .map(|a| (0..order.len()).filter(|&i| order[i] == *a).collect())
        .collect();
    units.sort();
    for w in units.windows(2) {
        // Once the next unit has started, the previous one has at most its
        // requests already asked for (page_concurrency) left to be answered.
        let left = w[0].iter().filter(|&&i| i > w[1][0]).count();
        assert!(
            left <= job.page_concurrency,
            "{left} requests after the handover: {order:?}"
        );
    }
    for w in units.windows(3) {
        // Never three at once.
        assert!(w[0].last() < w[2].first(), "three units paging at once: {order:?}");
    }

    let mut job4 = job.clone();
    job4.out = four.path().into();
    job4.large_units = 4;
    let r4 = pipeline::run(&job4, &client(&sim.url())).await.unwrap();
    assert!(r4.success, "{:?}", r4.failures);
    assert_eq!(data_fingerprint(one.path()), data_fingerprint(four.path()));
}
