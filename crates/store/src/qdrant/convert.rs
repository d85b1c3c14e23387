//! Conversions between aidocs types and Qdrant's gRPC messages (both directions: the client
//! sends what `to_*` builds; the test server in `testkit` reads it back with `from_*`).

use aidocs_core::{ChunkPayload, Filter, FilterField, FilterValue, Point, SparseVector, StoreError};
use qdrant_client::qdrant::{
    self as pb, condition::ConditionOneOf, point_id::PointIdOptions, r#match::MatchValue, vector_input,
    vector_output, vectors, vectors_output,
};
use std::collections::HashMap;

pub const DENSE: &str = "dense";
pub const SPARSE: &str = "sparse";

fn bad(what: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unexpected Qdrant response: {what}"))
}

pub fn to_id(id: uuid::Uuid) -> pb::PointId {
    pb::PointId { point_id_options: Some(PointIdOptions::Uuid(id.to_string())) }
}

pub fn from_id(id: Option<&pb::PointId>) -> Result<uuid::Uuid, StoreError> {
    match id.and_then(|i| i.point_id_options.as_ref()) {
        Some(PointIdOptions::Uuid(s)) => s.parse().map_err(|e| bad(format!("point id `{s}`: {e}"))),
        Some(PointIdOptions::Num(n)) => Err(bad(format!("numeric point id {n} (aidocs writes UUIDs)"))),
        None => Err(bad("point without id")),
    }
}

pub fn to_payload(p: &ChunkPayload) -> Result<HashMap<String, pb::Value>, StoreError> {
    let json = serde_json::to_value(p).map_err(|e| StoreError::Backend(e.to_string()))?;
    let payload = qdrant_client::Payload::try_from(json).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(payload.into())
}

pub fn from_payload(map: HashMap<String, pb::Value>) -> Result<ChunkPayload, StoreError> {
    let json: serde_json::Value = qdrant_client::Payload::from(map).into();
    serde_json::from_value(json).map_err(|e| bad(format!("payload: {e}")))
}

fn dense_vector(v: Vec<f32>) -> pb::Vector {
    pb::Vector { vector: Some(pb::vector::Vector::Dense(pb::DenseVector { data: v })), ..Default::default() }
}

fn sparse_vector(s: &SparseVector) -> pb::Vector {
    let sv = pb::SparseVector { values: s.values.clone(), indices: s.indices.clone() };
    pb::Vector { vector: Some(pb::vector::Vector::Sparse(sv)), ..Default::default() }
}

pub fn to_point(p: Point) -> Result<pb::PointStruct, StoreError> {
    let payload = to_payload(&p.payload)?;
    let mut named = HashMap::from([(DENSE.to_owned(), dense_vector(p.dense))]);
    if !p.sparse.is_empty() {
        named.insert(SPARSE.to_owned(), sparse_vector(&p.sparse));
    }
    Ok(pb::PointStruct {
        id: Some(to_id(p.id)),
        payload,
        vectors: Some(pb::Vectors { vectors_options: Some(vectors::VectorsOptions::Vectors(pb::NamedVectors { vectors: named })) }),
    })
}

/// The (dense, sparse) vectors of a point as sent in an upsert (the test server's side).
#[allow(deprecated)]
pub fn from_point_vectors(v: Option<pb::Vectors>) -> Result<(Vec<f32>, SparseVector), StoreError> {
    let Some(vectors::VectorsOptions::Vectors(named)) = v.and_then(|v| v.vectors_options) else {
        return Err(bad("point without named vectors"));
    };
    let mut dense = None;
    let mut sparse = SparseVector::default();
    for (name, v) in named.vectors {
        match (name.as_str(), v.vector) {
            (DENSE, Some(pb::vector::Vector::Dense(d))) => dense = Some(d.data),
            (SPARSE, Some(pb::vector::Vector::Sparse(s))) => sparse = SparseVector { indices: s.indices, values: s.values },
            (other, _) => return Err(bad(format!("vector `{other}`"))),
        }
    }
    Ok((dense.ok_or_else(|| bad("point without dense vector"))?, sparse))
}

