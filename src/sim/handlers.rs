//! One handler per BSS operation: validate like the API, then render the
//! requested page of the ledger.
//!
//! Over 400 lines on purpose: the eight handlers share the ledger views and
//! segment paging below, and read best side by side. A new API adds one
//! handler and one line in `HANDLERS`; limits and list keys come from its
//! `ApiDef`.

use chrono::{Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::SimState;
use super::ledger::{Ledger, Line, SERVICES, cents, utc};
use super::params::{Checked, Invalid, Params};
use super::records::*;
use crate::cycle::{BillCycle, local_midnight_utc};
use crate::source::api::{Api, ApiDef};
use crate::source::datasets;

type Handler = fn(&SimState, Api, &Params) -> Checked<String>;

/// The simulator's side of the catalogue: one line per API. Page limits and
/// list keys come from the API definitions, never from literals here.
static HANDLERS: [(&ApiDef, Handler); 9] = [
    (&datasets::bill_summary::API, monthly_sum),
    (&datasets::resource_bill_details::API, res_records),
    (&datasets::consumption_records::API, res_fee_records),
    (&datasets::usage_95::SUMMARY_API, usage_summary),
    (&datasets::usage_95::DETAILS_API, usage_details),
    (&datasets::transaction_records::API, fee_records),
    (&datasets::account_changes::API, account_changes),
    (&datasets::sub_customers::API, sub_customers),
    (&datasets::amortized_costs::API, monthly_breakdown),
];

/// The handler of `api`, if the simulator serves it.
pub fn handler(api: Api) -> Option<Handler> {
    HANDLERS.iter().find(|(d, _)| Api(d) == api).map(|(_, h)| *h)
}

pub fn dispatch(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let h = handler(api).ok_or_else(|| Invalid(format!("{api} is not simulated")))?;
    h(state, api, p)
}

/// Whether the request asks for a member that refused to share its bills.
pub fn denied(state: &SimState, p: &Params) -> bool {
    let members = state.ledger.accounts.len() - 1;
    let denied_from = 1 + members.saturating_sub(state.cfg.denied_members as usize);
    matches!(p.str("method", 64), Ok(Some(m)) if m == "sub_customer")
        && matches!(p.str("sub_customer_id", 64), Ok(Some(id)) if state.ledger.account_index(&id).is_some_and(|i| i >= denied_from))
}

/// `{"total_count":…,"<key>":[…],<extra>}` with exact numbers.
fn list_body<T: Serialize>(key: &str, total: u64, rows: &[T], extra: &[(&str, String)]) -> String {
    let mut s = format!(
        "{{\"total_count\":{total},\"{key}\":{}",
        serde_json::to_string(rows).expect("rows serialise")
    );
    for (k, raw) in extra {
        s.push_str(&format!(",\"{k}\":{raw}"));
    }
    s.push('}');
    s
}

fn currency() -> (&'static str, String) {
    ("currency", "\"CNY\"".into())
}

/// Accounts selected by `method` / `sub_customer_id` (default `all`).
fn accounts(state: &SimState, p: &Params) -> Checked<Vec<usize>> {
    let method = p.one_of("method", &["oneself", "sub_customer", "all"])?;
    let sub = p.str("sub_customer_id", 64)?;
    match method.as_deref() {
        Some("oneself") => Ok(vec![0]),
        Some("sub_customer") => {
            let id = sub.ok_or_else(|| Invalid("sub_customer_id is required when method is sub_customer".into()))?;
            match state.ledger.account_index(&id) {
                Some(i) if i > 0 => Ok(vec![i]),
                _ => Err(Invalid(format!(
                    "sub_customer_id {id} is not a member of this enterprise"
                ))),
            }
        }
        _ => Ok((0..state.ledger.accounts.len()).collect()),
    }
}

/// A list made of consecutive index ranges of several accounts.
struct Segments(Vec<(usize, u64, u64)>);

impl Segments {
    fn total(&self) -> u64 {
        self.0.iter().map(|s| s.2).sum()
    }

    /// `(account, index)` of the rows in `offset..offset+limit`.
    fn page(&self, offset: u64, limit: u64) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        let mut skip = offset;
        for &(account, start, len) in &self.0 {
            if out.len() as u64 >= limit {
                break;
            }
            if skip >= len {
                skip -= len;
                continue;
            }
            let take = (len - skip).min(limit - out.len() as u64);
            out.extend((start + skip..start + skip + take).map(|i| (account, i)));
            skip = 0;
        }
        out
    }
}

