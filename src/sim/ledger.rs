//! The simulator's deterministic ledger. (Over 400 lines: the closed-form
//! row generator and the cross-endpoint consistency rules are one piece.)
//!
//! Every row is a pure function of (seed, account, cycle, index), computed when
//! a page asks for it, so a month of millions of rows is never held in memory.
//! All endpoints are views of the same lines:
//! * a *line* is one resource-level consumption record (8-decimal amounts);
//! * a *trade* groups 1–4 consecutive lines (lines per trade cycle through
//!   1,2,3,4, so index→trade is closed-form); its fee record carries the
//!   lines' sums rounded to cents;
//! * the monthly summary groups lines by service, resource type, charging mode
//!   and bill-type class, with exactly the lines' sums;
//! * income/expense records deduct each day's cash and credit payments.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::cycle::{BillCycle, local_midnight_utc};

use super::catalogue::{MEMBER_NAMES, Part, Usage};
pub use super::catalogue::{PROJECTS, REGIONS, SERVICES, Service};

pub struct Account {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub status: i64,
    pub org_id: String,
    pub org_name: String,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small deterministic generator seeded from a tuple of numbers.
pub struct Rng(u64);

impl Rng {
    pub fn new(parts: &[u64]) -> Self {
        Rng(parts.iter().fold(0x5EED_u64, |acc, p| mix(acc ^ p)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(len);
        s
    }
}

fn cycle_num(c: BillCycle) -> u64 {
    (c.year() as u64) * 12 + u64::from(c.month())
}

/// One resource-level record, before rendering into an API model.
#[derive(Clone, Debug)]
pub struct Line {
    pub account: usize,
    pub cycle: BillCycle,
    pub index: u64,
    pub trade_id: String,
    pub id: String,
    pub service: &'static Service,
    /// The usage type metered (of the service, or of the part).
    pub meter: &'static Usage,
    /// The part of a whole machine this line bills, with its own id and name.
    pub part: Option<(&'static Part, String, String)>,
    pub region: (&'static str, &'static str),
    pub project: (Option<&'static str>, &'static str),
    pub charge_mode: i64,
    pub bill_type: i64,
    pub period_type: Option<i64>,
    /// The prepaid order (charging mode 1): the trade itself for an order
    /// bill type, else the subscription's order that a payment belongs to.
    pub order_id: Option<String>,
    pub resource_id: String,
    pub resource_name: String,
    pub bill_date: NaiveDate,
    pub trade_time: DateTime<Utc>,
    pub consume_time: DateTime<Utc>,
    /// Quantity used; zero for some charged lines (a minimum fee).
    pub usage: Decimal,
    pub unit_price: Option<Decimal>,
    pub official: Decimal,
    pub discount: Decimal,
    pub amount: Decimal,
    pub coupon: Decimal,
    pub cash: Decimal,
    pub credit: Decimal,
}

impl Line {
    /// Metered: on-demand, reserved-instance and savings-plan use report a
    /// usage; prepaid records do not ("查询包周期资源，不返回资源的使用量").
    pub fn metered(&self) -> bool {
        matches!(self.charge_mode, 3 | 10 | 11)
    }

    /// `sub_resource_id`: the part's own id, or for a reserved instance its
    /// identifier ("如果为预留实例，则为预留实例标识").
    pub fn sub_resource_id(&self) -> Option<String> {
        match &self.part {
            Some((_, id, _)) => Some(id.clone()),
            None if self.charge_mode == 10 => Some(format!("ri-{}", &self.resource_id[..12])),
            None => None,
        }
    }
}

/// Summary class of a §10.2 bill type: 1 consumption, 2 refund, 3 adjustment.
pub fn summary_bill_type(bill_type: i64) -> i64 {
    match bill_type {
        4 | 20 | 24 | 100 => 2,
        9 | 16 | 101 | 102 => 3,
        _ => 1,
    }
}

/// A transaction (fee record) of one trade: payments rounded to cents, the
/// part below a cent dropped as 抹零. Its amounts keep the documented
/// relations exactly: official = discount + erase + consume, and
/// consume = cash + credit + coupon.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trade {
    pub official: Decimal,
    pub discount: Decimal,
    /// What was paid, truncated to cents toward zero.
    pub consume: Decimal,
    /// 抹零: the lines' payable amount below a cent.
    pub erase: Decimal,
    pub coupon: Decimal,
    pub cash: Decimal,
    pub credit: Decimal,
}

impl Trade {
    /// The transaction of a trade's lines.
    pub fn of(lines: &[Line]) -> Trade {
        let sum = |f: fn(&Line) -> Decimal| lines.iter().map(f).sum::<Decimal>();
        let (official, discount, amount) = (sum(|l| l.official), sum(|l| l.discount), sum(|l| l.amount));
        let consume = amount.round_dp_with_strategy(2, RoundingStrategy::ToZero);
        let coupon = cents(sum(|l| l.coupon));
        let coupon = if coupon.abs() > consume.abs() { consume } else { coupon };
        let credit = cents(sum(|l| l.credit));
        let credit = if credit.abs() > (consume - coupon).abs() {
            consume - coupon
        } else {
            credit
        };
        Trade {
            official,
            discount,
            consume,
            erase: amount - consume,
            coupon,
            credit,
            cash: consume - coupon - credit,
        }
    }
}

/// Sums of one monthly-summary group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SumRow {
    pub account: usize,
    pub service: usize,
    pub charging_mode: i64,
    pub bill_type: i64,
    pub official: Decimal,
    pub discount: Decimal,
    /// 抹零 of the group's transactions.
    pub truncated: Decimal,
    /// What was paid (net of 抹零): official − discount − truncated.
    pub consume: Decimal,
    pub coupon: Decimal,
    pub cash: Decimal,
    pub credit: Decimal,
}

/// Per-day payments of an account, for income/expense records.
#[derive(Clone, Debug, Default)]
pub struct DaySums {
    pub cash: Vec<Decimal>,
    pub credit: Vec<Decimal>,
}

/// Aggregates per (account, cycle, drift rows), computed once.
type Cache<T> = Mutex<HashMap<(usize, BillCycle, u64), std::sync::Arc<T>>>;

pub struct Ledger {
    pub seed: u64,
    pub scale: f64,
    pub from: BillCycle,
    pub to: BillCycle,
    pub accounts: Vec<Account>,
    /// Rows inserted at the front of a cycle by `--drift`, per (account, cycle).
    extra: Mutex<HashMap<(usize, BillCycle), u64>>,
    sums: Cache<Vec<SumRow>>,
    days: Cache<DaySums>,
    breakdowns: Cache<Vec<super::amortization::Row>>,
}

/// Lines per trade cycle 1,2,3,4: a block of 10 lines holds 4 trades.
const CUM: [u64; 5] = [0, 1, 3, 6, 10];

impl Ledger {
    pub fn new(seed: u64, scale: f64, from: BillCycle, to: BillCycle, members: u32) -> Self {
        let mut accounts = Vec::new();
        let mut rng = Rng::new(&[seed, 0xACC]);
        accounts.push(Account {
            id: rng.hex(32),
            name: "hcbill-demo-master".into(),
            display_name: "Demo Enterprise 主账号".into(),
            status: 1,
            org_id: String::new(),
            org_name: String::new(),
        });
        for m in 0..members as usize {
            let (name, display) = MEMBER_NAMES[m % MEMBER_NAMES.len()];
            accounts.push(Account {
                id: rng.hex(32),
                name: format!("{name}-{}", m + 1),
                display_name: display.to_string(),
                status: 1,
                org_id: format!("org-{}", rng.hex(8)),
                org_name: if m % 2 == 0 {
                    "Engineering 工程".into()
                } else {
                    String::new()
                },
            });
        }
        Self {
            seed,
            scale,
            from,
            to,
            accounts,
            extra: Mutex::new(HashMap::new()),
            sums: Mutex::new(HashMap::new()),
            days: Mutex::new(HashMap::new()),
            breakdowns: Mutex::new(HashMap::new()),
        }
    }

