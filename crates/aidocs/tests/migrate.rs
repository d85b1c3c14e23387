//! `migrate` between two embedded data dirs (interrupted after two batches, resumed from
//! its checkpoint, verified bit for bit, alias switched; refusals are clear) and from the
//! embedded store to a Qdrant server and back.

use aidocs::core::{ChunkPayload, CollectionSpec, Filter, Point, SparseVector, VectorStore};
use aidocs::migrate::{MigrateOptions, migrate};
use aidocs_store::testkit::FaultyStore;
use aidocs_store::{EdgeStore, EdgeStoreConfig};
use std::collections::BTreeMap;
use std::sync::Arc;

fn point(n: u128) -> Point {
    let dense: Vec<f32> = (0..8).map(|i| ((n as f32 + 1.0) * (i as f32 + 1.0)).sin()).collect();
    let norm = dense.iter().map(|x| x * x).sum::<f32>().sqrt();
    Point {
        id: uuid::Uuid::from_u128(n * 7919),
        dense: dense.iter().map(|x| x / norm).collect(),
        // Distinct weights: no ties at a cut, so two engines must agree on every page.
        sparse: SparseVector { indices: vec![(n % 50) as u32, 100 + (n % 7) as u32], values: vec![1.0 + n as f32 / 4096.0, 0.5] },
        payload: ChunkPayload { title: format!("Doc {n}"), text: format!("text {n}"), path: format!("d{n}.md"), ..Default::default() },
    }
}

async fn all(store: &dyn VectorStore, c: &str) -> Vec<Point> {
    aidocs_store::testkit::all_points(store, c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_migration_resumes_from_its_checkpoint_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let from = EdgeStore::open(EdgeStoreConfig::new(dir.path().join("a"))).unwrap();
    let mut props = BTreeMap::new();
    props.insert("embedding_model".to_owned(), "m".to_owned());
    from.create_collection(&CollectionSpec { name: "docs".into(), dims: 8, properties: props }).await.unwrap();
    from.upsert("docs", (0..2500).map(point).collect()).await.unwrap();
    from.set_alias("live", "docs").await.unwrap();
    let to = Arc::new(EdgeStore::open(EdgeStoreConfig::new(dir.path().join("b"))).unwrap());
    let opts = MigrateOptions {
        collection: "live".into(),
        into: None,
        alias: Some("live".into()),
        batch_points: 1000,
        sample_points: 50,
        checkpoint_dir: dir.path().join("b/migrate"),
    };

    // The third batch fails: two are in, and the checkpoint says so.
    let faulty = FaultyStore::new(to.clone());
    faulty.faults.fail_upserts_after(Some(2));
    let err = migrate(&from, &faulty, &opts).await.unwrap_err().to_string();
    assert!(err.contains("injected fault"), "{err}");
    assert_eq!(to.count("docs", &Filter::default()).await.unwrap(), 2000);
    assert!(to.resolve("live").await.is_err(), "no alias before the copy verified");
    let cp: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("b/migrate/docs.json")).unwrap()).unwrap();
    assert_eq!(cp["copied"], 2000, "{cp}");

    // Resumed: only the rest is copied; then everything is identical and the alias moves.
    let report = migrate(&from, to.as_ref(), &opts).await.unwrap();
    assert!(report.resumed);
    assert_eq!((report.points, report.copied_this_run, report.sampled), (2500, 500, 50));
    let bits = |ps: &[Point]| ps.iter().map(|p| (p.id, p.dense.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), p.sparse.clone(), p.payload.clone())).collect::<Vec<_>>();
    assert_eq!(bits(&all(to.as_ref(), "docs").await), bits(&all(&from, "docs").await), "target equals source bit for bit");
    assert_eq!(to.resolve("live").await.unwrap(), "docs");
    assert!(!dir.path().join("b/migrate/docs.json").exists(), "checkpoint removed after success");
    let info = to.collection_info("docs").await.unwrap();
    assert_eq!(info.properties.get("embedding_model").map(String::as_str), Some("m"), "model recorded on the copy");

    // A finished copy is not overwritten by a second run.
    let err = migrate(&from, to.as_ref(), &opts).await.unwrap_err().to_string();
    assert!(err.contains("`docs` already exists"), "{err}");
    let err = migrate(&from, to.as_ref(), &MigrateOptions { collection: "ghost".into(), ..opts.clone() }).await.unwrap_err().to_string();
    assert!(err.contains("ghost"), "{err}");
}

