//! `consumption_records`: ListCustomerselfResourceRecords (资源消费记录), the
//! resource-level detail records of a cycle (fact sheet §4). The API's default
//! `statistic_type` is undocumented, so 3 (by detail) is always sent, and zero
//! rows are asked for explicitly so a cycle's sums are complete.

use super::codes::{BILL_TYPES, CHARGE_MODES, PERIOD_TYPES};
use super::{DatasetSpec, QueryCtx, key};
use crate::model::{Column, Kind, MONEY, col};
use crate::source::api::{Api, ApiDef, Method, Param, Params};

static COLUMNS: [Column; 63] = [
    col("bill_date", Kind::Date),
    col("customer_id", Kind::Str),
    col("account_name", Kind::Str),
    col("region", Kind::Str),
    col("region_name", Kind::Str),
    col("cloud_service_type", Kind::Str),
    col("cloud_service_type_name", Kind::Str),
    col("resource_type", Kind::Str),
    col("resource_type_name", Kind::Str),
    col("resource_id", Kind::Str),
    col("resource_name", Kind::Str),
    col("resource_tag", Kind::Str),
    col("product_id", Kind::Str),
    col("product_name", Kind::Str),
    col("product_spec_desc", Kind::Str),
    col("sku_code", Kind::Str),
    col("trade_id", Kind::Str),
    col("id", Kind::Str),
    col("trade_time", Kind::Timestamp),
    col("consume_time", Kind::Timestamp),
    col("effective_time", Kind::Timestamp),
    col("expire_time", Kind::Timestamp),
    col("enterprise_project_id", Kind::Str),
    col("enterprise_project_name", Kind::Str),
    col("charge_mode", Kind::Int),
    col(
        "charge_mode_name",
        Kind::Label {
            of: "charge_mode",
            table: CHARGE_MODES,
        },
    ),
    col("bill_type", Kind::Int),
    col(
        "bill_type_name",
        Kind::Label {
            of: "bill_type",
            table: BILL_TYPES,
        },
    ),
    col("period_type", Kind::Int),
    col(
        "period_type_name",
        Kind::Label {
            of: "period_type",
            table: PERIOD_TYPES,
        },
    ),
    col("order_id", Kind::Str),
    col("relative_order_id", Kind::Str),
    col("usage_type", Kind::Str),
    col("unit", Kind::Str),
    col("formula", Kind::Str),
    col("sub_service_type_code", Kind::Str),
    col("sub_service_type_name", Kind::Str),
    col("sub_resource_type_code", Kind::Str),
    col("sub_resource_type_name", Kind::Str),
    col("sub_resource_id", Kind::Str),
    col("sub_resource_name", Kind::Str),
    col("spec_size", MONEY),
    col("spec_size_measure_id", Kind::Int),
    col("usage", MONEY),
    col("usage_measure_id", Kind::Int),
    col("free_resource_usage", MONEY),
    col("free_resource_measure_id", Kind::Int),
    col("ri_usage", MONEY),
    col("ri_usage_measure_id", Kind::Int),
    col("unit_price", MONEY),
    col("period_num", MONEY),
    col("official_amount", MONEY),
    col("discount_amount", MONEY),
    col("amount", MONEY),
    col("cash_amount", MONEY),
    col("credit_amount", MONEY),
    col("coupon_amount", MONEY),
    col("flexipurchase_coupon_amount", MONEY),
    col("stored_card_amount", MONEY),
    col("bonus_amount", MONEY),
    col("debt_amount", MONEY),
    col("adjustment_amount", MONEY),
    col("measure_id", Kind::Int),
];

pub static API: ApiDef = ApiDef {
    name: "res-fee-records",
    path: "/v2/bills/customer-bills/res-fee-records",
    method: Method::Get,
    list_key: "fee_records",
    max_limit: 1000,
    quota: 30,
    sdk_operation: "ListCustomerselfResourceRecords",
    iam_action: "billing:billDetail:view",
    member_scoped: true,
};

/// One query per cycle: by detail, zero-amount rows included. FOCUS shares it.
pub fn queries(q: &QueryCtx) -> Vec<Params> {
    vec![vec![
        ("cycle", Param::Str(q.cycle.to_string())),
        ("statistic_type", Param::Int(3)),
        ("include_zero_record", Param::Bool(true)),
    ]]
}

pub static SPEC: DatasetSpec = DatasetSpec {
    name: "consumption_records",
    description: "Resource-level consumption records (statistic_type=3, zero rows included)",
    api: Api(&API),
    version: 1,
    columns: &COLUMNS,
    money_columns: &[
        "amount",
        "official_amount",
        "discount_amount",
        "cash_amount",
        "coupon_amount",
    ],
    key: &[
        key(
            "customer_id",
            "ResFeeRecordV2.customer_id: 消费的实际客户ID (several accounts under method=all)",
        ),
        key(
            "id",
            "ResFeeRecordV2.id: 唯一标识。按账期类型统计时不返回唯一标识 (statistic_type=3 is sent)",
        ),
    ],
    snapshot: false,
    partition_key: "bill_cycle",
    max_age_months: None,
    lineage_prefix: "",
    derives: None,
    companion: None,
    sidecar: None,
    editions: &[],
    options: &[],
    queries,
};
