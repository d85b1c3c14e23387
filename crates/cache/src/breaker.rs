//! [`Breaker`]: a deadline and a circuit breaker around any [`Cache`].
//!
//! Closed: calls go through with a deadline; `failures` consecutive errors or timeouts open
//! the circuit. Open: calls fail at once with `CircuitOpen` for `cooldown`. Then one trial
//! call goes through (half-open): success closes the circuit, failure opens it again.

use aidocs_core::{Cache, CacheError, CacheStats};
use async_trait::async_trait;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Deadline per call.
    pub timeout: Duration,
    /// Consecutive failures that open the circuit.
    pub failures: u32,
    pub cooldown: Duration,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant, reason: String },
    HalfOpen,
}

/// `inner` behind a deadline and a circuit breaker.
pub struct Breaker<C> {
    inner: C,
    cfg: BreakerConfig,
    state: Mutex<State>,
}

impl<C: Cache> Breaker<C> {
    pub fn new(inner: C, cfg: BreakerConfig) -> Self {
        Self { inner, cfg, state: Mutex::new(State::Closed { failures: 0 }) }
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// `true` while calls are being short-circuited.
    pub fn is_open(&self) -> bool {
        matches!(*self.state.lock().unwrap_or_else(|p| p.into_inner()), State::Open { .. })
    }

    fn admit(&self) -> Result<(), CacheError> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &*s {
            State::Open { until, .. } if Instant::now() < *until => {
                Err(CacheError::CircuitOpen(until.saturating_duration_since(Instant::now()).as_millis() as u64))
            }
            State::Open { .. } => {
                *s = State::HalfOpen;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn record<T>(&self, r: &Result<T, CacheError>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Ok(_) => {
                if !matches!(*s, State::Closed { failures: 0 }) {
                    if matches!(*s, State::HalfOpen) {
                        tracing::info!(backend = self.inner.backend(), "cache recovered; circuit closed");
                    }
                    *s = State::Closed { failures: 0 };
                }
            }
            Err(e) => {
                let failures = match &*s {
                    State::Closed { failures } => failures + 1,
                    _ => self.cfg.failures,
                };
                if failures >= self.cfg.failures {
                    tracing::warn!(backend = self.inner.backend(), error = %e, cooldown_ms = self.cfg.cooldown.as_millis() as u64, "cache failing; circuit open");
                    *s = State::Open { until: Instant::now() + self.cfg.cooldown, reason: e.to_string() };
                } else {
                    *s = State::Closed { failures };
                }
            }
        }
    }

    async fn call<T, F>(&self, f: F) -> Result<T, CacheError>
    where
        F: std::future::Future<Output = Result<T, CacheError>>,
    {
        self.admit()?;
        let r = match tokio::time::timeout(self.cfg.timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(CacheError::Timeout(self.cfg.timeout.as_millis() as u64)),
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
        self.call(self.inner.get(key)).await
    }
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        self.call(self.inner.set(key, value, ttl)).await
    }
    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        self.call(self.inner.mget(keys)).await
    }
    async fn mset(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<(), CacheError> {
        self.call(self.inner.mset(entries, ttl)).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        // Admin operation: longer deadline, same breaker.
        self.admit()?;
        let r = match tokio::time::timeout(self.cfg.timeout.max(Duration::from_secs(5)), self.inner.delete_prefix(prefix)).await {
            Ok(r) => r,
            Err(_) => Err(CacheError::Timeout(5000)),
        };
        self.record(&r);
        r
    }
    fn stats(&self) -> CacheStats {
        let mut s = self.inner.stats();
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.health = match &*st {
            State::Closed { failures: 0 } => "ok".into(),
            State::Closed { failures } => format!("degraded: {failures} recent failures"),
            State::Open { reason, .. } => format!("degraded: circuit open ({reason})"),
            State::HalfOpen => "degraded: probing after circuit open".into(),
        };
        s
    }
}
