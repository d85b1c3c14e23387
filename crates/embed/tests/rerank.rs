//! Rerankers: the candle cross-encoder against an independent plain-Rust BERT forward pass
//! on a random model written in the real file layout, and the HTTP engine against a local
//! server speaking the TEI and Cohere `/rerank` contracts (backed by the same model).

use aidocs_core::Reranker;
use aidocs_embed::testkit::{HEADS, LAYERS, write_random_cross_encoder};
use aidocs_embed::{CrossEncoder, CrossEncoderConfig, HttpReranker, HttpRerankerConfig, RerankApi};
use axum::Json;
use axum::routing::post;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

type Weights = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn tokenizer_json() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2/tokenizer.json");
    assert!(p.is_file(), "{} missing: run `cargo xtask models`", p.display());
    p
}

fn model(seed: u64) -> (tempfile::TempDir, Weights) {
    let dir = tempfile::tempdir().unwrap();
    let w = write_random_cross_encoder(dir.path(), &tokenizer_json(), seed).unwrap();
    (dir, w)
}

fn load(dir: &std::path::Path, batch_size: usize) -> CrossEncoder {
    CrossEncoder::load(CrossEncoderConfig { model_dir: dir.into(), model_id: "test/random-ce".into(), max_seq_len: 128, batch_size }).unwrap()
}

// ---- independent reference: BERT forward with plain loops, f64 accumulation ----

fn w<'a>(ws: &'a Weights, name: &str) -> &'a [f32] {
    &ws.get(name).unwrap_or_else(|| panic!("weight {name}")).1
}

/// y = x W^T + b for one vector; W is [out, in] row-major.
fn linear(x: &[f64], weight: &[f32], bias: &[f32]) -> Vec<f64> {
    let inp = x.len();
    bias.iter()
        .enumerate()
        .map(|(o, b)| *b as f64 + (0..inp).map(|i| weight[o * inp + i] as f64 * x[i]).sum::<f64>())
        .collect()
}

fn layer_norm(x: &[f64], g: &[f32], b: &[f32]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    x.iter().enumerate().map(|(i, v)| (v - mean) / (var + 1e-12).sqrt() * g[i] as f64 + b[i] as f64).collect()
}

/// erf: Maclaurin series below 3, asymptotic expansion of erfc above (error < 1e-9).
fn erf(x: f64) -> f64 {
    let ax = x.abs();
    let r = if ax < 3.0 {
        let mut sum = ax;
        let mut term = ax;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -ax * ax / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() < 1e-17 {
                break;
            }
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        1.0 - (-ax * ax).exp() / (ax * std::f64::consts::PI.sqrt()) * (1.0 - 1.0 / (2.0 * ax * ax))
    };
    if x < 0.0 { -r } else { r }
}

fn reference_score(ws: &Weights, ids: &[u32], types: &[u32]) -> f64 {
    let h = ws["bert.embeddings.LayerNorm.weight"].0[0];
    let heads = HEADS;
    let dh = h / heads;
    let mut xs: Vec<Vec<f64>> = ids
        .iter()
        .zip(types)
        .enumerate()
        .map(|(pos, (id, t))| {
            let e: Vec<f64> = (0..h)
                .map(|j| {
                    w(ws, "bert.embeddings.word_embeddings.weight")[*id as usize * h + j] as f64
                        + w(ws, "bert.embeddings.position_embeddings.weight")[pos * h + j] as f64
                        + w(ws, "bert.embeddings.token_type_embeddings.weight")[*t as usize * h + j] as f64
                })
                .collect();
            layer_norm(&e, w(ws, "bert.embeddings.LayerNorm.weight"), w(ws, "bert.embeddings.LayerNorm.bias"))
        })
        .collect();
    for l in 0..LAYERS {
        let p = |s: &str| format!("bert.encoder.layer.{l}.{s}");
        let proj = |m: &str| -> Vec<Vec<f64>> {
            xs.iter().map(|x| linear(x, w(ws, &p(&format!("attention.self.{m}.weight"))), w(ws, &p(&format!("attention.self.{m}.bias"))))).collect()
        };
        let (q, k, v) = (proj("query"), proj("key"), proj("value"));
        let n = xs.len();
        let mut ctx = vec![vec![0.0; h]; n];
        for hd in 0..heads {
            let r = hd * dh..(hd + 1) * dh;
            for i in 0..n {
                let logits: Vec<f64> =
                    (0..n).map(|j| r.clone().map(|c| q[i][c] * k[j][c]).sum::<f64>() / (dh as f64).sqrt()).collect();
                let m = logits.iter().cloned().fold(f64::MIN, f64::max);
                let ex: Vec<f64> = logits.iter().map(|z| (z - m).exp()).collect();
                let s: f64 = ex.iter().sum();
                for c in r.clone() {
                    ctx[i][c] = (0..n).map(|j| ex[j] / s * v[j][c]).sum();
                }
            }
        }
        xs = xs
            .iter()
            .zip(&ctx)
            .map(|(x, c)| {
                let a = linear(c, w(ws, &p("attention.output.dense.weight")), w(ws, &p("attention.output.dense.bias")));
                let res: Vec<f64> = a.iter().zip(x).map(|(a, b)| a + b).collect();
                let x1 = layer_norm(&res, w(ws, &p("attention.output.LayerNorm.weight")), w(ws, &p("attention.output.LayerNorm.bias")));
                let inter: Vec<f64> = linear(&x1, w(ws, &p("intermediate.dense.weight")), w(ws, &p("intermediate.dense.bias")))
                    .into_iter()
                    .map(|z| 0.5 * z * (1.0 + erf(z / std::f64::consts::SQRT_2)))
                    .collect();
                let o = linear(&inter, w(ws, &p("output.dense.weight")), w(ws, &p("output.dense.bias")));
                let res: Vec<f64> = o.iter().zip(&x1).map(|(a, b)| a + b).collect();
                layer_norm(&res, w(ws, &p("output.LayerNorm.weight")), w(ws, &p("output.LayerNorm.bias")))
            })
            .collect();
    }
    let pooled: Vec<f64> =
        linear(&xs[0], w(ws, "bert.pooler.dense.weight"), w(ws, "bert.pooler.dense.bias")).into_iter().map(f64::tanh).collect();
    linear(&pooled, w(ws, "classifier.weight"), w(ws, "classifier.bias"))[0]
}

