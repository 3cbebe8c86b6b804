//! The report's figures, computed by polars over the lake. Sums stay
//! `Decimal(38,10)` end to end; nothing passes through a float.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use polars::prelude::*;
use rust_decimal::Decimal;

use super::{Breakdown, Dimension, Line, Options, Report};
use crate::cycle::BillCycle;
use crate::sink::Layout;
use crate::sink::manifest::{Finality, Manifest, currency_of, totals_by_currency};
use crate::source::datasets::consumption_records;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no consumption_records in {0}: run a backfill first")]
    NoData(String),
    #[error("{0}")]
    Manifest(#[from] crate::sink::SinkError),
    #[error("{cycle} is not in {out} (cycles held: {held})")]
    NoCycle { cycle: String, out: String, held: String },
    #[error("reading the Parquet files: {0}")]
    Polars(#[from] PolarsError),
    #[error("a sum does not fit an exact decimal: {0}")]
    Overflow(String),
    #[error("{cycle} holds no amounts in {currency} (its currencies: {held})")]
    NoCurrency {
        currency: String,
        cycle: String,
        held: String,
    },
}

const AMOUNT: &str = "amount";

/// Builds the report of `o.cycle` (default: the latest cycle held): one per
/// currency the cycle's files were answered in (or `o.currency` alone), never
/// a sum across two.
pub fn build(o: &Options<'_>) -> Result<Vec<Report>, ReportError> {
    let layout = Layout::new(o.out);
    let spec = &consumption_records::SPEC;
    let manifest = Manifest::load(&layout.dataset_dir(spec.name), spec.name, spec.version)?
        .ok_or_else(|| ReportError::NoData(o.out.display().to_string()))?;
    let held: BTreeSet<BillCycle> = manifest.partitions.keys().filter_map(|c| c.parse().ok()).collect();
    let cycle = match o.cycle {
        Some(c) => c,
        None => *held
            .last()
            .ok_or_else(|| ReportError::NoData(o.out.display().to_string()))?,
    };
    let Some(partition) = manifest.partitions.get(&cycle.to_string()) else {
        return Err(ReportError::NoCycle {
            cycle: cycle.to_string(),
            out: o.out.display().to_string(),
            held: held.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "),
        });
    };
    // Paths as the scan reports them (the glob is absolute: `./out` and
    // `out` name the same files).
    let dir = layout
        .dataset_dir(spec.name)
        .canonicalize()
        .unwrap_or_else(|_| layout.dataset_dir(spec.name));
    let sole = manifest.sole_currency();
    let currency_of = |f: &crate::sink::manifest::FileEntry| currency_of(f, sole.as_deref());
    // Files per currency, this cycle and the one before it.
    let previous_cycle = cycle.pred();
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in [cycle, previous_cycle] {
        for f in manifest
            .partitions
            .get(&c.to_string())
            .iter()
            .flat_map(|p| p.files.values())
        {
            files
                .entry(currency_of(f))
                .or_default()
                .push(format!("{}/{}", dir.display(), f.path));
        }
    }
    let in_cycle: BTreeSet<String> = partition.files.values().map(currency_of).collect();
    let currencies: Vec<String> = match &o.currency {
        Some(c) if in_cycle.contains(c) => vec![c.clone()],
        Some(c) => {
            return Err(ReportError::NoCurrency {
                currency: c.clone(),
                cycle: cycle.to_string(),
                held: in_cycle.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        None => in_cycle.into_iter().collect(),
    };
    // Read and hashed once, whatever the number of currencies.
    let verify = match crate::verify::verify(o.out, Some(&BTreeSet::from([cycle]))) {
        Ok(v) if v.success() => format!(
            "verify: {} files intact, {} relations hold, {} warnings",
            v.files, v.relations, v.warnings
        ),
        Ok(v) => format!("verify: {} failures — run hcbill verify", v.failures),
        Err(e) => format!("verify: {e}"),
    };
    let shared = Held {
        manifest: &manifest,
        cycle,
        dir: &dir,
        sole: sole.as_deref(),
        verify: &verify,
    };
    let several = files.len() > 1;
    let mut reports = Vec::new();
    for currency in currencies {
        let only = several.then(|| files[&currency].as_slice());
        reports.push(build_one(o, &shared, &currency, only)?);
    }
    Ok(reports)
}

/// What every currency's report of a cycle shares.
struct Held<'a> {
    manifest: &'a Manifest,
    cycle: BillCycle,
    dir: &'a std::path::Path,
    sole: Option<&'a str>,
    verify: &'a str,
}

/// The report of one currency; `only`: the files in it, when the lake holds
/// others too.
fn build_one(o: &Options<'_>, h: &Held<'_>, currency: &str, only: Option<&[String]>) -> Result<Report, ReportError> {
    let (manifest, cycle, dir, sole) = (h.manifest, h.cycle, h.dir, h.sole);
    let partition = &manifest.partitions[&cycle.to_string()];
    let held: BTreeSet<BillCycle> = manifest
        .partitions
        .iter()
        .filter(|(_, p)| p.files.values().any(|f| currency_of(f, sole) == currency))
        .filter_map(|(c, _)| c.parse().ok())
        .collect();
    let previous_cycle = cycle.pred();
    let manifest_total = totals_by_currency(partition.files.values(), AMOUNT, sole)
        .remove(currency)
        .unwrap_or_default();
    let finality = match partition.finality {
        Finality::Final => format!("{cycle} is final (closed by Huawei)"),
        Finality::Provisional => format!("{cycle} is provisional: Huawei may still change it"),
    };
    let spec = &consumption_records::SPEC;
    let scan = scan(dir, only)?;
    let month = |c: BillCycle| scan.clone().filter(col(spec.partition_key).eq(lit(c.to_string())));
    let (cur, prev) = (month(cycle), month(previous_cycle));
    let has_prev = held.contains(&previous_cycle);

    let total = sum_all(cur.clone())?;
    let previous_total = if has_prev {
        sum_all(prev.clone())?
    } else {
        Decimal::ZERO
    };
    let lines = |d: Dimension| -> Result<Vec<Line>, ReportError> {
        let now = grouped(cur.clone(), d)?;
        let before = if has_prev {
            grouped(prev.clone(), d)?
        } else {
            Vec::new()
        };
        Ok(merge(now, before))
    };
    let mut breakdowns = Vec::new();
    for d in &o.by {
        let mut l = lines(*d)?;
        l.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.key.cmp(&b.key)));
        breakdowns.push(Breakdown { by: *d, lines: l });
    }
    let resources = lines(Dimension::Resource)?;
    let mut top_resources = resources.clone();
    top_resources.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.key.cmp(&b.key)));
    top_resources.truncate(o.top);
    let mut movers: Vec<Line> = if has_prev { resources } else { Vec::new() };
    movers.sort_by(|a, b| b.change().abs().cmp(&a.change().abs()).then(a.key.cmp(&b.key)));
    movers.truncate(o.top);
    let mut split = lines(Dimension::ChargeMode)?;
    split.sort_by_key(|l| std::cmp::Reverse(l.amount));
    Ok(super::Report {
        cycle,
        previous_cycle,
        currency: currency.to_string(),
        total,
        previous_total,
        manifest_total,
        breakdowns,
        top_resources,
        movers,
        daily: daily(cur)?,
        split,
        finality,
        verify: h.verify.to_string(),
    })
}

