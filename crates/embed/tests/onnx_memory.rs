//! The ONNX Runtime engine gives its arena back on request (its own process, so the
//! resident memory it reads is its own).
#![cfg(feature = "onnx")]

use aidocs_core::{Embedder, Release};
use aidocs_embed::testkit::anon_rss_mb as anon_mb;

/// One test, not two: tests of one binary share the process whose memory it reads.
#[tokio::test]
async fn release_memory_hands_the_arena_then_the_model_back_and_embeds_the_same_afterwards() {
    let emb = aidocs_embed::testkit::onnx_embedder(8);
    // Eight texts of 256 tokens: the arena grows to hold their activations.
    let long: Vec<String> = (0..8).map(|i| format!("section {i} ") + &"the parser reads a token and a value ".repeat(60)).collect();
    let before = emb.embed(&long).await.unwrap();
    let same_as_before = |after: &[Vec<f32>], what: &str| {
        for (a, b) in before.iter().zip(after) {
            let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            assert!(cos > 0.9999, "cosine {cos} after releasing {what}");
        }
    };
    let grown = anon_mb();
    emb.release_memory(Release::Scratch).await;
    let released = anon_mb();
    eprintln!("anonymous RSS: {grown:.0} MB with the arena grown, {released:.0} MB after releasing the arena");
    assert!(grown - released >= 20.0, "releasing the arena gave back {:.1} MB ({grown:.0} -> {released:.0})", grown - released);
    // The contract holds after a release: the same input gives the same vector.
    same_as_before(&emb.embed(&long).await.unwrap(), "the arena");

    // The model: the arena and the session go; the next call loads the model again.
    emb.release_memory(Release::Scratch).await;
    let loaded = anon_mb();
    emb.release_memory(Release::Model).await;
    let unloaded = anon_mb();
    eprintln!("anonymous RSS: {loaded:.0} MB with the model loaded, {unloaded:.0} MB after releasing it");
    assert!(loaded - unloaded >= 50.0, "releasing the model gave back {:.1} MB ({loaded:.0} -> {unloaded:.0})", loaded - unloaded);
    // Releasing the arena of an unloaded model neither fails nor loads it.
    emb.release_memory(Release::Scratch).await;
    assert!(anon_mb() - unloaded < 20.0, "releasing the arena of an unloaded model loaded it");
    same_as_before(&emb.embed(&long).await.unwrap(), "the model");
}
