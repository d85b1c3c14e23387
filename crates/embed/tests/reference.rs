//! The local embedder must reproduce the reference model: cosine >= 0.999 against vectors
//! computed by an independent numpy forward pass (`fixtures/make_reference.py`).

use aidocs_core::{Embedder, TokenCounter};
use aidocs_embed::{LocalEmbedder, LocalEmbedderConfig};
use std::path::PathBuf;

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("AIDOCS_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
    });
    assert!(
        dir.join("model.safetensors").is_file(),
        "model missing at {}: run `cargo xtask models` first",
        dir.display()
    );
    dir
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[tokio::test]
async fn matches_independent_reference_vectors() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let items = fixture["items"].as_array().unwrap();
    let texts: Vec<String> = items.iter().map(|i| i["text"].as_str().unwrap().to_owned()).collect();
    let emb = LocalEmbedder::load(LocalEmbedderConfig::new(model_dir())).unwrap();
    assert_eq!(emb.dims(), 384);
    // Batched (padding inside the batch must not change results) ...
    let got = emb.embed(&texts).await.unwrap();
    assert_eq!(got.len(), texts.len());
    for (item, v) in items.iter().zip(&got) {
        let want: Vec<f32> = item["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let c = cosine(&want, v);
        assert!(c >= 0.999, "cosine {c} for {:?}", item["text"]);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not normalised: {norm}");
    }
    // ... and one at a time gives the same vectors.
    let single = emb.embed(&texts[1..2]).await.unwrap();
    assert!(cosine(&single[0], &got[1]) > 0.99999);
    assert!(emb.embed(&[]).await.unwrap().is_empty());
}

#[test]
fn token_counter_counts_without_truncation() {
    let emb = LocalEmbedder::load(LocalEmbedderConfig::new(model_dir())).unwrap();
    let counter = emb.token_counter();
    assert_eq!(counter.count(""), 0);
    assert_eq!(counter.count("hello world"), 2);
    let long = "word ".repeat(1000);
    assert_eq!(counter.count(&long), 1000, "the chunker must see real lengths, not the 256 cap");
}

/// The ONNX Runtime engine (int8 export of the same model) is held to the same reference.
#[cfg(feature = "onnx")]
#[tokio::test]
async fn onnx_engine_matches_reference_vectors() {
    let emb = aidocs_embed::testkit::onnx_embedder(4);
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let items = fixture["items"].as_array().unwrap();
    let texts: Vec<String> = items.iter().map(|i| i["text"].as_str().unwrap().to_owned()).collect();
    let got = emb.embed(&texts).await.unwrap();
    for (item, v) in items.iter().zip(&got) {
        let want: Vec<f32> = item["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let c = cosine(&want, v);
        assert!(c >= 0.998, "int8 cosine {c} for {:?}", item["text"]);
        eprintln!("onnx int8 cosine {c:.5} for {:?}", item["text"]);
    }
    assert_eq!(emb.token_counter().count("hello world"), 2);
}
