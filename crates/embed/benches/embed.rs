//! Encoder benchmarks: BM25 document encoding, batch embedding throughput (32 sentences of
//! ~60 tokens), single-query embedding latency. Needs the model (`cargo xtask models`).

use aidocs_core::SparseEncoder;
use aidocs_embed::{Bm25Encoder, LocalEmbedder, LocalEmbedderConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::PathBuf;

fn model_dir() -> PathBuf {
    std::env::var_os("AIDOCS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"))
}

/// ~60-token sentences of documentation prose.
fn sentences(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "Section {i}: the asynchronous runtime schedules tasks cooperatively, so a task that blocks the \
                 thread for a long time, for example by reading a large file synchronously or running a tight \
                 computation loop, delays every other task on that worker until it yields back to the scheduler."
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let bm25 = Bm25Encoder::default();
    let doc = sentences(8).join(" ");
    let mut g = c.benchmark_group("bm25");
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.bench_function("encode_doc_2kb", |b| b.iter(|| bm25.encode_doc(&doc)));
    g.finish();

    let emb = LocalEmbedder::load(LocalEmbedderConfig::new(model_dir())).expect("model: run `cargo xtask models`");
    let batch = sentences(32);
    let mut g = c.benchmark_group("embed");
    g.sample_size(10);
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("batch32_60tok", |b| b.iter(|| emb.embed_blocking(&batch).unwrap()));
    g.finish();
    let q = vec!["how do I create a virtual environment".to_owned()];
    let mut g = c.benchmark_group("embed");
    g.bench_function("single_query", |b| b.iter(|| emb.embed_blocking(&q).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
