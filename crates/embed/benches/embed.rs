//! Encoder benchmarks: BM25 document encoding, batch embedding throughput (32 sentences of
//! ~60 tokens) and single-query latency, for candle (f32) and the ONNX Runtime engine (int8).
//! Needs the models (`cargo xtask models`).
//!
//! Baseline, measured in the same run: the onnxruntime Python package on the same int8
//! model, sentences and thread count (`xtask/bench/ort_baseline.py`), when
//! `AIDOCS_BENCH_PYTHON` names a Python with onnxruntime, numpy and tokenizers (`cargo xtask
//! bench` makes one); otherwise candle is the baseline.

use aidocs_benchkit::{EMBED_QUERY, Report, Table, embed_sentences, percentile, time_ms};
use aidocs_core::SparseEncoder;
use aidocs_embed::{Bm25Encoder, LocalEmbedder, LocalEmbedderConfig, OnnxEmbedder, OnnxEmbedderConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn model_dir() -> PathBuf {
    std::env::var_os("AIDOCS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"))
}

/// Sentences per second over repeated 32-sentence batches (at least 10 s, at least 5 runs),
/// the same loop as the Python baseline.
fn throughput(embed: &dyn Fn(&[String]) -> Vec<Vec<f32>>, batch: &[String]) -> f64 {
    for _ in 0..3 {
        embed(batch);
    }
    let (mut runs, started) = (0, Instant::now());
    while started.elapsed() < Duration::from_secs(10) || runs < 5 {
        embed(batch);
        runs += 1;
    }
    (batch.len() * runs) as f64 / started.elapsed().as_secs_f64()
}

struct PyBaseline {
    version: String,
    sentences_per_s: f64,
    single_ms: Vec<f64>,
    query_vector: Vec<f32>,
}

fn python_baseline(model: &Path, batch: &[String], threads: usize) -> Option<PyBaseline> {
    let python = std::env::var_os("AIDOCS_BENCH_PYTHON")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/bench/ort_baseline.py");
    let spec = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spec.path(), serde_json::json!({ "batch": batch, "query": EMBED_QUERY }).to_string()).unwrap();
    let out = std::process::Command::new(python).arg(script).arg(model).arg(spec.path()).arg(threads.to_string()).output().unwrap();
    assert!(out.status.success(), "onnxruntime-python baseline failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let floats = |k: &str| v[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<f64>>();
    Some(PyBaseline {
        version: v["onnxruntime"].as_str().unwrap_or("?").to_owned(),
        sentences_per_s: v["sentences_per_s"].as_f64().unwrap(),
        single_ms: floats("single_query_ms"),
        query_vector: floats("query_vector").into_iter().map(|x| x as f32).collect(),
    })
}

fn bench(c: &mut Criterion) {
    let bm25 = Bm25Encoder::default();
    let doc = embed_sentences(8).join(" ");
    let mut g = c.benchmark_group("bm25");
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.bench_function("encode_doc_2kb", |b| b.iter(|| bm25.encode_doc(&doc)));
    g.finish();
    let bm25_ms = percentile(&time_ms(2000, |_| drop(bm25.encode_doc(&doc))), 50.0);

    let batch = embed_sentences(32);
    let q = vec![EMBED_QUERY.to_owned()];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let candle = LocalEmbedder::load(LocalEmbedderConfig::new(model_dir())).expect("model: run `cargo xtask models`");
    let models = model_dir().parent().unwrap().to_path_buf();
    let int8_dir = models.join("all-MiniLM-L6-v2-int8");
    let onnx = OnnxEmbedder::load(OnnxEmbedderConfig {
        model_dir: int8_dir.clone(),
        runtime_lib: models.join("onnxruntime/libonnxruntime.so.1.31.1"),
        model_id: "sentence-transformers/all-MiniLM-L6-v2".into(),
        max_seq_len: 256,
        batch_size: 32,
        threads,
        memory: None,
    })
    .expect("onnx model: run `cargo xtask models`");
    let onnx_query = onnx.embed_blocking(&q).unwrap().remove(0);
    let engines: [(&str, &str, Box<dyn Fn(&[String]) -> Vec<Vec<f32>>>); 2] = [
        ("onnx_int8", "aidocs ONNX engine (ort 1.31, int8)", Box::new(move |t| onnx.embed_blocking(t).unwrap())),
        ("candle_f32", "aidocs candle engine (f32)", Box::new(move |t| candle.embed_blocking(t).unwrap())),
    ];

    let mut report = Report::new("embed", "Embedding");
    let mut t = Table::new(
        "all-MiniLM-L6-v2: 32-sentence batches of ~60 tokens; one 9-token query",
        &[("sentences/s", 1), ("query p50 ms", 2), ("query p95 ms", 2)],
    )
    .ratio_of(0);
    if let Some(py) = python_baseline(&int8_dir, &batch, threads) {
        let cos: f32 = py.query_vector.iter().zip(&onnx_query).map(|(a, b)| a * b).sum();
        report.note(format!(
            "Baseline: the onnxruntime {} Python package on the same int8 model, sentences and thread \
             count ({threads}), run by the bench in the same process tree. Its query vector and the \
             aidocs ONNX engine's have cosine {cos:.5}.",
            py.version
        ));
        t.values(format!("onnxruntime-python {} (int8)", py.version), &[py.sentences_per_s, percentile(&py.single_ms, 50.0), percentile(&py.single_ms, 95.0)]);
    } else {
        report.note("No Python baseline (`AIDOCS_BENCH_PYTHON` unset): the ONNX engine is the baseline row.");
    }
    for (name, label, embed) in &engines {
        let mut g = c.benchmark_group("embed_batch32_60tok");
        g.sample_size(10);
        g.throughput(Throughput::Elements(batch.len() as u64));
        g.bench_function(*name, |b| b.iter(|| embed(&batch)));
        g.finish();
        let mut g = c.benchmark_group("embed_single_query");
        g.bench_function(*name, |b| b.iter(|| embed(&q)));
        g.finish();
        let single = time_ms(200, |_| drop(embed(&q)));
        t.values(*label, &[throughput(embed.as_ref(), &batch), percentile(&single, 50.0), percentile(&single, 95.0)]);
        report.sample(&format!("embed_query_{name}_ms"), "ms", single);
    }
    report.table(t);
    report.note(format!("BM25 document encoding of 2 KB of prose: p50 {:.3} ms.", bm25_ms));
    report.finish().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
