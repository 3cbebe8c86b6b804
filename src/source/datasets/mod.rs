//! One module per dataset: each declares its endpoint, the queries that make up
//! one billing cycle, and its columns. Paging, retries, rate limits and the
//! commit of partitions are shared machinery (see `source::paging`, `pipeline`).

pub mod account_changes;
pub mod amortized_costs;
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

/// A setting of one dataset (`[datasets.<name>]` in pipeline files, `--set
/// <name>.<option>=<value>` on the command line). Integer-valued: an integer
/// from `min` to `max`, or one of `choices` by its label (`"1.2"` → 12).
#[derive(Debug)]
pub struct DatasetOption {
    pub name: &'static str,
    pub help: &'static str,
    pub default: i64,
    pub min: i64,
    pub max: i64,
    /// Labels and their values; when set, only these are accepted.
    pub choices: &'static [(&'static str, i64)],
}

impl DatasetOption {
    /// How `value` is written on the command line.
    pub fn label(&self, value: i64) -> String {
        self.choices
            .iter()
            .find(|(_, v)| *v == value)
            .map_or_else(|| value.to_string(), |(l, _)| l.to_string())
    }

    /// What the option accepts, for help and errors.
    pub fn accepts(&self) -> String {
        if self.choices.is_empty() {
            format!("an integer from {} to {}", self.min, self.max)
        } else {
            let labels: Vec<&str> = self.choices.iter().map(|(l, _)| *l).collect();
            format!("one of {}", labels.join(", "))
        }
    }

    fn parse(&self, value: &str) -> Option<i64> {
        let value = value.trim();
        if self.choices.is_empty() {
            value.parse().ok().filter(|v| (self.min..=self.max).contains(v))
        } else {
            self.choices.iter().find(|(l, _)| *l == value).map(|(_, v)| *v)
        }
    }
}

/// Another shape of a dataset that one of its options selects (FOCUS 1.2
/// beside 1.3). Each edition has its own columns and schema `version`, so a
/// lake switched from one to the other is rewritten like any schema change.
#[derive(Debug)]
pub struct Edition {
    pub option: &'static str,
    pub value: i64,
    pub spec: &'static DatasetSpec,
}

/// A dataset's options, resolved: every declared option has a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatasetOptions(std::collections::BTreeMap<&'static str, i64>);

impl DatasetOptions {
    pub fn get(&self, name: &str) -> Option<i64> {
        self.0.get(name).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, i64)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }
}

/// What a dataset's queries may depend on.
#[derive(Clone, Copy, Debug)]
pub struct QueryCtx<'a> {
    pub cycle: BillCycle,
    pub options: &'a DatasetOptions,
}

impl QueryCtx<'_> {
    /// The value of a declared option (a dataset asks only for its own).
    pub fn opt(&self, name: &str) -> i64 {
        self.options
            .get(name)
            .unwrap_or_else(|| panic!("option {name} is not declared by this dataset"))
    }
}

/// How a dataset is made from another's rows instead of pages of its own.
#[derive(Clone, Copy, Debug)]
pub enum Derivation {
    /// Every row of `from`'s pages, rewritten (FOCUS from the consumption
    /// records): with both asked for, each page is fetched once for the two.
    Rows {
        from: &'static DatasetSpec,
        transform: Transform,
    },
    /// For each row of `from` (same query), one query of this dataset's API
    /// with `param` set to the row's `id_key` (the 5-minute points of each
    /// resource of the 95th-percentile summary).
    FanOut {
        from: &'static DatasetSpec,
        id_key: &'static str,
        param: &'static str,
    },
}

impl Derivation {
    pub fn from(&self) -> &'static DatasetSpec {
        match self {
            Derivation::Rows { from, .. } | Derivation::FanOut { from, .. } => from,
        }
    }
}

/// A second source a dataset also reads, before its own rows: FOCUS takes the
/// cost center's amortised months from `amortized_costs`' pages. Optional by
/// nature: when it cannot be had (Cost Center off, month too old), the dataset
/// is made without it and says so.
#[derive(Clone, Copy, Debug)]
pub struct Companion {
    pub from: &'static DatasetSpec,
    pub transform: Transform,
}

