//! The catalogue of BSS operations (fact sheet §0): path, method, page-size
//! limit and documented quota. The client and the simulator both read it, so a
//! path or quota is written down once.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    MonthlySum,
    ResRecords,
    ResFeeRecords,
    UsageSummary,
    UsageDetails,
    FeeRecords,
    AccountChanges,
    SubCustomers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Api {
    pub const ALL: [Api; 8] = [
        Api::MonthlySum,
        Api::ResRecords,
        Api::ResFeeRecords,
        Api::UsageSummary,
        Api::UsageDetails,
        Api::FeeRecords,
        Api::AccountChanges,
        Api::SubCustomers,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Api::MonthlySum => "/v2/bills/customer-bills/monthly-sum",
            Api::ResRecords => "/v2/bills/customer-bills/res-records/query",
            Api::ResFeeRecords => "/v2/bills/customer-bills/res-fee-records",
            Api::UsageSummary => "/v2/bills/customer-bills/resources/usage/summary",
            Api::UsageDetails => "/v2/bills/customer-bills/resources/usage/details",
            Api::FeeRecords => "/v2/bills/customer-bills/fee-records",
            Api::AccountChanges => "/v2/accounts/customer-accounts/account-change-records",
            Api::SubCustomers => "/v2/enterprises/multi-accounts/sub-customers",
        }
    }

    pub fn method(self) -> Method {
        match self {
            Api::ResRecords => Method::Post,
            _ => Method::Get,
        }
    }

    /// Largest `limit` the API accepts.
    pub fn max_limit(self) -> u32 {
        match self {
            Api::AccountChanges | Api::SubCustomers => 100,
            _ => 1000,
        }
    }

    /// Documented requests per second per (API, caller account) (§1.8).
    pub fn quota(self) -> u32 {
        match self {
            Api::ResRecords | Api::ResFeeRecords => 30,
            _ => 10,
        }
    }

    /// JSON key of the row list in the response.
    pub fn list_key(self) -> &'static str {
        match self {
            Api::MonthlySum => "bill_sums",
            Api::ResRecords => "monthly_records",
            Api::ResFeeRecords => "fee_records",
            Api::UsageSummary => "summary_usage_info_list",
            Api::UsageDetails => "usage_info_list",
            Api::FeeRecords | Api::AccountChanges => "records",
            Api::SubCustomers => "sub_customer_infos",
        }
    }

    /// Short name used in configuration, logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Api::MonthlySum => "monthly-sum",
            Api::ResRecords => "res-records",
            Api::ResFeeRecords => "res-fee-records",
            Api::UsageSummary => "usage-summary",
            Api::UsageDetails => "usage-details",
            Api::FeeRecords => "fee-records",
            Api::AccountChanges => "account-change-records",
            Api::SubCustomers => "sub-customers",
        }
    }

    /// The IAM action a user needs for the API (fact sheet §2–§8), named when
    /// the server answers 403.
    pub fn iam_action(self) -> &'static str {
        match self {
            Api::MonthlySum => "billing:bill:view",
            Api::ResRecords | Api::ResFeeRecords | Api::UsageDetails | Api::FeeRecords => "billing:billDetail:view",
            Api::UsageSummary => "billing:resourcePackages:view",
            Api::AccountChanges => "billing:balance:view",
            Api::SubCustomers => "businessUnitCenter:businessUnit:view",
        }
    }

    /// The official SDK's operation name.
    pub fn sdk_operation(self) -> &'static str {
        match self {
            Api::MonthlySum => "ShowCustomerMonthlySum",
            Api::ResRecords => "ListCustomerselfResourceRecordDetails",
            Api::ResFeeRecords => "ListCustomerselfResourceRecords",
            Api::UsageSummary => "ListResourceUsageSummary",
            Api::UsageDetails => "ListResourceUsage",
            Api::FeeRecords => "ListCustomerBillsFeeRecords",
            Api::AccountChanges => "ListCustomerAccountChangeRecords",
            Api::SubCustomers => "ListEnterpriseSubCustomers",
        }
    }

    pub fn from_path(path: &str) -> Option<Api> {
        let p = path.trim_end_matches('/');
        Api::ALL.into_iter().find(|a| a.path() == p)
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Api {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Api::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Api::ALL.iter().map(|a| a.name()).collect();
            format!("unknown API {s:?} (known: {})", names.join(", "))
        })
    }
}

/// A request parameter, typed so a POST body gets JSON ints/bools and a GET
/// query gets their plain-string forms (booleans lower-case, as the SDK sends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Param {
    pub fn as_query_value(&self) -> String {
        match self {
            Param::Str(s) => s.clone(),
            Param::Int(i) => i.to_string(),
            Param::Bool(b) => b.to_string(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Param::Str(s) => s.clone().into(),
            Param::Int(i) => (*i).into(),
            Param::Bool(b) => (*b).into(),
        }
    }
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Param::Str(s.to_string())
    }
}

impl From<String> for Param {
    fn from(s: String) -> Self {
        Param::Str(s)
    }
}

impl From<i64> for Param {
    fn from(i: i64) -> Self {
        Param::Int(i)
    }
}

impl From<bool> for Param {
    fn from(b: bool) -> Self {
        Param::Bool(b)
    }
}

pub type Params = Vec<(&'static str, Param)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_round_trips() {
        for api in Api::ALL {
            assert_eq!(Api::from_path(api.path()), Some(api));
            assert_eq!(Api::from_path(&format!("{}/", api.path())), Some(api));
            assert_eq!(api.name().parse::<Api>().unwrap(), api);
        }
        assert_eq!(Api::ResFeeRecords.quota(), 30);
        assert_eq!(Api::SubCustomers.max_limit(), 100);
        assert!("nope".parse::<Api>().unwrap_err().contains("monthly-sum"));
    }
}