/// The named vectors of a retrieved point.
pub fn from_vectors_output(id: uuid::Uuid, v: Option<pb::VectorsOutput>) -> Result<(Vec<f32>, SparseVector), StoreError> {
    let Some(vectors_output::VectorsOptions::Vectors(named)) = v.and_then(|v| v.vectors_options) else {
        return Err(bad(format!("point {id} has no named vectors")));
    };
    let mut dense = None;
    let mut sparse = SparseVector::default();
    for (name, v) in named.vectors {
        match (name.as_str(), v.into_vector()) {
            (DENSE, vector_output::Vector::Dense(d)) => dense = Some(d.data),
            (SPARSE, vector_output::Vector::Sparse(s)) => sparse = SparseVector { indices: s.indices, values: s.values },
            (other, _) => return Err(bad(format!("point {id}: vector `{other}`"))),
        }
    }
    Ok((dense.ok_or_else(|| bad(format!("point {id} has no dense vector")))?, sparse))
}

pub fn to_vectors_output(dense: Vec<f32>, sparse: &SparseVector) -> pb::VectorsOutput {
    let out = |v| pb::VectorOutput { vector: Some(v), ..Default::default() };
    let mut named = HashMap::from([(DENSE.to_owned(), out(vector_output::Vector::Dense(pb::DenseVector { data: dense })))]);
    if !sparse.is_empty() {
        let sv = pb::SparseVector { values: sparse.values.clone(), indices: sparse.indices.clone() };
        named.insert(SPARSE.to_owned(), out(vector_output::Vector::Sparse(sv)));
    }
    pb::VectorsOutput { vectors_options: Some(vectors_output::VectorsOptions::Vectors(pb::NamedVectorsOutput { vectors: named })) }
}

pub fn dense_input(v: &[f32]) -> pb::VectorInput {
    pb::VectorInput { variant: Some(vector_input::Variant::Dense(pb::DenseVector { data: v.to_vec() })) }
}

pub fn sparse_input(s: &SparseVector) -> pb::VectorInput {
    pb::VectorInput {
        variant: Some(vector_input::Variant::Sparse(pb::SparseVector { values: s.values.clone(), indices: s.indices.clone() })),
    }
}

fn timestamp(field: FilterField, s: &str) -> Result<prost_types::Timestamp, StoreError> {
    let d = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| StoreError::Backend(format!("filter `{field}`: `{s}` is not an RFC 3339 datetime ({e})")))?;
    Ok(prost_types::Timestamp { seconds: d.timestamp(), nanos: d.timestamp_subsec_nanos() as i32 })
}

fn field_condition(key: FilterField) -> pb::FieldCondition {
    pb::FieldCondition { key: key.as_str().to_owned(), ..Default::default() }
}

pub fn to_filter(filter: &Filter) -> Result<Option<pb::Filter>, StoreError> {
    if filter.is_empty() {
        return Ok(None);
    }
    let mut must = Vec::new();
    for (field, value) in &filter.must {
        let mut fc = field_condition(*field);
        let m = |v| Some(pb::Match { match_value: Some(v) });
        match value {
            FilterValue::Keyword(s) => fc.r#match = m(MatchValue::Keyword(s.clone())),
            FilterValue::AnyKeyword(v) => fc.r#match = m(MatchValue::Keywords(pb::RepeatedStrings { strings: v.clone() })),
            FilterValue::Integer(i) => fc.r#match = m(MatchValue::Integer(*i)),
            FilterValue::AnyInteger(v) => fc.r#match = m(MatchValue::Integers(pb::RepeatedIntegers { integers: v.clone() })),
            FilterValue::IntRange { gte, lte } => {
                fc.range = Some(pb::Range { gte: gte.map(|x| x as f64), lte: lte.map(|x| x as f64), ..Default::default() })
            }
            FilterValue::DateRange { gte, lte } => {
                fc.datetime_range = Some(pb::DatetimeRange {
                    gte: gte.as_deref().map(|s| timestamp(*field, s)).transpose()?,
                    lte: lte.as_deref().map(|s| timestamp(*field, s)).transpose()?,
                    ..Default::default()
                })
            }
        }
        must.push(pb::Condition { condition_one_of: Some(ConditionOneOf::Field(fc)) });
    }
    Ok(Some(pb::Filter { must, ..Default::default() }))
}

