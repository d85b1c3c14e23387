//! [`Breaker`]: a deadline and a circuit breaker around any [`Cache`].
//!
//! Every call gets a deadline; outcomes feed an error-rate [`CircuitBreaker`] (the same state
//! machine as the engine's other dependencies). Open: calls fail at once with
//! `CircuitOpen` for the cooldown, then one trial call goes through (half-open): success
//! closes the circuit, failure opens it again.

use aidocs_core::{BreakerState, Cache, CacheError, CacheStats, CircuitBreaker};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Deadline per call.
    pub timeout: Duration,
    /// When the circuit opens and for how long.
    pub circuit: aidocs_core::BreakerConfig,
}

/// `inner` behind a deadline and a circuit breaker.
pub struct Breaker<C> {
    inner: C,
    timeout: Duration,
    circuit: Arc<CircuitBreaker>,
    /// The last call's error, `None` after a success: the health text.
    last_error: Mutex<Option<String>>,
}

impl<C: Cache> Breaker<C> {
    pub fn new(inner: C, cfg: BreakerConfig) -> Self {
        Self { inner, timeout: cfg.timeout, circuit: Arc::new(CircuitBreaker::new("cache", cfg.circuit)), last_error: Mutex::new(None) }
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// `true` while calls are being short-circuited.
    pub fn is_open(&self) -> bool {
        self.circuit.state() == BreakerState::Open
    }

    /// The circuit itself (state, refusals) for health and metrics.
    pub fn circuit(&self) -> &Arc<CircuitBreaker> {
        &self.circuit
    }

    fn admit(&self) -> Result<(), CacheError> {
        self.circuit.admit().map_err(|r| CacheError::CircuitOpen(r.retry_in.as_millis() as u64))
    }

    fn record<T>(&self, r: &Result<T, CacheError>) {
        if let Err(e) = r
            && self.circuit.state() == BreakerState::Closed {
                tracing::debug!(backend = self.inner.backend(), error = %e, "cache call failed");
            }
        self.circuit.record(r.is_ok());
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = r.as_ref().err().map(ToString::to_string);
    }

    async fn call<T, F>(&self, f: F, timeout: Duration) -> Result<T, CacheError>
    where
        F: std::future::Future<Output = Result<T, CacheError>>,
    {
        self.admit()?;
        let r = match tokio::time::timeout(timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(CacheError::Timeout(timeout.as_millis() as u64)),
        };
        self.record(&r);
        r
    }
}

#[async_trait]
impl<C: Cache> Cache for Breaker<C> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.call(self.inner.get(key), self.timeout).await
    }
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        self.call(self.inner.set(key, value, ttl), self.timeout).await
    }
    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        self.call(self.inner.mget(keys), self.timeout).await
    }
    async fn mset(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<(), CacheError> {
        self.call(self.inner.mset(entries, ttl), self.timeout).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        // Admin operation: longer deadline, same breaker.
        self.call(self.inner.delete_prefix(prefix), self.timeout.max(Duration::from_secs(5))).await
    }
    fn circuit(&self) -> Option<Arc<CircuitBreaker>> {
        Some(self.circuit.clone())
    }
    fn stats(&self) -> CacheStats {
        let mut s = self.inner.stats();
        let last = self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        s.health = match (self.circuit.state(), last) {
            (BreakerState::Open, reason) => format!("degraded: circuit open ({})", reason.unwrap_or_default()),
            (BreakerState::HalfOpen, _) => "degraded: probing after circuit open".into(),
            (BreakerState::Closed, Some(reason)) => format!("degraded: last call failed ({reason})"),
            (BreakerState::Closed, None) => "ok".into(),
        };
        s
    }
}
