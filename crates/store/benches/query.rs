//! Store query latency and recall at 100k points (384-d dense + sparse, like real chunks),
//! against exact brute-force search over the same vectors in the same run:
//!
//! - dense search with `hnsw_ef` 16..256, the engine's own exact mode, and an int8-quantized
//!   copy of the collection (with and without rescoring): p50/p95 latency and recall@10
//!   against the brute-force top 10;
//! - hybrid (dense + sparse prefetch 100 each, RRF) and hybrid with a keyword filter;
//! - index build (upsert, then optimize) without and with quantization.
//!
//! A second report (`qdrant`) runs the same workload on the real Qdrant server binary
//! (`aidocs_store::testkit::qdrant_process`, `../shared/tools/qdrant/`) beside the embedded
//! store's default as the baseline: dense search plain and int8-quantized, hybrid and
//! filtered hybrid, index build, snapshot size / create / download / restore times, and the
//! server's memory and disk.
//!
//! Criterion times dense, hybrid and filtered hybrid too. `AIDOCS_BENCH_POINTS` changes the
//! size; `AIDOCS_BENCH_REPORT` collects the reports (`cargo xtask bench`).

use aidocs_benchkit::{Report, Table, Topics, dir_bytes, exact_top_k, mean, percentile, recall, time_ms};
use aidocs_core::{
    ChunkPayload, CollectionSpec, DocMetadata, Filter, FilterField, FilterValue, Fusion, Point, SearchMode, SparseVector,
    StoreQuery, VectorStore,
};
use aidocs_core::NativeSnapshots;
use aidocs_store::params::{ScalarQuantization, SearchParams};
use aidocs_store::testkit::qdrant_process::{ProcessOptions, QdrantProcess};
use aidocs_store::{EdgeStore, EdgeStoreConfig, QdrantStore, QdrantStoreConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use std::time::Instant;

const DIMS: usize = 384;
const QUERIES: usize = 500;
const LANGS: [&str; 5] = ["python", "rust", "go", "java", "js"];

fn sparse(rng: &mut StdRng, terms: usize) -> SparseVector {
    let (indices, values) = aidocs_benchkit::sparse_terms(rng, terms, 30_000);
    SparseVector { indices, values }
}

fn query(dense: Vec<f32>, rng: &mut StdRng, mode: SearchMode, filter: Filter) -> StoreQuery {
    StoreQuery { mode, dense: Some(dense), sparse: Some(sparse(rng, 6)), filter, limit: 10, prefetch_limit: 100, fusion: Fusion::default() }
}

/// Upsert `vectors` in 1,000-point batches, then optimize; returns (upsert s, optimize s).
fn fill(rt: &tokio::runtime::Runtime, store: &dyn VectorStore, vectors: &[Vec<f32>], rng: &mut StdRng) -> (f64, f64) {
    rt.block_on(async {
        store.create_collection(&CollectionSpec { name: "bench".into(), dims: DIMS, properties: Default::default() }).await.unwrap();
        let started = Instant::now();
        for start in (0..vectors.len()).step_by(1000) {
            let pts = (start..(start + 1000).min(vectors.len()))
                .map(|i| Point {
                    id: uuid::Uuid::from_u128(i as u128 + 1),
                    dense: vectors[i].clone(),
                    sparse: sparse(rng, 40),
                    payload: ChunkPayload {
                        source: format!("file:///doc{}", i / 20),
                        path: format!("doc{}.html", i / 20),
                        text: "x".repeat(200),
                        meta: DocMetadata { language: Some(LANGS[i % 5].into()), ..Default::default() },
                        ..Default::default()
                    },
                })
                .collect();
            store.upsert("bench", pts).await.unwrap();
        }
        let upsert = started.elapsed().as_secs_f64();
        let started = Instant::now();
        store.optimize("bench").await.unwrap();
        (upsert, started.elapsed().as_secs_f64())
    })
}

/// Latencies (ms) and mean recall@10 of dense queries through `store`.
fn dense_run(rt: &tokio::runtime::Runtime, store: &dyn VectorStore, queries: &[Vec<f32>], truth: &[Vec<usize>], rng: &mut StdRng) -> (Vec<f64>, f64) {
    let mut recalls = Vec::with_capacity(queries.len());
    let lat = time_ms(queries.len(), |i| {
        let hits = rt.block_on(store.query("bench", &query(queries[i].clone(), rng, SearchMode::Dense, Filter::default()))).unwrap();
        let got: Vec<usize> = hits.iter().map(|h| h.id.as_u128() as usize - 1).collect();
        recalls.push(recall(&truth[i], &got));
    });
    (lat, mean(&recalls))
}

fn query_modes() -> [(&'static str, SearchMode, Filter); 3] {
    let lang = Filter::default().and(FilterField::Language, FilterValue::Keyword("rust".into()));
    [("dense", SearchMode::Dense, Filter::default()), ("hybrid", SearchMode::Hybrid, Filter::default()), ("hybrid_filter", SearchMode::Hybrid, lang)]
}

fn mode_label(name: &str) -> &'static str {
    match name {
        "dense" => "dense",
        "hybrid" => "hybrid: dense + sparse prefetch 100 each, RRF k 60",
        _ => "hybrid + keyword filter (`language`, 1 in 5 points)",
    }
}

/// Latencies (ms) of one query mode through `store`.
fn mode_run(rt: &tokio::runtime::Runtime, store: &dyn VectorStore, queries: &[Vec<f32>], mode: SearchMode, filter: &Filter, rng: &mut StdRng) -> Vec<f64> {
    time_ms(queries.len(), |i| {
        rt.block_on(store.query("bench", &query(queries[i].clone(), rng, mode, filter.clone()))).unwrap();
    })
}

/// Latencies (ms) and the ids each query returned, for a fixed query set.
fn run_set(rt: &tokio::runtime::Runtime, store: &dyn VectorStore, set: &[StoreQuery]) -> (Vec<f64>, Vec<Vec<usize>>) {
    let mut ids = Vec::with_capacity(set.len());
    let lat = time_ms(set.len(), |i| {
        let hits = rt.block_on(store.query("bench", &set[i])).unwrap();
        ids.push(hits.iter().map(|h| h.id.as_u128() as usize - 1).collect());
    });
    (lat, ids)
}


/// Resident memory of a process in MiB (`VmRSS`).
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0.0);
    kib / 1024.0
}

