//! EdgeStore: conformance suite, persistence across restarts, data-dir lock, crash safety.

use aidocs_core::{CollectionSpec, Filter, Fusion, SearchMode, SparseVector, StoreQuery, VectorStore};
use aidocs_store::{EdgeStore, EdgeStoreConfig, conformance};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn open(dir: &std::path::Path) -> EdgeStore {
    EdgeStore::open(EdgeStoreConfig::new(dir)).expect("open store")
}

fn spec(name: &str) -> CollectionSpec {
    CollectionSpec { name: name.into(), dims: 4, properties: Default::default() }
}

fn probe(mode: SearchMode, term: u32, limit: usize) -> StoreQuery {
    StoreQuery {
        mode,
        dense: Some(vec![0.5, 0.5, 0.5, 0.5]),
        sparse: Some(SparseVector { indices: vec![term], values: vec![1.0] }),
        filter: Filter::default(),
        limit,
        prefetch_limit: 50,
        fusion: Fusion::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_store_passes_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&open(dir.path()), "conf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_aliases_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.create_collection(&spec("docs_v1")).await.unwrap();
        let pts = (1..=20).map(|i| conformance::point(i, [1.0, i as f32, 0.0, 0.0], &[(1, 1.0)], "python")).collect();
        store.upsert("docs_v1", pts).await.unwrap();
        store.set_alias("docs", "docs_v1").await.unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.resolve("docs").await.unwrap(), "docs_v1");
    assert_eq!(store.count("docs", &Filter::default()).await.unwrap(), 20);
    let info = store.collection_info("docs").await.unwrap();
    assert_eq!(info.dims, 4);
    assert!(info.properties["wal_bytes"].parse::<u64>().unwrap() > 0);
}

#[tokio::test]
async fn second_open_of_same_data_dir_gets_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let err = EdgeStore::open(EdgeStoreConfig::new(dir.path())).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, aidocs_core::StoreError::Locked { .. }), "{msg}");
    assert!(msg.contains("locked by another aidocs process"), "{msg}");
}

/// Child half of the crash test (a no-op unless spawned by it): writes batches, prints
/// ACK after each acknowledged batch, then waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Some(dir) = std::env::var_os("AIDOCS_CRASH_CHILD_DIR") else { return };
    let store = open(std::path::Path::new(&dir));
    store.create_collection(&spec("c")).await.unwrap();
    for batch in 0..5u128 {
        let pts = (0..100)
            .map(|i| conformance::point(batch * 100 + i + 1, [1.0, i as f32, batch as f32, 0.0], &[(i as u32, 1.0)], "python"))
            .collect();
        store.upsert("c", pts).await.unwrap();
        println!("ACK {}", (batch + 1) * 100);
    }
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_acknowledged_writes_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("AIDOCS_CRASH_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().strip_prefix("ACK ") {
            acked = n.parse().unwrap();
            if acked == 500 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(acked, 500);
    let store = open(dir.path());
    assert_eq!(store.count("c", &Filter::default()).await.unwrap(), 500, "acknowledged writes lost after kill -9");
    assert_eq!(store.query("c", &probe(SearchMode::Hybrid, 3, 10)).await.unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_during_writes_and_optimize_do_not_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_collection(&spec("c")).await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for batch in 0..20u128 {
                let pts = (0..200)
                    .map(|i| conformance::point(batch * 200 + i + 1, [1.0, i as f32, batch as f32, 1.0], &[(i as u32 % 50, 1.0)], "go"))
                    .collect();
                store.upsert("c", pts).await.unwrap();
                if batch % 7 == 6 {
                    store.optimize("c").await.unwrap();
                }
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..150 {
                    let mode = [SearchMode::Hybrid, SearchMode::Dense, SearchMode::Sparse][(i + r) % 3];
                    let hits = store.query("c", &probe(mode, (i % 50) as u32, 5)).await.unwrap();
                    assert!(hits.len() <= 5);
                }
            })
        })
        .collect();
    writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
    assert_eq!(store.count("c", &Filter::default()).await.unwrap(), 4000);
}