    pub fn account_index(&self, id: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a.id == id)
    }

    fn base_lines(&self, account: usize, cycle: BillCycle) -> u64 {
        if cycle < self.from || cycle > self.to {
            return 0;
        }
        let mut r = Rng::new(&[self.seed, account as u64, cycle_num(cycle), 0x11]);
        let weight = if account == 0 { 2.0 } else { 1.0 };
        (self.scale * 2000.0 * weight * (0.6 + 0.8 * r.unit())).round() as u64
    }

    pub fn extra_lines(&self, account: usize, cycle: BillCycle) -> u64 {
        *self
            .extra
            .lock()
            .expect("ledger lock")
            .get(&(account, cycle))
            .unwrap_or(&0)
    }

    /// Inserts `n` rows at the front of a cycle (the `--drift` fault).
    pub fn insert_front(&self, account: usize, cycle: BillCycle, n: u64) {
        *self
            .extra
            .lock()
            .expect("ledger lock")
            .entry((account, cycle))
            .or_default() += n;
    }

    pub fn line_count(&self, account: usize, cycle: BillCycle) -> u64 {
        self.base_lines(account, cycle) + self.extra_lines(account, cycle)
    }

    /// Trade number and position of a base line.
    fn trade_of(i: u64) -> (u64, u64) {
        let (block, r) = (i / 10, i % 10);
        let k = (0..4).rev().find(|k| CUM[*k] <= r).expect("CUM[0] = 0") as u64;
        (block * 4 + k, r - CUM[k as usize])
    }

