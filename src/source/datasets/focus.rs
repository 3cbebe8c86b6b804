//! `focus`: FOCUS 1.2 cost-and-usage rows derived from the resource
//! consumption records (same query as `consumption_records`). The mapping and
//! every judgment call are documented in `schemas/focus.md`; a FOCUS metadata
//! file is written beside the partitions. (Over 400 lines: the FOCUS
//! mapping tables and the row transform belong together.)

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{DatasetSpec, Derivation, TransformCtx};
use crate::cycle::local_midnight_utc;
use crate::model::{self, Column, Kind, MONEY, col};
use crate::source::api::Api;

pub const FOCUS_VERSION: &str = "1.2";
pub const PROVIDER: &str = "Huawei Cloud";

static COLUMNS: [Column; 57] = [
    // FOCUS 1.2 columns.
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
    col("ConsumedQuantity", MONEY),
    col("ConsumedUnit", Kind::Str),
    col("ContractedCost", MONEY),
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
    col("SubAccountId", Kind::Str),
    col("SubAccountName", Kind::Str),
    col("SubAccountType", Kind::Str),
    col("Tags", Kind::Str),
    // FOCUS 1.3 names where they differ (ProviderName is deprecated in 1.3).
    col("ServiceProviderName", Kind::Str),
    col("HostProviderName", Kind::Str),
    // Huawei extras.
    col("x_BillDate", Kind::Date),
    col("x_BillType", Kind::Int),
    col("x_ChargeMode", Kind::Int),
    col("x_TradeId", Kind::Str),
    col("x_RecordId", Kind::Str),
    col("x_ServiceTypeCode", Kind::Str),
    col("x_ResourceTypeCode", Kind::Str),
    col("x_EnterpriseProjectId", Kind::Str),
    col("x_EnterpriseProjectName", Kind::Str),
    col("x_ProductId", Kind::Str),
    col("x_ProductSpecDesc", Kind::Str),
    col("x_CashAmount", MONEY),
    col("x_CouponAmount", MONEY),
    col("x_DiscountAmount", MONEY),
];

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

/// PricingUnit / ConsumedUnit of the Huawei measure ids the fact sheet documents
/// (§10.7); others keep their number until mapped through /v2/bases/measurements.
const MEASURES: &[(i64, &str)] = &[(10, "GB"), (11, "MB")];

/// Units of `period_num` by period_type (§10.3).
const PERIODS: &[(i64, &str)] = &[(19, "Years"), (20, "Months"), (24, "Days"), (25, "Hours"), (5, "Units")];

struct Row<'a>(HashMap<&'a str, &'a RawValue>);

