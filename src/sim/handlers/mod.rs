//! The simulator's handlers, one module per BSS operation: each validates its
//! parameters like the API, then renders the requested page of the ledger.
//! Here: the catalogue of handlers and what they share (account selection,
//! paging over several accounts, list bodies).

mod account_changes;
mod fee_records;
mod monthly_breakdown;
mod monthly_sum;
mod res_fee_records;
mod res_records;
mod sub_customers;
mod usage;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::SimState;
use super::ledger::{Ledger, Line};
use super::params::{Checked, Invalid, Params};
use super::records::Num;
use crate::cycle::BillCycle;
use crate::source::api::{Api, ApiDef};
use crate::source::datasets;

type Handler = fn(&SimState, Api, &Params) -> Checked<String>;

/// The simulator's side of the catalogue: one line per API. Page limits and
/// list keys come from the API definitions, never from literals here.
static HANDLERS: [(&ApiDef, Handler); 9] = [
    (&datasets::bill_summary::API, monthly_sum::handle),
    (&datasets::resource_bill_details::API, res_records::handle),
    (&datasets::consumption_records::API, res_fee_records::handle),
    (&datasets::usage_95::SUMMARY_API, usage::summary),
    (&datasets::usage_95::DETAILS_API, usage::details),
    (&datasets::transaction_records::API, fee_records::handle),
    (&datasets::account_changes::API, account_changes::handle),
    (&datasets::sub_customers::API, sub_customers::handle),
    (&datasets::amortized_costs::API, monthly_breakdown::handle),
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
pub(super) fn list_body<T: Serialize>(key: &str, total: u64, rows: &[T], extra: &[(&str, String)]) -> String {
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

/// The answer's `currency` field: the simulator's one currency.
pub(super) fn currency(state: &SimState) -> (&'static str, String) {
    (
        "currency",
        serde_json::to_string(&state.cfg.currency).expect("a string"),
    )
}

/// Accounts selected by `method` / `sub_customer_id` (default `all`).
pub(super) fn accounts(state: &SimState, p: &Params) -> Checked<Vec<usize>> {
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
pub(super) struct Segments(Vec<(usize, u64, u64)>);

impl Segments {
    pub(super) fn total(&self) -> u64 {
        self.0.iter().map(|s| s.2).sum()
    }

    /// `(account, index)` of the rows in `offset..offset+limit`.
    pub(super) fn page(&self, offset: u64, limit: u64) -> Vec<(usize, u64)> {
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
pub(super) fn line_range(
    l: &Ledger,
    account: usize,
    cycle: BillCycle,
    range: Option<(NaiveDate, NaiveDate)>,
) -> (u64, u64) {
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
pub(super) fn trade_range(l: &Ledger, account: usize, cycle: BillCycle, lines: (u64, u64)) -> (u64, u64) {
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

/// A trade as one aggregated line (statistic_type 1/2): its first line
/// (the main resource) with the sums of all its lines.
pub(super) fn trade_line(l: &Ledger, account: usize, cycle: BillCycle, t: u64) -> Line {
    aggregate(&l.trade_lines_of(account, cycle, t))
}

/// A trade's lines as one line: the first (the main resource) with the sums of all.
pub(super) fn aggregate(lines: &[Line]) -> Line {
    let mut agg = lines[0].clone();
    for x in &lines[1..] {
        agg.usage += x.usage;
        agg.official += x.official;
        agg.discount += x.discount;
        agg.amount += x.amount;
        agg.coupon += x.coupon;
        agg.cash += x.cash;
        agg.credit += x.credit;
    }
    agg.part = None;
    agg
}

/// The six `sub_*` fields of a line: a whole machine's part, or a reserved
/// instance's identifier; none for an ordinary resource.
#[derive(Default)]
pub(super) struct Sub {
    pub service_code: Option<String>,
    pub service_name: Option<String>,
    pub rtype: Option<String>,
    pub rname: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
}

pub(super) fn sub(line: &Line) -> Sub {
    match (&line.part, line.sub_resource_id()) {
        (Some((p, id, name)), _) => Sub {
            service_code: Some(p.service_code.into()),
            service_name: Some(p.service_name.into()),
            rtype: Some(p.rtype.into()),
            rname: Some(p.rname.into()),
            id: Some(id.clone()),
            name: Some(name.clone()),
        },
        (None, Some(ri)) => Sub {
            service_code: Some(line.service.code.into()),
            service_name: Some(line.service.name.into()),
            rtype: Some(line.service.rtype.into()),
            rname: Some(line.service.rname.into()),
            name: Some(ri.clone()),
            id: Some(ri),
        },
        (None, None) => Sub::default(),
    }
}

/// The SKU of a line: its part's when it bills one (a SKU identifies a spec).
pub(super) fn sku(line: &Line) -> String {
    let rname = line.part.as_ref().map_or(line.service.rname, |(p, _, _)| p.rname);
    format!("{}.{}", rname.to_lowercase().replace(' ', "-"), line.region.0)
}

/// A unit of a usage type in the answer's currency (`CNY/hour`).
pub(super) fn unit(state: &SimState, line: &Line) -> String {
    format!("{}{}", state.cfg.currency, line.meter.unit)
}

pub(super) fn num(d: Decimal) -> Num {
    Num(d)
}

pub(super) fn zero() -> Num {
    Num(Decimal::ZERO)
}

/// One page of a resource-level answer (`statistic_type` 3: a row per line,
/// 1 or 2: a row per trade, as one aggregated line), with its total.
#[allow(clippy::too_many_arguments)]
pub(super) fn resource_page<T>(
    state: &SimState,
    accts: &[usize],
    cycle: BillCycle,
    range: Option<(NaiveDate, NaiveDate)>,
    (offset, limit): (u64, u64),
    detail: bool,
    row: impl Fn(&Line) -> T,
) -> (u64, Vec<T>) {
    let l = &state.ledger;
    if detail {
        state.maybe_drift(accts, cycle, offset);
        let segs = line_segments(l, accts, cycle, range);
        let rows = segs
            .page(offset, limit)
            .into_iter()
            .map(|(a, i)| row(&l.line(a, cycle, i)));
        (segs.total(), rows.collect())
    } else {
        let segs = trade_segments(l, accts, cycle, range);
        let rows = segs
            .page(offset, limit)
            .into_iter()
            .map(|(a, t)| row(&trade_line(l, a, cycle, t)));
        (segs.total(), rows.collect())
    }
}

pub(super) fn line_segments(
    l: &Ledger,
    accts: &[usize],
    cycle: BillCycle,
    range: Option<(NaiveDate, NaiveDate)>,
) -> Segments {
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

pub(super) fn trade_segments(
    l: &Ledger,
    accts: &[usize],
    cycle: BillCycle,
    range: Option<(NaiveDate, NaiveDate)>,
) -> Segments {
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
