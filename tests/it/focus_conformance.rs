//! FOCUS conformance of the `focus` output, in both versions hcbill writes.
//! Every MUST rule FOCUS 1.3 (the default) and 1.2 (`focus.version=1.2`)
//! state for the columns hcbill emits is checked row by row on the demo's
//! FOCUS output (the demo pipeline's simulator, `--datasets focus`); the
//! amortisation invariants are checked over whole yearly terms. The rules and
//! how each is met are tabled in `schemas/focus.md`. The FinOps Foundation's
//! validator checks the 1.2 output in `.ci/run` (it has no 1.3 rules offline).

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

/// Columns FOCUS 1.3 adds to the Cost and Usage dataset
/// (specification/datasets/cost_and_usage/columns, v1.3).
const NEW_IN_13: [&str; 8] = [
    "AllocatedMethodDetails",
    "AllocatedMethodId",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
    "ContractApplied",
    "HostProviderName",
    "ServiceProviderName",
];

/// The FOCUS version a test checks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Focus {
    V12,
    V13,
}

impl Focus {
    fn label(self) -> &'static str {
        match self {
            Focus::V12 => "1.2",
            Focus::V13 => "1.3",
        }
    }

    fn defines(self, column: &str) -> bool {
        FOCUS_12.contains(&column) || (self == Focus::V13 && NEW_IN_13.contains(&column))
    }
}

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

    fn assert_none(&self, focus: Focus) {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(rule, (n, ex))| format!("{rule}: {n} rows, e.g. {ex}"))
            .collect();
        assert!(
            lines.is_empty(),
            "FOCUS {} rules broken:\n{}",
            focus.label(),
            lines.join("\n")
        );
    }
}

fn schema_rules(v: &mut Violations, b: &RecordBatch, focus: Focus) {
    let schema = b.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for c in REQUIRED {
        v.check("column present", names.contains(&c), || c.to_string());
    }
    if focus == Focus::V13 {
        // Mandatory in 1.3; ProviderName and PublisherName are deprecated but still Mandatory.
        for c in ["ServiceProviderName", "HostProviderName"] {
            v.check("1.3 mandatory column present", names.contains(&c), || c.to_string());
        }
    }
    for n in &names {
        v.check(
            "a column the FOCUS version does not define carries the x_ prefix",
            focus.defines(n) || n.starts_with("x_"),
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
        } else if focus.defines(n) {
            v.check(
                "String and JSON columns are strings",
                f.data_type() == &DataType::Utf8,
                || n.into(),
            );
        }
    }
}

fn row_rules(v: &mut Violations, r: &FocusRow, focus: Focus) {
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
        v.check(
            "the purchase of a commitment is not Committed (PricingCategory)",
            s("PricingCategory").as_deref() != Some("Committed"),
            id,
        );
    }
    // Reserved instances paid up front and changes of a subscription's spec
    // cover charges to come (EffectiveCost-C-005-C): amortised, as the cost
    // center does, never billed and effective at once.
    let prepaid = matches!(get("x_ChargeMode"), Cell::Int(1 | 10))
        && matches!(get("x_BillType"), Cell::Int(1 | 2 | 3 | 8 | 18 | 103))
        && !(get("x_ChargeMode") == Cell::Int(10) && get("x_BillType") != Cell::Int(1));
    if category == "Purchase" && prepaid && !has_cd {
        v.check(
            "a prepaid purchase without amortisation is effective when billed",
            d("EffectiveCost") == Some(billed),
            id,
        );
    }
    if focus == Focus::V13 {
        rules_new_in_13(v, r);
    }
}

/// The MUST rules 1.3 adds or changes for the columns hcbill emits
/// (specification/datasets/cost_and_usage/columns at v1.3).
fn rules_new_in_13(v: &mut Violations, r: &FocusRow) {
    let get = |c: &str| r.get(c).cloned().unwrap_or(Cell::Null);
    let s = |c: &str| get(c).str().map(str::to_string);
    let null = |c: &str| get(c).is_null();
    let id = || format!("{:?} {:?}", s("x_RecordId"), s("ChargeCategory"));
    let category = s("ChargeCategory").unwrap_or_default();
    // ServiceProviderName MUST NOT be null.
    v.check("ServiceProviderName is not null", !null("ServiceProviderName"), id);
    // ProviderName and PublisherName: deprecated, still MUST NOT be null.
    for c in ["ProviderName", "PublisherName"] {
        v.check("deprecated provider columns are not null", !null(c), || {
            format!("{c} in {}", id())
        });
    }
    // HostProviderName MAY be null only without infrastructure or for Tax and
    // Adjustment; otherwise it equals ServiceProviderName unless another host
    // is exposed (Huawei Cloud hosts its own services).
    if !matches!(category.as_str(), "Tax" | "Adjustment") {
        v.check("HostProviderName is not null", !null("HostProviderName"), id);
    }
    v.check(
        "HostProviderName equals ServiceProviderName",
        null("HostProviderName") || s("HostProviderName") == s("ServiceProviderName"),
        id,
    );
    // "X MUST be null when SkuPriceId is null."
    if null("SkuPriceId") {
        for c in [
            "CommitmentDiscountQuantity",
            "ConsumedQuantity",
            "ContractedUnitPrice",
            "ListUnitPrice",
            "PricingCategory",
            "PricingQuantity",
        ] {
            v.check("null when SkuPriceId is null", null(c), || format!("{c} in {}", id()));
        }
    } else {
        // "ListUnitPrice / ContractedUnitPrice MUST NOT be null when SkuPriceId is not null."
        for c in ["ListUnitPrice", "ContractedUnitPrice"] {
            v.check("unit prices are set when SkuPriceId is", !null(c), || {
                format!("{c} in {}", id())
            });
        }
    }
}