/// `n` random 16-d unit vectors (seeded); the `i`-th point has id `i + 1`.
fn random_points(n: u128) -> Vec<aidocs_core::Point> {
    let mut rng = aidocs_benchkit::seeded(3);
    (0..n)
        .map(|i| {
            let v = aidocs_benchkit::random_unit(&mut rng, 16);
            let mut p = conformance::point(i + 1, [0.0; 4], &[(1, 1.0)], "python");
            p.dense = v;
            p
        })
        .collect()
}

fn dense_probe(v: Vec<f32>) -> StoreQuery {
    StoreQuery { mode: SearchMode::Dense, dense: Some(v), sparse: None, filter: Filter::default(), limit: 10, prefetch_limit: 10, fusion: Fusion::default() }
}

/// The index settings reach the engine: with a tiny indexing threshold the collection is
/// HNSW-indexed and int8-quantized after optimize; without rescoring the scores are the
/// quantized approximations, with rescoring (the default) and with `exact` they are the
/// true cosines, and `exact` returns the brute-force top 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_and_search_params_reach_the_engine() {
    use aidocs_store::params::{ScalarQuantization, SearchParams};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EdgeStoreConfig::new(dir.path());
    cfg.collection.quantization = Some(ScalarQuantization::default());
    cfg.collection.indexing_threshold = Some(1);
    cfg.collection.full_scan_threshold = 1;
    cfg.collection.hnsw_m = 8;
    cfg.collection.hnsw_ef_construct = 32;
    let store = EdgeStore::open(cfg).unwrap();
    store.create_collection(&CollectionSpec { name: "q".into(), dims: 16, properties: Default::default() }).await.unwrap();
    let points = random_points(2000);
    let vectors: Vec<Vec<f32>> = points.iter().map(|p| p.dense.clone()).collect();
    store.upsert("q", points).await.unwrap();
    store.optimize("q").await.unwrap();

    let mut rng = aidocs_benchkit::seeded(4);
    let (mut quantized_off, mut max_rescored_err) = (0usize, 0f32);
    for _ in 0..20 {
        let q = aidocs_benchkit::random_unit(&mut rng, 16);
        let truth = aidocs_benchkit::exact_top_k(&vectors, &q, 10);
        let cos = |id: uuid::Uuid| {
            let i = (id.as_u128() - 1) as usize;
            vectors[i].iter().zip(&q).map(|(a, b)| a * b).sum::<f32>()
        };
        let exact = store.with_search(SearchParams { exact: true, ..SearchParams::default() }).query("q", &dense_probe(q.clone())).await.unwrap();
        let got: Vec<usize> = exact.iter().map(|h| (h.id.as_u128() - 1) as usize).collect();
        assert_eq!(got, truth, "exact search is the brute-force top 10");
        for h in store.query("q", &dense_probe(q.clone())).await.unwrap() {
            max_rescored_err = max_rescored_err.max((h.score - cos(h.id)).abs());
        }
        let raw = store.with_search(SearchParams { rescore: false, ..SearchParams::default() }).query("q", &dense_probe(q.clone())).await.unwrap();
        quantized_off += raw.iter().filter(|h| (h.score - cos(h.id)).abs() > 1e-4).count();
    }
    assert!(max_rescored_err < 1e-4, "rescored scores are true cosines (max error {max_rescored_err})");
    assert!(quantized_off > 0, "without rescoring some scores come from the int8 vectors");

    // The store-wide default (`EdgeStoreConfig::new`) does not quantize: scores are exact.
    let plain_dir = tempfile::tempdir().unwrap();
    let mut cfg = EdgeStoreConfig::new(plain_dir.path());
    cfg.collection.indexing_threshold = Some(1);
    let plain = EdgeStore::open(cfg).unwrap();
    plain.create_collection(&CollectionSpec { name: "p".into(), dims: 16, properties: Default::default() }).await.unwrap();
    plain.upsert("p", random_points(2000)).await.unwrap();
    plain.optimize("p").await.unwrap();
    let q = aidocs_benchkit::random_unit(&mut rng, 16);
    let raw = plain.with_search(SearchParams { rescore: false, ..SearchParams::default() }).query("p", &dense_probe(q.clone())).await.unwrap();
    for h in raw {
        let v = &vectors[(h.id.as_u128() - 1) as usize];
        let cos: f32 = v.iter().zip(&q).map(|(a, b)| a * b).sum();
        assert!((h.score - cos).abs() < 1e-4, "unquantized scores are true cosines");
    }
}

