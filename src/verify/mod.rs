//! `hcbill verify`: can the lake be trusted? Two kinds of checks, read from
//! the manifests and the files' own bytes and footers (never by loading rows):
//!
//! * **Integrity** — every file's size, sha256 and schema against its manifest
//!   entry and the dataset's contract; no file the manifest does not name, no
//!   entry without its file.
//! * **Reconciliation** — per cycle and account, from the manifests' exact
//!   money totals, with relations that follow from the formulas the SDK models
//!   document (huaweicloudsdkbss 3.1.219), quoted where they are used:
//!   - BillSumRecordInfoV2.consume_amount: "应付金额=官网价-折扣金额-抹零金额"
//!     (consume = official − discount − truncated);
//!   - MonthlyBillRecord.official_amount: "official_amount =
//!     official_discount_amount + erase_amount + consume_amount";
//!   - NvlCostAnalysedBillDetail.consume_amount: "消费金额=期初已分摊金额+当月分摊金额+期末未分摊金额";
//!   - ListCustomerselfResourceRecordDetails: "资源维度的8位小数原始消费金额，实际从账户扣费时按2位小数进行扣费":
//!     resource-level amounts carry 8 decimals, what is charged is rounded to
//!     cents per transaction, and the sub-cent part is the transaction's 抹零.
//!
//!   Both consume amounts (summary and transactions) are net of 抹零, so they
//!   compare with each other as they are, and with the resource-level records
//!   only with 抹零 added back. Relations across transactions hold within half
//!   a cent per transaction; a formula within one dataset holds exactly. A
//!   relation between a dataset and one made from the same pages (FOCUS)
//!   checks the transform, not the data, and says so.
//!
//! Totals hide small losses (their bound grows with the month), so the
//! transactions are also matched *trade by trade* with both resource-level
//! APIs (`trades`): each trade_id on both sides, within one cent.
//!
//! A broken file or a mismatch in a final cycle fails (exit 1); in a
//! provisional cycle, whose data Huawei may still change, it only warns.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::Serialize;

use crate::cycle::BillCycle;
use crate::sink::Layout;
use crate::sink::manifest::{FileEntry, Finality, Manifest};
use crate::sink::parquet::file_sha256;
use crate::source::datasets::{self, DatasetSpec};

mod linked;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0} is not an hcbill output directory (no dataset manifest in it)")]
    NotAnOutput(String),
    #[error("reading {0}")]
    Read(#[from] crate::sink::output::OutputError),
}

/// Verifies the lake of `out`, local or in a bucket (read from a local copy
/// of its manifests and of the files of `cycles`, one file at a time).
pub async fn verify_output(
    out: &crate::sink::output::Output,
    cycles: Option<&BTreeSet<BillCycle>>,
) -> Result<VerifyReport, VerifyError> {
    use crate::sink::mirror::{self, Data};
    let data = cycles.map_or(Data::All, Data::Cycles);
    let readable = mirror::readable(out, datasets::ALL, data).await?;
    let url = out.url();
    let local = readable.dir.display().to_string();
    let mut report = verify(&readable.dir, cycles).map_err(|e| match e {
        VerifyError::NotAnOutput(_) => VerifyError::NotAnOutput(url.clone()),
        e => e,
    })?;
    if out.local_dir().is_none() {
        report.out = url.clone();
        for f in &mut report.findings {
            f.detail = f.detail.replace(&local, &url);
        }
    }
    Ok(report)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Holds to the last decimal.
    Exact,
    /// Holds within the documented rounding (`bound`).
    WithinRounding,
    /// Integrity checks passed.
    Ok,
    /// Fails: a mismatch, or a broken, missing or unknown file.
    Failed,
    /// Fails, but in a provisional cycle: a warning.
    Warning,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// `integrity` or the relation's name.
    pub check: String,
    pub dataset: String,
    pub bill_cycle: String,
    pub account: String,
    pub verdict: Verdict,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub right: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound: Option<String>,
    /// The documented formula a relation follows from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// Both sides come from the same pages: the check proves the transform only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub same_pages: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub out: String,
    pub files: usize,
    pub bytes: u64,
    pub relations: usize,
    /// Relations not checked because a manifest was written before hcbill
    /// totalled a column they need (the next extraction of the file adds it).
    pub not_checked: usize,
    pub failures: usize,
    pub warnings: usize,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    pub fn success(&self) -> bool {
        self.failures == 0
    }

    /// One line per problem and per relation, then the verdict.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<50} {:<22} {:<9} {:<34} {:<16} detail",
            "check", "dataset", "cycle", "account", "verdict"
        );
        for f in self
            .findings
            .iter()
            .filter(|f| f.check != "integrity" || f.verdict != Verdict::Ok)
        {
            // Every relation says how far apart its sides may be.
            let bound = match (&f.bound, f.check == "integrity") {
                (_, true) => String::new(),
                (Some(b), false) => format!(" [bound {b}]"),
                (None, false) => " [bound exact]".to_string(),
            };
            let _ = writeln!(
                s,
                "{:<50} {:<22} {:<9} {:<34} {:<16} {}{}{bound}",
                f.check,
                f.dataset,
                f.bill_cycle,
                f.account,
                format!("{:?}", f.verdict).to_lowercase(),
                f.detail,
                if f.same_pages {
                    " (same pages: checks the transform only)"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            s,
            "verify {}: {} files ({} bytes) checked, {} relations{}, {} failures, {} warnings",
            self.out,
            self.files,
            self.bytes,
            self.relations,
            if self.not_checked > 0 {
                format!(
                    " ({} not checked: manifests written before a column was totalled)",
                    self.not_checked
                )
            } else {
                String::new()
            },
            self.failures,
            self.warnings
        );
        s
    }
}

