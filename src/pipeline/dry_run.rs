//! `hcbill plan` (`--dry-run`): the units a run would extract and why, the
//! pages it expects per API and how long the quota makes that take. Writes
//! nothing; spends one `limit=1` probe per query whose size the manifests do
//! not tell (and the member listing, when accounts need it).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::Utc;
use serde::Serialize;

use super::error::RunError;
use super::plan::{self, Group};
use super::{Job, accounts};
use crate::cycle::BillCycle;
use crate::sink::manifest::{Finality, Manifest};
use crate::sink::output::Output;
use crate::source::api::{Api, Param};
use crate::source::client::{BssClient, WaitBudget};
use crate::source::datasets::Derivation;
use crate::source::paging::parse_page;

#[derive(Debug, Serialize)]
pub struct PlannedUnit {
    pub dataset: String,
    pub bill_cycle: String,
    pub account: String,
    /// run: missing, provisional, forced, schema changed, query changed; skip: final, done.
    pub action: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct ApiPlan {
    pub api: String,
    pub pages: u64,
    /// `probe` (asked with limit=1), `manifest` (rows known) or both.
    pub source: String,
    pub quota_per_second: u32,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub out: String,
    pub units: Vec<PlannedUnit>,
    pub apis: Vec<ApiPlan>,
    pub probes: u64,
    /// The quota-bound duration: the slowest API, as APIs run side by side.
    pub seconds: f64,
    /// The API that sets `seconds` (its units start first).
    pub critical_api: Option<String>,
}

pub async fn dry_run(job: &Job, client: &std::sync::Arc<BssClient>) -> Result<PlanReport, RunError> {
    let out = Output::open(&job.out, &job.store, client.stop.clone())?;
    let mut manifests: HashMap<&'static str, Manifest> = HashMap::new();
    for spec in &job.datasets {
        let m = out.manifest(spec).await?;
        manifests.insert(spec.name, m.unwrap_or_else(|| Manifest::new(spec.name, spec.version)));
    }
    let (accounts, _) = accounts::resolve(job, client).await?;
    let cycles = plan::cycles_of_job(job, &manifests, BillCycle::containing(Utc::now()));
    let groups = plan::groups(job, &accounts, |spec| plan::cycles_in(&cycles, spec));
    // An interrupted run of the same job resumes: its finished units are skipped.
    let fp = plan::fingerprint_of(job, &cycles);
    let resumes: Option<String> = out
        .read(crate::state::STATE_REL)
        .await?
        .and_then(|b| serde_json::from_slice::<crate::state::JobState>(&b).ok())
        .filter(|s| s.fingerprint == fp && s.status == crate::state::JobStatus::Running)
        .map(|s| s.run_id);
    let mut planned = Vec::new();
    let mut pages: BTreeMap<Api, (u64, bool, bool)> = BTreeMap::new();
    let budget = client.unit_budget();
    let mut probes = 0;
    for g in &groups {
        let mut runs = false;
        for u in &g.units {
            let entry = manifests[u.spec.name].file(&u.cycle.to_string(), u.account.key());
            let done = resumes
                .as_deref()
                .is_some_and(|run| manifests[u.spec.name].checked_by(&u.cycle.to_string(), u.account.key(), run));
            let (action, reason) = if done {
                ("skip", "done by the interrupted run this one resumes".to_string())
            } else {
                match entry {
                    None => ("run", "missing".to_string()),
                    Some(_) if job.force => ("run", "forced".to_string()),
                    Some(e) if e.schema_version != u.spec.version => (
                        "run",
                        format!("schema changed (v{} → v{})", e.schema_version, u.spec.version),
                    ),
                    Some(e)
                        if e.query_digest != plan::query_digest(job, u.spec, u.cycle)
                            && e.query_digest != plan::legacy_query_digest(job, u.spec, u.cycle) =>
                    {
                        ("run", "query changed".to_string())
                    }
                    Some(e) if e.finality == Finality::Provisional => ("run", "provisional".to_string()),
                    Some(_) => ("skip", "final".to_string()),
                }
            };
            runs |= action == "run";
            planned.push(PlannedUnit {
                dataset: u.spec.name.to_string(),
                bill_cycle: u.cycle.to_string(),
                account: u.account.key().to_string(),
                action: action.to_string(),
                reason,
            });
        }
        if runs {
            probes += estimate(job, client, g, &manifests, &budget, &mut pages).await?;
        }
    }
    let apis: Vec<ApiPlan> = pages
        .into_iter()
        .map(|(api, (n, probed, known))| {
            let quota = client.limits().configured(api).max(1);
            ApiPlan {
                api: api.name().to_string(),
                pages: n,
                source: match (probed, known) {
                    (true, true) => "probe+manifest",
                    (false, true) => "manifest",
                    _ => "probe",
                }
                .to_string(),
                quota_per_second: quota,
                seconds: n as f64 / f64::from(quota),
            }
        })
        .collect();
    let mut report = PlanReport {
        out: out.url(),
        seconds: apis.iter().map(|a| a.seconds).fold(0.0, f64::max),
        units: planned,
        apis,
        probes,
        critical_api: None,
    };
    report.critical_api = report.critical().map(|a| a.api.clone());
    Ok(report)
}

/// Pages of every stream (and fan-out) of a group; returns the probes spent.
async fn estimate(
    job: &Job,
    client: &BssClient,
    g: &Group,
    manifests: &HashMap<&'static str, Manifest>,
    budget: &WaitBudget,
    pages: &mut BTreeMap<Api, (u64, bool, bool)>,
) -> Result<u64, RunError> {
    let mut probes = 0;
    for root in &g.streams {
        let mut queries = plan::queries(job, root, g.cycle);
        if root.member_scoped() {
            for q in &mut queries {
                q.extend(g.account.params());
            }
        }
        let limit = u64::from(root.page_size());
        // One query and its rows known: the manifest tells the pages.
        let known = manifests
            .get(root.name)
            .and_then(|m| m.file(&g.cycle.to_string(), g.account.key()))
            .filter(|_| queries.len() == 1 && !job.force);
        let fan_out = g.units.iter().find_map(|u| match u.spec.derives {
            Some(Derivation::FanOut { from, id_key, param }) if from.name == root.name => Some((u.spec, id_key, param)),
            _ => None,
        });
        if let (Some(e), None) = (known, fan_out) {
            let slot = pages.entry(root.api).or_default();
            slot.0 += e.rows.div_ceil(limit).max(1);
            slot.2 = true;
            continue;
        }
        for q in &queries {
            let total = probe(client, root.api, q, g, budget).await?;
            probes += 1;
            let slot = pages.entry(root.api).or_default();
            slot.0 += total.div_ceil(limit).max(1);
            slot.1 = true;
            // A fan-out: list the ids (the pages just counted) and probe each query.
            if let Some((spec, id_key, param)) = fan_out {
                let mut ids = Vec::new();
                let mut offset = 0;
                while offset < total {
                    let mut p = q.clone();
                    p.push(("offset", Param::Int(offset as i64)));
                    p.push(("limit", Param::Int(limit as i64)));
                    let page = client
                        .call(root.api, g.account.scope(), &p, budget, |b| {
                            parse_page(b, root.api, offset)
                        })
                        .await
                        .map_err(RunError::Probe)?;
                    probes += 1;
                    for rec in page.records() {
                        let v: serde_json::Value = serde_json::from_str(rec).unwrap_or_default();
                        if let Some(id) = v[id_key].as_str() {
                            ids.push(id.to_string());
                        }
                    }
                    offset += limit;
                }
                for id in ids {
                    let mut fq = q.clone();
                    fq.push((param, Param::Str(id)));
                    let total = probe(client, spec.api, &fq, g, budget).await?;
                    probes += 1;
                    let slot = pages.entry(spec.api).or_default();
                    slot.0 += total.div_ceil(u64::from(spec.api.max_limit())).max(1);
                    slot.1 = true;
                }
            }
        }
    }
    Ok(probes)
}

/// `total_count` of a query, asked with limit=1.
async fn probe(
    client: &BssClient,
    api: Api,
    q: &[(&'static str, Param)],
    g: &Group,
    budget: &WaitBudget,
) -> Result<u64, RunError> {
    let mut p = q.to_vec();
    p.push(("offset", Param::Int(0)));
    p.push(("limit", Param::Int(1)));
    let page = client
        .call(api, g.account.scope(), &p, budget, |b| parse_page(b, api, 0))
        .await
        .map_err(RunError::Probe)?;
    Ok(page.total)
}

impl PlanReport {
    /// The API whose pages take longest under its quota: the run's lower bound.
    pub fn critical(&self) -> Option<&ApiPlan> {
        self.apis
            .iter()
            .filter(|a| a.pages > 0)
            .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let aw = self.units.iter().map(|u| u.account.len()).max().unwrap_or(7).max(7);
        let _ = writeln!(
            s,
            "{:<22} {:<9} {:<aw$} {:<5} reason",
            "dataset", "cycle", "account", ""
        );
        for u in &self.units {
            let _ = writeln!(
                s,
                "{:<22} {:<9} {:<aw$} {:<5} {}",
                u.dataset, u.bill_cycle, u.account, u.action, u.reason
            );
        }
        let _ = writeln!(
            s,
            "\n{:<24} {:>8} {:>10} {:>10}  estimated from",
            "api", "pages", "quota/s", "seconds"
        );
        for a in &self.apis {
            let _ = writeln!(
                s,
                "{:<24} {:>8} {:>10} {:>10.1}  {}",
                a.api, a.pages, a.quota_per_second, a.seconds, a.source
            );
        }
        let run = self.units.iter().filter(|u| u.action == "run").count();
        let _ = writeln!(
            s,
            "\n{run} of {} units to run, about {:.0} s under the quotas; {} probe requests spent; nothing written to {}",
            self.units.len(),
            self.seconds,
            self.probes,
            self.out
        );
        if let Some(a) = self.critical() {
            let _ = writeln!(
                s,
                "critical API: {} ({} pages at {}/s): the run takes at least {:.1} s, and hcbill starts its units first",
                a.api, a.pages, a.quota_per_second, a.seconds
            );
        }
        s
    }
}
