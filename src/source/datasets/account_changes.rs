//! `account_changes`: ListCustomerAccountChangeRecords (收支明细), income and
//! expense of the cash (debit) and credit balances (fact sheet §7). The API
//! filters by trade date, not by bill cycle, so a partition holds the
//! records whose trade date falls in that UTC+8 month. Not available for
//! members: income/expense is the caller's own.

use super::codes::{PAYMENT_CHANNELS, TRADE_TYPES};
use super::{DatasetSpec, key};
use crate::model::{Column, Kind, MONEY, col};
use crate::source::api::{Api, ApiDef, Method, Param};

static COLUMNS: [Column; 17] = [
    col("balance_type", Kind::Param),
    col("account_change_id", Kind::Str),
    col("trade_detail_type", Kind::Str),
    col(
        "trade_detail_type_name",
        Kind::Label {
            of: "trade_detail_type",
            table: TRADE_TYPES,
        },
    ),
    col("trade_time", Kind::Timestamp),
    col("trade_id", Kind::Str),
    col("change_amount", MONEY),
    col("balance_after_change", MONEY),
    col("revenue_expense_type", Kind::Str),
    col("bill_cycle", Kind::Str),
    col("payment_channel_id", Kind::Str),
    col(
        "payment_channel_name",
        Kind::Label {
            of: "payment_channel_id",
            table: PAYMENT_CHANNELS,
        },
    ),
    col("payment_channel_no", Kind::Str),
    col("consume_time", Kind::Timestamp),
    col("account_name", Kind::Str),
    col("cloud_service_type_name", Kind::Str),
    col("resource_type_name", Kind::Str),
];

pub static API: ApiDef = ApiDef {
    name: "account-change-records",
    path: "/v2/accounts/customer-accounts/account-change-records",
    method: Method::Get,
    list_key: "records",
    max_limit: 100,
    quota: 10,
    sdk_operation: "ListCustomerAccountChangeRecords",
    iam_action: "billing:balance:view",
    member_scoped: false,
};

pub static SPEC: DatasetSpec = DatasetSpec {
    name: "account_changes",
    description: "Income/expense records of the cash and credit balances, by UTC+8 trade month",
    api: Api(&API),
    version: 1,
    columns: &COLUMNS,
    money_columns: &["change_amount"],
    key: &[
        key(
            "balance_type",
            "request balance_type: 现金账户 or 信用账户, the ledger the serial number belongs to",
        ),
        key(
            "account_change_id",
            "CustomerAccountChangeRecord.account_change_id: 收支明细流水号",
        ),
    ],
    snapshot: false,
    partition_key: "trade_month",
    max_age_months: None,
    lineage_prefix: "",
    options: &[],
    queries: |q| {
        ["BALANCE_TYPE_DEBIT", "BALANCE_TYPE_CREDIT"]
            .into_iter()
            .map(|b| {
                vec![
                    ("balance_type", Param::from(b)),
                    ("trade_time_begin", Param::Str(q.cycle.first_day().to_string())),
                    ("trade_time_end", Param::Str(q.cycle.last_day().to_string())),
                ]
            })
            .collect()
    },
    derives: None,
    companion: None,
    sidecar: None,
    editions: &[],
};
