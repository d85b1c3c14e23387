//! One module per resource, each returning an [`OpenApiRouter`] over the engine: the routes
//! and, from their `#[utoipa::path]` annotations, their part of the OpenAPI document.
//! Scopes, deadlines, rate limits and shedding are not here: the assembly in the crate root
//! puts them on the routers that need them.

use aidocs::Engine;
use utoipa_axum::router::OpenApiRouter;

pub mod admin;
pub mod collections;
pub mod documents;
pub mod health;
pub mod read;
pub mod search;
pub mod ui;

/// The routers of the search scope: search, feedback, collection reads, sections, pages,
/// libraries.
pub fn reads() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().merge(search::router()).merge(collections::router()).merge(read::router())
}
