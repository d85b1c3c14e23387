//! `OpenAiEmbedder` error paths and batching against a small local HTTP server (the real
//! OpenAI API cannot run here; the real llama.cpp server is exercised in
//! `crates/aidocs/tests/remote_embed.rs`).

use aidocs_core::Embedder;
use aidocs_embed::{OpenAiEmbedder, OpenAiEmbedderConfig};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Reply {
    Ok,
    /// 429 with `Retry-After: 1`.
    TooMany,
    Error500,
    /// Answer after 2 s.
    Slow,
    Malformed,
    WrongDims,
}

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<Vec<Reply>>>,
    seen: Arc<Mutex<Vec<(Instant, serde_json::Value, Option<String>)>>>,
}

async fn embeddings(State(f): State<Fake>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    f.seen.lock().unwrap().push((Instant::now(), body.clone(), auth));
    let reply = {
        let mut s = f.script.lock().unwrap();
        if s.is_empty() { Reply::Ok } else { s.remove(0) }
    };
    let inputs: Vec<String> = body["input"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    let vectors = |dims: usize| -> serde_json::Value {
        // Reverse order on the wire: the client must sort by index.
        let data: Vec<serde_json::Value> = inputs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, t)| serde_json::json!({"object": "embedding", "index": i, "embedding": (0..dims).map(|d| if d == t.len() % dims { 2.0 } else { 0.0 }).collect::<Vec<f32>>()}))
            .collect();
        serde_json::json!({"object": "list", "model": "fake", "data": data, "usage": {"prompt_tokens": inputs.len() * 3, "total_tokens": inputs.len() * 3}})
    };
    match reply {
        Reply::Ok => axum::Json(vectors(4)).into_response(),
        Reply::WrongDims => axum::Json(vectors(5)).into_response(),
        Reply::TooMany => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response(),
        Reply::Error500 => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Reply::Slow => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            axum::Json(vectors(4)).into_response()
        }
        Reply::Malformed => ([("content-type", "application/json")], "{\"data\": [1, 2").into_response(),
    }
}

async fn fake(script: &[Reply]) -> (String, Fake) {
    let f = Fake { script: Arc::new(Mutex::new(script.to_vec())), ..Default::default() };
    let app = axum::Router::new().route("/v1/embeddings", axum::routing::post(embeddings)).with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, f)
}

fn embedder(url: &str, tweak: impl FnOnce(&mut OpenAiEmbedderConfig)) -> OpenAiEmbedder {
    let mut cfg = OpenAiEmbedderConfig {
        base_url: url.to_owned(),
        api_key: Some("sk-test".into()),
        model: "fake-embed".into(),
        dims: 4,
        max_batch: 2,
        retries: 2,
        max_retry_wait: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        ..Default::default()
    };
    tweak(&mut cfg);
    OpenAiEmbedder::new(cfg).unwrap()
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| "x".repeat(i + 1)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_order_with_auth_and_counts_reported_usage() {
    let (url, f) = fake(&[]).await;
    let e = embedder(&url, |_| {});
    let v = e.embed(&texts(5)).await.unwrap();
    assert_eq!(v.len(), 5);
    for (i, vec) in v.iter().enumerate() {
        let hot = vec.iter().position(|&x| x > 0.0).unwrap();
        assert_eq!(hot, (i + 1) % 4, "vector {i} in input order");
        assert!((vec.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-6, "L2-normalised");
    }
    {
        let seen = f.seen.lock().unwrap();
        assert_eq!(seen.iter().map(|s| s.1["input"].as_array().unwrap().len()).collect::<Vec<_>>(), [2, 2, 1], "max_batch 2");
        assert!(seen.iter().all(|s| s.2.as_deref() == Some("Bearer sk-test") && s.1["model"] == "fake-embed"));
    }
    assert_eq!(e.tokens_used(), Some(15), "provider-reported usage summed");
    assert!(e.embed(&[]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_honour_retry_after_and_give_up_with_a_clear_error() {
    let (url, f) = fake(&[Reply::TooMany, Reply::Ok]).await;
    let e = embedder(&url, |_| {});
    e.embed(&texts(1)).await.unwrap();
    {
        let seen = f.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].0 - seen[0].0 >= Duration::from_millis(900), "waited for Retry-After: 1");
    }

    let (url, f) = fake(&[Reply::Error500, Reply::Error500, Reply::Error500, Reply::Error500]).await;
    let err = embedder(&url, |_| {}).embed(&texts(1)).await.unwrap_err().to_string();
    assert!(err.contains("HTTP 500") && err.contains("after 2 retries") && err.contains("fake-embed"), "{err}");
    assert_eq!(f.seen.lock().unwrap().len(), 3, "1 try + 2 retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_malformed_bodies_and_wrong_dimensions_are_errors() {
    let (url, f) = fake(&[Reply::Slow, Reply::Slow]).await;
    let err = embedder(&url, |c| {
        c.timeout = Duration::from_millis(300);
        c.retries = 1;
    })
    .embed(&texts(1))
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("request failed"), "{err}");
    assert_eq!(f.seen.lock().unwrap().len(), 2, "a timeout is retried");

    let (url, _) = fake(&[Reply::Malformed]).await;
    let err = embedder(&url, |c| c.retries = 0).embed(&texts(1)).await.unwrap_err().to_string();
    assert!(err.contains("malformed response"), "{err}");

    let (url, _) = fake(&[Reply::WrongDims]).await;
    let err = embedder(&url, |_| {}).embed(&texts(1)).await.unwrap_err().to_string();
    assert!(err.contains("returned 5 dimensions; embedding.dims is 4"), "{err}");
}