fn check_metadata(out: &Path, columns: &[String], focus: Focus) {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("focus/_focus_metadata.json")).unwrap()).unwrap();
    assert!(meta["DataGenerator"]["DataGenerator"].is_string());
    let schema = match focus {
        Focus::V12 => &meta["Schema"],
        Focus::V13 => {
            // DatasetInstance: one object per FOCUS dataset, with its id, name and dataset.
            let instances = meta["DatasetInstance"].as_array().unwrap();
            assert_eq!(instances.len(), 1);
            let instance = instances[0]["DatasetInstanceId"].as_str().unwrap();
            assert!(uuid::Uuid::parse_str(instance).is_ok(), "a GUID: {instance}");
            assert!(instances[0]["DatasetInstanceName"].is_string());
            assert_eq!(instances[0]["FocusDatasetId"], "CostAndUsage");
            // Recency (optional, but complete when given): a time sector per billing period.
            let recency = meta["Recency"].as_array().unwrap();
            assert_eq!(recency.len(), 1);
            assert_eq!(recency[0]["DatasetInstanceId"], instance);
            for k in ["RecencyLastUpdated", "DatasetInstanceLastUpdated"] {
                let t = recency[0][k].as_str().unwrap();
                assert!(
                    chrono::DateTime::parse_from_rfc3339(t).is_ok() && t.ends_with('Z'),
                    "{k}"
                );
            }
            let sectors = recency[0]["TimeSectors"].as_array().unwrap();
            assert!(!sectors.is_empty());
            for t in sectors {
                let start = t["TimeSectorStart"].as_str().unwrap();
                let end = t["TimeSectorEnd"].as_str().unwrap();
                assert!(start < end && t["TimeSectorComplete"].is_boolean());
                assert!(t["TimeSectorLastUpdated"].is_string());
            }
            // Schema: a collection, each object tied to the instance; the files' one schema here.
            let schemas = meta["Schema"].as_array().unwrap();
            assert_eq!(schemas.len(), 1, "one shape in the lake");
            assert_eq!(schemas[0]["DatasetInstanceId"], instance);
            assert!(uuid::Uuid::parse_str(schemas[0]["SchemaId"].as_str().unwrap()).is_ok());
            let defs = schemas[0]["ColumnDefinition"].as_array().unwrap();
            for c in ["ProviderName", "PublisherName"] {
                let d = defs.iter().find(|d| d["ColumnName"] == c).unwrap();
                assert_eq!(d["Deprecated"], true, "{c} is deprecated in 1.3");
            }
            &schemas[0]
        }
    };
    assert_eq!(schema["FocusVersion"], focus.label());
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

/// `hcbill run pipelines/demo.toml --datasets focus --out <out>` plus `args`.
fn demo_focus(out: &Path, args: &[&str]) -> std::process::Command {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo.toml");
    let mut c = bin();
    c.arg("run")
        .arg(&demo)
        .args(["--datasets", "focus", "--out"])
        .arg(out)
        .args(args);
    c
}

