//! `aidocs-core`: the vocabulary every aidocs crate shares.
//!
//! Owns the domain types (documents, sections, chunks, points, queries, hits), the small
//! traits that layer crates implement (`Embedder`, `SparseEncoder`, `TokenCounter`,
//! `VectorStore`) and their error types.
//!
//! Must not know: any concrete backend (Qdrant, candle, HTTP, files on disk, config files).
//! No I/O and no heavy dependencies live here.

pub mod error;
pub mod filter;
pub mod model;
pub mod traits;

pub use error::{CacheError, CoreError, StoreError};
pub use filter::{FieldKind, Filter, FilterField, FilterValue};
pub use model::*;
pub use traits::*;
