//! `aidocs-store`: where points live.
//!
//! Owns [`EdgeStore`], a [`aidocs_core::VectorStore`] over the embedded Qdrant engine
//! (`qdrant-edge`, one shard per collection) plus the data-dir catalog of collections and
//! aliases, the data-dir lock, and the conformance suite every store backend must pass
//! ([`conformance`]); with feature `testkit`, a fault-injecting wrapper for tests.
//!
//! Must not know: how text is embedded or chunked, HTTP, config files. The `qdrant-edge`
//! engine is private to this crate (its version is pinned; upgrading it touches only here).

mod catalog;
pub mod conformance;
mod edge;
mod lock;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use edge::{EdgeStore, EdgeStoreConfig};