/// A missing `catalog.json` must not read as an empty store: before the fix, the next open
/// treated every shard directory as an orphan and deleted them all. Now open refuses and
/// names the repair; `EdgeStore::repair` restores the previous generation; orphans are kept
/// until a repair is asked to remove them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_catalog_refuses_to_open_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.create_collection(&spec("docs_v1")).await.unwrap();
        let pts = (1..=20).map(|i| conformance::point(i, [1.0, i as f32, 0.0, 0.0], &[(1, 1.0)], "python")).collect();
        store.upsert("docs_v1", pts).await.unwrap();
        store.set_alias("docs", "docs_v1").await.unwrap();
    }
    let shards = || std::fs::read_dir(dir.path().join("collections")).unwrap().count();
    assert_eq!(shards(), 1);
    assert!(dir.path().join("catalog.json.prev").is_file(), "the replaced generation is kept");
    std::fs::remove_file(dir.path().join("catalog.json")).unwrap();

    for _ in 0..2 {
        let err = EdgeStore::open(EdgeStoreConfig::new(dir.path())).err().expect("open must refuse");
        let msg = err.to_string();
        assert!(matches!(err, aidocs_core::StoreError::Catalog { .. }), "{msg}");
        assert!(msg.contains("missing") && msg.contains("aidocs repair"), "{msg}");
        assert_eq!(shards(), 1, "nothing deleted by a refused open");
    }
    // A corrupt catalog is refused the same way, with the same hint.
    std::fs::write(dir.path().join("catalog.json"), b"{not json").unwrap();
    let msg = EdgeStore::open(EdgeStoreConfig::new(dir.path())).err().unwrap().to_string();
    assert!(msg.contains("aidocs repair"), "{msg}");
    std::fs::remove_file(dir.path().join("catalog.json")).unwrap();

    let report = EdgeStore::repair(dir.path(), false).unwrap();
    assert!(report.restored_previous);
    assert_eq!(report.collections, vec!["docs_v1".to_owned()]);
    assert!(report.orphans.is_empty());
    let store = open(dir.path());
    assert_eq!(store.count("docs_v1", &Filter::default()).await.unwrap(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_directories_are_kept_until_an_explicit_repair() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let orphan = dir.path().join("collections/left-by-a-crash");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("segment"), b"data").unwrap();
    drop(open(dir.path()));
    assert!(orphan.join("segment").is_file(), "open never deletes what the catalog does not know");
    let report = EdgeStore::repair(dir.path(), false).unwrap();
    assert_eq!(report.orphans, vec!["left-by-a-crash".to_owned()]);
    assert!(report.removed.is_empty() && orphan.is_dir());
    {
        let _running = open(dir.path());
        assert!(matches!(EdgeStore::repair(dir.path(), true), Err(aidocs_core::StoreError::Locked { .. })), "never under a running store");
    }
    let report = EdgeStore::repair(dir.path(), true).unwrap();
    assert_eq!(report.removed, vec!["left-by-a-crash".to_owned()]);
    assert!(!orphan.exists());
}

fn small_wal(dir: &std::path::Path) -> EdgeStore {
    let mut cfg = EdgeStoreConfig::new(dir);
    cfg.wal_segment_capacity = 64 * 1024;
    EdgeStore::open(cfg).expect("open store")
}

/// Batch `b` rewrites ids `(b % 10) * 100 + 1 ..= +100`; the third vector component holds
/// `b`, so a reader can tell which batch a point came from.
fn versioned_batch(b: u128) -> Vec<aidocs_core::Point> {
    let base = (b % 10) * 100;
    (1..=100).map(|i| conformance::point(base + i, [1.0, i as f32, b as f32, 0.0], &[(i as u32, 1.0)], "python")).collect()
}

fn batch_of(p: &aidocs_core::Point) -> u128 {
    (p.dense[2] / p.dense[0]).round() as u128
}

async fn sizes(store: &EdgeStore, c: &str) -> (u64, u64) {
    let info = store.collection_info(c).await.unwrap();
    (info.properties["disk_bytes"].parse().unwrap(), info.properties["wal_bytes"].parse().unwrap())
}

