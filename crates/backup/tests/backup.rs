//! Backups against the real embedded store: bit-exact round trips, incremental chains,
//! corrupted, truncated and hostile archives, retention, an object-store destination.

use aidocs_backup::format::{self, BackupKind, CollectionConfig, Manifest, MemberDigest};
use aidocs_backup::{BackupError, BackupSettings, Backups, CatalogEntry, NoValidation, Repository, RestoreOptions, Retention};
use aidocs_core::{ChunkPayload, CollectionSpec, DocMetadata, Filter, Fusion, Point, SearchMode, SparseVector, StoreQuery, VectorStore};
use aidocs_store::{EdgeStore, EdgeStoreConfig};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const DIMS: usize = 16;

fn point(rng: &mut rand::rngs::StdRng, n: u128, version: u32) -> Point {
    let mut dense: Vec<f32> = (0..DIMS).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = dense.iter().map(|x| x * x).sum::<f32>().sqrt();
    dense.iter_mut().for_each(|x| *x /= norm);
    let mut indices: Vec<u32> = (0..6).map(|_| rng.random_range(0..500)).collect();
    indices.sort_unstable();
    indices.dedup();
    let values = indices.iter().map(|_| rng.random_range(0.1f32..3.0)).collect();
    Point {
        id: uuid::Uuid::from_u128(n),
        dense,
        sparse: SparseVector { indices, values },
        payload: ChunkPayload {
            source: "test".into(),
            path: format!("doc{}.md", n / 10),
            url: format!("https://docs.example/doc{}#s{n}", n / 10),
            title: format!("Doc {n} v{version}"),
            anchor: format!("s{n}"),
            heading_path: vec![format!("Doc {}", n / 10), format!("Section {n}")],
            text: format!("section {n}, revision {version}: ünïcode and \"quotes\""),
            chunk_index: (n % 10) as u32,
            lead: false,
            content_hash: format!("c{n}-{version}"),
            doc_hash: format!("d{}", n / 10),
            meta: DocMetadata { language: Some("python".into()), difficulty_level: Some((n % 3) as i64), ..Default::default() },
        },
    }
}

/// Fields drop in order: the store before its directory.
struct Fixture {
    store: Arc<EdgeStore>,
    backups: Backups,
    dest: std::path::PathBuf,
    rng: rand::rngs::StdRng,
    _dir: tempfile::TempDir,
}

fn fixture(location: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EdgeStore::open(EdgeStoreConfig::new(dir.path().join("data"))).unwrap());
    let dest = dir.path().join("backups");
    let repo = Repository::open(location.unwrap_or(dest.to_str().unwrap()), &dir.path().join("staging")).unwrap();
    let backups = Backups::new(store.clone(), repo, BackupSettings { batch_points: 400, sample_points: 32 });
    Fixture { store, backups, dest, rng: rand::rngs::StdRng::seed_from_u64(7), _dir: dir }
}

async fn create(store: &EdgeStore, name: &str) {
    let mut properties = BTreeMap::new();
    properties.insert("embedding_model".to_owned(), "test-model".to_owned());
    store.create_collection(&CollectionSpec { name: name.into(), dims: DIMS, properties }).await.unwrap();
}

async fn all_points(store: &dyn VectorStore, collection: &str) -> Vec<Point> {
    aidocs_store::testkit::all_points(store, collection).await.unwrap()
}

/// Points compared bit for bit (f32 by bits, not by value).
fn fingerprint(points: &[Point]) -> Vec<(uuid::Uuid, Vec<u32>, Vec<u32>, Vec<u32>, String)> {
    points
        .iter()
        .map(|p| {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (p.id, bits(&p.dense), p.sparse.indices.clone(), bits(&p.sparse.values), serde_json::to_string(&p.payload).unwrap())
        })
        .collect()
}

