//! Reconciliation by the keys Huawei's documents link rows with, between APIs
//! fetched independently:
//!
//! * each transaction (`fee-records`) against the resource-level records
//!   that carry its `trade_id` (`res-fee-records`, `res-records`);
//! * each monthly-summary group (`monthly-sum`, by service, resource type and
//!   charging mode: its `bill_type` is a coarser code set than the
//!   transactions') against the transactions of the same group.
//!
//! A monthly total allows half a cent per transaction, a bound that grows
//! with the month: a lost page of cheap records hides inside it. Trade by
//! trade, the bound is the one rounding each trade goes through: its records'
//! 8-decimal amounts are charged once, in cents ("资源维度的8位小数原始消费金额，
//! 实际从账户扣费时按2位小数进行扣费"), the rest reported as its 抹零
//! (MonthlyBillRecord.erase_amount). So Σ records.amount = consume_amount +
//! erase_amount, and in any case within one cent of consume_amount. A trade
//! on one side only is reported by its id, whatever its amount.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{Array, Decimal128Array, StringArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rust_decimal::Decimal;

use super::{Finding, Verdict, finding};

/// A resource-level dataset reconciled with the transactions, trade by trade.
pub struct Pair {
    /// The check's name in reports.
    pub check: &'static str,
    pub records: &'static str,
    /// Its 8-decimal amount of a resource line.
    pub amount: &'static str,
    formula: &'static str,
}

/// Both resource-level APIs against the transactions' (three APIs fetched apart).
pub const PAIRS: &[Pair] = &[
    Pair {
        check: "transactions = consumption, trade by trade",
        records: "consumption_records",
        amount: "amount",
        formula: "per trade_id: Σ consumption_records.amount = transaction consume_amount + erase_amount (resource \
                  amounts carry 8 decimals, the trade is charged once in cents and the rest is its 抹零), so within \
                  0.01 of consume_amount",
    },
    Pair {
        check: "transactions = resource bill details, trade by trade",
        records: "resource_bill_details",
        amount: "consume_amount",
        formula: "per trade_id: Σ resource_bill_details.consume_amount = transaction consume_amount + erase_amount, \
                  so within 0.01 of consume_amount",
    },
];
/// Ids named in a finding's line, at most.
const NAMED: usize = 10;

/// Per value of the `keys` columns (text or integers, shown joined by " / "),
/// the sums of `columns` (nulls count as zero).
pub fn sums(path: &Path, keys: &[&str], columns: &[&str]) -> Result<BTreeMap<String, Vec<Decimal>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| format!("{}: {e}", path.display()))?;
    let schema = builder.schema().clone();
    let index = |name: &str| {
        schema
            .index_of(name)
            .map_err(|_| format!("{}: no column {name}", path.display()))
    };
    let wanted: Vec<usize> = keys
        .iter()
        .chain(columns.iter())
        .copied()
        .map(index)
        .collect::<Result<_, _>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        let key_columns: Vec<&dyn Array> = keys
            .iter()
            .map(|k| batch.column_by_name(k).map(|c| c.as_ref()))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{}: a key column is missing", path.display()))?;
        let mut values = Vec::new();
        for c in columns {
            let a = batch
                .column_by_name(c)
                .and_then(|a| a.as_any().downcast_ref::<Decimal128Array>())
                .ok_or_else(|| format!("{}: {c} is not a decimal column", path.display()))?;
            values.push(a);
        }
        for row in 0..batch.num_rows() {
            let mut k = String::new();
            for (i, c) in key_columns.iter().enumerate() {
                if i > 0 {
                    k.push_str(" / ");
                }
                k.push_str(&text(*c, row).map_err(|e| format!("{}: {e}", path.display()))?);
            }
            let sums = match out.get_mut(&k) {
                Some(s) => s,
                None => out.entry(k).or_insert_with(|| vec![Decimal::ZERO; columns.len()]),
            };
            for (s, a) in sums.iter_mut().zip(&values) {
                if a.is_valid(row) {
                    let v = Decimal::try_from_i128_with_scale(a.value(row), a.scale() as u32)
                        .map_err(|e| format!("{}: a value does not fit an exact decimal: {e}", path.display()))?;
                    *s = s
                        .checked_add(v)
                        .ok_or_else(|| format!("{}: a sum does not fit an exact decimal", path.display()))?;
                }
            }
        }
    }
    Ok(out)
}

