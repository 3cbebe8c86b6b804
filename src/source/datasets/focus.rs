//! `focus`: FOCUS cost-and-usage rows, 1.3 by default and 1.2 on request
//! (`focus.version`). Made from two sources read in one
//! fetch with the datasets that own them: the cost center's amortised months
//! (`amortized_costs`, read first) and the resource consumption records. With
//! amortisation, a prepaid order's Purchase row keeps its BilledCost with
//! EffectiveCost 0, and each month of its term gets a Usage row carrying that
//! month's share; without it (Cost Center off, month too old) EffectiveCost is
//! the billed cost and the partition says so. The two versions differ only in
//! the provider columns (1.3's ServiceProviderName and HostProviderName are
//! `x_` extras in 1.2) and in the metadata. Every mapping decision and the
//! conformance tables are in `schemas/focus.md`. (Over 400 lines: the FOCUS
//! mapping tables and both row transforms belong together.)

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Companion, DatasetOption, DatasetSpec, Derivation, Edition, Key, TransformCtx, key};
use crate::cycle::local_midnight_utc;
use crate::model::{self, Column, Kind, MONEY, col};
use crate::sink::manifest::Manifest;
use crate::source::api::Api;

pub const PROVIDER: &str = "Huawei Cloud";
/// CommitmentDiscountType of a yearly/monthly (prepaid) order.
pub const PREPAID: &str = "Yearly/Monthly Subscription";
/// CommitmentDiscountType of a reserved instance paid up front.
pub const RESERVED: &str = "Reserved Instance";

/// The FOCUS versions hcbill writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1_2,
    V1_3,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_2 => "1.2",
            Version::V1_3 => "1.3",
        }
    }

    /// The column names of the providers: 1.3 defines them, 1.2 does not.
    fn provider_columns(self) -> [&'static str; 2] {
        match self {
            Version::V1_2 => ["x_ServiceProviderName", "x_HostProviderName"],
            Version::V1_3 => ["ServiceProviderName", "HostProviderName"],
        }
    }
}

/// The FOCUS columns both versions define, then `$providers`, then the
/// Huawei extras (`x_`).
macro_rules! focus_columns {
    ($($providers:expr),*) => {
        [
            col("AvailabilityZone", Kind::Str),
            col("BilledCost", MONEY),
            col("BillingAccountId", Kind::Str),
            col("BillingAccountName", Kind::Str),
            col("BillingAccountType", Kind::Str),
            col("BillingCurrency", Kind::Str),
            col("BillingPeriodEnd", Kind::Timestamp),
            col("BillingPeriodStart", Kind::Timestamp),
            col("ChargeCategory", Kind::Str),
            col("ChargeClass", Kind::Str),
            col("ChargeDescription", Kind::Str),
            col("ChargeFrequency", Kind::Str),
            col("ChargePeriodEnd", Kind::Timestamp),
            col("ChargePeriodStart", Kind::Timestamp),
            col("CommitmentDiscountCategory", Kind::Str),
            col("CommitmentDiscountId", Kind::Str),
            col("CommitmentDiscountName", Kind::Str),
            col("CommitmentDiscountQuantity", MONEY),
            col("CommitmentDiscountStatus", Kind::Str),
            col("CommitmentDiscountType", Kind::Str),
            col("CommitmentDiscountUnit", Kind::Str),
            col("ConsumedQuantity", MONEY),
            col("ConsumedUnit", Kind::Str),
            col("ContractedCost", MONEY),
            col("ContractedUnitPrice", MONEY),
            col("EffectiveCost", MONEY),
            col("InvoiceId", Kind::Str),
            col("InvoiceIssuerName", Kind::Str),
            col("ListCost", MONEY),
            col("ListUnitPrice", MONEY),
            col("PricingCategory", Kind::Str),
            col("PricingQuantity", MONEY),
            col("PricingUnit", Kind::Str),
            col("ProviderName", Kind::Str),
            col("PublisherName", Kind::Str),
            col("RegionId", Kind::Str),
            col("RegionName", Kind::Str),
            col("ResourceId", Kind::Str),
            col("ResourceName", Kind::Str),
            col("ResourceType", Kind::Str),
            col("ServiceCategory", Kind::Str),
            col("ServiceName", Kind::Str),
            col("ServiceSubcategory", Kind::Str),
            col("SkuId", Kind::Str),
            col("SkuMeter", Kind::Str),
            col("SkuPriceDetails", Kind::Str),
            col("SkuPriceId", Kind::Str),
            col("SubAccountId", Kind::Str),
            col("SubAccountName", Kind::Str),
            col("SubAccountType", Kind::Str),
            col("Tags", Kind::Str),
            $($providers,)*
            col("x_RowKind", Kind::Str),
            col("x_BillDate", Kind::Date),
            col("x_BillType", Kind::Int),
            col("x_ChargeMode", Kind::Int),
            col("x_TradeId", Kind::Str),
            col("x_RecordId", Kind::Str),
            col("x_AmortizedFromCycle", Kind::Str),
            col("x_ServiceTypeCode", Kind::Str),
            col("x_ResourceTypeCode", Kind::Str),
            col("x_EnterpriseProjectId", Kind::Str),
            col("x_EnterpriseProjectName", Kind::Str),
            col("x_ProductId", Kind::Str),
            col("x_ProductSpecDesc", Kind::Str),
            col("x_UsageMeasureId", Kind::Int),
            col("x_CashAmount", MONEY),
            col("x_CouponAmount", MONEY),
        ]
    };
}

/// FOCUS 1.3: ServiceProviderName and HostProviderName are its own columns.
pub static COLUMNS: [Column; 69] = focus_columns!(
    col("ServiceProviderName", Kind::Str),
    col("HostProviderName", Kind::Str)
);

/// FOCUS 1.2: the 1.3 provider names are extras, prefixed as 1.2 requires.
pub static COLUMNS_1_2: [Column; 69] = focus_columns!(
    col("x_ServiceProviderName", Kind::Str),
    col("x_HostProviderName", Kind::Str)
);