/// A lazy scan of a dataset's Hive-partitioned files (the partition stays
/// text); `only`: keep the rows of these files alone.
fn scan(dir: &std::path::Path, only: Option<&[String]>) -> Result<LazyFrame, ReportError> {
    let mut hive = HiveOptions::new_enabled();
    hive.try_parse_dates = false;
    let args = ScanArgsParquet {
        hive_options: hive,
        include_file_paths: only.map(|_| FILE.into()),
        ..Default::default()
    };
    let glob = format!("{}/**/*.parquet", dir.display());
    let lf = LazyFrame::scan_parquet(glob.as_str().into(), args)?;
    Ok(match only {
        None => lf,
        Some(paths) => {
            let keep = paths
                .iter()
                .map(|p| col(FILE).eq(lit(p.as_str())))
                .reduce(|a, b| a.or(b))
                .unwrap_or(lit(false));
            lf.filter(keep).drop(by_name([FILE], true, false))
        }
    })
}

/// The column the scan names each row's file in (when it must filter by file).
const FILE: &str = "__hcbill_file";

/// Exact decimals of a Decimal column (nulls as zero).
fn decimals(df: &DataFrame, name: &str) -> Result<Vec<Decimal>, ReportError> {
    let c = df.column(name)?.decimal()?;
    let scale = c.scale() as u32;
    let phys = c.physical();
    (0..phys.len())
        .map(|i| {
            Decimal::try_from_i128_with_scale(phys.get(i).unwrap_or(0), scale)
                .map(|d| d.normalize())
                .map_err(|e| ReportError::Overflow(e.to_string()))
        })
        .collect()
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<String>, ReportError> {
    let c = df.column(name)?.cast(&DataType::String)?;
    let s = c.str()?;
    Ok((0..s.len()).map(|i| s.get(i).unwrap_or("").to_string()).collect())
}

fn sum_all(lf: LazyFrame) -> Result<Decimal, ReportError> {
    let df = lf.select([col(AMOUNT).sum()]).collect()?;
    Ok(decimals(&df, AMOUNT)?.into_iter().next().unwrap_or_default())
}

/// (key, label, Σ amount) per value of a dimension.
fn grouped(lf: LazyFrame, d: Dimension) -> Result<Vec<(String, String, Decimal)>, ReportError> {
    let (key, label) = d.columns();
    let df = lf
        .group_by([col(key).cast(DataType::String).alias("key")])
        .agg([
            col(label).cast(DataType::String).first().alias("label"),
            col(AMOUNT).sum().alias(AMOUNT),
        ])
        .collect()?;
    let (keys, labels, amounts) = (strings(&df, "key")?, strings(&df, "label")?, decimals(&df, AMOUNT)?);
    Ok(keys
        .into_iter()
        .zip(labels)
        .zip(amounts)
        .map(|((k, l), a)| (k, l, a))
        .collect())
}

fn merge(now: Vec<(String, String, Decimal)>, before: Vec<(String, String, Decimal)>) -> Vec<Line> {
    let mut lines: BTreeMap<String, Line> = BTreeMap::new();
    for (k, l, a) in now {
        lines.insert(
            k.clone(),
            Line {
                label: if l.is_empty() { k.clone() } else { l },
                key: k,
                amount: a,
                previous: Decimal::ZERO,
            },
        );
    }
    let mut labels: HashMap<String, String> = HashMap::new();
    for (k, l, a) in before {
        labels.insert(k.clone(), l.clone());
        lines
            .entry(k.clone())
            .or_insert_with(|| Line {
                label: if l.is_empty() { k.clone() } else { l },
                key: k,
                amount: Decimal::ZERO,
                previous: Decimal::ZERO,
            })
            .previous = a;
    }
    lines.into_values().collect()
}

fn daily(lf: LazyFrame) -> Result<Vec<(NaiveDate, Decimal)>, ReportError> {
    let df = lf
        .group_by([col("bill_date").cast(DataType::String).alias("day")])
        .agg([col(AMOUNT).sum().alias(AMOUNT)])
        .collect()?;
    let mut out: Vec<(NaiveDate, Decimal)> = strings(&df, "day")?
        .into_iter()
        .zip(decimals(&df, AMOUNT)?)
        .filter_map(|(d, a)| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok().map(|d| (d, a)))
        .collect();
    out.sort();
    Ok(out)
}
