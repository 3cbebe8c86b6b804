//! ListCustomerBillsFeeRecords (`transaction_records`): one record per transaction, paid in cents.

use super::*;
use crate::sim::SimState;
use crate::sim::ledger::{Trade, utc};
use crate::sim::params::{Checked, Params};
use crate::sim::records::*;
use crate::source::api::Api;

pub(super) fn handle(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let cycle = p.cycle("bill_cycle")?;
    p.int_in("provider_type", 1, 1, 2)?;
    for k in [
        "service_type_code",
        "resource_type_code",
        "region_code",
        "trade_id",
        "enterprise_project_id",
    ] {
        p.str(k, 64)?;
    }
    p.one_of_int("charging_mode", &[1, 3, 10, 11])?;
    p.int("bill_type")?;
    p.bool("include_zero_record")?;
    p.one_of_int("status", &[1, 2, 3])?;
    // Fee records ignore a half-given window and use the whole cycle (fact sheet §6).
    let range = match (p.date("bill_date_begin")?, p.date("bill_date_end")?) {
        (Some(_), Some(_)) => p.date_range("bill_date_begin", "bill_date_end", cycle)?,
        _ => None,
    };
    let accts = accounts(state, p)?;
    let (offset, limit) = p.page(api.max_limit().into())?;
    let l = &state.ledger;
    let segs = trade_segments(l, &accts, cycle, range);
    let rows: Vec<MonthlyBillRecord> = segs
        .page(offset, limit)
        .into_iter()
        .map(|(a, t)| {
            // The trade's lines are made once, for its row and its payments.
            let lines = l.trade_lines_of(a, cycle, t);
            let (line, x) = (aggregate(&lines), Trade::of(&lines));
            let acct = &l.accounts[a];
            let s = line.service;
            MonthlyBillRecord {
                bill_cycle: cycle.to_string(),
                customer_id: acct.id.clone(),
                service_type_code: s.code.into(),
                resource_type_code: s.rtype.into(),
                service_type_name: s.name.into(),
                resource_type_name: s.rname.into(),
                region_code: line.region.0.into(),
                enterprise_project_id: line.project.0.map(Into::into),
                enterprise_project_name: line.project.1.into(),
                charging_mode: line.charge_mode,
                consume_time: utc(line.consume_time),
                trade_time: utc(line.trade_time),
                // A few trades are KooGallery's (云商店), the second provider.
                provider_type: if crate::sim::ledger::fnv(&line.trade_id).is_multiple_of(29) {
                    2
                } else {
                    1
                },
                trade_id: line.trade_id.clone(),
                // Reserved ("该字段为预留字段").
                id: None,
                bill_type: line.bill_type,
                // Paid from the credit account: settled with the month, so 未结算
                // while the month is open and 未结清 until it is paid.
                status: match (x.credit.is_zero(), cycle == BillCycle::containing(chrono::Utc::now())) {
                    (true, _) => 1,
                    (false, true) => 3,
                    (false, false) => 2,
                },
                official_amount: num(x.official),
                official_discount_amount: num(x.discount),
                erase_amount: num(x.erase),
                consume_amount: num(x.consume),
                cash_amount: num(x.cash),
                credit_amount: num(x.credit),
                coupon_amount: num(x.coupon),
                flexipurchase_coupon_amount: zero(),
                stored_value_card_amount: zero(),
                bonus_amount: zero(),
                debt_amount: zero(),
                writeoff_amount: zero(),
                region_name: line.region.1.into(),
                account_name: acct.name.clone(),
            }
        })
        .collect();
    Ok(list_body(api.list_key(), segs.total(), &rows, &[currency(state)]))
}
