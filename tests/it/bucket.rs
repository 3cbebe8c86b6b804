//! Output to an object store, against an S3 server started in the test
//! (s3s-fs on 127.0.0.1, objects kept as files under a temporary root): the
//! same files as a local run, nothing uploaded twice, resume after kill -9, one
//! writer at a time through the lease, exact output through injected faults,
//! and never a partial object.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::cli::bin;
use crate::common::*;
use crate::s3server::*;

pub fn aws_env(c: &mut Command, s3: &S3) {
    c.env("AWS_ENDPOINT_URL", &s3.url)
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
}

/// A backfill with the embedded simulator (fixed seed) into `out`.
fn backfill(dir: &Path, out: &str, s3: Option<&S3>, extra: &[&str]) -> Command {
    backfill_slowed(dir, out, s3, extra, 0)
}

/// The same, with the simulator answering after `latency_ms`: long enough to
/// be caught mid-run.
pub fn backfill_slowed(dir: &Path, out: &str, s3: Option<&S3>, extra: &[&str], latency_ms: u64) -> Command {
    let pipeline = dir.join(format!("sim-{latency_ms}.toml"));
    std::fs::write(
        &pipeline,
        format!(
            "[source.simulator]\nseed = 42\nscale = 0.3\nfrom = \"2026-08\"\nto = \"2026-10\"\nmembers = 1\nlatency_ms = {latency_ms}\n"
        ),
    )
    .unwrap();
    let mut c = bin();
    c.current_dir(dir)
        .args(["run"])
        .arg(&pipeline)
        .args([
            "--from",
            "2026-09",
            "--to",
            "2026-10",
            "--datasets",
            "bill_summary,consumption_records,transaction_records",
            "--accounts",
            "all",
            "--out",
            out,
        ])
        .args(extra);
    if let Some(s3) = s3 {
        aws_env(&mut c, s3);
    }
    c
}

async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output()).await.unwrap().unwrap()
}

/// Relative paths of the data files and manifests under a directory.
fn data_files(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, d: &Path, acc: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if rel.starts_with(".hcbill") {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, acc);
            } else {
                acc.insert(rel);
            }
        }
    }
    let mut acc = BTreeSet::new();
    walk(dir, dir, &mut acc);
    acc
}

fn sha256(path: &Path) -> String {
    hcbill::sink::parquet::file_sha256(path).unwrap().1
}

