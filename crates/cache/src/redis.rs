//! [`RedisCache`]: Redis, Valkey or DragonflyDB through a `fred` connection pool.
//!
//! Values go through [`crate::codec`] (zstd above a threshold). `MSET` with a TTL is a
//! pipeline of `SET key value PX ttl`; prefix deletes are `SCAN MATCH prefix*` + `UNLINK`.
//! Every key is stored under the configured namespace, so several deployments (or tests)
//! can share one server.

use crate::{Counters, codec};
use aidocs_core::{Cache, CacheError, CacheStats};
use async_trait::async_trait;
use fred::prelude::{Builder, ClientLike, Config, Expiration, KeysInterface, Pool, ReconnectPolicy};
use futures::TryStreamExt;
use std::sync::Arc;
use std::time::Duration;

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisCacheConfig {
    /// `redis://[user:pass@]host:port[/db]` (also `rediss://` is parsed, TLS is not built in).
    pub url: String,
    /// Prepended to every key (e.g. `aidocs:`).
    pub namespace: String,
    pub pool_size: usize,
    /// Per-command deadline and connect timeout.
    pub timeout: Duration,
    /// Values at least this long are zstd-compressed.
    pub compress_threshold: usize,
}

/// A [`Cache`] on a Redis-protocol server.
#[derive(Clone)]
pub struct RedisCache {
    pool: Pool,
    cfg: Arc<RedisCacheConfig>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").field("url", &redact(&self.cfg.url)).field("namespace", &self.cfg.namespace).finish()
    }
}

/// The URL without its password, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

fn unavailable(e: fred::error::Error) -> CacheError {
    if matches!(e.kind(), fred::error::ErrorKind::Timeout) {
        CacheError::Timeout(0)
    } else {
        CacheError::Unavailable(e.to_string())
    }
}

impl RedisCache {
    /// Build the pool and start connecting in the background (needs a tokio runtime).
    /// Returns at once: a server that is down is retried with exponential backoff and
    /// commands fail fast meanwhile (callers treat that as a miss).
    pub fn new(cfg: RedisCacheConfig) -> Result<Self, CacheError> {
        let config = Config::from_url(&cfg.url).map_err(|e| CacheError::Unavailable(format!("bad cache url {}: {e}", redact(&cfg.url))))?;
        let timeout = cfg.timeout;
        let pool = Builder::from_config(config)
            .with_config(|c| c.fail_fast = true)
            .with_connection_config(|c| {
                c.connection_timeout = timeout.max(Duration::from_millis(200));
                c.internal_command_timeout = timeout.max(Duration::from_millis(200));
                c.max_command_attempts = 1;
            })
            .with_performance_config(|p| p.default_command_timeout = timeout)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .build_pool(cfg.pool_size.max(1))
            .map_err(unavailable)?;
        // Connection tasks run for the pool's life; errors surface on commands.
        drop(pool.connect());
        Ok(Self { pool, cfg: Arc::new(cfg), counters: Arc::default() })
    }

    /// Wait until every pooled connection is up, at most `within`; `true` when connected.
    pub async fn wait_connected(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.pool.wait_for_connect()).await.is_ok_and(|r| r.is_ok())
    }

    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.cfg.namespace)
    }

    /// Close the connections.
    pub async fn quit(&self) {
        let _ = self.pool.quit().await;
    }

    fn fail(&self, e: fred::error::Error) -> CacheError {
        self.counters.error();
        unavailable(e)
    }
}

#[async_trait]
impl Cache for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let v: Option<Vec<u8>> = self.pool.get(self.key(key)).await.map_err(|e| self.fail(e))?;
        match v {
            Some(b) => {
                self.counters.hit(1);
                codec::decode(&b).map(Some)
            }
            None => {
                self.counters.miss(1);
                Ok(None)
            }
        }
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let v = codec::encode(&value, self.cfg.compress_threshold);
        let px = Expiration::PX(ttl.as_millis().max(1) as i64);
        self.pool.set::<(), _, _>(self.key(key), v, Some(px), None, false).await.map_err(|e| self.fail(e))
    }

    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let raw: Vec<Option<Vec<u8>>> = self.pool.mget(full).await.map_err(|e| self.fail(e))?;
        let hits = raw.iter().filter(|v| v.is_some()).count() as u64;
        self.counters.hit(hits);
        self.counters.miss(raw.len() as u64 - hits);
        raw.into_iter().map(|v| v.map(|b| codec::decode(&b)).transpose()).collect()
    }

    async fn mset(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let pipe = self.pool.next().pipeline();
        let px = ttl.as_millis().max(1) as i64;
        for (k, v) in entries {
            let v = codec::encode(&v, self.cfg.compress_threshold);
            pipe.set::<(), _, _>(self.key(&k), v, Some(Expiration::PX(px)), None, false).await.map_err(|e| self.fail(e))?;
        }
        let _: Vec<fred::prelude::Value> = pipe.all().await.map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        // Glob metacharacters in the prefix are escaped so only a literal prefix matches.
        let mut pattern = String::new();
        for c in self.key(prefix).chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        let client = self.pool.next();
        let keys: Vec<fred::prelude::Key> =
            client.scan_buffered(pattern, Some(500), None).try_collect().await.map_err(|e| self.fail(e))?;
        let mut removed = 0u64;
        for chunk in keys.chunks(500) {
            let n: u64 = client.unlink(chunk.to_vec()).await.map_err(|e| self.fail(e))?;
            removed += n;
        }
        Ok(removed)
    }

    fn stats(&self) -> CacheStats {
        self.counters.stats("redis")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_redacted() {
        assert_eq!(super::redact("redis://user:secret@h:6379/0"), "redis://***@h:6379/0");
        assert_eq!(super::redact("redis://h:6379"), "redis://h:6379");
    }
}