/// Line-index range of the dates `range` (or the whole cycle).
fn line_range(l: &Ledger, account: usize, cycle: BillCycle, range: Option<(NaiveDate, NaiveDate)>) -> (u64, u64) {
    match range {
        None => (0, l.line_count(account, cycle)),
        Some((b, e)) => {
            let day = |d: NaiveDate| (d - cycle.first_day()).num_days() as u32;
            let lo = l.first_line_on_or_after(account, cycle, day(b));
            let hi = if e >= cycle.last_day() {
                l.line_count(account, cycle)
            } else {
                l.first_line_on_or_after(account, cycle, day(e) + 1)
            };
            (lo, hi.max(lo))
        }
    }
}

/// Trade-index range covering the line range `lines` (drift rows excluded).
fn trade_range(l: &Ledger, account: usize, cycle: BillCycle, lines: (u64, u64)) -> (u64, u64) {
    let n = l.trade_count(account, cycle);
    // Trade start lines increase with the trade number: binary search.
    let first = |line: u64| {
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if l.trade_lines(account, cycle, mid).0 < line {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    };
    (first(lines.0), first(lines.1))
}

/// A trade as one aggregated line (statistic_type 1/2 and fee records).
fn trade_line(l: &Ledger, account: usize, cycle: BillCycle, t: u64) -> Line {
    let (start, len) = l.trade_lines(account, cycle, t);
    let mut agg = l.line(account, cycle, start);
    for i in start + 1..start + len {
        let x = l.line(account, cycle, i);
        agg.usage += x.usage;
        agg.official += x.official;
        agg.discount += x.discount;
        agg.amount += x.amount;
        agg.coupon += x.coupon;
        agg.cash += x.cash;
        agg.credit += x.credit;
    }
    agg
}

fn num(d: Decimal) -> Num {
    Num(d)
}

fn zero() -> Num {
    Num(Decimal::ZERO)
}

fn monthly_sum(state: &SimState, api: Api, p: &Params) -> Checked<String> {
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
    let sum = |f: fn(&super::ledger::SumRow) -> Decimal| rows.iter().map(f).sum::<Decimal>();
    let totals = [
        ("consume_amount", sum(|r| r.amount)),
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
                truncated_amount: zero(),
                consume_amount: num(r.amount),
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
    extra.push(currency());
    Ok(list_body(api.list_key(), rows.len() as u64, &page, &extra))
}

fn res_fee_record(l: &Ledger, line: &Line, detail: bool) -> ResFeeRecordV2 {
    let acct = &l.accounts[line.account];
    let s = line.service;
    let on_demand = line.charge_mode == 3;
    // Metered records: on-demand and reserved-instance usage (charge mode 10).
    let metered = on_demand || line.charge_mode == 10;
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
            line.resource_id.len() * 1000 + line.service.usage_measure as usize
        ),
        product_name: format!("{} {}", s.name, s.spec),
        product_spec_desc: s.spec.into(),
        sku_code: format!("{}.{}", s.rname.to_lowercase().replace(' ', "-"), line.region.0),
        spec_size: (!on_demand).then(|| Num(Decimal::new(100, 0))),
        spec_size_measure_id: (!on_demand).then_some(17),
        trade_id: line.trade_id.clone(),
        id: Some(line.id.clone()),
        trade_time: utc(line.trade_time),
        enterprise_project_id: line.project.0.into(),
        enterprise_project_name: line.project.1.into(),
        charge_mode: line.charge_mode.to_string(),
        order_id: (line.charge_mode == 1).then(|| line.trade_id.clone()),
        period_type: line.period_type.map(|p| p.to_string()),
        usage_type: metered.then(|| s.usage_type.to_string()),
        usage: metered.then_some(Num(line.usage)),
        usage_measure_id: metered.then_some(s.usage_measure),
        free_resource_usage: zero(),
        free_resource_measure_id: None,
        ri_usage: zero(),
        ri_usage_measure_id: None,
        unit_price: (detail && metered).then_some(Num(line.unit_price)),
        unit: (detail && metered).then(|| s.unit.to_string()),
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
        sub_service_type_code: None,
        sub_service_type_name: None,
        sub_resource_type_code: None,
        sub_resource_type_name: None,
        sub_resource_id: None,
        sub_resource_name: None,
        consume_time: utc(line.consume_time),
        relative_order_id: None,
        account_name: acct.name.clone(),
        period_num: (line.charge_mode == 1).then_some(Num(Decimal::ONE)),
    }
}