fn passages() -> Vec<String> {
    vec![
        "Create a virtual environment with python -m venv and activate it.".into(),
        "Tuples are immutable sequences.".into(),
        "The json module encodes and decodes JSON documents; json.dumps returns a string, json.loads parses one, and both accept many options.".into(),
    ]
}

#[tokio::test]
async fn cross_encoder_matches_an_independent_forward_pass() {
    let (dir, weights) = model(7);
    let query = "how do I make a virtual environment";
    let mut tok = tokenizers::Tokenizer::from_file(dir.path().join("tokenizer.json")).unwrap();
    tok.with_padding(None); // the file pads to 128; the reference runs on real tokens only
    tok.with_truncation(None).unwrap();
    // Batched (padded to the longest pair) and one-by-one must both match the reference.
    for batch_size in [8, 1] {
        let ce = load(dir.path(), batch_size);
        let got = ce.rerank(query, &passages()).await.unwrap();
        assert_eq!(got.len(), 3);
        for (p, g) in passages().iter().zip(&got) {
            let enc = tok.encode((query, p.as_str()), true).unwrap();
            assert!(enc.get_type_ids().contains(&1), "the passage is segment B");
            let want = reference_score(&weights, enc.get_ids(), enc.get_type_ids());
            assert!((*g as f64 - want).abs() < 1e-3, "batch {batch_size}: candle {g} vs reference {want}");
        }
    }
    // Deterministic, passage-dependent and empty-safe.
    let ce = load(dir.path(), 8);
    let a = ce.rerank(query, &passages()).await.unwrap();
    assert_eq!(a, ce.rerank(query, &passages()).await.unwrap());
    assert!(a[0] != a[1] && a[1] != a[2], "scores depend on the passage: {a:?}");
    assert!(ce.rerank(query, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn cross_encoder_reports_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = CrossEncoder::load(CrossEncoderConfig { model_dir: dir.path().into(), model_id: "x".into(), max_seq_len: 64, batch_size: 4 })
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
}

/// A local server implementing the TEI (`POST /rerank`) and Cohere (`POST /v1/rerank`)
/// contracts over a real cross-encoder. Answers are sorted by score, as the real ones are.
async fn serve(ce: CrossEncoder) -> String {
    let ce = Arc::new(ce);
    let tei = {
        let ce = ce.clone();
        move |Json(body): Json<serde_json::Value>| async move {
            let texts: Vec<String> = serde_json::from_value(body["texts"].clone()).unwrap();
            let scores = ce.rerank(body["query"].as_str().unwrap(), &texts).await.unwrap();
            let mut hits: Vec<_> = scores.iter().enumerate().map(|(i, s)| serde_json::json!({"index": i, "score": s})).collect();
            hits.sort_by(|a, b| b["score"].as_f64().unwrap().total_cmp(&a["score"].as_f64().unwrap()));
            Json(serde_json::Value::Array(hits))
        }
    };
    let cohere = move |Json(body): Json<serde_json::Value>| async move {
        let docs: Vec<String> = serde_json::from_value(body["documents"].clone()).unwrap();
        let scores = ce.rerank(body["query"].as_str().unwrap(), &docs).await.unwrap();
        let mut hits: Vec<_> =
            scores.iter().enumerate().map(|(i, s)| serde_json::json!({"index": i, "relevance_score": s})).collect();
        hits.reverse();
        Json(serde_json::json!({"id": "x", "results": hits}))
    };
    let app = axum::Router::new()
        .route("/rerank", post(tei))
        .route("/v1/rerank", post(cohere))
        .route("/broken", post(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "model not loaded") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn http(url: String, api: RerankApi) -> HttpReranker {
    HttpReranker::new(HttpRerankerConfig { url, api, model: "test/random-ce".into(), api_key: "k".into(), timeout: Duration::from_secs(5) })
        .unwrap()
}

#[tokio::test]
async fn http_reranker_speaks_tei_and_cohere() {
    let (dir, _) = model(11);
    let ce = load(dir.path(), 8);
    let direct = ce.rerank("json parsing", &passages()).await.unwrap();
    let base = serve(ce).await;
    for (path, api) in [("/rerank", RerankApi::Tei), ("/v1/rerank", RerankApi::Cohere), ("/v1/rerank", RerankApi::Jina)] {
        let got = http(format!("{base}{path}"), api).rerank("json parsing", &passages()).await.unwrap();
        assert_eq!(got, direct, "{api:?}: scores come back in input order");
    }
    let err = http(format!("{base}/broken"), RerankApi::Tei).rerank("q", &passages()).await.unwrap_err().to_string();
    assert!(err.contains("/broken") && err.contains("500") && err.contains("model not loaded"), "{err}");
    let err = http("http://127.0.0.1:9/rerank".into(), RerankApi::Tei).rerank("q", &passages()).await.unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(HttpReranker::new(HttpRerankerConfig {
        url: "localhost:8080/rerank".into(),
        api: RerankApi::Tei,
        model: String::new(),
        api_key: String::new(),
        timeout: Duration::from_secs(1)
    })
    .is_err());
}
