//! The cost center's amortised view of the ledger (monthly-breakdown): a
//! prepaid purchase is spread over its term month by month, so that past +
//! current + future months always equal the purchase, and the current month
//! equals the sum of its `amortized_*` parts.
//!
//! Rows of a shared month M: its own lines grouped per resource, part, usage
//! type and charge (on-demand and other charges: all of it in M), every
//! prepaid order of M per part (first month of its term), then the yearly
//! orders of the eleven months before M still being spread. A whole machine's
//! order has one row per part, all under the machine's resource id and the
//! same order: only `sub_resource_id` (and `usage_type`) tell them apart.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};

use super::ledger::{Ledger, Line};
use crate::cycle::BillCycle;

/// Months a line's cost is spread over: its term for a prepaid order (new,
/// renewal, auto-renewal; a yearly or monthly payment) and for a reserved
/// instance paid up front (the cost center spreads "包年/包月、预留实例的预付金额"
/// over the order's term), else 0 (charged in its own month).
pub fn term_months(line: &Line) -> u32 {
    match (line.charge_mode, line.bill_type, line.period_type) {
        (1, 1 | 2 | 8 | 103, Some(19)) | (10, 1, Some(19)) => 12,
        (1, 1 | 2 | 8 | 18, Some(20)) => 1,
        _ => 0,
    }
}

/// Month `k`'s share of `v` over `n` months: truncated to 8 decimals, the
/// remainder in the last month, so the shares add up to `v` exactly.
pub fn share(v: Decimal, n: u32, k: u32) -> Decimal {
    let each = (v / Decimal::from(n)).round_dp_with_strategy(8, RoundingStrategy::ToZero);
    if k + 1 == n {
        v - each * Decimal::from(n - 1)
    } else {
        each
    }
}

/// One row of the monthly breakdown.
#[derive(Clone, Debug)]
pub struct Row {
    /// A line of the row's group (its resource, service, region, dates).
    pub first: Line,
    /// Cycle the charge was billed in.
    pub bill_cycle: BillCycle,
    pub order_id: Option<String>,
    pub usage: Decimal,
    /// The whole charge (= past + current + future).
    pub consume: Decimal,
    pub past: Decimal,
    pub current: Decimal,
    pub future: Decimal,
    pub cash: Decimal,
    pub credit: Decimal,
    pub coupon: Decimal,
    /// Months of the term (0: not amortised) and which month this is.
    pub term: u32,
    pub month: u32,
}

/// Sums of one group of lines.
#[derive(Clone, Default)]
struct Group {
    first: Option<Line>,
    usage: Decimal,
    amount: Decimal,
    cash: Decimal,
    credit: Decimal,
    coupon: Decimal,
    term: u32,
}

impl Group {
    fn add(&mut self, l: Line, term: u32) {
        self.usage += l.usage;
        self.amount += l.amount;
        self.cash += l.cash;
        self.credit += l.credit;
        self.coupon += l.coupon;
        self.term = term;
        self.first.get_or_insert(l);
    }

    /// The group seen from the `month`-th month of its term.
    fn row(&self, bill_cycle: BillCycle, month: u32) -> Row {
        let first = self.first.clone().expect("a group has a line");
        let (cash, credit, coupon, past) = if self.term == 0 {
            (self.cash, self.credit, self.coupon, Decimal::ZERO)
        } else {
            let part = |v: Decimal, k: u32| share(v, self.term, k);
            let past: Decimal = (0..month)
                .map(|k| part(self.cash, k) + part(self.credit, k) + part(self.coupon, k))
                .sum();
            (
                part(self.cash, month),
                part(self.credit, month),
                part(self.coupon, month),
                past,
            )
        };
        let current = cash + credit + coupon;
        Row {
            order_id: first.order_id.clone(),
            first,
            bill_cycle,
            usage: self.usage,
            consume: self.amount,
            past,
            current,
            future: self.amount - past - current,
            cash,
            credit,
            coupon,
            term: self.term,
            month,
        }
    }
}

/// Groups the lines of one cycle: prepaid orders by order, the rest by resource and charge.
fn groups(l: &Ledger, account: usize, cycle: BillCycle, yearly_only: bool) -> Vec<Group> {
    type Key = (u32, String, Option<String>, Option<&'static str>, i64, i64);
    let mut by_key: BTreeMap<Key, Group> = BTreeMap::new();
    for i in 0..l.line_count(account, cycle) {
        let line = l.line(account, cycle, i);
        let term = term_months(&line);
        if yearly_only && term != 12 {
            continue;
        }
        let usage_type = line.metered().then_some(line.meter.code);
        let key = if term > 0 {
            (
                0,
                line.order_id.clone().unwrap_or_default(),
                line.sub_resource_id(),
                usage_type,
                0,
                0,
            )
        } else {
            let owner = format!("{}|{}", line.resource_id, line.order_id.as_deref().unwrap_or(""));
            (
                1,
                owner,
                line.sub_resource_id(),
                usage_type,
                line.charge_mode,
                line.bill_type,
            )
        };
        by_key.entry(key).or_default().add(line, term);
    }
    by_key.into_values().collect()
}

/// The breakdown rows of `account` for shared month `month`.
pub fn breakdown(l: &Ledger, account: usize, month: BillCycle) -> Arc<Vec<Row>> {
    l.breakdown_cached(account, month, || {
        let mut rows: Vec<Row> = groups(l, account, month, false)
            .iter()
            .map(|g| g.row(month, 0))
            .collect();
        let mut earlier = month;
        for k in 1..12 {
            earlier = earlier.pred();
            rows.extend(groups(l, account, earlier, true).iter().map(|g| g.row(earlier, k)));
        }
        rows
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_exactly() {
        let v: Decimal = "1234.56789012".parse().unwrap();
        let total: Decimal = (0..12).map(|k| share(v, 12, k)).sum();
        assert_eq!(total, v);
        assert_eq!(share(v, 1, 0), v);
        assert!((0..11).all(|k| share(v, 12, k) == share(v, 12, 0)));
    }

    #[test]
    fn a_yearly_order_is_spread_over_twelve_months_that_sum_to_it() {
        let from: BillCycle = "2025-01".parse().unwrap();
        let to: BillCycle = "2026-06".parse().unwrap();
        let l = Ledger::new(11, 0.2, from, to, 0);
        let start: BillCycle = "2025-03".parse().unwrap();
        let first = breakdown(&l, 0, start);
        let order = first
            .iter()
            .find(|r| r.term == 12)
            .expect("a yearly order in the month")
            .clone();
        let id = order.order_id.clone().unwrap();
        let mut month = start;
        let mut sum = Decimal::ZERO;
        for k in 0..12 {
            let rows = breakdown(&l, 0, month);
            let r = rows
                .iter()
                .find(|r| r.order_id.as_deref() == Some(id.as_str()))
                .unwrap();
            assert_eq!(r.month, k);
            assert_eq!(r.past + r.current + r.future, r.consume, "month {k}");
            assert_eq!(r.cash + r.credit + r.coupon, r.current);
            sum += r.current;
            month = month.succ();
        }
        assert_eq!(sum, order.consume, "twelve months sum to the order");
        assert!(
            !breakdown(&l, 0, month)
                .iter()
                .any(|r| r.order_id.as_deref() == Some(id.as_str()))
        );
    }
}
