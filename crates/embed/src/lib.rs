//! `aidocs-embed`: turns text into vectors.
//!
//! Owns the dense embedder running sentence-transformers all-MiniLM-L6-v2 in-process
//! ([`LocalEmbedder`], candle + tokenizers: mean pooling, L2 norm), the token counter the
//! chunker uses ([`ModelTokenCounter`]), and the BM25 sparse encoder ([`Bm25Encoder`]).
//!
//! Must not know: where vectors are stored, how documents are chunked, HTTP or config files.
//! Models are loaded from a directory on disk; nothing here downloads.

mod bm25;
mod local;

pub use bm25::{Bm25Config, Bm25Encoder};
pub use local::{EmbedError, LocalEmbedder, LocalEmbedderConfig, ModelTokenCounter};
