//! `aidocs-backup` owns the protection of the index itself: a portable archive format for a
//! collection (the same for every [`VectorStore`] backend, so a backup of the embedded
//! store restores into a Qdrant server and back), full and incremental backups, integrity
//! verification, restore into a new collection with validation before any alias moves,
//! retention that never breaks an incremental chain, and recovery drills.
//!
//! Archives live in a [`Repository`]: a local directory or an object store (S3-compatible,
//! GCS, Azure) through the `object_store` crate. A backup exists once its catalog entry
//! (`<id>.json`, written after the archive `<id>.tar`) exists, so an interrupted backup is
//! never listed.
//!
//! Native backups ([`Backups::create_native`]) keep a store server's own snapshot (Qdrant)
//! in the same repository, checked by size and sha256: the fastest same-engine restore.
//!
//! It must not know about HTTP, the engine or the embedder: validation queries come in
//! through the [`RestoreValidator`] trait.
//!
//! [`VectorStore`]: aidocs_core::VectorStore

pub mod archive;
pub mod format;
mod native;
mod ops;
mod repo;

pub use format::{BackupKind, CollectionConfig, Manifest};
pub use ops::{
    BackupReport, BackupSettings, BackupSummary, Backups, DrillReport, NoValidation, PruneReport, RestoreOptions,
    RestoreReport, RestoreValidator, Retention, VerifyReport,
};
pub use native::{is_native_id, NativeBackupReport, NativeEntry, NativeRestoreReport};
pub use repo::{CatalogEntry, LocalArchive, Repository};

use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BackupError {
    #[error("backup `{0}` not found")]
    NotFound(String),
    #[error("backup `{backup}` is corrupt{}: {detail}", member.as_ref().map(|m| format!(" in member {m}")).unwrap_or_default())]
    Corrupt { backup: String, member: Option<String>, detail: String },
    #[error("invalid backup request: {0}")]
    Invalid(String),
    #[error("restore validation failed: {0}")]
    Validation(String),
    #[error("backup destination `{location}`: {detail}")]
    Destination { location: String, detail: String },
    #[error("I/O error at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] aidocs_core::StoreError),
}

impl BackupError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }
}

pub type Result<T, E = BackupError> = std::result::Result<T, E>;
