//! What a warehouse needs to know about a dataset: the committed contract
//! (`schemas/<dataset>.json`) and DDL to register the output as external tables.
//! It describes datasets (source) through their schemas (model), so it sits
//! above both.

use arrow_schema::DataType;
use serde_json::json;

use crate::model::{Kind, LINEAGE};
use crate::source::api::Method;
use crate::source::datasets::DatasetSpec;

fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 => "string".into(),
        DataType::Int64 => "int64".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Timestamp(_, _) => "timestamp(us, UTC)".into(),
        DataType::Date32 => "date32".into(),
        other => other.to_string(),
    }
}

/// The contract file: a test fails when the code's schema and the committed file differ.
pub fn contract(spec: &DatasetSpec) -> serde_json::Value {
    let schema = spec.schema();
    let columns: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut c = json!({
                "name": f.name(),
                "type": type_name(f.data_type()),
                "nullable": f.is_nullable(),
            });
            if let Some(col) = spec.columns.iter().find(|c| c.name == f.name()) {
                if col.json != col.name {
                    c["json_key"] = json!(col.json);
                }
                if let Kind::Label { of, .. } = col.kind {
                    c["decodes"] = json!(of);
                }
            } else if LINEAGE.contains(&f.name().trim_start_matches(spec.lineage_prefix)) {
                c["lineage"] = json!(true);
            }
            c
        })
        .collect();
    json!({
        "dataset": spec.name,
        "schema_version": spec.version,
        "description": spec.description,
        "source": {
            "operation": spec.api.sdk_operation(),
            "method": match spec.api.method() { Method::Get => "GET", Method::Post => "POST" },
            "path": spec.api.path(),
        },
        "partitioning": [spec.partition_key],
        "layout": format!("{}/{}=YYYY-MM/part-<account>.parquet", spec.name, spec.partition_key),
        "key_columns": spec.key_columns(),
        "key_sources": spec.key.iter().map(|k| json!({"column": k.column, "from": k.from})).collect::<Vec<_>>(),
        "money_columns": spec.money_columns,
        "columns": columns,
    })
}

pub fn contract_text(spec: &DatasetSpec) -> String {
    let mut s = serde_json::to_string_pretty(&contract(spec)).expect("contract serialises");
    s.push('\n');
    s
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Arrow,
    Duckdb,
    Spark,
    Trino,
}

fn sql_type(dt: &DataType, f: Format) -> String {
    let trino = f == Format::Trino;
    match dt {
        DataType::Utf8 if trino => "varchar".into(),
        DataType::Utf8 => "STRING".into(),
        DataType::Int64 if trino => "bigint".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Decimal128(p, s) if trino => format!("decimal({p},{s})"),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        // Values are UTC instants; Trino's Hive connector reads them as plain timestamps.
        DataType::Timestamp(_, _) if trino => "timestamp(6)".into(),
        DataType::Timestamp(_, _) => "TIMESTAMP".into(),
        DataType::Date32 if trino => "date".into(),
        DataType::Date32 => "DATE".into(),
        DataType::List(item) if trino => format!("array({})", sql_type(item.data_type(), f)),
        DataType::List(item) => format!("ARRAY<{}>", sql_type(item.data_type(), f)),
        DataType::Struct(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|c| {
                    if trino {
                        format!("{} {}", c.name(), sql_type(c.data_type(), f))
                    } else {
                        format!("{}: {}", c.name(), sql_type(c.data_type(), f))
                    }
                })
                .collect();
            if trino {
                format!("row({})", parts.join(", "))
            } else {
                format!("STRUCT<{}>", parts.join(", "))
            }
        }
        other => other.to_string(),
    }
}

/// Statements that register `<location>/<dataset>` in a warehouse.
pub fn render(spec: &DatasetSpec, format: Format, location: &str) -> String {
    let schema = spec.schema();
    let loc = format!("{}/{}", location.trim_end_matches('/'), spec.name);
    let cols = |f: Format, quote: char| -> Vec<String> {
        schema
            .fields()
            .iter()
            .filter(|c| c.name() != spec.partition_key)
            .map(|c| format!("  {quote}{}{quote} {}", c.name(), sql_type(c.data_type(), f)))
            .collect()
    };
    match format {
        Format::Json => contract_text(spec),
        Format::Arrow => {
            let mut s = format!("// {} (schema version {})\n", spec.name, spec.version);
            for f in schema.fields() {
                s.push_str(&format!(
                    "{}: {}{}\n",
                    f.name(),
                    f.data_type(),
                    if f.is_nullable() { "" } else { " not null" }
                ));
            }
            s.push_str(&format!(
                "// partitioned by {} (Hive directories)\n",
                spec.partition_key
            ));
            s
        }
        Format::Duckdb => format!(
            "CREATE OR REPLACE VIEW {name} AS\n  SELECT * FROM read_parquet('{loc}/*/*.parquet', hive_partitioning = true, union_by_name = true);\n",
            name = spec.name
        ),
        Format::Spark => format!(
            "CREATE TABLE IF NOT EXISTS {name} (\n{cols},\n  `{p}` STRING\n) USING PARQUET\nPARTITIONED BY (`{p}`)\nLOCATION '{loc}';\nMSCK REPAIR TABLE {name};\n",
            name = spec.name,
            cols = cols(Format::Spark, '`').join(",\n"),
            p = spec.partition_key
        ),
        Format::Trino => format!(
            "CREATE TABLE IF NOT EXISTS hive.billing.{name} (\n{cols},\n  \"{p}\" varchar\n) WITH (\n  format = 'PARQUET',\n  partitioned_by = ARRAY['{p}'],\n  external_location = '{loc}'\n);\nCALL hive.system.sync_partition_metadata('billing', '{name}', 'ADD');\n",
            name = spec.name,
            cols = cols(Format::Trino, '"').join(",\n"),
            p = spec.partition_key
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::datasets;

    #[test]
    fn ddl_declares_every_column_once_and_the_partition_as_partition() {
        for spec in datasets::ALL {
            for f in [Format::Spark, Format::Trino] {
                let ddl = render(spec, f, "s3://bucket/out");
                let q = if f == Format::Spark { '`' } else { '"' };
                for field in spec.schema().fields() {
                    let decl = format!("  {q}{}{q} ", field.name());
                    assert_eq!(ddl.matches(&decl).count(), 1, "{} in {f:?}:\n{ddl}", field.name());
                }
                assert!(ddl.contains(&format!("s3://bucket/out/{}", spec.name)), "{ddl}");
            }
            assert!(render(spec, Format::Duckdb, "out").contains("hive_partitioning = true"));
            assert!(render(spec, Format::Arrow, "out").contains("hcbill_run_id: Utf8 not null"));
        }
    }
}
