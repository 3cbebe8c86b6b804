//! Response rows with the SDK models' exact JSON keys and types
//! (huaweicloudsdkbss 3.1.219, `tests/sdk/SDK_MODELS.txt`): `Num` is a JSON
//! number with every digit, `String` a JSON string, `i64` a JSON integer.

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// A BigDecimal written as a bare JSON number, exactly (rust_decimal's own
/// `Serialize` would write a string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Num(pub Decimal);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// ShowCustomerMonthlySumResponse.bill_sums[] (BillSumRecordInfoV2).
#[derive(Serialize, Clone, Debug)]
pub struct BillSumRecordInfoV2 {
    pub bill_cycle: String,
    pub resource_type_code: String,
    pub service_type_code: String,
    pub service_type_name: String,
    pub resource_type_name: String,
    pub charging_mode: i64,
    pub official_amount: Num,
    pub official_discount_amount: Num,
    pub truncated_amount: Num,
    pub consume_amount: Num,
    pub coupon_amount: Num,
    pub flexipurchase_coupon_amount: Num,
    pub stored_value_card_amount: Num,
    pub debt_amount: Num,
    pub writeoff_amount: Num,
    pub cash_amount: Num,
    pub credit_amount: Num,
    pub measure_id: i64,
    pub bill_type: i64,
    pub customer_id: String,
    pub account_name: String,
}

/// ListCustomerselfResourceRecordsResponse.fee_records[] (ResFeeRecordV2).
/// `charge_mode` and `period_type` are strings in this model.
#[derive(Serialize, Clone, Debug)]
pub struct ResFeeRecordV2 {
    pub bill_date: String,
    pub bill_type: i64,
    pub customer_id: String,
    pub region: String,
    pub region_name: String,
    pub cloud_service_type: String,
    pub resource_type: String,
    pub cloud_service_type_name: String,
    pub resource_type_name: String,
    pub effective_time: Option<String>,
    pub expire_time: Option<String>,
    pub resource_id: String,
    pub resource_name: String,
    pub resource_tag: Option<String>,
    pub product_id: String,
    pub product_name: String,
    pub product_spec_desc: String,
    pub sku_code: String,
    pub spec_size: Option<Num>,
    pub spec_size_measure_id: Option<i64>,
    pub trade_id: String,
    /// Not returned for statistic_type=1.
    pub id: Option<String>,
    pub trade_time: String,
    pub enterprise_project_id: Option<String>,
    pub enterprise_project_name: String,
    pub charge_mode: String,
    pub order_id: Option<String>,
    pub period_type: Option<String>,
    pub usage_type: Option<String>,
    pub usage: Option<Num>,
    pub usage_measure_id: Option<i64>,
    pub free_resource_usage: Num,
    pub free_resource_measure_id: Option<i64>,
    pub ri_usage: Num,
    pub ri_usage_measure_id: Option<i64>,
    pub unit_price: Option<Num>,
    pub unit: Option<String>,
    pub official_amount: Num,
    pub discount_amount: Num,
    pub amount: Num,
    pub cash_amount: Num,
    pub credit_amount: Num,
    pub coupon_amount: Num,
    pub flexipurchase_coupon_amount: Num,
    pub stored_card_amount: Num,
    pub bonus_amount: Num,
    pub debt_amount: Num,
    pub adjustment_amount: Num,
    pub measure_id: i64,
    pub formula: String,
    pub sub_service_type_code: Option<String>,
    pub sub_service_type_name: Option<String>,
    pub sub_resource_type_code: Option<String>,
    pub sub_resource_type_name: Option<String>,
    pub sub_resource_id: Option<String>,
    pub sub_resource_name: Option<String>,
    pub consume_time: String,
    pub relative_order_id: Option<String>,
    pub account_name: String,
    pub period_num: Option<Num>,
}