/// ServiceCategory and ServiceSubcategory by Huawei cloud service type code.
const SERVICE_CATEGORIES: &[(&str, &str, &str)] = &[
    ("hws.service.type.ec2", "Compute", "Virtual Machines"),
    ("hws.service.type.bms", "Compute", "Virtual Machines"),
    ("hws.service.type.cce", "Compute", "Containers"),
    ("hws.service.type.functiongraph", "Compute", "Serverless Compute"),
    ("hws.service.type.ebs", "Storage", "Block Storage"),
    ("hws.service.type.obs", "Storage", "Object Storage"),
    ("hws.service.type.sfs", "Storage", "File Storage"),
    ("hws.service.type.cbr", "Storage", "Backup Storage"),
    ("hws.service.type.vpc", "Networking", "Network Connectivity"),
    ("hws.service.type.eip", "Networking", "Network Connectivity"),
    ("hws.service.type.elb", "Networking", "Application Networking"),
    ("hws.service.type.nat", "Networking", "Network Infrastructure"),
    ("hws.service.type.cdn", "Networking", "Content Delivery"),
    ("hws.service.type.dns", "Networking", "Network Routing"),
    ("hws.service.type.rds", "Databases", "Relational Databases"),
    ("hws.service.type.dcs", "Databases", "Caching"),
    ("hws.service.type.dds", "Databases", "NoSQL Databases"),
    ("hws.service.type.dws", "Databases", "Data Warehouses"),
    ("hws.service.type.dli", "Analytics", "Data Processing"),
    ("hws.service.type.css", "Analytics", "Search"),
    (
        "hws.service.type.modelarts",
        "AI and Machine Learning",
        "Machine Learning",
    ),
    ("hws.service.type.kms", "Security", "Secret Management"),
    ("hws.service.type.waf", "Security", "Threat Detection and Response"),
    ("hws.service.type.ces", "Management and Governance", "Observability"),
    ("hws.service.type.lts", "Management and Governance", "Observability"),
];

/// FOCUS units (UnitFormat) of Huawei usage measure ids; others are `Units`,
/// with the id kept in `x_UsageMeasureId`.
pub const MEASURES: &[(i64, &str)] = &[
    (4, "Hours"),
    (5, "Days"),
    (10, "GB"),
    (11, "MB"),
    (12, "TB"),
    (17, "GB-Hours"),
    (33, "Mb/Second"),
];

/// Units of `period_num` by period_type (§10.3).
const PERIODS: &[(i64, &str)] = &[(19, "Years"), (20, "Months"), (24, "Days"), (25, "Hours")];

struct Row<'a>(HashMap<&'a str, &'a RawValue>);

impl<'a> Row<'a> {
    fn parse(raw: &'a str) -> Result<Self, String> {
        serde_json::from_str(raw).map(Row).map_err(|e| e.to_string())
    }

    fn str(&self, k: &str) -> Option<String> {
        self.0
            .get(k)
            .and_then(|r| model::value::string(r).ok().flatten())
            .filter(|s| !s.trim().is_empty())
    }

    fn int(&self, k: &str) -> Option<i64> {
        self.0.get(k).and_then(|r| model::value::int(r).ok().flatten())
    }

    fn dec(&self, k: &str) -> Result<Option<Decimal>, String> {
        match self.0.get(k) {
            None => Ok(None),
            Some(r) => model::value::decimal(r).map_err(|e| format!("{k}: {e}")),
        }
    }

    fn time(&self, k: &str) -> Option<DateTime<Utc>> {
        self.str(k).and_then(|s| model::value::parse_timestamp(&s).ok())
    }
}

/// FOCUS date/times: UTC, whole seconds, `Z`.
fn utc(t: DateTime<Utc>) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Decimals go out as JSON strings: the normaliser reads them exactly.
fn dec(d: Option<Decimal>) -> Value {
    d.map_or(Value::Null, |d| Value::String(d.normalize().to_string()))
}

fn opt(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::String)
}

fn when<T>(cond: bool, v: Option<T>) -> Option<T> {
    v.filter(|_| cond)
}

/// `k=v;k2=v2` (or comma-separated) resource tags as a FOCUS Tags JSON object.
pub fn tags_json(tag: Option<&str>) -> Option<String> {
    let tag = tag?.trim();
    if tag.is_empty() {
        return None;
    }
    let mut m = Map::new();
    for part in tag.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((k, v)) => m.insert(k.trim().to_string(), Value::String(v.trim().to_string())),
            None => m.insert(part.to_string(), Value::Bool(true)),
        };
    }
    Some(Value::Object(m).to_string())
}

/// ChargeCategory and ChargeFrequency of a §10.2 bill type, charge mode and
/// amount. Refunds and compensations are Credits when they give money back;
/// one that charges (a positive amount) is an Adjustment, so a Credit is never
/// positive and every amount keeps its sign.
pub fn charge_category(
    bill_type: Option<i64>,
    charge_mode: Option<i64>,
    amount: Decimal,
) -> (&'static str, &'static str) {
    let category = match bill_type {
        // Use, and use a savings plan pays for.
        Some(5 | 12 | 23) => "Usage",
        Some(15 | 100 | 101 | 102) => "Tax",
        Some(4 | 20 | 24 | 9) if amount <= Decimal::ZERO => "Credit",
        Some(4 | 20 | 24 | 9 | 16 | 25) => "Adjustment",
        _ if charge_mode == Some(3) => "Usage",
        _ => "Purchase",
    };
    let frequency = match (category, charge_mode) {
        ("Usage", _) => "Usage-Based",
        ("Purchase", Some(1)) if matches!(bill_type, Some(2 | 8 | 18 | 103)) => "Recurring",
        _ => "One-Time",
    };
    (category, frequency)
}

/// Whether a record is a prepaid order whose cost covers charges to come
/// (FOCUS EffectiveCost-C-005-C): a yearly/monthly order (new, renewal,
/// auto-renewal, a change of spec for the rest of its term, the monthly or
/// yearly payments of one) or a reserved instance paid up front. These are
/// what the cost center amortises ("包年/包月、预留实例的预付金额").
pub fn is_prepaid_order(bill_type: Option<i64>, charge_mode: Option<i64>) -> bool {
    match charge_mode {
        Some(1) => matches!(bill_type, Some(1 | 2 | 3 | 8 | 18 | 103)),
        Some(10) => bill_type == Some(1),
        _ => false,
    }
}