/// Context for a row transform (derived datasets such as FOCUS).
#[derive(Clone, Copy)]
pub struct TransformCtx<'a> {
    pub cycle: BillCycle,
    /// `currency` of the answer the row came from.
    pub currency: Option<&'a str>,
    /// The paying account: the caller's domain id when known.
    pub payer: Option<&'a str>,
    /// Whether the dataset's companion was read (FOCUS: amortisation available).
    pub companion: bool,
}

/// Rewrites one API row into the dataset's own row (JSON, exact tokens kept),
/// or into none when the row is not the dataset's concern.
pub type Transform = fn(&str, &TransformCtx<'_>) -> Result<Option<Box<RawValue>>, String>;

/// A file written beside a dataset's partitions at the end of a run, from its
/// manifest: (name, content).
pub type Sidecar = fn(&DatasetSpec, &crate::sink::manifest::Manifest) -> (&'static str, String);

/// One column of a dataset's natural key and why it is there: the SDK
/// model's docstring that makes it identify a row (quoted), or
/// `[inferred] …` where no docstring names a row's identity.
#[derive(Debug)]
pub struct Key {
    pub column: &'static str,
    pub from: &'static str,
}

pub const fn key(column: &'static str, from: &'static str) -> Key {
    Key { column, from }
}

/// Static description of a dataset: everything the shared machinery needs.
#[derive(Debug)]
pub struct DatasetSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// The API whose pages make the dataset (for `Rows`, the source's).
    pub api: Api,
    /// Bumped whenever `columns` change; stored in the Parquet metadata and
    /// the manifest, and a partition with another version is re-extracted.
    pub version: u32,
    pub columns: &'static [Column],
    /// Columns whose sums are reported per partition (manifest, run report);
    /// the first one is the headline of the run summary.
    pub money_columns: &'static [&'static str],
    /// The natural key: the columns that identify a row, each with the SDK
    /// text it rests on. Checked unique per unit, published in the contract.
    pub key: &'static [Key],
    /// A dimension snapshot (not per cycle): extracted once per run into the
    /// current cycle's partition.
    pub snapshot: bool,
    /// The Hive partition column (`<key>=YYYY-MM` directories). Readers show
    /// the directory's value in place of a data column of that name, so a
    /// dataset may hold such a column only if it always equals the partition
    /// (checked on every row).
    pub partition_key: &'static str,
    /// How far back the API answers (months before the current cycle, this
    /// one included); older cycles are skipped with a warning, not failed.
    pub max_age_months: Option<u32>,
    /// Prefix of the lineage columns (`hcbill_account_id`…): `x_` where the
    /// format reserves unprefixed names (FOCUS).
    pub lineage_prefix: &'static str,
    pub options: &'static [DatasetOption],
    /// The queries (without offset/limit/method) that together return one cycle.
    pub queries: fn(&QueryCtx) -> Vec<Params>,
    pub derives: Option<Derivation>,
    pub companion: Option<Companion>,
    /// A file written beside the dataset's partitions (name, content).
    pub sidecar: Option<Sidecar>,
    /// The shapes an option selects, this one included (empty: one shape).
    pub editions: &'static [Edition],
}

impl DatasetSpec {
    pub fn schema(&self) -> arrow_schema::SchemaRef {
        model::schema_with_lineage(self.name, self.version, self.columns, self.lineage_prefix)
    }

