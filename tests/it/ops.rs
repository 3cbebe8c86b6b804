//! Operations: `plan` before paying, `status` after, the metrics file,
//! completions and man page, plain logs off a terminal, and the deploy files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use crate::cli::bin;

fn run(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).args(args).output().unwrap()
}

const DATASETS: &str = "bill_summary,consumption_records,usage_95_summary,usage_95_details";

fn sim_args<'a>(cmd: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        cmd,
        "--simulator",
        "--from",
        "2026-09",
        "--to",
        "2026-10",
        "--datasets",
        DATASETS,
        "--accounts",
        "self",
    ];
    v.extend(extra);
    v
}

#[test]
fn the_plan_estimates_the_pages_the_run_then_fetches_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &sim_args("plan", &["--format", "json"]));
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!dir.path().join("out").exists(), "a plan writes nothing");
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        plan["units"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["action"] == "run" && u["reason"] == "missing")
    );
    let estimated: BTreeMap<String, u64> = plan["apis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["api"].as_str().unwrap().to_string(), a["pages"].as_u64().unwrap()))
        .collect();

    let report = dir.path().join("report.json");
    let o = run(
        dir.path(),
        &sim_args("backfill", &["--report", report.to_str().unwrap()]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let fetched: BTreeMap<String, u64> = r["requests"]["requests_per_api"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(estimated, fetched, "the plan's pages are the run's requests");

    // Planned again, the final cycles are skipped, from the manifest.
    let o = run(dir.path(), &sim_args("backfill", &["--dry-run"]));
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("skip  final") && text.contains("0 of 8 units to run"),
        "{text}"
    );
}

#[test]
fn status_and_the_metrics_file_tell_what_the_run_did() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("hcbill.prom");
    let report = dir.path().join("report.json");
    let o = run(
        dir.path(),
        &sim_args(
            "backfill",
            &[
                "--metrics-file",
                metrics.to_str().unwrap(),
                "--report",
                report.to_str().unwrap(),
            ],
        ),
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();

    // The metrics, parsed back, agree with the run report.
    let text = std::fs::read_to_string(&metrics).unwrap();
    let mut samples: BTreeMap<String, f64> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        samples.insert(name.to_string(), value.parse().unwrap());
    }
    assert_eq!(samples["hcbill_last_run_exit_code{command=\"backfill\"}"], 0.0);
    assert!(samples.contains_key("hcbill_last_success_timestamp_seconds"));
    for (api, n) in r["requests"]["requests_per_api"].as_object().unwrap() {
        assert_eq!(
            samples[&format!("hcbill_last_run_requests{{api=\"{api}\"}}")],
            n.as_f64().unwrap()
        );
    }
    let published = r["units"].as_array().unwrap().len() as f64;
    assert_eq!(samples["hcbill_last_run_units{status=\"published\"}"], published);
    let rows: u64 = r["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["rows"].as_u64().unwrap())
        .sum();
    let metric_rows: f64 = samples
        .iter()
        .filter(|(k, _)| k.starts_with("hcbill_last_run_rows{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(metric_rows, rows as f64);
    for u in r["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["dataset"] == "bill_summary")
    {
        let total: f64 = u["money_totals"]["consume_amount"].as_str().unwrap().parse().unwrap();
        // Every money sample names the currency the API answered in.
        assert_eq!(u["currency"], "CNY", "{u}");
        let key = format!(
            "hcbill_money_total{{dataset=\"bill_summary\",bill_cycle=\"{}\",column=\"consume_amount\",currency=\"CNY\"}}",
            u["bill_cycle"].as_str().unwrap()
        );
        assert!((samples[&key] - total).abs() < 1e-6, "{key}");
    }

    // A failed run keeps the last success and says so.
    let o = run(
        dir.path(),
        &[
            "backfill",
            "--simulator",
            "--from",
            "2026-13",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));

    let o = run(dir.path(), &["status", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["last_run"]["success"], true);
    let bill = st["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dataset"] == "bill_summary")
        .unwrap();
    assert_eq!(bill["cycles"].as_array().unwrap().len(), 2);
    assert!(
        bill["cycles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["finality"] == "final")
    );
    let o = run(dir.path(), &["status"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("last run: backfill") && table.contains("consume_amount"),
        "{table}"
    );
    let o = run(dir.path(), &["status", "--out", "nowhere"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let o = run(dir.path(), &["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("hcbill") && text.contains("backfill") && text.contains("metrics-file"),
            "{shell}"
        );
    }
    let o = run(dir.path(), &["man"]);
    let man = String::from_utf8_lossy(&o.stdout);
    assert!(
        man.starts_with(".ie") || man.contains(".TH hcbill"),
        "{}",
        &man[..man.len().min(200)]
    );
    assert!(man.contains("backfill"));
}

#[test]
fn logs_off_a_terminal_carry_no_escape_codes_and_quiet_keeps_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &sim_args("backfill", &[]));
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("INFO"), "{err}");
    assert!(!err.contains('\u{1b}'), "escape codes in redirected stderr");
    let o = run(dir.path(), &sim_args("backfill", &["--quiet", "--force"]));
    assert_eq!(o.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("INFO"));
    assert!(hcbill::cli::colour_wanted(true, None));
    assert!(!hcbill::cli::colour_wanted(true, Some("1")));
    assert!(!hcbill::cli::colour_wanted(false, None));
}

#[test]
fn the_deploy_files_parse_and_say_what_operations_need() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let k8s = std::fs::read_to_string(root.join("kubernetes/cronjob.yaml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&k8s).unwrap();
    let cj = &docs[0];
    assert_eq!(cj["kind"].as_str(), Some("CronJob"));
    assert_eq!(cj["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(cj["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
    let pod = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert!(
        c["envFrom"][0]["secretRef"]["name"].as_str().is_some(),
        "credentials from a Secret"
    );
    let args: Vec<&str> = c["args"].as_vec().unwrap().iter().filter_map(|a| a.as_str()).collect();
    assert!(args.contains(&"nightly") && args.iter().any(|a| a.starts_with("obs://")));
    // Every argument is one this binary takes.
    let o = bin().args(&args).arg("--help").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));

    let ini = |text: &str| -> BTreeMap<String, BTreeMap<String, String>> {
        let mut m: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut section = String::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.to_string();
            } else {
                let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
                m.entry(section.clone())
                    .or_default()
                    .insert(k.to_string(), v.to_string());
            }
        }
        m
    };
    let service = ini(&std::fs::read_to_string(root.join("systemd/hcbill-nightly.service")).unwrap());
    assert_eq!(service["Service"]["Type"], "oneshot");
    assert!(service["Service"]["ExecStart"].contains("hcbill nightly"));
    let timer = ini(&std::fs::read_to_string(root.join("systemd/hcbill-nightly.timer")).unwrap());
    assert!(timer["Timer"].contains_key("OnCalendar"));
    assert_eq!(timer["Install"]["WantedBy"], "timers.target");
    let docker = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(docker.contains(" AS build") && docker.contains("USER 10001") && docker.contains("ENTRYPOINT"));
    let cron = std::fs::read_to_string(root.join("crontab")).unwrap();
    let line = cron
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap();
    assert_eq!(line.split_whitespace().take(5).count(), 5, "five schedule fields");
    assert!(cron.contains("Exit codes"));
}