/// CommitmentDiscountType of a prepaid order.
fn commitment_type(charge_mode: Option<i64>) -> &'static str {
    if charge_mode == Some(10) { RESERVED } else { PREPAID }
}

fn service_categories(code: &str) -> (&'static str, &'static str) {
    SERVICE_CATEGORIES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or(("Other", "Other (Other)"), |(_, c, s)| (*c, *s))
}

fn measure_unit(id: Option<i64>) -> Option<String> {
    id.map(|m| {
        MEASURES
            .iter()
            .find(|(i, _)| *i == m)
            .map_or("Units", |(_, u)| u)
            .to_string()
    })
}

/// A unit price: cost ÷ quantity to the column's 10 decimals.
fn unit_price(cost: Decimal, qty: Decimal) -> Option<Decimal> {
    (!qty.is_zero()).then(|| {
        (cost / qty)
            .round_dp_with_strategy(u32::from(model::MONEY_SCALE), RoundingStrategy::MidpointNearestEven)
            .abs()
    })
}

/// The charge period: the record's usage window when it lies in the billing
/// period, else its UTC+8 bill day; clamped into the billing period and never
/// empty (FOCUS: start inclusive, end exclusive).
fn charge_period(r: &Row<'_>, start_end: (DateTime<Utc>, DateTime<Utc>)) -> (DateTime<Utc>, DateTime<Utc>) {
    let (ps, pe) = start_end;
    let inside = |s: DateTime<Utc>, e: DateTime<Utc>| {
        let (s, e) = (s.max(ps), e.min(pe));
        (s < e).then_some((s, e))
    };
    let window = r
        .time("effective_time")
        .zip(r.time("expire_time"))
        .and_then(|(s, e)| inside(s, e));
    let day = r
        .str("bill_date")
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .map(local_midnight_utc)
        .and_then(|d| inside(d, d + Duration::days(1)));
    window.or(day).unwrap_or((ps, pe))
}

/// The columns every row shares, from the fields both sources name alike.
#[allow(clippy::too_many_arguments)]
fn common(
    version: Version,
    o: &mut Map<String, Value>,
    r: &Row<'_>,
    ctx: &TransformCtx<'_>,
    service: &str,
    service_name: Option<String>,
    resource_type_code: Option<String>,
    resource_type_name: Option<String>,
    region: Option<String>,
    region_name: Option<String>,
) {
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    let customer = r.str("customer_id");
    let payer = ctx.payer.map(str::to_string).or_else(|| customer.clone());
    let own = payer == customer;
    let (scat, ssub) = service_categories(service);
    put("AvailabilityZone", Value::Null);
    put("BillingAccountId", opt(payer));
    put(
        "BillingAccountName",
        opt(when(own, r.str("account_name")).or(when(own, customer.clone()))),
    );
    put("BillingAccountType", Value::from("Huawei Cloud Account"));
    put("BillingCurrency", Value::from(ctx.currency.unwrap_or("CNY")));
    put("BillingPeriodEnd", utc(ctx.cycle.end_utc()));
    put("BillingPeriodStart", utc(ctx.cycle.start_utc()));
    put("ChargeClass", Value::Null);
    put("InvoiceId", Value::Null);
    put("InvoiceIssuerName", Value::from(PROVIDER));
    put("ProviderName", Value::from(PROVIDER));
    put("PublisherName", Value::from(PROVIDER));
    put("RegionName", opt(when(region.is_some(), region_name)));
    put("RegionId", opt(region));
    let resource = r.str("resource_id");
    let has_resource = resource.is_some();
    put("ResourceId", opt(resource));
    put("ResourceName", opt(when(has_resource, r.str("resource_name"))));
    put("ResourceType", opt(when(has_resource, resource_type_name)));
    put("ServiceCategory", Value::from(scat));
    // ServiceName MUST NOT be null: the name, else the code, else "Other" (its category).
    let service_name = service_name
        .or_else(|| Some(service.to_string()).filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "Other".to_string());
    put("ServiceName", Value::String(service_name));
    put("ServiceSubcategory", Value::from(ssub));
    // The cost center does not name accounts: the id stands in for the name.
    put(
        "SubAccountName",
        opt(when(customer.is_some(), r.str("account_name").or(customer.clone()))),
    );
    put(
        "SubAccountType",
        if customer.is_some() {
            Value::from("Huawei Cloud Account")
        } else {
            Value::Null
        },
    );
    put("SubAccountId", opt(customer));
    // Huawei Cloud provides the services and hosts them: HostProviderName
    // equals ServiceProviderName (FOCUS 1.3 HostProviderName, "in all other cases").
    for name in version.provider_columns() {
        put(name, Value::from(PROVIDER));
    }
    put("x_ServiceTypeCode", Value::from(service));
    put("x_ResourceTypeCode", opt(resource_type_code));
    put("x_EnterpriseProjectId", opt(r.str("enterprise_project_id")));
    put("x_EnterpriseProjectName", opt(r.str("enterprise_project_name")));
}

fn finish(o: Map<String, Value>) -> Result<Option<Box<RawValue>>, String> {
    RawValue::from_string(Value::Object(o).to_string())
        .map(Some)
        .map_err(|e| e.to_string())
}

fn transform_1_3(raw: &str, ctx: &TransformCtx<'_>) -> Result<Option<Box<RawValue>>, String> {
    transform(Version::V1_3, raw, ctx)
}

fn transform_1_2(raw: &str, ctx: &TransformCtx<'_>) -> Result<Option<Box<RawValue>>, String> {
    transform(Version::V1_2, raw, ctx)
}

fn amortized_1_3(raw: &str, ctx: &TransformCtx<'_>) -> Result<Option<Box<RawValue>>, String> {
    amortized(Version::V1_3, raw, ctx)
}

fn amortized_1_2(raw: &str, ctx: &TransformCtx<'_>) -> Result<Option<Box<RawValue>>, String> {
    amortized(Version::V1_2, raw, ctx)
}

