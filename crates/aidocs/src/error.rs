//! The one error type of the composition crate and the one table mapping it to HTTP.

use aidocs_core::{CoreError, StoreError};

/// Everything a pipeline or admin operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something invalid; the message says what.
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embedding(#[from] CoreError),
    /// A dependency of the pipeline failed; `dependency` names it (`embedder openai
    /// (text-embedding-3-small)`). A remote one failing is this server's 503 (or 504 on a
    /// timeout); a model in this process failing is an internal error.
    #[error("{dependency} failed: {source}")]
    Dependency { dependency: String, remote: bool, source: CoreError },
    #[error(transparent)]
    Ingest(#[from] aidocs_ingest::IngestError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Model(#[from] aidocs_embed::EmbedError),
    #[error("collection `{collection}` was built with embedding model `{found}`, but this server uses `{expected}`")]
    ModelMismatch { collection: String, expected: String, found: String },
    /// An optional dependency (the cache) cannot serve an admin operation right now.
    #[error("{0}")]
    Unavailable(String),
    /// What was fetched is over a configured size limit; the message names the limit.
    #[error("{0}")]
    TooLarge(String),
    /// No such object (canary, deployment); the message names it.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state (pause a paused canary, two canaries on one alias).
    #[error("{0}")]
    Conflict(String),
    /// A new collection did not pass validation; nothing was switched.
    #[error("{0}")]
    ValidationFailed(String),
    #[error(transparent)]
    Backup(#[from] aidocs_backup::BackupError),
    #[error(transparent)]
    Profile(#[from] aidocs_obs::profile::ProfileError),
    /// A running aidocs-server answered with this error (the admin client).
    #[error("{message}")]
    Remote { code: ErrorCode, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// Stable, documented error codes of the API (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidName,
    InvalidPath,
    CollectionNotFound,
    AliasNotFound,
    CollectionExists,
    ModelMismatch,
    StoreLocked,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unavailable,
    Overloaded,
    Timeout,
    Unauthorized,
    Forbidden,
    RateLimited,
    Conflict,
    ValidationFailed,
    BackupCorrupt,
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the table.
    pub const ALL: [ErrorCode; 22] = [
        Self::InvalidRequest,
        Self::InvalidName,
        Self::InvalidPath,
        Self::CollectionNotFound,
        Self::AliasNotFound,
        Self::CollectionExists,
        Self::ModelMismatch,
        Self::StoreLocked,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::Unavailable,
        Self::Overloaded,
        Self::Timeout,
        Self::Unauthorized,
        Self::Forbidden,
        Self::RateLimited,
        Self::Conflict,
        Self::ValidationFailed,
        Self::BackupCorrupt,
        Self::Internal,
    ];

    /// The code whose string is `s` (as a server sends it).
    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str_and_status().0 == s)
    }

    /// The table: code string and HTTP status. Keep `docs/api.md` in sync.
    pub fn as_str_and_status(self) -> (&'static str, u16) {
        match self {
            Self::InvalidRequest => ("invalid_request", 400),
            Self::InvalidName => ("invalid_name", 400),
            Self::InvalidPath => ("invalid_path", 400),
            Self::CollectionNotFound => ("collection_not_found", 404),
            Self::AliasNotFound => ("alias_not_found", 404),
            Self::NotFound => ("not_found", 404),
            Self::MethodNotAllowed => ("method_not_allowed", 405),
            Self::CollectionExists => ("collection_exists", 409),
            Self::ModelMismatch => ("model_mismatch", 409),
            Self::Conflict => ("conflict", 409),
            Self::ValidationFailed => ("validation_failed", 422),
            Self::BackupCorrupt => ("backup_corrupt", 422),
            Self::PayloadTooLarge => ("payload_too_large", 413),
            Self::UnsupportedMediaType => ("unsupported_media_type", 415),
            Self::StoreLocked => ("store_locked", 503),
            Self::Unavailable => ("unavailable", 503),
            Self::Overloaded => ("overloaded", 503),
            Self::Unauthorized => ("unauthorized", 401),
            Self::Forbidden => ("forbidden", 403),
            Self::RateLimited => ("rate_limited", 429),
            Self::Timeout => ("timeout", 504),
            Self::Internal => ("internal", 500),
        }
    }
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidRequest(_) | Error::Config(_) => ErrorCode::InvalidRequest,
            Error::Store(e) => store_code(e),
            Error::Backup(e) => {
                use aidocs_backup::BackupError as B;
                match e {
                    B::NotFound(_) => ErrorCode::NotFound,
                    B::Corrupt { .. } => ErrorCode::BackupCorrupt,
                    B::Invalid(_) => ErrorCode::InvalidRequest,
                    B::Validation(_) => ErrorCode::ValidationFailed,
                    B::Destination { .. } => ErrorCode::Unavailable,
                    B::Io { .. } => ErrorCode::Internal,
                    B::Store(e) => store_code(e),
                }
            }
            Error::Profile(e) => {
                use aidocs_obs::profile::ProfileError as P;
                match e {
                    P::Busy => ErrorCode::Conflict,
                    P::Invalid(_) => ErrorCode::InvalidRequest,
                    P::Failed(_) => ErrorCode::Internal,
                }
            }
            Error::Remote { code, .. } => *code,
            Error::Ingest(_) => ErrorCode::InvalidPath,
            Error::ModelMismatch { .. } => ErrorCode::ModelMismatch,
            Error::Unavailable(_) => ErrorCode::Unavailable,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::TooLarge(_) => ErrorCode::PayloadTooLarge,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::ValidationFailed(_) => ErrorCode::ValidationFailed,
            Error::Embedding(CoreError::InvalidInput(_)) | Error::Dependency { source: CoreError::InvalidInput(_), .. } => ErrorCode::InvalidRequest,
            Error::Dependency { source: CoreError::CircuitOpen { .. }, .. } => ErrorCode::Unavailable,
            Error::Dependency { source: CoreError::Timeout { .. }, .. } => ErrorCode::Timeout,
            Error::Dependency { remote: true, .. } => ErrorCode::Unavailable,
            Error::Dependency { remote: false, .. } => ErrorCode::Internal,
            Error::Embedding(CoreError::CircuitOpen { .. }) => ErrorCode::Unavailable,
            Error::Embedding(_) | Error::Model(_) | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Message safe to show a client: internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self.code() {
            ErrorCode::Internal => "internal error; see the server log".to_owned(),
            _ => self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_and_round_trips() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ErrorCode::ALL {
            let (s, status) = c.as_str_and_status();
            assert!(seen.insert(s), "{s} twice");
            assert!((400..600).contains(&status));
            assert_eq!(ErrorCode::from_code(s), Some(c));
        }
        assert_eq!(ErrorCode::from_code("no_such_code"), None);
    }

    /// docs/api.md's error table lists exactly the codes of this table, with their statuses.
    #[test]
    fn the_api_doc_lists_every_code_with_its_status() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
                .unwrap();
        let table = doc
            .split("## Error codes")
            .nth(1)
            .expect("docs/api.md has an `## Error codes` section");
        let documented: std::collections::BTreeSet<(String, u16)> = table
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((code.to_owned(), cells.get(2)?.parse().ok()?))
            })
            .collect();
        let table: std::collections::BTreeSet<(String, u16)> = ErrorCode::ALL
            .iter()
            .map(|c| c.as_str_and_status())
            .map(|(s, n)| (s.to_owned(), n))
            .collect();
        assert_eq!(
            documented, table,
            "docs/api.md `## Error codes` must match ErrorCode's table"
        );
    }
}

fn store_code(e: &StoreError) -> ErrorCode {
    match e {
        StoreError::CollectionNotFound(_) => ErrorCode::CollectionNotFound,
        StoreError::AliasNotFound(_) => ErrorCode::AliasNotFound,
        StoreError::CollectionExists(_) => ErrorCode::CollectionExists,
        StoreError::Foreign(_) => ErrorCode::Conflict,
        StoreError::InvalidName { .. } => ErrorCode::InvalidName,
        StoreError::DimensionMismatch { .. } => ErrorCode::ModelMismatch,
        StoreError::Locked { .. } => ErrorCode::StoreLocked,
        // The vector store is a dependency: its outage or refusal is this server's 503.
        StoreError::Unavailable { .. } | StoreError::Unauthorized { .. } => ErrorCode::Unavailable,
        StoreError::Timeout { .. } => ErrorCode::Timeout,
        StoreError::Io { .. } | StoreError::Catalog { .. } | StoreError::Backend(_) => {
            ErrorCode::Internal
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
