//! `DELETE /v1/admin/collections/{name}` and `DELETE /v1/admin/collections/{name}/versions/{version}`:
//! remove a library, or one indexed version of it.

use crate::error::ApiError;
use crate::wire::Removed;
use aidocs::Engine;
use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(delete_collection)).routes(routes!(delete_version))
}

/// Delete a collection and its aliases (by the collection's own name; an alias' name is
/// `collection_not_found`, so a stale alias never deletes what it points at).
#[utoipa::path(delete, path = "/v1/admin/collections/{name}", tag = "admin",
    params(("name" = String, Path, description = "The collection")),
    responses((status = 200, body = Removed)))]
async fn delete_collection(State(engine): State<Engine>, Path(name): Path<String>) -> Result<Json<Removed>, ApiError> {
    engine.collections().delete(&name).await?;
    Ok(Json(Removed { collection: name, version: None, chunks: None }))
}

/// Delete every chunk of one `version` of a collection (or alias); the other versions stay.
#[utoipa::path(delete, path = "/v1/admin/collections/{name}/versions/{version}", tag = "admin",
    params(("name" = String, Path, description = "Collection or alias"), ("version" = String, Path, description = "An indexed `version` value")),
    responses((status = 200, body = Removed)))]
async fn delete_version(State(engine): State<Engine>, Path((name, version)): Path<(String, String)>) -> Result<Json<Removed>, ApiError> {
    let chunks = engine.collections().delete_version(&name, &version).await?;
    Ok(Json(Removed { collection: name, version: Some(version), chunks: Some(chunks) }))
}
