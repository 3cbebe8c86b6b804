//! What a bucket output promises when things go wrong, tried the way they go
//! wrong in the field: a holder paused past its lease (SIGSTOP) then woken,
//! answers lost after the write landed, stores that ignore or refuse
//! conditional writes, SIGTERM in the middle of a multipart upload, a late
//! object the manifest does not name, and the cost of bookkeeping as a
//! backfill grows. The S3 server is `s3server` (conditional writes atomic).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;

use crate::cli::bin;
use crate::common::*;
use crate::s3server::*;

/// A backfill of three datasets, two months, the caller and one member, into
/// `out` on `s3`, the simulator answering after `latency_ms`.
pub fn run(dir: &Path, out: &str, s3: &S3, latency_ms: u64, env: &[(&str, &str)]) -> Command {
    let mut c = crate::bucket::backfill_slowed(dir, out, Some(s3), &[], latency_ms);
    c.env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

pub async fn output(mut c: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || c.output()).await.unwrap().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// The reference: the same backfill into a local directory.
async fn local_reference(dir: &Path, s3: &S3) -> std::path::PathBuf {
    let local = dir.join("local");
    let o = output(run(dir, local.to_str().unwrap(), s3, 0, &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    local
}

/// Every object under a directory of the server: path → sha256 of its bytes.
fn objects(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, hcbill::sink::parquet::file_sha256(&p).unwrap().1);
            }
        }
    }
    out
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool, limit: Duration) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal(child: &std::process::Child, sig: libc::c_int) {
    // SAFETY: a plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

async fn wait_child(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return tokio::task::spawn_blocking(move || child.wait_with_output())
                .await
                .unwrap()
                .unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not end within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_paused_past_its_lease_writes_nothing_once_woken() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let local = local_reference(work.path(), &s3).await;
    let ttl = [("HCBILL_LEASE_SECONDS", "6")];
    let mut a = run(work.path(), "s3://lake/paused", &s3, 300, &ttl);
    a.stdout(Stdio::piped()).stderr(Stdio::piped());
    let a = a.spawn().unwrap();
    // Paused once it has published something, mid-run.
    let shards = s3.dir("paused/bill_summary/_manifest");
    wait_for("a first commit", || shards.exists(), Duration::from_secs(60)).await;
    signal(&a, libc::SIGSTOP);
    tokio::time::sleep(Duration::from_secs(7)).await;

    // Its lease has expired: another run takes over and finishes the job.
    let b = output(run(work.path(), "s3://lake/paused", &s3, 300, &ttl)).await;
    assert_eq!(b.status.code(), Some(0), "{}", text(&b.stderr));
    assert!(
        text(&b.stderr).contains("taking over the expired lease"),
        "{}",
        text(&b.stderr)
    );
    let after_takeover = objects(&s3.dir("paused"));

    // Woken, the paused run finds its lease gone and stops without a write.
    signal(&a, libc::SIGCONT);
    let a = wait_child(a, Duration::from_secs(60)).await;
    let err = text(&a.stderr);
    assert_eq!(a.status.code(), Some(4), "{err}");
    assert!(err.lines().last().unwrap().contains("lease"), "{err}");
    assert_eq!(
        objects(&s3.dir("paused")),
        after_takeover,
        "not one object written by the paused run"
    );
    assert_eq!(data_fingerprint(&s3.dir("paused")), data_fingerprint(&local));
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_lost_after_the_write_landed_do_not_stop_the_run() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let local = local_reference(work.path(), &s3).await;
    // The lease's creation and two renewals, a manifest shard twice, the state once.
    s3.lose_answers("/lost/.hcbill/lease", 3);
    s3.lose_answers("/lost/consumption_records/_manifest/2026-10.json", 2);
    s3.lose_answers("/lost/.hcbill/state.json", 1);
    let o = output(run(
        work.path(),
        "s3://lake/lost",
        &s3,
        300,
        &[("HCBILL_LEASE_SECONDS", "6")],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(s3.answers_lost() >= 4, "{} answers lost", s3.answers_lost());
    assert_eq!(data_fingerprint(&s3.dir("lost")), data_fingerprint(&local));
    let lease: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s3.dir("lost/.hcbill/lease")).unwrap()).unwrap();
    assert_eq!(lease["released"], true, "{lease}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_ignores_or_refuses_conditions_is_one_line_and_nothing_written() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let ttl = [("HCBILL_LEASE_SECONDS", "6")];
    for (mode, says, prefix) in [
        (Conditions::Ignore, "ignores conditional writes", "ignoring"),
        (Conditions::Reject, "refuses conditional writes", "refusing"),
    ] {
        s3.set_conditions(mode);
        let o = output(run(work.path(), &format!("s3://lake/{prefix}"), &s3, 0, &ttl)).await;
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        let line = err.lines().last().unwrap();
        assert!(line.contains(says) && line.contains("--lock external"), "{line}");
        assert!(objects(&s3.dir(prefix)).is_empty(), "{:?}", objects(&s3.dir(prefix)));
    }
    // Where the scheduler keeps runs apart, --lock external runs on such a store.
    s3.set_conditions(Conditions::Ignore);
    let o = output(run(
        work.path(),
        "s3://lake/external",
        &s3,
        0,
        &[("HCBILL_LOCK", "external")],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!s3.dir("external/.hcbill/lease").exists(), "no lease is taken");
    s3.set_conditions(Conditions::Honour);
    let local = local_reference(work.path(), &s3).await;
    assert_eq!(data_fingerprint(&s3.dir("external")), data_fingerprint(&local));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_upload_aborts_it_releases_the_lease_and_the_next_run_resumes() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let local = local_reference(work.path(), &s3).await;
    // Small parts, each served slowly: a file's upload takes seconds.
    let env = [("HCBILL_UPLOAD_PART_BYTES", "65536")];
    s3.part_delay_ms.store(700, std::sync::atomic::Ordering::SeqCst);
    let mut c = run(work.path(), "s3://lake/term", &s3, 0, &env);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    wait_for("a multipart upload", || s3.open_uploads() > 0, Duration::from_secs(60)).await;
    let sent = Instant::now();
    signal(&child, libc::SIGTERM);
    let o = wait_child(child, Duration::from_secs(40)).await;
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        sent.elapsed()
    );
    assert!(err.lines().last().unwrap().contains("SIGTERM"), "{err}");
    assert_eq!(s3.open_uploads(), 0, "no multipart upload is left open");
    let lease: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s3.dir("term/.hcbill/lease")).unwrap()).unwrap();
    assert_eq!(lease["released"], true, "the next run need not wait: {lease}");

    // (Parts this small are refused at completion, as S3 does: the resumed
    // run uploads with the default part size, its files in one PUT.)
    s3.part_delay_ms.store(0, std::sync::atomic::Ordering::SeqCst);
    let o = output(run(work.path(), "s3://lake/term", &s3, 0, &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("(resumed)"), "{}", text(&o.stdout));
    assert_eq!(s3.open_uploads(), 0);
    assert_eq!(data_fingerprint(&s3.dir("term")), data_fingerprint(&local));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_the_manifest_does_not_name_is_written_again_and_verify_sees_it() {
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let o = output(run(work.path(), "s3://lake/late", &s3, 0, &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // A late writer's object over one the manifest names (same size, other bytes).
    let rel = "late/consumption_records/bill_cycle=2026-09/part-self.parquet";
    let good = std::fs::read(s3.dir(rel)).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    let store = s3.client();
    store
        .put(&object_store::path::Path::from(rel), bad.into())
        .await
        .unwrap();

    // verify reads the bucket itself and names the file.
    let o = output(reader(&s3, &["verify", "--out", "s3://lake/late"])).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("sha256 differs") && text(&o.stdout).contains("s3://lake/late"),
        "{}",
        text(&o.stdout)
    );

    // The next run (nothing forced, the month final or not) sees an object
    // whose ETag the manifest does not record, and writes it again.
    let o = output(run(work.path(), "s3://lake/late", &s3, 0, &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(s3.dir(rel)).unwrap().len(), good.len());
    let mut c = run(work.path(), "s3://lake/late", &s3, 0, &[]);
    c.arg("--verify");
    let o = output(c).await;
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o.stdout), text(&o.stderr));
    assert!(
        text(&o.stdout).contains("verify s3://lake/late: ") && text(&o.stdout).contains(" 0 failures"),
        "--verify read the bucket: {}",
        text(&o.stdout)
    );
    // status reads it too.
    let o = output(reader(&s3, &["status", "--out", "s3://lake/late", "--format", "json"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["datasets"].as_array().map(Vec::len), Some(3), "{st}");
}

/// `hcbill <args>` reading the server's bucket.
pub fn reader(s3: &S3, args: &[&str]) -> Command {
    let mut c = bin();
    c.args(args).env("NO_COLOR", "1");
    crate::bucket::aws_env(&mut c, s3);
    c
}

/// Units of a backfill of `months` months × 50 accounts (one page each), and
/// the bytes of manifests and state uploaded for them.
async fn bookkeeping(months: u32) -> (u64, u64) {
    let sim = start_sim(|c| {
        c.members = 49;
        c.scale = 0.02;
        c.rate_limit = Some(0);
        c.from = cycle("2025-01");
        c.to = cycle("2026-10");
    })
    .await;
    let s3 = S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let last = cycle("2026-10");
    let mut first = last;
    for _ in 1..months {
        first = first.pred();
    }
    let pipeline = work.path().join("fast.toml");
    std::fs::write(
        &pipeline,
        "[limits]\nunits = 16\nquota = { \"monthly-sum\" = 2000, \"sub-customers\" = 2000 }\n",
    )
    .unwrap();
    let mut c = bin();
    c.arg("run")
        .arg(&pipeline)
        .args(["--from", &first.to_string(), "--to", &last.to_string()])
        .args(["--datasets", "bill_summary", "--accounts", "all", "--quiet"])
        .args(["--endpoint", &sim.url(), "--out", "s3://lake/big"])
        .env("HUAWEICLOUD_SDK_AK", AK)
        .env("HUAWEICLOUD_SDK_SK", SK)
        .env("AWS_ENDPOINT_URL", &s3.url)
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true");
    let o = output(c).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let units = u64::from(months) * 50;
    let bytes = s3.put_bytes(|p| p.contains("/_manifest") || p.ends_with("/.hcbill/state.json"));
    (units, bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn bookkeeping_bytes_grow_linearly_with_units() {
    let (u9, b9) = bookkeeping(9).await;
    let (u18, b18) = bookkeeping(18).await;
    let (per9, per18) = (b9 as f64 / u9 as f64, b18 as f64 / u18 as f64);
    println!(
        "manifest and state bytes uploaded: 9 months x 50 accounts {b9} B ({per9:.0} B/unit); \
         18 months x 50 accounts {b18} B ({per18:.0} B/unit)"
    );
    // Linear: the same cost per unit however long the backfill (a whole-lake
    // rewrite per unit would double it).
    assert!(per18 < per9 * 1.2, "{per9:.0} then {per18:.0} B/unit");
}
