//! ListCustomerselfResourceRecords (`consumption_records`, FOCUS): resource consumption records by cycle, day or detail.

use chrono::Duration;
use rust_decimal::Decimal;

use super::*;
use crate::sim::SimState;
use crate::sim::ledger::{Line, utc};
use crate::sim::params::{Checked, Params};
use crate::sim::records::*;
use crate::source::api::Api;

fn res_fee_record(state: &SimState, line: &Line, detail: bool) -> ResFeeRecordV2 {
    let l = &state.ledger;
    let acct = &l.accounts[line.account];
    let s = line.service;
    let on_demand = line.charge_mode == 3;
    // Metered records (on demand, reserved instances, savings plans) report
    // their usage; prepaid ones do not.
    let metered = line.metered();
    let sub = sub(line);
    ResFeeRecordV2 {
        bill_date: line.bill_date.to_string(),
        bill_type: line.bill_type,
        customer_id: acct.id.clone(),
        region: line.region.0.into(),
        region_name: line.region.1.into(),
        cloud_service_type: s.code.into(),
        resource_type: s.rtype.into(),
        cloud_service_type_name: s.name.into(),
        resource_type_name: s.rname.into(),
        effective_time: metered.then(|| utc(line.consume_time)),
        expire_time: metered.then(|| utc(line.consume_time + Duration::hours(1))),
        resource_id: line.resource_id.clone(),
        resource_name: line.resource_name.clone(),
        resource_tag: Some(format!("env=prod;owner={}", acct.name)),
        product_id: format!(
            "00301-{:06}-0--0",
            line.resource_id.len() * 1000 + line.meter.measure as usize
        ),
        product_name: format!("{} {}", s.name, s.spec),
        product_spec_desc: s.spec.into(),
        sku_code: sku(line),
        spec_size: (!on_demand).then(|| Num(Decimal::new(100, 0))),
        spec_size_measure_id: (!on_demand).then_some(17),
        trade_id: line.trade_id.clone(),
        id: Some(line.id.clone()),
        trade_time: utc(line.trade_time),
        enterprise_project_id: line.project.0.map(Into::into),
        enterprise_project_name: line.project.1.into(),
        charge_mode: line.charge_mode.to_string(),
        order_id: line.order_id.clone(),
        period_type: line.period_type.map(|p| p.to_string()),
        usage_type: metered.then(|| line.meter.code.to_string()),
        usage: metered.then_some(Num(line.usage)),
        usage_measure_id: metered.then_some(line.meter.measure),
        free_resource_usage: zero(),
        free_resource_measure_id: None,
        ri_usage: if line.charge_mode == 10 {
            Num(line.usage)
        } else {
            zero()
        },
        ri_usage_measure_id: (line.charge_mode == 10).then_some(line.meter.measure),
        unit_price: line.unit_price.filter(|_| detail && metered).map(Num),
        unit: (detail && metered).then(|| unit(state, line)),
        official_amount: num(line.official),
        discount_amount: num(line.discount),
        amount: num(line.amount),
        cash_amount: num(line.cash),
        credit_amount: num(line.credit),
        coupon_amount: num(line.coupon),
        flexipurchase_coupon_amount: zero(),
        stored_card_amount: zero(),
        bonus_amount: zero(),
        debt_amount: zero(),
        adjustment_amount: zero(),
        measure_id: 1,
        formula: (line.amount - line.coupon).to_string(),
        sub_service_type_code: sub.service_code,
        sub_service_type_name: sub.service_name,
        sub_resource_type_code: sub.rtype,
        sub_resource_type_name: sub.rname,
        sub_resource_id: sub.id,
        sub_resource_name: sub.name,
        consume_time: utc(line.consume_time),
        relative_order_id: None,
        account_name: acct.name.clone(),
        period_num: (line.charge_mode == 1 || line.order_id.is_some()).then_some(Num(Decimal::ONE)),
    }
}

pub(super) fn handle(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let cycle = p.cycle("cycle")?;
    for k in [
        "cloud_service_type",
        "region",
        "resource_id",
        "enterprise_project_id",
        "trade_id",
    ] {
        p.str(k, 64)?;
    }
    p.one_of("charge_mode", &["1", "3", "10", "11"])?;
    p.int("bill_type")?;
    p.bool("include_zero_record")?;
    let stat = p.int_in("statistic_type", 3, 1, 3)?;
    let range = p.date_range("bill_date_begin", "bill_date_end", cycle)?;
    let accts = accounts(state, p)?;
    let page = p.page(api.max_limit().into())?;
    let (total, rows) = resource_page(state, &accts, cycle, range, page, stat == 3, |line| {
        let mut r = res_fee_record(state, line, stat == 3);
        if stat == 1 {
            r.id = None;
        }
        r
    });
    Ok(list_body(api.list_key(), total, &rows, &[currency(state)]))
}
