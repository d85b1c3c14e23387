//! `aidocs-store`: where points live.
//!
//! Owns the two [`aidocs_core::VectorStore`] backends: [`EdgeStore`] over the embedded
//! Qdrant engine (`qdrant-edge`, one shard per collection) with its data-dir catalog of
//! collections and aliases and the data-dir lock, and [`QdrantStore`] over a Qdrant server
//! or cluster (gRPC via `qdrant-client`, snapshots over REST); plus the conformance suite
//! every backend must pass ([`conformance`]). With feature `testkit`: a fault-injecting
//! wrapper and a Qdrant gRPC test server backed by the embedded engine.
//!
//! Must not know: how text is embedded or chunked, aidocs' HTTP API, config files. The `qdrant-edge`
//! engine is private to this crate (its version is pinned; upgrading it touches only here).

mod catalog;
pub mod conformance;
mod edge;
mod lock;
pub mod params;
pub mod qdrant;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use edge::{EdgeStore, EdgeStoreConfig, RepairReport};
pub use qdrant::{QdrantStore, QdrantStoreConfig};
