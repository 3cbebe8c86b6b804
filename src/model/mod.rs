//! Arrow schemas and the normalisation of API rows into record batches.
//!
//! A dataset declares its columns once ([`Column`]); the schema, the contract
//! file, the warehouse DDL and the row conversion are all derived from that
//! declaration, so they cannot drift apart. (About 380 lines without its
//! tests: the normaliser is the hot path and is kept in one piece.)

mod keys;
pub mod nested;
mod slots;

pub use slots::Key;
pub mod value;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    make_builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

/// Scale of money columns: the API sends 8 decimals; 10 leaves headroom.
pub const MONEY_SCALE: u8 = 10;
pub const DECIMAL_PRECISION: u8 = 38;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// JSON string → Utf8.
    Str,
    /// JSON integer or numeric string → Int64 (code fields).
    Int,
    /// JSON number or numeric string → Decimal128(38, scale).
    Dec(u8),
    /// UTC instant → Timestamp(µs, "UTC").
    Timestamp,
    /// UTC+8 calendar date `YYYY-MM-DD` → Date32.
    Date,
    /// Decoded label of the integer code in column `of` (not in the JSON).
    Label {
        of: &'static str,
        table: &'static [(&'static str, &'static str)],
    },
    /// The value of the request parameter of the same name (rows of fan-out
    /// queries do not repeat what was asked, e.g. `usage_type`).
    Param,
    /// A nested object or list → Arrow struct/list.
    Nested(&'static nested::Shape),
}

pub const MONEY: Kind = Kind::Dec(MONEY_SCALE);

#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// Column name in Parquet (the API's snake-case name).
    pub name: &'static str,
    /// JSON key in the response (differs only for oddities like `resource_Type_code`).
    pub json: &'static str,
    pub kind: Kind,
}

pub const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, json: name, kind }
}

pub const fn renamed(name: &'static str, json: &'static str, kind: Kind) -> Column {
    Column { name, json, kind }
}

/// Lineage columns appended to every dataset.
pub const LINEAGE: [&str; 3] = ["hcbill_account_id", "hcbill_run_id", "hcbill_extracted_at"];

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Str | Kind::Label { .. } | Kind::Param => DataType::Utf8,
            Kind::Int => DataType::Int64,
            Kind::Dec(scale) => DataType::Decimal128(DECIMAL_PRECISION, scale as i8),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Date => DataType::Date32,
            Kind::Nested(shape) => shape.data_type(),
        }
    }
}

/// The Arrow schema of a dataset: API columns (nullable: the API omits fields
/// freely) followed by the non-null lineage columns.
pub fn schema(dataset: &str, version: u32, columns: &[Column]) -> SchemaRef {
    schema_with_lineage(dataset, version, columns, "")
}