/// The WAL grew without bound (6.75 MB -> 87.7 MB after 13 re-ingests of the same points).
/// Now 50 rounds of rewriting every point keep disk within 2x of the fresh collection, the
/// WAL within a few segments, and every write still lands (operation numbers continue
/// across compactions), before and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_over_50_rewrite_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_wal(dir.path());
    store.create_collection(&spec("c")).await.unwrap();
    for b in 0..10 {
        store.upsert("c", versioned_batch(b)).await.unwrap();
    }
    store.optimize("c").await.unwrap();
    let (fresh, _) = sizes(&store, "c").await;
    for round in 1..=50u128 {
        for g in 0..10 {
            store.upsert("c", versioned_batch(round * 10 + g)).await.unwrap();
        }
        store.optimize("c").await.unwrap();
    }
    let (disk, wal) = sizes(&store, "c").await;
    assert!(wal <= 6 * 64 * 1024, "WAL bounded by a few segments: {wal} bytes");
    assert!(disk <= 2 * fresh, "disk after 50 rounds {disk} > 2x fresh {fresh}");
    let check = |points: Vec<aidocs_core::Point>| {
        assert_eq!(points.len(), 1000);
        for p in &points {
            let want = 500 + (p.id.as_u128() - 1) / 100;
            assert_eq!(batch_of(p), want, "point {} holds the last write", p.id);
        }
    };
    let ids: Vec<uuid::Uuid> = (1..=1000).map(uuid::Uuid::from_u128).collect();
    check(store.retrieve("c", &ids).await.unwrap());
    drop(store);
    let store = small_wal(dir.path());
    check(store.retrieve("c", &ids).await.unwrap());
    store.upsert("c", versioned_batch(600)).await.unwrap();
    assert_eq!(batch_of(&store.retrieve("c", &[uuid::Uuid::from_u128(1)]).await.unwrap()[0]), 600, "writes after a restart land");
}

/// Child half of the compaction crash test (a no-op unless spawned by it): rewrites batches
/// on a tiny WAL (a compaction every few writes), printing ACK b after each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_crash_child() {
    let Some(dir) = std::env::var_os("AIDOCS_COMPACTION_CHILD_DIR") else { return };
    let store = small_wal(std::path::Path::new(&dir));
    if store.collection_info("c").await.is_err() {
        store.create_collection(&spec("c")).await.unwrap();
    }
    let start: u128 = std::env::var("AIDOCS_COMPACTION_CHILD_START").unwrap().parse().unwrap();
    for b in start.. {
        store.upsert("c", versioned_batch(b)).await.unwrap();
        println!("ACK {b}");
    }
}

/// kill -9 at arbitrary points of a write + compaction loop, several times over the same
/// data dir: every acknowledged batch is there, the store always reopens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_wal_compaction_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut start = 0u128;
    // Every batch acknowledged in any round (the one in flight at a kill may or may not land).
    let mut acked_batches: Vec<u128> = Vec::new();
    for (round, kill_after) in [7u128, 23, 4, 31, 12].into_iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "compaction_crash_child", "--nocapture", "--test-threads=1"])
            .env("AIDOCS_COMPACTION_CHILD_DIR", dir.path())
            .env("AIDOCS_COMPACTION_CHILD_START", start.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut acked = None;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            if let Some(n) = line.unwrap().strip_prefix("ACK ") {
                let n: u128 = n.trim().parse().unwrap();
                acked = Some(n);
                acked_batches.push(n);
                if n >= start + kill_after {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL, while the next batch (and maybe a compaction) runs
        child.wait().unwrap();
        let acked = acked.expect("the child acknowledged writes");
        let store = small_wal(dir.path());
        let ids: Vec<uuid::Uuid> = (1..=1000).map(uuid::Uuid::from_u128).collect();
        let points = store.retrieve("c", &ids).await.unwrap();
        for g in 0..10u128 {
            // The newest acknowledged batch of this id group (if any was written yet).
            let Some(last) = acked_batches.iter().copied().filter(|b| b % 10 == g).max() else { continue };
            for p in points.iter().filter(|p| (p.id.as_u128() - 1) / 100 == g) {
                assert!(batch_of(p) >= last, "round {round}: point {} lost acknowledged batch {last} (has {})", p.id, batch_of(p));
            }
            assert_eq!(points.iter().filter(|p| (p.id.as_u128() - 1) / 100 == g).count(), 100, "round {round}: group {g} complete");
        }
        start = acked + 2;
    }
}