#[derive(Serialize, Clone, Debug)]
pub struct AzCodeInfo {
    pub az_code: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct RelationInfo {
    pub relative_resource_id: String,
    pub relative_type: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct ResRelation {
    pub self_resource_id: String,
    pub relation_infos: Vec<RelationInfo>,
}

/// ListCustomerselfResourceRecordDetailsResponse.monthly_records[] (MonthlyBillRes).
#[derive(Serialize, Clone, Debug)]
pub struct MonthlyBillRes {
    pub cycle: String,
    pub bill_date: Option<String>,
    pub bill_type: i64,
    pub customer_id: String,
    pub region: String,
    pub region_name: String,
    pub cloud_service_type: String,
    #[serde(rename = "resource_Type_code")]
    pub resource_type_code: String,
    pub cloud_service_type_name: String,
    pub resource_type_name: String,
    pub res_instance_id: String,
    pub resource_name: String,
    pub resource_tag: Option<String>,
    pub sku_code: String,
    pub enterprise_project_id: Option<String>,
    pub enterprise_project_name: String,
    pub charge_mode: i64,
    pub consume_amount: Num,
    pub cash_amount: Num,
    pub credit_amount: Num,
    pub coupon_amount: Num,
    pub flexipurchase_coupon_amount: Num,
    pub stored_card_amount: Num,
    pub bonus_amount: Num,
    pub debt_amount: Num,
    pub adjustment_amount: Num,
    pub official_amount: Num,
    pub discount_amount: Num,
    pub measure_id: i64,
    pub period_type: Option<i64>,
    pub root_resource_id: Option<String>,
    pub parent_resource_id: Option<String>,
    pub trade_id: String,
    pub id: Option<String>,
    pub product_spec_desc: String,
    pub sub_service_type_code: Option<String>,
    pub sub_service_type_name: Option<String>,
    pub sub_resource_type_code: Option<String>,
    pub sub_resource_type_name: Option<String>,
    pub sub_resource_id: Option<String>,
    pub sub_resource_name: Option<String>,
    pub pre_order_id: Option<String>,
    pub az_code_infos: Vec<AzCodeInfo>,
    pub payer_account_id: String,
    pub effective_time: Option<String>,
    pub expire_time: Option<String>,
    pub consume_time: Option<String>,
    pub be_id: String,
    pub extend_params: ResRelation,
    pub account_name: String,
    pub period_num: Option<Num>,
    pub is_spot: Option<String>,
    pub promotion_type: Option<String>,
    pub payment_type: Option<String>,
}

/// ListResourceUsageSummaryResponse.summary_usage_info_list[] (StatUsageSummaryInfo): all strings.
#[derive(Serialize, Clone, Debug)]
pub struct StatUsageSummaryInfo {
    pub resource_id: String,
    pub actual_days: String,
    pub band_width: String,
    pub monthly_guaranteed_band_width: String,
    pub monthly_peak_band_width: String,
    pub band_width_measure_id: Option<i64>,
}

/// ListResourceUsageResponse.usage_info_list[] (StatUsageInfo).
#[derive(Serialize, Clone, Debug)]
pub struct StatUsageInfo {
    pub stat_time: String,
    pub guaranteed_band_width: String,
    pub usage: String,
    pub measure_id: i64,
}

/// ListCustomerBillsFeeRecordsResponse.records[] (MonthlyBillRecord).
#[derive(Serialize, Clone, Debug)]
pub struct MonthlyBillRecord {
    pub bill_cycle: String,
    pub customer_id: String,
    pub service_type_code: String,
    pub resource_type_code: String,
    pub service_type_name: String,
    pub resource_type_name: String,
    pub region_code: String,
    pub enterprise_project_id: Option<String>,
    pub enterprise_project_name: String,
    pub charging_mode: i64,
    pub consume_time: String,
    pub trade_time: String,
    pub provider_type: i64,
    pub trade_id: String,
    pub id: Option<String>,
    pub bill_type: i64,
    pub status: i64,
    pub official_amount: Num,
    pub official_discount_amount: Num,
    pub erase_amount: Num,
    pub consume_amount: Num,
    pub cash_amount: Num,
    pub credit_amount: Num,
    pub coupon_amount: Num,
    pub flexipurchase_coupon_amount: Num,
    pub stored_value_card_amount: Num,
    pub bonus_amount: Num,
    pub debt_amount: Num,
    pub writeoff_amount: Num,
    pub region_name: String,
    pub account_name: String,
}

/// ListCustomerAccountChangeRecordsResponse.records[]: every field a string.
#[derive(Serialize, Clone, Debug)]
pub struct CustomerAccountChangeRecord {
    pub account_change_id: String,
    pub trade_detail_type: String,
    pub trade_time: String,
    pub trade_id: String,
    pub change_amount: String,
    pub balance_after_change: String,
    pub revenue_expense_type: String,
    pub bill_cycle: String,
    pub payment_channel_id: String,
    pub payment_channel_no: String,
    pub consume_time: String,
    pub account_name: String,
    pub cloud_service_type_name: String,
    pub resource_type_name: String,
}

/// ListEnterpriseSubCustomersResponse.sub_customer_infos[] (SubCustomerInfoV2).
#[derive(Serialize, Clone, Debug)]
pub struct SubCustomerInfoV2 {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub status: i64,
    pub org_id: String,
    pub org_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_serialise_as_exact_numbers() {
        let d: Decimal = "12345678901234.12345678".parse().unwrap();
        assert_eq!(serde_json::to_string(&Num(d)).unwrap(), "12345678901234.12345678");
        assert_eq!(serde_json::to_string(&Some(Num(Decimal::new(-5, 1)))).unwrap(), "-0.5");
    }
}

/// ListCustomerBillsMonthlyBreakDownResponse.details[] (NvlCostAnalysedBillDetail).
#[derive(Serialize, Clone, Debug)]
pub struct NvlCostAnalysedBillDetail {
    pub shared_month: String,
    pub bill_cycle: String,
    pub bill_type: i64,
    pub customer_id: String,
    pub region_code: String,
    pub region_name: String,
    pub service_type_code: String,
    pub resource_type_code: String,
    pub service_type_name: String,
    pub resource_type_name: String,
    pub effective_time: Option<String>,
    pub expire_time: Option<String>,
    pub resource_id: String,
    pub resource_name: String,
    pub resource_tag: Option<String>,
    pub product_spec_desc: String,
    pub enterprise_project_id: Option<String>,
    pub enterprise_project_name: String,
    pub charging_mode: i64,
    pub order_id: Option<String>,
    pub period_type: Option<i64>,
    pub usage_type: Option<String>,
    pub usage: Option<Num>,
    pub usage_measure_id: Option<i64>,
    pub free_resource_usage: Num,
    pub free_resource_measure_id: Option<i64>,
    pub ri_usage: Num,
    pub ri_usage_measure_id: Option<i64>,
    pub consume_amount: Num,
    pub past_months_amortized_amount: Num,
    pub current_month_amortized_amount: Num,
    pub future_months_amortized_amount: Num,
    pub amortized_cash_amount: Num,
    pub amortized_credit_amount: Num,
    pub amortized_coupon_amount: Num,
    pub amortized_flexipurchase_coupon_amount: Num,
    pub amortized_stored_value_card_amount: Num,
    pub amortized_bonus_amount: Num,
    pub sub_service_type_code: Option<String>,
    pub sub_service_type_name: Option<String>,
    pub sub_resource_type_code: Option<String>,
    pub sub_resource_type_name: Option<String>,
    pub sub_resource_id: Option<String>,
    pub sub_resource_name: Option<String>,
    pub effective_tag_pairs: Vec<TagPair>,
    pub cost_unit_pairs: Vec<CostUnitPair>,
}

#[derive(Serialize, Clone, Debug)]
pub struct TagPair {
    pub tag_key: String,
    pub tag_value: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct CostUnitPair {
    pub cost_unit_name: String,
    pub cost_unit_rule_value: String,
}
