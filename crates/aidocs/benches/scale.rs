//! The scale curve: the embedded store at 10k, 100k and 1M chunks (`AIDOCS_BENCH_SCALE`, a
//! comma list, changes the sizes; `AIDOCS_BENCH_POINTS` alone runs one size, as the smoke run
//! does). Each point has a 384-d embedding-like vector (around 500 topic centroids), a sparse
//! vector from the real BM25 encoder over a Zipf-like vocabulary, and a payload like a real
//! chunk's, with a keyword `language` of 5 values.
//!
//! Per size: build (1,000-point upserts) and optimize time; then a child process (this
//! binary again) opens the store as a server would and runs dense, hybrid and hybrid +
//! `language` filter queries, reporting p50/p95 per mode, the dense top 10 for recall@10
//! against exact brute force over the same vectors, and its resident memory after the
//! queries (serving); the data dir's size on disk. Up to 100k the vectors are in RAM and
//! unquantized (the defaults); from 500k on, vectors are on disk with int8 quantized copies
//! in RAM (`on_disk_vectors`, `quantization`), the settings docs/operators/tuning.md
//! recommends at that size. The baseline row is the smallest size.

use aidocs_benchkit::{LinePlot, Report, Table, Topics, dir_bytes, exact_top_k, mean, percentile, recall, time_ms};
use aidocs_core::{
    ChunkPayload, CollectionSpec, DocMetadata, Filter, FilterField, FilterValue, Fusion, Point, SearchMode, SparseEncoder, SparseVector,
    StoreQuery, VectorStore,
};
use aidocs_store::params::ScalarQuantization;
use aidocs_store::{EdgeStore, EdgeStoreConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::time::Instant;

const DIMS: usize = 384;
const QUERIES: usize = 300;
/// Untimed queries before the timed ones (a server that has served a while).
const WARM: usize = 100;
const LANGS: [&str; 5] = ["python", "rust", "go", "java", "js"];
/// From this size on: vectors on disk, int8 copies in RAM.
const ON_DISK_FROM: usize = 500_000;
/// The child process's environment: the store's directory, then the size.
const CHILD_DIR: &str = "AIDOCS_SCALE_CHILD_DIR";
const CHILD_N: &str = "AIDOCS_SCALE_CHILD_N";

static VOCAB: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let real = ["python", "json", "file", "parse", "packaging", "query", "number", "install", "module", "function"];
    real.iter().map(|w| w.to_string()).chain((0..20_000).map(|i| format!("term{i}"))).collect()
});

