//! `bill_summary`: ShowCustomerMonthlySum (汇总账单), one row per service,
//! resource type, charging mode and bill type of a cycle (fact sheet §2).

use super::codes::{CHARGE_MODES, SUMMARY_BILL_TYPES};
use super::{DatasetSpec, key};
use crate::model::{Column, Kind, MONEY, col};
use crate::source::api::{Api, ApiDef, Method, Param};

static COLUMNS: [Column; 23] = [
    col("bill_cycle", Kind::Str),
    col("customer_id", Kind::Str),
    col("account_name", Kind::Str),
    col("service_type_code", Kind::Str),
    col("service_type_name", Kind::Str),
    col("resource_type_code", Kind::Str),
    col("resource_type_name", Kind::Str),
    col("charging_mode", Kind::Int),
    col(
        "charging_mode_name",
        Kind::Label {
            of: "charging_mode",
            table: CHARGE_MODES,
        },
    ),
    col("bill_type", Kind::Int),
    col(
        "bill_type_name",
        Kind::Label {
            of: "bill_type",
            table: SUMMARY_BILL_TYPES,
        },
    ),
    col("official_amount", MONEY),
    col("official_discount_amount", MONEY),
    col("truncated_amount", MONEY),
    col("consume_amount", MONEY),
    col("coupon_amount", MONEY),
    col("flexipurchase_coupon_amount", MONEY),
    col("stored_value_card_amount", MONEY),
    col("debt_amount", MONEY),
    col("writeoff_amount", MONEY),
    col("cash_amount", MONEY),
    col("credit_amount", MONEY),
    col("measure_id", Kind::Int),
];

pub static API: ApiDef = ApiDef {
    name: "monthly-sum",
    path: "/v2/bills/customer-bills/monthly-sum",
    method: Method::Get,
    list_key: "bill_sums",
    max_limit: 1000,
    quota: 10,
    sdk_operation: "ShowCustomerMonthlySum",
    iam_action: "billing:bill:view",
    member_scoped: true,
};

pub static SPEC: DatasetSpec = DatasetSpec {
    name: "bill_summary",
    description: "Monthly bill summary per service, resource type, charging mode and bill type",
    api: Api(&API),
    version: 1,
    columns: &COLUMNS,
    money_columns: &[
        "consume_amount",
        "official_amount",
        "official_discount_amount",
        "truncated_amount",
        "cash_amount",
        "credit_amount",
        "coupon_amount",
    ],
    key: &[
        key(
            "customer_id",
            "BillSumRecordInfoV2.customer_id: 消费的实际客户ID (the consuming account)",
        ),
        key("bill_cycle", "BillSumRecordInfoV2.bill_cycle: 消费汇总数据所在账期"),
        key(
            "service_type_code",
            "[inferred] 此账单按月汇总消费数据: a group of the monthly summary: 云服务类型编码",
        ),
        key(
            "resource_type_code",
            "[inferred] a group of the monthly summary: 资源类型编码",
        ),
        key("charging_mode", "[inferred] a group of the monthly summary: 计费模式"),
        key(
            "bill_type",
            "[inferred] a group of the monthly summary: 账单类型 1消费 2退款 3调账",
        ),
    ],
    snapshot: false,
    partition_key: "bill_cycle",
    max_age_months: None,
    lineage_prefix: "",
    options: &[],
    derives: None,
    companion: None,
    sidecar: None,
    editions: &[],
    queries: |q| vec![vec![("bill_cycle", Param::Str(q.cycle.to_string()))]],
};
