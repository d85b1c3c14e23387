//! [`MeteredEmbedder`]: counts the tokens an embedder was sent (`embedding_tokens_total`)
//! and their estimated cost (`embedding_cost_usd_total`, from `embedding.usd_per_million_tokens`).
//! It sits directly on the model, under the cache and the breaker, so only texts the model
//! really embedded are counted.

use aidocs_core::{CoreError, Dims, Embedder, Release, TokenCounter};
use aidocs_obs::Metrics;
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct MeteredEmbedder {
    inner: Arc<dyn Embedder>,
    /// The provider's reported total at the last count (for embedders that report usage).
    reported: AtomicU64,
    counter: Arc<dyn TokenCounter>,
    metrics: Metrics,
    provider: &'static str,
    usd_per_million: f64,
}

impl MeteredEmbedder {
    pub fn new(inner: Arc<dyn Embedder>, counter: Arc<dyn TokenCounter>, metrics: Metrics, provider: &'static str, usd_per_million: f64) -> Self {
        let reported = AtomicU64::new(inner.tokens_used().unwrap_or(0));
        Self { inner, reported, counter, metrics, provider, usd_per_million }
    }
}

#[async_trait]
impl Embedder for MeteredEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dims(&self) -> Dims {
        self.inner.dims()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, CoreError> {
        let vectors = self.inner.embed(texts).await?;
        // The provider's own count when it reports one (the increments sum to its total even
        // under concurrency), else our tokenizer's.
        let tokens = match self.inner.tokens_used() {
            Some(total) => total.saturating_sub(self.reported.swap(total, Ordering::Relaxed)),
            None => texts.iter().map(|t| self.counter.count(t)).sum::<usize>() as u64,
        };
        self.metrics.embedding_tokens(self.provider, self.inner.model_id(), tokens, self.usd_per_million);
        Ok(vectors)
    }
    fn tokens_used(&self) -> Option<u64> {
        self.inner.tokens_used()
    }
    async fn release_memory(&self, what: Release) {
        self.inner.release_memory(what).await
    }
}
