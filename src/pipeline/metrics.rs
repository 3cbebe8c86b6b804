//! `--metrics-file`: the run's figures in the Prometheus text exposition
//! format, for node_exporter's textfile collector. Written atomically at the
//! end of every run, failed or not, so an alert can fire on a silent cron.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::report::RunReport;

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn metric(s: &mut String, name: &str, help: &str, kind: &str, samples: &[(String, String)]) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(s, "{name} {value}");
        } else {
            let _ = writeln!(s, "{name}{{{labels}}} {value}");
        }
    }
}

fn secs(t: DateTime<Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

/// The last success recorded in an earlier metrics file, if any.
pub fn previous_success(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with("hcbill_last_success_timestamp_seconds "))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
}

/// The exposition for a run that ended with `exit_code` (its report, when it got that far).
pub fn render(
    command: &str,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    exit_code: u8,
    report: Option<&RunReport>,
    previous: Option<&str>,
) -> String {
    let mut s = String::new();
    let cmd = format!("command=\"{}\"", label(command));
    let one = |v: String| vec![(cmd.clone(), v)];
    metric(
        &mut s,
        "hcbill_last_run_start_timestamp_seconds",
        "Start of the last run.",
        "gauge",
        &one(secs(started_at)),
    );
    metric(
        &mut s,
        "hcbill_last_run_end_timestamp_seconds",
        "End of the last run.",
        "gauge",
        &one(secs(finished_at)),
    );
    let success = if exit_code == 0 {
        Some(secs(finished_at))
    } else {
        previous.and_then(previous_success)
    };
    if let Some(v) = success {
        metric(
            &mut s,
            "hcbill_last_success_timestamp_seconds",
            "End of the last successful run.",
            "gauge",
            &[(String::new(), v)],
        );
    }
    metric(
        &mut s,
        "hcbill_last_run_exit_code",
        "Exit code of the last run (0 ok, 1 units failed, 2 bad input, 3 credentials refused).",
        "gauge",
        &one(exit_code.to_string()),
    );
    let Some(r) = report else { return s };
    metric(
        &mut s,
        "hcbill_last_run_duration_seconds",
        "Duration of the last run.",
        "gauge",
        &one(format!("{:.3}", r.duration_seconds)),
    );
    let mut units: BTreeMap<String, u64> = BTreeMap::new();
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    let mut bytes: BTreeMap<String, u64> = BTreeMap::new();
    let mut money: BTreeMap<(String, String, String, String), Decimal> = BTreeMap::new();
    for u in &r.units {
        *units.entry(format!("{:?}", u.status).to_lowercase()).or_default() += 1;
        *rows.entry(u.dataset.clone()).or_default() += u.rows;
        *bytes.entry(u.dataset.clone()).or_default() += u.bytes;
        for (col, v) in &u.money_totals {
            if let Ok(d) = v.parse::<Decimal>() {
                let currency = u
                    .currency
                    .clone()
                    .unwrap_or_else(|| crate::sink::manifest::UNRECORDED.into());
                *money
                    .entry((u.dataset.clone(), u.bill_cycle.clone(), col.clone(), currency))
                    .or_default() += d;
            }
        }
    }
    let samples = |m: &BTreeMap<String, u64>, key: &str| -> Vec<(String, String)> {
        m.iter()
            .map(|(k, v)| (format!("{key}=\"{}\"", label(k)), v.to_string()))
            .collect()
    };
    metric(
        &mut s,
        "hcbill_last_run_units",
        "Units of the last run by status.",
        "gauge",
        &samples(&units, "status"),
    );
    metric(
        &mut s,
        "hcbill_last_run_rows",
        "Rows of the last run's units by dataset.",
        "gauge",
        &samples(&rows, "dataset"),
    );
    metric(
        &mut s,
        "hcbill_last_run_bytes",
        "Bytes of the files of the last run's units by dataset.",
        "gauge",
        &samples(&bytes, "dataset"),
    );
    let q = &r.requests;
    metric(
        &mut s,
        "hcbill_last_run_requests",
        "Requests of the last run by API.",
        "gauge",
        &samples(&q.requests_per_api, "api"),
    );
    metric(
        &mut s,
        "hcbill_last_run_retries",
        "Retries of the last run by API.",
        "gauge",
        &samples(&q.retries_per_api, "api"),
    );
    metric(
        &mut s,
        "hcbill_last_run_throttled",
        "Throttled answers (429) of the last run by API.",
        "gauge",
        &samples(&q.throttled_per_api, "api"),
    );
    let money: Vec<(String, String)> = money
        .iter()
        .map(|((d, c, col, cur), v)| {
            (
                format!(
                    "dataset=\"{}\",bill_cycle=\"{}\",column=\"{}\",currency=\"{}\"",
                    label(d),
                    label(c),
                    label(col),
                    label(cur)
                ),
                v.normalize().to_string(),
            )
        })
        .collect();
    metric(
        &mut s,
        "hcbill_money_total",
        "Money totals of the last run's units by dataset, cycle and column (currency units).",
        "gauge",
        &money,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_runs_keep_the_last_success_and_labels_are_escaped() {
        let t = Utc::now();
        let ok = render("nightly", t, t, 0, None, None);
        let last = previous_success(&ok).unwrap();
        let failed = render("run a\"b", t, t, 1, None, Some(&ok));
        assert_eq!(previous_success(&failed).unwrap(), last);
        assert!(failed.contains("hcbill_last_run_exit_code{command=\"run a\\\"b\"} 1"));
        assert!(
            render("nightly", t, t, 1, None, None)
                .find("hcbill_last_success")
                .is_none()
        );
    }
}
