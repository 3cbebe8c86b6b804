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
    let dir = layout
        .dataset_dir(spec.name)
        .canonicalize()
        .unwrap_or_else(|_| layout.dataset_dir(spec.name));
    let sole = manifest.sole_currency();
    let currency_of = |f: &crate::sink::manifest::FileEntry| currency_of(f, sole.as_deref());
    // Files per currency, this cycle and the one before it.
    let previous_cycle = cycle.pred();
    // The files the manifest names, not a glob: a file published but not yet
    // recorded (a crash between the two) is not counted.
    let mut files: BTreeMap<String, Vec<(BillCycle, String)>> = BTreeMap::new();
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
                .push((c, format!("{}/{}", dir.display(), f.path)));
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
    let checked = crate::verify::verify(o.out, Some(&BTreeSet::from([cycle])));
    let verify = match &checked {
        Ok(v) if v.success() => format!(
            "verify: {} files intact, {} relations hold, {} warnings",
            v.files, v.relations, v.warnings
        ),
        Ok(v) => format!("verify: {} failures — run hcbill verify", v.failures),
        Err(e) => format!("verify: {e}"),
    };
    // What does not reconcile, said so a chat message can quote it.
    let unmatched: Vec<String> = checked
        .iter()
        .flat_map(|v| &v.findings)
        .filter(|f| f.check != "integrity")
        .filter(|f| {
            matches!(
                f.verdict,
                crate::verify::Verdict::Failed | crate::verify::Verdict::Warning
            )
        })
        .map(|f| format!("{} ({} {}): {}", f.check, f.bill_cycle, f.account, f.detail))
        .collect();
    let shared = Held {
        manifest: &manifest,
        cycle,
        sole: sole.as_deref(),
        verify: &verify,
        unmatched: &unmatched,
    };
    let mut reports = Vec::new();
    for currency in currencies {
        reports.push(build_one(o, &shared, &currency, &files[&currency])?);
    }
    Ok(reports)
}

/// What every currency's report of a cycle shares.
struct Held<'a> {
    manifest: &'a Manifest,
    cycle: BillCycle,
    sole: Option<&'a str>,
    verify: &'a str,
    unmatched: &'a [String],
}

/// The report of one currency, from its files of the cycle and the one before.
fn build_one(
    o: &Options<'_>,
    h: &Held<'_>,
    currency: &str,
    files: &[(BillCycle, String)],
) -> Result<Report, ReportError> {
    let (manifest, cycle, sole) = (h.manifest, h.cycle, h.sole);
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
    let has_prev = held.contains(&previous_cycle);
    let mut dims: Vec<Dimension> = Vec::new();
    for d in o.by.iter().copied().chain([Dimension::Resource, Dimension::ChargeMode]) {
        if !dims.contains(&d) {
            dims.push(d);
        }
    }
    let f = figures(scan(files)?, cycle, previous_cycle, &dims)?;
    // Without the previous month in this currency, nothing is compared with it.
    let lines = |d: Dimension| -> Vec<Line> {
        f.lines
            .get(d.name())
            .into_iter()
            .flatten()
            .filter(|l| has_prev || !l.amount.is_zero() || l.previous.is_zero())
            .map(|l| Line {
                previous: if has_prev { l.previous } else { Decimal::ZERO },
                ..l.clone()
            })
            .collect()
    };
    let total = f.total;
    let previous_total = if has_prev { f.previous_total } else { Decimal::ZERO };
    let mut breakdowns = Vec::new();
    for d in &o.by {
        let mut l = lines(*d);
        l.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.key.cmp(&b.key)));
        breakdowns.push(Breakdown { by: *d, lines: l });
    }
    let resources = lines(Dimension::Resource);
    let mut top_resources = resources.clone();
    top_resources.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.key.cmp(&b.key)));
    top_resources.truncate(o.top);
    let mut movers: Vec<Line> = if has_prev { resources } else { Vec::new() };
    movers.sort_by(|a, b| b.change().abs().cmp(&a.change().abs()).then(a.key.cmp(&b.key)));
    movers.truncate(o.top);
    let mut split = lines(Dimension::ChargeMode);
    split.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.key.cmp(&b.key)));
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
        daily: f.daily,
        split,
        finality,
        verify: h.verify.to_string(),
        unmatched: h.unmatched.to_vec(),
    })
}

