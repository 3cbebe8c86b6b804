//! ListCustomerBillsMonthlyBreakDown (`amortized_costs`): the cost center's amortised month.

use chrono::{Duration, Utc};

use super::*;
use crate::cycle::{BillCycle, local_midnight_utc};
use crate::sim::SimState;
use crate::sim::ledger::{Ledger, utc};
use crate::sim::params::{Checked, Invalid, Params};
use crate::sim::records::*;
use crate::source::api::Api;

/// The cost center keeps 18 months (fact sheet §9a).
pub const BREAKDOWN_MONTHS: u32 = 18;

pub(super) fn handle(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let month = p.cycle("shared_month")?;
    let now = BillCycle::containing(Utc::now());
    let oldest = (1..BREAKDOWN_MONTHS).fold(now, |c, _| c.pred());
    if month < oldest || month > now {
        return Err(Invalid(format!(
            "shared_month must be within the last {BREAKDOWN_MONTHS} months ({oldest} to {now})"
        )));
    }
    for k in [
        "service_type_code",
        "resource_type_code",
        "region_code",
        "resource_id",
        "resource_name",
        "enterprise_project_id",
    ] {
        p.str(k, 64)?;
    }
    p.int("charging_mode")?;
    p.int("bill_type")?;
    let accts = accounts(state, p)?;
    let (offset, limit) = p.page(api.max_limit().into())?;
    let l = &state.ledger;
    let per_account: Vec<_> = accts
        .iter()
        .map(|a| (*a, crate::sim::amortization::breakdown(l, *a, month)))
        .collect();
    let segs = Segments(per_account.iter().map(|(a, rows)| (*a, 0, rows.len() as u64)).collect());
    let rows: Vec<NvlCostAnalysedBillDetail> = segs
        .page(offset, limit)
        .into_iter()
        .map(|(a, i)| {
            let rows = &per_account.iter().find(|(x, _)| *x == a).expect("paged account").1;
            breakdown_record(l, month, &rows[i as usize])
        })
        .collect();
    Ok(list_body(api.list_key(), segs.total(), &rows, &[currency(state)]))
}

fn breakdown_record(l: &Ledger, month: BillCycle, r: &crate::sim::amortization::Row) -> NvlCostAnalysedBillDetail {
    let line = &r.first;
    let acct = &l.accounts[line.account];
    let s = line.service;
    let usage_based = line.metered();
    let sub = sub(line);
    let (effective, expire) = if r.term > 0 {
        let start = local_midnight_utc(r.bill_cycle.first_day());
        (
            Some(utc(start)),
            Some(utc(start + Duration::days(i64::from(r.term) * 30))),
        )
    } else {
        (None, None)
    };
    NvlCostAnalysedBillDetail {
        shared_month: month.to_string(),
        bill_cycle: r.bill_cycle.to_string(),
        bill_type: line.bill_type,
        customer_id: acct.id.clone(),
        region_code: line.region.0.into(),
        region_name: line.region.1.into(),
        service_type_code: s.code.into(),
        resource_type_code: s.rtype.into(),
        service_type_name: s.name.into(),
        resource_type_name: s.rname.into(),
        effective_time: effective,
        expire_time: expire,
        resource_id: line.resource_id.clone(),
        resource_name: line.resource_name.clone(),
        resource_tag: Some(format!("env=prod;owner={}", acct.name)),
        product_spec_desc: s.spec.into(),
        enterprise_project_id: line.project.0.map(Into::into),
        enterprise_project_name: line.project.1.into(),
        charging_mode: line.charge_mode,
        order_id: r.order_id.clone(),
        period_type: line.period_type,
        usage_type: usage_based.then(|| line.meter.code.to_string()),
        usage: usage_based.then_some(Num(r.usage)),
        usage_measure_id: usage_based.then_some(line.meter.measure),
        free_resource_usage: zero(),
        free_resource_measure_id: None,
        ri_usage: zero(),
        ri_usage_measure_id: None,
        consume_amount: num(r.consume),
        past_months_amortized_amount: num(r.past),
        current_month_amortized_amount: num(r.current),
        future_months_amortized_amount: num(r.future),
        amortized_cash_amount: num(r.cash),
        amortized_credit_amount: num(r.credit),
        amortized_coupon_amount: num(r.coupon),
        amortized_flexipurchase_coupon_amount: zero(),
        amortized_stored_value_card_amount: zero(),
        amortized_bonus_amount: zero(),
        sub_service_type_code: sub.service_code,
        sub_service_type_name: sub.service_name,
        sub_resource_type_code: sub.rtype,
        sub_resource_type_name: sub.rname,
        sub_resource_id: sub.id,
        sub_resource_name: sub.name,
        effective_tag_pairs: vec![
            TagPair {
                tag_key: "env".into(),
                tag_value: "prod".into(),
            },
            TagPair {
                tag_key: "owner".into(),
                tag_value: acct.name.clone(),
            },
        ],
        // Cost units split by enterprise project where one is assigned.
        cost_unit_pairs: line
            .project
            .0
            .filter(|p| *p != "0")
            .map(|_| CostUnitPair {
                cost_unit_name: "project".into(),
                cost_unit_rule_value: line.project.1.into(),
            })
            .into_iter()
            .collect(),
    }
}
