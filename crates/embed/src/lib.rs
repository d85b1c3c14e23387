//! `aidocs-embed`: turns text into vectors.
//!
//! Owns the dense embedders running sentence-transformers all-MiniLM-L6-v2 in-process
//! ([`LocalEmbedder`] on candle; `OnnxEmbedder` on ONNX Runtime behind the default `onnx`
//! feature; both: mean pooling, L2 norm), the token counter the
//! chunker uses ([`ModelTokenCounter`]), memory-adaptive batch sizes ([`memory`]), the BM25 sparse encoder ([`Bm25Encoder`]) and the
//! rerankers ([`CrossEncoder`] on candle, [`HttpReranker`] for remote `/rerank` APIs), and
//! [`OpenAiEmbedder`] for any OpenAI-compatible `/embeddings` API.
//!
//! Must not know: where vectors are stored, how documents are chunked, HTTP or config files.
//! Models are loaded from a directory on disk; nothing here downloads.

mod batch;
mod bm25;
mod local;
mod error;
pub mod memory;
#[cfg(feature = "onnx")]
mod onnx;
mod openai;
mod rerank;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use bm25::{Bm25Config, Bm25Encoder};
pub use local::{EmbedError, LocalEmbedder, LocalEmbedderConfig, ModelTokenCounter};
pub use openai::{ApproxTokenCounter, OpenAiEmbedder, OpenAiEmbedderConfig};
pub use rerank::{CrossEncoder, CrossEncoderConfig, HttpReranker, HttpRerankerConfig, RerankApi};
#[cfg(feature = "onnx")]
pub use onnx::{OnnxEmbedder, OnnxEmbedderConfig};
