//! Nested API values (lists of objects, objects) as Arrow list/struct columns.

use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, Int64Builder, ListBuilder, StringBuilder, StructBuilder};
use arrow_schema::{DataType, Field, Fields};
use serde_json::Value;

/// A const-declarable nested shape; `data_type` turns it into Arrow's.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape {
    Str,
    Int,
    Struct(&'static [(&'static str, Shape)]),
    List(&'static Shape),
}

impl Shape {
    pub fn data_type(&self) -> DataType {
        match self {
            Shape::Str => DataType::Utf8,
            Shape::Int => DataType::Int64,
            Shape::Struct(fields) => DataType::Struct(Self::fields(fields)),
            Shape::List(item) => DataType::List(Arc::new(Field::new("item", item.data_type(), true))),
        }
    }

    fn fields(fields: &[(&str, Shape)]) -> Fields {
        fields
            .iter()
            .map(|(n, s)| Field::new(*n, s.data_type(), true))
            .collect::<Vec<_>>()
            .into()
    }
}

/// Appends `v` (absent/null → null) to a builder made by `make_builder(shape.data_type())`.
pub fn append(b: &mut dyn ArrayBuilder, shape: &Shape, v: Option<&Value>) -> Result<(), String> {
    let v = v.filter(|v| !v.is_null());
    match shape {
        Shape::Str => {
            let b = b.as_any_mut().downcast_mut::<StringBuilder>().ok_or("string builder")?;
            match v {
                None => b.append_null(),
                Some(Value::String(s)) => b.append_value(s),
                Some(other) => b.append_value(other.to_string()),
            }
        }
        Shape::Int => {
            let b = b.as_any_mut().downcast_mut::<Int64Builder>().ok_or("int builder")?;
            match v {
                None => b.append_null(),
                Some(Value::Number(n)) if n.is_i64() => b.append_value(n.as_i64().unwrap_or_default()),
                Some(Value::String(s)) => {
                    b.append_value(s.trim().parse().map_err(|_| format!("not an integer: {s:?}"))?)
                }
                Some(other) => return Err(format!("expected an integer, got {other}")),
            }
        }
        Shape::Struct(fields) => {
            let sb = b.as_any_mut().downcast_mut::<StructBuilder>().ok_or("struct builder")?;
            let obj = match v {
                None => None,
                Some(Value::Object(m)) => Some(m),
                Some(other) => return Err(format!("expected an object, got {other}")),
            };
            for (i, (name, s)) in fields.iter().enumerate() {
                append(sb.field_builders_mut()[i].as_mut(), s, obj.and_then(|m| m.get(*name)))?;
            }
            sb.append(obj.is_some());
        }
        Shape::List(item) => {
            let lb = b
                .as_any_mut()
                .downcast_mut::<ListBuilder<Box<dyn ArrayBuilder>>>()
                .ok_or("list builder")?;
            match v {
                None => lb.append(false),
                Some(Value::Array(items)) => {
                    for it in items {
                        append(lb.values().as_mut(), item, Some(it))?;
                    }
                    lb.append(true);
                }
                Some(other) => return Err(format!("expected a list, got {other}")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::make_builder;
    use arrow_array::{Array, ListArray, StructArray};

    const RELATION: Shape = Shape::Struct(&[("relative_resource_id", Shape::Str), ("relative_type", Shape::Str)]);
    const EXTEND: Shape = Shape::Struct(&[
        ("self_resource_id", Shape::Str),
        ("relation_infos", Shape::List(&RELATION)),
    ]);

    #[test]
    fn objects_and_lists_nest() {
        let mut b = make_builder(&EXTEND.data_type(), 4);
        let rows = [
            r#"{"self_resource_id":"r1","relation_infos":[{"relative_resource_id":"p","relative_type":"PARENT"}]}"#,
            "null",
            r#"{"self_resource_id":"r2","relation_infos":[]}"#,
        ];
        for r in rows {
            let v: Value = serde_json::from_str(r).unwrap();
            append(b.as_mut(), &EXTEND, Some(&v)).unwrap();
        }
        let a = b.finish();
        let s = a.as_any().downcast_ref::<StructArray>().unwrap();
        assert_eq!(s.len(), 3);
        assert!(s.is_null(1));
        let rel = s.column(1).as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(rel.value_length(0), 1);
        assert_eq!(rel.value_length(2), 0);
        assert!(append(b.as_mut(), &EXTEND, Some(&Value::from(3))).is_err());
    }
}