/// A relation between two datasets' totals (or two sides of one dataset's
/// documented formula) for one cycle and account.
struct Relation {
    name: &'static str,
    /// The documented formula it follows from.
    formula: &'static str,
    left: (&'static str, &'static [&'static str]),
    right: (&'static str, &'static [&'static str]),
    /// The rounding allowed per row of a dataset, or exact.
    rounding: Option<Rounding>,
    /// Both sides come from the same API pages: the relation checks hcbill's
    /// transform, not the data.
    same_pages: bool,
}

/// How far a relation may be off: `per_row` (mantissa, scale) per row of `of`.
#[derive(Clone, Copy)]
struct Rounding {
    of: &'static str,
    per_row: (i64, u32),
    what: &'static str,
}

/// Charged amounts are rounded to cents once per transaction.
const HALF_A_CENT_PER_TRANSACTION: Rounding = Rounding {
    of: "transaction_records",
    per_row: (5, 3),
    what: "half a cent × transactions",
};

/// The cost center splits a charge into 8-decimal shares: a row's past,
/// current and future parts may each be off by the last decimal.
const EIGHTH_DECIMAL_PER_BREAKDOWN_ROW: Rounding = Rounding {
    of: "amortized_costs",
    per_row: (3, 8),
    what: "three units of the 8th decimal × breakdown rows",
};

/// The relations checked (see the module doc for the formulas).
const RELATIONS: &[Relation] = &[
    Relation {
        name: "monthly sum: consume = official − discount − 抹零",
        formula: "BillSumRecordInfoV2: 应付金额=官网价-折扣金额-抹零金额",
        left: (
            "bill_summary",
            &["consume_amount", "official_discount_amount", "truncated_amount"],
        ),
        right: ("bill_summary", &["official_amount"]),
        rounding: None,
        same_pages: false,
    },
    Relation {
        name: "transactions: official = discount + 抹零 + consume",
        formula: "MonthlyBillRecord: official_amount = official_discount_amount + erase_amount + consume_amount",
        left: ("transaction_records", &["official_amount"]),
        right: (
            "transaction_records",
            &["official_discount_amount", "erase_amount", "consume_amount"],
        ),
        rounding: None,
        same_pages: false,
    },
    Relation {
        name: "amortised: consume = past + current + future",
        formula: "NvlCostAnalysedBillDetail: 消费金额=期初已分摊金额+当月分摊金额+期末未分摊金额",
        left: ("amortized_costs", &["consume_amount"]),
        right: (
            "amortized_costs",
            &[
                "past_months_amortized_amount",
                "current_month_amortized_amount",
                "future_months_amortized_amount",
            ],
        ),
        rounding: Some(EIGHTH_DECIMAL_PER_BREAKDOWN_ROW),
        same_pages: false,
    },
    Relation {
        name: "monthly sum = transactions",
        formula: "both consume amounts are net of 抹零 (summary: −抹零金额; transactions: official = discount + erase + consume)",
        left: ("bill_summary", &["consume_amount"]),
        right: ("transaction_records", &["consume_amount"]),
        rounding: Some(HALF_A_CENT_PER_TRANSACTION),
        same_pages: false,
    },
    Relation {
        name: "monthly 抹零 = transactions 抹零",
        formula: "BillSumRecordInfoV2.truncated_amount and MonthlyBillRecord.erase_amount are both 抹零金额",
        left: ("bill_summary", &["truncated_amount"]),
        right: ("transaction_records", &["erase_amount"]),
        rounding: Some(HALF_A_CENT_PER_TRANSACTION),
        same_pages: false,
    },
    Relation {
        name: "transactions = consumption",
        formula: "8-decimal resource amounts are charged in cents per transaction: consume + 抹零 = Σ amount",
        left: ("transaction_records", &["consume_amount", "erase_amount"]),
        right: ("consumption_records", &["amount"]),
        rounding: Some(HALF_A_CENT_PER_TRANSACTION),
        same_pages: false,
    },
    Relation {
        name: "transactions = resource bill details",
        formula: "8-decimal resource amounts are charged in cents per transaction: consume + 抹零 = Σ consume_amount",
        left: ("transaction_records", &["consume_amount", "erase_amount"]),
        right: ("resource_bill_details", &["consume_amount"]),
        rounding: Some(HALF_A_CENT_PER_TRANSACTION),
        same_pages: false,
    },
    Relation {
        name: "focus BilledCost = consumption",
        formula: "FOCUS BilledCost is each record's amount (the same pages)",
        left: ("focus", &["BilledCost"]),
        right: ("consumption_records", &["amount"]),
        rounding: None,
        same_pages: true,
    },
    Relation {
        name: "focus EffectiveCost = amortised month",
        formula: "FOCUS EffectiveCost of a prepaid order is the cost center's month (the same breakdown pages)",
        left: ("focus", &["EffectiveCost"]),
        right: ("amortized_costs", &["current_month_amortized_amount"]),
        rounding: None,
        same_pages: true,
    },
];

/// Verifies the lake at `out`, for `cycles` (every cycle when `None`).
pub fn verify(out: &Path, cycles: Option<&BTreeSet<BillCycle>>) -> Result<VerifyReport, VerifyError> {
    let layout = Layout::new(out);
    let mut manifests: BTreeMap<&'static str, Manifest> = BTreeMap::new();
    let mut findings = Vec::new();
    for spec in datasets::ALL {
        match Manifest::load(&layout.dataset_dir(spec.name), spec.name, spec.version) {
            Ok(None) => {}
            Ok(Some(m)) => {
                manifests.insert(spec.name, m);
            }
            Err(e) => findings.push(finding("integrity", spec.name, "", "", Verdict::Failed, e.to_string())),
        }
    }
    if manifests.is_empty() && findings.is_empty() {
        return Err(VerifyError::NotAnOutput(out.display().to_string()));
    }
    let wanted = |cycle: &str| cycles.is_none_or(|c| cycle.parse::<BillCycle>().is_ok_and(|x| c.contains(&x)));
    let (mut files, mut bytes) = (0, 0);
    for (name, m) in &manifests {
        let spec = datasets::by_name(name).expect("a catalogue dataset");
        let dir = layout.dataset_dir(name);
        for p in m.partitions.values().filter(|p| wanted(&p.bill_cycle)) {
            for (account, entry) in &p.files {
                files += 1;
                bytes += entry.bytes;
                let (verdict, detail) = match check_file(spec, &dir.join(&entry.path), entry) {
                    Ok(()) => (Verdict::Ok, "size, sha256 and schema as recorded".to_string()),
                    Err(why) => (Verdict::Failed, why),
                };
                findings.push(finding("integrity", name, &p.bill_cycle, account, verdict, detail));
            }
        }
        for extra in unknown_files(&dir, m) {
            let cycle = extra
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|d| d.to_str())
                .and_then(|d| d.strip_prefix(&format!("{}=", spec.partition_key)))
                .unwrap_or("")
                .to_string();
            if wanted(&cycle) || cycle.is_empty() {
                findings.push(finding(
                    "integrity",
                    name,
                    &cycle,
                    "",
                    Verdict::Failed,
                    format!("{} is not in the manifest", extra.display()),
                ));
            }
        }
    }
    let (mut relations, mut not_checked) = (0, 0);
    for r in RELATIONS {
        let (Some(lm), Some(rm)) = (manifests.get(r.left.0), manifests.get(r.right.0)) else {
            continue;
        };
        for (cycle, lp) in lm.partitions.iter().filter(|(c, _)| wanted(c)) {
            let Some(rp) = rm.partitions.get(cycle) else { continue };
            for (account, le) in &lp.files {
                let Some(re) = rp.files.get(account) else { continue };
                // A FOCUS file made without amortisation is not the amortised month.
                if r.right.0 == "amortized_costs" && r.left.0 != r.right.0 && !le.notes.is_empty() {
                    continue;
                }
                if total(le, r.left.1).is_none() || total(re, r.right.1).is_none() {
                    not_checked += 1;
                    continue;
                }
                relations += 1;
                findings.push(reconcile(r, cycle, account, le, re, &manifests));
            }
        }
    }
    // Trade by trade: transactions against the records carrying their trade_id.
    for pair in linked::PAIRS {
        let (Some(tm), Some(rm)) = (manifests.get("transaction_records"), manifests.get(pair.records)) else {
            continue;
        };
        for (cycle, account, te, re) in same_units(tm, rm, &wanted) {
            let final_cycle = te.finality == Finality::Final && re.finality == Finality::Final;
            relations += 1;
            findings.push(linked::reconcile(
                pair,
                cycle,
                account,
                &layout.dataset_dir("transaction_records").join(&te.path),
                &layout.dataset_dir(pair.records).join(&re.path),
                final_cycle,
            ));
        }
    }
    // Group by group: the monthly summary against the transactions.
    if let (Some(sm), Some(tm)) = (manifests.get("bill_summary"), manifests.get("transaction_records")) {
        for (cycle, account, se, te) in same_units(sm, tm, &wanted) {
            let final_cycle = se.finality == Finality::Final && te.finality == Finality::Final;
            relations += 1;
            findings.push(linked::reconcile_groups(
                cycle,
                account,
                &layout.dataset_dir("bill_summary").join(&se.path),
                &layout.dataset_dir("transaction_records").join(&te.path),
                final_cycle,
            ));
        }
    }
    // Order by order: the cost center's breakdown against the purchases, an
    // account at a time, reading only the charge cycles its orders name.
    if let (Some(am), Some(tm)) = (manifests.get("amortized_costs"), manifests.get("transaction_records")) {
        let accounts: BTreeSet<&String> = am.partitions.values().flat_map(|p| p.files.keys()).collect();
        for account in accounts {
            let files: BTreeMap<String, PathBuf> = tm
                .partitions
                .iter()
                .filter_map(|(c, p)| p.files.get(account).map(|e| (c.clone(), e)))
                .map(|(c, e)| (c, layout.dataset_dir("transaction_records").join(&e.path)))
                // A bucket's local copy holds the cycles verified only.
                .filter(|(_, p)| p.exists())
                .collect();
            let mut purchases = linked::Purchases::new(files);
            for (cycle, ap) in am.partitions.iter().filter(|(c, _)| wanted(c)) {
                let Some(ae) = ap.files.get(account) else { continue };
                relations += 1;
                findings.push(linked::reconcile_orders(
                    cycle,
                    account,
                    &layout.dataset_dir("amortized_costs").join(&ae.path),
                    &mut purchases,
                    ae.finality == Finality::Final,
                ));
            }
        }
    }
    let failures = findings.iter().filter(|f| f.verdict == Verdict::Failed).count();
    let warnings = findings.iter().filter(|f| f.verdict == Verdict::Warning).count();
    Ok(VerifyReport {
        out: out.display().to_string(),
        files,
        bytes,
        relations,
        not_checked,
        failures,
        warnings,
        findings,
    })
}

fn finding(check: &str, dataset: &str, cycle: &str, account: &str, verdict: Verdict, detail: String) -> Finding {
    Finding {
        check: check.to_string(),
        dataset: dataset.to_string(),
        bill_cycle: cycle.to_string(),
        account: account.to_string(),
        verdict,
        detail,
        left: None,
        right: None,
        difference: None,
        bound: None,
        formula: None,
        same_pages: false,
    }
}

/// The files two manifests hold for the same cycle and account, in the cycles
/// `wanted`: (cycle, account, left file, right file).
fn same_units<'a>(
    left: &'a Manifest,
    right: &'a Manifest,
    wanted: &'a impl Fn(&str) -> bool,
) -> impl Iterator<Item = (&'a str, &'a str, &'a FileEntry, &'a FileEntry)> + 'a {
    left.partitions
        .iter()
        .filter(move |(c, _)| wanted(c))
        .filter_map(move |(c, lp)| right.partitions.get(c).map(|rp| (c, lp, rp)))
        .flat_map(|(c, lp, rp)| {
            lp.files
                .iter()
                .filter_map(move |(a, le)| rp.files.get(a).map(|re| (c.as_str(), a.as_str(), le, re)))
        })
}

/// Size, then sha256, then the footer's schema against the contract.
fn check_file(spec: &'static DatasetSpec, path: &Path, entry: &FileEntry) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|_| format!("{} is missing", entry.path))?;
    if meta.len() != entry.bytes {
        return Err(format!(
            "{}: {} bytes, the manifest recorded {}",
            entry.path,
            meta.len(),
            entry.bytes
        ));
    }
    let (_, sha) = file_sha256(path).map_err(|e| e.to_string())?;
    if sha != entry.sha256 {
        return Err(format!("{}: sha256 differs from the manifest's", entry.path));
    }
    // A file is checked against the edition it was written as (FOCUS 1.2 or 1.3).
    if let Some(spec) = spec.at_version(entry.schema_version) {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| format!("{}: not a readable Parquet file: {e}", entry.path))?;
        let want = spec.schema();
        let have = reader.schema();
        let same = have.fields().len() == want.fields().len()
            && have.fields().iter().zip(want.fields()).all(|(h, w)| {
                h.name() == w.name() && h.data_type() == w.data_type() && h.is_nullable() == w.is_nullable()
            });
        if !same {
            return Err(format!(
                "{}: its schema differs from schemas/{}.json",
                entry.path, spec.name
            ));
        }
    }
    Ok(())
}

