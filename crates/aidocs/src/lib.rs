//! `aidocs`: the composition crate.
//!
//! Owns configuration ([`config`], figment layers and templates), the [`Engine`] that
//! assembles embedder, sparse encoder, token counter and store from config, the search and
//! ingest pipelines, the HTTP API ([`api`], axum) and its error table ([`error`]).
//!
//! Must not know: the internals of any backend; it talks to them only through the traits in
//! `aidocs-core`. Binaries stay thin: they parse arguments and call into this crate.

pub mod api;
pub mod backup;
pub mod client;
pub mod config;
pub mod config_migrate;
pub mod engine;
pub mod error;
pub mod eval;
pub mod filters;
pub mod guard;
pub mod jobs;
pub mod metered;
pub mod migrate;
pub mod progress;
pub mod rollout;
pub mod web;

pub use config::{Config, ConfigSource};
pub use engine::{Engine, IngestReport, IngestRequest, Record, SearchHit, SearchRequest, SearchResponse, StageNote, StageTimings};
pub use error::{Error, ErrorCode, Result};

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