fn res_fee_records(state: &SimState, api: Api, p: &Params) -> Checked<String> {
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
    let (offset, limit) = p.page(api.max_limit().into())?;
    let l = &state.ledger;
    if stat == 3 {
        state.maybe_drift(&accts, cycle, offset);
        let segs = line_segments(l, &accts, cycle, range);
        let rows: Vec<ResFeeRecordV2> = segs
            .page(offset, limit)
            .into_iter()
            .map(|(a, i)| res_fee_record(l, &l.line(a, cycle, i), true))
            .collect();
        return Ok(list_body(api.list_key(), segs.total(), &rows, &[currency()]));
    }
    let segs = trade_segments(l, &accts, cycle, range);
    let rows: Vec<ResFeeRecordV2> = segs
        .page(offset, limit)
        .into_iter()
        .map(|(a, t)| {
            let mut r = res_fee_record(l, &trade_line(l, a, cycle, t), false);
            if stat == 1 {
                r.id = None;
            }
            r
        })
        .collect();
    Ok(list_body(api.list_key(), segs.total(), &rows, &[currency()]))
}

fn line_segments(l: &Ledger, accts: &[usize], cycle: BillCycle, range: Option<(NaiveDate, NaiveDate)>) -> Segments {
    Segments(
        accts
            .iter()
            .map(|a| {
                let (lo, hi) = line_range(l, *a, cycle, range);
                (*a, lo, hi - lo)
            })
            .collect(),
    )
}

fn trade_segments(l: &Ledger, accts: &[usize], cycle: BillCycle, range: Option<(NaiveDate, NaiveDate)>) -> Segments {
    Segments(
        accts
            .iter()
            .map(|a| {
                let lines = line_range(l, *a, cycle, range);
                let (lo, hi) = trade_range(l, *a, cycle, lines);
                (*a, lo, hi - lo)
            })
            .collect(),
    )
}

fn monthly_bill_res(l: &Ledger, line: &Line, stat: i64) -> MonthlyBillRes {
    let acct = &l.accounts[line.account];
    let s = line.service;
    let detail = stat == 3;
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
        sku_code: format!("{}.{}", s.rname.to_lowercase().replace(' ', "-"), line.region.0),
        enterprise_project_id: line.project.0.into(),
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
        root_resource_id: None,
        parent_resource_id: None,
        trade_id: line.trade_id.clone(),
        id: detail.then(|| line.id.clone()),
        product_spec_desc: s.spec.into(),
        sub_service_type_code: None,
        sub_service_type_name: None,
        sub_resource_type_code: None,
        sub_resource_type_name: None,
        sub_resource_id: None,
        sub_resource_name: None,
        pre_order_id: None,
        az_code_infos: vec![AzCodeInfo {
            az_code: format!("{}a", line.region.0),
        }],
        payer_account_id: l.accounts[0].id.clone(),
        effective_time: detail.then(|| utc(line.consume_time)),
        expire_time: (detail && line.charge_mode == 3).then(|| utc(line.consume_time + Duration::hours(1))),
        consume_time: detail.then(|| utc(line.consume_time)),
        be_id: "10".into(),
        extend_params: ResRelation {
            self_resource_id: line.resource_id.clone(),
            relation_infos: Vec::new(),
        },
        account_name: acct.name.clone(),
        period_num: (line.charge_mode == 1).then_some(Num(Decimal::ONE)),
        is_spot: detail.then(|| "N".to_string()),
        promotion_type: None,
        payment_type: (detail && line.charge_mode == 10).then(|| "NO_UPFRONT".to_string()),
    }
}

fn res_records(state: &SimState, api: Api, p: &Params) -> Checked<String> {
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
    let (offset, limit) = p.page(api.max_limit().into())?;
    let l = &state.ledger;
    if stat == 3 {
        state.maybe_drift(&accts, cycle, offset);
        let segs = line_segments(l, &accts, cycle, range);
        let rows: Vec<MonthlyBillRes> = segs
            .page(offset, limit)
            .into_iter()
            .map(|(a, i)| monthly_bill_res(l, &l.line(a, cycle, i), 3))
            .collect();
        return Ok(list_body(api.list_key(), segs.total(), &rows, &[currency()]));
    }
    let segs = trade_segments(l, &accts, cycle, range);
    let rows: Vec<MonthlyBillRes> = segs
        .page(offset, limit)
        .into_iter()
        .map(|(a, t)| monthly_bill_res(l, &trade_line(l, a, cycle, t), stat))
        .collect();
    Ok(list_body(api.list_key(), segs.total(), &rows, &[currency()]))
}

