//! `GET /metrics` after real requests, circuit breakers opening and degrading, filter caps
//! and per-route deadlines, through the router (`oneshot`) with the real engine.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::core::{CoreError, Dims, Embedder, Reranker};
use aidocs::progress::NoProgress;
use aidocs::{Engine, IngestRequest};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const DOCS: &[(&str, &str)] = &[
    ("guide/install.md", "---\nlanguage: rust\n---\n# Install\n\nInstall the server with `cargo install aidocs`, then run `aidocs serve`.\n"),
    ("guide/config.md", "---\nlanguage: rust\n---\n# Configure\n\nSet the data dir and the bind address in config.toml.\n"),
    ("guide/search.md", "---\nlanguage: python\n---\n# Search\n\nHybrid search fuses dense and sparse results with reciprocal rank fusion.\n"),
];

async fn send(app: &axum::Router, req: Request<Body>) -> (u16, axum::http::HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn post(uri: &str, body: Value) -> Request<Body> {
    Request::post(uri).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' '))).and_then(|v| v.trim().parse().ok())
}

async fn scrape(app: &axum::Router) -> String {
    let (status, headers, text) = send(app, get("/metrics")).await;
    assert_eq!(status, 200, "{text}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    text
}

async fn ingest(engine: &Engine, dir: &std::path::Path) {
    let docs = dir.join("docs");
    common::write_tree(&docs, DOCS);
    let req = IngestRequest { path: docs, collection: "docs".into(), metadata: Default::default(), base_url: None };
    engine.ingest().directory(req, &NoProgress).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_real_requests_by_route_mode_kind_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.cache.kind = aidocs::config::CacheBackend::Memory;
    cfg.embedding.usd_per_million_tokens = 0.02;
    let engine = Engine::open(cfg).unwrap();
    ingest(&engine, dir.path()).await;
    let app = aidocs_http::router(engine);

    let q = json!({"query": "how do I install the server"});
    assert_eq!(send(&app, post("/v1/search", q.clone())).await.0, 200);
    assert_eq!(send(&app, post("/v1/search", q)).await.0, 200, "the second one is a cache hit");
    assert_eq!(send(&app, post("/v1/search", json!({"query": "  "}))).await.0, 400);
    assert_eq!(send(&app, post("/v1/search", json!({"query": "the", "mode": "sparse"}))).await.0, 200, "stop words only: no hits");
    assert_eq!(send(&app, get("/v1/collections/nope")).await.0, 404);

    let text = scrape(&app).await;
    let s = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no sample `{series}` in:\n{text}"));
    assert_eq!(s(r#"search_requests_total{mode="hybrid",outcome="ok"}"#), 1.0);
    assert_eq!(s(r#"search_requests_total{mode="hybrid",outcome="cached"}"#), 1.0);
    assert_eq!(s(r#"search_requests_total{mode="hybrid",outcome="error"}"#), 1.0);
    assert_eq!(s(r#"search_errors_total{code="invalid_request"}"#), 1.0);
    assert_eq!(s(r#"search_zero_results_total{mode="sparse"}"#), 1.0);
    assert_eq!(s(r#"search_latency_seconds_count{mode="hybrid",outcome="ok"}"#), 1.0);
    assert_eq!(s(r#"query_api_prefetch_seconds_count{mode="hybrid"}"#), 1.0, "the cached search never reached the store");
    assert_eq!(s("embedding_latency_seconds_count"), 1.0);
    // Route templates, never raw paths.
    assert_eq!(s(r#"http_requests_total{method="POST",route="/v1/search",status="200"}"#), 3.0);
    assert_eq!(s(r#"http_requests_total{method="POST",route="/v1/search",status="400"}"#), 1.0);
    assert_eq!(s(r#"http_requests_total{method="GET",route="/v1/collections/{name}",status="404"}"#), 1.0);
    assert!(!text.contains("/v1/collections/nope"));
    // Cache kinds and tiers: one search miss then one hit.
    assert_eq!(s(r#"cache_hits_total{kind="search"}"#), 1.0);
    assert_eq!(s(r#"cache_misses_total{kind="search"}"#), 2.0, "the sparse search missed too");
    assert!(s(r#"cache_tier_requests_total{outcome="hit",tier="memory"}"#) >= 1.0);
    // Ingest: three files written, their bytes, chunks equal to the stored points.
    let bytes: usize = DOCS.iter().map(|(_, t)| t.len()).sum();
    assert_eq!(s(r#"ingest_documents_total{outcome="written"}"#), 3.0);
    assert_eq!(s("ingest_bytes_total"), bytes as f64);
    let chunks = s("ingest_chunks_total");
    let points: f64 = text.lines().filter(|l| l.starts_with("store_points{")).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum();
    assert_eq!(points, chunks, "store_points sums to the chunks written");
    // Tokens the model really embedded (chunks + one query), with their cost.
    let tokens = s(r#"embedding_tokens_total{model="sentence-transformers/all-MiniLM-L6-v2",provider="local"}"#);
    assert!(tokens > chunks, "{tokens} tokens for {chunks} chunks and a query");
    let cost = s(r#"embedding_cost_usd_total{model="sentence-transformers/all-MiniLM-L6-v2",provider="local"}"#);
    assert!((cost - tokens * 0.02 / 1e6).abs() < 1e-12, "{cost}");
    assert_eq!(s(r#"circuit_breaker_state{dependency="embedding"}"#), 0.0);
    assert_eq!(s(&format!(r#"aidocs_build_info{{version="{}"}}"#, env!("CARGO_PKG_VERSION"))), 1.0);
    // The scrape itself is counted on the next one.
    let text = scrape(&app).await;
    assert_eq!(sample(&text, r#"http_requests_total{method="GET",route="/metrics",status="200"}"#), Some(1.0));
}

/// Fails every call.
struct Failing;

#[async_trait::async_trait]
impl Reranker for Failing {
    fn model_id(&self) -> &str {
        "failing-reranker"
    }
    async fn rerank(&self, _query: &str, _passages: &[String]) -> Result<Vec<f32>, CoreError> {
        Err(CoreError::Rerank("upstream 500".into()))
    }
}

#[async_trait::async_trait]
impl Embedder for Failing {
    fn model_id(&self) -> &str {
        "sentence-transformers/all-MiniLM-L6-v2"
    }
    fn dims(&self) -> Dims {
        384
    }
    async fn embed(&self, _texts: &[String]) -> Result<Vec<Vec<f32>>, CoreError> {
        Err(CoreError::Embedding("model server down".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakers_open_at_the_error_rate_degrade_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.breaker = aidocs::config::BreakerSettings { error_rate: 0.5, window_s: 60, min_calls: 3, cooldown_ms: 600_000 };
    let engine = Engine::open(cfg).unwrap();
    ingest(&engine, dir.path()).await;

    // Reranker: three failures degrade with the error; then the circuit is open and the
    // stage is skipped without calling it. Search keeps answering 200 throughout.
    let app = aidocs_http::router(engine.clone().with_reranker(Arc::new(Failing)));
    let q = json!({"query": "install the server", "rerank": true});
    for _ in 0..3 {
        let (status, _, body) = send(&app, post("/v1/search", q.clone())).await;
        assert_eq!(status, 200);
        assert!(body.contains("skipped: reranker failed: upstream 500"), "{body}");
    }
    let (status, _, body) = send(&app, post("/v1/search", q)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["rerank"].as_str().unwrap().contains("reranker is failing; circuit open"), "{body}");
    assert!(!v["hits"].as_array().unwrap().is_empty());
    let (status, _, body) = send(&app, get("/health/detailed")).await;
    assert_eq!(status, 200);
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["services"]["reranker"]["circuit"], "open", "{h}");
    assert_eq!(h["services"]["embedding"]["circuit"], "closed", "{h}");
    // The engine `auto` chose: candle, as the test's working directory has no ONNX Runtime.
    assert_eq!(h["services"]["embedding"]["backend"], "local", "{h}");
    let text = scrape(&app).await;
    assert_eq!(sample(&text, r#"circuit_breaker_state{dependency="reranker"}"#), Some(2.0), "{text}");
    assert_eq!(sample(&text, r#"circuit_breaker_rejections_total{dependency="reranker"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"rerank_requests_total{outcome="error"}"#), Some(3.0));
    assert_eq!(sample(&text, r#"rerank_requests_total{outcome="skipped"}"#), Some(1.0));

    // Embedder: failures are 500s; once open, a fast 503 that names the dependency, and
    // health says unhealthy. Sparse search, which needs no embedding, still answers.
    let app = aidocs_http::router(engine.with_embedder(Arc::new(Failing)));
    let q = json!({"query": "configure the data dir"});
    for _ in 0..3 {
        assert_eq!(send(&app, post("/v1/search", q.clone())).await.0, 500);
    }
    let (status, _, body) = send(&app, post("/v1/search", q)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"unavailable\"") && body.contains("embedding is failing; circuit open"), "{body}");
    assert_eq!(send(&app, post("/v1/search", json!({"query": "configure the data dir", "mode": "sparse"}))).await.0, 200);
    let (status, _, body) = send(&app, get("/health/detailed")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"unhealthy\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_are_per_route_and_filters_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.server.request_timeout_ms = 250;
    cfg.server.admin_timeout_ms = 60_000;
    cfg.search.max_filter_values = 4;
    let engine = Engine::open(cfg).unwrap();
    let slow = common::Held::slow(engine.base_embedder().clone(), Duration::from_millis(1000));
    let engine = engine.with_embedder(slow);
    let app = aidocs_http::router(engine.clone());
    let docs = dir.path().join("docs");
    common::write_tree(&docs, DOCS);

    // Ingest runs past the search deadline but within the admin one.
    let (status, _, body) = send(&app, post("/v1/documents", json!({"path": docs}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = send(&app, post("/v1/search", json!({"query": "install"}))).await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("\"timeout\""), "{body}");

    // Exactly at the cap is allowed (straight to the engine: no deadline on a busy CI box).
    let mut req = aidocs::SearchRequest::new("install");
    req.mode = Some(aidocs::core::SearchMode::Sparse);
    req.filter = aidocs::filters::from_json(&json!({"version": ["1", "2", "3"], "language": "rust"})).unwrap();
    engine.search(req).await.expect("4 values are allowed");
    let (status, _, body) = send(&app, post("/v1/search", json!({"query": "install", "mode": "sparse", "filter": {"version": ["1", "2", "3", "4"], "language": "rust"}}))).await;
    assert_eq!(status, 400);
    assert!(body.contains("`filter` has 5 values; at most 4"), "{body}");
    let long = "x".repeat(300);
    let (status, _, body) = send(&app, post("/v1/search", json!({"query": "install", "mode": "sparse", "filter": {"framework": long}}))).await;
    assert_eq!(status, 400);
    assert!(body.contains("300 characters is longer than 256"), "{body}");
}
