//! `hcbill report` (feature `report`): its totals and breakdowns equal
//! independent sums over the same Parquet files, to the last decimal.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::{Array, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray};
use hcbill::pipeline::{self, Accounts};
use hcbill::report::{self, Dimension, Format};
use rust_decimal::Decimal;

use crate::common::*;

/// Σ amount by a key column over every file of a cycle, read with arrow.
fn sums_by(out: &Path, cycle: &str, key: &str) -> HashMap<String, Decimal> {
    sums_of_files(out, cycle, key, |_| true)
}

/// The same over the files `keep` selects (by file name).
fn sums_of_files(out: &Path, cycle: &str, key: &str, keep: impl Fn(&str) -> bool) -> HashMap<String, Decimal> {
    let mut m: HashMap<String, Decimal> = HashMap::new();
    let dir = out.join("consumption_records").join(format!("bill_cycle={cycle}"));
    for f in std::fs::read_dir(dir).unwrap().flatten() {
        if !keep(&f.file_name().to_string_lossy()) {
            continue;
        }
        for b in read(&f.path()) {
            let amount = b
                .column_by_name("amount")
                .unwrap()
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .unwrap();
            for i in 0..b.num_rows() {
                let k = key_of(&b, key, i);
                let v = Decimal::from_i128_with_scale(amount.value(i), 10);
                *m.entry(k).or_default() += v;
            }
        }
    }
    m.into_iter().map(|(k, v)| (k, v.normalize())).collect()
}

fn key_of(b: &RecordBatch, key: &str, i: usize) -> String {
    let c = b.column_by_name(key).unwrap();
    if let Some(s) = c.as_any().downcast_ref::<StringArray>() {
        return if s.is_null(i) {
            String::new()
        } else {
            s.value(i).to_string()
        };
    }
    if let Some(n) = c.as_any().downcast_ref::<Int64Array>() {
        return n.value(i).to_string();
    }
    let d = c.as_any().downcast_ref::<Date32Array>().unwrap();
    d.value_as_date(i).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn totals_and_breakdowns_equal_independent_sums() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let mut job = job(out.path(), "consumption_records", "2026-09", "2026-10");
    job.accounts = Accounts::All;
    assert!(pipeline::run(&job, &client(&sim.url())).await.unwrap().success);
    let reports = report::build(&report::Options {
        out: out.path(),
        cycle: None,
        by: Dimension::ALL.to_vec(),
        top: 5,
        currency: None,
    })
    .unwrap();
    assert_eq!(reports.len(), 1, "one currency, one report");
    let r = &reports[0];
    assert_eq!(r.currency, "CNY", "the currency the API named");
    assert_eq!(r.cycle.to_string(), "2026-10", "the latest cycle by default");
    let independent = |cycle: &str| {
        sums_by(out.path(), cycle, "customer_id")
            .values()
            .copied()
            .sum::<Decimal>()
    };
    assert_eq!(r.total, independent("2026-10"));
    assert_eq!(
        r.total,
        r.manifest_total.normalize(),
        "the manifests' money total, to the last decimal"
    );
    assert_eq!(r.previous_total, independent("2026-09"));
    for b in &r.breakdowns {
        let (key, _) = b.by.columns();
        let (now, before) = (sums_by(out.path(), "2026-10", key), sums_by(out.path(), "2026-09", key));
        assert_eq!(b.lines.iter().map(|l| l.amount).sum::<Decimal>(), r.total, "{:?}", b.by);
        for l in &b.lines {
            assert_eq!(
                l.amount,
                now.get(&l.key).copied().unwrap_or_default(),
                "{:?} {}",
                b.by,
                l.key
            );
            assert_eq!(
                l.previous,
                before.get(&l.key).copied().unwrap_or_default(),
                "{:?} {}",
                b.by,
                l.key
            );
        }
        assert_eq!(
            b.lines.len(),
            now.keys()
                .chain(before.keys())
                .collect::<std::collections::HashSet<_>>()
                .len()
        );
    }
    let days = sums_by(out.path(), "2026-10", "bill_date");
    assert_eq!(r.daily.len(), days.len());
    for (d, a) in &r.daily {
        assert_eq!(*a, days[&d.to_string()]);
    }
    assert_eq!(r.top_resources.len(), 5);
    assert!(r.top_resources.windows(2).all(|w| w[0].amount >= w[1].amount));
    assert!(r.movers.windows(2).all(|w| w[0].change().abs() >= w[1].change().abs()));
    assert!(
        r.verify.contains("relations hold") || r.verify.contains("files intact"),
        "{}",
        r.verify
    );

    let html = report::render(r, Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    for banned in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(banned), "the page must be self-contained: {banned}");
    }
    let json: serde_json::Value = serde_json::from_str(&report::render(r, Format::Json)).unwrap();
    assert_eq!(json["total"].as_str().unwrap().parse::<Decimal>().unwrap(), r.total);
    let md = report::render(r, Format::Markdown);
    assert!(md.contains("| cost | vs previous |"));
}