/// Runs the demo's FOCUS (with `args`) into `out` and checks every rule of
/// `focus` on every row.
async fn demo_meets_every_rule(out: &Path, focus: Focus, args: &[&str]) {
    let mut c = demo_focus(out, args);
    let o = tokio::task::spawn_blocking(move || c.output()).await.unwrap().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let files = focus_files(out);
    assert_eq!(files.len(), 5, "five months of the demo");
    let mut v = Violations::default();
    let mut categories: HashMap<String, usize> = HashMap::new();
    let mut columns = Vec::new();
    for (_, batches) in &files {
        for b in batches {
            schema_rules(&mut v, b, focus);
            columns = b.schema().fields().iter().map(|f| f.name().clone()).collect();
            for r in cells(b) {
                *categories
                    .entry(r["ChargeCategory"].str().unwrap_or_default().to_string())
                    .or_default() += 1;
                row_rules(&mut v, &r, focus);
            }
        }
    }
    v.assert_none(focus);
    // The demo exercises every kind of row the rules distinguish.
    for c in ["Usage", "Purchase", "Credit", "Adjustment"] {
        assert!(
            categories.get(c).copied().unwrap_or(0) > 0,
            "no {c} rows: {categories:?}"
        );
    }
    check_metadata(out, &columns, focus);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demos_focus_output_meets_every_focus_1_3_rule() {
    let dir = tempfile::tempdir().unwrap();
    demo_meets_every_rule(&dir.path().join("out"), Focus::V13, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demos_focus_output_meets_every_focus_1_2_rule_when_asked_for_1_2() {
    let dir = tempfile::tempdir().unwrap();
    demo_meets_every_rule(&dir.path().join("out"), Focus::V12, &["--set", "focus.version=1.2"]).await;
}

#[test]
fn a_lake_written_as_1_2_is_rewritten_once_as_1_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = |version: &str, from: &str| {
        let o = demo_focus(&out, &["--from", from, "--to", "2026-10", "--accounts", "self"])
            .args(["--set", &format!("focus.version={version}")])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let names = |c: &str| -> Vec<String> {
        read(&part(&out, "focus", c, "self"))[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    };
    run("1.2", "2026-08");
    assert!(names("2026-08").contains(&"x_ServiceProviderName".to_string()));
    // Switched to 1.3 for October only: August and September are rewritten too.
    let log = run("1.3", "2026-10");
    for c in ["2026-08", "2026-09", "2026-10"] {
        let cols = names(c);
        assert!(cols.contains(&"ServiceProviderName".to_string()), "{c}: {cols:?}");
        assert!(!cols.iter().any(|n| n == "x_ServiceProviderName"), "{c}");
    }
    assert!(log.contains("2 more partitions rewritten"), "{log}");
    assert!(!log.contains("restated"), "a new shape is not a restatement: {log}");
    let m = manifest_json(&out.join("focus"));
    let partitions = m["partitions"].as_object().unwrap();
    assert_eq!(partitions.len(), 3);
    for p in partitions.values() {
        assert!(p["restatements"].as_array().is_none_or(|r| r.is_empty()), "{p}");
        for f in p["files"].as_object().unwrap().values() {
            assert_eq!(f["schema_version"], 3);
        }
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("focus/_focus_metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["Schema"].as_array().unwrap().len(), 1);
    assert_eq!(meta["Schema"][0]["FocusVersion"], "1.3");
    // Once: the next run finds every partition in shape and fetches nothing.
    let log = run("1.3", "2026-08");
    assert!(log.contains(" 0 requests"), "{log}");
    let verify = bin().arg("verify").arg("--out").arg(&out).output().unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
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
        // Yearly orders are priced by their term; a reserved instance paid up
        // front (a year in the simulator) by the use it reports.
        let a_year = p["PricingUnit"].str() == Some("Years") || p["x_ChargeMode"] == Cell::Int(10);
        let term = if a_year { 12 } else { 1 };
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

#[test]
fn a_partition_older_than_the_cost_center_keeps_is_not_made_again_in_the_new_shape() {
    use hcbill::sink::manifest::{FileEntry, Finality, Manifest};
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), "focus", "2026-10", "2026-10");
    let now = cycle("2026-11");
    let mut m = Manifest::new("focus", 2);
    for c in ["2024-10", "2026-06"] {
        let entry = FileEntry {
            path: format!("bill_cycle={c}/part-self.parquet"),
            rows: 1,
            bytes: 1,
            sha256: "x".into(),
            content_digest: "d".into(),
            money_totals: Default::default(),
            schema_version: 2,
            query_digest: "q".into(),
            finality: Finality::Final,
            extracted_at: chrono::Utc::now(),
            run_id: "r".into(),
            notes: Vec::new(),
            currency: None,
            e_tag: None,
            checked_by: None,
        };
        m.record(c, "self", chrono::Utc::now(), entry);
    }
    let spec = hcbill::source::datasets::by_name("focus").unwrap();
    let cycles: Vec<String> = pipeline::plan::dataset_cycles(&job, spec, &m, now)
        .iter()
        .map(ToString::to_string)
        .collect();
    // June is rewritten as 1.3; October 2024 is past the cost center's 18
    // months, and made again it would lose its amortisation.
    assert_eq!(cycles, ["2026-06", "2026-10"]);
}
