//! FOCUS 1.2 conformance of the `focus` output. Every MUST rule FOCUS 1.2
//! states for the columns hcbill emits is checked row by row on the demo's
//! FOCUS output (the demo pipeline's simulator, `--datasets focus`); the
//! amortisation invariants are checked over whole yearly terms. The rules and
//! how each is met are tabled in `schemas/focus.md`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use arrow_array::{
    Array, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, TimeUnit};
use hcbill::pipeline;
use hcbill::sim::amortization;
use rust_decimal::Decimal;

use crate::cli::bin;
use crate::common::*;

/// Every column FOCUS 1.2 defines (specification/columns, v1.2).
const FOCUS_12: [&str; 57] = [
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "CapacityReservationId",
    "CapacityReservationStatus",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
];

/// Mandatory in FOCUS 1.2, plus the conditional ones whose condition Huawei
/// Cloud meets (regions, sub accounts, resources, usage, commitments, SKUs,
/// negotiated and list prices, tags, account types).
const REQUIRED: [&str; 51] = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "AvailabilityZone",
    "BillingAccountType",
    "ChargeFrequency",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedUnitPrice",
    "InvoiceId",
    "ListUnitPrice",
    "PricingCategory",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
];

const DECIMALS: [&str; 10] = [
    "BilledCost",
    "CommitmentDiscountQuantity",
    "ConsumedQuantity",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "ListCost",
    "ListUnitPrice",
    "PricingQuantity",
    "x_CashAmount",
];
const DATETIMES: [&str; 4] = [
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargePeriodEnd",
    "ChargePeriodStart",
];

const SERVICE_SUBCATEGORIES: &[(&str, &[&str])] = &[
    (
        "AI and Machine Learning",
        &[
            "AI Platforms",
            "Bots",
            "Generative AI",
            "Machine Learning",
            "Natural Language Processing",
        ],
    ),
    (
        "Analytics",
        &[
            "Analytics Platforms",
            "Business Intelligence",
            "Data Processing",
            "Search",
            "Streaming Analytics",
        ],
    ),
    ("Business Applications", &["Productivity and Collaboration"]),
    (
        "Compute",
        &[
            "Containers",
            "End User Computing",
            "Quantum Compute",
            "Serverless Compute",
            "Virtual Machines",
        ],
    ),
    (
        "Databases",
        &[
            "Caching",
            "Data Warehouses",
            "Ledger Databases",
            "NoSQL Databases",
            "Relational Databases",
            "Time Series Databases",
        ],
    ),
    (
        "Developer Tools",
        &[
            "Developer Platforms",
            "Continuous Integration and Deployment",
            "Development Environments",
            "Source Code Management",
            "Quality Assurance",
        ],
    ),
    ("Identity", &["Identity and Access Management"]),
    (
        "Integration",
        &["API Management", "Messaging", "Workflow Orchestration"],
    ),
    ("Internet of Things", &["IoT Analytics", "IoT Platforms"]),
    (
        "Management and Governance",
        &[
            "Architecture",
            "Compliance",
            "Cost Management",
            "Data Governance",
            "Disaster Recovery",
            "Endpoint Management",
            "Observability",
            "Support",
        ],
    ),
    (
        "Media",
        &["Content Creation", "Gaming", "Media Streaming", "Mixed Reality"],
    ),
    ("Migration", &["Data Migration", "Resource Migration"]),
    ("Mobile", &[]),
    ("Multicloud", &["Multicloud Integration"]),
    (
        "Networking",
        &[
            "Application Networking",
            "Content Delivery",
            "Network Connectivity",
            "Network Infrastructure",
            "Network Routing",
            "Network Security",
        ],
    ),
    (
        "Security",
        &[
            "Secret Management",
            "Security Posture Management",
            "Threat Detection and Response",
        ],
    ),
    (
        "Storage",
        &[
            "Backup Storage",
            "Block Storage",
            "File Storage",
            "Object Storage",
            "Storage Platforms",
        ],
    ),
    ("Web", &["Application Platforms"]),
    ("Other", &[]),
];

/// One cell, typed as FOCUS reads it.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Null,
    Str(String),
    Dec(Decimal),
    /// UTC microseconds.
    Ts(i64),
    Int(i64),
}

impl Cell {
    fn is_null(&self) -> bool {
        *self == Cell::Null
    }

