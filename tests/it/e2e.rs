//! The pipeline end to end against the simulator: what lands in Parquet is
//! exactly what was served.

use arrow_schema::{DataType, TimeUnit};
use hcbill::pipeline::report::UnitStatus;
use hcbill::pipeline::{self, Accounts};
use hcbill::sink::manifest::{Finality, Manifest};
use hcbill::source::datasets;
use rust_decimal::Decimal;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn backfill_writes_exactly_what_was_served() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let client = client(&sim.url());
    // 2026-07 is outside the simulated range: an empty cycle.
    let job = job(out.path(), "bill_summary,consumption_records", "2026-07", "2026-10");
    let report = pipeline::run(&job, &client).await.unwrap();
    assert!(report.success, "{:?}", report.failures);
    assert_eq!(report.units_total, 8);
    let ledger = &sim.state.ledger;

    for c in ["2026-07", "2026-08", "2026-09", "2026-10"] {
        let cy = cycle(c);
        let lines: Vec<_> = (0..ledger.line_count(0, cy)).map(|i| ledger.line(0, cy, i)).collect();
        let served_amount: Decimal = lines.iter().map(|l| l.amount).sum();
        let served_official: Decimal = lines.iter().map(|l| l.official).sum();

        let recs = read(&part(out.path(), "consumption_records", c, "self"));
        assert_eq!(rows(&recs), lines.len(), "{c}: consumption rows");
        assert_eq!(
            dec_sum(&recs, "amount"),
            served_amount.normalize(),
            "{c}: exact amount sum"
        );
        assert_eq!(dec_sum(&recs, "official_amount"), served_official.normalize(), "{c}");
        // Unicode names round-trip byte for byte, in served order.
        let names: Vec<String> = strings(&recs, "resource_name")
            .into_iter()
            .map(Option::unwrap)
            .collect();
        let served_names: Vec<String> = lines.iter().map(|l| l.resource_name.clone()).collect();
        assert_eq!(names, served_names, "{c}: resource names");
        if !lines.is_empty() {
            assert!(names.iter().any(|n| !n.is_ascii()), "the ledger has Unicode names");
        }

        let sums = read(&part(out.path(), "bill_summary", c, "self"));
        let groups = ledger.summary(0, cy);
        assert_eq!(rows(&sums), groups.len(), "{c}: summary rows");
        // The summary's consume is net of 抹零 ("应付金额=官网价-折扣金额-抹零金额"):
        // with 抹零 added back it is the sum of the records.
        assert_eq!(
            dec_sum(&sums, "consume_amount") + dec_sum(&sums, "truncated_amount"),
            served_amount.normalize(),
            "{c}: summary + 抹零 = records"
        );
        if !lines.is_empty() {
            assert!(!dec_sum(&sums, "truncated_amount").is_zero(), "{c}: 抹零 is served");
        }
        assert_eq!(dec_sum(&sums, "official_amount"), served_official.normalize(), "{c}");
    }

    // The empty cycle is still a correctly typed partition.
    let empty = std::fs::File::open(part(out.path(), "consumption_records", "2026-07", "self")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(empty).unwrap();
    let schema = reader.schema();
    let spec = datasets::by_name("consumption_records").unwrap();
    assert_eq!(schema.fields(), spec.schema().fields());
    assert_eq!(
        schema.field_with_name("amount").unwrap().data_type(),
        &DataType::Decimal128(38, 10)
    );
    assert_eq!(
        schema.field_with_name("consume_time").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(
        schema.field_with_name("bill_date").unwrap().data_type(),
        &DataType::Date32
    );
    assert_eq!(
        schema.field_with_name("charge_mode").unwrap().data_type(),
        &DataType::Int64
    );

    // The manifest lists each partition with its rows and exact totals.
    let m = Manifest::load(&out.path().join("consumption_records"), "x", 1)
        .unwrap()
        .unwrap();
    assert_eq!(m.partitions.len(), 4);
    let p = &m.partitions["2026-09"];
    assert_eq!(p.finality, Finality::Final);
    let cy = cycle("2026-09");
    assert_eq!(p.rows, ledger.line_count(0, cy));
    let served: Decimal = (0..ledger.line_count(0, cy))
        .map(|i| ledger.line(0, cy, i).amount)
        .sum();
    assert_eq!(p.files["self"].money_totals["amount"], served.normalize().to_string());
    assert_eq!(p.files["self"].sha256.len(), 64);
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_values_match_the_served_record() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let job = job(out.path(), "consumption_records", "2026-09", "2026-09");
    assert!(pipeline::run(&job, &client(&sim.url())).await.unwrap().success);
    let l = sim.state.ledger.line(0, cycle("2026-09"), 0);
    let b = &read(&part(out.path(), "consumption_records", "2026-09", "self"))[0];
    let ts = b
        .column_by_name("consume_time")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(ts.value(0), l.consume_time.timestamp_micros());
    let day = b
        .column_by_name("bill_date")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::Date32Array>()
        .unwrap();
    assert_eq!(day.value_as_date(0).unwrap(), l.bill_date);
    let cm = b
        .column_by_name("charge_mode")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .unwrap();
    assert_eq!(cm.value(0), l.charge_mode, "string-typed code became an integer");
    let label = strings(std::slice::from_ref(b), "bill_type_name");
    assert!(label[0].is_some(), "bill type decoded");
    let acct = strings(std::slice::from_ref(b), "hcbill_account_id");
    assert_eq!(acct[0].as_deref(), Some("0123456789abcdef0123456789abcdef"));
    let customer = strings(std::slice::from_ref(b), "customer_id");
    assert_eq!(customer[0].as_deref(), Some(sim.state.ledger.accounts[0].id.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn rerun_leaves_unchanged_files_untouched_and_skips_final_partitions() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let client = client(&sim.url());
    let mut job = job(out.path(), "bill_summary,consumption_records", "2026-09", "2026-10");
    assert!(pipeline::run(&job, &client).await.unwrap().success);
    let file = part(out.path(), "consumption_records", "2026-10", "self");
    let before = std::fs::read(&file).unwrap();
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();

    // Final partitions are not fetched again.
    let requests = client.stats.snapshot().requests;
    let r = pipeline::run(&job, &client).await.unwrap();
    assert!(
        r.units.iter().all(|u| u.status == UnitStatus::SkippedFinal),
        "{:?}",
        r.units
    );
    assert_eq!(
        client.stats.snapshot().requests,
        requests,
        "no request for final partitions"
    );

    // Forced: extracted again, content identical, files left as they were.
    job.force = true;
    let r = pipeline::run(&job, &client).await.unwrap();
    assert!(
        r.units.iter().all(|u| u.status == UnitStatus::Unchanged),
        "{:?}",
        r.units
    );
    assert_eq!(std::fs::read(&file).unwrap(), before, "byte-identical");
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        mtime,
        "untouched"
    );
    assert_eq!(r.restatements, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn members_are_extracted_one_by_one() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let mut job = job(out.path(), "consumption_records", "2026-09", "2026-09");
    job.accounts = Accounts::All;
    let report = pipeline::run(&job, &client(&sim.url())).await.unwrap();
    assert!(report.success, "{:?}", report.failures);
    let ledger = &sim.state.ledger;
    assert_eq!(report.units_total, ledger.accounts.len());
    for (i, a) in ledger.accounts.iter().enumerate() {
        let key = if i == 0 { "self".to_string() } else { a.id.clone() };
        let b = read(&part(out.path(), "consumption_records", "2026-09", &key));
        assert_eq!(rows(&b) as u64, ledger.line_count(i, cycle("2026-09")), "account {key}");
        assert!(
            strings(&b, "customer_id")
                .iter()
                .all(|c| c.as_deref() == Some(a.id.as_str()))
        );
    }
}
