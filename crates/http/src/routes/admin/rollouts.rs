//! Canaries, blue-green deployments, A/B tests and `GET /deployment/status`.

use crate::error::{ApiError, ApiJson, to_json};
use crate::jobs::{Wait, run_job};
use crate::routes::documents::allowed_path;
use crate::wire::{AbCreate, BlueGreenBody, CanaryStart, RollbackBody, WaitQuery};
use aidocs::jobs::{JobKind, Jobs};
use aidocs::{Engine, ErrorCode};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new()
        .routes(routes!(canary_list, canary_start))
        .routes(routes!(canary_get))
        .routes(routes!(canary_action))
        .routes(routes!(blue_green))
        .routes(routes!(ab_list, ab_create))
        .routes(routes!(ab_status))
        .routes(routes!(ab_stop))
        .routes(routes!(deployment_status))
}

/// Start sending a share of an alias's traffic to a collection, in stages, with automatic
/// rollback on breached error-rate or latency limits.
#[utoipa::path(post, path = "/v1/admin/canaries", tag = "rollouts", request_body = CanaryStart, responses((status = 201, description = "The canary", body = Object)))]
async fn canary_start(State(engine): State<Engine>, ApiJson(body): ApiJson<CanaryStart>) -> Result<Response, ApiError> {
    let c = engine.rollout().canary_start(body.into()).await?;
    Ok((StatusCode::CREATED, Json(to_json(c)?)).into_response())
}

/// Every canary, active or ended.
#[utoipa::path(get, path = "/v1/admin/canaries", tag = "rollouts", responses((status = 200, description = "`canaries`", body = Object)))]
async fn canary_list(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"canaries": engine.rollout().canaries().await?})))
}

/// A canary's state and both arms' statistics in the current stage.
#[utoipa::path(get, path = "/v1/admin/canaries/{id}", tag = "rollouts", params(("id" = String, Path)), responses((status = 200, body = Object)))]
async fn canary_get(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(engine.rollout().canary_status(&id).await?)?))
}

/// `pause` (stage timer stops, traffic stays split), `resume`, or `rollback` (all traffic to
/// stable now; optional body `{"reason"}`).
#[utoipa::path(post, path = "/v1/admin/canaries/{id}/{action}", tag = "rollouts",
    params(("id" = String, Path), ("action" = String, Path, description = "pause, resume or rollback")),
    request_body(content = Option<RollbackBody>, description = "rollback only"),
    responses((status = 200, description = "The canary", body = Object)))]
async fn canary_action(State(engine): State<Engine>, Path((id, action)): Path<(String, String)>, body: axum::body::Bytes) -> Result<Json<Value>, ApiError> {
    let c = match action.as_str() {
        "pause" => engine.rollout().canary_pause(&id).await?,
        "resume" => engine.rollout().canary_resume(&id).await?,
        "rollback" => {
            let reason = if body.is_empty() {
                None
            } else {
                serde_json::from_slice::<RollbackBody>(&body).map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))?.reason
            };
            engine.rollout().canary_rollback(&id, reason.as_deref().unwrap_or("requested by an operator")).await?
        }
        other => return Err(ApiError::new(ErrorCode::NotFound, format!("unknown canary action `{other}` (pause, resume, rollback)"))),
    };
    Ok(Json(to_json(c)?))
}

/// Zero-downtime re-index of an alias: build green beside blue, validate, switch the alias
/// atomically, watch live traffic, keep blue for a grace period. Runs as a job.
#[utoipa::path(post, path = "/v1/admin/deploy/blue-green", tag = "rollouts", request_body = BlueGreenBody, params(WaitQuery),
    responses((status = 200, description = "The deployment", body = Object), (status = 202, description = "Still running: the job", body = Object)))]
async fn blue_green(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, ApiJson(body): ApiJson<BlueGreenBody>) -> Result<Response, ApiError> {
    let mut req: aidocs::rollout::BlueGreenRequest = body.into();
    // The tree green is built from is read on the server's machine: the same allow-list as
    // path ingest.
    req.source = allowed_path(&engine.config().ingest.allowed_roots, &req.source)?;
    let target = Some(req.alias.clone());
    run_job(&jobs, JobKind::BlueGreen, target, wait, StatusCode::OK, move |p| async move { engine.rollout().deploy_blue_green(req, p.as_ref()).await }).await
}

/// Split an alias's traffic between weighted variants (collection, mode, fusion, HyDE,
/// rerank); the first is the control.
#[utoipa::path(post, path = "/v1/admin/ab", tag = "rollouts", request_body = AbCreate, responses((status = 201, description = "The A/B test", body = Object)))]
async fn ab_create(State(engine): State<Engine>, ApiJson(body): ApiJson<AbCreate>) -> Result<Response, ApiError> {
    let req = body.try_into().map_err(|e: String| ApiError::new(ErrorCode::InvalidRequest, e))?;
    let t = engine.rollout().ab_create(req).await?;
    Ok((StatusCode::CREATED, Json(to_json(t)?)).into_response())
}

/// Every A/B test.
#[utoipa::path(get, path = "/v1/admin/ab", tag = "rollouts", responses((status = 200, description = "`ab_tests`", body = Object)))]
async fn ab_list(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"ab_tests": engine.rollout().ab_tests().await?})))
}

/// Per-variant metrics and significance against the control.
#[utoipa::path(get, path = "/v1/admin/ab/{id}", tag = "rollouts", params(("id" = String, Path)), responses((status = 200, body = Object)))]
async fn ab_status(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(engine.rollout().ab_status(&id).await?)?))
}

/// End an A/B test; traffic goes back to the alias.
#[utoipa::path(post, path = "/v1/admin/ab/{id}/stop", tag = "rollouts", params(("id" = String, Path)), responses((status = 200, body = Object)))]
async fn ab_stop(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(engine.rollout().ab_stop(&id).await?)?))
}

/// Active canaries, A/B tests and blue-green deployments, and the cleanup schedule.
#[utoipa::path(get, path = "/deployment/status", tag = "rollouts", responses((status = 200, body = Object)))]
async fn deployment_status(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(engine.rollout().deployment_status().await?)?))
}
