//! `aidocs`: the application.
//!
//! Owns the [`Engine`] that assembles embedder, sparse encoder, token counter, caches and
//! store from the resolved settings (`aidocs-config`, re-exported as [`config`]), the search
//! and ingest pipelines, rollouts (canaries, blue-green, A/B tests), backups, admin jobs, and
//! the one error table ([`error`]: each error's code and HTTP status).
//!
//! Must not know: HTTP (that is `aidocs-http`), how settings are read from files and the
//! environment (`aidocs-config`), or the internals of any backend: it talks to them only
//! through the traits in `aidocs-core`.

/// Settings: the `aidocs-config` crate.
pub use aidocs_config as config;
/// `aidocs config migrate`: the `aidocs-config` crate's `migrate`.
pub use aidocs_config::migrate as config_migrate;
pub mod backup;
pub mod clones;
pub mod collections;
pub mod engine;
pub mod error;
pub mod filters;
pub mod guard;
pub mod ingest;
pub mod jobs;
pub mod metered;
pub mod migrate;
pub mod progress;
pub mod read;
pub mod report;
pub mod rollout;
pub mod rollout_state;
pub mod scheduler;
pub mod search;
pub mod sources;
pub mod warm;

pub use config::{Config, ConfigSource};
pub use engine::Engine;
pub use search::{SearchHit, SearchRequest, SearchResponse, StageNote, StageTimings};
pub use error::{Error, ErrorCode, Result};
pub use ingest::{IngestRequest, IngestService, Record};
pub use report::{IngestReport, IngestStages};

/// Re-exports for embedders of the library.
pub use aidocs_core as core;
/// Metrics and log setup.
pub use aidocs_obs as obs;
/// Repair of an embedded data dir the store refuses to open (`aidocs repair`).
pub mod repair {
    pub use aidocs_store::RepairReport;

    /// Restore the previous catalog generation when `catalog.json` is missing or corrupt, and
    /// list (with `remove_orphans`, delete) collection directories no catalog entry names.
    /// Takes the data-dir lock, so never runs beside a server.
    pub fn repair(data_dir: &std::path::Path, remove_orphans: bool) -> crate::Result<RepairReport> {
        Ok(aidocs_store::EdgeStore::repair(data_dir, remove_orphans)?)
    }
}

/// The cache key scheme and kinds.
pub mod cache {
    pub use aidocs_cache::clear;
    pub use aidocs_cache::keys::{self, CacheKind};
}
