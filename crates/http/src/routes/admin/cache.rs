//! `GET /v1/admin/cache` and `DELETE /v1/admin/cache`.

use crate::error::ApiError;
use crate::wire::ClearQuery;
use aidocs::{Engine, ErrorCode};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(cache_stats, cache_clear))
}

/// Per-kind and per-tier counters and health of the cache.
#[utoipa::path(get, path = "/v1/admin/cache", tag = "admin", responses((status = 200, body = Object)))]
async fn cache_stats(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    Ok(Json(match engine.cache_stats() {
        Some(report) => crate::error::to_json(report)?,
        None => json!({"backend": "none"}),
    }))
}

/// Remove cached entries: one kind or all.
#[utoipa::path(delete, path = "/v1/admin/cache", tag = "admin", params(ClearQuery),
    responses((status = 200, description = "`removed` and `kind`", body = Object)))]
async fn cache_clear(State(engine): State<Engine>, query: Result<Query<ClearQuery>, QueryRejection>) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))?;
    let kind = q.kind.map(|k| k.parse::<aidocs::cache::CacheKind>()).transpose().map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e))?;
    let removed = engine.cache_clear(kind).await?;
    Ok(Json(json!({"removed": removed, "kind": kind.map_or("all", |k| k.as_str())})))
}
