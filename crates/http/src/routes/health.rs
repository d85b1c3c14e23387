//! Liveness, readiness, metrics and the OpenAPI document (public: never shed, limited or
//! authenticated), and `/health/detailed` (admin scope: it lists every collection and runs an
//! embedding).

use crate::error::ApiError;
use crate::layers::ApiStats;
use crate::wire::Health;
use aidocs::engine::WarmState;
use aidocs::{Engine, ErrorCode};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Liveness, readiness and metrics.
pub fn public() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready)).routes(routes!(metrics))
}

/// `/health/detailed`.
pub fn detailed_router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(detailed))
}

/// Liveness: answers as long as the process serves HTTP; calls no dependency.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// Readiness: the store answers, the model is loaded and the warm-up at start is done. A
/// degraded cache is reported, but the service is still ready (search bypasses it).
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "`status`, `store`, `model`, `cache`", body = Object), (status = 503, description = "`warming` (the model and the store are being warmed at start), or the store does not answer", body = Object)))]
async fn ready(State(engine): State<Engine>) -> Response {
    if engine.warm_state() == WarmState::Running {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "warming"}))).into_response();
    }
    match engine.store().list_aliases().await {
        Ok(_) => Json(json!({
            "status": "ready",
            "store": engine.store().backend(),
            "model": engine.embedder().model_id(),
            "cache": engine.cache_health(),
        }))
        .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "store": e.to_string()}))).into_response(),
    }
}

/// The Prometheus text exposition (catalogue in `docs/metrics.md`). Expose it to the
/// scraper only.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(engine): State<Engine>) -> Result<Response, ApiError> {
    engine.refresh_store_metrics().await;
    let text = engine.metrics().encode().map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// Every dependency probed, with latency, and the request counters; 503 only when unhealthy.
#[utoipa::path(get, path = "/health/detailed", tag = "health",
    responses((status = 200, description = "`status`, `services`, `warm_up` (the warm-up at start: `state`, and once `done` its `embed_ms`, `store_ms`, `collections`, `skipped` and `timed_out`), `metrics`", body = Object), (status = 503, description = "Unhealthy", body = Object)))]
async fn detailed(State(engine): State<Engine>, axum::Extension(stats): axum::Extension<Arc<ApiStats>>) -> Response {
    let (status, services) = engine.health_detailed().await;
    let requests = stats.requests.load(Ordering::Relaxed);
    let errors = stats.errors.load(Ordering::Relaxed);
    let body = json!({
        "status": status,
        "services": services,
        "warm_up": engine.warm_state(),
        "metrics": {
            "uptime_s": stats.started.elapsed().as_secs(),
            "requests_total": requests,
            "errors_total": errors,
            "error_rate": if requests == 0 { 0.0 } else { errors as f64 / requests as f64 },
        },
    });
    let code = if status == aidocs::engine::Health::Unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, Json(body)).into_response()
}
