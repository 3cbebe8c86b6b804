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

#[derive(Debug)]
pub struct Service {
    pub code: &'static str,
    pub name: &'static str,
    pub rtype: &'static str,
    pub rname: &'static str,
    pub usage_type: &'static str,
    pub unit: &'static str,
    pub usage_measure: i64,
    pub spec: &'static str,
    pub resource_prefix: &'static str,
}

pub const SERVICES: &[Service] = &[
    Service {
        code: "hws.service.type.ec2",
        name: "Elastic Cloud Server",
        rtype: "hws.resource.type.vm",
        rname: "ECS",
        usage_type: "duration",
        unit: "CNY/hour",
        usage_measure: 4,
        spec: "s6.large.2 | 2vCPUs | 4GiB | linux",
        resource_prefix: "ecs-生产",
    },
    Service {
        code: "hws.service.type.ebs",
        name: "Elastic Volume Service",
        rtype: "hws.resource.type.volume",
        rname: "EVS",
        usage_type: "capacity",
        unit: "CNY/GB/hour",
        usage_measure: 17,
        spec: "SSD | 100GB",
        resource_prefix: "数据盘",
    },
    Service {
        code: "hws.service.type.obs",
        name: "Object Storage Service",
        rtype: "hws.resource.type.obs",
        rname: "OBS",
        usage_type: "storage",
        unit: "CNY/GB/month",
        usage_measure: 10,
        spec: "Standard storage",
        resource_prefix: "bucket-日志",
    },
    Service {
        code: "hws.service.type.vpc",
        name: "Virtual Private Cloud",
        rtype: "hws.resource.type.bandwidth",
        rname: "Bandwidth",
        usage_type: "upflow",
        unit: "CNY/GB",
        usage_measure: 10,
        spec: "Dynamic BGP | 100Mbit/s",
        resource_prefix: "带宽 ☁ bw",
    },
    Service {
        code: "hws.service.type.rds",
        name: "Relational Database Service",
        rtype: "hws.resource.type.rds.vm",
        rname: "RDS instance",
        usage_type: "duration",
        unit: "CNY/hour",
        usage_measure: 4,
        spec: "rds.mysql.n1.large.2 | primary/standby",
        resource_prefix: "数据库 Ω primary",
    },
    Service {
        code: "hws.service.type.cdn",
        name: "Content Delivery Network",
        rtype: "hws.resource.type.cdn",
        rname: "CDN",
        usage_type: "95Peak",
        unit: "CNY/Mbit/s/month",
        usage_measure: 33,
        spec: "Mainland China | 95th percentile",
        resource_prefix: "cdn-加速-éé",
    },
];

pub const REGIONS: &[(&str, &str)] = &[
    ("cn-north-4", "CN North-Beijing4"),
    ("cn-east-3", "CN East-Shanghai1"),
    ("cn-south-1", "CN South-Guangzhou"),
    ("ap-southeast-1", "AP-Hong Kong"),
];

pub const PROJECTS: &[(&str, &str)] = &[
    ("0", "default"),
    ("3f2a9c1e-7b4d-4e0a-9d61-2c8e5b7a1f00", "数据平台"),
    ("8c6d2e4f-1a3b-4c5d-8e7f-9a0b1c2d3e4f", "web-shop"),
];

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
    pub region: (&'static str, &'static str),
    pub project: (&'static str, &'static str),
    pub charge_mode: i64,
    pub bill_type: i64,
    pub period_type: Option<i64>,
    pub resource_id: String,
    pub resource_name: String,
    pub bill_date: NaiveDate,
    pub trade_time: DateTime<Utc>,
    pub consume_time: DateTime<Utc>,
    pub usage: Decimal,
    pub unit_price: Decimal,
    pub official: Decimal,
    pub discount: Decimal,
    pub amount: Decimal,
    pub coupon: Decimal,
    pub cash: Decimal,
    pub credit: Decimal,
}

