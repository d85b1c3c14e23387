//! [`MemoryCache`]: in-process, moka, bounded by total bytes, per-entry TTL.

use crate::Counters;
use aidocs_core::{Cache, CacheError, CacheStats};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Entry {
    value: Arc<[u8]>,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Entry, _now: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
    fn expire_after_update(&self, _key: &String, value: &Entry, _now: Instant, _left: Option<Duration>) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// In-process cache; the weight of an entry is its key plus value length.
#[derive(Clone)]
pub struct MemoryCache {
    inner: moka::future::Cache<String, Entry>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache").field("entries", &self.inner.entry_count()).finish()
    }
}

impl MemoryCache {
    /// A cache holding at most `max_bytes` of keys and values.
    pub fn new(max_bytes: u64) -> Self {
        let inner = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Entry| (k.len() + v.value.len()).min(u32::MAX as usize) as u32)
            .expire_after(PerEntryTtl)
            .build();
        Self { inner, counters: Arc::default() }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let v = self.inner.get(key).await.map(|e| e.value.to_vec());
        if v.is_some() { self.counters.hit(1) } else { self.counters.miss(1) }
        Ok(v)
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        self.inner.insert(key.to_owned(), Entry { value: value.into(), ttl }).await;
        Ok(())
    }

    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }

    async fn mset(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<(), CacheError> {
        for (k, v) in entries {
            self.inner.insert(k, Entry { value: v.into(), ttl }).await;
        }
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        let keys: Vec<Arc<String>> = self.inner.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, _)| k).collect();
        for k in &keys {
            self.inner.invalidate(k.as_str()).await;
        }
        Ok(keys.len() as u64)
    }

    fn stats(&self) -> CacheStats {
        let mut s = self.counters.stats("memory");
        s.entries = Some(self.inner.entry_count());
        s.bytes = Some(self.inner.weighted_size());
        s
    }
}
