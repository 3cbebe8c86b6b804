//! One module per dataset: each declares its endpoint, the queries that make up
//! one billing cycle, and its columns. Paging, retries, rate limits and the
//! commit of partitions are shared machinery (see `source::paging`, `pipeline`).

pub mod bill_summary;
pub mod codes;
pub mod consumption_records;

use crate::cycle::BillCycle;
use crate::model::{self, Column};
use crate::source::api::{Api, Params};

/// Static description of a dataset.
pub struct DatasetSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub api: Api,
    /// Bumped whenever `columns` change; stored in the Parquet metadata and
    /// the manifest, and a partition with another version is re-extracted.
    pub version: u32,
    pub columns: &'static [Column],
    /// Columns whose sums are reported per partition (manifest, run report).
    pub money_columns: &'static [&'static str],
    /// Columns that identify a row, for the README and warehouse users.
    pub key_columns: &'static [&'static str],
    /// Whether the API takes `method`/`sub_customer_id` (enterprise fan-out).
    pub member_scoped: bool,
    /// The queries (without offset/limit/method) that together return one cycle.
    pub queries: fn(BillCycle) -> Vec<Params>,
}

impl DatasetSpec {
    pub fn schema(&self) -> arrow_schema::SchemaRef {
        model::schema(self.name, self.version, self.columns)
    }

    pub fn page_size(&self) -> u32 {
        self.api.max_limit()
    }
}

pub static ALL: &[&DatasetSpec] = &[&bill_summary::SPEC, &consumption_records::SPEC];

pub fn by_name(name: &str) -> Option<&'static DatasetSpec> {
    ALL.iter().copied().find(|d| d.name == name)
}

#[derive(Debug, thiserror::Error)]
#[error("unknown dataset {0:?} (known: {known})", known = names().join(", "))]
pub struct UnknownDataset(pub String);

pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|d| d.name).collect()
}

/// Parses `a,b` or `all`.
pub fn parse_list(list: &str) -> Result<Vec<&'static DatasetSpec>, UnknownDataset> {
    let mut out: Vec<&'static DatasetSpec> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name == "all" {
            return Ok(ALL.to_vec());
        }
        let d = by_name(name).ok_or_else(|| UnknownDataset(name.to_string()))?;
        if !out.iter().any(|o| o.name == d.name) {
            out.push(d);
        }
    }
    if out.is_empty() {
        return Err(UnknownDataset(list.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_their_code_columns_and_names_are_unique() {
        for d in ALL {
            let mut seen = std::collections::HashSet::new();
            for (i, c) in d.columns.iter().enumerate() {
                assert!(
                    seen.insert(c.name),
                    "{}: duplicate column {}",
                    d.name,
                    c.name
                );
                if let model::Kind::Label { of, .. } = c.kind {
                    let src = d.columns.iter().position(|s| s.name == of);
                    assert!(
                        matches!(src, Some(j) if j < i),
                        "{}: label {} before {}",
                        d.name,
                        c.name,
                        of
                    );
                }
            }
            for m in d.money_columns.iter().chain(d.key_columns) {
                assert!(
                    d.columns.iter().any(|c| c.name == *m),
                    "{}: {m} is not a column",
                    d.name
                );
            }
            assert!(!(d.queries)("2026-03".parse().unwrap()).is_empty());
        }
    }

    #[test]
    fn dataset_lists() {
        assert_eq!(parse_list("all").unwrap().len(), ALL.len());
        assert_eq!(parse_list("bill_summary, bill_summary").unwrap().len(), 1);
        let e = parse_list("bill_summary,nope").err().unwrap().to_string();
        assert!(
            e.contains("nope") && e.contains("consumption_records"),
            "{e}"
        );
        assert!(parse_list("").is_err());
    }
}
