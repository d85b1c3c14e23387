//! Filters from the outside world (JSON objects, CLI `key=value` pairs) into core filters,
//! validated against each field's type.

use crate::error::{Error, Result};
use aidocs_core::{FieldKind, Filter, FilterField, FilterValue};
use serde_json::Value;

fn bad(field: FilterField, msg: &str) -> Error {
    Error::InvalidRequest(format!("filter `{field}`: {msg}"))
}

fn parse_field(name: &str) -> Result<FilterField> {
    name.parse().map_err(Error::InvalidRequest)
}

fn check_datetime(field: FilterField, s: &str) -> Result<String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|_| s.to_owned())
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| format!("{d}T00:00:00Z"))
        })
        .map_err(|_| bad(field, &format!("`{s}` is not an RFC 3339 datetime or YYYY-MM-DD date")))
}

/// `{"language": "python", "version": ["3.11", "3.12"], "difficulty_level": {"lte": 2},
/// "last_updated": {"gte": "2026-01-01"}}`
pub fn from_json(v: &Value) -> Result<Filter> {
    let obj = match v {
        Value::Null => return Ok(Filter::default()),
        Value::Object(o) => o,
        _ => return Err(Error::InvalidRequest("`filter` must be an object of field -> value".into())),
    };
    let mut filter = Filter::default();
    for (name, value) in obj {
        let field = parse_field(name)?;
        let fv = match (field.kind(), value) {
            (FieldKind::Keyword, Value::String(s)) => FilterValue::Keyword(s.clone()),
            (FieldKind::Keyword, Value::Array(items)) => FilterValue::AnyKeyword(
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned).ok_or_else(|| bad(field, "list items must be strings")))
                    .collect::<Result<_>>()?,
            ),
            (FieldKind::Integer, Value::Number(n)) => {
                FilterValue::Integer(n.as_i64().ok_or_else(|| bad(field, "must be an integer"))?)
            }
            (FieldKind::Integer, Value::Array(items)) => FilterValue::AnyInteger(
                items.iter().map(|i| i.as_i64().ok_or_else(|| bad(field, "list items must be integers"))).collect::<Result<_>>()?,
            ),
            (FieldKind::Integer, Value::Object(r)) => {
                let get = |k: &str| r.get(k).map(|x| x.as_i64().ok_or_else(|| bad(field, &format!("`{k}` must be an integer")))).transpose();
                reject_other_keys(field, r)?;
                FilterValue::IntRange { gte: get("gte")?, lte: get("lte")? }
            }
            (FieldKind::Datetime, Value::Object(r)) => {
                let get = |k: &str| {
                    r.get(k)
                        .map(|x| x.as_str().ok_or_else(|| bad(field, &format!("`{k}` must be a string"))).and_then(|s| check_datetime(field, s)))
                        .transpose()
                };
                reject_other_keys(field, r)?;
                FilterValue::DateRange { gte: get("gte")?, lte: get("lte")? }
            }
            (FieldKind::Keyword, _) => return Err(bad(field, "must be a string or a list of strings")),
            (FieldKind::Integer, _) => return Err(bad(field, "must be an integer, a list of integers or {\"gte\", \"lte\"}")),
            (FieldKind::Datetime, _) => return Err(bad(field, "must be a range object {\"gte\": ..., \"lte\": ...}")),
        };
        filter.must.push((field, fv));
    }
    Ok(filter)
}

fn reject_other_keys(field: FilterField, r: &serde_json::Map<String, Value>) -> Result<()> {
    match r.keys().find(|k| *k != "gte" && *k != "lte") {
        Some(k) => Err(bad(field, &format!("unknown range key `{k}` (use gte, lte)"))),
        None if r.is_empty() => Err(bad(field, "empty range")),
        None => Ok(()),
    }
}

/// CLI pairs: `language=python` (repeat a key for any-of), `difficulty_level<=2`,
/// `last_updated>=2026-01-01`.
pub fn from_pairs(pairs: &[String]) -> Result<Filter> {
    let mut obj = serde_json::Map::new();
    for pair in pairs {
        let (name, op, value) = ["<=", ">=", "="]
            .iter()
            .find_map(|op| pair.split_once(op).map(|(k, v)| (k.trim(), *op, v.trim())))
            .ok_or_else(|| Error::InvalidRequest(format!("filter `{pair}` must look like key=value, key>=value or key<=value")))?;
        let field = parse_field(name)?;
        let json_value = match field.kind() {
            FieldKind::Integer => Value::from(value.parse::<i64>().map_err(|_| bad(field, &format!("`{value}` is not an integer")))?),
            _ => Value::from(value),
        };
        match op {
            "=" => match obj.remove(name) {
                None => {
                    obj.insert(name.to_owned(), json_value);
                }
                Some(Value::Array(mut items)) => {
                    items.push(json_value);
                    obj.insert(name.to_owned(), Value::Array(items));
                }
                Some(prev) => {
                    obj.insert(name.to_owned(), Value::Array(vec![prev, json_value]));
                }
            },
            _ => {
                let key = if op == ">=" { "gte" } else { "lte" };
                let entry = obj.entry(name.to_owned()).or_insert_with(|| Value::Object(Default::default()));
                match entry.as_object_mut() {
                    Some(r) => {
                        r.insert(key.into(), json_value);
                    }
                    None => return Err(bad(field, "cannot mix = and a range")),
                }
            }
        }
    }
    from_json(&Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_filters_by_field_type() {
        let f = from_json(&json!({"language": "python", "version": ["3.11", "3.12"], "difficulty_level": {"lte": 2}, "last_updated": {"gte": "2026-01-01"}})).unwrap();
        assert!(f.must.contains(&(FilterField::Language, FilterValue::Keyword("python".into()))));
        assert!(f.must.contains(&(FilterField::Version, FilterValue::AnyKeyword(vec!["3.11".into(), "3.12".into()]))));
        assert!(f.must.contains(&(FilterField::DifficultyLevel, FilterValue::IntRange { gte: None, lte: Some(2) })));
        assert!(f.must.contains(&(FilterField::LastUpdated, FilterValue::DateRange { gte: Some("2026-01-01T00:00:00Z".into()), lte: None })));
    }

    #[test]
    fn bad_filters_name_the_problem() {
        let e = from_json(&json!({"colour": "red"})).unwrap_err().to_string();
        assert!(e.contains("unknown filter field `colour`"), "{e}");
        let e = from_json(&json!({"language": 3})).unwrap_err().to_string();
        assert!(e.contains("filter `language`"), "{e}");
        let e = from_json(&json!({"last_updated": {"gte": "yesterday"}})).unwrap_err().to_string();
        assert!(e.contains("yesterday"), "{e}");
        assert!(from_json(&json!([1])).is_err());
    }

    #[test]
    fn cli_pairs() {
        let f = from_pairs(&["language=python".into(), "language=rust".into(), "difficulty_level>=2".into()]).unwrap();
        assert!(f.must.contains(&(FilterField::Language, FilterValue::AnyKeyword(vec!["python".into(), "rust".into()]))));
        assert!(f.must.contains(&(FilterField::DifficultyLevel, FilterValue::IntRange { gte: Some(2), lte: None })));
        assert!(from_pairs(&["nonsense".into()]).unwrap_err().to_string().contains("key=value"));
        assert!(from_pairs(&["difficulty_level=hard".into()]).unwrap_err().to_string().contains("not an integer"));
    }
}
