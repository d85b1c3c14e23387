//! `POST /v1/admin/sync`: re-crawl every web source registered for a collection.

use crate::error::{ApiError, optional_body};
use crate::jobs::{Wait, run_job};
use crate::wire::{SyncBody, WaitQuery};
use aidocs::Engine;
use aidocs::jobs::{JobKind, Jobs};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(sync))
}

/// Re-crawl every web source registered for a collection with conditional requests; pages
/// that vanished are deleted. Runs as a job.
#[utoipa::path(post, path = "/v1/admin/sync", tag = "documents", request_body(content = Option<SyncBody>), params(WaitQuery),
    responses((status = 200, description = "`reports`, one per source", body = Object), (status = 202, description = "Still running: the job", body = Object)))]
async fn sync(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: SyncBody = optional_body(&body)?;
    let collection = b.collection.unwrap_or_else(|| engine.config().search.default_collection.clone());
    run_job(&jobs, JobKind::Sync, Some(collection.clone()), wait, StatusCode::OK, move |p| async move {
        engine.ingest().sync(&collection, p.as_ref()).await.map(|reports| crate::wire::SyncResponse { reports })
    })
    .await
}