/// Every manifest entry's recorded sha256 equals its object's bytes.
fn objects_match_manifests(dir: &Path) -> usize {
    let mut n = 0;
    for ds in ["bill_summary", "consumption_records", "transaction_records"] {
        let m: serde_json::Value = manifest_json(&dir.join(ds));
        for p in m["partitions"].as_object().unwrap().values() {
            for f in p["files"].as_object().unwrap().values() {
                let path = dir.join(ds).join(f["path"].as_str().unwrap());
                assert_eq!(sha256(&path), f["sha256"].as_str().unwrap(), "{}", path.display());
                assert_eq!(std::fs::metadata(&path).unwrap().len(), f["bytes"].as_u64().unwrap());
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_holds_what_a_directory_would_and_a_second_run_uploads_nothing() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("local");
    let o = output(backfill(work.path(), local.to_str().unwrap(), None, &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = output(backfill(work.path(), "s3://lake/bills/hcbill", Some(&s3), &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("report: s3://lake/bills/hcbill/.hcbill/reports/"),
        "{stdout}"
    );

    let remote = s3.dir("bills/hcbill");
    assert_eq!(data_files(&remote), data_files(&local), "the same layout and files");
    assert!(objects_match_manifests(&remote) >= 6);
    assert_eq!(data_fingerprint(&remote), data_fingerprint(&local), "the same rows");
    assert!(remote.join(".hcbill/state.json").exists(), "state lives with the data");
    let lease: serde_json::Value =
        serde_json::from_slice(&std::fs::read(remote.join(".hcbill/lease")).unwrap()).unwrap();
    assert_eq!(lease["released"], true, "the lease is released: {lease}");
    assert!(
        !std::fs::read_dir(remote.join(".hcbill"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("probe-")),
        "the probe object is removed"
    );
    let first = s3.parquet_puts();
    assert!(first >= 6, "{first}");

    // Again, forced: every unit is extracted again, and nothing changed.
    let o = output(backfill(work.path(), "s3://lake/bills/hcbill", Some(&s3), &["--force"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("unchanged"));
    assert_eq!(s3.parquet_puts(), first, "a second run uploads no data file");
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_store_faults_still_give_the_exact_output() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("local");
    assert!(
        output(backfill(work.path(), local.to_str().unwrap(), None, &[]))
            .await
            .status
            .success()
    );
    s3.fault_percent.store(20, Ordering::SeqCst);
    let o = output(backfill(work.path(), "s3://lake/faulty", Some(&s3), &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    s3.fault_percent.store(0, Ordering::SeqCst);
    let remote = s3.dir("faulty");
    assert_eq!(data_fingerprint(&remote), data_fingerprint(&local));
    objects_match_manifests(&remote);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_writer_at_a_time_and_a_dead_runs_lease_is_taken_over_after_it_expires() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let lease = s3.dir("leased/.hcbill/lease");
    std::fs::create_dir_all(lease.parent().unwrap()).unwrap();
    let write_lease = |until: chrono::DateTime<chrono::Utc>| {
        std::fs::write(
            &lease,
            serde_json::json!({"run_id": "other-run", "host": "elsewhere", "expires_at": until}).to_string(),
        )
        .unwrap();
    };
    // A live lease: refused before any request is spent.
    write_lease(chrono::Utc::now() + chrono::Duration::seconds(50));
    let o = output(backfill(work.path(), "s3://lake/leased", Some(&s3), &[])).await;
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let line = String::from_utf8_lossy(&o.stderr).lines().last().unwrap().to_string();
    assert!(line.contains("holds the lease") && line.contains("other-run"), "{line}");
    assert!(!s3.dir("leased/bill_summary").exists());
    // An expired one, left by a dead run: taken over.
    write_lease(chrono::Utc::now() - chrono::Duration::seconds(5));
    let o = output(backfill(work.path(), "s3://lake/leased", Some(&s3), &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("taking over the expired lease"));

    // Two runs at once: the second is refused while the first holds the lease.
    let mut first = backfill_slowed(work.path(), "s3://lake/busy", Some(&s3), &["--force"], 400);
    first.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = first.spawn().unwrap();
    let busy_lease = s3.dir("busy/.hcbill/lease");
    for _ in 0..100 {
        if busy_lease.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(busy_lease.exists(), "the first run took the lease");
    let o = output(backfill(work.path(), "s3://lake/busy", Some(&s3), &[])).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds the lease"));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_run_then_resume_gives_the_same_objects() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("local");
    assert!(
        output(backfill(work.path(), local.to_str().unwrap(), None, &[]))
            .await
            .status
            .success()
    );
    let mut cmd = backfill_slowed(work.path(), "s3://lake/killed", Some(&s3), &[], 400);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Wait until some units are published, then kill -9.
    let manifest = s3.dir("killed/bill_summary/_manifest");
    for _ in 0..200 {
        if manifest.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The lease of the killed run is still there: the next run waits for it to expire.
    let lease = s3.dir("killed/.hcbill/lease");
    if lease.exists() {
        let mut l: serde_json::Value = serde_json::from_slice(&std::fs::read(&lease).unwrap()).unwrap();
        l["expires_at"] = serde_json::json!(chrono::Utc::now() - chrono::Duration::seconds(1));
        std::fs::write(&lease, l.to_string()).unwrap();
    }
    // The same command again (so the same job): it resumes.
    let o = output(backfill_slowed(work.path(), "s3://lake/killed", Some(&s3), &[], 400)).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("(resumed)"));
    let remote = s3.dir("killed");
    assert_eq!(data_fingerprint(&remote), data_fingerprint(&local));
    objects_match_manifests(&remote);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_multipart_upload_leaves_no_partial_object() {
    use object_store::ObjectStoreExt;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s3 = S3::start().await;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&s3.url)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(BUCKET)
        .with_access_key_id(KEY)
        .with_secret_access_key(SECRET)
        .with_retry(object_store::RetryConfig {
            max_retries: 1,
            retry_timeout: Duration::from_secs(2),
            ..Default::default()
        })
        .build()
        .unwrap();
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(store);
    let out = hcbill::sink::output::Output::with_store(
        store.clone(),
        "big",
        "s3://lake/big",
        &Default::default(),
        Default::default(),
    );
    let lease = out.lock("test-run").await.unwrap();
    // 20 MiB: three parts. The server fails everything once the first part is in.
    let staged = out.staging_file("big.parquet");
    std::fs::write(&staged, vec![7u8; 20 << 20]).unwrap();
    let requests = s3.requests.clone();
    let faults = s3.fault_percent.clone();
    let before = requests.load(Ordering::SeqCst);
    let watcher = tokio::spawn(async move {
        while requests.load(Ordering::SeqCst) < before + 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        faults.store(200, Ordering::SeqCst);
    });
    let r = out
        .publish(&staged, "d/bill_cycle=2026-10/part-self.parquet", None)
        .await;
    watcher.abort();
    s3.fault_percent.store(0, Ordering::SeqCst);
    assert!(r.is_err(), "the upload failed");
    let path = object_store::path::Path::from("big/d/bill_cycle=2026-10/part-self.parquet");
    assert!(
        matches!(store.head(&path).await, Err(object_store::Error::NotFound { .. })),
        "no partial object is visible"
    );
    // And a whole one is, in one step.
    std::fs::write(&staged, vec![7u8; 20 << 20]).unwrap();
    out.publish(&staged, "d/bill_cycle=2026-10/part-self.parquet", None)
        .await
        .unwrap();
    assert_eq!(store.head(&path).await.unwrap().size, 20 << 20);
    lease.release().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_bucket_is_one_line_and_exit_2_before_any_request() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let mut c = backfill(work.path(), "s3://lake/denied", Some(&s3), &[]);
    c.env("AWS_SECRET_ACCESS_KEY", "wrong-secret");
    let o = output(c).await;
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err.lines().last().unwrap();
    assert!(line.starts_with("hcbill: ") && line.contains("access denied"), "{line}");
    assert!(!err.contains("wrong-secret") && !err.contains(SECRET));
}

/// A bucket written in the older layout (`amortized_costs` under
/// `bill_cycle=`) is moved by server-side copies: the same objects under
/// `shared_month=`, nothing left in the old place.
#[tokio::test(flavor = "multi_thread")]
async fn an_old_layout_in_a_bucket_is_moved() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let run = || {
        let pipeline = work.path().join("sim.toml");
        std::fs::write(
            &pipeline,
            "[source.simulator]\nseed = 42\nscale = 0.3\nfrom = \"2026-08\"\nto = \"2026-10\"\n",
        )
        .unwrap();
        let mut c = bin();
        c.current_dir(work.path()).args(["run"]).arg(&pipeline).args([
            "--from",
            "2026-09",
            "--to",
            "2026-10",
            "--datasets",
            "amortized_costs",
            "--out",
            "s3://lake/bills/hcbill",
        ]);
        aws_env(&mut c, &s3);
        c
    };
    let o = output(run()).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let remote = s3.dir("bills/hcbill");
    let before = crate::layout::files(&remote.join("amortized_costs"));
    assert!(before.keys().all(|k| k.starts_with("shared_month=")), "{before:?}");
    crate::layout::to_old_layout(&remote, "amortized_costs", "shared_month", false);
    let o = output(run()).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(crate::layout::files(&remote.join("amortized_costs")), before);
    let m = manifest_text(&remote.join("amortized_costs"));
    assert!(!m.contains("bill_cycle="), "{m}");
}