impl<'a> Row<'a> {
    fn str(&self, k: &str) -> Option<String> {
        self.0
            .get(k)
            .and_then(|r| model::value::string(r).ok().flatten())
            .filter(|s| !s.is_empty())
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

fn utc(t: DateTime<Utc>) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Decimals go out as JSON strings: the normaliser reads them exactly.
fn dec(d: Option<Decimal>) -> Value {
    d.map_or(Value::Null, |d| Value::String(d.to_string()))
}

fn opt(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::String)
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

/// ChargeCategory, ChargeFrequency of a §10.2 bill type and charge mode.
pub fn charge_category(bill_type: Option<i64>, charge_mode: Option<i64>) -> (&'static str, &'static str) {
    let category = match bill_type {
        Some(5 | 12) => "Usage",
        Some(15 | 100 | 101 | 102) => "Tax",
        Some(4 | 20 | 24 | 9) => "Credit",
        Some(16 | 25) => "Adjustment",
        _ => {
            if charge_mode == Some(3) {
                "Usage"
            } else {
                "Purchase"
            }
        }
    };
    let frequency = match (category, charge_mode) {
        ("Usage", _) => "Usage-Based",
        (_, Some(1)) if matches!(bill_type, Some(2 | 8 | 18 | 103)) => "Recurring",
        _ => "One-Time",
    };
    (category, frequency)
}

fn transform(raw: &RawValue, ctx: &TransformCtx<'_>) -> Result<Box<RawValue>, String> {
    let map: HashMap<&str, &RawValue> = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let r = Row(map);
    let amount = r.dec("amount")?.unwrap_or_default();
    let official = r.dec("official_amount")?.unwrap_or(amount);
    let discount = r.dec("discount_amount")?.unwrap_or_default();
    let bill_type = r.int("bill_type");
    let charge_mode = r.int("charge_mode");
    let (category, frequency) = charge_category(bill_type, charge_mode);
    let customer = r.str("customer_id");
    let payer = ctx.payer.map(str::to_string).or_else(|| customer.clone());
    let own = payer == customer;
    let service = r.str("cloud_service_type").unwrap_or_default();
    let (scat, ssub) = SERVICE_CATEGORIES
        .iter()
        .find(|(code, _, _)| *code == service)
        .map_or(("Other", "Other (Other)"), |(_, c, s)| (*c, *s));

    // Charge period: the CDR window for on-demand records, else the bill day
    // (UTC+8) — clamped into the billing period, as FOCUS requires.
    let (period_start, period_end) = (ctx.cycle.start_utc(), ctx.cycle.end_utc());
    let bill_date = r
        .str("bill_date")
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let day_start = bill_date.map(local_midnight_utc);
    let start = r.time("effective_time").or(day_start).unwrap_or(period_start);
    let end = r
        .time("expire_time")
        .filter(|e| *e > start)
        .or(day_start.map(|d| d + Duration::days(1)))
        .unwrap_or(period_end);
    let start = start.clamp(period_start, period_end);
    let end = end.clamp(start, period_end);

    let usage = r.dec("usage")?;
    let usage_unit = r.int("usage_measure_id").map(|m| {
        MEASURES
            .iter()
            .find(|(id, _)| *id == m)
            .map_or_else(|| format!("x_measure_{m}"), |(_, u)| u.to_string())
    });
    let tax = category == "Tax";
    let (pricing_qty, pricing_unit) = if tax {
        (None, None)
    } else if usage.is_some() {
        (usage, usage_unit.clone())
    } else {
        let unit = r
            .int("period_type")
            .and_then(|p| PERIODS.iter().find(|(id, _)| *id == p))
            .map(|(_, u)| u.to_string());
        match (r.dec("period_num")?, unit) {
            (Some(n), Some(u)) => (Some(n), Some(u)),
            _ => (None, None),
        }
    };
    let consumed = (category == "Usage").then_some(usage).flatten();
    let pricing_category = match (tax, charge_mode) {
        (true, _) => None,
        (_, Some(10 | 11)) => Some("Committed"),
        _ => Some("Standard"),
    };

    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    put("AvailabilityZone", Value::Null);
    put("BilledCost", dec(Some(amount)));
    put("BillingAccountId", opt(payer));
    put(
        "BillingAccountName",
        if own { opt(r.str("account_name")) } else { Value::Null },
    );
    put("BillingAccountType", Value::from("Huawei Cloud Account"));
    put("BillingCurrency", Value::from(ctx.currency.unwrap_or("CNY")));
    put("BillingPeriodEnd", utc(period_end));
    put("BillingPeriodStart", utc(period_start));
    put("ChargeCategory", Value::from(category));
    put("ChargeClass", Value::Null);
    put(
        "ChargeDescription",
        opt(r.str("product_name").or_else(|| r.str("product_spec_desc"))),
    );
    put("ChargeFrequency", Value::from(frequency));
    put("ChargePeriodEnd", utc(end));
    put("ChargePeriodStart", utc(start));
    put("ConsumedQuantity", dec(consumed));
    put(
        "ConsumedUnit",
        if consumed.is_some() {
            opt(usage_unit)
        } else {
            Value::Null
        },
    );
    let contracted = official
        .checked_sub(discount)
        .ok_or_else(|| format!("official_amount {official} minus discount_amount {discount} overflows"))?;
    put("ContractedCost", dec(Some(contracted)));
    // No amortisation in this source: the cost is effective when billed.
    put("EffectiveCost", dec(Some(amount)));
    put("InvoiceId", Value::Null);
    put("InvoiceIssuerName", Value::from(PROVIDER));
    put("ListCost", dec(Some(official)));
    put(
        "ListUnitPrice",
        if tax { Value::Null } else { dec(r.dec("unit_price")?) },
    );
    put("PricingCategory", pricing_category.map_or(Value::Null, Value::from));
    put("PricingQuantity", dec(pricing_qty));
    put(
        "PricingUnit",
        if pricing_qty.is_some() {
            opt(pricing_unit)
        } else {
            Value::Null
        },
    );
    put("ProviderName", Value::from(PROVIDER));
    put("PublisherName", Value::from(PROVIDER));
    let region = r.str("region");
    put(
        "RegionName",
        if region.is_some() {
            opt(r.str("region_name"))
        } else {
            Value::Null
        },
    );
    put("RegionId", opt(region));
    let resource = r.str("resource_id");
    let has_resource = resource.is_some();
    put("ResourceId", opt(resource));
    put(
        "ResourceName",
        if has_resource {
            opt(r.str("resource_name"))
        } else {
            Value::Null
        },
    );
    put(
        "ResourceType",
        if has_resource {
            opt(r.str("resource_type_name"))
        } else {
            Value::Null
        },
    );
    put("ServiceCategory", Value::from(scat));
    put(
        "ServiceName",
        opt(r.str("cloud_service_type_name").or(Some(service.clone()))),
    );
    put("ServiceSubcategory", Value::from(ssub));
    put("SkuId", if tax { Value::Null } else { opt(r.str("sku_code")) });
    put("SkuMeter", if tax { Value::Null } else { opt(r.str("usage_type")) });
    let sub = customer.clone();
    put(
        "SubAccountName",
        if sub.is_some() {
            opt(r.str("account_name"))
        } else {
            Value::Null
        },
    );
    put(
        "SubAccountType",
        if sub.is_some() {
            Value::from("Huawei Cloud Account")
        } else {
            Value::Null
        },
    );
    put("SubAccountId", opt(sub));
    put("Tags", opt(tags_json(r.str("resource_tag").as_deref())));
    put("ServiceProviderName", Value::from(PROVIDER));
    put("HostProviderName", Value::from(PROVIDER));
    put("x_BillDate", opt(r.str("bill_date")));
    put("x_BillType", bill_type.map_or(Value::Null, Value::from));
    put("x_ChargeMode", charge_mode.map_or(Value::Null, Value::from));
    put("x_TradeId", opt(r.str("trade_id")));
    put("x_RecordId", opt(r.str("id")));
    put("x_ServiceTypeCode", Value::String(service));
    put("x_ResourceTypeCode", opt(r.str("resource_type")));
    put("x_EnterpriseProjectId", opt(r.str("enterprise_project_id")));
    put("x_EnterpriseProjectName", opt(r.str("enterprise_project_name")));
    put("x_ProductId", opt(r.str("product_id")));
    put("x_ProductSpecDesc", opt(r.str("product_spec_desc")));
    put("x_CashAmount", dec(r.dec("cash_amount")?));
    put("x_CouponAmount", dec(r.dec("coupon_amount")?));
    put("x_DiscountAmount", dec(Some(discount)));
    RawValue::from_string(Value::Object(o).to_string()).map_err(|e| e.to_string())
}

/// The FOCUS metadata (schema id, version, column definitions).
fn metadata(spec: &DatasetSpec) -> (&'static str, String) {
    let schema = spec.schema();
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .filter(|f| !f.name().starts_with("hcbill_"))
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
                _ if f.name() == "Tags" => {
                    c.insert("DataType".into(), Value::from("JSON"));
                    c.insert("ProviderTagPrefixes".into(), Value::Array(vec![]));
                }
                _ => {
                    c.insert("DataType".into(), Value::from("STRING"));
                    c.insert("StringEncoding".into(), Value::from("UTF-8"));
                }
            }
            if matches!(f.name().as_str(), "ProviderName" | "PublisherName") {
                c.insert("Deprecated".into(), Value::Bool(true));
            }
            Value::Object(c)
        })
        .collect();
    let doc = serde_json::json!({
        "DataGenerator": { "DataGenerator": "hcbill" },
        "Schema": {
            // Stable per schema version: a new schema object whenever the structure changes.
            "SchemaId": format!("hcbill-focus-v{}", spec.version),
            "FocusVersion": FOCUS_VERSION,
            "DataGeneratorVersion": env!("CARGO_PKG_VERSION"),
            "CreationDate": "2026-11-23T00:00:00Z",
            "ColumnDefinition": columns,
        },
    });
    (
        "_focus_metadata.json",
        serde_json::to_string_pretty(&doc).expect("metadata serialises") + "\n",
    )
}

