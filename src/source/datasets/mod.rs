//! One module per dataset: each declares its endpoint, the queries that make up
//! one billing cycle, and its columns. Paging, retries, rate limits and the
//! commit of partitions are shared machinery (see `source::paging`, `pipeline`).

pub mod account_changes;
pub mod bill_summary;
pub mod codes;
pub mod consumption_records;
pub mod focus;
pub mod resource_bill_details;
pub mod sub_customers;
pub mod transaction_records;
pub mod usage_95;

use serde_json::value::RawValue;

use crate::cycle::BillCycle;
use crate::model::{self, Column};
use crate::source::api::{Api, Params};

/// What a dataset's queries may depend on.
#[derive(Clone, Copy, Debug)]
pub struct QueryCtx {
    pub cycle: BillCycle,
    /// `statistic_type` of resource bill details (1 by cycle, 2 by day, 3 by detail).
    pub statistic_type: i64,
}

/// A second-level listing: for each row of `api` (same query), one query with
/// `param` set to the row's `id_key` (e.g. the 5-minute points of each resource).
#[derive(Clone, Copy, Debug)]
pub struct FanOut {
    pub api: Api,
    pub id_key: &'static str,
    pub param: &'static str,
}

/// Context for a row transform (derived datasets such as FOCUS).
pub struct TransformCtx<'a> {
    pub cycle: BillCycle,
    /// `currency` of the answer the row came from.
    pub currency: Option<&'a str>,
    /// The paying account: the caller's domain id when known.
    pub payer: Option<&'a str>,
}

/// Rewrites one API row into the dataset's own row (JSON, exact tokens kept).
pub type Transform = fn(&RawValue, &TransformCtx<'_>) -> Result<Box<RawValue>, String>;

/// A file written beside a dataset's partitions: (name, content).
pub type Sidecar = fn(&DatasetSpec) -> (&'static str, String);

/// Static description of a dataset.
pub struct DatasetSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub api: Api,
    /// Bumped whenever `columns` change; stored in the Parquet metadata and
    /// the manifest, and a partition with another version is re-extracted.
    pub version: u32,
    pub columns: &'static [Column],
    /// Columns whose sums are reported per partition (manifest, run report);
    /// the first one is the headline of the run summary.
    pub money_columns: &'static [&'static str],
    /// Columns that identify a row, for the README and warehouse users.
    pub key_columns: &'static [&'static str],
    /// Whether the API takes `method`/`sub_customer_id` (enterprise fan-out).
    pub member_scoped: bool,
    /// A dimension snapshot (not per cycle): extracted once per run into the
    /// current cycle's partition.
    pub snapshot: bool,
    /// The queries (without offset/limit/method) that together return one cycle.
    pub queries: fn(&QueryCtx) -> Vec<Params>,
    pub fanout: Option<FanOut>,
    pub transform: Option<Transform>,
    /// A file written beside the dataset's partitions (name, content).
    pub sidecar: Option<Sidecar>,
}

impl DatasetSpec {
    pub fn schema(&self) -> arrow_schema::SchemaRef {
        model::schema(self.name, self.version, self.columns)
    }

    pub fn page_size(&self) -> u32 {
        self.api.max_limit()
    }
}

pub static ALL: &[&DatasetSpec] = &[
    &bill_summary::SPEC,
    &consumption_records::SPEC,
    &resource_bill_details::SPEC,
    &transaction_records::SPEC,
    &usage_95::SUMMARY,
    &usage_95::DETAILS,
    &account_changes::SPEC,
    &sub_customers::SPEC,
    &focus::SPEC,
];

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
                assert!(seen.insert(c.name), "{}: duplicate column {}", d.name, c.name);
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
            let ctx = QueryCtx {
                cycle: "2026-03".parse().unwrap(),
                statistic_type: 3,
            };
            assert!(!(d.queries)(&ctx).is_empty());
        }
    }

    /// For every decimal column of every dataset: the largest value its
    /// precision holds is written exactly, one digit more is refused.
    #[test]
    fn every_decimal_column_holds_its_bounds_exactly() {
        use arrow_array::{Array, Decimal128Array};
        let mut checked = 0;
        for d in ALL {
            for (i, c) in d.columns.iter().enumerate() {
                let model::Kind::Dec(scale) = c.kind else { continue };
                let int_digits = (model::DECIMAL_PRECISION - scale) as usize;
                // rust_decimal holds 28 digits: the bound is the smaller of the two.
                let fits = format!("-{}", "9".repeat(int_digits.min(28)));
                let over = format!("1{}", "0".repeat(int_digits));
                let lineage = model::Lineage {
                    account_id: "a".into(),
                    run_id: "r".into(),
                    extracted_at_micros: 0,
                };
                let mut n = model::Normalizer::new(d.schema(), d.columns, d.money_columns, lineage);
                n.push(&RawValue::from_string(format!(r#"{{"{}":{fits}}}"#, c.json)).unwrap())
                    .unwrap();
                let b = n.take_batch().unwrap();
                let a = b.column(i).as_any().downcast_ref::<Decimal128Array>().unwrap();
                let shown = a.value_as_string(0);
                assert_eq!(
                    shown.parse::<rust_decimal::Decimal>().unwrap(),
                    fits.parse::<rust_decimal::Decimal>().unwrap(),
                    "{}.{}",
                    d.name,
                    c.name
                );
                if int_digits <= 28 {
                    let e = n
                        .push(&RawValue::from_string(format!(r#"{{"{}":"{over}"}}"#, c.json)).unwrap())
                        .unwrap_err()
                        .to_string();
                    assert!(
                        e.contains(c.name) && e.contains(&over) && e.contains("does not fit"),
                        "{e}"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 50, "{checked} decimal columns");
    }

    #[test]
    fn dataset_lists() {
        assert_eq!(parse_list("all").unwrap().len(), ALL.len());
        assert_eq!(parse_list("bill_summary, bill_summary").unwrap().len(), 1);
        let e = parse_list("bill_summary,nope").err().unwrap().to_string();
        assert!(e.contains("nope") && e.contains("consumption_records"), "{e}");
        assert!(parse_list("").is_err());
    }
}