/// Embedded -> Qdrant (the real server binary, `aidocs_store::testkit::qdrant_process`) ->
/// embedded again: bit-exact points both ways, alias switched on the Qdrant side, searches
/// agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_embedded_to_qdrant_and_back() {
    use aidocs_store::testkit::qdrant_process::{ProcessOptions, QdrantProcess};
    let dir = tempfile::tempdir().unwrap();
    let from = EdgeStore::open(EdgeStoreConfig::new(dir.path().join("a"))).unwrap();
    let props = BTreeMap::from([("embedding_model".to_owned(), "m".to_owned())]);
    from.create_collection(&CollectionSpec { name: "docs".into(), dims: 8, properties: props }).await.unwrap();
    from.upsert("docs", (0..1200).map(point).collect()).await.unwrap();
    from.set_alias("live", "docs").await.unwrap();
    let server = QdrantProcess::start(ProcessOptions::default()).await.expect("the Qdrant server binary starts");
    let mut qcfg = aidocs_store::QdrantStoreConfig::new(server.first().grpc_url());
    qcfg.rest_url = Some(server.first().rest_url());
    let qdrant = aidocs_store::QdrantStore::connect(qcfg).await.unwrap();
    let opts = |checkpoints: &str| MigrateOptions {
        collection: "docs".into(),
        into: None,
        alias: Some("live".into()),
        batch_points: 500,
        sample_points: 40,
        checkpoint_dir: dir.path().join(checkpoints),
    };
    let report = migrate(&from, &qdrant, &opts("cp1")).await.unwrap();
    assert_eq!((report.points, report.sampled), (1200, 40));
    assert_eq!(qdrant.resolve("live").await.unwrap(), "docs");
    assert_eq!(qdrant.collection_info("live").await.unwrap().properties["embedding_model"], "m");
    assert_eq!(all(&qdrant, "docs").await, all(&from, "docs").await, "embedded -> qdrant: identical");

    let back = EdgeStore::open(EdgeStoreConfig::new(dir.path().join("c"))).unwrap();
    migrate(&qdrant, &back, &opts("cp2")).await.unwrap();
    assert_eq!(all(&back, "docs").await, all(&from, "docs").await, "qdrant -> embedded: identical");
    let q = aidocs::core::StoreQuery {
        mode: aidocs::core::SearchMode::Hybrid,
        dense: Some(point(17).dense),
        sparse: Some(point(17).sparse),
        filter: Filter::default(),
        limit: 10,
        prefetch_limit: 50,
        fusion: Default::default(),
    };
    let ids = |h: Vec<aidocs::core::ScoredChunk>| h.into_iter().map(|h| h.id).collect::<Vec<_>>();
    // Dense pages are exact here (small segments are scanned in full): equal page for page.
    let dense = aidocs::core::StoreQuery { mode: aidocs::core::SearchMode::Dense, ..q.clone() };
    let want = ids(from.query("docs", &dense).await.unwrap());
    assert_eq!(ids(qdrant.query("live", &dense).await.unwrap()), want, "the same dense page from the Qdrant backend");
    assert_eq!(ids(back.query("live", &dense).await.unwrap()), want);
    // Hybrid pages depend on each engine's segment layout (sparse IDF statistics are kept
    // per segment), so the copies are compared on their best hit.
    for store in [&from as &dyn VectorStore, &qdrant, &back] {
        assert_eq!(ids(store.query("live", &q).await.unwrap())[..1], [point(17).id]);
    }
}
