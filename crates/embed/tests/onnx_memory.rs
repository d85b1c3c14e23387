//! The ONNX Runtime engine gives its arena back on request (its own process, so the
//! resident memory it reads is its own).
#![cfg(feature = "onnx")]

use aidocs_core::Embedder;

/// Anonymous resident memory of this process, in MB.
fn anon_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status.lines().find_map(|l| l.strip_prefix("RssAnon:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap();
    kib / 1024.0
}

#[tokio::test]
async fn release_memory_hands_the_arena_back_and_embeds_the_same_afterwards() {
    let emb = aidocs_embed::testkit::onnx_embedder(8);
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
