//! Pipeline files (`pipelines/*.toml`): the same settings as the command-line
//! flags, which override them. Unknown keys are errors, so a typo cannot
//! silently fall back to a default.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::cycle::BillCycle;
use crate::source::api::Api;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("pipeline file {path}: {reason}")]
    Parse { path: String, reason: String },
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// `backfill` (default) or `nightly`.
    pub mode: Option<String>,
    /// Dataset names, or `["all"]`.
    pub datasets: Option<Vec<String>>,
    pub out: Option<String>,
    pub from: Option<BillCycle>,
    pub to: Option<BillCycle>,
    /// `"auto"` (default), `"self"`, `"all"`, or a list of member ids.
    pub accounts: Option<AccountsSetting>,
    /// Hours added to Huawei's finality time (monthly-settlement customers: 24).
    pub grace_hours: Option<i64>,
    /// The run stops cleanly after this long (`6h`, `90m`); the next run resumes.
    pub deadline: Option<String>,
    /// `statistic_type` of resource_bill_details: 1 by cycle, 2 by day, 3 by detail (default).
    pub statistic_type: Option<i64>,
    #[serde(default)]
    pub source: SourceSection,
    #[serde(default)]
    pub limits: LimitsSection,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum AccountsSetting {
    Keyword(String),
    Members(Vec<String>),
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    pub endpoint: Option<String>,
    pub language: Option<String>,
    pub timeout_secs: Option<u64>,
    /// Run against the embedded simulator instead of an endpoint.
    pub simulator: Option<SimulatorSection>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSection {
    pub seed: Option<u64>,
    pub scale: Option<f64>,
    pub from: Option<BillCycle>,
    pub to: Option<BillCycle>,
    pub latency_ms: Option<u64>,
    pub members: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Units extracted at once.
    pub units: Option<usize>,
    /// Pages of one unit in flight at once.
    pub pages: Option<usize>,
    pub max_attempts: Option<u32>,
    pub backoff_base_ms: Option<u64>,
    pub backoff_cap_ms: Option<u64>,
    /// Retry waiting one unit may spend in all before it gives up (seconds).
    pub retry_wait_secs: Option<u64>,
    /// A unit running longer than this fails (`2h`); the next run resumes it.
    pub unit_deadline: Option<String>,
    /// Pages one unit may fetch (a `total_count` needing more fails the unit).
    pub max_pages: Option<u64>,
    /// Requests per second by API name (e.g. `"res-fee-records" = 30`); 0 = unlimited.
    #[serde(default)]
    pub quota: HashMap<String, u32>,
}

impl LimitsSection {
    pub fn quotas(&self) -> Result<HashMap<Api, u32>, String> {
        self.quota.iter().map(|(k, v)| Ok((k.parse::<Api>()?, *v))).collect()
    }
}

impl PipelineFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| ConfigError::Parse {
            path: path.display().to_string(),
            reason,
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let f: PipelineFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        if let Some(m) = &f.mode
            && m != "backfill"
            && m != "nightly"
        {
            return Err(format!("mode must be \"backfill\" or \"nightly\", not {m:?}"));
        }
        match &f.accounts {
            Some(AccountsSetting::Keyword(k)) if !["auto", "self", "all"].contains(&k.as_str()) => {
                return Err(format!(
                    "accounts must be \"auto\", \"self\", \"all\" or a list of member ids, not {k:?}"
                ));
            }
            Some(AccountsSetting::Members(ids)) => super::check_members(ids, "accounts").map_err(|e| e.to_string())?,
            _ => {}
        }
        for d in [&f.deadline, &f.limits.unit_deadline].into_iter().flatten() {
            super::parse_duration(d)?;
        }
        if let Some(g) = f.grace_hours {
            super::check_grace_hours(g)?;
        }
        f.limits.quotas()?;
        if let Some(t) = f.statistic_type
            && !(1..=3).contains(&t)
        {
            return Err(format!("statistic_type must be 1, 2 or 3, not {t}"));
        }
        if f.source.endpoint.is_some() && f.source.simulator.is_some() {
            return Err("set either source.endpoint or [source.simulator], not both".into());
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file() {
        let f = PipelineFile::parse(
            r#"
mode = "backfill"
datasets = ["all"]
out = "out"
from = "2026-06"
to = "2026-09"
accounts = ["m1", "m2"]
[source.simulator]
seed = 42
scale = 0.1
[limits]
units = 2
quota = { "res-fee-records" = 15 }
"#,
        )
        .unwrap();
        assert_eq!(f.from.unwrap().to_string(), "2026-06");
        assert_eq!(
            f.accounts,
            Some(AccountsSetting::Members(vec!["m1".into(), "m2".into()]))
        );
        assert_eq!(f.limits.quotas().unwrap()[&Api::ResFeeRecords], 15);
        assert_eq!(f.source.simulator.unwrap().seed, Some(42));
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, needle) in [
            ("datasetz = []", "datasetz"),
            ("from = \"2026-13\"", "2026-13"),
            ("mode = \"weekly\"", "weekly"),
            ("accounts = \"some\"", "some"),
            ("accounts = [\"../../x\"]", "not an account id"),
            ("accounts = [\"self\"]", "own account"),
            ("deadline = \"soon\"", "soon"),
            ("grace_hours = 9223372036854775807", "grace"),
            ("[limits]\nquota = { \"nope\" = 1 }", "nope"),
            (
                "[source]\nendpoint = \"https://x\"\n[source.simulator]\nseed = 1",
                "either",
            ),
        ] {
            let e = PipelineFile::parse(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