    fn trade_start(t: u64) -> u64 {
        (t / 4) * 10 + CUM[(t % 4) as usize]
    }

    /// Number of trades among the base lines.
    pub fn trade_count(&self, account: usize, cycle: BillCycle) -> u64 {
        let n = self.base_lines(account, cycle);
        (n / 10) * 4 + (0..4).filter(|k| CUM[*k] < n % 10).count() as u64
    }

    /// Lines of trade `t`: start index and count.
    pub fn trade_lines(&self, account: usize, cycle: BillCycle, t: u64) -> (u64, u64) {
        let n = self.base_lines(account, cycle);
        let start = Self::trade_start(t);
        let len = (t % 4 + 1).min(n.saturating_sub(start));
        (start + self.extra_lines(account, cycle), len)
    }

    /// Local day of a base line: days advance with the trade's start index,
    /// so lines are ordered by date and a date range is an index range.
    fn day_of(&self, account: usize, cycle: BillCycle, base_index: u64) -> u32 {
        let n = self.base_lines(account, cycle).max(1);
        let start = Self::trade_start(Self::trade_of(base_index).0);
        ((start as u128 * u128::from(cycle.days())) / n as u128) as u32
    }

    /// First line index whose bill date is on or after `day` (0-based day of month).
    pub fn first_line_on_or_after(&self, account: usize, cycle: BillCycle, day: u32) -> u64 {
        let extra = self.extra_lines(account, cycle);
        let n = self.base_lines(account, cycle);
        let (mut lo, mut hi) = (0u64, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.day_of(account, cycle, mid) < day {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        // Drift rows sit on the first day.
        if day == 0 { 0 } else { lo + extra }
    }

    pub fn line(&self, account: usize, cycle: BillCycle, index: u64) -> Line {
        let extra = self.extra_lines(account, cycle);
        let acct = cycle_num(cycle) ^ ((account as u64) << 32);
        let (trade_key, pos, day) = if index < extra {
            (u64::MAX - index, 0, 0)
        } else {
            let base = index - extra;
            let (t, pos) = Self::trade_of(base);
            (t, pos, self.day_of(account, cycle, base))
        };
        let mut tr = Rng::new(&[self.seed, acct, trade_key, 0x7A]);
        let service_idx = tr.below(SERVICES.len() as u64) as usize;
        let service = &SERVICES[service_idx];
        let region = REGIONS[tr.below(REGIONS.len() as u64) as usize];
        let project = PROJECTS[tr.below(PROJECTS.len() as u64) as usize];
        let charge = super::catalogue::charge_of(tr.below(100));
        let (charge_mode, bill_type, period_type) = (charge.charge_mode, charge.bill_type, charge.period_type);
        let resource_no = tr.below(40);
        let mut res_rng = Rng::new(&[self.seed, account as u64, service_idx as u64, resource_no, 0x9E]);
        let resource_id = res_rng.hex(32);
        let resource_name = format!("{}-{:02}", service.resource_prefix, resource_no);
        // A whole machine bills its parts on the lines after the first; other
        // resources meter their usage types in turn.
        let part = (pos > 0 && !service.parts.is_empty()).then(|| {
            let p = &service.parts[(pos as usize - 1) % service.parts.len()];
            let mut pr = Rng::new(&[self.seed, account as u64, service_idx as u64, resource_no, pos, 0x5B]);
            (p, pr.hex(32), format!("{resource_name} {}", p.name))
        });
        let meter = match &part {
            Some((p, _, _)) => &p.usage,
            None => &service.usages[pos as usize % service.usages.len()],
        };
        let bill_date = cycle.first_day() + Duration::days(i64::from(day));
        let trade_time = local_midnight_utc(bill_date) + Duration::seconds(tr.below(86_400) as i64);
        // Order ids are unique, as Huawei's are: the trade's own number, not a
        // random one (a random six digits repeat in a large month).
        let trade_id = if super::catalogue::is_order_bill_type(bill_type) {
            format!("CS{}{:06}", bill_date.format("%y%m%d"), trade_key % 1_000_000_000_000)
        } else {
            format!("BC{}", tr.hex(24))
        };
        // A reserved instance paid up front is an order too (its trade).
        let ri_order = charge_mode == 10 && super::catalogue::is_order_bill_type(bill_type);
        let order_id = (charge_mode == 1 || ri_order).then(|| {
            if super::catalogue::is_order_bill_type(bill_type) {
                trade_id.clone()
            } else {
                // A monthly or yearly payment belongs to the subscription's
                // order (one per resource and payment plan).
                format!("CS{:06}{}{}", resource_no, &resource_id[..8], bill_type)
            }
        });
        let mut lr = Rng::new(&[self.seed, acct, trade_key, pos, 0x11E]);
        // Some charged lines report no quantity used (a minimum fee).
        let usage = if lr.below(25) == 0 {
            Decimal::ZERO
        } else {
            Decimal::new(lr.below(100_000_000) as i64 + 1, 4)
        };
        let official_m = if bill_type == 25 {
            1_000_000 // a rounding top-up: one cent, undiscounted
        } else {
            lr.below(50_000_000_000) as i64 + 1_000_000 // 0.01 .. 500.01, 8 dp
        };
        // A free-tier line costs nothing (include_zero_record asks for it).
        let free = lr.below(40) == 0;
        let discount_m = match bill_type {
            25 => 0,
            _ if free => official_m,
            _ => official_m * (lr.below(31) as i64) / 100,
        };
        // Refunds and compensations give money back: negative amounts, as
        // Huawei signs every amount returned to the customer.
        let sign = if super::catalogue::gives_back(bill_type) { -1 } else { 1 };
        let official = Decimal::new(sign * official_m, 8);
        let discount = Decimal::new(sign * discount_m, 8);
        let amount = official - discount;
        let coupon = if lr.below(10) == 0 && sign > 0 {
            Decimal::new((official_m - discount_m) / 5, 8)
        } else {
            Decimal::ZERO
        };
        let (cash, credit) = if lr.below(20) == 0 {
            (Decimal::ZERO, amount - coupon)
        } else {
            (amount - coupon, Decimal::ZERO)
        };
        let unit_price = (!usage.is_zero())
            .then(|| (official / usage).round_dp_with_strategy(8, RoundingStrategy::MidpointAwayFromZero));
        Line {
            account,
            cycle,
            index,
            id: format!("{}-{:04}", trade_id, pos),
            trade_id,
            service,
            meter,
            part,
            region,
            project,
            charge_mode,
            bill_type,
            period_type,
            order_id,
            resource_id,
            resource_name,
            bill_date,
            trade_time,
            // An hour of use that starts and ends on the bill day (UTC+8).
            consume_time: local_midnight_utc(bill_date)
                + Duration::seconds(
                    ((trade_time - local_midnight_utc(bill_date)).num_seconds() + pos as i64 * 3600) % (23 * 3600),
                ),
            usage,
            unit_price,
            official,
            discount,
            amount,
            coupon,
            cash,
            credit,
        }
    }

    /// The lines of trade `t`.
    pub fn trade_lines_of(&self, account: usize, cycle: BillCycle, t: u64) -> Vec<Line> {
        let (start, len) = self.trade_lines(account, cycle, t);
        (start..start + len).map(|i| self.line(account, cycle, i)).collect()
    }

    /// The transaction (fee record) of trade `t`.
    pub fn trade(&self, account: usize, cycle: BillCycle, t: u64) -> Trade {
        Trade::of(&self.trade_lines_of(account, cycle, t))
    }

    /// The monthly summary of one account: per group, the exact sums of its
    /// transactions (consume and 抹零 as charged, official and discount as billed).
    pub fn summary(&self, account: usize, cycle: BillCycle) -> std::sync::Arc<Vec<SumRow>> {
        let key = (account, cycle, self.extra_lines(account, cycle));
        if let Some(s) = self.sums.lock().expect("ledger lock").get(&key) {
            return s.clone();
        }
        let mut groups: BTreeMap<(usize, i64, i64), SumRow> = BTreeMap::new();
        let mut add = |lines: &[Line]| {
            let Some(l) = lines.first() else { return };
            let t = Trade::of(lines);
            let service = SERVICES
                .iter()
                .position(|s| std::ptr::eq(s, l.service))
                .expect("catalogue");
            let bt = summary_bill_type(l.bill_type);
            let g = groups.entry((service, l.charge_mode, bt)).or_insert_with(|| SumRow {
                account,
                service,
                charging_mode: l.charge_mode,
                bill_type: bt,
                ..Default::default()
            });
            g.official += t.official;
            g.discount += t.discount;
            g.truncated += t.erase;
            g.consume += t.consume;
            g.coupon += t.coupon;
            g.cash += t.cash;
            g.credit += t.credit;
        };
        // Drift rows are trades of one line each; then the trades proper.
        for i in 0..self.extra_lines(account, cycle) {
            add(&[self.line(account, cycle, i)]);
        }
        for t in 0..self.trade_count(account, cycle) {
            add(&self.trade_lines_of(account, cycle, t));
        }
        let rows = std::sync::Arc::new(groups.into_values().collect::<Vec<_>>());
        self.sums.lock().expect("ledger lock").insert(key, rows.clone());
        rows
    }

    /// Cash and credit paid per local day (rounded to cents like real deductions).
    pub fn day_sums(&self, account: usize, cycle: BillCycle) -> std::sync::Arc<DaySums> {
        let key = (account, cycle, self.extra_lines(account, cycle));
        if let Some(s) = self.days.lock().expect("ledger lock").get(&key) {
            return s.clone();
        }
        let days = cycle.days() as usize;
        let mut d = DaySums {
            cash: vec![Decimal::ZERO; days],
            credit: vec![Decimal::ZERO; days],
        };
        for i in 0..self.line_count(account, cycle) {
            let l = self.line(account, cycle, i);
            let day = (l.bill_date - cycle.first_day()).num_days() as usize;
            d.cash[day] += l.cash;
            d.credit[day] += l.credit;
        }
        for v in d.cash.iter_mut().chain(d.credit.iter_mut()) {
            *v = cents(*v);
        }
        let d = std::sync::Arc::new(d);
        self.days.lock().expect("ledger lock").insert(key, d.clone());
        d
    }

    /// The amortised breakdown of a month, computed once (see `amortization`).
    pub fn breakdown_cached(
        &self,
        account: usize,
        month: BillCycle,
        make: impl FnOnce() -> Vec<super::amortization::Row>,
    ) -> std::sync::Arc<Vec<super::amortization::Row>> {
        let key = (account, month, self.extra_lines(account, month));
        if let Some(r) = self.breakdowns.lock().expect("ledger lock").get(&key) {
            return r.clone();
        }
        let rows = std::sync::Arc::new(make());
        self.breakdowns.lock().expect("ledger lock").insert(key, rows.clone());
        rows
    }

    /// 95th-percentile resources of an account for a usage type: ids only.
    pub fn usage_resources(&self, cycle: BillCycle, service: &str, usage_type: &str) -> Vec<String> {
        if cycle < self.from || cycle > self.to {
            return Vec::new();
        }
        let mut r = Rng::new(&[self.seed, cycle_num(cycle), fnv(service), fnv(usage_type), 0x95]);
        let n = r.below(3);
        (0..n).map(|_| r.hex(32)).collect()
    }

    /// One 5-minute bandwidth sample (Mbit/s, 4 decimals).
    pub fn usage_point(&self, resource_id: &str, cycle: BillCycle, k: u64) -> Decimal {
        let mut r = Rng::new(&[self.seed, fnv(resource_id), cycle_num(cycle), k]);
        // A daily triangle wave plus noise, 288 points a day, in integer
        // arithmetic so every platform draws the same samples.
        let phase = (k % 288) as i64;
        let wave = 144 - (phase - 144).abs(); // 0..=144
        let mbps_e4 = 500_000 + wave * 20_000 + r.below(600_000) as i64;
        Decimal::new(mbps_e4, 4)
    }
}

pub fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Rounds to cents, half away from zero, as Huawei rounds deductions.
pub fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Formats an instant as the APIs do: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Ledger {
        Ledger::new(7, 0.05, "2026-08".parse().unwrap(), "2026-10".parse().unwrap(), 2)
    }

    #[test]
    fn deterministic_and_bounded_to_the_range() {
        let (a, b) = (ledger(), ledger());
        let c: BillCycle = "2026-09".parse().unwrap();
        assert_eq!(a.accounts[1].id, b.accounts[1].id);
        assert!(a.line_count(0, c) > 0);
        assert_eq!(a.line(0, c, 5).official, b.line(0, c, 5).official);
        assert_eq!(a.line_count(0, "2026-11".parse().unwrap()), 0);
    }

    #[test]
    fn trades_partition_the_lines() {
        let l = ledger();
        let c: BillCycle = "2026-09".parse().unwrap();
        let n = l.line_count(0, c);
        let mut covered = 0;
        for t in 0..l.trade_count(0, c) {
            let (start, len) = l.trade_lines(0, c, t);
            assert_eq!(start, covered, "trade {t}");
            assert!(len >= 1);
            let ids: std::collections::HashSet<String> =
                (start..start + len).map(|i| l.line(0, c, i).trade_id).collect();
            assert_eq!(ids.len(), 1, "a trade's lines share its id");
            covered += len;
        }
        assert_eq!(covered, n);
    }

    #[test]
    fn dates_are_ordered_and_searchable() {
        let l = ledger();
        let c: BillCycle = "2026-08".parse().unwrap();
        let n = l.line_count(0, c);
        let dates: Vec<NaiveDate> = (0..n).map(|i| l.line(0, c, i).bill_date).collect();
        assert!(dates.windows(2).all(|w| w[0] <= w[1]));
        let i = l.first_line_on_or_after(0, c, 10);
        assert!(dates[i as usize] >= c.first_day() + Duration::days(10));
        assert!(i == 0 || dates[i as usize - 1] < c.first_day() + Duration::days(10));
    }

    #[test]
    fn summary_follows_the_documented_formulas() {
        let l = ledger();
        let c: BillCycle = "2026-10".parse().unwrap();
        let total: Decimal = (0..l.line_count(1, c)).map(|i| l.line(1, c, i).amount).sum();
        let rows = l.summary(1, c);
        // consume_amount = official − discount − truncated (BillSumRecordInfoV2).
        for r in rows.iter() {
            assert_eq!(r.consume, r.official - r.discount - r.truncated, "{r:?}");
            assert_eq!(r.consume, r.cash + r.credit + r.coupon, "{r:?}");
        }
        let consumed: Decimal = rows.iter().map(|r| r.consume).sum();
        let truncated: Decimal = rows.iter().map(|r| r.truncated).sum();
        assert_eq!(total, consumed + truncated, "records = paid + 抹零");
        assert!(!truncated.is_zero(), "抹零 occurs");
        let paid: Decimal = (0..l.trade_count(1, c)).map(|t| l.trade(1, c, t).consume).sum();
        assert_eq!(consumed, paid, "summary = transactions");
    }

    #[test]
    fn transactions_follow_the_documented_formulas() {
        let l = ledger();
        let c: BillCycle = "2026-09".parse().unwrap();
        let mut negative = 0;
        for t in 0..l.trade_count(0, c) {
            let x = l.trade(0, c, t);
            // official_amount = official_discount_amount + erase_amount + consume_amount (MonthlyBillRecord).
            assert_eq!(x.official, x.discount + x.erase + x.consume, "{x:?}");
            assert_eq!(x.consume, x.cash + x.credit + x.coupon, "{x:?}");
            assert!(x.consume.scale() <= 2 && x.erase.abs() < Decimal::new(1, 2), "{x:?}");
            negative += usize::from(x.consume.is_sign_negative());
        }
        assert!(negative > 0, "refunds are negative");
    }

    #[test]
    fn whole_machines_bill_parts_and_resources_meter_several_usage_types() {
        let l = Ledger::new(7, 0.3, "2026-09".parse().unwrap(), "2026-09".parse().unwrap(), 0);
        let c: BillCycle = "2026-09".parse().unwrap();
        let lines: Vec<Line> = (0..l.line_count(0, c)).map(|i| l.line(0, c, i)).collect();
        let parts = lines.iter().filter(|x| x.part.is_some()).count();
        assert!(parts > 0, "sub-resource lines");
        // A part shares its trade's resource, order and charge; its own id differs.
        for x in lines.iter().filter(|x| x.part.is_some()) {
            let main = lines
                .iter()
                .find(|m| m.trade_id == x.trade_id && m.part.is_none())
                .expect("the main line");
            assert_eq!((&main.resource_id, &main.order_id), (&x.resource_id, &x.order_id));
            assert_ne!(x.sub_resource_id(), None);
        }
        let mut types = std::collections::BTreeMap::<&str, std::collections::BTreeSet<&str>>::new();
        for x in &lines {
            types.entry(&x.resource_id).or_default().insert(x.meter.code);
        }
        assert!(
            types.values().any(|t| t.len() > 1),
            "a resource with several usage types"
        );
        assert!(
            lines.iter().any(|x| x.usage.is_zero() && !x.amount.is_zero()),
            "zero quantity, non-zero cost"
        );
        assert!(lines.iter().any(|x| x.amount.is_zero()), "a zero-amount record");
        assert!(
            lines.iter().any(|x| x.project.0.is_none()),
            "an unassigned enterprise project"
        );
    }
}
