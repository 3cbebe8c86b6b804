//! ShowCustomerMonthlySum (`bill_summary`): the monthly summary per service, resource type, charging mode and bill class.

use rust_decimal::Decimal;

use super::*;
use crate::sim::SimState;
use crate::sim::ledger::SERVICES;
use crate::sim::params::{Checked, Params};
use crate::sim::records::*;
use crate::source::api::Api;

pub(super) fn handle(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let cycle = p.cycle("bill_cycle")?;
    p.str("service_type_code", 64)?;
    p.str("enterprise_project_id", 64)?;
    let accts = accounts(state, p)?;
    let (offset, limit) = p.page(api.max_limit().into())?;
    let l = &state.ledger;
    let mut rows = Vec::new();
    for a in &accts {
        rows.extend(l.summary(*a, cycle).iter().cloned());
    }
    let sum = |f: fn(&crate::sim::ledger::SumRow) -> Decimal| rows.iter().map(f).sum::<Decimal>();
    let totals = [
        ("consume_amount", sum(|r| r.consume)),
        ("debt_amount", Decimal::ZERO),
        ("coupon_amount", sum(|r| r.coupon)),
        ("flexipurchase_coupon_amount", Decimal::ZERO),
        ("stored_value_card_amount", Decimal::ZERO),
        ("cash_amount", sum(|r| r.cash)),
        ("credit_amount", sum(|r| r.credit)),
        ("writeoff_amount", Decimal::ZERO),
    ];
    let page: Vec<BillSumRecordInfoV2> = rows
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|r| {
            let s = &SERVICES[r.service];
            let acct = &l.accounts[r.account];
            BillSumRecordInfoV2 {
                bill_cycle: cycle.to_string(),
                resource_type_code: s.rtype.into(),
                service_type_code: s.code.into(),
                service_type_name: s.name.into(),
                resource_type_name: s.rname.into(),
                charging_mode: r.charging_mode,
                official_amount: num(r.official),
                official_discount_amount: num(r.discount),
                truncated_amount: num(r.truncated),
                consume_amount: num(r.consume),
                coupon_amount: num(r.coupon),
                flexipurchase_coupon_amount: zero(),
                stored_value_card_amount: zero(),
                debt_amount: zero(),
                writeoff_amount: zero(),
                cash_amount: num(r.cash),
                credit_amount: num(r.credit),
                measure_id: 1,
                bill_type: r.bill_type,
                customer_id: acct.id.clone(),
                account_name: acct.name.clone(),
            }
        })
        .collect();
    let mut extra: Vec<(&str, String)> = totals.iter().map(|(k, v)| (*k, v.to_string())).collect();
    extra.push(("measure_id", "1".into()));
    extra.push(currency(state));
    Ok(list_body(api.list_key(), rows.len() as u64, &page, &extra))
}
