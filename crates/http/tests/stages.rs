//! The optional search stages end to end: HyDE against a real llama.cpp server
//! (SmolLM2-135M-Instruct) and reranking with a cross-encoder, through `Engine::search`.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::core::{CoreError, Filter, FilterField, FilterValue, Generator, Reranker, SearchMode, StoreQuery};
use aidocs::progress::NoProgress;
use aidocs::{Engine, IngestRequest, SearchRequest};
use aidocs_hyde::{Hyde, HydeConfig, OpenAiGenerator, OpenAiGeneratorConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DOCS: &[(&str, &str)] = &[
    ("py/venv.md", "---\nlanguage: python\n---\n# Virtual environments\n\nCreate an isolated environment with `python -m venv .venv`, then activate it with `source .venv/bin/activate`. Packages installed with pip stay inside it.\n"),
    ("py/json.md", "---\nlanguage: python\n---\n# JSON\n\nThe json module encodes Python objects as JSON text with `json.dumps` and parses text with `json.loads`.\n"),
    ("py/files.md", "---\nlanguage: python\n---\n# Reading files\n\nUse `open(path)` in a `with` block; iterate over the file object to read it line by line.\n"),
    ("rs/cargo.md", "---\nlanguage: rust\n---\n# Cargo workspaces\n\nA workspace shares one Cargo.lock and target directory between several packages. Dependencies are isolated per project, no virtual environment needed.\n"),
    ("rs/serde.md", "---\nlanguage: rust\n---\n# Serde\n\nDerive `Serialize` and `Deserialize` to convert structs to and from JSON with serde_json.\n"),
    ("rs/io.md", "---\nlanguage: rust\n---\n# File I/O\n\n`std::fs::read_to_string` reads a whole file; `BufReader::lines` iterates over lines.\n"),
];

async fn engine_with_docs(dir: &std::path::Path) -> Engine {
    let docs = dir.join("docs");
    common::write_tree(&docs, DOCS);
    let engine = common::engine(&dir.join("data"));
    let req = IngestRequest { path: docs, collection: "docs".into(), metadata: Default::default(), base_url: None };
    engine.ingest().directory(req, &NoProgress).await.unwrap();
    engine
}

/// Passes generations through and remembers them, so the test can recompute the vector.
struct Recording {
    inner: Arc<dyn Generator>,
    seen: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Generator for Recording {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    async fn generate(&self, system: &str, user: &str, n: usize) -> Result<Vec<String>, CoreError> {
        let out = self.inner.generate(system, user, n).await?;
        *self.seen.lock().unwrap() = out.clone();
        Ok(out)
    }
}

fn generator(base_url: &str, timeout: Duration) -> Arc<dyn Generator> {
    Arc::new(
        OpenAiGenerator::new(OpenAiGeneratorConfig {
            base_url: base_url.into(),
            api_key: String::new(),
            model: "smollm2-135m-instruct".into(),
            temperature: 0.7,
            max_tokens: 48,
            timeout,
        })
        .unwrap(),
    )
}

fn rust_only() -> Filter {
    Filter { must: vec![(FilterField::Language, FilterValue::Keyword("rust".into()))] }
}

#[tokio::test(flavor = "multi_thread")]
async fn hyde_with_a_real_llm_averages_embeddings_and_keeps_filters() {
    let llm = common::LlmServer::start();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_docs(dir.path()).await;

    // The generator itself: N non-empty passages.
    let llm_gen = generator(&llm.base_url, Duration::from_secs(60));
    let out = llm_gen.generate("You write documentation.", "Explain Python virtual environments.", 2).await.unwrap();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|p| !p.trim().is_empty()), "{out:?}");

    let rec = Arc::new(Recording { inner: llm_gen, seen: Mutex::default() });
    let w = 0.6;
    let engine = engine.with_hyde(Hyde::new(rec.clone(), HydeConfig { n: 2, query_weight: w, timeout: Duration::from_secs(60) }));
    let query = "how do I keep project dependencies isolated";
    let mut req = SearchRequest::new(query);
    req.mode = Some(SearchMode::Dense);
    req.filter = rust_only();
    req.hyde = Some(true);
    req.limit = Some(3);
    let resp = engine.search(req).await.unwrap();
    assert!(resp.hyde.as_ref().unwrap().to_string().starts_with("applied (2 passages"), "{:?}", resp.hyde);
    assert!(resp.timings.hyde_ms > 0.0 && resp.timings.embed_ms > 0.0 && resp.timings.search_ms > 0.0, "{:?}", resp.timings);
    assert!(!resp.hits.is_empty());
    assert!(resp.hits.iter().all(|h| h.metadata.language.as_deref() == Some("rust")), "filter preserved under HyDE");

    // The dense vector searched is normalize(w * q + (1 - w) * mean(passages)).
    let passages = rec.seen.lock().unwrap().clone();
    assert_eq!(passages.len(), 2);
    let mut texts = vec![query.to_owned()];
    texts.extend(passages.iter().map(|p| p.trim().to_owned()));
    let mut vecs = engine.embedder().embed(&texts).await.unwrap();
    let q = vecs.remove(0);
    let combined = aidocs_hyde::combine(&q, &vecs, w);
    let direct = engine
        .store()
        .query(
            "docs",
            &StoreQuery {
                mode: SearchMode::Dense,
                dense: Some(combined),
                sparse: None,
                filter: rust_only(),
                limit: 3,
                prefetch_limit: 10,
                fusion: Default::default(),
            },
        )
        .await
        .unwrap();
    let ids: Vec<String> = direct.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(resp.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(), ids);
    for (h, d) in resp.hits.iter().zip(&direct) {
        assert!((h.score - d.score).abs() < 1e-5, "{} vs {}", h.score, d.score);
    }
    // ... and not the plain query vector (the passages moved it).
    let plain = aidocs_hyde::combine(&q, &[], 1.0);
    assert_ne!(aidocs_hyde::combine(&q, &vecs, w), plain);
}

