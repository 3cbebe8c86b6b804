//! Partition keys that readers can trust: no data column is hidden by a
//! directory of the same name, and a lake written in the older layout
//! (`amortized_costs` and `account_changes` under `bill_cycle=`) is moved,
//! never mixed with the new one.

use std::collections::BTreeMap;
use std::path::Path;

use hcbill::pipeline::report::UnitStatus;
use hcbill::pipeline::{self, Accounts};
use hcbill::source::datasets;

use crate::cli::bin;
use crate::common::*;

const DATASETS: &str = "consumption_records,amortized_costs,account_changes";
const MOVED: [(&str, &str); 2] = [("amortized_costs", "shared_month"), ("account_changes", "trade_month")];

/// Every `.parquet` under `dir` (relative), with its bytes' length.
pub fn files(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                out.insert(rel, std::fs::metadata(&p).unwrap().len());
            }
        }
    }
    out
}

/// Rewrites a dataset of `out` as an older hcbill wrote it: its files under
/// `bill_cycle=` and its manifest naming them there. With `half`, only the
/// first file moves back (a migration killed half way leaves this).
pub fn to_old_layout(out: &Path, dataset: &str, key: &str, half: bool) {
    let dir = out.join(dataset);
    let mut m = manifest_json(&dir);
    let mut first = true;
    for (_, p) in m["partitions"].as_object_mut().unwrap() {
        for (_, f) in p["files"].as_object_mut().unwrap() {
            let new = f["path"].as_str().unwrap().to_string();
            let old = new.replacen(&format!("{key}="), "bill_cycle=", 1);
            if !(half && first) {
                std::fs::create_dir_all(dir.join(&old).parent().unwrap()).unwrap();
                std::fs::rename(dir.join(&new), dir.join(&old)).unwrap();
            }
            first = false;
            f["path"] = old.into();
        }
    }
    write_manifest_json(&dir, &m);
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let _ = std::fs::remove_dir(e.path());
    }
}

