//! `hcbill verify`: a fresh backfill passes (rounding-only differences
//! included); every kind of damage to the lake fails with its line.

use std::path::{Path, PathBuf};
use std::process::Output;

use arrow_array::{Array, Decimal128Array, RecordBatch};
use hcbill::pipeline::{self, Accounts};

use crate::cli::bin;
use crate::common::*;

const DATASETS: &str =
    "bill_summary,consumption_records,resource_bill_details,transaction_records,amortized_costs,focus";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn verify(out: &Path, extra: &[&str]) -> Output {
    bin().arg("verify").arg("--out").arg(out).args(extra).output().unwrap()
}

/// The JSON report's finding of `check` for the caller's own `cycle`.
fn finding<'a>(report: &'a serde_json::Value, check: &str, cycle: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check && f["bill_cycle"] == cycle && f["account"] == "self")
        .unwrap_or_else(|| panic!("no finding {check:?} for {cycle}"))
}

fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// A lake of two months, an enterprise with members, every reconciled dataset.
async fn lake() -> tempfile::TempDir {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let mut job = job(out.path(), DATASETS, "2026-09", "2026-10");
    job.accounts = Accounts::All;
    let r = pipeline::run(&job, &client(&sim.url())).await.unwrap();
    assert!(r.success, "{:?}", r.failures);
    out
}