/// One lazy scan of exactly these files, each row tagged with its file's
/// cycle (from the manifest, not parsed from a path).
fn scan(files: &[(BillCycle, String)]) -> Result<LazyFrame, ReportError> {
    let mut by_cycle: BTreeMap<BillCycle, Vec<PlRefPath>> = BTreeMap::new();
    for (c, path) in files {
        by_cycle.entry(*c).or_default().push(PlRefPath::from(path.as_str()));
    }
    let frames = by_cycle
        .into_iter()
        .map(|(c, paths)| {
            let lf = LazyFrame::scan_parquet_files(paths.into_iter().collect(), ScanArgsParquet::default())?;
            Ok(lf.with_column(lit(c.to_string()).alias(CYCLE)))
        })
        .collect::<Result<Vec<_>, ReportError>>()?;
    Ok(concat(frames, UnionArgs::default())?)
}

/// The column the scan names each row's cycle in.
const CYCLE: &str = "__hcbill_cycle";

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

/// Every figure of one currency's report.
struct Figures {
    total: Decimal,
    previous_total: Decimal,
    /// Per dimension name: a line per key, with both months' sums.
    lines: HashMap<&'static str, Vec<Line>>,
    daily: Vec<(NaiveDate, Decimal)>,
}

/// Every figure from one pass over the files: the two months' rows are
/// scanned once (a cached frame), and each aggregation is a branch of one
/// union collected once. Both months are summed in the same group-by, so a
/// key of either month has its line (no merge by hand).
fn figures(rows: LazyFrame, cycle: BillCycle, previous: BillCycle, dims: &[Dimension]) -> Result<Figures, ReportError> {
    let (now_s, before_s) = (cycle.to_string(), previous.to_string());
    let key = CYCLE;
    let rows = rows
        .filter(col(key).eq(lit(now_s.clone())).or(col(key).eq(lit(before_s.clone()))))
        .cache();
    let now = || col(AMOUNT).filter(col(key).eq(lit(now_s.clone()))).sum().alias("now");
    let before = || {
        col(AMOUNT)
            .filter(col(key).eq(lit(before_s.clone())))
            .sum()
            .alias("before")
    };
    let shape = |what: &str| {
        [
            lit(what.to_string()).alias("what"),
            col("key"),
            col("label"),
            col("now"),
            col("before"),
        ]
    };
    let mut parts = vec![
        rows.clone()
            .select([lit("").alias("key"), lit("").alias("label"), now(), before()])
            .select(shape("total")),
    ];
    for d in dims {
        let (k, l) = d.columns();
        parts.push(
            rows.clone()
                .group_by([col(k).cast(DataType::String).alias("key")])
                .agg([
                    // This month's name first: a renamed resource shows its new name.
                    coalesce(&[
                        col(l)
                            .filter(col(key).eq(lit(now_s.clone())))
                            .cast(DataType::String)
                            .drop_nulls()
                            .first(),
                        col(l).cast(DataType::String).drop_nulls().first(),
                    ])
                    .alias("label"),
                    now(),
                    before(),
                ])
                .select(shape(d.name())),
        );
    }
    // Days of the reported month's rows (a row may be dated in the month before).
    parts.push(
        rows.clone()
            .filter(col(key).eq(lit(now_s.clone())))
            .group_by([col("bill_date").cast(DataType::String).alias("key")])
            .agg([lit("").alias("label"), now(), before()])
            .select(shape("daily")),
    );
    let df = concat(parts, UnionArgs::default())?.collect()?;
    let (whats, keys, labels) = (strings(&df, "what")?, strings(&df, "key")?, strings(&df, "label")?);
    let (nows, befores) = (decimals(&df, "now")?, decimals(&df, "before")?);
    let mut f = Figures {
        total: Decimal::ZERO,
        previous_total: Decimal::ZERO,
        lines: HashMap::new(),
        daily: Vec::new(),
    };
    for i in 0..df.height() {
        match whats[i].as_str() {
            "total" => (f.total, f.previous_total) = (nows[i], befores[i]),
            "daily" => {
                if let Ok(day) = NaiveDate::parse_from_str(&keys[i], "%Y-%m-%d") {
                    f.daily.push((day, nows[i]));
                }
            }
            what => {
                let Some(d) = dims.iter().find(|d| d.name() == what) else {
                    continue;
                };
                f.lines.entry(d.name()).or_default().push(Line {
                    label: if labels[i].is_empty() {
                        keys[i].clone()
                    } else {
                        labels[i].clone()
                    },
                    key: keys[i].clone(),
                    amount: nows[i],
                    previous: befores[i],
                });
            }
        }
    }
    f.daily.sort();
    Ok(f)
}