/// A key cell as text ("" for null).
fn text(c: &dyn Array, row: usize) -> Result<String, String> {
    if c.is_null(row) {
        return Ok(String::new());
    }
    if let Some(s) = c.as_any().downcast_ref::<StringArray>() {
        return Ok(s.value(row).to_string());
    }
    if let Some(n) = c.as_any().downcast_ref::<arrow_array::Int64Array>() {
        return Ok(n.value(row).to_string());
    }
    Err(format!(
        "a key column of type {} is not text or an integer",
        c.data_type()
    ))
}

/// What matching one month and account found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Matched {
    pub trades: usize,
    pub exact: usize,
    /// Transactions with no record carrying their trade_id.
    pub without_records: Vec<String>,
    /// Records whose trade_id no transaction has.
    pub without_transaction: Vec<String>,
    /// (trade_id, Σ records − consume_amount) beyond one cent.
    pub beyond: Vec<(String, Decimal)>,
}

/// Matches transactions (trade_id → [consume_amount, erase_amount]) with
/// records (trade_id → [amount]). Every transaction has records, a zero one
/// too (as in every answer seen): a lost page shows whatever its amount.
pub fn match_trades(tx: &BTreeMap<String, Vec<Decimal>>, records: &BTreeMap<String, Vec<Decimal>>) -> Matched {
    let cent = Decimal::new(1, 2);
    let mut m = Matched::default();
    // A row without a trade id links to nothing: it is not matched.
    for (id, t) in tx.iter().filter(|(id, _)| !id.is_empty()) {
        m.trades += 1;
        let (consume, erase) = (t[0], t.get(1).copied().unwrap_or_default());
        match records.get(id) {
            None => m.without_records.push(id.clone()),
            Some(r) => {
                let diff = r[0] - consume;
                if r[0] == consume + erase {
                    m.exact += 1;
                } else if diff.abs() >= cent {
                    m.beyond.push((id.clone(), diff));
                }
            }
        }
    }
    m.without_transaction = records
        .iter()
        .filter(|(id, _)| !id.is_empty() && !tx.contains_key(*id))
        .map(|(id, _)| id.clone())
        .collect();
    m
}

fn named(ids: impl ExactSizeIterator<Item = String>) -> String {
    let n = ids.len();
    let mut text: Vec<String> = ids.take(NAMED).collect();
    if n > NAMED {
        text.push(format!("and {} more", n - NAMED));
    }
    text.join(", ")
}

