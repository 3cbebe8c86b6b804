//! ListCustomerAccountChangeRecords (`account_changes`): income and expense of the cash and credit balances.

use chrono::{Duration, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::*;
use crate::cycle::{BillCycle, local_midnight_utc};
use crate::sim::SimState;
use crate::sim::ledger::{cents, utc};
use crate::sim::params::{Checked, Invalid, Params};
use crate::sim::records::*;
use crate::source::api::Api;

pub(super) fn handle(state: &SimState, api: Api, p: &Params) -> Checked<String> {
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
                // The first day's deduction settles the month before (a month-end
                // bill paid on the 1st): its bill cycle is not its trade month.
                bill_cycle: if kind == "DEDEUCT" && day == cycle.first_day() {
                    cycle.pred().to_string()
                } else {
                    cycle.to_string()
                },
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
    Ok(list_body(api.list_key(), total, &page, &[currency(state)]))
}
