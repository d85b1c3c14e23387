//! `aidocs-core`: the vocabulary every aidocs crate shares.
//!
//! Owns the domain types (documents, sections, chunks, points, queries, hits), the small
//! traits that layer crates implement (`Embedder`, `SparseEncoder`, `TokenCounter`,
//! `VectorStore`, ...), their error types, and the error-rate circuit breaker state machine
//! ([`breaker`]) the composition crate puts around runtime dependencies.
//!
//! Must not know: any concrete backend (Qdrant, candle, HTTP, files on disk, config files).
//! No I/O and no heavy dependencies live here.

pub mod breaker;
pub mod error;
pub mod filter;
pub mod model;
pub mod traits;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use error::{CacheError, CoreError, StoreError};
pub use filter::{FieldKind, Filter, FilterField, FilterValue};
pub use model::*;
pub use traits::*;