fn fee_records(state: &SimState, api: Api, p: &Params) -> Checked<String> {
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
            let line = trade_line(l, a, cycle, t);
            let acct = &l.accounts[a];
            let s = line.service;
            // Payments are rounded to cents per transaction.
            let consume = cents(line.amount);
            let discount = cents(line.discount);
            let coupon = cents(line.coupon);
            let credit = cents(line.credit);
            MonthlyBillRecord {
                bill_cycle: cycle.to_string(),
                customer_id: acct.id.clone(),
                service_type_code: s.code.into(),
                resource_type_code: s.rtype.into(),
                service_type_name: s.name.into(),
                resource_type_name: s.rname.into(),
                region_code: line.region.0.into(),
                enterprise_project_id: line.project.0.into(),
                enterprise_project_name: line.project.1.into(),
                charging_mode: line.charge_mode,
                consume_time: utc(line.consume_time),
                trade_time: utc(line.trade_time),
                provider_type: 1,
                trade_id: line.trade_id.clone(),
                id: format!("{}-{}", line.trade_id, a),
                bill_type: line.bill_type,
                status: 1,
                official_amount: num(consume + discount),
                official_discount_amount: num(discount),
                erase_amount: zero(),
                consume_amount: num(consume),
                cash_amount: num(consume - coupon - credit),
                credit_amount: num(credit),
                coupon_amount: num(coupon),
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
    Ok(list_body(api.list_key(), segs.total(), &rows, &[currency()]))
}

const USAGE_SERVICES: &[&str] = &[
    "hws.service.type.cdn",
    "hws.service.type.obs",
    "hws.service.type.vpc",
    "hws.service.type.iec",
];
const USAGE_RESOURCES: &[&str] = &[
    "hws.resource.type.cdn",
    "hws.resource.type.obs",
    "hws.resource.type.bandwidth",
    "hws.resource.type.edgebandwidth",
];
const USAGE_TYPES: &[&str] = &["95Peak", "95peak_1000", "95Peak_1000", "bandwidth95peak", "95peak_plus"];
/// Mbit/s (the simulator's choice; real ids come from /v2/bases/measurements).
const MBPS: i64 = 33;

struct UsageQuery {
    cycle: BillCycle,
    resources: Vec<String>,
    current: bool,
}

fn usage_query(state: &SimState, p: &Params) -> Checked<UsageQuery> {
    let cycle = p.cycle("bill_cycle")?;
    let service = p.one_of("service_type_code", USAGE_SERVICES)?;
    let rtype = p.one_of("resource_type_code", USAGE_RESOURCES)?;
    let usage = p.one_of("usage_type", USAGE_TYPES)?;
    let (Some(service), Some(rtype), Some(usage)) = (service, rtype, usage) else {
        return Err(Invalid(
            "bill_cycle, service_type_code, resource_type_code and usage_type are required".into(),
        ));
    };
    let resources = state
        .ledger
        .usage_resources(cycle, &format!("{service}|{rtype}"), &usage);
    Ok(UsageQuery {
        cycle,
        resources,
        current: cycle == BillCycle::containing(Utc::now()),
    })
}

fn points(cycle: BillCycle) -> u64 {
    u64::from(cycle.days()) * 288
}

/// Billed bandwidth: the 95th percentile of the 5-minute samples.
fn p95(l: &Ledger, resource: &str, cycle: BillCycle) -> Decimal {
    let mut v: Vec<Decimal> = (0..points(cycle)).map(|k| l.usage_point(resource, cycle, k)).collect();
    v.sort();
    let idx = ((v.len() as f64) * 0.95).ceil() as usize;
    v[idx.saturating_sub(1).min(v.len() - 1)]
}

fn summary_info(l: &Ledger, q: &UsageQuery, resource: &str) -> StatUsageSummaryInfo {
    // The current month reports only resource ids (fact sheet §5).
    let (days, bw, measure) = if q.current {
        (String::new(), String::new(), None)
    } else {
        (
            format!("{}", q.cycle.days()),
            p95(l, resource, q.cycle).to_string(),
            Some(MBPS),
        )
    };
    StatUsageSummaryInfo {
        resource_id: resource.to_string(),
        actual_days: days,
        band_width: bw,
        monthly_guaranteed_band_width: String::new(),
        monthly_peak_band_width: String::new(),
        band_width_measure_id: measure,
    }
}

fn usage_summary(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let q = usage_query(state, p)?;
    let (offset, limit) = p.page(api.max_limit().into())?;
    let rows: Vec<StatUsageSummaryInfo> = q
        .resources
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|r| summary_info(&state.ledger, &q, r))
        .collect();
    Ok(list_body(api.list_key(), q.resources.len() as u64, &rows, &[]))
}

