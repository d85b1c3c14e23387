//! Error types shared across layers.

use thiserror::Error;

/// Errors a [`crate::VectorStore`] reports. Each variant is a distinct, user-visible
/// situation; the composition crate maps them to HTTP statuses in one table.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("collection `{0}` not found")]
    CollectionNotFound(String),
    #[error("collection `{0}` already exists")]
    CollectionExists(String),
    #[error("alias `{0}` not found")]
    AliasNotFound(String),
    /// A collection on a shared store that aidocs did not create: aidocs neither lists nor
    /// reads nor changes it.
    #[error("collection `{0}` was not created by aidocs (it lacks the `dense` and `sparse` named vectors); aidocs will not read or change it")]
    Foreign(String),
    #[error("invalid name `{name}`: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("vector dimension mismatch: collection has {expected}, got {got}")]
    DimensionMismatch { expected: usize, got: usize },
    #[error("data dir {path} is locked by another aidocs process ({detail}); stop it or use another --data-dir")]
    Locked { path: String, detail: String },
    #[error("store I/O error at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt store catalog {path}: {detail}")]
    Catalog { path: String, detail: String },
    /// The store's server cannot be reached or is not serving (outage, restart, network).
    #[error("{store} is unavailable: {detail}")]
    Unavailable { store: String, detail: String },
    /// The store's server did not answer in time.
    #[error("{store} did not answer {what} in time: {detail}")]
    Timeout {
        store: String,
        what: String,
        detail: String,
    },
    /// The store's server refused this client's credentials.
    #[error("{store} refused the credentials: {detail}")]
    Unauthorized { store: String, detail: String },
    #[error("store backend error: {0}")]
    Backend(String),
}

/// Errors from encoders and other core-level validation.
#[derive(Debug, Error)]
pub enum CoreError {
    #[error("embedding failed: {0}")]
    Embedding(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("reranker failed: {0}")]
    Rerank(String),
    #[error("generator failed: {0}")]
    Generation(String),
    #[error("{what} timed out after {ms} ms")]
    Timeout { what: &'static str, ms: u64 },
    /// A circuit breaker refused the call without trying: the dependency has been failing.
    #[error("{dependency} is failing; circuit open, next try in {retry_in_ms} ms")]
    CircuitOpen { dependency: &'static str, retry_in_ms: u64 },
}

/// Errors a [`crate::Cache`] reports. All of them mean "treat as a miss".
#[derive(Debug, Error)]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    #[error("cache operation timed out after {0} ms")]
    Timeout(u64),
    #[error("cache circuit open after repeated failures; retrying in {0} ms")]
    CircuitOpen(u64),
    #[error("cache value is corrupt: {0}")]
    Corrupt(String),
}
