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
    /// Dataset names (`["all"]`), or `[datasets.<name>]` tables of options.
    pub datasets: Option<DatasetsSetting>,
    pub out: Option<String>,
    pub from: Option<BillCycle>,
    pub to: Option<BillCycle>,
    /// `"auto"` (default), `"self"`, `"all"`, or a list of member ids.
    pub accounts: Option<AccountsSetting>,
    /// Hours added to Huawei's finality time (monthly-settlement customers: 24).
    pub grace_hours: Option<i64>,
    /// The run stops cleanly after this long (`6h`, `90m`); the next run resumes.
    pub deadline: Option<String>,
    /// Shorthand for `[datasets.resource_bill_details] statistic_type`.
    pub statistic_type: Option<i64>,
    #[serde(default)]
    pub source: SourceSection,
    #[serde(default)]
    pub limits: LimitsSection,
}

/// `datasets = ["a", "b"]`, or tables: `[datasets.resource_bill_details]`
/// with its options (`statistic_type = 2`), plus `select = [...]` in
/// `[datasets]` when the datasets to run are not just the tables named.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum DatasetsSetting {
    Names(Vec<String>),
    Tables(DatasetTables),
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct DatasetTables {
    #[serde(default)]
    pub select: Option<Vec<String>>,
    #[serde(flatten)]
    pub options: std::collections::BTreeMap<String, std::collections::BTreeMap<String, toml::Value>>,
}

impl PipelineFile {
    /// The datasets to run, as written.
    pub fn dataset_names(&self) -> Option<Vec<String>> {
        match &self.datasets {
            None => None,
            Some(DatasetsSetting::Names(v)) => Some(v.clone()),
            Some(DatasetsSetting::Tables(t)) => {
                Some(t.select.clone().unwrap_or_else(|| t.options.keys().cloned().collect()))
            }
        }
    }

    /// `(dataset, option, value)` as written, the `statistic_type` shorthand included.
    pub fn dataset_options(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        if let Some(t) = self.statistic_type {
            out.push(("resource_bill_details".into(), "statistic_type".into(), t.to_string()));
        }
        if let Some(DatasetsSetting::Tables(t)) = &self.datasets {
            for (dataset, opts) in &t.options {
                for (k, v) in opts {
                    let v = match v {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    out.push((dataset.clone(), k.clone(), v));
                }
            }
        }
        out
    }
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
    /// `CNY` (China site) or `USD` (international site).
    pub currency: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Units extracted at once, per queue (the units reading the same APIs).
    pub units: Option<usize>,
    /// Pages of one unit in flight at once.
    pub pages: Option<usize>,
    /// Units of more than one page fetched at once, per API. Each holds a
    /// Parquet writer (tens of MB), so this is what bounds memory; one-page
    /// units never wait for it.
    pub large_units: Option<usize>,
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
        super::super::source::datasets::resolve_options(&f.dataset_options())?;
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
        assert_eq!(f.limits.quotas().unwrap()[&Api::named("res-fee-records")], 15);
        assert_eq!(f.source.simulator.unwrap().seed, Some(42));
    }

    #[test]
    fn dataset_tables_carry_options() {
        let f = PipelineFile::parse("[datasets.resource_bill_details]\nstatistic_type = 2\n[datasets.bill_summary]\n")
            .unwrap();
        assert_eq!(f.dataset_names().unwrap(), ["bill_summary", "resource_bill_details"]);
        assert_eq!(
            f.dataset_options(),
            [(
                "resource_bill_details".to_string(),
                "statistic_type".to_string(),
                "2".to_string()
            )]
        );
        let f = PipelineFile::parse(
            "[datasets]\nselect = [\"all\"]\n[datasets.resource_bill_details]\nstatistic_type = 1\n",
        )
        .unwrap();
        assert_eq!(f.dataset_names().unwrap(), ["all"]);
        let opts = crate::source::datasets::resolve_options(&f.dataset_options()).unwrap();
        assert_eq!(opts["resource_bill_details"].get("statistic_type"), Some(1));
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
            ("statistic_type = 4", "statistic_type"),
            ("[datasets.resource_bill_details]\nstatistic_type = 9", "from 1 to 3"),
            ("[datasets.bill_summary]\nstatistic_type = 2", "no option"),
            ("[datasets.nope]\nx = 1", "nope"),
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
