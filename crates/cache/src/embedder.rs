//! [`CachedEmbedder`]: any [`Embedder`] behind a [`Cache`], batch-aware.

use crate::{codec, keys};
use aidocs_core::{Cache, CoreError, Dims, Embedder, Release};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One `MGET` per batch, the inner embedder only for the misses, one `MSET` for them. Cache
/// errors are misses; the embedder's errors are returned.
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    cache: Arc<dyn Cache>,
    provider: String,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CachedEmbedder {
    /// `provider` distinguishes engines that share a model id (e.g. f32 and int8 builds).
    pub fn new(inner: Arc<dyn Embedder>, cache: Arc<dyn Cache>, provider: impl Into<String>, ttl: Duration) -> Self {
        Self { inner, cache, provider: provider.into(), ttl, hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// `(hits, misses)` since creation.
    pub fn hits_misses(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    fn key(&self, text: &str) -> String {
        keys::embedding(&self.provider, self.inner.model_id(), self.inner.dims(), text)
    }
}

#[async_trait]
impl Embedder for CachedEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dims(&self) -> Dims {
        self.inner.dims()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, CoreError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let dims = self.inner.dims();
        let keys: Vec<String> = texts.iter().map(|t| self.key(t)).collect();
        let cached = self.cache.mget(&keys).await.unwrap_or_else(|_| vec![None; keys.len()]);
        let mut out: Vec<Option<Vec<f32>>> = cached.into_iter().map(|v| v.and_then(|b| codec::bytes_to_f32s(&b, dims))).collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|i| out[*i].is_none()).collect();
        self.hits.fetch_add((texts.len() - missing.len()) as u64, Ordering::Relaxed);
        self.misses.fetch_add(missing.len() as u64, Ordering::Relaxed);
        if !missing.is_empty() {
            let todo: Vec<String> = missing.iter().map(|i| texts[*i].clone()).collect();
            let fresh = self.inner.embed(&todo).await?;
            let entries: Vec<(String, Vec<u8>)> =
                missing.iter().zip(&fresh).map(|(i, v)| (keys[*i].clone(), codec::f32s_to_bytes(v))).collect();
            if let Err(e) = self.cache.mset(entries, self.ttl).await {
                tracing::debug!(error = %e, "embedding cache write skipped");
            }
            for (i, v) in missing.into_iter().zip(fresh) {
                out[i] = Some(v);
            }
        }
        Ok(out.into_iter().map(|v| v.unwrap_or_default()).collect())
    }

    fn tokens_used(&self) -> Option<u64> {
        self.inner.tokens_used()
    }

    async fn release_memory(&self, what: Release) {
        self.inner.release_memory(what).await
    }
}
