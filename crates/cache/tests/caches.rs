//! Cache implementations against the conformance suite, with a real Redis server, and the
//! degradation path: a Redis we kill mid-test (our own `redis-server` on its own port).

use aidocs_cache::{Breaker, BreakerConfig, Cache, CachedEmbedder, MemoryCache, RedisCache, RedisCacheConfig, TieredCache, conformance};
use aidocs_core::{CoreError, Dims, Embedder};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The shared server `.ci/run` makes sure is running (`REDIS_URL`, default 127.0.0.1:6379).
fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn namespace() -> String {
    format!("aidocs-test:{}:", uuid_like())
}

fn uuid_like() -> String {
    format!("{:x}{:x}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

async fn redis(url: &str, timeout: Duration) -> RedisCache {
    let c = RedisCache::new(RedisCacheConfig { url: url.into(), namespace: namespace(), pool_size: 2, timeout, compress_threshold: 1024 }).unwrap();
    assert!(c.wait_connected(Duration::from_secs(5)).await, "Redis reachable at {url} (.ci/run starts one)");
    c
}

#[tokio::test]
async fn memory_cache_conforms() {
    conformance::run_all(&MemoryCache::new(64 << 20), "mem").await;
}

#[tokio::test]
async fn memory_cache_is_bounded_by_bytes() {
    let c = MemoryCache::new(100_000);
    for i in 0..100 {
        c.set(&format!("k{i}"), vec![0u8; 10_000], Duration::from_secs(60)).await.unwrap();
    }
    let mut present = 0;
    for i in 0..100 {
        present += c.get(&format!("k{i}")).await.unwrap().is_some() as usize;
    }
    assert!(present <= 10, "at most ~100 kB of 1 MB written stays: {present} entries");
}

#[tokio::test]
async fn redis_cache_conforms() {
    let r = redis(&redis_url(), Duration::from_secs(2)).await;
    conformance::run_all(&r, "redis").await;
    // Large values are compressed on the wire; the server holds the small form.
    let text = "documentation ".repeat(100_000).into_bytes();
    r.set("z", text.clone(), Duration::from_secs(30)).await.unwrap();
    assert_eq!(r.get("z").await.unwrap(), Some(text));
}

#[tokio::test]
async fn tiered_and_breaker_wrapped_caches_conform() {
    let l2: Arc<dyn Cache> = Arc::new(Breaker::new(redis(&redis_url(), Duration::from_secs(2)).await, BreakerConfig {
        timeout: Duration::from_secs(2),
        circuit: aidocs_core::BreakerConfig { error_rate: 0.5, window: Duration::from_secs(10), min_calls: 3, cooldown: Duration::from_millis(500) },
    }));
    let tiered = TieredCache::new(MemoryCache::new(64 << 20), l2.clone(), Duration::from_millis(200));
    conformance::run_all(&tiered, "tiered").await;
    // An L2 hit fills L1: the second read is served by L1.
    l2.set("fill", b"v".to_vec(), Duration::from_secs(30)).await.unwrap();
    assert_eq!(tiered.get("fill").await.unwrap().as_deref(), Some(&b"v"[..]));
    let l1_hits = tiered.stats().tiers[0].hits;
    assert_eq!(tiered.get("fill").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(tiered.stats().tiers[0].hits, l1_hits + 1, "per-tier hit counters");
}

/// A `redis-server` child on a free port, without persistence.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { child, port };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not listen on {port}");
    }

    fn stop(&mut self) {
        let _ = Command::new("kill").arg("-9").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_redis_opens_the_breaker_and_recovery_closes_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = OwnRedis::start(port);
    let url = format!("redis://127.0.0.1:{}", server.port);
    let circuit = aidocs_core::BreakerConfig { error_rate: 0.5, window: Duration::from_secs(10), min_calls: 3, cooldown: Duration::from_millis(400) };
    let cfg = BreakerConfig { timeout: Duration::from_millis(50), circuit };
    let cache = Arc::new(Breaker::new(redis(&url, Duration::from_millis(50)).await, cfg));
    let mut ready = false;
    for _ in 0..40 {
        if cache.set("k", b"v".to_vec(), Duration::from_secs(60)).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "cache connects");
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(cache.stats().health, "ok");

    server.stop();
    // Calls fail (fast), then the breaker opens and short-circuits.
    for _ in 0..3 {
        assert!(cache.get("k").await.is_err());
    }
    assert!(cache.is_open(), "breaker open once half the calls in the window failed");
    let redis_errors = cache.inner().stats().errors;
    assert!(matches!(cache.get("k").await, Err(aidocs_core::CacheError::CircuitOpen(_))));
    assert_eq!(cache.inner().stats().errors, redis_errors, "an open circuit answers without calling Redis");
    assert!(cache.stats().health.starts_with("degraded"), "{}", cache.stats().health);

    // A caching embedder keeps working while the cache is down.
    let inner = Arc::new(Counting::default());
    let emb = CachedEmbedder::new(inner.clone(), cache.clone(), "test", Duration::from_secs(60));
    assert_eq!(emb.embed(&["a".into()]).await.unwrap().len(), 1);

    // Redis comes back on the same port; after the cool-down a probe closes the circuit.
    let _server2 = OwnRedis::start(port);
    let mut recovered = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if cache.set("k2", b"v2".to_vec(), Duration::from_secs(60)).await.is_ok() {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "cache recovers when Redis is back");
    assert!(!cache.is_open());
    assert_eq!(cache.get("k2").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(cache.stats().health, "ok");
}

/// Embeds text as [len, 1, 0...]; counts how many texts it was asked for, and how many
/// times it was asked to release memory.
#[derive(Default)]
struct Counting {
    texts: AtomicUsize,
    releases: AtomicUsize,
}

#[async_trait::async_trait]
impl Embedder for Counting {
    fn model_id(&self) -> &str {
        "counting"
    }
    fn dims(&self) -> Dims {
        4
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, CoreError> {
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0, 0.0, 0.0]).collect())
    }
    fn tokens_used(&self) -> Option<u64> {
        Some(7)
    }
    async fn release_memory(&self, what: aidocs_core::Release) {
        assert_eq!(what, aidocs_core::Release::Model, "passed on as asked");
        self.releases.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn cached_embedder_passes_release_memory_and_token_counts_to_the_embedder_it_wraps() {
    let inner = Arc::new(Counting::default());
    let emb = CachedEmbedder::new(inner.clone(), Arc::new(MemoryCache::new(1 << 20)), "test", Duration::from_secs(60));
    emb.release_memory(aidocs_core::Release::Model).await;
    assert_eq!(inner.releases.load(Ordering::SeqCst), 1, "the runtime's arena is the inner embedder's to give back");
    assert_eq!(emb.tokens_used(), Some(7), "the provider's own count, not the trait's default None");
}

#[tokio::test]
async fn cached_embedder_embeds_only_misses_in_one_batch() {
    for cache in [Arc::new(MemoryCache::new(1 << 20)) as Arc<dyn Cache>, Arc::new(redis(&redis_url(), Duration::from_secs(2)).await)] {
        let inner = Arc::new(Counting::default());
        let emb = CachedEmbedder::new(inner.clone(), cache.clone(), "test", Duration::from_secs(60));
        let a = emb.embed(&["one".into(), "three".into()]).await.unwrap();
        assert_eq!(inner.texts.load(Ordering::SeqCst), 2);
        let b = emb.embed(&["three".into(), "fourth".into(), "one".into()]).await.unwrap();
        assert_eq!(inner.texts.load(Ordering::SeqCst), 3, "{}: only `fourth` was embedded", cache.backend());
        assert_eq!(b[0], a[1]);
        assert_eq!(b[2], a[0]);
        assert_eq!(b[1], vec![6.0, 1.0, 0.0, 0.0]);
        assert!(emb.embed(&[]).await.unwrap().is_empty());
    }
}
