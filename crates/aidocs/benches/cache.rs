//! Cache benchmarks at 100k chunks (synthetic 384-d + sparse points in the embedded store,
//! real MiniLM for query embeddings), through `Engine::search`:
//!
//! - search-cache hit, in-process cache (moka);
//! - search-cache hit, Redis on loopback (`REDIS_URL`, no L1);
//! - embedding-cache hit path: the query embedding is cached, the search is not;
//! - baseline: no cache (embed + store query), the ratio reference;
//! - hit rate of a replayed log of 10k queries with Zipf(s = 1.1) repeats over 2,000
//!   distinct queries, against the theoretical maximum (every first occurrence misses).
//!
//! Prints p50/p95 per path and the ratios to the baseline; criterion times each path too.
//! `AIDOCS_BENCH_POINTS` changes the size.

use aidocs::config::CacheBackend;
use aidocs_benchkit::{Report, Table, Topics, percentile, time_ms};
use aidocs::{Config, Engine, SearchRequest};
use aidocs_core::{ChunkPayload, CollectionSpec, DocMetadata, Point, SparseEncoder, VectorStore};
use aidocs_store::{EdgeStore, EdgeStoreConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::time::{Duration, Instant};

const DIMS: usize = 384;

static VOCAB: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let real = ["python", "json", "file", "parse", "packaging", "query", "number", "install", "module", "function"];
    real.iter().map(|w| w.to_string()).chain((0..20_000).map(|i| format!("term{i}"))).collect()
});

fn fill_store(dir: &Path, n: usize, rt: &tokio::runtime::Runtime) {
    let store = EdgeStore::open(EdgeStoreConfig::new(dir)).unwrap();
    let bm25 = aidocs_embed::Bm25Encoder::default();
    let mut rng = StdRng::seed_from_u64(11);
    let topics = Topics::new(&mut rng, 500, DIMS);
    rt.block_on(async {
        let mut props = std::collections::BTreeMap::new();
        props.insert(aidocs::engine::MODEL_PROPERTY.to_owned(), "sentence-transformers/all-MiniLM-L6-v2".to_owned());
        store.create_collection(&CollectionSpec { name: "docs".into(), dims: DIMS, properties: props }).await.unwrap();
        for start in (0..n).step_by(1000) {
            let pts = (start..(start + 1000).min(n))
                .map(|i| {
                    // Text over a Zipf-ish vocabulary that contains the query words, encoded
                    // by the real BM25 encoder: query terms match many documents, as in docs.
                    let text: String = (0..60)
                        .map(|_| {
                            let r = rng.random::<f64>();
                            let k = (r * r * r * VOCAB.len() as f64) as usize;
                            VOCAB[k.min(VOCAB.len() - 1)].clone()
                        })
                        .collect::<Vec<_>>()
                        .join(" ");
                    Point {
                        id: uuid::Uuid::from_u128(i as u128 + 1),
                        dense: topics.sample(&mut rng),
                        sparse: bm25.encode_doc(&text),
                        payload: ChunkPayload {
                            source: format!("file:///doc{}", i / 20),
                            path: format!("doc{}.html", i / 20),
                            title: format!("Document {}", i / 20),
                            text: "lorem ipsum dolor sit amet ".repeat(10),
                            meta: DocMetadata { language: Some("python".into()), ..Default::default() },
                            ..Default::default()
                        },
                    }
                })
                .collect();
            store.upsert("docs", pts).await.unwrap();
        }
        store.optimize("docs").await.unwrap();
    });
}

fn config(dir: &Path, cache: CacheBackend) -> Config {
    let mut cfg = Config::default();
    cfg.data_dir = dir.to_path_buf();
    cfg.embedding.model_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    cfg.cache.kind = cache;
    cfg.cache.url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    cfg.cache.namespace = format!("aidocs-bench:{}:", std::process::id());
    cfg.cache.timeout_ms = 1000;
    cfg
}

fn req(q: &str) -> SearchRequest {
    SearchRequest { limit: Some(10), ..SearchRequest::new(q) }
}

/// Latencies (ms) of `n` calls of `f`.
fn measure(rt: &tokio::runtime::Runtime, n: usize, mut f: impl FnMut(usize) -> SearchRequest, engine: &Engine) -> Vec<f64> {
    time_ms(n, |i| {
        rt.block_on(engine.search(f(i))).unwrap();
    })
}

/// Zipf(s) over 1..=n by inverse CDF.
fn zipf_sampler(n: usize, s: f64) -> Vec<f64> {
    let w: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect();
    let total: f64 = w.iter().sum();
    let mut acc = 0.0;
    w.iter().map(|x| {
        acc += x / total;
        acc
    })
    .collect()
}

