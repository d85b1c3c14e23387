//! [`MeteredEmbedder`]: counts the tokens an embedder was sent (`embedding_tokens_total`)
//! and their estimated cost (`embedding_cost_usd_total`, from `embedding.usd_per_million_tokens`).
//! It sits directly on the model, under the cache and the breaker, so only texts the model
//! really embedded are counted.

use aidocs_core::{CoreError, Dims, Embedder, TokenCounter};
use aidocs_obs::Metrics;
use async_trait::async_trait;
use std::sync::Arc;

pub struct MeteredEmbedder {
    inner: Arc<dyn Embedder>,
    counter: Arc<dyn TokenCounter>,
    metrics: Metrics,
    provider: &'static str,
    usd_per_million: f64,
}

impl MeteredEmbedder {
    pub fn new(inner: Arc<dyn Embedder>, counter: Arc<dyn TokenCounter>, metrics: Metrics, provider: &'static str, usd_per_million: f64) -> Self {
        Self { inner, counter, metrics, provider, usd_per_million }
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
        let tokens: usize = texts.iter().map(|t| self.counter.count(t)).sum();
        self.metrics.embedding_tokens(self.provider, self.inner.model_id(), tokens as u64, self.usd_per_million);
        Ok(vectors)
    }
}