/// The same workload on the real Qdrant server binary, with the embedded store's default
/// dense search (`embedded_lat`) as the baseline of the same run.
fn real_server(
    rt: &tokio::runtime::Runtime,
    vectors: &[Vec<f32>],
    queries: &[Vec<f32>],
    truth: &[Vec<usize>],
    embedded_lat: &[f64],
    cases: &[(&'static str, SearchMode, Filter)],
    rng: &mut StdRng,
) {
    let n = vectors.len();
    let mut servers = Vec::new();
    let mut stores = Vec::new();
    let mut build = Vec::new();
    for quantized in [false, true] {
        let q = rt.block_on(QdrantProcess::start(ProcessOptions::default())).expect("the Qdrant server binary starts");
        let mut cfg = QdrantStoreConfig::new(q.first().grpc_url());
        cfg.rest_url = Some(q.first().rest_url());
        cfg.collection.quantization = quantized.then(ScalarQuantization::default);
        cfg.optimize_wait = std::time::Duration::from_secs(1800);
        let store = rt.block_on(QdrantStore::connect(cfg)).expect("connect");
        build.push(fill(rt, &store, vectors, rng));
        servers.push(q);
        stores.push(store);
    }
    // Each server answers the query set once before anything is timed (its first queries
    // after an index build load the index).
    for store in &stores {
        mode_run(rt, store, queries, SearchMode::Hybrid, &Filter::default(), rng);
    }
    let with = |s: &QdrantStore, f: &dyn Fn(&mut SearchParams)| {
        let mut cfg = s.config().clone();
        f(&mut cfg.search);
        let _in_runtime = rt.enter();
        QdrantStore::new(cfg).unwrap()
    };
    let mut report = Report::new("qdrant", &format!("Real Qdrant server: the store workload at {n} points"));
    report.note(format!(
        "The workload of the store report, on the Qdrant 1.19.0 server binary of `../shared/tools/qdrant/` \
         (one node on loopback, gRPC, one collection per setting, its own process each), beside the embedded \
         store's default dense search of the same run as the baseline. That binary is built at optimisation \
         level 1 without LTO (see its SOURCE.md), so its latencies are upper bounds for an official release \
         build; ratios within the Qdrant rows compare like with like. Latency includes the gRPC round trip."
    ));
    let mut t = Table::new("Dense search: latency and recall by setting", &[("p50 ms", 3), ("p95 ms", 3), ("recall@10", 4)]).ratio_of(1);
    t.row("embedded store, `hnsw_ef` 128 (its default; recall in the store report)", &[Some(percentile(embedded_lat, 50.0)), Some(percentile(embedded_lat, 95.0)), None]);
    for ef in [64u64, 128] {
        let (lat, r) = dense_run(rt, &with(&stores[0], &|p| p.hnsw_ef = Some(ef)), queries, truth, rng);
        t.values(format!("Qdrant server, no quantization, `hnsw_ef` {ef}"), &[percentile(&lat, 50.0), percentile(&lat, 95.0), r]);
    }
    let (lat, r) = dense_run(rt, &stores[1], queries, truth, rng);
    t.values("Qdrant server, int8, rescore, oversampling 2, `hnsw_ef` 128 (its default)", &[percentile(&lat, 50.0), percentile(&lat, 95.0), r]);
    let (lat, r) = dense_run(rt, &with(&stores[1], &|p| p.rescore = false), queries, truth, rng);
    t.values("Qdrant server, int8, no rescore, `hnsw_ef` 128", &[percentile(&lat, 50.0), percentile(&lat, 95.0), r]);
    report.table(t);
    report.sample("qdrant_dense_default_ms", "ms", lat);

    let mut t = Table::new("Query modes on the server (int8, default search settings)", &[("p50 ms", 3), ("p95 ms", 3)]).ratio_of(1);
    for (name, mode, filter) in cases {
        let lat = mode_run(rt, &stores[1], queries, *mode, filter, rng);
        t.values(mode_label(name), &[percentile(&lat, 50.0), percentile(&lat, 95.0)]);
    }
    report.table(t);

    let mut t = Table::new("Index build on the server (1,000-point upsert batches with `wait`; then until green)", &[("upsert s", 1), ("optimize s", 1), ("points/s", 0)])
        .ratio_of(1);
    for ((up, opt), label) in build.iter().zip(["no quantization", "int8 quantization"]) {
        t.values(label, &[*up, *opt, n as f64 / (up + opt)]);
    }
    report.table(t);

    // Native snapshot of the default (int8) collection: create, download, recover into a new
    // collection on the same server.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.snapshot");
    let store = &stores[1];
    let started = Instant::now();
    let snap = rt.block_on(store.create_snapshot("bench")).unwrap();
    let create = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let bytes = rt.block_on(store.download_snapshot("bench", &snap, &file)).unwrap();
    let download = started.elapsed().as_secs_f64();
    let started = Instant::now();
    rt.block_on(store.recover_snapshot("bench_restored", &file)).unwrap();
    let recover = started.elapsed().as_secs_f64();
    assert_eq!(rt.block_on(store.count("bench_restored", &Filter::default())).unwrap(), n, "the restored collection is whole");
    let mut t = Table::new("Native snapshot of the int8 collection", &[("MiB", 1), ("create s", 2), ("download s", 2), ("recover s", 2)]);
    t.values(format!("{n} points"), &[bytes as f64 / 1048576.0, create, download, recover]);
    report.table(t);

    let mut t = Table::new("Server resources after the runs above", &[("RSS MiB", 0), ("storage MiB", 0)]);
    for (q, label) in servers.iter().zip(["no quantization (one collection)", "int8 (the collection and its restored copy)"]) {
        let node = q.first();
        t.values(label, &[node.pid().map_or(0.0, rss_mib), dir_bytes(&node.dir().join("storage")) as f64 / 1048576.0]);
    }
    report.table(t);
    report.finish().unwrap();
}

fn bench(c: &mut Criterion) {
    let n = aidocs_benchkit::bench_points(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut rng = aidocs_benchkit::seeded(7);
    let topics = Topics::new(&mut rng, 500, DIMS);
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| topics.sample(&mut rng)).collect();
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| topics.sample(&mut rng)).collect();

    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(EdgeStoreConfig::new(dir.path().join("plain"))).unwrap();
    // Both collections get the same sparse vectors (one seed), so one exact search is the
    // recall truth of both.
    let (up_plain, opt_plain) = fill(&rt, &store, &vectors, &mut aidocs_benchkit::seeded(11));
    let mut qcfg = EdgeStoreConfig::new(dir.path().join("int8"));
    qcfg.collection.quantization = Some(ScalarQuantization::default());
    let quantized = EdgeStore::open(qcfg).unwrap();
    let (up_q, opt_q) = fill(&rt, &quantized, &vectors, &mut aidocs_benchkit::seeded(11));
    eprintln!("{n} points: upsert {up_plain:.1} s, optimize {opt_plain:.1} s; int8: upsert {up_q:.1} s, optimize {opt_q:.1} s");

    // Baseline: exact brute force over the same vectors (also the recall ground truth).
    let mut truth = Vec::with_capacity(QUERIES);
    let brute = time_ms(QUERIES, |i| truth.push(exact_top_k(&vectors, &queries[i], 10)));

    let mut report = Report::new("store", &format!("Store: dense search at {n} points"));
    report.note(format!(
        "{n} points in the embedded store: 384-d dense vectors drawn around 500 topic centroids \
         (embedding-like, not uniform on the sphere), 40-term sparse vectors over a 30k vocabulary, a \
         keyword payload `language` (5 values). {QUERIES} dense queries of limit 10, drawn like the points. \
         Recall@10 is against the brute-force top 10. The baseline scores every vector in a plain Rust \
         loop (exact); `exact = true` is the engine's own full scan."
    ));
    let mut t = Table::new("Dense search: latency and recall by setting", &[("p50 ms", 3), ("p95 ms", 3), ("recall@10", 4)]).ratio_of(1);
    t.values("exact brute force, plain Rust loop", &[percentile(&brute, 50.0), percentile(&brute, 95.0), 1.0]);
    let with = |s: &EdgeStore, f: &dyn Fn(&mut SearchParams)| {
        let mut p = SearchParams::default();
        f(&mut p);
        s.with_search(p)
    };
    let (lat, r) = dense_run(&rt, &with(&store, &|p| p.exact = true), &queries, &truth, &mut rng);
    t.values("engine `exact = true` (full scan)", &[percentile(&lat, 50.0), percentile(&lat, 95.0), r]);
    let mut default_lat = Vec::new();
    for ef in [16u64, 32, 64, 128, 256] {
        let (lat, r) = dense_run(&rt, &with(&store, &|p| p.hnsw_ef = Some(ef)), &queries, &truth, &mut rng);
        let default = if ef == 128 { " (default)" } else { "" };
        t.values(format!("HNSW m 16, `hnsw_ef` {ef}{default}"), &[percentile(&lat, 50.0), percentile(&lat, 95.0), r]);
        if ef == 128 {
            default_lat = lat;
        }
    }
    let (lat, r) = dense_run(&rt, &with(&quantized, &|_| ()), &queries, &truth, &mut rng);
    t.values("int8 quantization, rescore, oversampling 2, `hnsw_ef` 128", &[percentile(&lat, 50.0), percentile(&lat, 95.0), r]);
    let (lat, r) = dense_run(&rt, &with(&quantized, &|p| p.rescore = false), &queries, &truth, &mut rng);
    t.values("int8 quantization, no rescore, `hnsw_ef` 128", &[percentile(&lat, 50.0), percentile(&lat, 95.0), r]);
    report.table(t);
    report.sample("store_dense_hnsw_ms", "ms", default_lat.clone());
    report.sample("store_exact_bruteforce_ms", "ms", brute.clone());

    // Each mode's queries are drawn once (dense and sparse vectors), so that every setting
    // answers the same ones and recall is against the engine's exact search of each query.
    let cases = query_modes();
    let mut t = Table::new("Query modes by setting (recall@10 against the same query with `exact = true`)", &[("p50 ms", 3), ("p95 ms", 3), ("recall@10", 4)])
        .ratio_of(1);
    let exact = with(&store, &|p| p.exact = true);
    for (name, mode, filter) in &cases {
        let set: Vec<StoreQuery> = queries.iter().map(|q| query(q.clone(), &mut rng, *mode, filter.clone())).collect();
        let (_, truth) = run_set(&rt, &exact, &set);
        let (lat, got) = run_set(&rt, &store, &set);
        let r = mean(&truth.iter().zip(&got).map(|(t, g)| recall(t, g)).collect::<Vec<_>>());
        t.values(format!("{}, default", mode_label(name)), &[percentile(&lat, 50.0), percentile(&lat, 95.0), r]);
        if *mode == SearchMode::Hybrid {
            let (lat, got) = run_set(&rt, &quantized, &set);
            let r = mean(&truth.iter().zip(&got).map(|(t, g)| recall(t, g)).collect::<Vec<_>>());
            t.values(format!("{}, int8 quantization", mode_label(name)), &[percentile(&lat, 50.0), percentile(&lat, 95.0), r]);
    eprintln!("{n} points: upsert {up_plain:.1} s, optimize {opt_plain:.1} s; int8: upsert {up_q:.1} s, optimize {opt_q:.1} s");
        }
    }
    report.table(t);
    let mut t = Table::new("Index build (1,000-point upsert batches, each flushed; then optimize)", &[("upsert s", 1), ("optimize s", 1), ("points/s", 0)]).ratio_of(1);
    t.values("no quantization", &[up_plain, opt_plain, n as f64 / (up_plain + opt_plain)]);
    t.values("int8 quantization", &[up_q, opt_q, n as f64 / (up_q + opt_q)]);
    report.table(t);

    // HNSW build parameters on a smaller collection (each one is a fresh build).
    let small = (n / 5).max(1000);
    let mut t = Table::new(
        &format!("HNSW build parameters at {small} points (`hnsw_ef` 64)"),
        &[("build s", 1), ("p95 ms", 3), ("recall@10", 4)],
    )
    .ratio_of(0);
    let small_truth: Vec<Vec<usize>> = queries.iter().map(|q| exact_top_k(&vectors[..small], q, 10)).collect();
    for (m, ef_construct) in [(16u64, 100u64), (8, 100), (32, 100), (16, 200)] {
        let mut cfg = EdgeStoreConfig::new(dir.path().join(format!("m{m}-ef{ef_construct}")));
        cfg.collection.hnsw_m = m;
        cfg.collection.hnsw_ef_construct = ef_construct;
        cfg.search.hnsw_ef = Some(64);
        let s = EdgeStore::open(cfg).unwrap();
        let (up, opt) = fill(&rt, &s, &vectors[..small], &mut rng);
        let (lat, r) = dense_run(&rt, &s, &queries, &small_truth, &mut rng);
        let default = if (m, ef_construct) == (16, 100) { " (default)" } else { "" };
        t.values(format!("m {m}, ef_construct {ef_construct}{default}"), &[up + opt, percentile(&lat, 95.0), r]);
    }
    report.table(t);
    report.finish().unwrap();
    real_server(&rt, &vectors, &queries, &truth, &default_lat, &cases, &mut rng);

    let mut g = c.benchmark_group(format!("store_{n}"));
    for (name, mode, filter) in cases {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    i = (i + 1) % QUERIES;
                    query(queries[i].clone(), &mut rng, mode, filter.clone())
                },
                |q| rt.block_on(store.query("bench", &q)).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