fn usage_details(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let q = usage_query(state, p)?;
    let resource = p.req_str("resource_id", 64)?;
    let (offset, limit) = p.page(api.max_limit().into())?;
    if !q.resources.contains(&resource) {
        return Ok(list_body::<StatUsageInfo>("usage_info_list", 0, &[], &[]));
    }
    let l = &state.ledger;
    let n = if q.current { 0 } else { points(q.cycle) };
    let start = local_midnight_utc(q.cycle.first_day());
    let rows: Vec<StatUsageInfo> = (offset..n.min(offset + limit))
        .map(|k| StatUsageInfo {
            stat_time: utc(start + Duration::minutes(5 * k as i64)),
            guaranteed_band_width: String::new(),
            usage: l.usage_point(&resource, q.cycle, k).to_string(),
            measure_id: MBPS,
        })
        .collect();
    let s = summary_info(l, &q, &resource);
    let extra = [
        ("actual_days", serde_json::to_string(&s.actual_days).expect("string")),
        ("band_width", serde_json::to_string(&s.band_width).expect("string")),
        ("monthly_guaranteed_band_width", "\"\"".to_string()),
        ("monthly_peak_band_width", "\"\"".to_string()),
        (
            "band_width_measure_id",
            s.band_width_measure_id.map_or("null".into(), |m| m.to_string()),
        ),
    ];
    Ok(list_body(api.list_key(), n, &rows, &extra))
}

fn account_changes(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let balance = p
        .one_of("balance_type", &["BALANCE_TYPE_DEBIT", "BALANCE_TYPE_CREDIT"])?
        .ok_or_else(|| Invalid("balance_type is required".into()))?;
    let rev = p.one_of("revenue_expense_type", &["REVENUE", "EXPENSE"])?;
    p.str("trade_type", 20)?;
    p.str("trade_id", 128)?;
    p.str("payment_channel_id", 64)?;
    p.str("payment_channel_no", 64)?;
    let today = BillCycle::containing(Utc::now());
    let today = (Utc::now() + Duration::hours(8)).date_naive().max(today.first_day());
    let begin = p.date("trade_time_begin")?.unwrap_or(today - Duration::days(365));
    let end = p.date("trade_time_end")?.unwrap_or(today);
    if begin > end {
        return Err(Invalid("trade_time_begin is after trade_time_end".into()));
    }
    let (offset, limit) = p.page(api.max_limit().into())?;
    let l = &state.ledger;
    let credit = balance == "BALANCE_TYPE_CREDIT";
    let acct = &l.accounts[0];
    let mut rows = Vec::new();
    let mut balance_after = Decimal::new(if credit { 500_000 } else { 100_000 }, 0);
    let mut cycle = BillCycle::containing(local_midnight_utc(begin));
    let last = BillCycle::containing(local_midnight_utc(end));
    // Records run in time order; the running balance starts at the window's start.
    while cycle <= last {
        let sums = l.day_sums(0, cycle);
        let daily = if credit { &sums.credit } else { &sums.cash };
        let month_total: Decimal = daily.iter().copied().sum();
        let push = |day: NaiveDate,
                    kind: &str,
                    amount: Decimal,
                    rows: &mut Vec<CustomerAccountChangeRecord>,
                    bal: &mut Decimal| {
            if day < begin || day > end || amount.is_zero() {
                return;
            }
            let revenue = amount > Decimal::ZERO;
            let rtype = if revenue { "REVENUE" } else { "EXPENSE" };
            if rev.as_deref().is_some_and(|r| r != rtype) {
                return;
            }
            *bal += amount;
            let at = local_midnight_utc(day) + Duration::hours(if revenue { 9 } else { 23 });
            let n = rows.len();
            rows.push(CustomerAccountChangeRecord {
                account_change_id: format!(
                    "ACC{}{:03}{}",
                    day.format("%Y%m%d"),
                    n % 1000,
                    if credit { "C" } else { "D" }
                ),
                trade_detail_type: kind.to_string(),
                trade_time: utc(at),
                trade_id: format!("T{}{}", day.format("%Y%m%d"), if revenue { "R" } else { "E" }),
                change_amount: amount.to_string(),
                balance_after_change: bal.to_string(),
                revenue_expense_type: rtype.to_string(),
                bill_cycle: cycle.to_string(),
                payment_channel_id: if revenue { "2".into() } else { "0".into() },
                payment_channel_no: String::new(),
                consume_time: utc(at),
                account_name: acct.name.clone(),
                cloud_service_type_name: if revenue {
                    String::new()
                } else {
                    "Multiple services".into()
                },
                resource_type_name: String::new(),
            });
        };
        if !month_total.is_zero() {
            let topup = if credit { "ADJUST" } else { "RECHARGE" };
            push(
                cycle.first_day(),
                topup,
                cents(month_total) + Decimal::new(1000, 0),
                &mut rows,
                &mut balance_after,
            );
        }
        for (d, amt) in daily.iter().enumerate() {
            let day = cycle.first_day() + Duration::days(d as i64);
            push(day, "DEDEUCT", -*amt, &mut rows, &mut balance_after);
        }
        cycle = cycle.succ();
    }
    let total = rows.len() as u64;
    let page: Vec<_> = rows.into_iter().skip(offset as usize).take(limit as usize).collect();
    Ok(list_body(api.list_key(), total, &page, &[currency()]))
}