/// One consumption record → one FOCUS row.
fn transform(version: Version, raw: &str, ctx: &TransformCtx<'_>) -> Result<Option<Box<RawValue>>, String> {
    let r = Row::parse(raw)?;
    let amount = r.dec("amount")?.unwrap_or_default();
    let official = r.dec("official_amount")?.unwrap_or(amount);
    let discount = r.dec("discount_amount")?.unwrap_or_default();
    let contracted = official
        .checked_sub(discount)
        .ok_or_else(|| format!("official_amount {official} minus discount_amount {discount} overflows"))?;
    let bill_type = r.int("bill_type");
    let charge_mode = r.int("charge_mode");
    let (category, frequency) = charge_category(bill_type, charge_mode, amount);
    let priced = matches!(category, "Usage" | "Purchase");
    // With the cost center's months, a prepaid order is a commitment paid up
    // front: its cost becomes effective month by month on the amortised rows.
    let amortised = ctx.companion && category == "Purchase" && is_prepaid_order(bill_type, charge_mode);
    let service = r.str("cloud_service_type").unwrap_or_default();
    let mut o = Map::new();
    common(
        version,
        &mut o,
        &r,
        ctx,
        &service,
        r.str("cloud_service_type_name"),
        r.str("resource_type"),
        r.str("resource_type_name"),
        r.str("region"),
        r.str("region_name"),
    );
    let (start, end) = charge_period(&r, (ctx.cycle.start_utc(), ctx.cycle.end_utc()));
    let usage = r.dec("usage")?;
    let measure = r.int("usage_measure_id");
    // Pricing: usage records by their quantity; prepaid orders by their term;
    // a priced record without a quantity as one unit.
    // A record charged for no quantity used (a minimum fee) is priced as one unit:
    // no unit price times zero makes its cost.
    let charged_for_nothing = usage.is_some_and(|u| u.is_zero()) && !official.is_zero();
    let (qty, unit) = if !priced {
        (None, None)
    } else if let (Some(u), Some(_), false) = (usage, measure, charged_for_nothing) {
        (Some(u), measure_unit(measure))
    } else if category == "Purchase" {
        let period = r
            .int("period_type")
            .and_then(|p| PERIODS.iter().find(|(id, _)| *id == p))
            .map(|(_, u)| u.to_string());
        match (r.dec("period_num")?.filter(|n| !n.is_zero()), period) {
            (Some(n), Some(u)) => (Some(n), Some(u)),
            _ => (Some(Decimal::ONE), Some("Units".to_string())),
        }
    } else {
        (Some(Decimal::ONE), Some("Units".to_string()))
    };
    let list_price = qty.and_then(|q| unit_price(official, q).or(Some(Decimal::ZERO)));
    let contracted_price = qty.and_then(|q| unit_price(contracted, q).or(Some(Decimal::ZERO)));
    // A Credit or Adjustment has no unit prices: its list and contracted costs are what it bills.
    let (list_cost, contracted_cost) = if priced {
        (official, contracted)
    } else {
        (amount, amount)
    };
    // What was consumed is the usage reported, even when it was priced otherwise.
    let (consumed, consumed_unit) = match (category == "Usage", usage, measure) {
        (false, _, _) => (None, None),
        (true, Some(u), Some(_)) => (Some(u), measure_unit(measure)),
        (true, _, _) => (qty, unit.clone()),
    };
    // Committed: use a reserved instance or savings plan pays for, not the
    // purchase of the commitment itself (FOCUS PricingCategory: "Standard …
    // does include the purchase of a commitment discount").
    let commitment_purchase = category == "Purchase" && is_prepaid_order(bill_type, charge_mode);
    let pricing_category = match (priced, charge_mode) {
        (false, _) => None,
        (_, Some(10 | 11)) if !commitment_purchase => Some("Committed"),
        _ => Some("Standard"),
    };
    // Every priced row names a SKU: FOCUS 1.3 nulls prices and quantities
    // where SkuPriceId is null.
    let sku = when(
        priced,
        r.str("sku_code")
            .or_else(|| r.str("resource_type"))
            .or_else(|| r.str("product_id"))
            .or_else(|| Some(service.clone()).filter(|s| !s.is_empty()))
            .or_else(|| Some(PROVIDER.to_string())),
    );
    let order = r.str("order_id").or_else(|| r.str("trade_id"));
    let commitment = when(amortised, order.clone());
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    put("BilledCost", dec(Some(amount)));
    put("ChargeCategory", Value::from(category));
    put(
        "ChargeDescription",
        opt(r.str("product_name").or_else(|| r.str("product_spec_desc"))),
    );
    put("ChargeFrequency", Value::from(frequency));
    put("ChargePeriodEnd", utc(end));
    put("ChargePeriodStart", utc(start));
    put(
        "CommitmentDiscountCategory",
        opt(commitment.as_ref().map(|_| "Spend".to_string())),
    );
    put("CommitmentDiscountName", Value::Null);
    put("CommitmentDiscountQuantity", dec(commitment.as_ref().map(|_| amount)));
    put("CommitmentDiscountStatus", Value::Null);
    put(
        "CommitmentDiscountType",
        opt(commitment.as_ref().map(|_| commitment_type(charge_mode).to_string())),
    );
    put(
        "CommitmentDiscountUnit",
        opt(commitment.as_ref().map(|_| ctx.currency.unwrap_or("CNY").to_string())),
    );
    put("CommitmentDiscountId", opt(commitment));
    put("ConsumedQuantity", dec(consumed));
    put("ConsumedUnit", opt(when(consumed.is_some(), consumed_unit)));
    put("ContractedCost", dec(Some(contracted_cost)));
    put("ContractedUnitPrice", dec(contracted_price));
    put(
        "EffectiveCost",
        dec(Some(if amortised { Decimal::ZERO } else { amount })),
    );
    put("ListCost", dec(Some(list_cost)));
    put("ListUnitPrice", dec(list_price));
    put("PricingCategory", pricing_category.map_or(Value::Null, Value::from));
    put("PricingQuantity", dec(qty));
    put("PricingUnit", opt(when(qty.is_some(), unit)));
    // FOCUS SkuMeter-C-005-C: not null when SkuId is. A purchase has no usage
    // type: what it meters is the subscription term.
    let meter = r.str("usage_type").or_else(|| {
        Some(
            if category == "Purchase" {
                "Subscription"
            } else {
                "Usage"
            }
            .to_string(),
        )
    });
    put("SkuMeter", opt(when(sku.is_some(), meter)));
    put("SkuPriceId", opt(sku.clone()));
    put("SkuPriceDetails", Value::Null);
    put("SkuId", opt(sku));
    put("Tags", opt(tags_json(r.str("resource_tag").as_deref())));
    put("x_RowKind", Value::from("record"));
    put("x_BillDate", opt(r.str("bill_date")));
    put("x_BillType", bill_type.map_or(Value::Null, Value::from));
    put("x_ChargeMode", charge_mode.map_or(Value::Null, Value::from));
    put("x_TradeId", opt(r.str("trade_id")));
    put("x_RecordId", opt(r.str("id")));
    put("x_AmortizedFromCycle", Value::Null);
    put("x_ProductId", opt(r.str("product_id")));
    put("x_ProductSpecDesc", opt(r.str("product_spec_desc")));
    put("x_UsageMeasureId", measure.map_or(Value::Null, Value::from));
    put("x_CashAmount", dec(r.dec("cash_amount")?));
    put("x_CouponAmount", dec(r.dec("coupon_amount")?));
    finish(o)
}

