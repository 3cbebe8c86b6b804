//! ListCustomerselfResourceRecordDetails (`resource_bill_details`): resource bill details.

use chrono::Duration;
use rust_decimal::Decimal;

use super::*;
use crate::sim::SimState;
use crate::sim::ledger::{Ledger, Line, utc};
use crate::sim::params::{Checked, Invalid, Params};
use crate::sim::records::*;
use crate::source::api::Api;

fn monthly_bill_res(l: &Ledger, line: &Line, stat: i64) -> MonthlyBillRes {
    let acct = &l.accounts[line.account];
    let s = line.service;
    let detail = stat == 3;
    let sub = sub(line);
    // A part's own resource hangs under the machine: PARENT and ROOT links.
    let parent = line.part.as_ref().map(|_| line.resource_id.clone());
    MonthlyBillRes {
        cycle: line.cycle.to_string(),
        bill_date: (stat == 2).then(|| line.bill_date.to_string()),
        bill_type: line.bill_type,
        customer_id: acct.id.clone(),
        region: line.region.0.into(),
        region_name: line.region.1.into(),
        cloud_service_type: s.code.into(),
        resource_type_code: s.rtype.into(),
        cloud_service_type_name: s.name.into(),
        resource_type_name: s.rname.into(),
        res_instance_id: line.resource_id.clone(),
        resource_name: line.resource_name.clone(),
        resource_tag: Some(format!("env=prod;owner={}", acct.name)),
        sku_code: sku(line),
        enterprise_project_id: line.project.0.map(Into::into),
        enterprise_project_name: line.project.1.into(),
        charge_mode: line.charge_mode,
        consume_amount: num(line.amount),
        cash_amount: num(line.cash),
        credit_amount: num(line.credit),
        coupon_amount: num(line.coupon),
        flexipurchase_coupon_amount: zero(),
        stored_card_amount: zero(),
        bonus_amount: zero(),
        debt_amount: zero(),
        adjustment_amount: zero(),
        official_amount: num(line.official),
        discount_amount: num(line.discount),
        measure_id: 1,
        period_type: line.period_type,
        root_resource_id: parent.clone(),
        parent_resource_id: parent.clone(),
        trade_id: line.trade_id.clone(),
        // Reserved ("该字段为预留字段"): never a row id.
        id: None,
        product_spec_desc: s.spec.into(),
        sub_service_type_code: sub.service_code,
        sub_service_type_name: sub.service_name,
        sub_resource_type_code: sub.rtype,
        sub_resource_type_name: sub.rname,
        sub_resource_id: sub.id.clone(),
        sub_resource_name: sub.name,
        pre_order_id: None,
        az_code_infos: vec![AzCodeInfo {
            az_code: format!("{}a", line.region.0),
        }],
        payer_account_id: l.accounts[0].id.clone(),
        effective_time: detail.then(|| utc(line.consume_time)),
        expire_time: (detail && line.metered()).then(|| utc(line.consume_time + Duration::hours(1))),
        consume_time: detail.then(|| utc(line.consume_time)),
        be_id: "10".into(),
        extend_params: ResRelation {
            self_resource_id: sub
                .id
                .filter(|_| parent.is_some())
                .unwrap_or_else(|| line.resource_id.clone()),
            relation_infos: parent
                .iter()
                .flat_map(|p| {
                    ["PARENT", "ROOT"].map(|t| RelationInfo {
                        relative_resource_id: p.clone(),
                        relative_type: t.into(),
                    })
                })
                .collect(),
        },
        account_name: acct.name.clone(),
        period_num: (line.charge_mode == 1 || line.order_id.is_some()).then_some(Num(Decimal::ONE)),
        is_spot: detail.then(|| if line.charge_mode == 3 { "N" } else { "--" }.to_string()),
        promotion_type: (detail && !line.discount.is_zero()).then(|| "300,500".to_string()),
        payment_type: match (detail, line.charge_mode, line.bill_type) {
            (true, 10, 1) => Some("ALL_UPFRONT".into()),
            (true, 10, _) => Some("NO_UPFRONT".into()),
            (true, 11, _) => Some("PARTIAL_UPFRONT".into()),
            _ => None,
        },
    }
}

pub(super) fn handle(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let cycle = p.cycle("cycle")?;
    if cycle < "2019-01".parse().expect("valid") {
        return Err(Invalid("cycles before 2019-01 are not supported".into()));
    }
    for k in [
        "cloud_service_type",
        "resource_type",
        "region",
        "res_instance_id",
        "enterprise_project_id",
        "payer_account_id",
    ] {
        p.str(k, 64)?;
    }
    p.one_of_int("charge_mode", &[1, 3, 10, 11])?;
    p.int("bill_type")?;
    p.bool("include_zero_record")?;
    let stat = p.int_in("statistic_type", 1, 1, 3)?;
    let query_type = p.one_of("query_type", &["BILLCYCLE", "DAILY"])?;
    let range = if query_type.as_deref() == Some("DAILY") {
        if stat == 1 {
            return Err(Invalid("query_type DAILY needs statistic_type 2 or 3".into()));
        }
        let r = p.date_range("bill_cycle_begin", "bill_cycle_end", cycle)?;
        Some(r.ok_or_else(|| Invalid("bill_cycle_begin and bill_cycle_end are required for DAILY".into()))?)
    } else {
        None
    };
    let accts = accounts(state, p)?;
    let page = p.page(api.max_limit().into())?;
    let (total, rows) = resource_page(state, &accts, cycle, range, page, stat == 3, |line| {
        monthly_bill_res(&state.ledger, line, stat)
    });
    Ok(list_body(api.list_key(), total, &rows, &[currency(state)]))
}