#[tokio::test(flavor = "multi_thread")]
async fn hyde_falls_back_to_hybrid_on_timeout_or_unreachable_generator() {
    let llm = common::LlmServer::start();
    let dir = tempfile::tempdir().unwrap();
    let base = engine_with_docs(dir.path()).await;
    let mut plain = SearchRequest::new("read a file line by line");
    plain.limit = Some(4);
    let expected = base.search(plain.clone()).await.unwrap();
    assert!(expected.hyde.is_none(), "not requested, no note");

    let cases = [
        (generator(&llm.base_url, Duration::from_secs(60)), Duration::from_millis(1), "timed out"),
        (generator("http://127.0.0.1:9/v1", Duration::from_secs(2)), Duration::from_secs(5), "127.0.0.1:9"),
    ];
    for (g, deadline, why) in cases {
        let engine = base.clone().with_hyde(Hyde::new(g, HydeConfig { n: 2, query_weight: 0.5, timeout: deadline }));
        let mut req = plain.clone();
        req.hyde = Some(true);
        let resp = engine.search(req).await.unwrap();
        let note = resp.hyde.clone().unwrap();
        assert!(note.is_skipped(), "{note}");
        let note = note.to_string();
        assert!(note.starts_with("skipped: ") && note.contains(why), "{note}");
        let ids = |r: &aidocs::SearchResponse| r.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&resp), ids(&expected), "fallback is plain hybrid");
    }
    // Not configured at all: also a note, never an error.
    let mut req = plain.clone();
    req.hyde = Some(true);
    let note = base.search(req).await.unwrap().hyde.unwrap().to_string();
    assert!(note.contains("not configured"), "{note}");
}

/// Scores passages by how many times they contain a marker word: a transparent reranker
/// whose order the test can predict.
struct CountReranker;

