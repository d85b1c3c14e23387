//! Reading documentation whole: `GET /v1/sections/{id}`, `GET /v1/pages`,
//! `GET /v1/libraries` and `GET /v1/resolve` (what the MCP tools `get_section`, `get_page`,
//! `list_libraries` and `resolve_library` answer, as JSON), and `GET /v1/facets` (the
//! filter values a collection holds, for a search page's facets).

use crate::error::ApiError;
use crate::wire::{FacetQuery, FacetsResponse, Libraries, LibraryQuery, PageQuery, PageResponse, Resolution, ResolveQuery, SectionResponse};
use aidocs::{Engine, ErrorCode};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(section)).routes(routes!(page)).routes(routes!(libraries)).routes(routes!(resolve)).routes(routes!(facets))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
}

/// A section whole, by a chunk id from a search answer or a URL-encoded `page#anchor`, with
/// the titles and links of the sections before and after it.
#[utoipa::path(get, path = "/v1/sections/{id}", tag = "read", params(("id" = String, Path, description = "A hit's `id`, or `page-url#anchor` URL-encoded"), LibraryQuery),
    responses((status = 200, description = "The section", body = SectionResponse), (status = 404, description = "not_found", body = crate::wire::ErrorBody)))]
async fn section(State(engine): State<Engine>, Path(id): Path<String>, q: Result<Query<LibraryQuery>, QueryRejection>) -> Result<Json<SectionResponse>, ApiError> {
    let q = query(q)?;
    Ok(Json(engine.section(q.library.as_deref(), id.trim()).await?.into()))
}

/// A whole page in reading order, as many sections as fit `max_tokens`; `next_cursor` reads on.
#[utoipa::path(get, path = "/v1/pages", tag = "read", params(PageQuery),
    responses((status = 200, description = "The page or one stretch of it", body = PageResponse), (status = 404, description = "not_found", body = crate::wire::ErrorBody)))]
async fn page(State(engine): State<Engine>, q: Result<Query<PageQuery>, QueryRejection>) -> Result<Json<PageResponse>, ApiError> {
    let q = query(q)?;
    let max = aidocs::read::budget(q.max_tokens)?;
    Ok(Json(engine.page(q.library.as_deref(), q.url.trim(), q.cursor.unwrap_or(0), max).await?.into()))
}

/// Every library (collection) with its aliases, indexed versions, page and chunk counts,
/// sources and newest update.
#[utoipa::path(get, path = "/v1/libraries", tag = "read", responses((status = 200, description = "The libraries", body = Libraries)))]
async fn libraries(State(engine): State<Engine>) -> Result<Json<Libraries>, ApiError> {
    Ok(Json(engine.libraries().await?.into()))
}

/// A library name and version requirement (`react@^18.2`, `python>=3.10,<3.12`) to the
/// library and the newest indexed version that satisfies it; when none does, `version` is
/// absent and `note` lists what is indexed.
#[utoipa::path(get, path = "/v1/resolve", tag = "read", params(ResolveQuery),
    responses((status = 200, description = "The resolution", body = Resolution), (status = 404, description = "not_found: no such library", body = crate::wire::ErrorBody)))]
async fn resolve(State(engine): State<Engine>, q: Result<Query<ResolveQuery>, QueryRejection>) -> Result<Json<Resolution>, ApiError> {
    let q = query(q)?;
    Ok(Json(engine.resolve_library(&q.name, q.version.as_deref()).await?.into()))
}

/// Every value of `language`, `framework`, `doc_type` and `version` in a collection with its
/// chunk count over the whole collection (from the payload indexes), most chunks first.
#[utoipa::path(get, path = "/v1/facets", tag = "read", params(FacetQuery),
    responses((status = 200, description = "The facet values", body = FacetsResponse), (status = 404, description = "not_found: no such collection", body = crate::wire::ErrorBody)))]
async fn facets(State(engine): State<Engine>, q: Result<Query<FacetQuery>, QueryRejection>) -> Result<Json<FacetsResponse>, ApiError> {
    let q = query(q)?;
    Ok(Json(engine.facets(q.collection.as_deref().map(str::trim)).await?.into()))
}
