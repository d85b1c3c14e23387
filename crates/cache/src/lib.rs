//! `aidocs-cache`: caching for aidocs.
//!
//! Owns the [`Cache`] implementations ([`MemoryCache`] on moka, size-bounded by bytes;
//! [`RedisCache`] on fred, for Redis, Valkey and DragonflyDB), the two-tier composition
//! ([`TieredCache`], L1 in-process in front of L2 Redis), the [`Breaker`] that stops calling
//! a failing or slow backend for a cool-down, the versioned key scheme ([`keys`]), the value
//! codec (zstd above a threshold, embeddings as little-endian f32), the [`CachedEmbedder`],
//! and the `Cache` conformance suite.
//!
//! Must not know: the search pipeline, the store, HTTP or config files. The composition
//! crate decides what is cached, for how long, and under which key.

pub mod codec;
pub mod conformance;
mod breaker;
mod embedder;
pub mod keys;
mod memory;
mod redis;
mod tiered;

pub use aidocs_core::{Cache, CacheError, CacheStats};
pub use breaker::{Breaker, BreakerConfig};
pub use embedder::CachedEmbedder;
pub use memory::MemoryCache;
pub use redis::{RedisCache, RedisCacheConfig};
pub use tiered::TieredCache;

use std::sync::atomic::{AtomicU64, Ordering};

/// Remove every entry of `kind` (all kinds for `None`); returns how many were removed.
pub async fn clear(cache: &dyn Cache, kind: Option<keys::CacheKind>) -> Result<u64, CacheError> {
    let mut n = 0;
    for k in kind.map_or(keys::CacheKind::ALL.to_vec(), |k| vec![k]) {
        n += cache.delete_prefix(k.prefix()).await?;
    }
    Ok(n)
}

/// Hit/miss/error counters shared by the implementations.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    pub(crate) fn hit(&self, n: u64) {
        self.hits.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn miss(&self, n: u64) {
        self.misses.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn stats(&self, backend: &str) -> CacheStats {
        CacheStats {
            backend: backend.to_owned(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            health: "ok".into(),
            ..Default::default()
        }
    }
}