fn a_file(out: &Path) -> PathBuf {
    part(out, "consumption_records", "2026-10", "self")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_lake_passes_and_every_damage_fails_with_its_line() {
    let lake = lake().await;
    let o = verify(lake.path(), &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["relations"].as_u64().unwrap() >= 15, "{report}");
    let verdicts: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["verdict"].as_str().unwrap())
        .collect();
    assert!(verdicts.contains(&"exact"));
    assert!(!verdicts.contains(&"failed"));
    // Every documented relation was checked, each with its formula, on a lake
    // whose transactions carry 抹零.
    let checked: std::collections::BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] != "integrity")
        .inspect(|f| assert!(f["formula"].is_string(), "{f}"))
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for r in [
        "monthly sum = transactions",
        "monthly 抹零 = transactions 抹零",
        "monthly sum: consume = official − discount − 抹零",
        "transactions: official = discount + 抹零 + consume",
        "transactions = consumption",
        "transactions = consumption, trade by trade",
        "transactions = resource bill details, trade by trade",
        "monthly sum = transactions, group by group",
        "amortised orders = their purchases",
    ] {
        assert!(checked.contains(r), "{r} not checked: {checked:?}");
    }

    type Damage = Box<dyn Fn(&Path)>;
    let damages: Vec<(&str, Damage, &str)> = vec![
        (
            "truncated",
            Box::new(|out: &Path| {
                let f = a_file(out);
                let len = std::fs::metadata(&f).unwrap().len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&f)
                    .unwrap()
                    .set_len(len / 2)
                    .unwrap();
            }),
            "bytes, the manifest recorded",
        ),
        (
            "a flipped byte",
            Box::new(|out: &Path| {
                let f = a_file(out);
                let mut b = std::fs::read(&f).unwrap();
                let i = b.len() / 3;
                b[i] ^= 0x20;
                std::fs::write(&f, b).unwrap();
            }),
            "sha256 differs",
        ),
        (
            "deleted",
            Box::new(|out: &Path| std::fs::remove_file(a_file(out)).unwrap()),
            "is missing",
        ),
        (
            "a foreign file",
            Box::new(|out: &Path| {
                std::fs::copy(a_file(out), a_file(out).with_file_name("part-intruder.parquet")).unwrap();
            }),
            "is not in the manifest",
        ),
        (
            "an amount altered, the manifest kept",
            Box::new(|out: &Path| alter_first_amount(&a_file(out))),
            "integrity consumption_records 2026-10 self",
        ),
        (
            "a manifest total that no longer reconciles",
            Box::new(|out: &Path| {
                set_total(
                    out,
                    "transaction_records",
                    "2026-10",
                    "self",
                    "consume_amount",
                    "1",
                    None,
                )
            }),
            "differs by",
        ),
    ];
    for (what, damage, needle) in damages {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(lake.path(), copy.path());
        damage(copy.path());
        let o = verify(copy.path(), &[]);
        let line = last_line(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {line}");
        assert!(
            line.starts_with("hcbill: verify found") && line.contains(needle),
            "{what}: {line}"
        );
        let table = String::from_utf8_lossy(&o.stdout);
        assert!(table.contains("failed"), "{what}: {table}");
    }

    // The same mismatch in a provisional cycle only warns.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(lake.path(), copy.path());
    set_total(
        copy.path(),
        "transaction_records",
        "2026-10",
        "self",
        "consume_amount",
        "1",
        Some("provisional"),
    );
    let o = verify(copy.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", last_line(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("warning"));
    // Verification can be limited to cycles: the damaged one is left out.
    let o = verify(copy.path(), &["--cycles", "2026-09"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("2026-10"));
    let o = verify(copy.path(), &["--cycles", "2026-13"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Rewrites a file with its first non-zero `amount` changed by one cent.
fn alter_first_amount(path: &Path) {
    let batches = read(path);
    let schema = batches[0].schema();
    let mut out: Vec<RecordBatch> = Vec::new();
    let mut done = false;
    for b in batches {
        let i = schema.index_of("amount").unwrap();
        let a = b.column(i).as_any().downcast_ref::<Decimal128Array>().unwrap();
        let values: Vec<Option<i128>> = (0..a.len())
            .map(|r| {
                let v = a.is_valid(r).then(|| a.value(r));
                match v {
                    Some(x) if !done && x != 0 => {
                        done = true;
                        Some(x + 100_000_000)
                    }
                    other => other,
                }
            })
            .collect();
        let altered = Decimal128Array::from(values).with_data_type(a.data_type().clone());
        let mut cols = b.columns().to_vec();
        cols[i] = std::sync::Arc::new(altered);
        out.push(RecordBatch::try_new(schema.clone(), cols).unwrap());
    }
    let f = std::fs::File::create(path).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(f, schema, Some(hcbill::sink::parquet::writer_properties())).unwrap();
    for b in &out {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn set_total(out: &Path, dataset: &str, cycle: &str, account: &str, col: &str, value: &str, finality: Option<&str>) {
    let mut m = manifest_json(&out.join(dataset));
    let e = &mut m["partitions"][cycle]["files"][account];
    e["money_totals"][col] = serde_json::Value::from(value);
    if let Some(f) = finality {
        e["finality"] = serde_json::Value::from(f);
    }
    write_manifest_json(&out.join(dataset), &m);
}

#[test]
fn a_run_with_verify_checks_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .current_dir(dir.path())
        .args([
            "backfill",
            "--simulator",
            "--from",
            "2026-10",
            "--to",
            "2026-10",
            "--datasets",
            "bill_summary,transaction_records,consumption_records",
            "--accounts",
            "self",
            "--verify",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("monthly sum = transactions") && stdout.contains("0 failures"),
        "{stdout}"
    );
    let o = verify(&dir.path().join("nowhere"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(last_line(&o).contains("not an hcbill output directory"));
}

/// Removes one page's worth (`page` records, at most half the file) of the
/// cheapest consumption records of a cycle and account, and makes the
/// manifest agree with what is left (rows, size, sha256, every money total):
/// a page lost during extraction. Returns the trades left without a record.
pub fn lose_cheapest_records(out: &Path, cycle: &str, account: &str, page: usize) -> Vec<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let path = part(out, "consumption_records", cycle, account);
    let batches = read(&path);
    let all = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
    let amount = all
        .column_by_name("amount")
        .unwrap()
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .unwrap();
    let trade = all
        .column_by_name("trade_id")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    let lost = page.min(all.num_rows() / 2);
    let mut order: Vec<usize> = (0..all.num_rows()).collect();
    order.sort_by_key(|&i| amount.value(i).abs());
    let dropped: BTreeSet<usize> = order[..lost].iter().copied().collect();
    let keep = arrow_array::BooleanArray::from((0..all.num_rows()).map(|i| !dropped.contains(&i)).collect::<Vec<_>>());
    let left = arrow_select::filter::filter_record_batch(&all, &keep).unwrap();
    // Trades none of whose records are left.
    let mut records_left: BTreeMap<&str, usize> = BTreeMap::new();
    for i in 0..all.num_rows() {
        *records_left.entry(trade.value(i)).or_default() += usize::from(!dropped.contains(&i));
    }
    let gone: Vec<String> = records_left
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(t, _)| t.to_string())
        .collect();
    assert!(!gone.is_empty());
    let f = std::fs::File::create(&path).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(f, left.schema(), Some(hcbill::sink::parquet::writer_properties()))
            .unwrap();
    w.write(&left).unwrap();
    w.close().unwrap();

    // The manifest agrees with the file: rows, size, sha256 and every money total.
    let dir = out.join("consumption_records");
    let mut m = manifest_json(&dir);
    let e = &mut m["partitions"][cycle]["files"][account];
    let was: rust_decimal::Decimal = e["money_totals"]["amount"].as_str().unwrap().parse().unwrap();
    e["rows"] = (left.num_rows() as u64).into();
    e["bytes"] = std::fs::metadata(&path).unwrap().len().into();
    e["sha256"] = hcbill::sink::parquet::file_sha256(&path).unwrap().1.into();
    let columns: Vec<String> = e["money_totals"].as_object().unwrap().keys().cloned().collect();
    for c in columns {
        e["money_totals"][&c] = dec_sum(std::slice::from_ref(&left), &c).to_string().into();
    }
    let now: rust_decimal::Decimal = e["money_totals"]["amount"].as_str().unwrap().parse().unwrap();
    write_manifest_json(&dir, &m);
    println!(
        "{lost} records removed: the month's amount moved by {}",
        (was - now).normalize()
    );

    gone
}

/// A page of res-fee-records lost during extraction, as a faithful copy
/// cannot show it: one page's worth (1,000 records, or half the file) of the
/// cheapest records of a cycle removed, and the manifest made consistent with
/// what is left. The totals move by cents; verify names the trades.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_page_of_the_cheapest_records_fails_naming_its_trades() {
    let lake = lake().await;
    let o = verify(lake.path(), &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "a faithful copy passes");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_trade: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "transactions = consumption, trade by trade")
        .collect();
    assert!(by_trade.len() >= 6, "every month and account: {report}");
    assert!(
        by_trade
            .iter()
            .all(|f| f["verdict"] == "exact" && f["bound"] == "0.01 per trade")
    );

    let gone = lose_cheapest_records(lake.path(), "2026-10", "self", 1000);
    let gone: Vec<&str> = gone.iter().map(String::as_str).collect();

    let o = verify(lake.path(), &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let hit = finding(&report, "transactions = consumption, trade by trade", "2026-10");
    assert_eq!(hit["verdict"], "failed", "{hit}");
    let detail = hit["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("{} trades have no records: {}", gone.len(), gone[0])),
        "{detail}"
    );
    // Integrity holds: the damage is only visible to reconciliation.
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["check"] != "integrity" || f["verdict"] == "ok"),
        "{report}"
    );
    let table = verify(lake.path(), &[]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains(gone[0]) && text.contains("0.01 per trade"), "{text}");
}

/// An order's amortised amount that is not its purchase fails, by order.
#[tokio::test(flavor = "multi_thread")]
async fn an_order_amortised_for_more_than_its_purchase_fails() {
    let lake = lake().await;
    let path = part(lake.path(), "amortized_costs", "2026-10", "self");
    let batches = read(&path);
    let schema = batches[0].schema();
    let i = schema.index_of("consume_amount").unwrap();
    // One cent more on every row: every order with a purchase in the lake differs.
    let altered: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let a = b.column(i).as_any().downcast_ref::<Decimal128Array>().unwrap();
            let v: Decimal128Array = a.iter().map(|x| x.map(|x| x + 100_000_000)).collect();
            let mut cols = b.columns().to_vec();
            cols[i] = std::sync::Arc::new(v.with_data_type(a.data_type().clone()));
            RecordBatch::try_new(schema.clone(), cols).unwrap()
        })
        .collect();
    let f = std::fs::File::create(&path).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(f, schema.clone(), Some(hcbill::sink::parquet::writer_properties()))
            .unwrap();
    for b in &altered {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    let dir = lake.path().join("amortized_costs");
    let mut m = manifest_json(&dir);
    let e = &mut m["partitions"]["2026-10"]["files"]["self"];
    e["bytes"] = std::fs::metadata(&path).unwrap().len().into();
    e["sha256"] = hcbill::sink::parquet::file_sha256(&path).unwrap().1.into();
    write_manifest_json(&dir, &m);

    let o = verify(lake.path(), &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let hit = finding(&report, "amortised orders = their purchases", "2026-10");
    assert_eq!(hit["verdict"], "failed", "{hit}");
    assert!(
        hit["detail"]
            .as_str()
            .unwrap()
            .contains("orders differ from their purchase"),
        "{hit}"
    );
    let other = finding(&report, "amortised orders = their purchases", "2026-09");
    assert_eq!(other["verdict"], "exact", "the untouched month holds: {other}");
}
