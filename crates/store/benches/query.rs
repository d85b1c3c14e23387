//! Store query latency at 100k points (384-d dense + sparse, like real chunks): dense,
//! hybrid (dense + sparse prefetch 100 each, RRF) and hybrid with a keyword filter, after
//! optimize. Also prints p50/p95 over 1,000 queries per mode. `AIDOCS_BENCH_POINTS` changes
//! the size.

use aidocs_core::{
    ChunkPayload, CollectionSpec, DocMetadata, Filter, FilterField, FilterValue, Fusion, Point, SearchMode, SparseVector,
    StoreQuery, VectorStore,
};
use aidocs_store::{EdgeStore, EdgeStoreConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

const DIMS: usize = 384;

fn normalize(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn random_unit(rng: &mut StdRng) -> Vec<f32> {
    normalize((0..DIMS).map(|_| rng.random::<f32>() - 0.5).collect())
}

/// Embedding-like vectors: sentence embeddings cluster by topic, they are not uniform on the
/// sphere. A point is a random topic centroid plus noise.
struct Topics(Vec<Vec<f32>>);

impl Topics {
    fn new(rng: &mut StdRng, n: usize) -> Self {
        Self((0..n).map(|_| random_unit(rng)).collect())
    }
    fn sample(&self, rng: &mut StdRng) -> Vec<f32> {
        let c = &self.0[rng.random_range(0..self.0.len())];
        normalize(c.iter().map(|x| x + 0.08 * (rng.random::<f32>() - 0.5)).collect())
    }
}

fn sparse(rng: &mut StdRng, terms: usize) -> SparseVector {
    let mut idx: Vec<u32> = (0..terms).map(|_| rng.random_range(0..30_000)).collect();
    idx.sort_unstable();
    idx.dedup();
    let values = idx.iter().map(|_| rng.random_range(0.2..2.0)).collect();
    SparseVector { indices: idx, values }
}

fn query(rng: &mut StdRng, topics: &Topics, mode: SearchMode, filter: Filter) -> StoreQuery {
    StoreQuery { mode, dense: Some(topics.sample(rng)), sparse: Some(sparse(rng, 6)), filter, limit: 10, prefetch_limit: 100, fusion: Fusion::default() }
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("AIDOCS_BENCH_POINTS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(EdgeStoreConfig::new(dir.path())).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let topics = Topics::new(&mut rng, 500);
    let langs = ["python", "rust", "go", "java", "js"];
    rt.block_on(async {
        store.create_collection(&CollectionSpec { name: "bench".into(), dims: DIMS, properties: Default::default() }).await.unwrap();
        let started = Instant::now();
        for start in (0..n).step_by(1000) {
            let pts = (start..(start + 1000).min(n))
                .map(|i| Point {
                    id: uuid::Uuid::from_u128(i as u128 + 1),
                    dense: topics.sample(&mut rng),
                    sparse: sparse(&mut rng, 40),
                    payload: ChunkPayload {
                        source: format!("file:///doc{}", i / 20),
                        path: format!("doc{}.html", i / 20),
                        text: "x".repeat(200),
                        meta: DocMetadata { language: Some(langs[i % 5].into()), ..Default::default() },
                        ..Default::default()
                    },
                })
                .collect();
            store.upsert("bench", pts).await.unwrap();
        }
        eprintln!("upsert {n} points: {:.1} s", started.elapsed().as_secs_f64());
        let started = Instant::now();
        store.optimize("bench").await.unwrap();
        eprintln!("optimize: {:.1} s", started.elapsed().as_secs_f64());
    });
    let lang = Filter::default().and(FilterField::Language, FilterValue::Keyword("rust".into()));
    let cases = [("dense", SearchMode::Dense, Filter::default()), ("hybrid", SearchMode::Hybrid, Filter::default()), ("hybrid_filter", SearchMode::Hybrid, lang)];
    for (name, mode, filter) in &cases {
        let mut lat: Vec<f64> = (0..1000)
            .map(|_| {
                let q = query(&mut rng, &topics, *mode, filter.clone());
                let t = Instant::now();
                rt.block_on(store.query("bench", &q)).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        eprintln!("{name}: p50 {:.3} ms, p95 {:.3} ms over 1000 queries at {n} points", lat[500], lat[950]);
    }
    let mut g = c.benchmark_group(format!("store_{n}"));
    for (name, mode, filter) in cases {
        g.bench_function(name, |b| {
            b.iter_batched(|| query(&mut rng, &topics, mode, filter.clone()), |q| rt.block_on(store.query("bench", &q)).unwrap(), criterion::BatchSize::SmallInput)
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
