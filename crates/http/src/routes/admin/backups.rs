//! `/v1/admin/backups`: create, list, verify, restore, prune and drill backups.

use crate::error::{ApiError, optional_body, to_json};
use crate::jobs::{Wait, run_job};
use crate::wire::{BackupCreateBody, BackupListQuery, DrillBody, PruneBody, RestoreBody, WaitQuery};
use aidocs::backup::{BackupKind, is_native_id};
use aidocs::jobs::{JobKind, Jobs};
use aidocs::{Engine, ErrorCode};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new()
        .routes(routes!(backup_list, backup_create))
        .routes(routes!(backup_prune))
        .routes(routes!(backup_drill))
        .routes(routes!(backup_verify))
        .routes(routes!(backup_restore))
}

/// The report of a backup operation on an aidocs archive or a native (Qdrant snapshot)
/// backup, serialized as that report itself.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum BackupReport<A, N> {
    Archive(A),
    Native(N),
}

/// `POST /v1/admin/backups`: back up a collection now.
#[utoipa::path(post, path = "/v1/admin/backups", tag = "backups", request_body(content = Option<BackupCreateBody>), params(WaitQuery),
    responses((status = 201, description = "The backup", body = Object), (status = 202, description = "Still running: the job", body = Object)))]
async fn backup_create(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: BackupCreateBody = optional_body(&body)?;
    let kind = b.kind.map_or(BackupKind::Full, Into::into);
    if b.native && b.kind.is_some() {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "a native backup is always a full snapshot; leave out `type`"));
    }
    let target = b.collection.clone();
    run_job(
        &jobs,
        JobKind::BackupCreate,
        target,
        wait,
        StatusCode::CREATED,
        move |_| async move {
            Ok(if b.native {
                BackupReport::Native(engine.backup().create_native(b.collection.as_deref()).await?)
            } else {
                BackupReport::Archive(engine.backup().create(b.collection.as_deref(), kind).await?)
            })
        },
    )
    .await
}

/// `GET /v1/admin/backups[?collection=C]`.
#[utoipa::path(get, path = "/v1/admin/backups", tag = "backups", params(BackupListQuery), responses((status = 200, description = "`backups` and `native`, oldest first", body = Object)))]
async fn backup_list(State(engine): State<Engine>, query: Result<Query<BackupListQuery>, QueryRejection>) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))?;
    let c = q.collection.as_deref();
    Ok(Json(to_json(crate::wire::BackupList { backups: engine.backup().list(c).await?, native: engine.backup().list_native(c).await? })?))
}

/// `POST /v1/admin/backups/{id}/verify`: 200 with the checked chain, or 422 `backup_corrupt`.
#[utoipa::path(post, path = "/v1/admin/backups/{id}/verify", tag = "backups", params(("id" = String, Path)),
    responses((status = 200, description = "The checked chain", body = Object), (status = 422, description = "backup_corrupt", body = crate::wire::ErrorBody)))]
async fn backup_verify(
    State(engine): State<Engine>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(if is_native_id(&id) {
        BackupReport::Native(engine.backup().verify_native(&id).await?)
    } else {
        BackupReport::Archive(engine.backup().verify(&id).await?)
    })?))
}

/// `POST /v1/admin/backups/{id}/restore`: verify, restore into a new collection, validate,
/// then switch the alias if asked.
#[utoipa::path(post, path = "/v1/admin/backups/{id}/restore", tag = "backups", params(("id" = String, Path), WaitQuery), request_body(content = Option<RestoreBody>),
    responses((status = 200, description = "The restore report", body = Object), (status = 202, description = "Still running: the job", body = Object)))]
async fn backup_restore(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, Path(id): Path<String>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let req: aidocs::backup::RestoreRequest = optional_body::<RestoreBody>(&body)?.into();
    run_job(
        &jobs,
        JobKind::BackupRestore,
        Some(id.clone()),
        wait,
        StatusCode::OK,
        move |_| async move {
            Ok(if is_native_id(&id) {
                BackupReport::Native(engine.backup().restore_native(&id, req).await?)
            } else {
                BackupReport::Archive(engine.backup().restore(&id, req).await?)
            })
        },
    )
    .await
}

/// `POST /v1/admin/backups/prune`: retention from the body, else from `[backup]`.
#[utoipa::path(post, path = "/v1/admin/backups/prune", tag = "backups", request_body(content = Option<PruneBody>), responses((status = 200, description = "What was deleted and kept", body = Object)))]
async fn backup_prune(State(engine): State<Engine>, body: axum::body::Bytes) -> Result<Json<Value>, ApiError> {
    let b: PruneBody = optional_body(&body)?;
    let policy = (b.keep_last.is_some() || b.keep_days.is_some()).then_some(aidocs::backup::Retention { keep_last: b.keep_last, keep_days: b.keep_days });
    Ok(Json(to_json(engine.backup().prune(policy).await?)?))
}

/// `POST /v1/admin/backups/drill`: restore the newest backup into a temporary collection,
/// check it, delete it, report.
#[utoipa::path(post, path = "/v1/admin/backups/drill", tag = "backups", request_body(content = Option<DrillBody>), params(WaitQuery),
    responses((status = 200, description = "The drill report", body = Object), (status = 202, description = "Still running: the job", body = Object)))]
async fn backup_drill(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: DrillBody = optional_body(&body)?;
    run_job(&jobs, JobKind::BackupDrill, b.collection.clone(), wait, StatusCode::OK, move |_| async move { engine.backup().drill(b.collection.as_deref()).await }).await
}
