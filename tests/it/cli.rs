//! The binary: bad input gets one clear line, exit code 2, and nothing written.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::*;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hcbill"));
    for k in [
        "HUAWEICLOUD_SDK_AK",
        "HUAWEICLOUD_SDK_SK",
        "HUAWEICLOUD_SDK_DOMAIN_ID",
        "HUAWEICLOUD_SDK_SECURITY_TOKEN",
        "HCBILL_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    c.env(
        "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
        "/nonexistent/hcbill-test-credentials",
    );
    c
}

fn run(args: &[&str], dir: &Path) -> Output {
    bin().args(args).current_dir(dir).output().unwrap()
}

fn one_line_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{err}");
    assert!(
        lines[0].starts_with("hcbill: ") || lines[0].starts_with("error:"),
        "{err}"
    );
    lines[0].to_string()
}

fn assert_nothing_written(dir: &Path) {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let unexpected: Vec<_> = entries.iter().filter(|n| *n != "bad.toml").collect();
    assert!(unexpected.is_empty(), "wrote {unexpected:?}");
}

#[test]
fn bad_input_is_one_line_and_exit_2_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with_creds = |args: &[&str]| {
        bin()
            .args(args)
            .current_dir(d)
            .env("HUAWEICLOUD_SDK_AK", AK)
            .env("HUAWEICLOUD_SDK_SK", SK)
            .output()
            .unwrap()
    };
    let cases: Vec<(Output, &str)> = vec![
        (
            with_creds(&["backfill", "--from", "2026-13", "--to", "2026-10"]),
            "2026-13",
        ),
        (
            with_creds(&["backfill", "--from", "2026-10", "--to", "2026-01"]),
            "after",
        ),
        (
            with_creds(&["backfill", "--from", "2026-01", "--to", "2099-01"]),
            "future",
        ),
        (with_creds(&["backfill", "--to", "2026-01"]), "--from"),
        (
            with_creds(&[
                "backfill",
                "--from",
                "2026-01",
                "--to",
                "2026-02",
                "--datasets",
                "bills",
            ]),
            "unknown dataset",
        ),
        (
            with_creds(&[
                "backfill",
                "--from",
                "2026-01",
                "--to",
                "2026-02",
                "--endpoint",
                "http://bss.example.com",
            ]),
            "loopback",
        ),
        (
            run(&["backfill", "--from", "2026-01", "--to", "2026-02"], d),
            "HUAWEICLOUD_SDK_AK",
        ),
        (run(&["run", "missing.toml"], d), "missing.toml"),
        (run(&["sim", "--scale", "0"], d), "scale"),
        (
            with_creds(&["backfill", "--from", "2026-01", "--grace-hours", "9223372036854775807"]),
            "--grace-hours",
        ),
        (
            with_creds(&["backfill", "--from", "2026-01", "--grace-hours=-1"]),
            "between 0 and 744",
        ),
        (
            with_creds(&["backfill", "--from", "2026-01", "--deadline", "forever"]),
            "--deadline",
        ),
        (
            with_creds(&["backfill", "--from", "2026-01", "--deadline", "0s"]),
            "between 1s and 30 days",
        ),
        (
            with_creds(&["backfill", "--from", "2026-01", "--accounts", "../../etc"]),
            "not an account id",
        ),
        (
            with_creds(&["backfill", "--from", "2026-01", "--set", "nope.x=1"]),
            "unknown dataset",
        ),
        (
            with_creds(&[
                "backfill",
                "--from",
                "2026-01",
                "--set",
                "resource_bill_details.statistic_type=7",
            ]),
            "from 1 to 3",
        ),
        (
            with_creds(&["backfill", "--from", "2026-01", "--set", "bill_summary"]),
            "<dataset>.<option>=<value>",
        ),
    ];
    for (o, needle) in cases {
        assert_eq!(o.status.code(), Some(2), "{needle}: {o:?}");
        let line = one_line_error(&o);
        assert!(line.contains(needle), "{line:?} should mention {needle:?}");
        assert_nothing_written(d);
    }
    std::fs::write(
        d.join("bad.toml"),
        "datasets = [\"bill_summary\"]\nfrom = \"2026-01\"\nmystery = 1\n",
    )
    .unwrap();
    let o = run(&["run", "bad.toml", "--simulator"], d);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line_error(&o).contains("mystery"));
    assert_nothing_written(d);
}

#[test]
fn help_documents_every_flag() {
    let o = bin().args(["backfill", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--from",
        "--to",
        "--datasets",
        "--out",
        "--endpoint",
        "--accounts",
        "--force",
        "--report",
        "--log-format",
        "HCBILL_ENDPOINT",
    ] {
        assert!(help.contains(flag), "backfill --help lacks {flag}");
    }
    let o = bin().args(["sim", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--port",
        "--seed",
        "--scale",
        "--from",
        "--to",
        "--latency-ms",
        "--rate-limit",
        "--fault-rate",
        "--drift",
        "--ak",
        "--sk",
        "--sk-file",
    ] {
        assert!(help.contains(flag), "sim --help lacks {flag}");
    }
}

#[test]
fn sim_prints_its_address_first() {
    let mut child = bin()
        .args(["sim", "--port", "0", "--ak", AK, "--sk", SK, "--scale", "0.01"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let url = first.trim();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_ne!(url, "http://127.0.0.1:0");
}

#[test]
fn demo_pipeline_runs_on_the_embedded_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo.toml");
    let out = dir.path().join("out");
    let o = bin()
        .args([
            "run",
            pipeline.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--from",
            "2026-09",
            "--to",
            "2026-10",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("consumption_records") && stdout.contains("2026-10"),
        "{stdout}"
    );
    assert!(part(&out, "bill_summary", "2026-09", "self").exists());
    let reports: Vec<_> = std::fs::read_dir(out.join(".hcbill/reports")).unwrap().collect();
    assert_eq!(reports.len(), 1);
}

#[test]
fn schema_command_prints_warehouse_ddl() {
    let o = bin()
        .args([
            "schema",
            "consumption_records",
            "--format",
            "trino",
            "--location",
            "s3://b/out",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let ddl = String::from_utf8_lossy(&o.stdout);
    assert!(
        ddl.contains("\"amount\" decimal(38,10)")
            && ddl.contains("external_location = 's3://b/out/consumption_records'"),
        "{ddl}"
    );
    let o = bin()
        .args(["schema", "bill_summary", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dataset"], "bill_summary");
}

#[test]
fn the_simulators_secret_stays_out_of_ps_and_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let sk_file = dir.path().join("sk");
    std::fs::write(&sk_file, format!("{SK}\n")).unwrap();
    // --sk-file: the secret is read from the file; --sk warns that ps shows it.
    for (flag, value, warns) in [("--sk-file", sk_file.to_str().unwrap(), false), ("--sk", SK, true)] {
        let mut child = bin()
            .args(["sim", "--port", "0", "--ak", AK, flag, value])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut url = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut url)
            .unwrap();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.contains("prefer HUAWEICLOUD_SDK_SK"), warns, "{flag}: {err}");
        assert!(!err.contains(SK), "{flag}: the SK was logged");
    }
    let cfg = hcbill::sim::SimConfig::new(AK, SK);
    assert!(!format!("{cfg:?}").contains(SK));
}

#[cfg(not(feature = "report"))]
#[test]
fn report_without_the_feature_says_how_to_get_it() {
    let o = bin().args(["report", "--out", "/nonexistent"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line_error(&o).contains("--features report"));
}