/// One month of a prepaid order from the cost center → one FOCUS Usage row
/// carrying that month's amortised cost (BilledCost 0; the order's Purchase
/// row carries the payment). Other breakdown rows repeat the consumption
/// records and make no row.
fn amortized(version: Version, raw: &str, ctx: &TransformCtx<'_>) -> Result<Option<Box<RawValue>>, String> {
    let r = Row::parse(raw)?;
    let (bill_type, charge_mode) = (r.int("bill_type"), r.int("charging_mode"));
    let Some(order) = r.str("order_id").filter(|_| is_prepaid_order(bill_type, charge_mode)) else {
        return Ok(None);
    };
    let current = r.dec("current_month_amortized_amount")?.unwrap_or_default();
    let shared = r.str("shared_month").unwrap_or_else(|| ctx.cycle.to_string());
    let service = r.str("service_type_code").unwrap_or_default();
    let mut o = Map::new();
    common(
        version,
        &mut o,
        &r,
        ctx,
        &service,
        r.str("service_type_name"),
        r.str("resource_type_code"),
        r.str("resource_type_name"),
        r.str("region_code"),
        r.str("region_name"),
    );
    let tags: Map<String, Value> =
        r.0.get("effective_tag_pairs")
            .and_then(|t| serde_json::from_str::<Vec<HashMap<String, Option<String>>>>(t.get()).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let k = p.get("tag_key").cloned().flatten()?;
                let v = p.get("tag_value").cloned().flatten();
                Some((k, v.map_or(Value::Bool(true), Value::String)))
            })
            .collect();
    let month = Some("Months".to_string());
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    put("BilledCost", dec(Some(Decimal::ZERO)));
    put("ChargeCategory", Value::from("Usage"));
    put(
        "ChargeDescription",
        opt(r.str("product_spec_desc").map(|d| format!("{d} (amortised month)"))),
    );
    put("ChargeFrequency", Value::from("Usage-Based"));
    put("ChargePeriodEnd", utc(ctx.cycle.end_utc()));
    put("ChargePeriodStart", utc(ctx.cycle.start_utc()));
    put("CommitmentDiscountCategory", Value::from("Spend"));
    put("CommitmentDiscountId", Value::String(order.clone()));
    put("CommitmentDiscountName", Value::Null);
    put("CommitmentDiscountQuantity", dec(Some(current)));
    put("CommitmentDiscountStatus", Value::from("Used"));
    put("CommitmentDiscountType", Value::from(commitment_type(charge_mode)));
    put("CommitmentDiscountUnit", Value::from(ctx.currency.unwrap_or("CNY")));
    put("ConsumedQuantity", dec(Some(Decimal::ONE)));
    put("ConsumedUnit", opt(month.clone()));
    // The list and contracted costs of the order are on its Purchase row.
    put("ContractedCost", dec(Some(Decimal::ZERO)));
    put("ContractedUnitPrice", dec(Some(Decimal::ZERO)));
    put("EffectiveCost", dec(Some(current)));
    put("ListCost", dec(Some(Decimal::ZERO)));
    put("ListUnitPrice", dec(Some(Decimal::ZERO)));
    put("PricingCategory", Value::from("Committed"));
    put("PricingQuantity", dec(Some(Decimal::ONE)));
    put("PricingUnit", opt(month));
    let sku = r.str("resource_type_code").or_else(|| Some(service.clone()));
    put("SkuMeter", Value::from("Amortised subscription"));
    put("SkuPriceId", opt(sku.clone()));
    put("SkuPriceDetails", Value::Null);
    put("SkuId", opt(sku));
    put(
        "Tags",
        if tags.is_empty() {
            Value::Null
        } else {
            Value::String(Value::Object(tags).to_string())
        },
    );
    put("x_RowKind", Value::from("amortization"));
    put("x_BillDate", Value::Null);
    put("x_BillType", bill_type.map_or(Value::Null, Value::from));
    put("x_ChargeMode", charge_mode.map_or(Value::Null, Value::from));
    put("x_TradeId", Value::String(order.clone()));
    // An order may cover several resources, a whole machine's parts and
    // several usage types: each has its row (the breakdown's own key).
    put(
        "x_RecordId",
        Value::String(format!(
            "amortized-{order}-{}-{}-{}-{}-{}-{shared}",
            r.str("resource_id").unwrap_or_default(),
            r.str("sub_resource_id").unwrap_or_default(),
            r.str("usage_type").unwrap_or_default(),
            bill_type.unwrap_or_default(),
            r.str("bill_cycle").unwrap_or_default()
        )),
    );
    put("x_AmortizedFromCycle", opt(r.str("bill_cycle")));
    put("x_ProductId", Value::Null);
    put("x_ProductSpecDesc", opt(r.str("product_spec_desc")));
    put("x_UsageMeasureId", Value::Null);
    put("x_CashAmount", dec(r.dec("amortized_cash_amount")?));
    put("x_CouponAmount", dec(r.dec("amortized_coupon_amount")?));
    finish(o)
}