/// The finding of one month and account.
pub fn reconcile(pair: &Pair, cycle: &str, account: &str, tx: &Path, records: &Path, final_cycle: bool) -> Finding {
    let mut f = finding(
        pair.check,
        "transaction_records",
        cycle,
        account,
        Verdict::Exact,
        String::new(),
    );
    f.formula = Some(pair.formula.to_string());
    f.bound = Some("0.01 per trade".to_string());
    let read = sums(tx, &["trade_id"], &["consume_amount", "erase_amount"])
        .and_then(|t| sums(records, &["trade_id"], &[pair.amount]).map(|r| (t, r)));
    let (t, r) = match read {
        Ok(v) => v,
        Err(e) => {
            f.verdict = Verdict::Failed;
            f.detail = format!("cannot read the trade ids: {e}");
            return f;
        }
    };
    let m = match_trades(&t, &r);
    f.left = Some(format!("{} trades", m.trades));
    f.right = Some(format!("{} trade ids in the records", r.len()));
    let mut problems = Vec::new();
    if !m.without_records.is_empty() {
        problems.push(format!(
            "{} trades have no records: {}",
            m.without_records.len(),
            named(m.without_records.iter().cloned())
        ));
    }
    if !m.without_transaction.is_empty() {
        problems.push(format!(
            "{} trade ids in the records have no transaction: {}",
            m.without_transaction.len(),
            named(m.without_transaction.iter().cloned())
        ));
    }
    if !m.beyond.is_empty() {
        problems.push(format!(
            "{} trades differ from their records by a cent or more: {}",
            m.beyond.len(),
            named(m.beyond.iter().map(|(id, d)| format!("{id} ({})", d.normalize())))
        ));
    }
    (f.verdict, f.detail) = if problems.is_empty() {
        let verdict = if m.exact == m.trades {
            Verdict::Exact
        } else {
            Verdict::WithinRounding
        };
        let detail = format!(
            "{} trades matched their records, {} exactly with their 抹零, the rest within the bound of 0.01 per trade",
            m.trades, m.exact
        );
        (verdict, detail)
    } else {
        unmatched(&problems, final_cycle)
    };
    f
}

/// The monthly summary's group key, shared with the transactions.
const GROUP: &[&str] = &["service_type_code", "resource_type_code", "charging_mode"];
/// The check's name in reports.
pub const GROUPS_CHECK: &str = "monthly sum = transactions, group by group";
const GROUPS_FORMULA: &str = "per service × resource type × charging mode: Σ monthly sum (consume_amount + \
                              truncated_amount) = Σ transactions (consume_amount + erase_amount): on both sides the \
                              group's resource amounts before rounding (应付金额=官网价-折扣金额-抹零金额; official = \
                              discount + erase + consume), so exact whatever the rounding";

/// What matching the summary's groups with the transactions' found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Groups {
    pub groups: usize,
    pub only_summary: Vec<String>,
    pub only_tx: Vec<String>,
    /// (group, summary − transactions) where they differ.
    pub differ: Vec<(String, Decimal)>,
}

/// Matches monthly-summary groups ([consume, truncated]) with the
/// transactions' ([consume, erase]): each side's sum before rounding.
pub fn match_groups(summary: &BTreeMap<String, Vec<Decimal>>, tx: &BTreeMap<String, Vec<Decimal>>) -> Groups {
    let whole = |v: &Vec<Decimal>| v.iter().copied().sum::<Decimal>();
    // A group of nothing on one side only is no discrepancy: transactions are
    // asked for with their zero records, the summary has no such switch.
    let one_sided = |a: &BTreeMap<String, Vec<Decimal>>, b: &BTreeMap<String, Vec<Decimal>>| -> Vec<String> {
        a.iter()
            .filter(|(k, v)| !b.contains_key(*k) && !whole(v).is_zero())
            .map(|(k, _)| k.clone())
            .collect()
    };
    let (only_summary, only_tx) = (one_sided(summary, tx), one_sided(tx, summary));
    let differ: Vec<(String, Decimal)> = summary
        .iter()
        .filter_map(|(k, s)| tx.get(k).map(|t| (k.clone(), whole(s) - whole(t))))
        .filter(|(_, d)| !d.is_zero())
        .collect();
    Groups {
        groups: summary.len(),
        only_summary,
        only_tx,
        differ,
    }
}

/// A failure in a final cycle; a warning in a provisional one, which Huawei
/// may still change.
fn unmatched(problems: &[String], final_cycle: bool) -> (Verdict, String) {
    if final_cycle {
        (Verdict::Failed, problems.join("; "))
    } else {
        (
            Verdict::Warning,
            format!("{} (provisional cycle: a warning)", problems.join("; ")),
        )
    }
}

