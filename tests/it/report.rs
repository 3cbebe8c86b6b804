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
    let mut m: HashMap<String, Decimal> = HashMap::new();
    let dir = out.join("consumption_records").join(format!("bill_cycle={cycle}"));
    for f in std::fs::read_dir(dir).unwrap().flatten() {
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
    let r = report::build(&report::Options {
        out: out.path(),
        cycle: None,
        by: Dimension::ALL.to_vec(),
        top: 5,
    })
    .unwrap();
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

    let html = report::render(&r, Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    for banned in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(banned), "the page must be self-contained: {banned}");
    }
    let json: serde_json::Value = serde_json::from_str(&report::render(&r, Format::Json)).unwrap();
    assert_eq!(json["total"].as_str().unwrap().parse::<Decimal>().unwrap(), r.total);
    let md = report::render(&r, Format::Markdown);
    assert!(md.contains("| cost | vs previous |"));
}
