//! The ONNX Runtime engine gives its arena back on request (its own process, so the
//! resident memory it reads is its own).
#![cfg(feature = "onnx")]

use aidocs_core::Embedder;
use aidocs_embed::{OnnxEmbedder, OnnxEmbedderConfig};
use std::path::PathBuf;

/// Anonymous resident memory of this process, in MB.
fn anon_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status.lines().find_map(|l| l.strip_prefix("RssAnon:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap();
    kib / 1024.0
}

#[tokio::test]
async fn release_memory_hands_the_arena_back_and_embeds_the_same_afterwards() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let lib = root.join("onnxruntime/libonnxruntime.so.1.31.1");
    assert!(lib.is_file(), "ONNX Runtime missing at {}: run `cargo xtask models`", lib.display());
    let emb = OnnxEmbedder::load(OnnxEmbedderConfig {
        model_dir: root.join("all-MiniLM-L6-v2-int8"),
        runtime_lib: lib,
        model_id: "sentence-transformers/all-MiniLM-L6-v2".into(),
        max_seq_len: 256,
        batch_size: 8,
        threads: 2,
        memory: None,
    })
    .unwrap();
    // Eight texts of 256 tokens: the arena grows to hold their activations.
    let long: Vec<String> = (0..8).map(|i| format!("section {i} ") + &"the parser reads a token and a value ".repeat(60)).collect();
    let before = emb.embed(&long).await.unwrap();
    let grown = anon_mb();
    emb.release_memory().await;
    let released = anon_mb();
    eprintln!("anonymous RSS: {grown:.0} MB with the arena grown, {released:.0} MB after release_memory");
    assert!(grown - released >= 20.0, "release_memory gave back {:.1} MB ({grown:.0} -> {released:.0})", grown - released);
    // The contract holds after a release: the same input gives the same vector.
    let after = emb.embed(&long).await.unwrap();
    for (a, b) in before.iter().zip(&after) {
        let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(cos > 0.9999, "cosine {cos} after release_memory");
    }
}
