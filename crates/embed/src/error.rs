//! The embed crate's error: loading or running a local model.

use aidocs_core::CoreError;
use std::path::PathBuf;

/// Errors loading or running the local model.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("model file {path} is missing; run `cargo xtask models` (or set embedding.model_dir)")]
    MissingFile { path: PathBuf },
    #[error("cannot read model file {path}: {detail}")]
    BadFile { path: PathBuf, detail: String },
    #[error("model inference failed: {0}")]
    Inference(String),
}

impl From<EmbedError> for CoreError {
    fn from(e: EmbedError) -> Self {
        CoreError::Embedding(e.to_string())
    }
}
