//! The run report: JSON for machines, a one-screen summary for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::sink::manifest::Finality;
use crate::source::client::StatsSnapshot;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitStatus {
    /// A new or changed file was published.
    Published,
    /// Extracted again; the content was identical, so the file was left untouched.
    Unchanged,
    /// The partition is final and already extracted (use --force to refresh).
    SkippedFinal,
    /// Finished by the interrupted run this one resumed.
    AlreadyDone,
    Failed,
}

#[derive(Clone, Debug, Serialize)]
pub struct UnitReport {
    pub dataset: String,
    pub bill_cycle: String,
    pub account: String,
    pub status: UnitStatus,
    pub finality: Option<Finality>,
    pub rows: u64,
    /// Size of the unit's file.
    pub bytes: u64,
    pub pages: u64,
    pub restarts: u32,
    pub money_totals: BTreeMap<String, String>,
    /// The currency the API named for the money totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The money column shown in the summary.
    #[serde(skip)]
    pub headline: Option<&'static str>,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a reader of the unit's file should know.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl UnitReport {
    /// A report that says "failed" until the unit proves otherwise.
    pub fn failed(dataset: String, bill_cycle: String, account: String, headline: Option<&'static str>) -> Self {
        Self {
            dataset,
            bill_cycle,
            account,
            status: UnitStatus::Failed,
            finality: None,
            rows: 0,
            bytes: 0,
            pages: 0,
            restarts: 0,
            money_totals: BTreeMap::new(),
            currency: None,
            headline,
            seconds: 0.0,
            error: None,
            notes: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub command: String,
    pub resumed: bool,
    pub out: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_seconds: f64,
    pub success: bool,
    pub units_total: usize,
    pub units_failed: usize,
    pub rows: u64,
    pub pages: u64,
    pub requests: StatsSnapshot,
    /// How close the run came to the quotas: no run can end sooner than its
    /// busiest API's requests ÷ that API's quota.
    pub quota: QuotaUse,
    pub restatements: usize,
    /// The accounts the run covered (`self` is the caller's own).
    pub accounts: Vec<String>,
    pub failures: Vec<String>,
    pub units: Vec<UnitReport>,
    /// Where this report was saved, below the output.
    #[serde(skip)]
    pub saved_as: String,
}

/// The API that bounds a run, and the run's wall time against that bound.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QuotaUse {
    /// The API with the most requests per unit of its quota.
    pub critical_api: Option<String>,
    /// Its requests ÷ its quota (requests per second).
    pub bound_seconds: f64,
    /// Wall time ÷ bound_seconds (1.00 is the quota's limit); absent when
    /// nothing was requested.
    pub wall_over_bound: Option<f64>,
}

impl QuotaUse {
    /// From the requests sent per API and each API's quota.
    pub fn of(requests: &BTreeMap<String, u64>, quota: impl Fn(&str) -> u32, wall: f64) -> Self {
        // An API without a limit (quota 0) never bounds a run.
        let best = requests
            .iter()
            .filter(|(api, _)| quota(api) > 0)
            .map(|(api, n)| (api, *n as f64 / f64::from(quota(api))))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((api, bound)) if bound > 0.0 => Self {
                critical_api: Some(api.clone()),
                bound_seconds: bound,
                wall_over_bound: Some(wall / bound),
            },
            _ => Self::default(),
        }
    }
}

impl RunReport {
    /// The one-screen summary: per dataset and cycle, rows and the money
    /// totals of the dataset's first money column.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "hcbill {} — run {}{} — {} units, {} failed, {} rows, {} requests ({} retries, {} throttled) in {:.1}s",
            self.command,
            self.run_id,
            if self.resumed { " (resumed)" } else { "" },
            self.units_total,
            self.units_failed,
            self.rows,
            self.requests.requests,
            self.requests.retries,
            self.requests.throttled_429,
            self.duration_seconds
        );
        if let (Some(api), Some(ratio)) = (&self.quota.critical_api, self.quota.wall_over_bound) {
            let _ = writeln!(
                s,
                "quotas: {api} bounds the run at {:.1}s; wall ÷ bound {ratio:.2}",
                self.quota.bound_seconds
            );
        }
        let members = self.accounts.iter().filter(|a| *a != "self").count();
        let own = self.accounts.iter().any(|a| a == "self");
        let _ = writeln!(
            s,
            "accounts: {}",
            match (own, members) {
                (true, 0) => "self only".to_string(),
                (true, n) => format!("self and {n} enterprise members"),
                (false, n) => format!("{n} enterprise members"),
            }
        );
        // Columns sized to their widest cell, so member rows line up.
        let aw = self.units.iter().map(|u| u.account.len()).max().unwrap_or(7).max(7);
        let _ = writeln!(
            s,
            "{:<22} {:<9} {:<aw$} {:<14} {:>9}  {:<13} {:>22}  money column",
            "dataset", "cycle", "account", "status", "rows", "finality", "total"
        );
        let mut units: Vec<&UnitReport> = self.units.iter().collect();
        units.sort_by(|a, b| (&a.dataset, &a.bill_cycle, &a.account).cmp(&(&b.dataset, &b.bill_cycle, &b.account)));
        for u in units {
            let (col, total) = u.headline.and_then(|h| u.money_totals.get_key_value(h)).map_or(
                (String::new(), String::new()),
                |(k, v)| {
                    (
                        k.clone(),
                        match &u.currency {
                            Some(c) => format!("{v} {c}"),
                            None => v.clone(),
                        },
                    )
                },
            );
            let fin = match u.finality {
                Some(Finality::Final) => "final",
                Some(Finality::Provisional) => "provisional",
                None => "",
            };
            let _ = writeln!(
                s,
                "{:<22} {:<9} {:<aw$} {:<14} {:>9}  {:<13} {:>22}  {}",
                u.dataset,
                u.bill_cycle,
                u.account,
                format!("{:?}", u.status).to_lowercase(),
                u.rows,
                fin,
                total,
                col
            );
        }
        for u in &self.units {
            for n in &u.notes {
                let _ = writeln!(s, "NOTE: {} {} {}: {n}", u.dataset, u.bill_cycle, u.account);
            }
        }
        for f in &self.failures {
            let _ = writeln!(s, "FAILED: {f}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_api_for_its_quota_bounds_the_run() {
        let requests = BTreeMap::from([("monthly-sum".to_string(), 12), ("res-fee-records".to_string(), 405)]);
        let q = QuotaUse::of(&requests, |api| if api == "res-fee-records" { 30 } else { 10 }, 15.4);
        assert_eq!(q.critical_api.as_deref(), Some("res-fee-records"));
        assert!((q.bound_seconds - 13.5).abs() < 1e-9);
        assert!((q.wall_over_bound.unwrap() - 15.4 / 13.5).abs() < 1e-9);
        assert!(QuotaUse::of(&BTreeMap::new(), |_| 10, 1.0).wall_over_bound.is_none());
    }

    #[test]
    fn member_rows_line_up_with_the_others() {
        let mut a = UnitReport::failed("bill_summary".into(), "2026-05".into(), "self".into(), None);
        a.status = UnitStatus::Published;
        let mut b = a.clone();
        b.account = "65a7efa9c6d84c0b9a1e2f3d4c5b6a79".into();
        let r = RunReport {
            run_id: "r".into(),
            command: "test".into(),
            resumed: false,
            out: "out".into(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            duration_seconds: 0.0,
            success: true,
            units_total: 2,
            units_failed: 0,
            rows: 0,
            pages: 0,
            requests: Default::default(),
            quota: Default::default(),
            restatements: 0,
            accounts: vec!["self".into()],
            failures: vec![],
            units: vec![a, b],
            saved_as: String::new(),
        };
        let text = r.human();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("bill_summary") || l.starts_with("dataset"))
            .collect();
        let col = |l: &str| l.find("published").or_else(|| l.find("status")).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| col(l) == col(lines[0])), "{text}");
    }
}