/// The group-by-group finding of one month and account.
pub fn reconcile_groups(cycle: &str, account: &str, summary: &Path, tx: &Path, final_cycle: bool) -> Finding {
    let mut f = finding(
        GROUPS_CHECK,
        "bill_summary",
        cycle,
        account,
        Verdict::Exact,
        String::new(),
    );
    f.formula = Some(GROUPS_FORMULA.to_string());
    f.bound = Some("exact".to_string());
    let read = sums(summary, GROUP, &["consume_amount", "truncated_amount"])
        .and_then(|s| sums(tx, GROUP, &["consume_amount", "erase_amount"]).map(|t| (s, t)));
    let (s, t) = match read {
        Ok(v) => v,
        Err(e) => {
            f.verdict = Verdict::Failed;
            f.detail = format!("cannot read the groups: {e}");
            return f;
        }
    };
    let Groups {
        groups,
        only_summary,
        only_tx,
        differ,
    } = match_groups(&s, &t);
    f.left = Some(format!("{groups} groups"));
    f.right = Some(format!("{} groups in the transactions", t.len()));
    let mut problems = Vec::new();
    if !only_summary.is_empty() {
        problems.push(format!(
            "{} groups have no transaction: {}",
            only_summary.len(),
            named(only_summary.into_iter())
        ));
    }
    if !only_tx.is_empty() {
        problems.push(format!(
            "{} groups of transactions are not in the summary: {}",
            only_tx.len(),
            named(only_tx.into_iter())
        ));
    }
    if !differ.is_empty() {
        problems.push(format!(
            "{} groups differ: {}",
            differ.len(),
            named(differ.iter().map(|(k, d)| format!("{k} ({})", d.normalize())))
        ));
    }
    (f.verdict, f.detail) = if problems.is_empty() {
        (Verdict::Exact, format!("{groups} groups equal their transactions"))
    } else {
        unmatched(&problems, final_cycle)
    };
    f
}

/// The check's name in reports.
pub const ORDERS_CHECK: &str = "amortised orders = their purchases";
const ORDERS_FORMULA: &str = "per order_id and charge cycle: Σ monthly-breakdown consume_amount (= past + current + \
                              future amortised) = the purchase transaction's consume_amount + erase_amount (trade_id: \
                              订单ID或交易ID), for the orders whose transaction the lake holds";

/// The purchases of one account, read a charge cycle at a time as the
/// orders name them ("trade_id / bill_cycle" → [consume_amount, erase_amount]).
pub struct Purchases {
    /// Each cycle's transaction file (those at hand).
    files: BTreeMap<String, std::path::PathBuf>,
    read: BTreeMap<String, Result<BTreeMap<String, Vec<Decimal>>, String>>,
}

impl Purchases {
    pub fn new(files: BTreeMap<String, std::path::PathBuf>) -> Self {
        Purchases {
            files,
            read: BTreeMap::new(),
        }
    }

    fn of_cycle(&mut self, cycle: &str) -> Result<Option<&BTreeMap<String, Vec<Decimal>>>, String> {
        let Some(path) = self.files.get(cycle) else {
            return Ok(None);
        };
        let got = self
            .read
            .entry(cycle.to_string())
            .or_insert_with(|| sums(path, &["trade_id", "bill_cycle"], &["consume_amount", "erase_amount"]));
        got.as_ref().map(Some).map_err(Clone::clone)
    }
}