/// Column definitions of the FOCUS metadata. The 1.3 Deprecated flag marks
/// ProviderName and PublisherName, which 1.3 deprecates but still requires.
fn column_definitions(spec: &DatasetSpec, version: Version) -> Vec<Value> {
    spec.schema()
        .fields()
        .iter()
        .map(|f| {
            let mut c = Map::new();
            c.insert("ColumnName".into(), Value::from(f.name().as_str()));
            match f.data_type() {
                arrow_schema::DataType::Decimal128(p, s) => {
                    c.insert("DataType".into(), Value::from("DECIMAL"));
                    c.insert("NumericPrecision".into(), Value::from(*p));
                    c.insert("NumberScale".into(), Value::from(*s));
                }
                arrow_schema::DataType::Timestamp(_, _) => {
                    c.insert("DataType".into(), Value::from("DATETIME"));
                }
                arrow_schema::DataType::Date32 => {
                    c.insert("DataType".into(), Value::from("DATE"));
                }
                arrow_schema::DataType::Int64 => {
                    c.insert("DataType".into(), Value::from("INTEGER"));
                    c.insert("NumericPrecision".into(), Value::from(19));
                }
                _ if matches!(f.name().as_str(), "Tags" | "SkuPriceDetails") => {
                    c.insert("DataType".into(), Value::from("JSON"));
                    if f.name() == "Tags" {
                        c.insert("ProviderTagPrefixes".into(), Value::Array(vec![]));
                    }
                }
                _ => {
                    c.insert("DataType".into(), Value::from("STRING"));
                    c.insert("StringEncoding".into(), Value::from("UTF-8"));
                }
            }
            if version == Version::V1_3 && matches!(f.name().as_str(), "ProviderName" | "PublisherName") {
                c.insert("Deprecated".into(), Value::Bool(true));
            }
            Value::Object(c)
        })
        .collect()
}

/// A GUID (RFC 9562 version 8) stable for `seed`: the same lake and schema
/// always get the same identifiers.
fn guid(seed: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// When each schema version was defined (its CreationDate).
fn schema_created(version: u32) -> &'static str {
    match version {
        2 => "2026-12-01T00:00:00Z",
        3 => "2026-12-03T00:00:00Z",
        _ => "2026-12-03T14:00:00Z",
    }
}

/// Partitions made without the cost center's amortisation.
fn unamortized(manifest: &Manifest) -> Vec<Value> {
    manifest
        .partitions
        .values()
        .flat_map(|p| {
            p.files.iter().filter(|(_, f)| !f.notes.is_empty()).map(|(account, f)| {
                serde_json::json!({ "BillingPeriod": p.bill_cycle, "Account": account, "Notes": f.notes })
            })
        })
        .collect()
}

const EFFECTIVE_COST_NOTE: &str = "Amortised from the Huawei Cloud Cost Center (monthly breakdown) except in the \
    partitions listed in x_Unamortized, where EffectiveCost equals BilledCost";

fn sidecar(doc: &Value) -> (&'static str, String) {
    (
        "_focus_metadata.json",
        serde_json::to_string_pretty(doc).expect("metadata serialises") + "\n",
    )
}

/// FOCUS 1.2 metadata: DataGenerator and one Schema object.
fn metadata_1_2(spec: &DatasetSpec, manifest: &Manifest) -> (&'static str, String) {
    sidecar(&serde_json::json!({
        "DataGenerator": { "DataGenerator": "hcbill" },
        "Schema": {
            // Stable per schema version: a new schema object whenever the structure changes.
            "SchemaId": format!("hcbill-focus-v{}", spec.version),
            "FocusVersion": Version::V1_2.as_str(),
            "DataGeneratorVersion": env!("CARGO_PKG_VERSION"),
            "CreationDate": schema_created(spec.version),
            "ColumnDefinition": column_definitions(spec, Version::V1_2),
        },
        "x_EffectiveCost": EFFECTIVE_COST_NOTE,
        "x_Unamortized": unamortized(manifest),
    }))
}

/// FOCUS 1.3 metadata: DataGenerator, the dataset instance, its recency (one
/// time sector per billing period: complete once the cycle is final), and a
/// Schema object for every schema the instance's files were written with.
fn metadata_1_3(spec: &DatasetSpec, manifest: &Manifest) -> (&'static str, String) {
    let instance = guid("hcbill:focus:CostAndUsage");
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut last = None;
    let sectors: Vec<Value> = manifest
        .partitions
        .values()
        .filter_map(|p| {
            let cycle: crate::cycle::BillCycle = p.bill_cycle.parse().ok()?;
            let updated = p.files.values().map(|f| f.extracted_at).max()?;
            last = last.max(Some(updated));
            Some(serde_json::json!({
                "TimeSectorStart": stamp(cycle.start_utc()),
                "TimeSectorEnd": stamp(cycle.end_utc()),
                "TimeSectorComplete": p.finality == crate::sink::manifest::Finality::Final,
                "TimeSectorLastUpdated": stamp(updated),
            }))
        })
        .collect();
    let mut versions: Vec<u32> = manifest
        .partitions
        .values()
        .flat_map(|p| p.files.values().map(|f| f.schema_version))
        .collect();
    versions.push(spec.version);
    versions.sort_unstable();
    versions.dedup();
    let schemas: Vec<Value> = versions
        .iter()
        .filter_map(|v| {
            let edition = SPEC.at_version(*v)?;
            let focus = if edition.version == SPEC_1_2.version {
                Version::V1_2
            } else {
                Version::V1_3
            };
            Some(serde_json::json!({
                "SchemaId": guid(&format!("hcbill:focus:schema:{v}")),
                "CreationDate": schema_created(*v),
                "FocusVersion": focus.as_str(),
                "DataGeneratorVersion": format!("hcbill {} (focus schema v{v})", env!("CARGO_PKG_VERSION")),
                "DatasetInstanceId": instance,
                "ColumnDefinition": column_definitions(edition, focus),
                "x_ArtifactReference": format!("Parquet key-value metadata hcbill.schema_version = {v}"),
            }))
        })
        .collect();
    let mut recency = serde_json::json!({
        "DatasetInstanceId": instance,
        "TimeSectors": sectors,
    });
    if let Some(t) = last {
        recency["RecencyLastUpdated"] = Value::from(stamp(t));
        recency["DatasetInstanceLastUpdated"] = Value::from(stamp(t));
    }
    sidecar(&serde_json::json!({
        "DataGenerator": { "DataGenerator": "hcbill" },
        "DatasetInstance": [{
            "DatasetInstanceId": instance,
            "DatasetInstanceName": "Huawei Cloud cost and usage (hcbill focus)",
            "FocusDatasetId": "CostAndUsage",
        }],
        "Recency": if last.is_some() { vec![recency] } else { vec![] },
        "Schema": schemas,
        "x_EffectiveCost": EFFECTIVE_COST_NOTE,
        "x_Unamortized": unamortized(manifest),
    }))
}

