//! `/v1/admin/jobs`: running and recent admin jobs, their progress, and cancelling them.

use crate::error::{ApiError, to_json};
use aidocs::ErrorCode;
use aidocs::Engine;
use aidocs::jobs::{CancelError, Jobs};
use axum::Json;
use axum::extract::Path;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(job_list)).routes(routes!(job_get)).routes(routes!(job_cancel))
}

/// `GET /v1/admin/jobs`: every running job and the newest finished ones, newest first.
#[utoipa::path(get, path = "/v1/admin/jobs", tag = "admin", responses((status = 200, description = "`jobs`", body = Object)))]
async fn job_list(jobs: axum::Extension<Jobs>) -> Result<Json<Value>, ApiError> {
    let list = jobs
        .list()
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
    Ok(Json(json!({"jobs": list})))
}

/// `GET /v1/admin/jobs/{id}`: state, progress, and the result or error once it ended.
#[utoipa::path(get, path = "/v1/admin/jobs/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "The job", body = Object)))]
async fn job_get(
    jobs: axum::Extension<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = jobs
        .get(&id)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no job `{id}` (unknown, or finished long ago)"),
            )
        })?;
    Ok(Json(to_json(job)?))
}

/// `POST /v1/admin/jobs/{id}/cancel`: stop a running ingest or sync.
#[utoipa::path(post, path = "/v1/admin/jobs/{id}/cancel", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "The job, cancelled", body = Object)))]
async fn job_cancel(
    jobs: axum::Extension<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match jobs.cancel(&id).await {
        Ok(job) => Ok(Json(to_json(job)?)),
        Err(CancelError::NotFound) => Err(ApiError::new(ErrorCode::NotFound, format!("no job `{id}`"))),
        Err(CancelError::NotCancellable(why)) => Err(ApiError::new(ErrorCode::Conflict, why)),
        Err(CancelError::Unavailable(why)) => Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("shared job state: {why}"),
        )),
    }
}