fn bench(c: &mut Criterion) {
    let n = aidocs_benchkit::bench_points(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    fill_store(dir.path(), n, &rt);
    eprintln!("store: {n} points in {:.0} s", t.elapsed().as_secs_f64());

    let q = "how do I parse a json file in python";
    let mut report = Vec::new();
    // Baseline: no cache at all.
    let engine = rt.block_on(async { Engine::open(config(dir.path(), CacheBackend::None)).unwrap() });
    report.push(("no cache (embed query + hybrid store query)", measure(&rt, 300, |_| req(q), &engine)));
    c.bench_function("search/no_cache", |b| b.iter(|| rt.block_on(engine.search(req(q))).unwrap()));
    drop(engine);

    // In-process cache: search hit, and the embedding-hit path (search TTL 0 = never cached).
    let engine = rt.block_on(async { Engine::open(config(dir.path(), CacheBackend::Memory)).unwrap() });
    rt.block_on(engine.search(req(q))).unwrap();
    report.push(("search-cache hit, in-process (moka)", measure(&rt, 2000, |_| req(q), &engine)));
    c.bench_function("search/hit_memory", |b| b.iter(|| rt.block_on(engine.search(req(q))).unwrap()));
    drop(engine);
    let mut cfg = config(dir.path(), CacheBackend::Memory);
    cfg.cache.ttl.search_s = 0;
    let engine = rt.block_on(async { Engine::open(cfg).unwrap() });
    rt.block_on(engine.search(req(q))).unwrap();
    report.push(("embedding-cache hit, search not cached", measure(&rt, 300, |_| req(q), &engine)));
    c.bench_function("search/embedding_hit", |b| b.iter(|| rt.block_on(engine.search(req(q))).unwrap()));

    // Zipf replay on the in-process cache (fresh engine, search cached for the whole run).
    drop(engine);
    let engine = rt.block_on(async { Engine::open(config(dir.path(), CacheBackend::Memory)).unwrap() });
    let cdf = zipf_sampler(2000, 1.1);
    let mut rng = StdRng::seed_from_u64(5);
    let log: Vec<usize> = (0..10_000).map(|_| cdf.partition_point(|p| *p < rng.random::<f64>())).collect();
    let distinct = log.iter().collect::<std::collections::HashSet<_>>().len();
    let t = Instant::now();
    let hits = log
        .iter()
        .filter(|k| rt.block_on(engine.search(req(&format!("query number {k} about python packaging")))).unwrap().cached)
        .count();
    let replay_s = t.elapsed().as_secs_f64();
    drop(engine);

    // Redis on loopback as the only tier (no L1), via the breaker: search hit.
    let redis = {
        let cfg = config(dir.path(), CacheBackend::Redis);
        let _enter = rt.enter();
        let r = aidocs_cache::RedisCache::new(aidocs_cache::RedisCacheConfig {
            url: cfg.cache.url.clone(),
            namespace: cfg.cache.namespace.clone(),
            pool_size: 2,
            timeout: Duration::from_secs(1),
            compress_threshold: 1024,
        })
        .unwrap();
        assert!(rt.block_on(r.wait_connected(Duration::from_secs(5))), "Redis at {}", cfg.cache.url);
        let mut none = cfg.clone();
        none.cache.kind = CacheBackend::None;
        rt.block_on(async { Engine::open(none).unwrap() }).with_cache(std::sync::Arc::new(r))
    };
    rt.block_on(redis.search(req(q))).unwrap();
    assert!(rt.block_on(redis.search(req(q))).unwrap().cached);
    report.push(("search-cache hit, Redis on loopback, no L1", measure(&rt, 2000, |_| req(q), &redis)));
    c.bench_function("search/hit_redis", |b| b.iter(|| rt.block_on(redis.search(req(q))).unwrap()));
    rt.block_on(redis.cache_clear(None)).unwrap();

    let max = 1.0 - distinct as f64 / log.len() as f64;
    let mut out = Report::new("cache", &format!("Caches: Engine::search at {n} chunks"));
    out.note(format!(
        "{n} synthetic points in the embedded store (384-d vectors around 500 topics; sparse vectors from \
         the real BM25 encoder over a 20k-word vocabulary that contains the query words), queries through \
         `Engine::search` with the real MiniLM (candle) for query embeddings, limit 10, hybrid RRF. \
         2,000 timed searches per cached path, 300 otherwise. Redis: `REDIS_URL` on loopback."
    ));
    let mut t = Table::new("Per-search latency by cache path", &[("p50 ms", 3), ("p95 ms", 3)]).ratio_of(1);
    for (name, lat) in &report {
        t.values(*name, &[percentile(lat, 50.0), percentile(lat, 95.0)]);
    }
    out.table(t);
    let mut t = Table::new(
        &format!("Zipf(1.1) replay: 10,000 queries over 2,000 strings ({distinct} distinct appear), in-process cache, {replay_s:.0} s"),
        &[("hit rate", 4)],
    )
    .ratio_of(0);
    t.values("theoretical maximum (every first occurrence misses)", &[max]);
    t.values("measured", &[hits as f64 / log.len() as f64]);
    out.table(t);
    out.sample("search_uncached_ms", "ms", report[0].1.clone());
    out.sample("search_cached_memory_ms", "ms", report[1].1.clone());
    out.finish().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