/// `focus.version`: which FOCUS version the dataset is written as.
static OPTIONS: [DatasetOption; 1] = [DatasetOption {
    name: "version",
    help: "the FOCUS version written; a change rewrites every partition once",
    default: 13,
    min: 12,
    max: 13,
    choices: &[("1.3", 13), ("1.2", 12)],
}];

static EDITIONS: [Edition; 2] = [
    Edition {
        option: "version",
        value: 13,
        spec: &SPEC,
    },
    Edition {
        option: "version",
        value: 12,
        spec: &SPEC_1_2,
    },
];

const KEY: &[Key] = &[
    key(
        "x_RecordId",
        "ResFeeRecordV2.id (唯一标识) for a record; for an amortised month the breakdown's key",
    ),
    key("SubAccountId", "the consuming account (customer_id)"),
    key("ChargePeriodStart", "the charge period of the row"),
];

const MONEY_COLUMNS: &[&str] = &["BilledCost", "EffectiveCost", "ListCost", "ContractedCost"];

/// FOCUS 1.3, the default.
pub static SPEC: DatasetSpec = DatasetSpec {
    name: "focus",
    description: "FOCUS 1.3 cost and usage rows (1.2 with --set focus.version=1.2), amortised with the cost center's monthly breakdown",
    api: Api(&super::consumption_records::API),
    version: 3,
    columns: &COLUMNS,
    money_columns: MONEY_COLUMNS,
    key: KEY,
    snapshot: false,
    partition_key: "bill_cycle",
    max_age_months: None,
    lineage_prefix: "x_",
    options: &OPTIONS,
    queries: super::consumption_records::queries,
    derives: Some(Derivation::Rows {
        from: &super::consumption_records::SPEC,
        transform: transform_1_3,
    }),
    companion: Some(Companion {
        from: &super::amortized_costs::SPEC,
        transform: amortized_1_3,
    }),
    sidecar: Some(metadata_1_3),
    editions: &EDITIONS,
};