/// [`schema`] with the lineage columns' names prefixed (`x_` for FOCUS, whose
/// unprefixed names are reserved).
pub fn schema_with_lineage(dataset: &str, version: u32, columns: &[Column], prefix: &str) -> SchemaRef {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(c.name, c.kind.data_type(), true))
        .collect();
    fields.push(Field::new(format!("{prefix}{}", LINEAGE[0]), DataType::Utf8, false));
    fields.push(Field::new(format!("{prefix}{}", LINEAGE[1]), DataType::Utf8, false));
    fields.push(Field::new(
        format!("{prefix}{}", LINEAGE[2]),
        Kind::Timestamp.data_type(),
        false,
    ));
    let meta = HashMap::from([
        ("hcbill.dataset".to_string(), dataset.to_string()),
        ("hcbill.schema_version".to_string(), version.to_string()),
    ]);
    Arc::new(Schema::new_with_metadata(fields, meta))
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("row {row}: column {column}: {reason}")]
    Field {
        row: u64,
        column: &'static str,
        reason: String,
    },
    #[error("row {row}: column {column}: the running total no longer fits an exact decimal")]
    SumOverflow { row: u64, column: &'static str },
    /// The same natural key twice in one unit: pages overlapped (the data
    /// moved) or the server repeats itself; never published as two rows.
    #[error("row {row} repeats the key ({key}) of row {first}")]
    Duplicate {
        row: u64,
        first: u64,
        key: String,
        /// Whether a row of the pair came from a companion stream (then it is
        /// the derived dataset's problem, not the pages moving).
        companion: bool,
        /// The key's hash, to recognise the same repeat on a re-read.
        hash: u64,
    },
    #[error("keeping the unit's keys on disk: {0}")]
    KeySpill(std::io::Error),
    #[error("row {row} is not a JSON object: {reason}")]
    NotAnObject { row: u64, reason: String },
    #[error("building the record batch: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Who and when, stamped on every row.
#[derive(Clone, Debug)]
pub struct Lineage {
    pub account_id: String,
    pub run_id: String,
    pub extracted_at_micros: i64,
}

enum Builder {
    Str(StringBuilder),
    Int(Int64Builder),
    Dec(Decimal128Builder, u32),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Nested(Box<dyn ArrayBuilder>, &'static nested::Shape),
}

impl Builder {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Str | Kind::Label { .. } | Kind::Param => Builder::Str(StringBuilder::new()),
            Kind::Int => Builder::Int(Int64Builder::new()),
            Kind::Dec(s) => Builder::Dec(Decimal128Builder::new().with_data_type(kind.data_type()), s as u32),
            Kind::Timestamp => Builder::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            Kind::Date => Builder::Date(Date32Builder::new()),
            Kind::Nested(shape) => Builder::Nested(make_builder(&shape.data_type(), 1024), shape),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Dec(b, _) => Arc::new(b.finish()),
            Builder::Ts(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Nested(b, _) => b.finish(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Str(b) => b.len(),
            Builder::Int(b) => b.len(),
            Builder::Dec(b, _) => b.len(),
            Builder::Ts(b) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::Nested(b, _) => b.len(),
        }
    }
}

/// Streams API rows into record batches, keeping running money totals and a
/// digest of the served content (used to leave unchanged partitions untouched).
pub struct Normalizer {
    columns: &'static [Column],
    schema: SchemaRef,
    builders: Vec<Builder>,
    lineage: Lineage,
    /// Index of the code column each label column decodes.
    label_source: Vec<Option<usize>>,
    is_label_source: Vec<bool>,
    /// Each label table's codes as integers, for labels of integer columns.
    label_ints: Vec<Vec<Option<i64>>>,
    money: Vec<(usize, Decimal)>,
    /// Per column, its entry in `money`.
    money_slot: Vec<Option<usize>>,
    /// Reused from row to row: where each column's value lies in the row,
    /// and the codes the label columns decode.
    spans: Vec<slots::Span>,
    codes: Vec<Code>,
    rows: u64,
    digest: Sha256,
    /// Parameters of the query being paged, for `Kind::Param` columns.
    params: Vec<(String, String)>,
    pub unknown_keys: BTreeSet<String>,
    /// Column index by JSON key.
    index: slots::KeyFinder,
    keys: Option<KeySet>,
    /// A column that must hold one value on every row (the Hive partition's):
    /// column index and the value's JSON token.
    pinned: Option<(usize, String)>,
}

/// The natural keys a unit has written, as 64-bit hashes (see [`keys`]).
struct KeySet {
    columns: Vec<usize>,
    log: keys::KeyLog,
    /// Rows pushed while this is set come from a companion stream; their
    /// row numbers carry [`COMPANION`].
    companion: bool,
    /// Keys that repeated on an earlier read: the rows holding them are
    /// kept (a few) to say how they differ if they repeat again.
    watch: std::collections::HashSet<u64>,
    watched: Vec<WatchedRow>,
}

/// A row whose key repeated on an earlier read, kept to say how such rows differ.
struct WatchedRow {
    hash: u64,
    record: String,
    /// The parameters of the query it answered (its `Param` columns).
    params: Vec<(String, String)>,
}

/// Rows kept per watched key: enough to say how they differ.
const WATCHED_ROWS: usize = 64;

/// Rows the API returned that a dataset's key cannot tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indistinct {
    pub rows: usize,
    /// `column=value, …` of the key.
    pub key: String,
    /// Columns whose values differ among the rows (empty: identical rows).
    pub differ: Vec<String>,
}

/// Marks a companion's row in the key log.
const COMPANION: u64 = 1 << 63;

/// The code a label column decodes, as read from the current row.
enum Code {
    None,
    Int(i64),
    /// Reused buffer: no allocation per row once it has grown.
    Str(String),
}

impl Code {
    fn set_str(&mut self, v: Option<&str>) {
        match (v, &mut *self) {
            (None, _) => *self = Code::None,
            (Some(v), Code::Str(s)) => {
                s.clear();
                s.push_str(v);
            }
            (Some(v), _) => *self = Code::Str(v.to_string()),
        }
    }
}

impl Normalizer {
    pub fn new(schema: SchemaRef, columns: &'static [Column], money_columns: &[&str], lineage: Lineage) -> Self {
        let label_source: Vec<Option<usize>> = columns
            .iter()
            .map(|c| match c.kind {
                Kind::Label { of, .. } => columns.iter().position(|s| s.name == of),
                _ => None,
            })
            .collect();
        let is_label_source = (0..columns.len()).map(|i| label_source.contains(&Some(i))).collect();
        let money: Vec<(usize, Decimal)> = money_columns
            .iter()
            .filter_map(|m| columns.iter().position(|c| c.name == *m))
            .map(|i| (i, Decimal::ZERO))
            .collect();
        let money_slot = (0..columns.len())
            .map(|i| money.iter().position(|(j, _)| *j == i))
            .collect();
        let label_ints = columns
            .iter()
            .map(|c| match c.kind {
                Kind::Label { table, .. } => table.iter().map(|(k, _)| k.parse().ok()).collect(),
                _ => Vec::new(),
            })
            .collect();
        let mut digest = Sha256::new();
        digest.update(schema.to_string().as_bytes());
        Self {
            columns,
            schema,
            builders: columns.iter().map(|c| Builder::new(c.kind)).collect(),
            lineage,
            label_source,
            is_label_source,
            label_ints,
            money,
            money_slot,
            spans: vec![None; columns.len()],
            codes: (0..columns.len()).map(|_| Code::None).collect(),
            rows: 0,
            digest,
            params: Vec::new(),
            unknown_keys: BTreeSet::new(),
            index: slots::KeyFinder::new(columns),
            keys: None,
            pinned: None,
        }
    }

    /// Refuses a row whose `key_columns` repeat an earlier row's. Rows whose
    /// first key column is empty are not checked (aggregated views without an id).
    pub fn with_unique_key(mut self, key_columns: &[&str], spill_dir: Option<std::path::PathBuf>) -> Self {
        let columns: Vec<usize> = key_columns
            .iter()
            .filter_map(|k| self.columns.iter().position(|c| c.name == *k))
            .collect();
        if !columns.is_empty() {
            self.keys = Some(KeySet {
                columns,
                log: keys::KeyLog::new(spill_dir),
                companion: false,
                watch: Default::default(),
                watched: Vec::new(),
            });
        }
        self
    }

    /// Requires `column`, if the dataset has it, to hold `value` on every row:
    /// the column shares its name with the Hive partition key, and readers
    /// replace it with the directory's value.
    pub fn pin(mut self, column: &str, value: &str) -> Self {
        self.pinned = self
            .columns
            .iter()
            .position(|c| c.name == column && !matches!(c.kind, Kind::Param))
            .map(|i| (i, serde_json::to_string(value).expect("a string")));
        self
    }

    /// Keeps the rows whose key hashes to one of `hashes` (keys that repeated
    /// on an earlier read), for [`Normalizer::indistinct`].
    pub fn watch(&mut self, hashes: impl IntoIterator<Item = u64>) {
        if let Some(k) = &mut self.keys {
            k.watch.extend(hashes);
        }
    }

    /// The rows kept for `hash`: how many, their key, and the columns in
    /// which they differ.
    pub fn indistinct(&self, hash: u64) -> Option<Indistinct> {
        let k = self.keys.as_ref()?;
        let watched: Vec<&WatchedRow> = k.watched.iter().filter(|w| w.hash == hash).collect();
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = watched
            .iter()
            .filter_map(|w| serde_json::from_str(&w.record).ok())
            .collect();
        let first = rows.first()?;
        let params = &watched.first()?.params;
        let key = k
            .columns
            .iter()
            .map(|&i| {
                let c = &self.columns[i];
                let v = match c.kind {
                    Kind::Param => params.iter().find(|(p, _)| p == c.name).map(|(_, v)| v.clone()),
                    _ => first.get(c.json).map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }),
                };
                format!("{}={}", c.name, v.unwrap_or_else(|| "null".into()))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut names: BTreeSet<&String> = BTreeSet::new();
        for r in &rows {
            names.extend(r.keys());
        }
        let differ = names
            .into_iter()
            .filter(|n| rows.iter().any(|r| r.get(*n) != first.get(*n)))
            .cloned()
            .collect();
        Some(Indistinct {
            rows: rows.len(),
            key,
            differ,
        })
    }

    /// Whether the rows that follow come from a companion stream.
    pub fn set_companion(&mut self, companion: bool) {
        if let Some(k) = &mut self.keys {
            k.companion = companion;
        }
    }

    /// Records the row's key. A repeat is found when the keys held in
    /// memory are spilled, or at the latest by [`Normalizer::check_keys`].
    fn check_key(&mut self, row: u64, record: &str) -> Result<(), ModelError> {
        use std::hash::{Hash, Hasher};
        let Some(keys) = &mut self.keys else { return Ok(()) };
        let part = |i: usize| -> Option<&str> {
            match self.columns[i].kind {
                Kind::Param => self
                    .params
                    .iter()
                    .find(|(k, _)| k == self.columns[i].name)
                    .map(|(_, v)| v.as_str()),
                _ => slots::token(record, self.spans[i])
                    .map(|t| t.0)
                    .filter(|t| *t != "null"),
            }
        };
        if part(keys.columns[0]).is_none() {
            return Ok(());
        }
        // SipHash with fixed keys: deterministic, and well spread.
        let mut h = std::hash::DefaultHasher::new();
        for &i in &keys.columns {
            part(i).hash(&mut h);
        }
        let hash = h.finish();
        if keys.watch.contains(&hash) && keys.watched.iter().filter(|w| w.hash == hash).count() < WATCHED_ROWS {
            keys.watched.push(WatchedRow {
                hash,
                record: record.to_string(),
                params: self.params.clone(),
            });
        }
        let tagged = if keys.companion { row | COMPANION } else { row };
        match keys.log.insert(hash, tagged) {
            Ok(None) => Ok(()),
            Ok(Some(r)) => Err(self.repeat(r)),
            Err(e) => Err(ModelError::KeySpill(e)),
        }
    }

    fn repeat(&self, r: keys::Repeat) -> ModelError {
        let names = self.keys.as_ref().map_or(String::new(), |k| {
            k.columns
                .iter()
                .map(|&i| self.columns[i].name)
                .collect::<Vec<_>>()
                .join(", ")
        });
        ModelError::Duplicate {
            row: r.again & !COMPANION,
            first: r.first & !COMPANION,
            key: names,
            companion: (r.first | r.again) & COMPANION != 0,
            hash: r.hash,
        }
    }

    /// Checks every key recorded for a repeat: called once, when the unit's
    /// last row is in, before anything is published.
    pub fn check_keys(&mut self) -> Result<(), ModelError> {
        let Some(keys) = &mut self.keys else { return Ok(()) };
        match keys.log.finish() {
            Ok(None) => Ok(()),
            Ok(Some(r)) => Err(self.repeat(r)),
            Err(e) => Err(ModelError::KeySpill(e)),
        }
    }

    /// Sets the parameters of the query whose rows follow.
    pub fn set_params(&mut self, params: Vec<(String, String)>) {
        // Rows of a fan-out query do not name what was asked: the digest must.
        for (k, v) in &params {
            self.digest.update(format!("{k}={v}\n").as_bytes());
        }
        self.params = params;
    }

    pub fn pending(&self) -> usize {
        self.builders.first().map_or(0, Builder::len)
    }

    /// Appends one API row (a JSON object's text, validated when its page was read).
    pub fn push(&mut self, record: &str) -> Result<(), ModelError> {
        let row = self.rows;
        self.spans.fill(None);
        slots::scan_record(record, &mut self.index, &mut self.spans, &mut self.unknown_keys)
            .map_err(|reason| ModelError::NotAnObject { row, reason })?;
        self.check_key(row, record)?;
        if let Some((i, want)) = &self.pinned {
            // Absent or null, a reader shows the directory's value: no contradiction.
            let got = slots::token(record, self.spans[*i]).map_or("null", |t| t.0);
            let same = got == want
                || got == "null"
                || serde_json::from_str::<String>(got).ok() == serde_json::from_str::<String>(want).ok();
            if !same {
                return Err(ModelError::Field {
                    row,
                    column: self.columns[*i].name,
                    reason: format!(
                        "holds {got} in the partition {}={}: a reader would show the directory's value instead",
                        self.columns[*i].name,
                        want.trim_matches('"')
                    ),
                });
            }
        }
        for (i, c) in self.columns.iter().enumerate() {
            let (raw, plain) = match slots::token(record, self.spans[i]) {
                Some((t, plain)) => (Some(t), plain),
                None => (None, false),
            };
            let field_err = |e: value::ValueError| ModelError::Field {
                row,
                column: c.name,
                reason: e.0,
            };
            match (&mut self.builders[i], c.kind) {
                // Decoded below, once every code of the row is read.
                (Builder::Str(_), Kind::Label { .. }) => {}
                (Builder::Str(b), Kind::Param) => {
                    b.append_option(self.params.iter().find(|(k, _)| k == c.name).map(|(_, v)| v.as_str()))
                }
                (Builder::Str(b), _) => {
                    let v = match raw {
                        // Most strings: the text between the quotes, as it is.
                        Some(t) if plain => Some(std::borrow::Cow::Borrowed(&t[1..t.len() - 1])),
                        _ => raw.map(value::string_token).transpose().map_err(field_err)?.flatten(),
                    };
                    if self.is_label_source[i] {
                        self.codes[i].set_str(v.as_deref());
                    }
                    b.append_option(v);
                }
                (Builder::Int(b), _) => {
                    let v = raw.map(value::int_token).transpose().map_err(field_err)?.flatten();
                    if self.is_label_source[i] {
                        self.codes[i] = v.map_or(Code::None, Code::Int);
                    }
                    b.append_option(v);
                }
                (Builder::Dec(b, scale), _) => {
                    let v = raw.map(value::decimal_token).transpose().map_err(field_err)?.flatten();
                    match v {
                        Some(d) => {
                            let m = value::decimal_mantissa(d, DECIMAL_PRECISION, *scale).map_err(|e| {
                                field_err(value::ValueError(format!("{e} (token {})", raw.unwrap_or(""))))
                            })?;
                            b.append_value(m);
                            if let Some(slot) = self.money_slot[i] {
                                let sum = &mut self.money[slot].1;
                                *sum = sum
                                    .checked_add(d)
                                    .ok_or_else(|| ModelError::SumOverflow { row, column: c.name })?;
                            }
                        }
                        None => b.append_null(),
                    }
                }
                (Builder::Ts(b), _) => b.append_option(
                    raw.map(value::timestamp_token)
                        .transpose()
                        .map_err(field_err)?
                        .flatten(),
                ),
                (Builder::Date(b), _) => {
                    b.append_option(raw.map(value::date_token).transpose().map_err(field_err)?.flatten())
                }
                (Builder::Nested(b, shape), _) => {
                    let v: Option<serde_json::Value> = raw
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|e| field_err(value::ValueError(e.to_string())))?;
                    nested::append(b.as_mut(), shape, v.as_ref()).map_err(|e| field_err(value::ValueError(e)))?;
                }
            }
        }
        for (i, c) in self.columns.iter().enumerate() {
            if let (Builder::Str(b), Kind::Label { table, .. }) = (&mut self.builders[i], c.kind) {
                let ints = &self.label_ints[i];
                let label = match self.label_source[i].map(|src| &self.codes[src]) {
                    Some(Code::Int(code)) => ints.iter().position(|k| *k == Some(*code)),
                    Some(Code::Str(code)) => table.iter().position(|(k, _)| k == code),
                    _ => None,
                };
                b.append_option(label.map(|l| table[l].1));
            }
        }
        self.digest.update(record.as_bytes());
        self.digest.update(b"\n");
        self.rows += 1;
        Ok(())
    }

    /// The rows pushed since the last call, as one batch.
    pub fn take_batch(&mut self) -> Result<RecordBatch, ModelError> {
        let n = self.pending();
        let mut arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let mut account = StringBuilder::with_capacity(n, n * self.lineage.account_id.len());
        let mut run = StringBuilder::with_capacity(n, n * self.lineage.run_id.len());
        let mut at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        for _ in 0..n {
            account.append_value(&self.lineage.account_id);
            run.append_value(&self.lineage.run_id);
            at.append_value(self.lineage.extracted_at_micros);
        }
        arrays.push(Arc::new(account.finish()));
        arrays.push(Arc::new(run.finish()));
        arrays.push(Arc::new(at.finish()));
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }

    /// Money totals by column name.
    pub fn money_totals(&self) -> BTreeMap<String, Decimal> {
        self.money
            .iter()
            .map(|(i, d)| (self.columns[*i].name.to_string(), d.normalize()))
            .collect()
    }

    /// Hex digest of the schema and every served row, in order.
    pub fn content_digest(&self) -> String {
        hex::encode(self.digest.clone().finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Decimal128Array, Int64Array, StringArray};

    const CODES: &[(&str, &str)] = &[("1", "consumption"), ("2", "refund")];
    static COLS: [Column; 5] = [
        col("name", Kind::Str),
        renamed("resource_type_code", "resource_Type_code", Kind::Str),
        col("bill_type", Kind::Int),
        col(
            "bill_type_name",
            Kind::Label {
                of: "bill_type",
                table: CODES,
            },
        ),
        col("amount", MONEY),
    ];

    fn norm() -> Normalizer {
        let lineage = Lineage {
            account_id: "acc".into(),
            run_id: "run".into(),
            extracted_at_micros: 0,
        };
        Normalizer::new(schema("t", 1, &COLS), &COLS, &["amount"], lineage)
    }

    fn raw(s: &str) -> &str {
        s
    }

    /// Rows that repeat a key, read again with their key watched, are
    /// described: how many, their key, and the columns in which they differ.
    #[test]
    fn rows_a_key_cannot_tell_apart_are_described() {
        let rows = [
            r#"{"name":"vm","bill_type":5,"amount":1}"#,
            r#"{"name":"vm","bill_type":5,"amount":2}"#,
        ];
        let mut n = norm().with_unique_key(&["name", "bill_type"], None);
        for r in rows {
            n.push(r).unwrap();
        }
        let Err(ModelError::Duplicate { hash, row, first, .. }) = n.check_keys() else {
            panic!("the repeat is found")
        };
        assert_eq!((first, row), (0, 1));
        let mut again = norm().with_unique_key(&["name", "bill_type"], None);
        again.watch([hash]);
        for r in rows {
            again.push(r).unwrap();
        }
        let i = again.indistinct(hash).unwrap();
        assert_eq!((i.rows, i.key.as_str()), (2, "name=vm, bill_type=5"));
        assert_eq!(i.differ, ["amount"]);
        assert_eq!(norm().indistinct(hash), None, "nothing watched, nothing kept");
    }

    #[test]
    fn rows_become_typed_columns() {
        let mut n = norm();
        n.push(raw(r#"{"name":"云主机 ☁","resource_Type_code":"hws.resource.type.vm","bill_type":"2","amount":0.10000001,"extra":1}"#)).unwrap();
        n.push(raw(r#"{"name":null,"bill_type":9,"amount":"12345678901234.12345678"}"#))
            .unwrap();
        let b = n.take_batch().unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.num_columns(), 8);
        let names = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(names.value(0), "云主机 ☁");
        assert!(names.is_null(1));
        let rt = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(rt.value(0), "hws.resource.type.vm");
        let bt = b.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!((bt.value(0), bt.value(1)), (2, 9));
        let label = b.column(3).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(label.value(0), "refund");
        assert!(label.is_null(1), "unknown codes stay data: no label");
        let amt = b.column(4).as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(amt.value_as_string(0), "0.1000000100");
        assert_eq!(amt.value_as_string(1), "12345678901234.1234567800");
        assert_eq!(n.money_totals()["amount"].to_string(), "12345678901234.22345679");
        assert_eq!(n.unknown_keys.iter().collect::<Vec<_>>(), ["extra"]);
        assert_eq!(n.take_batch().unwrap().num_rows(), 0);
    }

    #[test]
    fn bad_values_name_row_and_column() {
        let mut n = norm();
        let e = n.push(raw(r#"{"bill_type":"x"}"#)).unwrap_err().to_string();
        assert!(e.contains("row 0") && e.contains("bill_type"), "{e}");
        assert!(n.push(raw("[1]")).is_err());
    }

    #[test]
    fn a_repeated_key_is_found_whether_its_keys_were_spilled_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let rows = keys::SPILL_AT as u64 + 10;
        for spill in [None, Some(dir.path().to_path_buf())] {
            let mut n = norm().with_unique_key(&["name", "bill_type"], spill.clone());
            let mut found = None;
            for row in 0..rows {
                // Row `rows - 1` repeats row 3's key, one spilled run apart.
                let k = if row == rows - 1 { 3 } else { row };
                if let Err(e) = n.push(&format!(r#"{{"name":"r{k}","bill_type":1}}"#)) {
                    found = Some(e);
                    break;
                }
                if row % 8192 == 0 {
                    n.take_batch().unwrap();
                }
            }
            let e = found.or_else(|| n.check_keys().err()).expect("the repeat is found");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("row {} repeats the key (name, bill_type) of row 3", rows - 1)),
                "{msg}"
            );
            // Rows whose first key column is empty are not keyed.
            let mut m = norm().with_unique_key(&["name"], spill);
            m.push(r#"{"bill_type":1}"#).unwrap();
            m.push(r#"{"bill_type":1}"#).unwrap();
            m.check_keys().unwrap();
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no run file is left behind"
        );
    }

    #[test]
    fn digest_depends_on_content_only() {
        let (mut a, mut b) = (norm(), norm());
        a.push(raw(r#"{"amount":1}"#)).unwrap();
        b.push(raw(r#"{"amount":1}"#)).unwrap();
        assert_eq!(a.content_digest(), b.content_digest());
        b.push(raw(r#"{"amount":2}"#)).unwrap();
        assert_ne!(a.content_digest(), b.content_digest());
    }
}
