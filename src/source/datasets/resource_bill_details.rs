//! `resource_bill_details`: ListCustomerselfResourceRecordDetails (资源详单),
//! POST res-records/query (fact sheet §3). `statistic_type` is configurable
//! (default 3, by detail); by day (2) is fetched in DAILY windows, one local
//! day each, as the API requires `bill_cycle_begin/end` for DAILY queries.

use super::codes::{BILL_TYPES, CHARGE_MODES, PERIOD_TYPES};
use super::{DatasetOption, DatasetSpec, QueryCtx, key};
use crate::model::nested::Shape;
use crate::model::{Column, Kind, MONEY, col, renamed};
use crate::source::api::{Api, ApiDef, Method, Param, Params};

const AZ_CODE_INFOS: Shape = Shape::List(&Shape::Struct(&[("az_code", Shape::Str)]));
const EXTEND_PARAMS: Shape = Shape::Struct(&[
    ("self_resource_id", Shape::Str),
    (
        "relation_infos",
        Shape::List(&Shape::Struct(&[
            ("relative_resource_id", Shape::Str),
            ("relative_type", Shape::Str),
        ])),
    ),
]);

static COLUMNS: [Column; 59] = [
    col("cycle", Kind::Str),
    col("bill_date", Kind::Date),
    col("customer_id", Kind::Str),
    col("account_name", Kind::Str),
    col("payer_account_id", Kind::Str),
    col("region", Kind::Str),
    col("region_name", Kind::Str),
    col("cloud_service_type", Kind::Str),
    col("cloud_service_type_name", Kind::Str),
    renamed("resource_type_code", "resource_Type_code", Kind::Str),
    col("resource_type_name", Kind::Str),
    col("res_instance_id", Kind::Str),
    col("resource_name", Kind::Str),
    col("resource_tag", Kind::Str),
    col("sku_code", Kind::Str),
    col("product_spec_desc", Kind::Str),
    col("enterprise_project_id", Kind::Str),
    col("enterprise_project_name", Kind::Str),
    col("root_resource_id", Kind::Str),
    col("parent_resource_id", Kind::Str),
    col("trade_id", Kind::Str),
    col("id", Kind::Str),
    col("pre_order_id", Kind::Str),
    col("be_id", Kind::Str),
    col("bill_type", Kind::Int),
    col(
        "bill_type_name",
        Kind::Label {
            of: "bill_type",
            table: BILL_TYPES,
        },
    ),
    col("charge_mode", Kind::Int),
    col(
        "charge_mode_name",
        Kind::Label {
            of: "charge_mode",
            table: CHARGE_MODES,
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
    col("effective_time", Kind::Timestamp),
    col("expire_time", Kind::Timestamp),
    col("consume_time", Kind::Timestamp),
    col("sub_service_type_code", Kind::Str),
    col("sub_service_type_name", Kind::Str),
    col("sub_resource_type_code", Kind::Str),
    col("sub_resource_type_name", Kind::Str),
    col("sub_resource_id", Kind::Str),
    col("sub_resource_name", Kind::Str),
    col("is_spot", Kind::Str),
    col("promotion_type", Kind::Str),
    col("payment_type", Kind::Str),
    col("az_code_infos", Kind::Nested(&AZ_CODE_INFOS)),
    col("extend_params", Kind::Nested(&EXTEND_PARAMS)),
    col("period_num", MONEY),
    col("official_amount", MONEY),
    col("discount_amount", MONEY),
    col("consume_amount", MONEY),
    col("cash_amount", MONEY),
    col("credit_amount", MONEY),
    col("coupon_amount", MONEY),
    col("flexipurchase_coupon_amount", MONEY),
    col("stored_card_amount", MONEY),
    col("bonus_amount", MONEY),
    col("debt_amount", MONEY),
    col("adjustment_amount", MONEY),
    col("measure_id", Kind::Int),
    col("statistic_type", Kind::Param),
    col("query_type", Kind::Param),
];

/// `statistic_type`: 1 by cycle, 2 by day, 3 by detail (the default).
static OPTIONS: [DatasetOption; 1] = [DatasetOption {
    name: "statistic_type",
    help: "1 by cycle, 2 by day (one DAILY query per day), 3 by detail",
    default: 3,
    min: 1,
    max: 3,
    choices: &[],
}];

fn queries(q: &QueryCtx) -> Vec<Params> {
    let statistic_type = q.opt("statistic_type");
    let base = |query_type: &str| -> Params {
        vec![
            ("cycle", Param::Str(q.cycle.to_string())),
            ("statistic_type", Param::Int(statistic_type)),
            ("query_type", Param::from(query_type)),
            ("include_zero_record", Param::Bool(true)),
        ]
    };
    if statistic_type != 2 {
        return vec![base("BILLCYCLE")];
    }
    let mut day = q.cycle.first_day();
    let mut out = Vec::new();
    while day <= q.cycle.last_day() {
        let mut p = base("DAILY");
        p.push(("bill_cycle_begin", Param::Str(day.to_string())));
        p.push(("bill_cycle_end", Param::Str(day.to_string())));
        out.push(p);
        day = day.succ_opt().expect("valid date");
    }
    out
}

pub static API: ApiDef = ApiDef {
    name: "res-records",
    path: "/v2/bills/customer-bills/res-records/query",
    method: Method::Post,
    list_key: "monthly_records",
    max_limit: 1000,
    quota: 30,
    sdk_operation: "ListCustomerselfResourceRecordDetails",
    iam_action: "billing:billDetail:view",
    member_scoped: true,
};

pub static SPEC: DatasetSpec = DatasetSpec {
    name: "resource_bill_details",
    description: "Resource bill details (res-records/query), by detail unless statistic_type says otherwise",
    api: Api(&API),
    version: 1,
    columns: &COLUMNS,
    money_columns: &[
        "consume_amount",
        "official_amount",
        "discount_amount",
        "cash_amount",
        "coupon_amount",
    ],
    key: &[
        key("customer_id", "MonthlyBillRes.customer_id: 消费的实际客户ID"),
        key(
            "payer_account_id",
            "MonthlyBillRes.payer_account_id: 支付账号ID (a managed member before and after association)",
        ),
        key(
            "trade_id",
            "MonthlyBillRes.trade_id: 订单ID 或 交易ID (id is 预留字段: no row id is documented)",
        ),
        key(
            "bill_type",
            "[inferred] 账单类型: a purchase and its refund share an order",
        ),
        key("charge_mode", "[inferred] 计费模式"),
        key("period_type", "[inferred] 周期类型"),
        key(
            "res_instance_id",
            "MonthlyBillRes.res_instance_id: 资源实例ID (one order holds several instances)",
        ),
        key(
            "sub_resource_id",
            "MonthlyBillRes.sub_resource_id: 整机的子云服务的自身的资源ID",
        ),
        key("sku_code", "MonthlyBillRes.sku_code: 在账单中唯一标识一个资源的规格"),
        key("region", "[inferred] 云服务区编码"),
        key("enterprise_project_id", "[inferred] 企业项目标识"),
        key(
            "bill_date",
            "MonthlyBillRes.bill_date: 当statistic_type=2时该字段才有值 (one row per day)",
        ),
        key(
            "consume_time",
            "MonthlyBillRes.consume_time: 话单生失效时间, statistic_type=3 (one row per CDR)",
        ),
        key(
            "effective_time",
            "MonthlyBillRes.effective_time: 费用对应的资源使用的开始时间, statistic_type=3",
        ),
        key(
            "expire_time",
            "MonthlyBillRes.expire_time: 费用对应的资源使用的结束时间, statistic_type=3",
        ),
    ],
    snapshot: false,
    partition_key: "bill_cycle",
    max_age_months: None,
    lineage_prefix: "",
    options: &OPTIONS,
    queries,
    derives: None,
    companion: None,
    sidecar: None,
    editions: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_day_uses_one_daily_window_per_local_day() {
        let by_day = SPEC.options_from(&[("statistic_type", "2")]).unwrap();
        let q = QueryCtx {
            cycle: "2026-02".parse().unwrap(),
            options: &by_day,
        };
        let v = queries(&q);
        assert_eq!(v.len(), 28);
        assert!(v[27].contains(&("bill_cycle_end", Param::from("2026-02-28"))));
        assert!(v[0].contains(&("query_type", Param::from("DAILY"))));
        let default = SPEC.options_from(&[]).unwrap();
        let q = QueryCtx { options: &default, ..q };
        assert_eq!(queries(&q).len(), 1);
        assert!(queries(&q)[0].contains(&("query_type", Param::from("BILLCYCLE"))));
        assert!(queries(&q)[0].contains(&("statistic_type", Param::Int(3))));
        for bad in [("statistic_type", "4"), ("statistic_type", "x"), ("nope", "1")] {
            assert!(SPEC.options_from(&[bad]).is_err(), "{bad:?}");
        }
    }
}
