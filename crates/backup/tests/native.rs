//! Native backups: a Qdrant server's snapshot (the store testkit's Qdrant server) copied
//! into the repository, verified by size and sha256, recovered into a new collection,
//! validated, alias switched; a flipped byte is refused before the server sees the file;
//! the embedded store says it has no native snapshots.

use aidocs_backup::{BackupError, BackupSettings, Backups, NoValidation, Repository, RestoreOptions, is_native_id};
use aidocs_core::{ChunkPayload, CollectionSpec, Point, SparseVector, VectorStore};
use aidocs_store::testkit::qdrant_process::{ProcessOptions, QdrantProcess};
use aidocs_store::{EdgeStore, EdgeStoreConfig, QdrantStore, QdrantStoreConfig};
use std::sync::Arc;

fn point(n: u128) -> Point {
    let dense: Vec<f32> = (0..4).map(|i| ((n + 1) as f32 * (i as f32 + 0.5)).cos()).collect();
    let norm = dense.iter().map(|x| x * x).sum::<f32>().sqrt();
    Point {
        id: uuid::Uuid::from_u128(n + 1),
        dense: dense.iter().map(|x| x / norm).collect(),
        sparse: SparseVector { indices: vec![n as u32 % 13], values: vec![1.0] },
        payload: ChunkPayload { title: format!("t{n}"), text: format!("text {n}"), ..Default::default() },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_backup_restores_the_same_points_and_refuses_a_damaged_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let server = QdrantProcess::start(ProcessOptions::default()).await.expect("the Qdrant server binary starts");
    let mut cfg = QdrantStoreConfig::new(server.first().grpc_url());
    cfg.rest_url = Some(server.first().rest_url());
    let store = Arc::new(QdrantStore::connect(cfg).await.unwrap());
    store.create_collection(&CollectionSpec { name: "docs_v1".into(), dims: 4, properties: [("embedding_model".to_owned(), "m".to_owned())].into() }).await.unwrap();
    let pts: Vec<Point> = (0..300).map(point).collect();
    store.upsert("docs_v1", pts.clone()).await.unwrap();
    store.set_alias("docs", "docs_v1").await.unwrap();

    let dest = dir.path().join("backups");
    let repo = Repository::open(dest.to_str().unwrap(), &dir.path().join("staging")).unwrap();
    let backups = Backups::new(store.clone(), repo, BackupSettings { batch_points: 100, sample_points: 10 });
    let report = backups.create_native("docs").await.unwrap();
    assert!(is_native_id(&report.id), "{}", report.id);
    assert_eq!(report.points, 300);
    assert!(store.list_snapshots("docs_v1").await.unwrap().is_empty(), "the server-side snapshot is removed once copied");
    let listed = backups.list_native(Some("docs")).await.unwrap();
    assert_eq!(listed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), [report.id.as_str()]);
    assert_eq!((listed[0].source.as_str(), listed[0].properties["embedding_model"].as_str()), ("docs_v1", "m"));
    assert!(backups.list(None).await.unwrap().is_empty(), "native backups are not portable archives");

    let (entry, _) = backups.verify_native(&report.id).await.unwrap();
    assert_eq!(entry.bytes, report.bytes);

    // Disaster: the collection is gone. Restore into a new one and move the alias.
    store.delete_collection("docs_v1").await.unwrap();
    let opts = RestoreOptions { into: Some("docs_restored".into()), switch_alias: Some("docs".into()) };
    let restored = backups.restore_native(&report.id, &opts, &NoValidation).await.unwrap();
    assert_eq!((restored.collection.as_str(), restored.points), ("docs_restored", 300));
    assert_eq!(store.resolve("docs").await.unwrap(), "docs_restored");
    let ids: Vec<_> = pts.iter().map(|p| p.id).collect();
    assert_eq!(store.retrieve("docs", &ids).await.unwrap(), pts, "identical points after the native restore");
    assert_eq!(store.collection_info("docs").await.unwrap().properties["embedding_model"], "m");
    // A restore never overwrites a collection.
    let err = backups.restore_native(&report.id, &opts, &NoValidation).await.unwrap_err();
    assert!(err.to_string().contains("docs_restored"), "{err}");

    // One flipped byte: verify and restore both refuse, naming the snapshot file.
    let snap = dest.join(format!("{}.snapshot", report.id));
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&snap, bytes).unwrap();
    let err = backups.verify_native(&report.id).await.unwrap_err();
    assert!(matches!(&err, BackupError::Corrupt { member: Some(m), .. } if m.ends_with(".snapshot")), "{err}");
    let opts = RestoreOptions { into: Some("docs_again".into()), switch_alias: None };
    assert!(matches!(backups.restore_native(&report.id, &opts, &NoValidation).await, Err(BackupError::Corrupt { .. })));
    assert!(store.resolve("docs_again").await.is_err(), "nothing written");

    backups.remove_native(&report.id).await.unwrap();
    assert!(backups.list_native(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_has_no_native_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EdgeStore::open(EdgeStoreConfig::new(dir.path().join("d"))).unwrap());
    let repo = Repository::open(dir.path().join("b").to_str().unwrap(), &dir.path().join("s")).unwrap();
    let backups = Backups::new(store, repo, BackupSettings { batch_points: 10, sample_points: 1 });
    let err = backups.create_native("docs").await.unwrap_err().to_string();
    assert!(err.contains("vector_store.kind = \"qdrant\"") && err.contains("edge"), "{err}");
}
