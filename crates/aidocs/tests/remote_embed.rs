//! The OpenAI-compatible embedder against a real server: llama.cpp's (xllamacpp wheel,
//! SmolLM2-135M with mean pooling) `/v1/embeddings`. Ingest, search, provider-reported token
//! usage in the metrics, and a clear error when a collection built by one model is searched
//! with another.

mod common;

use aidocs::config::EmbeddingProvider;
use aidocs::progress::NoProgress;
use aidocs::{Engine, IngestRequest, SearchRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_embeddings_ingest_search_meter_and_guard_the_model() {
    let llm = common::LlmServer::start();
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write_tree(
        &docs,
        &[
            ("install.md", "# Install\n\nInstall the server with cargo install aidocs.\n"),
            ("tracing.md", "# Tracing\n\nEnable request tracing to export spans over OTLP.\n"),
        ],
    );
    let data = dir.path().join("data");
    let mut cfg = common::config(&data);
    cfg.embedding.provider = EmbeddingProvider::Openai;
    cfg.embedding.openai.base_url = llm.base_url.clone();
    cfg.embedding.openai.model = "smollm2-135m-instruct".into();
    cfg.embedding.openai.dims = 576;
    cfg.embedding.prices.insert("smollm2-135m-instruct".into(), 1.0);
    let engine = Engine::open(cfg.clone()).unwrap();
    let report = engine
        .ingest().directory(IngestRequest { path: docs.clone(), collection: "remote".into(), metadata: Default::default(), base_url: None }, &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.documents_written, 2);
    let info = engine.collections().get("remote").await.unwrap();
    assert_eq!(info.dims, 576, "collection created with the remote model's size");
    assert_eq!(info.properties.get("embedding_model").map(String::as_str), Some("openai:smollm2-135m-instruct"));
    let mut req = SearchRequest::new("export spans over OTLP");
    req.collection = Some("remote".into());
    let hits = engine.search(req).await.unwrap().hits;
    assert_eq!(hits.first().map(|h| h.path.as_str()), Some("tracing.md"), "{hits:?}");

    // Usage is what the server reported (llama.cpp counts prompt tokens), priced per model.
    let text = engine.metrics().encode().unwrap();
    let line = text.lines().find(|l| l.starts_with("embedding_tokens_total{") && l.contains("provider=\"openai\"")).expect("tokens metered");
    let tokens: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(tokens > 10.0, "{line}");
    let cost = text.lines().find(|l| l.starts_with("embedding_cost_usd_total{") && l.contains("provider=\"openai\"")).expect("cost metered");
    let usd: f64 = cost.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((usd - tokens / 1e6).abs() < 1e-9, "1 USD per million tokens: {cost} for {tokens}");
    drop(engine);

    // The same collection searched by the local MiniLM engine: refused, naming both models.
    let local = Engine::open(common::config(&data)).unwrap();
    let mut req = SearchRequest::new("spans");
    req.collection = Some("remote".into());
    let err = local.search(req).await.unwrap_err().to_string();
    assert!(err.contains("openai:smollm2-135m-instruct") && err.contains("all-MiniLM-L6-v2"), "{err}");

    // A wrong `dims` is caught on the first response, with both sizes named.
    let mut wrong = common::config(&dir.path().join("data2"));
    wrong.embedding.provider = EmbeddingProvider::Openai;
    wrong.embedding.openai.base_url = llm.base_url.clone();
    wrong.embedding.openai.model = "smollm2-135m-instruct".into();
    wrong.embedding.openai.dims = 384;
    let engine = Engine::open(wrong).unwrap();
    let err = engine
        .ingest().directory(IngestRequest { path: docs, collection: "remote".into(), metadata: Default::default(), base_url: None }, &NoProgress)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("returned 576 dimensions; embedding.dims is 384"), "{err}");
}

/// An embedding service that cannot be reached fails the ingest with an error that names
/// the dependency (provider and model) and maps to the API's `unavailable` (503), not a bare
/// `internal`; what was there before is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_embedding_service_is_named_and_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write_tree(&docs, &[("install.md", "# Install\n\nInstall the server with cargo install aidocs.\n")]);
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.embedding.provider = EmbeddingProvider::Openai;
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    cfg.embedding.openai.base_url = "http://127.0.0.1:9/v1".into();
    cfg.embedding.openai.model = "text-embedding-3-small".into();
    cfg.embedding.openai.dims = 384;
    cfg.embedding.openai.retries = 0;
    let engine = Engine::open(cfg).unwrap();
    let err = engine
        .ingest()
        .directory(IngestRequest { path: docs, collection: "down".into(), metadata: Default::default(), base_url: None }, &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err.code(), aidocs::ErrorCode::Unavailable, "{err}");
    let message = err.public_message();
    assert!(message.starts_with("embedder openai (openai:text-embedding-3-small) failed: "), "{message}");
    assert_eq!(engine.store().collection_info("down").await.unwrap().points, 0);
}