/// `words` words over the vocabulary, the first ones far more often (Zipf-like).
fn text(rng: &mut StdRng, words: usize) -> String {
    (0..words)
        .map(|_| {
            let r = rng.random::<f64>();
            VOCAB[((r * r * r * VOCAB.len() as f64) as usize).min(VOCAB.len() - 1)].as_str()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn topics() -> Topics {
    Topics::new(&mut StdRng::seed_from_u64(5), 500, DIMS)
}

/// The queries, the same in the parent (ground truth) and the child (timing).
fn queries() -> Vec<(Vec<f32>, SparseVector)> {
    let topics = topics();
    let bm25 = aidocs_embed::Bm25Encoder::default();
    let mut rng = StdRng::seed_from_u64(9);
    (0..WARM + QUERIES).map(|_| (topics.sample(&mut rng), bm25.encode_query(&text(&mut rng, 4)))).collect()
}

fn config(dir: &Path, n: usize) -> EdgeStoreConfig {
    let mut cfg = EdgeStoreConfig::new(dir);
    if n >= ON_DISK_FROM {
        cfg.collection.on_disk_vectors = true;
        cfg.collection.quantization = Some(ScalarQuantization::default());
    }
    cfg
}

fn settings(n: usize) -> &'static str {
    if n >= ON_DISK_FROM { "vectors on disk, int8 in RAM" } else { "vectors in RAM (defaults)" }
}

/// Build the collection of `n` points in `dir`; returns the dense vectors (for the ground
/// truth), upsert s and optimize s.
fn build(rt: &tokio::runtime::Runtime, dir: &Path, n: usize) -> (Vec<Vec<f32>>, f64, f64) {
    let store = EdgeStore::open(config(dir, n)).unwrap();
    let bm25 = aidocs_embed::Bm25Encoder::default();
    let topics = topics();
    let mut rng = StdRng::seed_from_u64(11);
    let mut vectors = Vec::with_capacity(n);
    rt.block_on(async {
        store.create_collection(&CollectionSpec { name: "docs".into(), dims: DIMS, properties: Default::default() }).await.unwrap();
        let started = Instant::now();
        for start in (0..n).step_by(1000) {
            let pts: Vec<Point> = (start..(start + 1000).min(n))
                .map(|i| {
                    let dense = topics.sample(&mut rng);
                    vectors.push(dense.clone());
                    let body = text(&mut rng, 60);
                    Point {
                        id: uuid::Uuid::from_u128(i as u128 + 1),
                        dense,
                        sparse: bm25.encode_doc(&body),
                        payload: ChunkPayload {
                            source: format!("file:///doc{}", i / 20),
                            path: format!("doc{}.html", i / 20),
                            title: format!("Document {}", i / 20),
                            heading_path: vec![format!("Document {}", i / 20), format!("Section {}", i % 20)],
                            anchor: format!("section-{}", i % 20),
                            text: body,
                            meta: DocMetadata { language: Some(LANGS[i % 5].into()), ..Default::default() },
                            ..Default::default()
                        },
                    }
                })
                .collect();
            store.upsert("docs", pts).await.unwrap();
            let done = (start + 1000).min(n);
            if done % 50_000 == 0 {
                eprintln!("bench scale: {done} of {n} points upserted, {:.0} points/s so far", done as f64 / started.elapsed().as_secs_f64());
            }
        }
        let upsert = started.elapsed().as_secs_f64();
        let started = Instant::now();
        store.optimize("docs").await.unwrap();
        (vectors, upsert, started.elapsed().as_secs_f64())
    })
}

/// What the serving child measured.
#[derive(serde::Serialize, serde::Deserialize)]
struct Served {
    /// Latencies (ms) per mode: dense, hybrid, hybrid + filter.
    ms: [Vec<f64>; 3],
    /// The dense top 10 of each timed query (point index).
    dense_top: Vec<Vec<usize>>,
    rss_kib: u64,
    anon_kib: u64,
}

/// The child: open the store as a server does, warm it, time each mode, print [`Served`].
fn serve(dir: &Path, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = EdgeStore::open(config(dir, n)).unwrap();
    let qs = queries();
    let lang = Filter::default().and(FilterField::Language, FilterValue::Keyword("rust".into()));
    let modes = [(SearchMode::Dense, Filter::default()), (SearchMode::Hybrid, Filter::default()), (SearchMode::Hybrid, lang)];
    let query = |i: usize, mode: SearchMode, filter: &Filter| StoreQuery {
        mode,
        dense: Some(qs[i].0.clone()),
        sparse: Some(qs[i].1.clone()),
        filter: filter.clone(),
        limit: 10,
        prefetch_limit: 100,
        fusion: Fusion::default(),
    };
    for (mode, filter) in &modes {
        for i in 0..WARM {
            rt.block_on(store.query("docs", &query(i, *mode, filter))).unwrap();
        }
    }
    let mut dense_top = Vec::with_capacity(QUERIES);
    let ms = modes.each_ref().map(|(mode, filter)| {
        time_ms(QUERIES, |i| {
            let hits = rt.block_on(store.query("docs", &query(WARM + i, *mode, filter))).unwrap();
            if *mode == SearchMode::Dense {
                dense_top.push(hits.iter().map(|h| h.id.as_u128() as usize - 1).collect());
            }
        })
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0);
    let served = Served { ms, dense_top, rss_kib: kib("VmRSS:"), anon_kib: kib("RssAnon:") };
    println!("{}", serde_json::to_string(&served).unwrap());
}

/// Exact top 10 of each timed query, over both cores.
fn truth(vectors: &[Vec<f32>], qs: &[(Vec<f32>, SparseVector)]) -> Vec<Vec<usize>> {
    let timed = &qs[WARM..];
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = timed.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = timed.chunks(per).map(|part| s.spawn(move || part.iter().map(|q| exact_top_k(vectors, &q.0, 10)).collect::<Vec<_>>())).collect();
        parts.into_iter().flat_map(|p| p.join().unwrap()).collect()
    })
}


fn sizes() -> Vec<usize> {
    if let Some(list) = std::env::var("AIDOCS_BENCH_SCALE").ok().filter(|s| !s.is_empty()) {
        return list.split(',').map(|s| s.trim().parse().unwrap_or_else(|_| panic!("AIDOCS_BENCH_SCALE: `{s}` is not a size"))).collect();
    }
    match std::env::var("AIDOCS_BENCH_POINTS").ok().and_then(|s| s.parse().ok()) {
        Some(n) => vec![n],
        None => vec![10_000, 100_000, 1_000_000],
    }
}

fn main() {
    if let (Some(dir), Some(n)) = (std::env::var_os(CHILD_DIR), std::env::var(CHILD_N).ok().and_then(|n| n.parse().ok())) {
        serve(Path::new(&dir), n);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let qs = queries();
    let work = tempfile::tempdir().unwrap();
    let sizes = sizes();
    let mut report = Report::new("scale", "Scale: the embedded store from 10k to 1M chunks");
    report.note(format!(
        "Sizes {}: 384-d embedding-like vectors (500 topics), sparse vectors from the real BM25 encoder over a \
         20k-word Zipf-like vocabulary, chunk-like payloads with a keyword `language` (5 values). Built with \
         1,000-point upserts, then optimized. A child process then opens the store as a server does, runs {WARM} \
         untimed queries per mode, then times {QUERIES} per mode (limit 10; hybrid: dense + sparse prefetch 100 \
         each, RRF; filter: `language`, 1 in 5 points). Recall@10 of dense search against exact brute force over \
         the same vectors. RSS: the serving process after its queries (all of it, and its anonymous part: file \
         pages of memory-mapped vectors are the rest). Up to 100k: vectors in RAM, no quantization (the \
         defaults); from 500k: vectors on disk, int8 copies in RAM. Baseline: the smallest size.",
        sizes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
    ));
    let mut t = Table::new(
        "",
        &[
            ("build s", 1),
            ("optimize s", 1),
            ("dense p50 ms", 3),
            ("dense p95 ms", 3),
            ("hybrid p50 ms", 3),
            ("hybrid p95 ms", 3),
            ("filtered p95 ms", 3),
            ("recall@10", 4),
            ("RSS MB", 0),
            ("anon MB", 0),
            ("disk MB", 0),
        ],
    )
    .ratio_of(5);
    let mut curve = Vec::new();
    for &n in &sizes {
        let dir = work.path().join(format!("n{n}"));
        eprintln!("scale {n}: building ({})", settings(n));
        let (vectors, upsert, optimize) = build(&rt, &dir, n);
        eprintln!("scale {n}: upsert {upsert:.1} s, optimize {optimize:.1} s; ground truth");
        let truth = truth(&vectors, &qs);
        drop(vectors);
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env(CHILD_DIR, &dir)
            .env(CHILD_N, n.to_string())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("the serving child runs");
        assert!(out.status.success(), "serving child failed: {}", out.status);
        let served: Served = serde_json::from_slice(out.stdout.split(|b| *b == b'\n').rfind(|l| l.starts_with(b"{")).expect("the child's report"))
            .expect("the child's report parses");
        let r = mean(&truth.iter().zip(&served.dense_top).map(|(t, g)| recall(t, g)).collect::<Vec<_>>());
        let [dense, hybrid, filtered] = &served.ms;
        eprintln!(
            "scale {n}: dense p95 {:.3} ms, hybrid p95 {:.3} ms, filtered p95 {:.3} ms, recall@10 {r:.4}, RSS {} MiB",
            percentile(dense, 95.0),
            percentile(hybrid, 95.0),
            percentile(filtered, 95.0),
            served.rss_kib / 1024
        );
        t.values(
            format!("{n} points, {}", settings(n)),
            &[
                upsert,
                optimize,
                percentile(dense, 50.0),
                percentile(dense, 95.0),
                percentile(hybrid, 50.0),
                percentile(hybrid, 95.0),
                percentile(filtered, 95.0),
                r,
                served.rss_kib as f64 / 1024.0,
                served.anon_kib as f64 / 1024.0,
                dir_bytes(&dir) as f64 / 1048576.0,
            ],
        );
        curve.push((n as f64, served.ms.each_ref().map(|ms| percentile(ms, 95.0))));
        let _ = std::fs::remove_dir_all(&dir);
    }
    report.table(t);
    report.lines.push(LinePlot {
        name: "scale-p95".into(),
        title: "p95 query latency by collection size".into(),
        x: "points".into(),
        y: "p95 ms".into(),
        series: ["dense", "hybrid", "hybrid + filter"]
            .iter()
            .enumerate()
            .map(|(m, label)| (label.to_string(), curve.iter().map(|(n, p95)| (*n, p95[m])).collect()))
            .collect(),
    });
    report.finish().unwrap();
}
