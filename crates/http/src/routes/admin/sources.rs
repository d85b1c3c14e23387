//! `GET /v1/admin/sources`: the web sources the server keeps fresh on a schedule, with
//! their newest run, next due time and failures in a row (shared by every replica).

use crate::error::ApiError;
use crate::wire::Sources;
use aidocs::Engine;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(sources))
}

/// Every `[[sources]]` entry with its schedule, its newest run (pages seen, changed and
/// removed, which replica made it), the next due time and the last error.
#[utoipa::path(get, path = "/v1/admin/sources", tag = "admin", responses((status = 200, description = "`sources`", body = Sources)))]
async fn sources(State(engine): State<Engine>) -> Result<Json<Sources>, ApiError> {
    let list = engine.sources().status().await?;
    Ok(Json(Sources { sources: list.into_iter().map(Into::into).collect() }))
}