fn sub_customers(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let name = p.str("sub_customer_account_name", 64)?;
    let display = p.str("sub_customer_display_name", 64)?;
    let fuzzy = p.int_in("fuzzy_query", 0, 0, 1)? == 1;
    let org = p.str("org_id", 20)?;
    let (offset, limit) = p.page(api.max_limit().into())?;
    let matches = |field: &str, want: &Option<String>| match want {
        None => true,
        Some(w) if fuzzy => field.contains(w.as_str()),
        Some(w) => field == w,
    };
    let members: Vec<SubCustomerInfoV2> = state
        .ledger
        .accounts
        .iter()
        .skip(1)
        .filter(|a| matches(&a.name, &name) && matches(&a.display_name, &display))
        .filter(|a| org.as_ref().is_none_or(|o| &a.org_id == o))
        .map(|a| SubCustomerInfoV2 {
            id: a.id.clone(),
            name: a.name.clone(),
            display_name: a.display_name.clone(),
            status: a.status,
            org_id: a.org_id.clone(),
            org_name: a.org_name.clone(),
        })
        .collect();
    let page: Vec<_> = members
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .cloned()
        .collect();
    Ok(list_body(api.list_key(), members.len() as u64, &page, &[]))
}

/// The cost center keeps 18 months (fact sheet §9a).
pub const BREAKDOWN_MONTHS: u32 = 18;

fn monthly_breakdown(state: &SimState, api: Api, p: &Params) -> Checked<String> {
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
        .map(|a| (*a, super::amortization::breakdown(l, *a, month)))
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
    Ok(list_body(api.list_key(), segs.total(), &rows, &[currency()]))
}

fn breakdown_record(l: &Ledger, month: BillCycle, r: &super::amortization::Row) -> NvlCostAnalysedBillDetail {
    let line = &r.first;
    let acct = &l.accounts[line.account];
    let s = line.service;
    let usage_based = matches!(line.charge_mode, 3 | 10);
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
        enterprise_project_id: line.project.0.into(),
        enterprise_project_name: line.project.1.into(),
        charging_mode: line.charge_mode,
        order_id: r.order_id.clone(),
        period_type: line.period_type,
        usage_type: usage_based.then(|| s.usage_type.to_string()),
        usage: usage_based.then_some(Num(r.usage)),
        usage_measure_id: usage_based.then_some(s.usage_measure),
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
        sub_service_type_code: None,
        sub_service_type_name: None,
        sub_resource_type_code: None,
        sub_resource_type_name: None,
        sub_resource_id: None,
        sub_resource_name: None,
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
        cost_unit_pairs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_of_the_catalogue_is_simulated() {
        for api in Api::all() {
            assert!(handler(api).is_some(), "{api} has no simulator handler");
        }
        assert_eq!(HANDLERS.len(), Api::all().len());
    }

    #[test]
    fn segments_page_across_accounts() {
        let s = Segments(vec![(0, 10, 3), (1, 0, 0), (2, 5, 4)]);
        assert_eq!(s.total(), 7);
        assert_eq!(s.page(0, 2), vec![(0, 10), (0, 11)]);
        assert_eq!(s.page(2, 3), vec![(0, 12), (2, 5), (2, 6)]);
        assert_eq!(s.page(6, 10), vec![(2, 8)]);
        assert!(s.page(7, 10).is_empty());
    }
}
