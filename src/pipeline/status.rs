//! `hcbill status`: what the lake holds and what the next nightly will do.
//! Read from the manifests and the last run report (local or in a bucket);
//! nothing is fetched from the billing API.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::sink::manifest::Finality;
use crate::sink::output::{Output, OutputError};
use crate::source::datasets;

#[derive(Debug, Serialize)]
pub struct CycleStatus {
    pub bill_cycle: String,
    pub finality: Finality,
    pub final_at: DateTime<Utc>,
    pub files: usize,
    pub rows: u64,
    /// The dataset's headline money column, summed over accounts, per
    /// currency (`1234.5 CNY`; `…; 12 USD` when the cycle holds two).
    pub money_total: Option<String>,
    pub money_totals_by_currency: std::collections::BTreeMap<String, String>,
    pub money_column: Option<String>,
    pub extracted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct DatasetStatus {
    pub dataset: String,
    pub cycles: Vec<CycleStatus>,
    pub last_extraction: Option<DateTime<Utc>>,
    pub last_restatement: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct LastRun {
    pub report: String,
    pub command: Option<String>,
    pub finished_at: Option<String>,
    pub success: Option<bool>,
    pub units_total: Option<u64>,
    pub units_failed: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub out: String,
    pub datasets: Vec<DatasetStatus>,
    pub last_run: Option<LastRun>,
    /// When the next provisional cycle becomes final (a nightly after it fixes it for good).
    pub next_finality: Option<(String, DateTime<Utc>)>,
}

pub async fn status(out: &Output) -> Result<Status, OutputError> {
    let mut datasets_status = Vec::new();
    let mut next: Option<(String, DateTime<Utc>)> = None;
    for spec in datasets::ALL {
        let Some(m) = out.manifest(spec).await? else { continue };
        let headline = spec.money_columns.first().copied();
        let sole = m.sole_currency();
        let mut cycles = Vec::new();
        for p in m.partitions.values() {
            let by_currency = headline
                .map(|h| crate::sink::manifest::totals_by_currency(p.files.values(), h, sole.as_deref()))
                .unwrap_or_default();
            // One currency: its total, as before; several: none (never summed).
            let money_total = match by_currency.len() {
                0 => headline.map(|_| "0".to_string()),
                1 => by_currency.values().next().map(|v| v.normalize().to_string()),
                _ => None,
            };
            if p.finality == Finality::Provisional && next.as_ref().is_none_or(|(_, t)| p.final_at < *t) {
                next = Some((p.bill_cycle.clone(), p.final_at));
            }
            cycles.push(CycleStatus {
                bill_cycle: p.bill_cycle.clone(),
                finality: p.finality,
                final_at: p.final_at,
                files: p.files.len(),
                rows: p.files.values().map(|f| f.rows).sum(),
                money_total,
                money_totals_by_currency: by_currency
                    .iter()
                    .map(|(c, v)| (c.clone(), v.normalize().to_string()))
                    .collect(),
                money_column: headline.map(str::to_string),
                extracted_at: p.files.values().map(|f| f.extracted_at).max(),
            });
        }
        datasets_status.push(DatasetStatus {
            dataset: spec.name.to_string(),
            last_extraction: cycles.iter().filter_map(|c| c.extracted_at).max(),
            last_restatement: m
                .partitions
                .values()
                .flat_map(|p| &p.restatements)
                .map(|r| r.detected_at)
                .max(),
            cycles,
        });
    }
    let mut reports = out.list(".hcbill/reports").await?;
    reports.retain(|r| r.ends_with(".json"));
    reports.sort();
    let last_run = match reports.last() {
        None => None,
        Some(name) => {
            let rel = format!(".hcbill/reports/{name}");
            let v: serde_json::Value = out
                .read(&rel)
                .await?
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            Some(LastRun {
                report: format!("{}/{rel}", out.url()),
                command: v["command"].as_str().map(str::to_string),
                finished_at: v["finished_at"].as_str().map(str::to_string),
                success: v["success"].as_bool(),
                units_total: v["units_total"].as_u64(),
                units_failed: v["units_failed"].as_u64(),
            })
        }
    };
    Ok(Status {
        out: out.url(),
        datasets: datasets_status,
        last_run,
        next_finality: next,
    })
}

impl Status {
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.out);
        match &self.last_run {
            Some(r) => {
                let _ = writeln!(
                    s,
                    "last run: {} finished {} — {} ({} of {} units failed)",
                    r.command.as_deref().unwrap_or("?"),
                    r.finished_at.as_deref().unwrap_or("?"),
                    if r.success == Some(true) { "success" } else { "FAILED" },
                    r.units_failed.unwrap_or(0),
                    r.units_total.unwrap_or(0)
                );
            }
            None => {
                let _ = writeln!(s, "last run: none recorded");
            }
        }
        match &self.next_finality {
            Some((c, t)) => {
                let _ = writeln!(
                    s,
                    "next change: {c} becomes final after {t}; a nightly then fixes it for good"
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "next change: every cycle held is final; a nightly adds the current month"
                );
            }
        }
        let _ = writeln!(
            s,
            "\n{:<22} {:<9} {:<12} {:>6} {:>10} {:>22}  {:<30} last extraction",
            "dataset", "cycle", "finality", "files", "rows", "total", "money column"
        );
        for d in &self.datasets {
            for c in &d.cycles {
                let _ = writeln!(
                    s,
                    "{:<22} {:<9} {:<12} {:>6} {:>10} {:>22}  {:<30} {}",
                    d.dataset,
                    c.bill_cycle,
                    format!("{:?}", c.finality).to_lowercase(),
                    c.files,
                    c.rows,
                    crate::sink::manifest::currency_text(&c.money_totals_by_currency),
                    c.money_column.as_deref().unwrap_or(""),
                    c.extracted_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default()
                );
            }
            if let Some(t) = d.last_restatement {
                let _ = writeln!(s, "{:<22} last restatement {t}", d.dataset);
            }
        }
        s
    }
}