#[async_trait::async_trait]
impl Reranker for CountReranker {
    fn model_id(&self) -> &str {
        "count-reranker"
    }
    async fn rerank(&self, _query: &str, passages: &[String]) -> Result<Vec<f32>, CoreError> {
        Ok(passages.iter().map(|p| p.matches("JSON").count() as f32 + p.len() as f32 * 1e-6).collect())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rerank_reorders_the_top_k_and_degrades_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let base = engine_with_docs(dir.path()).await;
    let mut req = SearchRequest::new("virtual environment for packages");
    req.limit = Some(6);
    let fused = base.search(req.clone()).await.unwrap();
    req.rerank = Some(true);

    let engine = base.clone().with_reranker(Arc::new(CountReranker));
    let resp = engine.search(req.clone()).await.unwrap();
    assert!(resp.rerank.as_ref().unwrap().to_string().starts_with("applied (count-reranker"), "{:?}", resp.rerank);
    // Same candidates, now ordered by the reranker's scores.
    let mut a: Vec<_> = resp.hits.iter().map(|h| h.id.clone()).collect();
    let mut b: Vec<_> = fused.hits.iter().map(|h| h.id.clone()).collect();
    assert!(resp.hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(resp.hits[0].title == "JSON" || resp.hits[0].title == "Serde", "JSON-heavy first: {:?}", resp.hits[0].title);
    a.sort();
    b.sort();
    assert_eq!(a, b);

    // A real cross-encoder (random weights) runs through the same path.
    let ce_dir = dir.path().join("ce");
    aidocs_embed::testkit::write_random_cross_encoder(&ce_dir, &common::model_dir().join("tokenizer.json"), 3).unwrap();
    let ce = aidocs_embed::CrossEncoder::load(aidocs_embed::CrossEncoderConfig {
        model_dir: ce_dir,
        model_id: "random-ce".into(),
        max_seq_len: 128,
        batch_size: 8,
    })
    .unwrap();
    let resp = base.clone().with_reranker(Arc::new(ce.clone())).search(req.clone()).await.unwrap();
    assert!(resp.rerank.as_ref().unwrap().to_string().contains("random-ce"), "{:?}", resp.rerank);
    assert!(resp.timings.rerank_ms > 0.0);
    let texts: Vec<String> = resp.hits.iter().map(|h| format!("{} {}", h.title, h.snippet)).collect();
    let scores = ce.rerank("virtual environment for packages", &texts).await.unwrap();
    for (h, s) in resp.hits.iter().zip(scores) {
        assert!((h.score - s).abs() < 1e-4, "hit score is the cross-encoder score");
    }

    // An unreachable reranker: fused order, a note, no error.
    let broken = aidocs_embed::HttpReranker::new(aidocs_embed::HttpRerankerConfig {
        url: "http://127.0.0.1:9/rerank".into(),
        api: aidocs_embed::RerankApi::Tei,
        model: "tei".into(),
        api_key: String::new(),
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let resp = base.clone().with_reranker(Arc::new(broken)).search(req.clone()).await.unwrap();
    assert!(resp.rerank.as_ref().unwrap().to_string().starts_with("skipped: "), "{:?}", resp.rerank);
    assert_eq!(resp.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(), fused.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>());
    // None configured.
    assert!(base.search(req).await.unwrap().rerank.unwrap().to_string().contains("no reranker configured"));
}

/// Sleeps (after flagging that it is running), or panics on a marker query: drives the
/// overload and panic paths of the API.
#[derive(Default)]
struct SlowOrPanicking {
    running: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Reranker for SlowOrPanicking {
    fn model_id(&self) -> &str {
        "slow"
    }
    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, CoreError> {
        if query.contains("panic") {
            panic!("reranker bug");
        }
        self.running.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok(vec![0.0; passages.len()])
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_is_shed_fast_and_panics_answer_500() {
    use tower::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.server.max_concurrent_requests = 1;
    cfg.rerank.timeout_ms = 10_000;
    let docs = dir.path().join("docs");
    common::write_tree(&docs, DOCS);
    let slow_reranker = Arc::new(SlowOrPanicking::default());
    let engine = Engine::open(cfg).unwrap().with_reranker(slow_reranker.clone());
    engine.ingest().directory(IngestRequest { path: docs, collection: "docs".into(), metadata: Default::default(), base_url: None }, &NoProgress).await.unwrap();
    let app = aidocs_http::router(engine);
    let post = |q: &str| {
        axum::http::Request::post("/v1/search")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(serde_json::json!({"query": q, "rerank": true}).to_string()))
            .unwrap()
    };
    // One slow request holds the only slot; the next API request is shed, health is not.
    let slow = tokio::spawn(app.clone().oneshot(post("slow query")));
    for _ in 0..200 {
        if slow_reranker.running.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(slow_reranker.running.load(std::sync::atomic::Ordering::SeqCst), "the slow request is in flight");
    let shed = app.clone().oneshot(post("another query")).await.unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    let body = http_body_util::BodyExt::collect(shed.into_body()).await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("\"overloaded\""), "{}", String::from_utf8_lossy(&body));
    let health = app.clone().oneshot(axum::http::Request::get("/health").body(axum::body::Body::empty()).unwrap()).await.unwrap();
    assert_eq!(health.status(), 200, "health is never shed");
    let metrics = app.clone().oneshot(axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap()).await.unwrap();
    let text = http_body_util::BodyExt::collect(metrics.into_body()).await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("\nhttp_requests_shed_total 1\n"), "the shed request is counted");
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{") && l.contains("route=\"/v1/search\"") && l.contains("status=\"503\"")),
        "the shed answer is also in http_requests_total as a 503 of its route: {text}"
    );
    assert_eq!(slow.await.unwrap().unwrap().status(), 200, "the accepted request completes");

    // A panic in the pipeline: 500 with the JSON error body, and the service keeps serving.
    let resp = app.clone().oneshot(post("please panic")).await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("\"internal\""), "{}", String::from_utf8_lossy(&body));
    let mut ok = post("read a file");
    *ok.body_mut() = axum::body::Body::from(r#"{"query": "read a file"}"#);
    assert_eq!(app.oneshot(ok).await.unwrap().status(), 200, "still serving after a panic");
}
