//! Encoder benchmarks: BM25 document encoding, batch embedding throughput (32 sentences of
//! ~60 tokens), single-query embedding latency. Needs the model (`cargo xtask models`).

use aidocs_core::SparseEncoder;
use aidocs_embed::{Bm25Encoder, LocalEmbedder, LocalEmbedderConfig, OnnxEmbedder, OnnxEmbedderConfig};
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

    let batch = sentences(32);
    let q = vec!["how do I create a virtual environment".to_owned()];
    let candle = LocalEmbedder::load(LocalEmbedderConfig::new(model_dir())).expect("model: run `cargo xtask models`");
    let models = model_dir().parent().unwrap().to_path_buf();
    let onnx = OnnxEmbedder::load(OnnxEmbedderConfig {
        model_dir: models.join("all-MiniLM-L6-v2-int8"),
        runtime_lib: models.join("onnxruntime/libonnxruntime.so.1.31.1"),
        model_id: "sentence-transformers/all-MiniLM-L6-v2".into(),
        max_seq_len: 256,
        batch_size: 32,
        threads: 0,
    })
    .expect("onnx model: run `cargo xtask models`");
    let engines: [(&str, Box<dyn Fn(&[String]) -> Vec<Vec<f32>>>); 2] = [
        ("candle_f32", Box::new(move |t| candle.embed_blocking(t).unwrap())),
        ("onnx_int8", Box::new(move |t| onnx.embed_blocking(t).unwrap())),
    ];
    for (name, embed) in &engines {
        let mut g = c.benchmark_group("embed_batch32_60tok");
        g.sample_size(10);
        g.throughput(Throughput::Elements(batch.len() as u64));
        g.bench_function(*name, |b| b.iter(|| embed(&batch)));
        g.finish();
        let mut g = c.benchmark_group("embed_single_query");
        g.bench_function(*name, |b| b.iter(|| embed(&q)));
        g.finish();
        // p95 of single-query latency, which criterion does not report.
        let mut lat: Vec<f64> = (0..200)
            .map(|_| {
                let t = std::time::Instant::now();
                embed(&q);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        eprintln!("{name} single query: p50 {:.2} ms, p95 {:.2} ms", lat[100], lat[190]);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
