//! [`TieredCache`]: an in-process L1 in front of a shared L2 (Redis).
//!
//! Reads try L1, then L2; an L2 hit is copied into L1 for at most `l1_ttl` (short, so L1
//! never serves much past an L2 expiry or a delete on another replica). Writes go to both.
//! An L2 error is a miss: the caller still gets L1's answer.

use crate::MemoryCache;
use aidocs_core::{Cache, CacheError, CacheStats};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

pub struct TieredCache {
    l1: MemoryCache,
    l2: Arc<dyn Cache>,
    l1_ttl: Duration,
}

impl TieredCache {
    pub fn new(l1: MemoryCache, l2: Arc<dyn Cache>, l1_ttl: Duration) -> Self {
        Self { l1, l2, l1_ttl }
    }
}

#[async_trait]
impl Cache for TieredCache {
    fn backend(&self) -> &'static str {
        "tiered"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        if let Some(v) = self.l1.get(key).await? {
            return Ok(Some(v));
        }
        match self.l2.get(key).await {
            Ok(Some(v)) => {
                self.l1.set(key, v.clone(), self.l1_ttl).await?;
                Ok(Some(v))
            }
            Ok(None) | Err(_) => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        self.l1.set(key, value.clone(), ttl.min(self.l1_ttl)).await?;
        self.l2.set(key, value, ttl).await
    }

    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        let mut out = self.l1.mget(keys).await?;
        let missing: Vec<usize> = (0..keys.len()).filter(|i| out[*i].is_none()).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let want: Vec<String> = missing.iter().map(|i| keys[*i].clone()).collect();
        if let Ok(found) = self.l2.mget(&want).await {
            let mut refill = Vec::new();
            for (i, v) in missing.into_iter().zip(found) {
                if let Some(v) = v {
                    refill.push((keys[i].clone(), v.clone()));
                    out[i] = Some(v);
                }
            }
            self.l1.mset(refill, self.l1_ttl).await?;
        }
        Ok(out)
    }

    async fn mset(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<(), CacheError> {
        self.l1.mset(entries.clone(), ttl.min(self.l1_ttl)).await?;
        self.l2.mset(entries, ttl).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        let a = self.l1.delete_prefix(prefix).await?;
        let b = self.l2.delete_prefix(prefix).await?;
        Ok(a.max(b))
    }

    fn circuit(&self) -> Option<std::sync::Arc<aidocs_core::CircuitBreaker>> {
        self.l2.circuit()
    }

    fn stats(&self) -> CacheStats {
        let (l1, l2) = (self.l1.stats(), self.l2.stats());
        CacheStats {
            backend: "tiered".into(),
            hits: l1.hits + l2.hits,
            misses: l2.misses,
            errors: l1.errors + l2.errors,
            entries: None,
            bytes: None,
            health: l2.health.clone(),
            tiers: vec![l1, l2],
        }
    }
}
