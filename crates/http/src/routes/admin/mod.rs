//! The admin routers (admin scope, `server.admin_timeout_ms` deadline): cache, collection
//! and version removal, rollouts
//! (canaries, blue-green, A/B tests, deployment status), backups, sync, scheduled sources,
//! jobs, profiling.

use aidocs::Engine;
use utoipa_axum::router::OpenApiRouter;

pub mod backups;
pub mod cache;
pub mod collections;
pub mod jobs;
pub mod profile;
pub mod rollouts;
pub mod sources;
pub mod sync;

/// Every admin router, `/v1/documents` included (it writes).
pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new()
        .merge(super::documents::router())
        .merge(cache::router())
        .merge(collections::router())
        .merge(rollouts::router())
        .merge(backups::router())
        .merge(sync::router())
        .merge(sources::router())
        .merge(jobs::router())
        .merge(profile::router())
}
