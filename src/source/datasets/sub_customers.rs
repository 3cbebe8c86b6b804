//! `sub_customers`: ListEnterpriseSubCustomers, the enterprise's member
//! accounts (fact sheet §8). A dimension table: one snapshot per run, in the
//! current cycle's partition.

use super::codes::MEMBER_STATUSES;
use super::{DatasetSpec, key};
use crate::model::{Column, Kind, col};
use crate::source::api::{Api, ApiDef, Method};

static COLUMNS: [Column; 7] = [
    col("id", Kind::Str),
    col("name", Kind::Str),
    col("display_name", Kind::Str),
    col("status", Kind::Int),
    col(
        "status_name",
        Kind::Label {
            of: "status",
            table: MEMBER_STATUSES,
        },
    ),
    col("org_id", Kind::Str),
    col("org_name", Kind::Str),
];

pub static API: ApiDef = ApiDef {
    name: "sub-customers",
    path: "/v2/enterprises/multi-accounts/sub-customers",
    method: Method::Get,
    list_key: "sub_customer_infos",
    max_limit: 100,
    quota: 10,
    sdk_operation: "ListEnterpriseSubCustomers",
    iam_action: "businessUnitCenter:businessUnit:view",
    member_scoped: false,
};

pub static SPEC: DatasetSpec = DatasetSpec {
    name: "sub_customers",
    description: "Enterprise member accounts (dimension snapshot, current cycle)",
    api: Api(&API),
    version: 1,
    columns: &COLUMNS,
    money_columns: &[],
    key: &[key("id", "SubCustomerInfoV2.id: 企业子账号的客户ID")],
    snapshot: true,
    partition_key: "bill_cycle",
    max_age_months: None,
    lineage_prefix: "",
    options: &[],
    queries: |_| vec![vec![]],
    derives: None,
    companion: None,
    sidecar: None,
    editions: &[],
};