    /// The edition `options` select (itself when it has none).
    pub fn edition(&'static self, options: &DatasetOptions) -> &'static DatasetSpec {
        self.editions
            .iter()
            .find(|e| options.get(e.option) == Some(e.value))
            .map_or(self, |e| e.spec)
    }

    /// The edition whose schema version is `version`: what a file written
    /// under another setting is checked against.
    pub fn at_version(&'static self, version: u32) -> Option<&'static DatasetSpec> {
        if self.version == version {
            return Some(self);
        }
        self.editions.iter().map(|e| e.spec).find(|s| s.version == version)
    }

    /// The natural key's columns, in order.
    pub fn key_columns(&self) -> Vec<&'static str> {
        self.key.iter().map(|k| k.column).collect()
    }

    pub fn page_size(&self) -> u32 {
        self.api.max_limit()
    }

    /// Whether the API is asked once per member account.
    pub fn member_scoped(&self) -> bool {
        self.api.member_scoped()
    }

    /// The dataset whose pages feed this one: itself, unless derived by rows.
    pub fn root(&'static self) -> &'static DatasetSpec {
        match self.derives {
            Some(Derivation::Rows { from, .. }) => from.root(),
            _ => self,
        }
    }

    /// Resolves `given` (name, value) pairs against the declared options,
    /// defaults filled in; an unknown name or a value out of range is an error.
    pub fn options_from(&self, given: &[(&str, &str)]) -> Result<DatasetOptions, String> {
        let mut m: std::collections::BTreeMap<&'static str, i64> =
            self.options.iter().map(|o| (o.name, o.default)).collect();
        for (name, value) in given {
            let Some(o) = self.options.iter().find(|o| o.name == *name) else {
                let known: Vec<&str> = self.options.iter().map(|o| o.name).collect();
                return Err(format!(
                    "{} has no option {name:?} (its options: {})",
                    self.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            let v = o.parse(value).ok_or_else(|| {
                format!(
                    "{}.{name} must be {} ({}), not {value:?}",
                    self.name,
                    o.accepts(),
                    o.help
                )
            })?;
            m.insert(o.name, v);
        }
        Ok(DatasetOptions(m))
    }
}

/// Resolves `(dataset, option, value)` settings (later ones win) into each
/// named dataset's options; unknown datasets, options and bad values are errors.
pub fn resolve_options(
    given: &[(String, String, String)],
) -> Result<std::collections::BTreeMap<&'static str, DatasetOptions>, String> {
    let mut by_dataset: Vec<(&'static DatasetSpec, Vec<(&str, &str)>)> = Vec::new();
    for (dataset, option, value) in given {
        let spec = by_name(dataset).ok_or_else(|| UnknownDataset(dataset.clone()).to_string())?;
        match by_dataset.iter_mut().find(|(s, _)| s.name == spec.name) {
            Some((_, v)) => v.push((option, value)),
            None => by_dataset.push((spec, vec![(option, value)])),
        }
    }
    by_dataset
        .into_iter()
        .map(|(spec, pairs)| Ok((spec.name, spec.options_from(&pairs)?)))
        .collect()
}

/// Canonical text of a unit's queries, for its digest: parameters in their
/// declared order as `k=v` joined by `&`, one query a line.
pub fn canonical_queries(queries: &[Params]) -> String {
    let mut out = String::new();
    for q in queries {
        let line: Vec<String> = q
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(&v.as_query_value(), percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        out.push_str(&line.join("&"));
        out.push('\n');
    }
    out
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
    &amortized_costs::SPEC,
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
            for m in d.money_columns.iter().chain(&d.key_columns()) {
                assert!(
                    d.columns.iter().any(|c| c.name == *m),
                    "{}: {m} is not a column",
                    d.name
                );
            }
            assert!(!d.key.is_empty(), "{}: a natural key", d.name);
            assert!(
                d.key.iter().all(|k| !k.from.trim().is_empty()),
                "{}: every key column says why",
                d.name
            );
            let options = d.options_from(&[]).unwrap();
            let ctx = QueryCtx {
                cycle: "2026-03".parse().unwrap(),
                options: &options,
            };
            assert!(!(d.queries)(&ctx).is_empty());
            if let Some(Derivation::Rows { from, .. }) = d.derives {
                assert_eq!(
                    d.api, from.api,
                    "{}: a row-derived dataset pages its source's API",
                    d.name
                );
            }
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
                n.push(&format!(r#"{{"{}":{fits}}}"#, c.json)).unwrap();
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
                        .push(&format!(r#"{{"{}":"{over}"}}"#, c.json))
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
