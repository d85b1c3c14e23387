//! Circuit breakers around the engine's dependencies that can fail at runtime: the
//! embedding model, the HyDE generator and the reranker. Each wrapper implements the same
//! core trait as what it wraps, so the engine and the cache layers above it are unchanged.
//!
//! A refused call fails at once with [`CoreError::CircuitOpen`]; the engine then degrades
//! (HyDE and rerank are skipped with a note) or answers 503 (no embedding, no dense search).
//! Invalid input is the caller's fault and never counts against the dependency.

use aidocs_core::{BreakerConfig, CircuitBreaker, CoreError, Dims, Embedder, Generator, Release, Reranker};
use async_trait::async_trait;
use std::sync::Arc;

/// Run `call` through `breaker`. A call dropped before it finished (a caller's deadline)
/// counts as a failure, so a half-open trial always gets a verdict.
async fn guarded<T>(breaker: &CircuitBreaker, call: impl Future<Output = Result<T, CoreError>>) -> Result<T, CoreError> {
    struct Verdict<'a> {
        breaker: &'a CircuitBreaker,
        ok: Option<bool>,
    }
    impl Drop for Verdict<'_> {
        fn drop(&mut self) {
            self.breaker.record(self.ok.unwrap_or(false));
        }
    }
    breaker
        .admit()
        .map_err(|r| CoreError::CircuitOpen { dependency: breaker.name(), retry_in_ms: r.retry_in.as_millis() as u64 })?;
    let mut verdict = Verdict { breaker, ok: None };
    let r = call.await;
    verdict.ok = Some(!matches!(&r, Err(e) if !matches!(e, CoreError::InvalidInput(_))));
    r
}

/// An [`Embedder`] behind a breaker named `embedding`.
pub struct GuardedEmbedder {
    inner: Arc<dyn Embedder>,
    breaker: Arc<CircuitBreaker>,
}

impl GuardedEmbedder {
    pub fn new(inner: Arc<dyn Embedder>, cfg: BreakerConfig) -> Self {
        Self { inner, breaker: Arc::new(CircuitBreaker::new("embedding", cfg)) }
    }

    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }
}

#[async_trait]
impl Embedder for GuardedEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dims(&self) -> Dims {
        self.inner.dims()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, CoreError> {
        guarded(&self.breaker, self.inner.embed(texts)).await
    }
    fn tokens_used(&self) -> Option<u64> {
        self.inner.tokens_used()
    }
    async fn release_memory(&self, what: Release) {
        self.inner.release_memory(what).await
    }
}

/// A [`Generator`] behind a breaker named `generator`.
pub struct GuardedGenerator {
    inner: Arc<dyn Generator>,
    breaker: Arc<CircuitBreaker>,
}

impl GuardedGenerator {
    pub fn new(inner: Arc<dyn Generator>, cfg: BreakerConfig) -> Self {
        Self { inner, breaker: Arc::new(CircuitBreaker::new("generator", cfg)) }
    }

    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }
}

#[async_trait]
impl Generator for GuardedGenerator {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    async fn generate(&self, system: &str, user: &str, n: usize) -> Result<Vec<String>, CoreError> {
        guarded(&self.breaker, self.inner.generate(system, user, n)).await
    }
}

/// A [`Reranker`] behind a breaker named `reranker`.
pub struct GuardedReranker {
    inner: Arc<dyn Reranker>,
    breaker: Arc<CircuitBreaker>,
}

impl GuardedReranker {
    pub fn new(inner: Arc<dyn Reranker>, cfg: BreakerConfig) -> Self {
        Self { inner, breaker: Arc::new(CircuitBreaker::new("reranker", cfg)) }
    }

    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }
}

#[async_trait]
impl Reranker for GuardedReranker {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, CoreError> {
        guarded(&self.breaker, self.inner.rerank(query, passages)).await
    }
}
