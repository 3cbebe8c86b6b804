//! Every billing family, the member fan-out and the FOCUS view, checked
//! against what the simulator served and against the ledger's relations.

use std::collections::HashMap;

use arrow_array::{Array, Date32Array, Int64Array, TimestampMicrosecondArray};
use arrow_schema::DataType;
use hcbill::pipeline::{self, Accounts};
use hcbill::source::api::Api;
use hcbill::source::datasets::{self, usage_95};
use rust_decimal::Decimal;

use crate::common::*;

const CYCLES: [&str; 2] = ["2026-09", "2026-10"];

/// Runs `--datasets all` for two cycles with the fan-out; quotas off (speed).
async fn extract_all(sim: &hcbill::sim::Running, out: &std::path::Path) -> pipeline::report::RunReport {
    let mut cfg = client_config(&sim.url());
    cfg.quotas = Api::all().into_iter().map(|a| (a, 0)).collect();
    let client = std::sync::Arc::new(hcbill::source::client::BssClient::new(creds(SK), cfg).unwrap());
    let mut job = job(out, "all", CYCLES[0], CYCLES[1]);
    job.accounts = Accounts::All;
    pipeline::run(&job, &client).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dataset_matches_what_was_served() {
    let sim = start_sim(|c| c.rate_limit = Some(0)).await;
    let out = tempfile::tempdir().unwrap();
    let r = extract_all(&sim, out.path()).await;
    assert!(r.success, "{:?}", r.failures);
    let l = &sim.state.ledger;
    let n_accounts = l.accounts.len();
    // member-scoped datasets: per account; others: own only; sub_customers: one snapshot.
    let member_scoped = datasets::ALL.iter().filter(|d| d.member_scoped()).count();
    let own_only = datasets::ALL
        .iter()
        .filter(|d| !d.member_scoped() && !d.snapshot)
        .count();
    assert_eq!(
        r.units_total,
        CYCLES.len() * (member_scoped * n_accounts + own_only) + 1
    );

    for c in CYCLES {
        let cy = cycle(c);
        for (a, acct) in l.accounts.iter().enumerate() {
            let key = if a == 0 { "self".to_string() } else { acct.id.clone() };
            let lines: Vec<_> = (0..l.line_count(a, cy)).map(|i| l.line(a, cy, i)).collect();
            let amount: Decimal = lines.iter().map(|x| x.amount).sum();

            // Resource bill details: one row per record, exact sums.
            let details = read(&part(out.path(), "resource_bill_details", c, &key));
            assert_eq!(rows(&details), lines.len(), "{c} {key}");
            assert_eq!(dec_sum(&details, "consume_amount"), amount.normalize());
            assert_eq!(
                dec_sum(&details, "official_amount"),
                lines.iter().map(|x| x.official).sum::<Decimal>().normalize()
            );

            // Transactions: one per trade, each the cent-rounded sum of its records.
            let trades = read(&part(out.path(), "transaction_records", c, &key));
            let n = l.trade_count(a, cy);
            assert_eq!(rows(&trades) as u64, n, "{c} {key}");
            let mut expected = Decimal::ZERO;
            for t in 0..n {
                let (start, len) = l.trade_lines(a, cy, t);
                let served: Decimal = (start..start + len).map(|i| l.line(a, cy, i).amount).sum();
                // Paid in cents toward zero; the rest is the transaction's 抹零.
                expected += served.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
            }
            let fee_total = dec_sum(&trades, "consume_amount");
            assert_eq!(
                fee_total,
                expected.normalize(),
                "{c} {key}: transactions = Σ trunc2(Σ records of the trade)"
            );
            // official = discount + 抹零 + consume, and consume + 抹零 = the records.
            let erase = dec_sum(&trades, "erase_amount");
            assert_eq!(fee_total + erase, amount.normalize(), "{c} {key}");
            assert_eq!(
                dec_sum(&trades, "official_amount"),
                dec_sum(&trades, "official_discount_amount") + erase + fee_total,
                "{c} {key}"
            );
            assert!(erase.abs() < Decimal::new(1, 2) * Decimal::from(n), "{c} {key}");

            // FOCUS: BilledCost per cycle equals the consumption records' amounts.
            let focus = read(&part(out.path(), "focus", c, &key));
            let kinds = strings(&focus, "x_RowKind");
            let records = kinds.iter().filter(|k| k.as_deref() == Some("record")).count();
            assert_eq!(records, lines.len(), "one FOCUS row per record");
            assert_eq!(
                rows(&focus) - records,
                kinds.iter().filter(|k| k.as_deref() == Some("amortization")).count()
            );
            assert_eq!(
                dec_sum(&focus, "BilledCost"),
                amount.normalize(),
                "{c} {key}: FOCUS BilledCost (amortised rows bill nothing)"
            );
            // ListCost: the list price of priced records; a credit's or adjustment's own amount.
            let credit_like = |x: &hcbill::sim::ledger::Line| matches!(x.bill_type, 4 | 9 | 16 | 20 | 24 | 25);
            assert_eq!(
                dec_sum(&focus, "ListCost"),
                lines
                    .iter()
                    .map(|x| if credit_like(x) { x.amount } else { x.official })
                    .sum::<Decimal>()
                    .normalize()
            );
            // EffectiveCost: the cost center's amortised month, to the last decimal.
            let amortised = read(&part(out.path(), "amortized_costs", c, &key));
            assert_eq!(
                dec_sum(&focus, "EffectiveCost"),
                dec_sum(&amortised, "current_month_amortized_amount"),
                "{c} {key}: Σ EffectiveCost = the month's amortised cost"
            );
            assert!(
                strings(&focus, "SubAccountId")
                    .iter()
                    .all(|s| s.as_deref() == Some(acct.id.as_str()))
            );
        }

        // 95th-percentile usage: every resource of every usage type, 288 points a day.
        let summary = read(&part(out.path(), "usage_95_summary", c, "self"));
        let mut resources = Vec::new();
        for (service, rtype, usages) in usage_95::COMBINATIONS {
            for u in *usages {
                for id in l.usage_resources(cy, &format!("{service}|{rtype}"), u) {
                    resources.push((u.to_string(), id));
                }
            }
        }
        assert_eq!(rows(&summary), resources.len(), "{c}: usage summary rows");
        let usage_types = strings(&summary, "usage_type");
        assert!(
            usage_types.iter().any(|u| u.as_deref() == Some("95peak_1000"))
                || resources.iter().all(|r| r.0 != "95peak_1000")
        );
        let points = read(&part(out.path(), "usage_95_details", c, "self"));
        assert_eq!(
            rows(&points),
            resources.len() * cy.days() as usize * 288,
            "{c}: 5-minute points"
        );
        if let Some((_, first)) = resources.first() {
            let ids = strings(&points, "resource_id");
            let i = ids.iter().position(|x| x.as_deref() == Some(first.as_str())).unwrap();
            let want = l.usage_point(first, cy, 0);
            let (b, j) = locate(&points, i);
            let usage = b
                .column_by_name("usage")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::Decimal128Array>()
                .unwrap();
            assert_eq!(
                Decimal::from_i128_with_scale(usage.value(j), usage.scale() as u32).normalize(),
                want.normalize(),
                "string bandwidth → exact decimal"
            );
            let ts = b
                .column_by_name("stat_time")
                .unwrap()
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap();
            assert_eq!(
                ts.value(j),
                cy.start_utc().timestamp_micros(),
                "first point at 00:00 UTC+8"
            );
        }

        // Income/expense: each day's deduction is that day's payments, rounded to cents
        // (a day whose refunds exceed its charges is a revenue).
        let changes = read(&part(out.path(), "account_changes", c, "self"));
        let days = l.day_sums(0, cy);
        let expense: Decimal = days.cash.iter().chain(days.credit.iter()).copied().sum();
        let mut deducted = Decimal::ZERO;
        for b in &changes {
            let kind = b
                .column_by_name("trade_detail_type")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap();
            let amt = b
                .column_by_name("change_amount")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::Decimal128Array>()
                .unwrap();
            for i in 0..b.num_rows() {
                if kind.value(i) == "DEDEUCT" {
                    deducted -= Decimal::from_i128_with_scale(amt.value(i), 10);
                }
            }
        }
        assert_eq!(
            deducted.normalize(),
            expense.normalize(),
            "{c}: expenses = Σ_day round2(Σ payments)"
        );
        let balance = strings(&changes, "balance_type");
        assert!(balance.iter().any(|b| b.as_deref() == Some("BALANCE_TYPE_DEBIT")));
        assert!(balance.iter().any(|b| b.as_deref() == Some("BALANCE_TYPE_CREDIT")));
        assert!(
            strings(&changes, "trade_detail_type_name").iter().all(Option::is_some),
            "trade types decoded"
        );
    }

    // Members: a dimension snapshot in the current cycle.
    let now = hcbill::cycle::BillCycle::containing(chrono::Utc::now()).to_string();
    let members = read(&part(out.path(), "sub_customers", &now, "self"));
    assert_eq!(rows(&members), l.accounts.len() - 1);
    let names = strings(&members, "display_name");
    assert!(names.iter().any(|n| n.as_deref().is_some_and(|n| !n.is_ascii())));
}

fn locate(batches: &[arrow_array::RecordBatch], mut i: usize) -> (&arrow_array::RecordBatch, usize) {
    for b in batches {
        if i < b.num_rows() {
            return (b, i);
        }
        i -= b.num_rows();
    }
    panic!("row out of range")
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_columns_and_labels_are_typed() {
    let sim = start_sim(|c| c.rate_limit = Some(0)).await;
    let out = tempfile::tempdir().unwrap();
    let job = job(out.path(), "resource_bill_details", "2026-09", "2026-09");
    assert!(pipeline::run(&job, &client(&sim.url())).await.unwrap().success);
    let b = read(&part(out.path(), "resource_bill_details", "2026-09", "self"));
    let schema = b[0].schema();
    assert!(matches!(
        schema.field_with_name("az_code_infos").unwrap().data_type(),
        DataType::List(_)
    ));
    assert!(matches!(
        schema.field_with_name("extend_params").unwrap().data_type(),
        DataType::Struct(_)
    ));
    let az = b[0]
        .column_by_name("az_code_infos")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::ListArray>()
        .unwrap();
    let first = az.value(0);
    let s = first.as_any().downcast_ref::<arrow_array::StructArray>().unwrap();
    let code = s.column(0).as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
    let line = sim.state.ledger.line(0, cycle("2026-09"), 0);
    assert_eq!(code.value(0), format!("{}a", line.region.0));
    // `resource_Type_code` (sic) lands in resource_type_code.
    assert_eq!(
        strings(&b, "resource_type_code")[0].as_deref(),
        Some(line.service.rtype)
    );
    assert!(strings(&b, "bill_type_name").iter().all(Option::is_some));
}

#[tokio::test(flavor = "multi_thread")]
async fn by_day_statistics_come_in_daily_windows() {
    let sim = start_sim(|c| c.rate_limit = Some(0)).await;
    let out = tempfile::tempdir().unwrap();
    let mut job = job(out.path(), "resource_bill_details", "2026-09", "2026-09");
    job.options =
        datasets::resolve_options(&[("resource_bill_details".into(), "statistic_type".into(), "2".into())]).unwrap();
    let c = client(&sim.url());
    let r = pipeline::run(&job, &c).await.unwrap();
    assert!(r.success, "{:?}", r.failures);
    assert!(r.units[0].pages >= 30, "one window per day: {} pages", r.units[0].pages);
    let l = &sim.state.ledger;
    let cy = cycle("2026-09");
    let b = read(&part(out.path(), "resource_bill_details", "2026-09", "self"));
    assert_eq!(rows(&b) as u64, l.trade_count(0, cy));
    let amount: Decimal = (0..l.line_count(0, cy)).map(|i| l.line(0, cy, i).amount).sum();
    assert_eq!(dec_sum(&b, "consume_amount"), amount.normalize());
    let days: Vec<i32> = b
        .iter()
        .flat_map(|x| {
            let d = x
                .column_by_name("bill_date")
                .unwrap()
                .as_any()
                .downcast_ref::<Date32Array>()
                .unwrap();
            d.iter().flatten().collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(days.len(), rows(&b), "bill_date is set by day");
    let st = b[0].column_by_name("statistic_type").unwrap();
    assert_eq!(
        st.as_any().downcast_ref::<arrow_array::StringArray>().unwrap().value(0),
        "2"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_members_refusal_does_not_sink_the_run() {
    let sim = start_sim(|c| {
        c.rate_limit = Some(0);
        c.denied_members = 1;
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    let mut job = job(out.path(), "consumption_records,bill_summary", "2026-09", "2026-09");
    job.accounts = Accounts::All;
    let c = client(&sim.url());
    let r = pipeline::run(&job, &c).await.unwrap();
    let denied = sim.state.ledger.accounts.last().unwrap().id.clone();
    let failed: Vec<_> = r.units.iter().filter(|u| u.error.is_some()).collect();
    assert_eq!(failed.len(), 2, "{:?}", r.units);
    assert!(
        failed
            .iter()
            .all(|u| u.account == denied && u.error.as_deref().unwrap().contains("CBC.0151"))
    );
    assert_eq!(r.units.len() - failed.len(), 2 * (sim.state.ledger.accounts.len() - 1));
    assert!(c.halt.reason().is_none(), "a member's 403 is not fatal");
    assert!(part(out.path(), "consumption_records", "2026-09", "self").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn focus_has_every_mandatory_column_with_its_type_and_nullability() {
    let sim = start_sim(|c| c.rate_limit = Some(0)).await;
    let out = tempfile::tempdir().unwrap();
    let job = job(out.path(), "focus", "2026-03", "2026-03");
    // 2026-03 is outside the simulated range: the empty partition is still typed.
    assert!(pipeline::run(&job, &client(&sim.url())).await.unwrap().success);
    let job2 = crate::common::job(out.path(), "focus", "2026-09", "2026-09");
    assert!(pipeline::run(&job2, &client(&sim.url())).await.unwrap().success);
    let b = read(&part(out.path(), "focus", "2026-09", "self"));
    let schema = b[0].schema();
    let dec = DataType::Decimal128(38, 10);
    let ts = DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()));
    // FOCUS 1.3 mandatory columns: (name, type, may be null).
    let mandatory: [(&str, &DataType, bool); 23] = [
        ("ServiceProviderName", &DataType::Utf8, false),
        ("HostProviderName", &DataType::Utf8, true),
        ("BilledCost", &dec, false),
        ("BillingAccountId", &DataType::Utf8, false),
        ("BillingAccountName", &DataType::Utf8, true),
        ("BillingCurrency", &DataType::Utf8, false),
        ("BillingPeriodEnd", &ts, false),
        ("BillingPeriodStart", &ts, false),
        ("ChargeCategory", &DataType::Utf8, false),
        ("ChargeClass", &DataType::Utf8, true),
        ("ChargeDescription", &DataType::Utf8, true),
        ("ChargePeriodEnd", &ts, false),
        ("ChargePeriodStart", &ts, false),
        ("ContractedCost", &dec, false),
        ("EffectiveCost", &dec, false),
        ("InvoiceIssuerName", &DataType::Utf8, false),
        ("ListCost", &dec, false),
        ("PricingQuantity", &dec, true),
        ("PricingUnit", &DataType::Utf8, true),
        ("ProviderName", &DataType::Utf8, false),
        ("PublisherName", &DataType::Utf8, false),
        ("ServiceCategory", &DataType::Utf8, false),
        ("ServiceName", &DataType::Utf8, false),
    ];
    for (name, dt, nullable) in mandatory {
        let f = schema
            .field_with_name(name)
            .unwrap_or_else(|_| panic!("{name} missing"));
        assert_eq!(f.data_type(), dt, "{name}");
        if !nullable {
            let nulls: usize = b.iter().map(|x| x.column_by_name(name).unwrap().null_count()).sum();
            assert_eq!(nulls, 0, "{name} must not be null");
        }
    }
    // Billing period of 2026-09 in UTC: starts 2026-08-31T16:00:00Z.
    let start = b[0]
        .column_by_name("BillingPeriodStart")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(start.value(0), cycle("2026-09").start_utc().timestamp_micros());
    let cats: HashMap<String, usize> =
        strings(&b, "ChargeCategory")
            .into_iter()
            .flatten()
            .fold(HashMap::new(), |mut m, c| {
                *m.entry(c).or_default() += 1;
                m
            });
    assert!(
        cats.keys()
            .all(|c| ["Usage", "Purchase", "Tax", "Credit", "Adjustment"].contains(&c.as_str())),
        "{cats:?}"
    );
    // Charge periods lie within the billing period.
    let cps = b[0]
        .column_by_name("ChargePeriodStart")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    let cpe = b[0]
        .column_by_name("ChargePeriodEnd")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    let (lo, hi) = (
        cycle("2026-09").start_utc().timestamp_micros(),
        cycle("2026-09").end_utc().timestamp_micros(),
    );
    for i in 0..b[0].num_rows() {
        assert!(lo <= cps.value(i) && cps.value(i) <= cpe.value(i) && cpe.value(i) <= hi);
    }
    let x = b[0]
        .column_by_name("x_BillType")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert!(x.null_count() == 0);
    // The metadata file describes every column with precision and scale.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("focus/_focus_metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["Schema"][0]["FocusVersion"], "1.3");
    let defs = meta["Schema"][0]["ColumnDefinition"].as_array().unwrap();
    let billed = defs.iter().find(|d| d["ColumnName"] == "BilledCost").unwrap();
    assert_eq!(
        (billed["NumericPrecision"].as_i64(), billed["NumberScale"].as_i64()),
        (Some(38), Some(10))
    );
    assert_eq!(defs.len(), schema.fields().len(), "every column, x_ lineage included");
    assert_eq!(rows(&read(&part(out.path(), "focus", "2026-03", "self"))), 0);
}

/// `--datasets all` asks for each page of each API once: FOCUS reads the
/// consumption records' pages, the usage details fan out from the summary
/// already read, and sub_customers is the member listing made for the accounts.
#[tokio::test(flavor = "multi_thread")]
async fn every_page_is_requested_once_per_run() {
    let sim = start_sim(|_| {}).await;
    let out = tempfile::tempdir().unwrap();
    let mut job = job(out.path(), "all", "2026-09", "2026-10");
    job.accounts = Accounts::All;
    let r = pipeline::run(&job, &client(&sim.url())).await.unwrap();
    assert!(r.success, "{:?}", r.failures);
    let served = sim.state.stats.served.lock().unwrap().clone();
    let twice: Vec<_> = served.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "pages requested more than once: {twice:?}");
    let per_path = |path: &str| -> u64 {
        served
            .iter()
            .filter(|(k, _)| k.split('?').next() == Some(path))
            .map(|(_, n)| u64::from(*n))
            .sum()
    };
    let pages_of = |dataset: &str| -> u64 { r.units.iter().filter(|u| u.dataset == dataset).map(|u| u.pages).sum() };
    let api = |name: &str| Api::named(name).path();
    // One fetch feeds both datasets: their page counts are the same pages.
    assert_eq!(per_path(api("res-fee-records")), pages_of("consumption_records"));
    assert_eq!(
        pages_of("focus"),
        pages_of("consumption_records") + pages_of("amortized_costs")
    );
    assert_eq!(per_path(api("monthly-breakdown")), pages_of("amortized_costs"));
    assert_eq!(per_path(api("usage-summary")), pages_of("usage_95_summary"));
    assert_eq!(per_path(api("usage-details")), pages_of("usage_95_details"));
    assert_eq!(per_path(api("sub-customers")), 1, "the member listing, once");
    assert_eq!(pages_of("sub_customers"), 1);
    let total: u64 = served.values().map(|n| u64::from(*n)).sum();
    assert_eq!(total, r.requests.requests, "no request went unanswered or uncounted");
}