/// FOCUS 1.2 (`--set focus.version=1.2`): schema version 4. Version 2 was
/// 1.2 before reserved instances and spec changes were amortised: its files
/// are made again, so one lake holds one mapping.
pub static SPEC_1_2: DatasetSpec = DatasetSpec {
    description: "FOCUS 1.2 cost and usage rows, amortised with the cost center's monthly breakdown",
    version: 4,
    columns: &COLUMNS_1_2,
    derives: Some(Derivation::Rows {
        from: &super::consumption_records::SPEC,
        transform: transform_1_2,
    }),
    companion: Some(Companion {
        from: &super::amortized_costs::SPEC,
        transform: amortized_1_2,
    }),
    sidecar: Some(metadata_1_2),
    ..SPEC
};

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(companion: bool) -> TransformCtx<'static> {
        TransformCtx {
            cycle: "2026-03".parse().unwrap(),
            currency: Some("CNY"),
            payer: None,
            companion,
        }
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn the_version_option_selects_an_edition_with_its_own_schema() {
        let v12 = SPEC.options_from(&[("version", "1.2")]).unwrap();
        assert!(std::ptr::eq(SPEC.edition(&v12), &SPEC_1_2));
        assert!(std::ptr::eq(SPEC.edition(&SPEC.options_from(&[]).unwrap()), &SPEC));
        let err = SPEC.options_from(&[("version", "1.1")]).unwrap_err();
        assert!(err.contains("one of 1.3, 1.2"), "{err}");
        assert!(SPEC.options_from(&[("version", "13")]).is_err(), "labels, not values");
        assert_ne!(SPEC.version, SPEC_1_2.version);
        assert!(std::ptr::eq(SPEC.at_version(4).unwrap(), &SPEC_1_2));
        assert!(std::ptr::eq(SPEC_1_2.at_version(3).unwrap(), &SPEC));
        assert!(SPEC.at_version(2).is_none(), "1.2 as mapped before: made again");
        let names = |s: &DatasetSpec| -> Vec<String> { s.schema().fields().iter().map(|f| f.name().clone()).collect() };
        assert!(names(&SPEC).contains(&"HostProviderName".to_string()));
        assert!(names(&SPEC_1_2).contains(&"x_HostProviderName".to_string()));
    }

    #[test]
    fn each_version_emits_exactly_its_columns() {
        let rec =
            raw(r#"{"bill_date":"2026-03-01","bill_type":15,"customer_id":"c1","amount":1,"cloud_service_type":""}"#);
        for (v, spec) in [(Version::V1_3, &SPEC), (Version::V1_2, &SPEC_1_2)] {
            let row: Map<String, Value> =
                serde_json::from_str(transform(v, rec.get(), &ctx(true)).unwrap().unwrap().get()).unwrap();
            assert_eq!(row["ServiceName"], "Other", "never empty, never null");
            let mut got: Vec<&str> = row.keys().map(String::as_str).collect();
            let mut want: Vec<&str> = spec.columns.iter().map(|c| c.name).collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{v:?}: no key the schema does not know");
        }
    }

    #[test]
    fn reserved_instances_paid_up_front_and_spec_changes_are_prepaid() {
        assert!(is_prepaid_order(Some(1), Some(10)));
        assert!(!is_prepaid_order(Some(5), Some(10)), "its hourly use is not");
        assert!(is_prepaid_order(Some(3), Some(1)));
        assert!(!is_prepaid_order(Some(5), Some(3)));
        let ri = raw(
            r#"{"bill_date":"2026-03-05","bill_type":1,"charge_mode":"10","customer_id":"c1","trade_id":"CS9",
               "cloud_service_type":"hws.service.type.ec2","usage":1,"usage_measure_id":4,"sku_code":"s",
               "official_amount":100,"discount_amount":0,"amount":100}"#,
        );
        let row: Value =
            serde_json::from_str(transform(Version::V1_3, ri.get(), &ctx(true)).unwrap().unwrap().get()).unwrap();
        assert_eq!(row["EffectiveCost"], "0");
        assert_eq!(row["CommitmentDiscountId"], "CS9");
        assert_eq!(row["CommitmentDiscountType"], RESERVED);
        assert_eq!(
            row["PricingCategory"], "Standard",
            "the purchase of a commitment is not Committed"
        );
    }

    #[test]
    fn categories_and_tags() {
        let one = Decimal::ONE;
        assert_eq!(charge_category(Some(5), Some(3), one), ("Usage", "Usage-Based"));
        assert_eq!(charge_category(Some(1), Some(1), one), ("Purchase", "One-Time"));
        assert_eq!(charge_category(Some(2), Some(1), one), ("Purchase", "Recurring"));
        assert_eq!(charge_category(Some(4), Some(1), -one).0, "Credit");
        assert_eq!(charge_category(Some(9), Some(3), -one).0, "Credit");
        assert_eq!(
            charge_category(Some(9), Some(3), one).0,
            "Adjustment",
            "a credit never raises cost"
        );
        assert_eq!(charge_category(Some(15), None, one).0, "Tax");
        assert_eq!(
            tags_json(Some("env=prod; owner=数据;flag")).unwrap(),
            r#"{"env":"prod","flag":true,"owner":"数据"}"#
        );
        assert_eq!(tags_json(Some("  ")), None);
    }

    #[test]
    fn a_record_becomes_a_focus_row_with_exact_costs() {
        let rec = raw(
            r#"{"bill_date":"2026-03-01","bill_type":5,"charge_mode":"3","customer_id":"c1","account_name":"主账号",
               "cloud_service_type":"hws.service.type.ec2","cloud_service_type_name":"ECS","region":"cn-north-4",
               "region_name":"Beijing4","resource_id":"r1","resource_name":"vm","resource_type_name":"ECS",
               "effective_time":"2026-02-28T17:00:00Z","expire_time":"2026-02-28T18:00:00Z","sku_code":"s6",
               "usage":1.5,"usage_measure_id":4,"unit_price":0.1,"official_amount":12345678901234.12345678,
               "discount_amount":0.00000001,"amount":12345678901234.12345677,"resource_tag":"k=v"}"#,
        );
        let row: Value =
            serde_json::from_str(transform(Version::V1_3, rec.get(), &ctx(true)).unwrap().unwrap().get()).unwrap();
        assert_eq!(row["BillingPeriodStart"], "2026-02-28T16:00:00Z");
        assert_eq!(row["BillingPeriodEnd"], "2026-03-31T16:00:00Z");
        assert_eq!(row["ChargePeriodStart"], "2026-02-28T17:00:00Z");
        assert_eq!(row["BilledCost"], "12345678901234.12345677");
        assert_eq!(row["EffectiveCost"], "12345678901234.12345677");
        assert_eq!(row["ContractedCost"], "12345678901234.12345677");
        assert_eq!(row["ListCost"], "12345678901234.12345678");
        assert_eq!(row["ChargeCategory"], "Usage");
        assert_eq!(row["ServiceCategory"], "Compute");
        assert_eq!(row["PricingUnit"], "Hours");
        assert_eq!(row["ConsumedQuantity"], "1.5");
        assert_eq!(row["SkuPriceId"], "s6");
        assert_eq!(row["Tags"], r#"{"k":"v"}"#);
        assert_eq!(row["BillingAccountId"], "c1");
        for c in COLUMNS.iter() {
            assert!(row.get(c.name).is_some(), "{} missing from the transform", c.name);
        }
    }

    #[test]
    fn a_prepaid_order_is_amortised_only_with_the_cost_center() {
        let rec = raw(
            r#"{"bill_date":"2026-03-05","bill_type":8,"charge_mode":"1","period_type":"19","period_num":1,
               "customer_id":"c1","trade_id":"CS1","order_id":"CS1","cloud_service_type":"hws.service.type.ebs",
               "official_amount":1200,"discount_amount":200,"amount":1000}"#,
        );
        let with: Value =
            serde_json::from_str(transform(Version::V1_3, rec.get(), &ctx(true)).unwrap().unwrap().get()).unwrap();
        assert_eq!(with["ChargeCategory"], "Purchase");
        assert_eq!(with["BilledCost"], "1000");
        assert_eq!(with["EffectiveCost"], "0");
        assert_eq!(with["CommitmentDiscountId"], "CS1");
        assert_eq!(
            (with["PricingQuantity"].as_str(), with["PricingUnit"].as_str()),
            (Some("1"), Some("Years"))
        );
        assert_eq!(with["ListUnitPrice"], "1200");
        let without: Value =
            serde_json::from_str(transform(Version::V1_3, rec.get(), &ctx(false)).unwrap().unwrap().get()).unwrap();
        assert_eq!(without["EffectiveCost"], "1000");
        assert_eq!(without["CommitmentDiscountId"], Value::Null);

        let month = raw(
            r#"{"shared_month":"2026-03","bill_cycle":"2026-01","customer_id":"c1","bill_type":8,"charging_mode":1,
               "order_id":"CS1","service_type_code":"hws.service.type.ebs","current_month_amortized_amount":83.33333333,
               "effective_tag_pairs":[{"tag_key":"env","tag_value":"prod"}]}"#,
        );
        let row: Value = serde_json::from_str(
            amortized(Version::V1_3, month.get(), &ctx(true))
                .unwrap()
                .unwrap()
                .get(),
        )
        .unwrap();
        assert_eq!(row["ChargeCategory"], "Usage");
        assert_eq!(row["BilledCost"], "0");
        assert_eq!(row["EffectiveCost"], "83.33333333");
        assert_eq!(row["CommitmentDiscountStatus"], "Used");
        assert_eq!(row["x_AmortizedFromCycle"], "2026-01");
        assert_eq!(row["Tags"], r#"{"env":"prod"}"#);
        let on_demand =
            raw(r#"{"shared_month":"2026-03","bill_type":5,"charging_mode":3,"current_month_amortized_amount":1}"#);
        assert!(amortized(Version::V1_3, on_demand.get(), &ctx(true)).unwrap().is_none());
    }
}