/// Summary class of a §10.2 bill type: 1 consumption, 2 refund, 3 adjustment.
pub fn summary_bill_type(bill_type: i64) -> i64 {
    match bill_type {
        4 | 20 | 24 | 100 => 2,
        9 | 16 | 101 | 102 => 3,
        _ => 1,
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
    pub amount: Decimal,
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

const MEMBER_NAMES: &[(&str, &str)] = &[
    ("finance-dept", "财务部"),
    ("rnd-team", "研发 Ω team"),
    ("marketing", "Marketing — 市场部"),
    ("ops-east", "运维 (east)"),
    ("data-lab", "データ lab"),
];

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
        let roll = tr.below(100);
        let (charge_mode, bill_type, period_type) = match roll {
            0..=59 => (3, 5, None),
            60..=74 => (1, 1, Some(20)),
            75..=84 => (1, 2, Some(20)),
            85..=89 => (1, 8, Some(19)),
            90..=93 => (1, 4, Some(20)),
            94..=96 => (10, 5, Some(25)),
            _ => (3, 9, None),
        };
        let resource_no = tr.below(40);
        let mut res_rng = Rng::new(&[self.seed, account as u64, service_idx as u64, resource_no, 0x9E]);
        let resource_id = res_rng.hex(32);
        let resource_name = format!("{}-{:02}", service.resource_prefix, resource_no);
        let bill_date = cycle.first_day() + Duration::days(i64::from(day));
        let trade_time = local_midnight_utc(bill_date) + Duration::seconds(tr.below(86_400) as i64);
        // Order ids are unique, as Huawei's are: the trade's own number, not a
        // random one (a random six digits repeat in a large month).
        let trade_id = if charge_mode == 1 {
            format!("CS{}{:06}", bill_date.format("%y%m%d"), trade_key % 1_000_000_000_000)
        } else {
            format!("BC{}", tr.hex(24))
        };
        let mut lr = Rng::new(&[self.seed, acct, trade_key, pos, 0x11E]);
        let usage = Decimal::new(lr.below(100_000_000) as i64 + 1, 4);
        let official_m = lr.below(50_000_000_000) as i64 + 1_000_000; // 0.01 .. 500.01 yuan, 8 dp
        let discount_m = official_m * (lr.below(31) as i64) / 100;
        // Refunds and compensations give money back: negative amounts, as
        // Huawei signs every amount returned to the customer.
        let sign = if summary_bill_type(bill_type) == 2 || bill_type == 9 {
            -1
        } else {
            1
        };
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
        let unit_price = if usage.is_zero() {
            Decimal::ZERO
        } else {
            (official / usage).round_dp_with_strategy(8, RoundingStrategy::MidpointAwayFromZero)
        };
        Line {
            account,
            cycle,
            index,
            id: format!("{}-{:04}", trade_id, pos),
            trade_id,
            service,
            region,
            project,
            charge_mode,
            bill_type,
            period_type,
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

    /// The monthly summary of one account: exact sums of its lines per group.
    pub fn summary(&self, account: usize, cycle: BillCycle) -> std::sync::Arc<Vec<SumRow>> {
        let key = (account, cycle, self.extra_lines(account, cycle));
        if let Some(s) = self.sums.lock().expect("ledger lock").get(&key) {
            return s.clone();
        }
        let mut groups: BTreeMap<(usize, i64, i64), SumRow> = BTreeMap::new();
        for i in 0..self.line_count(account, cycle) {
            let l = self.line(account, cycle, i);
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
            g.official += l.official;
            g.discount += l.discount;
            g.amount += l.amount;
            g.coupon += l.coupon;
            g.cash += l.cash;
            g.credit += l.credit;
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
    fn summary_equals_the_sum_of_lines() {
        let l = ledger();
        let c: BillCycle = "2026-10".parse().unwrap();
        let total: Decimal = (0..l.line_count(1, c)).map(|i| l.line(1, c, i).amount).sum();
        let summed: Decimal = l.summary(1, c).iter().map(|r| r.amount).sum();
        assert_eq!(total, summed);
        assert!(total.scale() <= 8);
    }
}