fn assert_current_layout(out: &Path) {
    for (dataset, key) in MOVED {
        let dir = out.join(dataset);
        let fs = files(&dir);
        assert!(!fs.is_empty(), "{dataset}");
        assert!(
            fs.keys().all(|f| f.starts_with(&format!("{key}="))),
            "{dataset}: {fs:?}"
        );
        let m = manifest_text(&dir);
        assert!(!m.contains("bill_cycle="), "{dataset}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_layout_is_moved_not_mixed_and_not_extracted_again() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let c = client(&sim.url());
    let mut j = job(out.path(), DATASETS, "2026-08", "2026-10");
    j.accounts = Accounts::All;
    let first = pipeline::run(&j, &c).await.unwrap();
    assert!(first.success, "{:?}", first.failures);
    assert_current_layout(out.path());
    let before: BTreeMap<&str, BTreeMap<String, u64>> =
        MOVED.iter().map(|(d, _)| (*d, files(&out.path().join(d)))).collect();

    for (dataset, key) in MOVED {
        to_old_layout(out.path(), dataset, key, false);
    }
    assert!(
        files(&out.path().join("amortized_costs"))
            .keys()
            .all(|f| f.starts_with("bill_cycle="))
    );
    let second = pipeline::run(&j, &c).await.unwrap();
    assert!(second.success, "{:?}", second.failures);
    assert_current_layout(out.path());
    for (dataset, _) in MOVED {
        assert_eq!(
            files(&out.path().join(dataset)),
            before[dataset],
            "{dataset}: the same files, moved"
        );
        let dir = out.path().join(dataset);
        let stale: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("bill_cycle="))
            .collect();
        assert!(stale.is_empty(), "{dataset}: old directories removed");
    }
    // Nothing was published again: moved files are the ones the manifest describes.
    for u in second
        .units
        .iter()
        .filter(|u| MOVED.iter().any(|(d, _)| *d == u.dataset))
    {
        assert!(
            matches!(u.status, UnitStatus::Unchanged | UnitStatus::SkippedFinal),
            "{} {} {}: {:?}",
            u.dataset,
            u.bill_cycle,
            u.account,
            u.status
        );
    }
    let v = hcbill::verify::verify(out.path(), None).unwrap();
    assert!(v.success(), "{}", v.table());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_killed_half_way_is_finished_by_the_next_run() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let c = client(&sim.url());
    let j = job(out.path(), DATASETS, "2026-09", "2026-10");
    assert!(pipeline::run(&j, &c).await.unwrap().success);
    for (dataset, key) in MOVED {
        // The manifest names the old paths; one file already sits at its new one.
        to_old_layout(out.path(), dataset, key, true);
    }
    let r = pipeline::run(&j, &c).await.unwrap();
    assert!(r.success, "{:?}", r.failures);
    assert_current_layout(out.path());
    assert!(hcbill::verify::verify(out.path(), None).unwrap().success());

    // Killed after the manifest named the new paths, before the old copies went:
    // the next run deletes them (they are not strays).
    for (dataset, key) in MOVED {
        for (rel, _) in files(&out.path().join(dataset)) {
            let old = out
                .path()
                .join(dataset)
                .join(rel.replacen(&format!("{key}="), "bill_cycle=", 1));
            std::fs::create_dir_all(old.parent().unwrap()).unwrap();
            std::fs::copy(out.path().join(dataset).join(&rel), old).unwrap();
        }
    }
    let r = pipeline::run(&j, &c).await.unwrap();
    assert!(r.success, "{:?}", r.failures);
    assert_current_layout(out.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stray_old_layout_file_is_refused_with_one_line() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    assert!(
        pipeline::run(
            &job(out.path(), "amortized_costs", "2026-10", "2026-10"),
            &client(&sim.url())
        )
        .await
        .unwrap()
        .success
    );
    let stray = out.path().join("amortized_costs/bill_cycle=2026-10/part-x.parquet");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"PAR1").unwrap();
    let o = bin()
        .args([
            "backfill",
            "--from",
            "2026-10",
            "--to",
            "2026-10",
            "--datasets",
            "amortized_costs",
        ])
        .args(["--endpoint", &sim.url(), "--accounts", "self", "--out"])
        .arg(out.path())
        .env("HUAWEICLOUD_SDK_AK", AK)
        .env("HUAWEICLOUD_SDK_SK", SK)
        .env("HUAWEICLOUD_SDK_DOMAIN_ID", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("bill_cycle=2026-10/part-x.parquet")
            && last.contains("older layout")
            && last.contains("partitioned by shared_month"),
        "{last}"
    );
    assert!(stray.exists(), "nothing is guessed at or deleted");
}

/// A data column named like the partition key must equal the directory's
/// value on every row: readers show the directory's value in its place.
#[test]
fn no_data_column_is_hidden_by_its_partition_directory() {
    for d in datasets::ALL {
        let shadowed = d.columns.iter().find(|c| c.name == d.partition_key);
        let pinned = ["bill_summary", "transaction_records", "amortized_costs"];
        match shadowed {
            Some(c) if !matches!(c.kind, hcbill::model::Kind::Param) => assert!(
                pinned.contains(&d.name),
                "{}: column {} shares the partition key's name",
                d.name,
                c.name
            ),
            _ => {}
        }
    }
    let lineage = hcbill::model::Lineage {
        account_id: "a".into(),
        run_id: "r".into(),
        extracted_at_micros: 0,
    };
    let spec = datasets::by_name("amortized_costs").unwrap();
    let mut n = hcbill::model::Normalizer::new(spec.schema(), spec.columns, spec.money_columns, lineage)
        .pin(spec.partition_key, "2026-10");
    n.push(r#"{"shared_month":"2026-10","bill_cycle":"2026-06"}"#).unwrap();
    // Escaped, absent or null, nothing contradicts the directory.
    n.push(r#"{"shared_month":"2026\u002d10"}"#).unwrap();
    n.push(r#"{"bill_cycle":"2026-06"}"#).unwrap();
    n.push(r#"{"shared_month":null}"#).unwrap();
    let e = n
        .push(r#"{"shared_month":"2026-09","bill_cycle":"2026-09"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("shared_month") && e.contains("shared_month=2026-10"), "{e}");
}

/// Rewrites a dataset's manifest as versions before shards kept it: one
/// `_manifest.json`, no `_manifest/` directory.
fn to_single_manifest(dataset_dir: &Path, name: &str) {
    let m = hcbill::sink::manifest::Manifest::load(dataset_dir, name, 1)
        .unwrap()
        .unwrap();
    std::fs::write(
        dataset_dir.join("_manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    std::fs::remove_dir_all(dataset_dir.join("_manifest")).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_of_one_file_is_split_into_shards_and_nothing_is_extracted_again() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let c = client(&sim.url());
    let mut j = job(out.path(), DATASETS, "2026-08", "2026-10");
    j.accounts = Accounts::All;
    assert!(pipeline::run(&j, &c).await.unwrap().success);
    let names: Vec<&str> = DATASETS.split(',').collect();
    let before: BTreeMap<&str, serde_json::Value> = names
        .iter()
        .map(|d| (*d, manifest_json(&out.path().join(d))["partitions"].clone()))
        .collect();
    for d in &names {
        to_single_manifest(&out.path().join(d), d);
    }
    // A state.json of that version, with its list of done units, is read too.
    let state = out.path().join(".hcbill/state.json");
    let mut s: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    s["done"] = serde_json::json!(["consumption_records/2026-08/self"]);
    std::fs::write(&state, s.to_string()).unwrap();

    let second = pipeline::run(&j, &c).await.unwrap();
    assert!(second.success, "{:?}", second.failures);
    for u in &second.units {
        assert!(
            matches!(u.status, UnitStatus::Unchanged | UnitStatus::SkippedFinal),
            "{} {} {}: {:?}",
            u.dataset,
            u.bill_cycle,
            u.account,
            u.status
        );
    }
    for d in &names {
        let dir = out.path().join(d);
        assert!(!dir.join("_manifest.json").exists(), "{d}: the single file is gone");
        let after = manifest_json(&dir)["partitions"].clone();
        assert_eq!(
            after.as_object().unwrap().keys().collect::<Vec<_>>(),
            before[d].as_object().unwrap().keys().collect::<Vec<_>>(),
            "{d}: one shard per partition"
        );
        for (cycle, p) in after.as_object().unwrap() {
            for (account, f) in p["files"].as_object().unwrap() {
                let was = &before[d][cycle]["files"][account];
                assert_eq!(
                    (&f["sha256"], &f["rows"]),
                    (&was["sha256"], &was["rows"]),
                    "{d} {cycle} {account}"
                );
            }
        }
    }
    let v = hcbill::verify::verify(out.path(), None).unwrap();
    assert!(v.success(), "{}", v.table());
}