/// The orders of one shared month and account against their purchases.
pub fn reconcile_orders(
    cycle: &str,
    account: &str,
    breakdown: &Path,
    purchases: &mut Purchases,
    final_cycle: bool,
) -> Finding {
    let mut f = finding(
        ORDERS_CHECK,
        "amortized_costs",
        cycle,
        account,
        Verdict::Exact,
        String::new(),
    );
    f.formula = Some(ORDERS_FORMULA.to_string());
    f.bound = Some("exact".to_string());
    let fail = |mut f: Finding, e: String| {
        f.verdict = Verdict::Failed;
        f.detail = format!("cannot read the orders: {e}");
        f
    };
    let orders = match sums(breakdown, &["order_id", "bill_cycle"], &["consume_amount"]) {
        Ok(o) => o,
        Err(e) => return fail(f, e),
    };
    let (mut checked, mut differ) = (0usize, Vec::new());
    // Rows without an order id (on-demand lines) name no purchase.
    for (key, o) in orders.iter().filter(|(k, _)| !k.starts_with(" / ")) {
        let charge_cycle = key.rsplit(" / ").next().unwrap_or("");
        let t = match purchases.of_cycle(charge_cycle) {
            Ok(Some(tx)) => tx.get(key),
            Ok(None) => None,
            Err(e) => return fail(f, e),
        };
        let Some(t) = t else { continue };
        checked += 1;
        let d = o[0] - (t[0] + t[1]);
        if !d.is_zero() {
            differ.push(format!("{key} ({})", d.normalize()));
        }
    }
    f.left = Some(format!("{} orders", orders.len()));
    f.right = Some(format!("{checked} with their purchase in the lake"));
    (f.verdict, f.detail) = if differ.is_empty() {
        let verdict = if checked == 0 { Verdict::Ok } else { Verdict::Exact };
        (
            verdict,
            format!(
                "{checked} of {} orders equal their purchase (the others' purchases are not in the lake, or carry \
                 another id)",
                orders.len()
            ),
        )
    } else {
        unmatched(
            &[format!(
                "{} orders differ from their purchase: {}",
                differ.len(),
                named(differ.into_iter())
            )],
            final_cycle,
        )
    };
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn map(rows: &[(&str, &[&str])]) -> BTreeMap<String, Vec<Decimal>> {
        rows.iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|x| d(x)).collect()))
            .collect()
    }

    #[test]
    fn every_trade_is_matched_by_id_whatever_its_amount() {
        let tx = map(&[
            ("t1", &["10.01", "0.00456789"]),
            ("t2", &["0.01", "0.00000001"]),
            ("t3", &["5.00", "0"]),
            ("t4", &["0", "0"]),
            ("t5", &["2.00", "0"]),
        ]);
        let records = map(&[
            ("t1", &["10.01456789"]),
            ("t3", &["5.004"]),
            ("t5", &["2.02"]),
            ("stray", &["0.5"]),
        ]);
        let m = match_trades(&tx, &records);
        assert_eq!(m.trades, 5);
        assert_eq!(m.exact, 1, "t1, with its 抹零");
        assert_eq!(
            m.without_records,
            ["t2", "t4"],
            "a one-cent trade, or one of nothing, is missed as surely as a large one"
        );
        assert_eq!(m.without_transaction, ["stray"]);
        assert_eq!(m.beyond, [("t5".to_string(), d("0.02"))]);
        // t3 is within its cent but not exact: not reported.
    }

    #[test]
    fn groups_compare_their_amounts_before_rounding() {
        // Summary: consume (truncated once per group) + truncated; transactions:
        // consume (in cents per trade) + erase. Both are the group's raw sum.
        let summary = map(&[
            ("ec2 / vm / 1", &["10.02", "0.00912"]),
            ("evs / disk / 3", &["5.00", "0"]),
        ]);
        let tx = map(&[
            ("ec2 / vm / 1", &["10.02", "0.00912"]),
            ("obs / bucket / 1", &["0.01", "0"]),
        ]);
        let g = match_groups(&summary, &tx);
        assert_eq!(g.groups, 2);
        assert_eq!(g.only_summary, ["evs / disk / 3"]);
        assert_eq!(g.only_tx, ["obs / bucket / 1"]);
        assert!(g.differ.is_empty());
        let tx = map(&[
            ("ec2 / vm / 1", &["10.02", "0.0091"]),
            ("evs / disk / 3", &["5.00", "0"]),
        ]);
        let g = match_groups(&summary, &tx);
        assert_eq!(g.differ, [("ec2 / vm / 1".to_string(), "0.00002".parse().unwrap())]);
    }
}