pub static SPEC: DatasetSpec = DatasetSpec {
    name: "focus",
    description: "FOCUS 1.2 cost and usage rows derived from the resource consumption records",
    api: Api(&super::consumption_records::API),
    version: 1,
    columns: &COLUMNS,
    money_columns: &["BilledCost", "EffectiveCost", "ListCost", "ContractedCost"],
    key_columns: &["x_RecordId", "SubAccountId", "ChargePeriodStart"],
    snapshot: false,
    max_age_months: None,
    options: &[],
    queries: super::consumption_records::queries,
    derives: Some(Derivation::Rows {
        from: &super::consumption_records::SPEC,
        transform,
    }),
    sidecar: Some(metadata),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_tags() {
        assert_eq!(charge_category(Some(5), Some(3)), ("Usage", "Usage-Based"));
        assert_eq!(charge_category(Some(1), Some(1)), ("Purchase", "One-Time"));
        assert_eq!(charge_category(Some(2), Some(1)), ("Purchase", "Recurring"));
        assert_eq!(charge_category(Some(4), Some(1)).0, "Credit");
        assert_eq!(charge_category(Some(15), None).0, "Tax");
        assert_eq!(
            tags_json(Some("env=prod; owner=数据;flag")).unwrap(),
            r#"{"env":"prod","flag":true,"owner":"数据"}"#
        );
        assert_eq!(tags_json(Some("  ")), None);
    }

    #[test]
    fn a_record_becomes_a_focus_row_with_exact_costs() {
        let rec = RawValue::from_string(
            r#"{"bill_date":"2026-03-01","bill_type":5,"charge_mode":"3","customer_id":"c1","account_name":"主账号",
               "cloud_service_type":"hws.service.type.ec2","cloud_service_type_name":"ECS","region":"cn-north-4",
               "region_name":"Beijing4","resource_id":"r1","resource_name":"vm","resource_type_name":"ECS",
               "effective_time":"2026-02-28T17:00:00Z","expire_time":"2026-02-28T18:00:00Z",
               "usage":1.5,"usage_measure_id":10,"unit_price":0.1,"official_amount":12345678901234.12345678,
               "discount_amount":0.00000001,"amount":12345678901234.12345677,"resource_tag":"k=v"}"#
                .into(),
        )
        .unwrap();
        let ctx = TransformCtx {
            cycle: "2026-03".parse().unwrap(),
            currency: Some("CNY"),
            payer: None,
        };
        let row: Value = serde_json::from_str(transform(&rec, &ctx).unwrap().get()).unwrap();
        assert_eq!(row["BillingPeriodStart"], "2026-02-28T16:00:00Z");
        assert_eq!(row["BillingPeriodEnd"], "2026-03-31T16:00:00Z");
        assert_eq!(row["ChargePeriodStart"], "2026-02-28T17:00:00Z");
        assert_eq!(row["BilledCost"], "12345678901234.12345677");
        assert_eq!(row["ContractedCost"], "12345678901234.12345677");
        assert_eq!(row["ListCost"], "12345678901234.12345678");
        assert_eq!(row["ChargeCategory"], "Usage");
        assert_eq!(row["ServiceCategory"], "Compute");
        assert_eq!(row["PricingUnit"], "GB");
        assert_eq!(row["ConsumedQuantity"], "1.5");
        assert_eq!(row["Tags"], r#"{"k":"v"}"#);
        assert_eq!(row["BillingAccountId"], "c1");
        for c in COLUMNS.iter() {
            assert!(row.get(c.name).is_some(), "{} missing from the transform", c.name);
        }
    }
}
