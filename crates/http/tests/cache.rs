//! Caching in the search pipeline: repeated queries skip the embedder, alias switches and
//! ingests never serve old entries, a real Redis works as L2, and a dead one only degrades.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::config::CacheBackend;
use aidocs::core::{CoreError, Dims, Embedder};
use aidocs::progress::NoProgress;
use aidocs::{Engine, IngestRequest, SearchRequest};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the texts the real embedder is asked to embed.
struct Counting {
    inner: Arc<dyn Embedder>,
    texts: AtomicUsize,
}

#[async_trait::async_trait]
impl Embedder for Counting {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dims(&self) -> Dims {
        self.inner.dims()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, CoreError> {
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.embed(texts).await
    }
}

fn engine_with(dir: &std::path::Path, kind: CacheBackend, url: &str) -> (Engine, Arc<Counting>) {
    let mut cfg = common::config(dir);
    cfg.cache.kind = CacheBackend::None;
    let plain = Engine::open(cfg.clone()).unwrap();
    let counting = Arc::new(Counting { inner: plain.base_embedder().clone(), texts: AtomicUsize::new(0) });
    let mut engine = plain.with_embedder(counting.clone());
    cfg.cache.kind = kind;
    cfg.cache.url = url.into();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    cfg.cache.namespace = format!("aidocs-test:{}:{nanos}:", std::process::id());
    if let Some(cache) = aidocs::engine::build_cache(&cfg).unwrap() {
        engine = engine.with_cache(cache);
    }
    (engine, counting)
}

async fn ingest(engine: &Engine, root: &std::path::Path, collection: &str) {
    engine
        .ingest().directory(IngestRequest { path: root.into(), collection: collection.into(), metadata: Default::default(), base_url: None }, &NoProgress)
        .await
        .unwrap();
}

fn req(q: &str, collection: &str) -> SearchRequest {
    SearchRequest { collection: Some(collection.into()), limit: Some(3), ..SearchRequest::new(q) }
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_queries_hit_the_cache_and_alias_switches_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    common::write_tree(&a, &[("venv.md", "# Virtual environments\n\nCreate one with python -m venv.\n")]);
    common::write_tree(&b, &[("cargo.md", "# Cargo\n\nCargo builds Rust packages; a virtual environment is not needed.\n")]);
    let (engine, counting) = engine_with(&dir.path().join("data"), CacheBackend::Memory, "");
    ingest(&engine, &a, "docs-a").await;
    ingest(&engine, &b, "docs-b").await;
    engine.store().set_alias("docs", "docs-a").await.unwrap();

    let first = engine.search(req("virtual environment", "docs")).await.unwrap();
    assert!(!first.cached);
    assert_eq!(first.collection, "docs-a");
    let embedded = counting.texts.load(Ordering::SeqCst);
    let again = engine.search(req("  virtual   environment ", "docs")).await.unwrap();
    assert!(again.cached, "same normalized request is served from cache");
    assert_eq!(counting.texts.load(Ordering::SeqCst), embedded, "embedder not called for a cached search");
    assert_eq!(again.hits, first.hits);

    // Another limit is another request; its query embedding comes from the embedding cache.
    let mut other = req("virtual environment", "docs");
    other.limit = Some(2);
    assert!(!engine.search(other).await.unwrap().cached);
    assert_eq!(counting.texts.load(Ordering::SeqCst), embedded, "query embedding served from the embedding cache");

    // Alias switch: the same request resolves to docs-b and must not get docs-a's entry.
    engine.store().set_alias("docs", "docs-b").await.unwrap();
    let switched = engine.search(req("virtual environment", "docs")).await.unwrap();
    assert!(!switched.cached, "no entry of the old collection is served");
    assert_eq!(switched.collection, "docs-b");
    assert_eq!(switched.hits[0].path, "cargo.md");

    // An ingest that changes a collection drops its cached results.
    engine.store().set_alias("docs", "docs-a").await.unwrap();
    assert!(engine.search(req("virtual environment", "docs")).await.unwrap().cached);
    common::write_tree(&a, &[("venv.md", "# Virtual environments\n\nUse python -m venv .venv, then activate it.\n")]);
    ingest(&engine, &a, "docs-a").await;
    let fresh = engine.search(req("virtual environment", "docs")).await.unwrap();
    assert!(!fresh.cached, "ingest invalidated docs-a's results");
    assert!(fresh.hits[0].snippet.contains("activate"));

    let stats = engine.cache_stats().unwrap();
    assert!(stats.kinds.search.hits >= 2, "{stats:?}");
    assert!(stats.kinds.embedding.hits >= 1, "{stats:?}");
    assert!(engine.cache_clear(Some(aidocs::cache::CacheKind::Search)).await.unwrap() >= 1);
    assert!(!engine.search(req("virtual environment", "docs")).await.unwrap().cached, "cleared");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_l2_serves_a_second_engine_and_a_dead_redis_only_degrades() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write_tree(&docs, &[("json.md", "# JSON\n\nThe json module encodes and decodes JSON.\n")]);
    let (engine, _) = engine_with(&dir.path().join("data"), CacheBackend::Redis, &url);
    ingest(&engine, &docs, "docs").await;
    // Redis connects in the background: the first requests may miss.
    let mut cached = false;
    for _ in 0..50 {
        engine.search(req("decode json", "docs")).await.unwrap();
        if engine.search(req("decode json", "docs")).await.unwrap().cached {
            cached = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(cached, "repeat served from cache");
    let stats = engine.cache_stats().unwrap();
    assert_eq!(stats.backend, "tiered");
    assert_eq!(stats.health, "ok", "{stats:?}");
    assert_eq!(stats.cache.tiers.len(), 2);

    // Redis unreachable: every search still answers, the cache reports degraded.
    let dir2 = tempfile::tempdir().unwrap();
    let (dead, _) = engine_with(&dir2.path().join("data"), CacheBackend::Redis, "redis://127.0.0.1:1");
    ingest(&dead, &docs, "docs").await;
    for _ in 0..10 {
        let r = dead.search(req("decode json", "docs")).await.unwrap();
        assert_eq!(r.hits[0].path, "json.md");
    }
    assert!(dead.cache_health().starts_with("degraded"), "{}", dead.cache_health());
    let app = aidocs_http::router(dead.clone());
    let get = |uri: &str| axum::http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
    let resp = tower::ServiceExt::oneshot(app.clone(), get("/health/ready")).await.unwrap();
    assert_eq!(resp.status(), 200, "a degraded cache does not make the service unready");
    let resp = tower::ServiceExt::oneshot(app.clone(), get("/health/detailed")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["services"]["cache"]["status"], "degraded", "{body}");
    assert_eq!(body["services"]["store"]["status"], "up", "{body}");
    assert_eq!(body["services"]["embedding"]["status"], "up", "{body}");
    assert!(body["services"]["store"]["latency_ms"].as_f64().is_some());
    assert!(body["metrics"]["requests_total"].as_u64().unwrap() >= 1, "{body}");
    // Distinct queries miss L1 and reach Redis; every call fails, the circuit opens (more
    // than `breaker.min_calls` calls, all failed), and the metrics say so.
    for i in 0..20 {
        dead.search(req(&format!("decode json variant {i}"), "docs")).await.unwrap();
    }
    assert_eq!(dead.breaker_states().get("cache"), Some(&aidocs::core::BreakerState::Open));
    let text = dead.metrics().encode().unwrap();
    assert!(text.contains("circuit_breaker_state{dependency=\"cache\"} 2"), "{text}");
    assert!(text.contains("cache_tier_requests_total{outcome=\"error\",tier=\"redis\"}"), "{text}");

    // The healthy engine, same route: healthy.
    let resp = tower::ServiceExt::oneshot(aidocs_http::router(engine.clone()), get("/health/detailed")).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["services"]["cache"]["status"], "up", "{body}");
    assert_eq!(body["services"]["generator"]["status"], "not_configured");
}

/// The builder is not order-sensitive: an embedder replaced after the cache was set up (as
/// `Engine::open` does) is still metered and still cached. It used to replace the whole
/// stack, so embeddings bypassed the cache and `embedding_tokens_total` stopped counting.
#[tokio::test(flavor = "multi_thread")]
async fn an_embedder_replaced_after_the_cache_is_metered_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.cache.kind = CacheBackend::Memory;
    let engine = Engine::open(cfg).unwrap();
    let counting = Arc::new(Counting { inner: engine.base_embedder().clone(), texts: AtomicUsize::new(0) });
    let engine = engine.with_embedder(counting.clone());
    let texts = vec!["the order of the builder calls must not matter".to_owned()];
    engine.embedder().embed(&texts).await.unwrap();
    engine.embedder().embed(&texts).await.unwrap();
    assert_eq!(counting.texts.load(Ordering::SeqCst), 1, "the second embedding came from the cache");
    let text = engine.metrics().encode().unwrap();
    let tokens = text.lines().find(|l| l.starts_with("embedding_tokens_total{")).unwrap_or_else(|| panic!("metered:\n{text}"));
    assert!(tokens.rsplit(' ').next().unwrap().parse::<f64>().unwrap() > 0.0, "{tokens}");
}