    fn str(&self) -> Option<&str> {
        match self {
            Cell::Str(s) => Some(s),
            _ => None,
        }
    }

    fn dec(&self) -> Option<Decimal> {
        match self {
            Cell::Dec(d) => Some(*d),
            _ => None,
        }
    }

    fn ts(&self) -> i64 {
        match self {
            Cell::Ts(t) => *t,
            other => panic!("not a timestamp: {other:?}"),
        }
    }
}

type FocusRow = HashMap<String, Cell>;

fn cells(b: &RecordBatch) -> Vec<FocusRow> {
    let mut rows: Vec<FocusRow> = (0..b.num_rows()).map(|_| HashMap::new()).collect();
    for (f, a) in b.schema().fields().iter().zip(b.columns()) {
        for (i, row) in rows.iter_mut().enumerate() {
            let c = if a.is_null(i) {
                Cell::Null
            } else {
                match f.data_type() {
                    DataType::Utf8 => Cell::Str(a.as_any().downcast_ref::<StringArray>().unwrap().value(i).to_string()),
                    DataType::Decimal128(_, s) => Cell::Dec(Decimal::from_i128_with_scale(
                        a.as_any().downcast_ref::<Decimal128Array>().unwrap().value(i),
                        *s as u32,
                    )),
                    DataType::Timestamp(_, _) => {
                        Cell::Ts(a.as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap().value(i))
                    }
                    DataType::Int64 => Cell::Int(a.as_any().downcast_ref::<Int64Array>().unwrap().value(i)),
                    DataType::Date32 => {
                        Cell::Int(i64::from(a.as_any().downcast_ref::<Date32Array>().unwrap().value(i)))
                    }
                    other => panic!("unexpected type {other}"),
                }
            };
            row.insert(f.name().clone(), c);
        }
    }
    rows
}

