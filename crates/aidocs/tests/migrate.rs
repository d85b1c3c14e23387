//! `migrate` between two embedded data dirs: interrupted after two batches, resumed from
//! its checkpoint, verified bit for bit, alias switched; refusals are clear.

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
        sparse: SparseVector { indices: vec![(n % 50) as u32, 100 + (n % 7) as u32], values: vec![1.0, 0.5] },
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
