//! `usage_95_summary` and `usage_95_details`: 95th-percentile bandwidth
//! billing (fact sheet §5). The summary is queried for every (service,
//! resource type, usage type) of the 95-billing services; the details fan out
//! to each resource's 5-minute points. Base-1000 data is split between
//! `95peak_1000` and `95Peak_1000`, so both are queried. The API returns
//! bandwidths as strings: they become exact decimals.

use super::{DatasetSpec, Derivation, QueryCtx, key};
use crate::model::{Column, Kind, col};
use crate::source::api::{Api, ApiDef, Method, Param, Params};

/// (service_type_code, resource_type_code, usage types) of the 95-billing services.
pub const COMBINATIONS: &[(&str, &str, &[&str])] = &[
    (
        "hws.service.type.cdn",
        "hws.resource.type.cdn",
        &["95Peak", "95peak_1000", "95Peak_1000", "95peak_plus"],
    ),
    ("hws.service.type.obs", "hws.resource.type.obs", &["95Peak"]),
    (
        "hws.service.type.vpc",
        "hws.resource.type.bandwidth",
        &["bandwidth95peak", "95peak_plus"],
    ),
    ("hws.service.type.iec", "hws.resource.type.edgebandwidth", &["95Peak"]),
];

/// Bandwidths come as strings of unstated precision: room for 20 decimals.
const BANDWIDTH: Kind = Kind::Dec(20);

fn queries(q: &QueryCtx) -> Vec<Params> {
    let mut out = Vec::new();
    for (service, rtype, usages) in COMBINATIONS {
        for usage in *usages {
            out.push(vec![
                ("bill_cycle", Param::Str(q.cycle.to_string())),
                ("service_type_code", Param::from(*service)),
                ("resource_type_code", Param::from(*rtype)),
                ("usage_type", Param::from(*usage)),
            ]);
        }
    }
    out
}

static SUMMARY_COLUMNS: [Column; 9] = [
    col("service_type_code", Kind::Param),
    col("resource_type_code", Kind::Param),
    col("usage_type", Kind::Param),
    col("resource_id", Kind::Str),
    col("actual_days", Kind::Dec(20)),
    col("band_width", BANDWIDTH),
    col("monthly_guaranteed_band_width", BANDWIDTH),
    col("monthly_peak_band_width", BANDWIDTH),
    col("band_width_measure_id", Kind::Int),
];

pub static SUMMARY_API: ApiDef = ApiDef {
    name: "usage-summary",
    path: "/v2/bills/customer-bills/resources/usage/summary",
    method: Method::Get,
    list_key: "summary_usage_info_list",
    max_limit: 1000,
    quota: 10,
    sdk_operation: "ListResourceUsageSummary",
    iam_action: "billing:resourcePackages:view",
    member_scoped: false,
};

pub static DETAILS_API: ApiDef = ApiDef {
    name: "usage-details",
    path: "/v2/bills/customer-bills/resources/usage/details",
    method: Method::Get,
    list_key: "usage_info_list",
    max_limit: 1000,
    quota: 10,
    sdk_operation: "ListResourceUsage",
    iam_action: "billing:billDetail:view",
    member_scoped: false,
};

pub static SUMMARY: DatasetSpec = DatasetSpec {
    name: "usage_95_summary",
    description: "95th-percentile billed bandwidth per resource and usage type",
    api: Api(&SUMMARY_API),
    version: 1,
    columns: &SUMMARY_COLUMNS,
    money_columns: &[],
    key: &[
        key("service_type_code", "request service_type_code: the series asked for"),
        key("resource_type_code", "request resource_type_code: the series asked for"),
        key(
            "usage_type",
            "request usage_type: the series asked for (codes are case-sensitive)",
        ),
        key(
            "resource_id",
            "ListResourceUsageSummary.summary_usage_info_list: 按照资源ID维度返回的月度统计结果",
        ),
    ],
    snapshot: false,
    partition_key: "bill_cycle",
    max_age_months: None,
    lineage_prefix: "",
    options: &[],
    queries,
    derives: None,
    companion: None,
    sidecar: None,
    editions: &[],
};

static DETAIL_COLUMNS: [Column; 8] = [
    col("service_type_code", Kind::Param),
    col("resource_type_code", Kind::Param),
    col("usage_type", Kind::Param),
    col("resource_id", Kind::Param),
    col("stat_time", Kind::Timestamp),
    col("usage", BANDWIDTH),
    col("guaranteed_band_width", BANDWIDTH),
    col("measure_id", Kind::Int),
];

pub static DETAILS: DatasetSpec = DatasetSpec {
    name: "usage_95_details",
    description: "5-minute bandwidth points of every 95th-percentile-billed resource",
    api: Api(&DETAILS_API),
    version: 1,
    columns: &DETAIL_COLUMNS,
    money_columns: &[],
    key: &[
        key("service_type_code", "request service_type_code: the series asked for"),
        key("resource_type_code", "request resource_type_code: the series asked for"),
        key("usage_type", "request usage_type: the series asked for"),
        key("resource_id", "request resource_id: the resource asked for"),
        key(
            "stat_time",
            "StatUsageInfo.stat_time: 统计时间点 (使用量明细，5分钟统计值)",
        ),
    ],
    snapshot: false,
    partition_key: "bill_cycle",
    max_age_months: None,
    lineage_prefix: "",
    options: &[],
    queries,
    companion: None,
    derives: Some(Derivation::FanOut {
        from: &SUMMARY,
        id_key: "resource_id",
        param: "resource_id",
    }),
    sidecar: None,
    editions: &[],
};