/// Every FOCUS file of an output tree: (path, batches).
fn focus_files(out: &Path) -> Vec<(PathBuf, Vec<RecordBatch>)> {
    let mut files = Vec::new();
    for p in std::fs::read_dir(out.join("focus")).unwrap().flatten() {
        if p.path().is_dir() {
            let parquet = std::fs::read_dir(p.path()).unwrap().flatten();
            for f in parquet.filter(|f| f.path().extension().is_some_and(|x| x == "parquet")) {
                files.push((f.path(), read(&f.path())));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// Collects rule violations: (rule, example).
#[derive(Default)]
struct Violations(BTreeMap<&'static str, (usize, String)>);

impl Violations {
    fn check(&mut self, rule: &'static str, ok: bool, example: impl FnOnce() -> String) {
        if !ok {
            let e = self.0.entry(rule).or_insert((0, example()));
            e.0 += 1;
        }
    }

    fn assert_none(&self) {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(rule, (n, ex))| format!("{rule}: {n} rows, e.g. {ex}"))
            .collect();
        assert!(lines.is_empty(), "FOCUS 1.2 rules broken:\n{}", lines.join("\n"));
    }
}

fn schema_rules(v: &mut Violations, b: &RecordBatch) {
    let schema = b.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for c in REQUIRED {
        v.check("column present", names.contains(&c), || c.to_string());
    }
    for n in &names {
        v.check(
            "a column FOCUS 1.2 does not define carries the x_ prefix",
            FOCUS_12.contains(n) || n.starts_with("x_"),
            || n.to_string(),
        );
    }
    for f in schema.fields() {
        let n = f.name().as_str();
        if DECIMALS.contains(&n) {
            v.check(
                "Decimal columns are decimals",
                matches!(f.data_type(), DataType::Decimal128(..)),
                || n.into(),
            );
        } else if DATETIMES.contains(&n) {
            v.check(
                "Date/Time columns are UTC instants",
                matches!(f.data_type(), DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC"),
                || n.into(),
            );
        } else if FOCUS_12.contains(&n) {
            v.check(
                "String and JSON columns are strings",
                f.data_type() == &DataType::Utf8,
                || n.into(),
            );
        }
    }
}

fn row_rules(v: &mut Violations, r: &FocusRow) {
    let get = |c: &str| r.get(c).cloned().unwrap_or(Cell::Null);
    let s = |c: &str| get(c).str().map(str::to_string);
    let d = |c: &str| get(c).dec();
    let null = |c: &str| get(c).is_null();
    let id = || format!("{:?} {:?}", s("x_RecordId"), s("ChargeCategory"));
    let category = s("ChargeCategory").unwrap_or_default();
    let correction = s("ChargeClass").as_deref() == Some("Correction");
    let priced = matches!(category.as_str(), "Usage" | "Purchase") && !correction;

    for c in [
        "BilledCost",
        "BillingAccountId",
        "BillingCurrency",
        "BillingPeriodEnd",
        "BillingPeriodStart",
        "ChargeCategory",
        "ChargeFrequency",
        "ChargePeriodEnd",
        "ChargePeriodStart",
        "ContractedCost",
        "EffectiveCost",
        "InvoiceIssuerName",
        "ListCost",
        "ProviderName",
        "PublisherName",
        "ServiceCategory",
        "ServiceName",
        "ServiceSubcategory",
    ] {
        v.check("mandatory values are not null", !null(c), || format!("{c} in {}", id()));
    }
    v.check(
        "no empty strings (NullHandling)",
        r.values().all(|c| c.str().is_none_or(|x| !x.trim().is_empty())),
        id,
    );
    // Allowed values.
    v.check(
        "ChargeCategory is an allowed value",
        ["Usage", "Purchase", "Tax", "Credit", "Adjustment"].contains(&category.as_str()),
        id,
    );
    v.check(
        "ChargeClass is null or Correction",
        null("ChargeClass") || correction,
        id,
    );
    v.check(
        "ChargeFrequency is an allowed value",
        ["One-Time", "Recurring", "Usage-Based"].contains(&s("ChargeFrequency").unwrap_or_default().as_str()),
        id,
    );
    v.check(
        "ChargeFrequency is not Usage-Based for a Purchase",
        !(category == "Purchase" && s("ChargeFrequency").as_deref() == Some("Usage-Based")),
        id,
    );
    v.check(
        "PricingCategory is an allowed value",
        s("PricingCategory").is_none_or(|p| ["Standard", "Dynamic", "Committed", "Other"].contains(&p.as_str())),
        id,
    );
    let scat = s("ServiceCategory").unwrap_or_default();
    let ssub = s("ServiceSubcategory").unwrap_or_default();
    let parent = SERVICE_SUBCATEGORIES.iter().find(|(c, _)| *c == scat);
    v.check("ServiceCategory is an allowed value", parent.is_some(), || scat.clone());
    v.check(
        "ServiceSubcategory belongs to its ServiceCategory",
        parent.is_some_and(|(c, subs)| subs.contains(&ssub.as_str()) || ssub == format!("Other ({c})")),
        || format!("{scat} / {ssub}"),
    );
    v.check(
        "BillingCurrency is an ISO 4217 code",
        s("BillingCurrency").is_some_and(|c| c.len() == 3 && c.chars().all(|x| x.is_ascii_uppercase())),
        id,
    );
    // Prices and quantities: null for Tax, present for Usage and Purchase.
    for c in [
        "ListUnitPrice",
        "ContractedUnitPrice",
        "PricingQuantity",
        "PricingCategory",
        "SkuId",
        "SkuPriceId",
    ] {
        if category == "Tax" {
            v.check("price columns are null for Tax", null(c), || format!("{c} in {}", id()));
        }
        if priced {
            v.check("price columns are set for Usage and Purchase", !null(c), || {
                format!("{c} in {}", id())
            });
        }
    }
    v.check(
        "PricingUnit is null exactly when PricingQuantity is",
        null("PricingUnit") == null("PricingQuantity"),
        id,
    );
    v.check(
        "SkuPriceDetails is null when SkuPriceId is",
        !null("SkuPriceId") || null("SkuPriceDetails"),
        id,
    );
    v.check("SkuMeter is null when SkuId is", !null("SkuId") || null("SkuMeter"), id);
    // SkuMeter-C-005-C (SHOULD): a SKU names what it meters.
    v.check("SkuMeter is set when SkuId is", null("SkuId") || !null("SkuMeter"), id);
    for (price, cost) in [("ListUnitPrice", "ListCost"), ("ContractedUnitPrice", "ContractedCost")] {
        if let Some(p) = d(price) {
            v.check("unit prices are not negative", p >= Decimal::ZERO, || {
                format!("{price} {p} in {}", id())
            });
            if let (Some(q), Some(total), false) = (d("PricingQuantity"), d(cost), correction) {
                // Unit prices carry 10 decimals: the product is the cost to half a unit
                // of the price's last place per unit of quantity.
                let bound = q.abs() * Decimal::new(5, 11);
                v.check(
                    "unit price × PricingQuantity = cost (to the unit price's rounding)",
                    (p * q - total.abs()).abs() <= bound,
                    || format!("{price} {p} × {q} vs {cost} {total} in {}", id()),
                );
            }
        }
    }
    // Consumption.
    let unused = s("CommitmentDiscountStatus").as_deref() == Some("Unused");
    if category != "Usage" || unused {
        v.check(
            "ConsumedQuantity is null outside used Usage",
            null("ConsumedQuantity"),
            id,
        );
    } else if !correction {
        v.check("ConsumedQuantity is set on Usage", !null("ConsumedQuantity"), id);
    }
    v.check(
        "ConsumedUnit is null exactly when ConsumedQuantity is",
        null("ConsumedUnit") == null("ConsumedQuantity"),
        id,
    );
    // Periods: start inclusive, end exclusive, whole seconds, inside the billing period.
    let (bs, be, cs, ce) = (
        get("BillingPeriodStart").ts(),
        get("BillingPeriodEnd").ts(),
        get("ChargePeriodStart").ts(),
        get("ChargePeriodEnd").ts(),
    );
    v.check("BillingPeriodStart < BillingPeriodEnd", bs < be, id);
    v.check("ChargePeriodStart < ChargePeriodEnd", cs < ce, id);
    v.check(
        "the charge period lies inside the billing period",
        bs <= cs && ce <= be,
        id,
    );
    v.check(
        "date/times are whole seconds (YYYY-MM-DDTHH:mm:ssZ)",
        [bs, be, cs, ce].iter().all(|t| t % 1_000_000 == 0),
        id,
    );
    // Credits and adjustments.
    let billed = d("BilledCost").unwrap_or_default();
    if category == "Credit" {
        v.check("a Credit lowers cost (BilledCost ≤ 0)", billed <= Decimal::ZERO, id);
    }
    if matches!(category.as_str(), "Credit" | "Adjustment") {
        v.check(
            "EffectiveCost = BilledCost for a charge unrelated to others",
            d("EffectiveCost") == Some(billed),
            id,
        );
        if null("ListUnitPrice") {
            v.check(
                "ListCost = BilledCost without a list unit price",
                d("ListCost") == Some(billed),
                id,
            );
        }
        if null("ContractedUnitPrice") {
            v.check(
                "ContractedCost = BilledCost without a contracted unit price",
                d("ContractedCost") == Some(billed),
                id,
            );
        }
    }
    // Dimensions.
    v.check(
        "RegionName is null exactly when RegionId is",
        null("RegionName") == null("RegionId"),
        id,
    );
    v.check(
        "SubAccountName is null exactly when SubAccountId is",
        null("SubAccountName") == null("SubAccountId"),
        id,
    );
    v.check(
        "SubAccountType is null exactly when SubAccountId is",
        null("SubAccountType") == null("SubAccountId"),
        id,
    );
    v.check(
        "BillingAccountType is set with BillingAccountId",
        null("BillingAccountType") == null("BillingAccountId"),
        id,
    );
    v.check(
        "ResourceType is null exactly when ResourceId is",
        null("ResourceType") == null("ResourceId"),
        id,
    );
    v.check(
        "ResourceName is null when ResourceId is",
        !null("ResourceId") || null("ResourceName"),
        id,
    );
    if let Some(t) = s("Tags") {
        let parsed: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(&t).ok();
        v.check(
            "Tags is a JSON object of scalar values",
            parsed.is_some_and(|m| m.values().all(|x| !x.is_object() && !x.is_array())),
            || t.clone(),
        );
    }
    // Commitment discounts.
    let has_cd = !null("CommitmentDiscountId");
    for c in ["CommitmentDiscountCategory", "CommitmentDiscountType"] {
        v.check(
            "commitment columns are set exactly with CommitmentDiscountId",
            null(c) != has_cd,
            || format!("{c} in {}", id()),
        );
    }
    v.check(
        "CommitmentDiscountName is null without CommitmentDiscountId",
        has_cd || null("CommitmentDiscountName"),
        id,
    );
    if !has_cd {
        v.check(
            "CommitmentDiscountStatus is null without CommitmentDiscountId",
            null("CommitmentDiscountStatus"),
            id,
        );
    } else if category == "Usage" {
        v.check(
            "CommitmentDiscountStatus is set on commitment Usage",
            !null("CommitmentDiscountStatus"),
            id,
        );
    }
    v.check(
        "CommitmentDiscountCategory is Spend or Usage",
        s("CommitmentDiscountCategory").is_none_or(|c| c == "Spend" || c == "Usage"),
        id,
    );
    v.check(
        "CommitmentDiscountStatus is Used or Unused",
        s("CommitmentDiscountStatus").is_none_or(|c| c == "Used" || c == "Unused"),
        id,
    );
    let cd_quantity_needed = has_cd && matches!(category.as_str(), "Usage" | "Purchase") && !correction;
    v.check(
        "CommitmentDiscountQuantity is set exactly on commitment Usage and Purchase",
        null("CommitmentDiscountQuantity") != cd_quantity_needed,
        id,
    );
    v.check(
        "CommitmentDiscountUnit is null exactly when CommitmentDiscountQuantity is",
        null("CommitmentDiscountUnit") == null("CommitmentDiscountQuantity"),
        id,
    );
    if category == "Purchase" && has_cd {
        v.check(
            "a Purchase covering future charges has EffectiveCost 0",
            d("EffectiveCost") == Some(Decimal::ZERO),
            id,
        );
    }
}

fn check_metadata(out: &Path, columns: &[String]) {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("focus/_focus_metadata.json")).unwrap()).unwrap();
    assert!(meta["DataGenerator"]["DataGenerator"].is_string());
    let schema = &meta["Schema"];
    assert_eq!(schema["FocusVersion"], "1.2");
    assert!(schema["SchemaId"].as_str().is_some_and(|s| !s.is_empty()));
    let created = schema["CreationDate"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with('Z'));
    let defs = schema["ColumnDefinition"].as_array().unwrap();
    let names: Vec<&str> = defs.iter().map(|d| d["ColumnName"].as_str().unwrap()).collect();
    assert_eq!(names, columns.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(defs.iter().all(|d| d["DataType"].is_string()));
    let tags = defs.iter().find(|d| d["ColumnName"] == "Tags").unwrap();
    assert!(tags["ProviderTagPrefixes"].is_array());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demos_focus_output_meets_every_focus_1_2_rule() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo.toml");
    let out = dir.path().join("out");
    let mut c = bin();
    c.arg("run").arg(&demo).args(["--datasets", "focus", "--out"]).arg(&out);
    let o = tokio::task::spawn_blocking(move || c.output()).await.unwrap().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let files = focus_files(&out);
    assert_eq!(files.len(), 5, "five months of the demo");
    let mut v = Violations::default();
    let mut categories: HashMap<String, usize> = HashMap::new();
    let mut columns = Vec::new();
    for (_, batches) in &files {
        for b in batches {
            schema_rules(&mut v, b);
            columns = b.schema().fields().iter().map(|f| f.name().clone()).collect();
            for r in cells(b) {
                *categories
                    .entry(r["ChargeCategory"].str().unwrap_or_default().to_string())
                    .or_default() += 1;
                row_rules(&mut v, &r);
            }
        }
    }
    v.assert_none();
    // The demo exercises every kind of row the rules distinguish.
    for c in ["Usage", "Purchase", "Credit"] {
        assert!(
            categories.get(c).copied().unwrap_or(0) > 0,
            "no {c} rows: {categories:?}"
        );
    }
    check_metadata(&out, &columns);
}

/// Σ over cells of a column, by a filter.
fn sum(rows: &[FocusRow], col: &str, keep: impl Fn(&FocusRow) -> bool) -> Decimal {
    rows.iter().filter(|r| keep(r)).filter_map(|r| r[col].dec()).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn prepaid_orders_are_amortised_over_their_whole_term() {
    // Thirteen months: the orders of the first one run their whole term inside.
    let sim = start_sim(|c| {
        c.from = cycle("2025-10");
        c.to = cycle("2026-10");
        c.scale = 0.2;
        c.members = 0;
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    let r = pipeline::run(&job(out.path(), "focus", "2025-10", "2026-10"), &client(&sim.url()))
        .await
        .unwrap();
    assert!(r.success, "{:?}", r.failures);
    assert!(r.units.iter().all(|u| u.notes.is_empty()), "amortisation was available");
    let mut rows: Vec<FocusRow> = Vec::new();
    let ledger = &sim.state.ledger;
    for m in hcbill::cycle::BillCycle::range(cycle("2025-10"), cycle("2026-10")) {
        let month: Vec<FocusRow> = read(&part(out.path(), "focus", &m.to_string(), "self"))
            .iter()
            .flat_map(cells)
            .collect();
        // Per month, Σ EffectiveCost is exactly the ledger's amortised total.
        let expected: Decimal = amortization::breakdown(ledger, 0, m).iter().map(|r| r.current).sum();
        assert_eq!(
            sum(&month, "EffectiveCost", |_| true).normalize(),
            expected.normalize(),
            "{m}"
        );
        rows.extend(month);
    }
    let purchases: Vec<&FocusRow> = rows
        .iter()
        .filter(|r| r["ChargeCategory"].str() == Some("Purchase") && !r["CommitmentDiscountId"].is_null())
        .collect();
    let first_month = cycle("2025-10").start_utc().timestamp_micros();
    let mut yearly = 0;
    // An order's payments of the first month, and the months that amortise them
    // (an order of a whole machine has a row per part each month; a monthly or
    // yearly payment keeps its subscription's order id from month to month).
    for p in purchases.iter().filter(|p| p["BillingPeriodStart"].ts() == first_month) {
        let id = p["CommitmentDiscountId"].str().unwrap();
        let used: Vec<&FocusRow> = rows
            .iter()
            .filter(|r| r["CommitmentDiscountId"].str() == Some(id) && r["ChargeCategory"].str() == Some("Usage"))
            .filter(|r| r["x_AmortizedFromCycle"].str() == Some("2025-10"))
            .collect();
        let term = if p["PricingUnit"].str() == Some("Years") { 12 } else { 1 };
        yearly += usize::from(term == 12);
        let months: std::collections::BTreeSet<i64> = used.iter().map(|r| r["BillingPeriodStart"].ts()).collect();
        assert_eq!(months.len(), term, "{id}: amortised over every month of the term");
        let billed: Decimal = purchases
            .iter()
            .filter(|q| q["CommitmentDiscountId"].str() == Some(id))
            .filter(|q| q["BillingPeriodStart"].ts() == first_month)
            .filter_map(|q| q["BilledCost"].dec())
            .sum();
        let effective: Decimal = used.iter().filter_map(|r| r["EffectiveCost"].dec()).sum();
        assert_eq!(
            effective, billed,
            "{id}: Σ EffectiveCost(Usage) = Σ BilledCost(Purchase)"
        );
        assert!(used.iter().all(|r| r["BilledCost"].dec() == Some(Decimal::ZERO)));
    }
    assert!(yearly > 0, "the first month has a yearly order");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_cost_center_focus_is_unamortised_and_says_so() {
    let sim = start_sim(|c| c.cost_center = false).await;
    let out = tempfile::tempdir().unwrap();
    let r = pipeline::run(
        &job(out.path(), "amortized_costs,focus", "2026-09", "2026-10"),
        &client(&sim.url()),
    )
    .await
    .unwrap();
    let failed: Vec<_> = r.units.iter().filter(|u| u.error.is_some()).collect();
    assert_eq!(failed.len(), 2, "{:?}", r.units);
    assert!(
        failed
            .iter()
            .all(|u| u.dataset == "amortized_costs" && u.error.as_deref().unwrap().contains("CBC.18000014"))
    );
    for c in ["2026-09", "2026-10"] {
        let unit = r
            .units
            .iter()
            .find(|u| u.dataset == "focus" && u.bill_cycle == c)
            .unwrap();
        assert!(
            unit.notes.iter().any(|n| n.contains("CBC.18000014")),
            "{:?}",
            unit.notes
        );
        let rows: Vec<FocusRow> = read(&part(out.path(), "focus", c, "self"))
            .iter()
            .flat_map(cells)
            .collect();
        assert_eq!(
            sum(&rows, "EffectiveCost", |_| true),
            sum(&rows, "BilledCost", |_| true),
            "{c}: EffectiveCost falls back to BilledCost"
        );
        assert!(rows.iter().all(|r| r["CommitmentDiscountId"].is_null()));
    }
    assert!(
        r.human()
            .contains("NOTE: focus 2026-10 self: made without amortized_costs")
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("focus/_focus_metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["x_Unamortized"].as_array().unwrap().len(), 2);
}
