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