/// Read back a filter built by [`to_filter`] (the test server's side); anything else is an
/// error naming what is not understood.
pub fn from_filter(f: Option<pb::Filter>) -> Result<Filter, String> {
    let mut out = Filter::default();
    let Some(f) = f else { return Ok(out) };
    if !f.should.is_empty() || !f.must_not.is_empty() || f.min_should.is_some() {
        return Err("only `must` filters are supported".into());
    }
    for c in f.must {
        let Some(ConditionOneOf::Field(fc)) = c.condition_one_of else { return Err("only field conditions are supported".into()) };
        let field: FilterField = fc.key.parse()?;
        let ts = |t: Option<prost_types::Timestamp>| {
            t.map(|t| {
                chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
                    .map(|d| d.to_rfc3339())
                    .ok_or_else(|| format!("bad timestamp {t:?}"))
            })
            .transpose()
        };
        let value = match (fc.r#match.and_then(|m| m.match_value), fc.range, fc.datetime_range) {
            (Some(MatchValue::Keyword(s)), None, None) => FilterValue::Keyword(s),
            (Some(MatchValue::Keywords(v)), None, None) => FilterValue::AnyKeyword(v.strings),
            (Some(MatchValue::Integer(i)), None, None) => FilterValue::Integer(i),
            (Some(MatchValue::Integers(v)), None, None) => FilterValue::AnyInteger(v.integers),
            (None, Some(r), None) => FilterValue::IntRange { gte: r.gte.map(|x| x as i64), lte: r.lte.map(|x| x as i64) },
            (None, None, Some(r)) => FilterValue::DateRange { gte: ts(r.gte)?, lte: ts(r.lte)? },
            other => return Err(format!("unsupported condition on `{field}`: {other:?}")),
        };
        out = out.and(field, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_through_the_wire_types() {
        let f = Filter::default()
            .and(FilterField::Language, FilterValue::Keyword("rust".into()))
            .and(FilterField::Framework, FilterValue::AnyKeyword(vec!["axum".into(), "tokio".into()]))
            .and(FilterField::DifficultyLevel, FilterValue::IntRange { gte: Some(2), lte: Some(4) })
            .and(FilterField::LastUpdated, FilterValue::DateRange { gte: Some("2026-01-01T00:00:00+00:00".into()), lte: None });
        let wire = to_filter(&f).unwrap().unwrap();
        assert_eq!(wire.must.len(), 4);
        assert_eq!(from_filter(Some(wire)).unwrap(), f);
        assert_eq!(to_filter(&Filter::default()).unwrap(), None);
    }

    #[test]
    fn bad_datetime_is_named() {
        let f = Filter::default().and(FilterField::LastUpdated, FilterValue::DateRange { gte: Some("yesterday".into()), lte: None });
        let err = to_filter(&f).unwrap_err().to_string();
        assert!(err.contains("last_updated") && err.contains("yesterday"), "{err}");
    }

    #[test]
    fn points_round_trip_through_the_wire_types() {
        let p = crate::conformance::point(7, [1.0, 2.0, 3.0, 4.0], &[(3, 0.5), (9, 1.25)], "python");
        let wire = to_point(p.clone()).unwrap();
        assert_eq!(from_id(wire.id.as_ref()).unwrap(), p.id);
        let (dense, sparse) = from_point_vectors(wire.vectors).unwrap();
        assert_eq!((dense, sparse), (p.dense.clone(), p.sparse.clone()));
        assert_eq!(from_payload(wire.payload).unwrap(), p.payload);
        let (d, s) = from_vectors_output(p.id, Some(to_vectors_output(p.dense.clone(), &p.sparse))).unwrap();
        assert_eq!((d, s), (p.dense, p.sparse));
    }
}