async fn search_results(store: &dyn VectorStore, collection: &str, probes: &[Point]) -> Vec<Vec<(uuid::Uuid, u32)>> {
    let mut out = Vec::new();
    for p in probes {
        for mode in [SearchMode::Dense, SearchMode::Sparse, SearchMode::Hybrid] {
            let q = StoreQuery { mode, dense: Some(p.dense.clone()), sparse: Some(p.sparse.clone()), filter: Filter::default(), limit: 10, prefetch_limit: 50, fusion: Fusion::default() };
            out.push(store.query(collection, &q).await.unwrap().iter().map(|h| (h.id, h.score.to_bits())).collect());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_backup_delete_restore_gives_identical_points_and_search_results() {
    let mut f = fixture(None);
    create(&f.store, "docs").await;
    let pts: Vec<Point> = (0..1000).map(|n| point(&mut f.rng, n, 1)).collect();
    f.store.upsert("docs", pts.clone()).await.unwrap();
    let before = all_points(f.store.as_ref(), "docs").await;
    assert_eq!(before.len(), 1000);
    let probes: Vec<Point> = (0..10).map(|n| point(&mut f.rng, 5000 + n, 1)).collect();
    let results_before = search_results(f.store.as_ref(), "docs", &probes).await;

    let report = f.backups.create("docs", BackupKind::Full).await.unwrap();
    assert_eq!((report.points, report.records, report.kind), (1000, 1000, BackupKind::Full));
    assert!(report.archive_bytes > 0 && f.dest.join(format!("{}.tar", report.id)).exists());
    let listed = f.backups.list(Some("docs")).await.unwrap();
    assert_eq!(listed.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), [report.id.as_str()]);
    assert!(f.backups.verify(&report.id).await.unwrap().ok);

    f.store.delete_collection("docs").await.unwrap();
    let restored = f.backups.restore(&report.id, &RestoreOptions { into: Some("docs".into()), switch_alias: Some("live".into()) }, &NoValidation).await.unwrap();
    assert_eq!((restored.collection.as_str(), restored.points, restored.sampled), ("docs", 1000, 32));
    let info = f.store.collection_info("docs").await.unwrap();
    assert_eq!((info.dims, info.properties.get("embedding_model").map(String::as_str)), (DIMS, Some("test-model")), "collection config restored");
    assert_eq!(f.store.resolve("live").await.unwrap(), "docs", "alias switched after validation");
    let after = all_points(f.store.as_ref(), "docs").await;
    assert_eq!(fingerprint(&after), fingerprint(&before), "ids, vectors (bit-exact) and payloads identical");
    assert_eq!(search_results(f.store.as_ref(), "docs", &probes).await, results_before, "identical search results");

    // Restoring onto an existing collection is refused and changes nothing.
    let e = f.backups.restore(&report.id, &RestoreOptions { into: Some("docs".into()), switch_alias: None }, &NoValidation).await.unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(f.store.count("docs", &Filter::default()).await.unwrap(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_plus_two_incrementals_restore_equals_the_live_collection() {
    let mut f = fixture(None);
    create(&f.store, "docs").await;
    f.store.upsert("docs", (0..900).map(|n| point(&mut f.rng, n, 1)).collect()).await.unwrap();
    let full = f.backups.create("docs", BackupKind::Full).await.unwrap();

    // Round 1: 50 added, 30 updated, 20 deleted.
    f.store.upsert("docs", (900..950).chain(100..130).map(|n| point(&mut f.rng, n, 2)).collect()).await.unwrap();
    f.store.delete("docs", (500..520).map(uuid::Uuid::from_u128).collect()).await.unwrap();
    let inc1 = f.backups.create("docs", BackupKind::Incremental).await.unwrap();
    assert_eq!((inc1.base.as_deref(), inc1.records, inc1.deleted, inc1.points), (Some(full.id.as_str()), 80, 20, 930));

    // Round 2: a deleted id comes back, more updates and deletes.
    f.store.upsert("docs", (505..506).chain(0..10).map(|n| point(&mut f.rng, n, 3)).collect()).await.unwrap();
    f.store.delete("docs", (900..905).map(uuid::Uuid::from_u128).collect()).await.unwrap();
    let inc2 = f.backups.create("docs", BackupKind::Incremental).await.unwrap();
    assert_eq!((inc2.base.as_deref(), inc2.records, inc2.deleted, inc2.points), (Some(inc1.id.as_str()), 11, 5, 926));
    let live = all_points(f.store.as_ref(), "docs").await;

    let v = f.backups.verify(&inc2.id).await.unwrap();
    assert_eq!(v.chain, [full.id.clone(), inc1.id.clone(), inc2.id.clone()]);
    let r = f.backups.restore(&inc2.id, &RestoreOptions::default(), &NoValidation).await.unwrap();
    assert!(r.collection.starts_with("recovery_"), "{}", r.collection);
    assert_eq!(fingerprint(&all_points(f.store.as_ref(), &r.collection).await), fingerprint(&live), "restored chain equals live");

    // Retention: keep the newest one -> the whole chain it needs stays.
    let pruned = f.backups.prune(Retention { keep_last: Some(1), keep_days: None }).await.unwrap();
    assert!(pruned.deleted.is_empty(), "{pruned:?}");
    let full2 = f.backups.create("docs", BackupKind::Full).await.unwrap();
    let pruned = f.backups.prune(Retention { keep_last: Some(1), keep_days: None }).await.unwrap();
    assert_eq!(pruned.kept, [full2.id.clone()]);
    assert_eq!(pruned.deleted.len(), 3);
    assert!(!f.dest.join(format!("{}.tar", full.id)).exists());
}

/// Byte offset of member `name`'s content in a tar file.
fn member_offset(path: &Path, name: &str) -> u64 {
    let mut ar = tar::Archive::new(std::fs::File::open(path).unwrap());
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            return e.raw_file_position();
        }
    }
    panic!("no member {name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_and_truncated_archives_are_refused_naming_the_member_and_write_nothing() {
    let mut f = fixture(None);
    create(&f.store, "docs").await;
    f.store.upsert("docs", (0..1000).map(|n| point(&mut f.rng, n, 1)).collect()).await.unwrap();
    let b = f.backups.create("docs", BackupKind::Full).await.unwrap();
    let archive = f.dest.join(format!("{}.tar", b.id));
    let pristine = std::fs::read(&archive).unwrap();
    let collections = || async { f.store.list_collections().await.unwrap().len() };
    let before = collections().await;

    let mut flipped = pristine.clone();
    let at = member_offset(&archive, "batches/000001.zst") as usize + 100;
    flipped[at] ^= 0x40;
    std::fs::write(&archive, &flipped).unwrap();
    for e in [
        f.backups.verify(&b.id).await.unwrap_err(),
        f.backups.restore(&b.id, &RestoreOptions::default(), &NoValidation).await.unwrap_err(),
    ] {
        assert!(matches!(&e, BackupError::Corrupt { member: Some(m), .. } if m == "batches/000001.zst"), "{e}");
        assert!(e.to_string().contains("batches/000001.zst"), "{e}");
    }
    assert_eq!(collections().await, before, "nothing written");

    std::fs::write(&archive, &pristine[..pristine.len() / 2]).unwrap();
    for e in [
        f.backups.verify(&b.id).await.unwrap_err(),
        f.backups.restore(&b.id, &RestoreOptions::default(), &NoValidation).await.unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(msg.contains("truncated") && msg.contains("in member "), "{msg}");
    }
    assert_eq!(collections().await, before, "nothing written");
    std::fs::write(&archive, &pristine).unwrap();
    assert!(f.backups.verify(&b.id).await.unwrap().ok, "the pristine archive still verifies");
}

/// Write an archive with arbitrary members (and a matching manifest and catalog entry, so
/// only the content itself is hostile).
fn forge(dest: &Path, id: &str, members: &[(&str, Vec<u8>)]) {
    let mut table = BTreeMap::new();
    for (name, data) in members {
        table.insert(name.to_string(), MemberDigest { bytes: data.len() as u64, sha256: format::sha256_hex(data) });
    }
    let manifest = Manifest {
        format: format::FORMAT.into(),
        format_version: 1,
        aidocs_version: "test".into(),
        id: id.into(),
        kind: BackupKind::Full,
        base: None,
        collection: "docs".into(),
        source_collection: "docs".into(),
        created_at: chrono::Utc::now(),
        config: CollectionConfig { dims: DIMS, properties: BTreeMap::new() },
        points: 1,
        records: 1,
        deleted: 0,
        raw_bytes: 0,
        members: table,
    };
    let json = serde_json::to_vec(&manifest).unwrap();
    let path = dest.join(format!("{id}.tar"));
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (name, data) in members.iter().map(|(n, d)| (*n, d.as_slice())).chain([("manifest.json", json.as_slice())]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // Raw name bytes: tar's own path checks would refuse `..`, a hostile writer does not.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.finish().unwrap();
    drop(b);
    let bytes = std::fs::read(&path).unwrap();
    let entry = CatalogEntry { manifest, archive: aidocs_backup::archive::ArchiveDigest { bytes: bytes.len() as u64, sha256: format::sha256_hex(&bytes) } };
    std::fs::write(dest.join(format!("{id}.json")), serde_json::to_vec(&entry).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_and_oversized_lengths_are_rejected() {
    let mut f = fixture(None);
    let p = point(&mut f.rng, 1, 1);
    let mut good = Vec::new();
    let mut index = BTreeMap::new();
    index.insert(p.id, format::encode_point(&p, &mut good));

    forge(&f.dest, "evil-traversal", &[("../../etc/cron.d/evil", b"* * * * * root rm -rf /".to_vec()), ("index.zst", format::encode_index(&index))]);
    let e = f.backups.verify("evil-traversal").await.unwrap_err().to_string();
    assert!(e.contains("../../etc/cron.d/evil") && e.contains("path traversal"), "{e}");

    let mut huge = good.clone();
    huge[..4].copy_from_slice(&(u32::MAX - 1).to_le_bytes());
    forge(&f.dest, "evil-length", &[("batches/000000.zst", format::compress(&huge)), ("index.zst", format::encode_index(&index))]);
    let e = f.backups.verify("evil-length").await.unwrap_err().to_string();
    assert!(e.contains("batches/000000.zst") && e.contains("over the"), "{e}");
    let e = f.backups.restore("evil-length", &RestoreOptions::default(), &NoValidation).await.unwrap_err().to_string();
    assert!(e.contains("over the"), "{e}");
    assert!(f.store.list_collections().await.unwrap().is_empty(), "nothing written");
    // Ids that are not plain names never reach a path.
    assert!(matches!(f.backups.verify("../x").await, Err(BackupError::Invalid(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_destination_round_trips_through_downloads() {
    // `memory://` is object_store's in-memory store: archives are uploaded in parts and
    // downloaded as streams, the path a remote bucket takes.
    let mut f = fixture(Some("memory:///backups"));
    create(&f.store, "docs").await;
    f.store.upsert("docs", (0..700).map(|n| point(&mut f.rng, n, 1)).collect()).await.unwrap();
    let before = all_points(f.store.as_ref(), "docs").await;
    let b = f.backups.create("docs", BackupKind::Full).await.unwrap();
    let drill = f.backups.drill(Some("docs"), &NoValidation).await.unwrap();
    assert!(drill.passed && drill.cleaned_up && drill.restore.points == 700, "{drill:?}");
    assert_eq!(f.store.list_collections().await.unwrap().len(), 1, "the drill removed its collection");
    let r = f.backups.restore(&b.id, &RestoreOptions::default(), &NoValidation).await.unwrap();
    assert_eq!(fingerprint(&all_points(f.store.as_ref(), &r.collection).await), fingerprint(&before));
    let e = f.backups.create("missing", BackupKind::Full).await.unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
    let e = f.backups.create("docs2", BackupKind::Incremental).await.unwrap_err().to_string();
    assert!(e.contains("docs2"), "{e}");
}

const CHILD_DIR: &str = "AIDOCS_BACKUP_TEST_CHILD_DIR";

/// The child half of `killing_a_backup_leaves_nothing_listed`: runs only when the parent
/// re-executes this test binary with `CHILD_DIR` set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_backup_to_be_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let dir = Path::new(&dir);
    let store = Arc::new(EdgeStore::open(EdgeStoreConfig::new(dir.join("data"))).unwrap());
    create(&store, "docs").await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    store.upsert("docs", (0..4000).map(|n| point(&mut rng, n, 1)).collect()).await.unwrap();
    let repo = Repository::open(dir.join("backups").to_str().unwrap(), &dir.join("staging")).unwrap();
    // Slow full scans: a big collection, in effect, so the backup is surely still running
    // when the parent kills it.
    let slow = aidocs_store::testkit::FaultyStore::new(store);
    slow.faults.slow_scans(std::time::Duration::from_millis(25));
    let backups = Backups::new(Arc::new(slow), repo, BackupSettings { batch_points: 10, sample_points: 8 });
    backups.create("docs", BackupKind::Full).await.unwrap();
    panic!("the parent should have killed this backup before it finished");
}

#[test]
fn killing_a_backup_leaves_nothing_listed_and_no_file_at_the_final_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_backup_to_be_killed", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the archive is being written (a partial file in staging with data in it).
    let staging = dir.path().join("staging");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let partial = loop {
        assert!(std::time::Instant::now() < deadline, "the child never started writing");
        assert!(child.try_wait().unwrap().is_none(), "the child exited before it was killed");
        let found = std::fs::read_dir(&staging).ok().and_then(|d| {
            d.filter_map(|e| e.ok()).find(|e| e.file_name().to_string_lossy().ends_with(".tar.partial") && e.metadata().is_ok_and(|m| m.len() > 0))
        });
        if let Some(e) = found {
            break e.path();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(partial.exists(), "the partial archive stays in staging, under its temporary name");
    let dest = dir.path().join("backups");
    let finals: Vec<_> = std::fs::read_dir(&dest).map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    assert!(finals.iter().all(|n| !n.ends_with(".tar") && !n.ends_with(".json")), "nothing at a final name: {finals:?}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Arc::new(EdgeStore::open(EdgeStoreConfig::new(dir.path().join("data"))).unwrap());
        let repo = Repository::open(dest.to_str().unwrap(), &staging).unwrap();
        let backups = Backups::new(store.clone(), repo, BackupSettings::default());
        assert!(backups.list(None).await.unwrap().is_empty(), "an interrupted backup is never listed");
        // The data survived and the next backup works.
        assert_eq!(store.count("docs", &Filter::default()).await.unwrap(), 4000);
        let b = backups.create("docs", BackupKind::Full).await.unwrap();
        assert_eq!(backups.list(None).await.unwrap().len(), 1);
        assert!(backups.verify(&b.id).await.unwrap().ok);
    });
}

/// Prune used to delete any archive without a catalog entry at once, including one whose
/// publish was in progress (the archive goes up first, its catalog entry last). Now such an
/// archive is kept for a grace period; older debris is still removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_keeps_an_archive_being_published() {
    let mut f = fixture(None);
    create(&f.store, "docs").await;
    f.store.upsert("docs", (0..50).map(|n| point(&mut f.rng, n, 1)).collect()).await.unwrap();
    let done = f.backups.create("docs", BackupKind::Full).await.unwrap();
    // An in-flight publish: the archive is there, its catalog entry not yet.
    let in_flight = f.dest.join("20990101T000000Z-docs-full.tar");
    std::fs::copy(f.dest.join(format!("{}.tar", done.id)), &in_flight).unwrap();
    let pruned = f.backups.prune(Retention::default()).await.unwrap();
    assert!(pruned.orphans_removed.is_empty(), "{pruned:?}");
    assert_eq!(pruned.orphans_kept, ["20990101T000000Z-docs-full"]);
    assert!(in_flight.is_file(), "an archive being published survives prune");
    // Past the grace period it is debris.
    let f = Fixture { backups: f.backups.with_orphan_grace(std::time::Duration::from_secs(3600)), ..f };
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&in_flight).unwrap().set_modified(old).unwrap();
    let pruned = f.backups.prune(Retention::default()).await.unwrap();
    assert_eq!(pruned.orphans_removed, ["20990101T000000Z-docs-full"]);
    assert!(!in_flight.exists());
    assert!(f.dest.join(format!("{}.tar", done.id)).is_file(), "the published backup is untouched");
}

/// A restore whose alias switch fails (here: the alias name is taken by a collection) used
/// to leave its `recovery_*` collection behind. Every failure path cleans up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_alias_switch_leaves_no_recovery_collection() {
    let mut f = fixture(None);
    create(&f.store, "docs").await;
    f.store.upsert("docs", (0..30).map(|n| point(&mut f.rng, n, 1)).collect()).await.unwrap();
    let b = f.backups.create("docs", BackupKind::Full).await.unwrap();
    let opts = RestoreOptions { into: None, switch_alias: Some("docs".into()) };
    let err = f.backups.restore(&b.id, &opts, &NoValidation).await.unwrap_err();
    assert!(err.to_string().contains("docs"), "{err}");
    let names: Vec<String> = f.store.list_collections().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["docs"], "no recovery_* collection is left behind");
}