/// A lake holding amounts in two currencies (a China-site account and an
/// international one written to the same output) is reported per currency:
/// each report's totals are its own files' sums, never the two added up.
#[tokio::test(flavor = "multi_thread")]
async fn two_currencies_are_reported_apart_never_summed() {
    let out = tempfile::tempdir().unwrap();
    let cny = start_sim(|_| {}).await;
    let mut job = job(out.path(), "consumption_records", "2026-09", "2026-10");
    job.accounts = Accounts::All;
    assert!(pipeline::run(&job, &client(&cny.url())).await.unwrap().success);
    let usd = start_sim(|c| {
        c.seed = 99;
        c.members = 1;
        c.currency = "USD".into();
    })
    .await;
    let member = usd.state.ledger.accounts[1].id.clone();
    job.accounts = Accounts::Members(vec![member.clone()]);
    assert!(pipeline::run(&job, &client(&usd.url())).await.unwrap().success);

    let options = |currency: Option<&str>| report::Options {
        out: out.path(),
        cycle: None,
        by: vec![Dimension::Account],
        top: 3,
        currency: currency.map(str::to_string),
    };
    let reports = report::build(&options(None)).unwrap();
    let currencies: Vec<&str> = reports.iter().map(|r| r.currency.as_str()).collect();
    assert_eq!(currencies, ["CNY", "USD"]);
    let usd_file = format!("part-{member}.parquet");
    let total = |keep: &dyn Fn(&str) -> bool, cycle: &str| {
        sums_of_files(out.path(), cycle, "customer_id", keep)
            .values()
            .copied()
            .sum::<Decimal>()
    };
    let (in_cny, in_usd) = (|f: &str| f != usd_file, |f: &str| f == usd_file);
    assert_eq!(reports[0].total, total(&in_cny, "2026-10"));
    assert_eq!(reports[0].previous_total, total(&in_cny, "2026-09"));
    assert_eq!(reports[1].total, total(&in_usd, "2026-10"));
    assert_eq!(reports[1].manifest_total.normalize(), reports[1].total);
    assert!(reports[1].breakdowns[0].lines.iter().all(|l| l.key == member));
    let only = report::build(&options(Some("USD"))).unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].total, reports[1].total);
    let e = report::build(&options(Some("EUR"))).unwrap_err().to_string();
    assert!(e.contains("EUR") && e.contains("CNY, USD"), "{e}");
    let json: serde_json::Value = serde_json::from_str(&report::render_all(&reports, Format::Json)).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2), "one object per currency");
    let text = report::render_all(&reports, Format::Table);
    assert!(
        text.contains(" CNY in 2026-10") && text.contains(" USD in 2026-10"),
        "{text}"
    );
    let html = report::render_all(&reports, Format::Html);
    assert_eq!(
        html.matches("<!DOCTYPE html>").count(),
        1,
        "one page, a section per currency"
    );
    assert_eq!(html.matches("</body></html>").count(), 1);

    // `--out ./lake`, relative to where it runs, reports the same files.
    let o = crate::cli::bin()
        .current_dir(out.path().parent().unwrap())
        .args(["report", "--format", "json", "--out"])
        .arg(format!("./{}", out.path().file_name().unwrap().to_string_lossy()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let totals: Vec<Decimal> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["total"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(totals, reports.iter().map(|r| r.total).collect::<Vec<_>>());
}

/// A bucket lake reports as the same lake on disk does.
#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_lake_reports_like_the_same_lake_on_disk() {
    use crate::bucket_guarantees::{output, reader, run};
    let s3 = crate::s3server::S3::start().await;
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("local");
    for out in [local.to_str().unwrap(), "s3://lake/report"] {
        let o = output(run(work.path(), out, &s3, 0, &[])).await;
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let report_of = |out: &str| reader(&s3, &["report", "--out", out, "--format", "json", "--cycle", "2026-10"]);
    let from_disk = output(report_of(local.to_str().unwrap())).await;
    let from_bucket = output(report_of("s3://lake/report")).await;
    assert_eq!(
        from_bucket.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&from_bucket.stderr)
    );
    let figures = |o: &std::process::Output| {
        // One report per currency: an object, or an array of them.
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        if v.is_object() {
            v = serde_json::Value::Array(vec![v]);
        }
        for r in v.as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("verify");
        }
        v
    };
    let disk = figures(&from_disk);
    assert!(!disk[0]["total"].is_null(), "{disk}");
    assert_eq!(figures(&from_bucket), disk);
}

/// A lost page of records shows in the report as trades that do not reconcile.
#[tokio::test(flavor = "multi_thread")]
async fn the_report_says_which_trades_do_not_reconcile() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let j = job(
        out.path(),
        "consumption_records,transaction_records",
        "2026-09",
        "2026-10",
    );
    assert!(pipeline::run(&j, &client(&sim.url())).await.unwrap().success);
    let options = report::Options {
        out: out.path(),
        cycle: Some(cycle("2026-10")),
        by: Dimension::parse("service").unwrap(),
        top: 5,
        currency: None,
    };
    let clean = report::build(&options).unwrap();
    assert!(clean.iter().all(|r| r.unmatched.is_empty()), "{:?}", clean[0].unmatched);

    let gone = crate::verify::lose_cheapest_records(out.path(), "2026-10", "self", 1000);
    let damaged = report::build(&options).unwrap();
    let lines = &damaged[0].unmatched;
    assert!(
        lines.iter().any(|l| l.contains("trade by trade (2026-10 self)")
            && l.contains(&format!("{} trades have no records", gone.len()))),
        "{lines:?}"
    );
    let json = report::render_all(&damaged, Format::Json);
    assert!(json.contains("\"unmatched\"") && json.contains(&gone[0]), "{json}");
    let html = report::render_all(&damaged, Format::Html);
    assert!(html.contains("does not reconcile") && html.contains(&gone[0]));
}
