//! `amortized_costs`: ListCustomerBillsMonthlyBreakDown (fact sheet §9a), the
//! cost center's official amortisation: each month's share of every charge,
//! a yearly or monthly prepaid order spread over its term. Partitioned by the
//! shared (amortised) month; Huawei keeps the last 18 months. Needs Cost
//! Center enabled: otherwise 400 CBC.18000014 fails this dataset's units only.

use super::codes::{BILL_TYPES, CHARGE_MODES, PERIOD_TYPES};
use super::{DatasetSpec, QueryCtx, key};
use crate::model::nested::Shape;
use crate::model::{Column, Kind, MONEY, col};
use crate::source::api::{Api, ApiDef, Method, Param, Params};

const TAG_PAIRS: Shape = Shape::List(&Shape::Struct(&[("tag_key", Shape::Str), ("tag_value", Shape::Str)]));
const COST_UNIT_PAIRS: Shape = Shape::List(&Shape::Struct(&[
    ("cost_unit_name", Shape::Str),
    ("cost_unit_rule_value", Shape::Str),
]));

static COLUMNS: [Column; 49] = [
    col("shared_month", Kind::Str),
    col("bill_cycle", Kind::Str),
    col("customer_id", Kind::Str),
    col("region_code", Kind::Str),
    col("region_name", Kind::Str),
    col("service_type_code", Kind::Str),
    col("service_type_name", Kind::Str),
    col("resource_type_code", Kind::Str),
    col("resource_type_name", Kind::Str),
    col("effective_time", Kind::Timestamp),
    col("expire_time", Kind::Timestamp),
    col("resource_id", Kind::Str),
    col("resource_name", Kind::Str),
    col("resource_tag", Kind::Str),
    col("product_spec_desc", Kind::Str),
    col("enterprise_project_id", Kind::Str),
    col("enterprise_project_name", Kind::Str),
    col("order_id", Kind::Str),
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
    col("usage_type", Kind::Str),
    col("usage", MONEY),
    col("usage_measure_id", Kind::Int),
    col("free_resource_usage", MONEY),
    col("free_resource_measure_id", Kind::Int),
    col("ri_usage", MONEY),
    col("ri_usage_measure_id", Kind::Int),
    col("consume_amount", MONEY),
    col("past_months_amortized_amount", MONEY),
    col("current_month_amortized_amount", MONEY),
    col("future_months_amortized_amount", MONEY),
    col("amortized_cash_amount", MONEY),
    col("amortized_credit_amount", MONEY),
    col("amortized_coupon_amount", MONEY),
    col("amortized_flexipurchase_coupon_amount", MONEY),
    col("amortized_stored_value_card_amount", MONEY),
    col("amortized_bonus_amount", MONEY),
    col("sub_service_type_code", Kind::Str),
    col("sub_service_type_name", Kind::Str),
    col("sub_resource_type_code", Kind::Str),
    col("sub_resource_type_name", Kind::Str),
    col("sub_resource_id", Kind::Str),
    col("sub_resource_name", Kind::Str),
    col("effective_tag_pairs", Kind::Nested(&TAG_PAIRS)),
    col("cost_unit_pairs", Kind::Nested(&COST_UNIT_PAIRS)),
];

pub static API: ApiDef = ApiDef {
    name: "monthly-breakdown",
    path: "/v2/costs/cost-analysed-bills/monthly-breakdown",
    method: Method::Get,
    list_key: "details",
    max_limit: 1000,
    quota: 10,
    sdk_operation: "ListCustomerBillsMonthlyBreakDown",
    iam_action: "costCenter:costDetail:listCostDetails",
    member_scoped: true,
};

/// One query per shared month.
pub fn queries(q: &QueryCtx) -> Vec<Params> {
    vec![vec![("shared_month", Param::Str(q.cycle.to_string()))]]
}

pub static SPEC: DatasetSpec = DatasetSpec {
    name: "amortized_costs",
    description: "Cost center amortisation per month: each charge's share, prepaid orders spread over their term",
    api: Api(&API),
    version: 1,
    columns: &COLUMNS,
    money_columns: &[
        "current_month_amortized_amount",
        "consume_amount",
        "past_months_amortized_amount",
        "future_months_amortized_amount",
    ],
    key: &[
        key("customer_id", "NvlCostAnalysedBillDetail.customer_id: 消费的实际客户ID"),
        key(
            "shared_month",
            "NvlCostAnalysedBillDetail.shared_month: 查询分摊成本的月份",
        ),
        key(
            "bill_cycle",
            "NvlCostAnalysedBillDetail.bill_cycle: 账期 (earlier cycles are amortised into the month)",
        ),
        key(
            "bill_type",
            "[inferred] 账单类型: a purchase and its refund share an order",
        ),
        key("charging_mode", "[inferred] 计费模式"),
        key("period_type", "[inferred] 周期类型"),
        key("service_type_code", "[inferred] 云服务类型编码"),
        key("resource_type_code", "[inferred] 资源类型编码"),
        key("region_code", "[inferred] 云服务区编码"),
        key("enterprise_project_id", "[inferred] 企业项目标识"),
        key("resource_id", "NvlCostAnalysedBillDetail.resource_id: 资源ID"),
        key(
            "sub_resource_id",
            "NvlCostAnalysedBillDetail.sub_resource_id: 整机的子云服务的自身的资源ID（如果为预留实例，则为预留实例标识）",
        ),
        key(
            "usage_type",
            "NvlCostAnalysedBillDetail.usage_type: 资源使用量的类型 (each with its own usage)",
        ),
        key(
            "order_id",
            "NvlCostAnalysedBillDetail.order_id: 订单ID, 包年/包月资源 (orders of one resource)",
        ),
    ],
    snapshot: false,
    partition_key: "shared_month",
    max_age_months: Some(18),
    lineage_prefix: "",
    options: &[],
    queries,
    derives: None,
    companion: None,
    sidecar: None,
    editions: &[],
};
