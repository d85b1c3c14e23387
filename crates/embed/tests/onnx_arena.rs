//! During a long run of large batches (an ingest), the ONNX Runtime engine gives its arena
//! back every 16 of them on its own, so the arena does not keep the high-water mark of
//! every batch shape it has seen (its own process: the resident memory it reads is its own).
#![cfg(feature = "onnx")]

use aidocs_core::Embedder;
use aidocs_embed::testkit::anon_rss_mb;

#[tokio::test]
async fn every_sixteenth_large_batch_hands_the_arena_back() {
    let emb = aidocs_embed::testkit::onnx_embedder(8);
    // Each call: one batch of 8 sequences of 256 tokens (a large batch).
    let batch = |round: usize| -> Vec<String> {
        (0..8).map(|i| format!("round {round} section {i} ") + &"the parser reads a token and a value ".repeat(60)).collect()
    };
    let first = emb.embed(&batch(0)).await.unwrap();
    for round in 1..15 {
        emb.embed(&batch(round)).await.unwrap();
    }
    let grown = anon_rss_mb();
    // The sixteenth large batch: embedded, then the arena goes back.
    emb.embed(&batch(15)).await.unwrap();
    let after = anon_rss_mb();
    eprintln!("anonymous RSS: {grown:.0} MB after 15 large batches, {after:.0} MB after the 16th");
    assert!(grown - after >= 20.0, "the 16th large batch gave back {:.1} MB ({grown:.0} -> {after:.0})", grown - after);
    // Searches' one-sentence batches in between; the vectors are the same as before.
    for _ in 0..40 {
        emb.embed(&["a short question".to_owned()]).await.unwrap();
    }
    let again = emb.embed(&batch(0)).await.unwrap();
    for (a, b) in first.iter().zip(&again) {
        let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(cos > 0.9999, "cosine {cos} after the arena went back");
    }
}
