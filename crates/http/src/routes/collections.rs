//! `GET /v1/collections` and `GET /v1/collections/{name}`.

use crate::error::ApiError;
use crate::wire::{Collection, Collections};
use aidocs::Engine;
use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(collections)).routes(routes!(collection))
}

/// Every collection with its size, dimensions, aliases and properties.
#[utoipa::path(get, path = "/v1/collections", tag = "collections", responses((status = 200, body = Collections)))]
async fn collections(State(engine): State<Engine>) -> Result<Json<Collections>, ApiError> {
    Ok(Json(Collections { collections: engine.collections().list().await?.into_iter().map(Into::into).collect() }))
}

/// One collection, by name or alias.
#[utoipa::path(get, path = "/v1/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "Collection or alias")),
    responses((status = 200, body = Collection)))]
async fn collection(State(engine): State<Engine>, Path(name): Path<String>) -> Result<Json<Collection>, ApiError> {
    Ok(Json(engine.collections().get(&name).await?.into()))
}