/// Data files under a dataset directory that its manifest does not name.
fn unknown_files(dir: &Path, m: &Manifest) -> Vec<PathBuf> {
    let known: BTreeSet<PathBuf> = m
        .partitions
        .values()
        .flat_map(|p| p.files.values())
        .map(|f| dir.join(&f.path))
        .collect();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() && name == crate::sink::manifest::SHARDS {
            continue;
        }
        if p.is_dir() {
            for f in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                let fname = f.file_name().to_string_lossy().to_string();
                if !known.contains(&f.path()) && !fname.starts_with('.') {
                    out.push(f.path());
                }
            }
        } else if !name.starts_with('_') && !name.starts_with('.') {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The sum of `columns`' totals; `None` unless every one is recorded (a
/// manifest written before a column was totalled is not checked on it).
fn total(entry: &FileEntry, columns: &[&str]) -> Option<Decimal> {
    let mut sum = Decimal::ZERO;
    for c in columns {
        sum = sum.checked_add(entry.money_totals.get(*c)?.parse().ok()?)?;
    }
    Some(sum)
}

fn reconcile(
    r: &Relation,
    cycle: &str,
    account: &str,
    le: &FileEntry,
    re: &FileEntry,
    manifests: &BTreeMap<&'static str, Manifest>,
) -> Finding {
    let mut f = finding(r.name, r.left.0, cycle, account, Verdict::Exact, String::new());
    let (Some(l), Some(rt)) = (total(le, r.left.1), total(re, r.right.1)) else {
        f.verdict = Verdict::Failed;
        f.detail = "a money total is missing from a manifest".into();
        return f;
    };
    f.formula = Some(r.formula.to_string());
    f.same_pages = r.same_pages;
    let diff = l - rt;
    let rows = r.rounding.map(|d| {
        manifests
            .get(d.of)
            .and_then(|m| m.file(cycle, account))
            .map_or(0, |e| e.rows)
    });
    let bound = r
        .rounding
        .zip(rows)
        .map(|(d, n)| Decimal::new(d.per_row.0, d.per_row.1) * Decimal::from(n));
    f.left = Some(l.normalize().to_string());
    f.right = Some(rt.normalize().to_string());
    f.difference = Some(diff.normalize().to_string());
    f.bound = bound.map(|b| b.normalize().to_string());
    let final_cycle = le.finality == Finality::Final && re.finality == Finality::Final;
    (f.verdict, f.detail) = if diff.is_zero() {
        (Verdict::Exact, format!("{} = {}", l.normalize(), rt.normalize()))
    } else if let Some(b) = bound.filter(|b| diff.abs() <= *b) {
        (
            Verdict::WithinRounding,
            format!(
                "differs by {} within the bound {} ({}: {})",
                diff.normalize(),
                b.normalize(),
                r.rounding.map_or("", |d| d.what),
                rows.unwrap_or(0)
            ),
        )
    } else {
        (
            if final_cycle { Verdict::Failed } else { Verdict::Warning },
            format!(
                "{} vs {}: differs by {}{}{}",
                l.normalize(),
                rt.normalize(),
                diff.normalize(),
                bound.map_or(String::new(), |b| format!(
                    ", more than the rounding bound {}",
                    b.normalize()
                )),
                if final_cycle {
                    ""
                } else {
                    " (provisional cycle: a warning)"
                }
            ),
        )
    };
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(totals: &[(&str, &str)], rows: u64) -> FileEntry {
        FileEntry {
            path: "p".into(),
            rows,
            bytes: 0,
            sha256: String::new(),
            content_digest: String::new(),
            money_totals: totals.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            schema_version: 1,
            query_digest: String::new(),
            finality: Finality::Final,
            extracted_at: chrono::Utc::now(),
            run_id: String::new(),
            notes: Vec::new(),
            currency: None,
            e_tag: None,
            checked_by: None,
        }
    }

    #[test]
    fn relations_are_exact_within_rounding_or_mismatched() {
        let mut tx = Manifest::new("transaction_records", 1);
        tx.record(
            "2026-09",
            "self",
            chrono::Utc::now(),
            entry(&[("consume_amount", "10.00"), ("erase_amount", "0")], 4),
        );
        let manifests = BTreeMap::from([("transaction_records", tx)]);
        let r = RELATIONS
            .iter()
            .find(|r| r.name == "transactions = consumption")
            .unwrap();
        let consumption = |v: &str| entry(&[("amount", v)], 9);
        let t = manifests["transaction_records"]
            .file("2026-09", "self")
            .unwrap()
            .clone();
        let f = reconcile(r, "2026-09", "self", &t, &consumption("10"), &manifests);
        assert_eq!(f.verdict, Verdict::Exact);
        let f = reconcile(r, "2026-09", "self", &t, &consumption("9.98000001"), &manifests);
        assert_eq!(f.verdict, Verdict::WithinRounding, "{}", f.detail);
        assert_eq!(f.bound.as_deref(), Some("0.02"));
        let f = reconcile(r, "2026-09", "self", &t, &consumption("9.97"), &manifests);
        assert_eq!(f.verdict, Verdict::Failed, "{}", f.detail);
        assert_eq!(f.difference.as_deref(), Some("0.03"));
    }

    /// Both consume amounts are net of 抹零: a faithful copy with non-zero
    /// 抹零 passes every relation, and the formulas within each dataset hold.
    #[test]
    fn a_faithful_copy_with_erase_passes() {
        let mut tx = Manifest::new("transaction_records", 1);
        let t = entry(
            &[
                ("consume_amount", "2873.05"),
                ("erase_amount", "1.25"),
                ("official_amount", "3000.00"),
                ("official_discount_amount", "125.70"),
            ],
            4,
        );
        tx.record("2026-09", "self", chrono::Utc::now(), t.clone());
        let manifests = BTreeMap::from([("transaction_records", tx)]);
        let sum = entry(
            &[
                ("consume_amount", "2873.05"),
                ("truncated_amount", "1.25"),
                ("official_amount", "3000.00"),
                ("official_discount_amount", "125.70"),
            ],
            12,
        );
        let records = entry(&[("amount", "2874.30")], 900);
        let check = |name: &str, l: &FileEntry, r: &FileEntry| {
            let rel = RELATIONS.iter().find(|x| x.name == name).unwrap();
            reconcile(rel, "2026-09", "self", l, r, &manifests)
        };
        for (name, l, r) in [
            ("monthly sum = transactions", &sum, &t),
            ("monthly 抹零 = transactions 抹零", &sum, &t),
            ("monthly sum: consume = official − discount − 抹零", &sum, &sum),
            ("transactions: official = discount + 抹零 + consume", &t, &t),
            ("transactions = consumption", &t, &records),
        ] {
            let f = check(name, l, r);
            assert_eq!(f.verdict, Verdict::Exact, "{name}: {}", f.detail);
            assert!(f.formula.is_some());
        }
        // A lost 抹零 on either side is found.
        let short = entry(&[("amount", "2873.05")], 900);
        assert_eq!(check("transactions = consumption", &t, &short).verdict, Verdict::Failed);
        // A manifest written before a column was totalled is not checked on it.
        assert_eq!(
            total(
                &entry(&[("consume_amount", "1")], 1),
                &["consume_amount", "erase_amount"]
            ),
            None
        );
    }
}
