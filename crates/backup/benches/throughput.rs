//! Backup and restore throughput at 100k chunks (384-d dense + sparse + a ~700-byte
//! payload, like real chunks), against a baseline measured in the same run: a plain copy
//! of the store's files (what a file-level backup of the data dir costs). Runs once (each
//! phase takes seconds); `AIDOCS_BENCH_POINTS` changes the size.
//!
//! `cargo bench --workspace --bench backup`

use aidocs_benchkit::{Report, Table};
use aidocs_backup::{BackupKind, BackupSettings, Backups, NoValidation, Repository, RestoreOptions};
use aidocs_core::{ChunkPayload, CollectionSpec, DocMetadata, Point, SparseVector, VectorStore};
use aidocs_store::{EdgeStore, EdgeStoreConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const DIMS: usize = 384;

fn point(rng: &mut StdRng, n: u64) -> Point {
    let dense = aidocs_benchkit::random_unit(rng, DIMS);
    let mut indices: Vec<u32> = (0..40).map(|_| rng.random_range(0..30_000)).collect();
    indices.sort_unstable();
    indices.dedup();
    let values = indices.iter().map(|_| rng.random_range(0.2f32..4.0)).collect();
    let words = ["tokio", "runtime", "spawn", "future", "serde", "derive", "async", "trait", "buffer", "socket"];
    let text: Vec<&str> = (0..100).map(|_| words[rng.random_range(0..words.len())]).collect();
    Point {
        id: uuid::Uuid::from_u64_pair(0, n),
        dense,
        sparse: SparseVector { indices, values },
        payload: ChunkPayload {
            source: "bench".into(),
            path: format!("guide/page{}.html", n / 20),
            url: format!("https://docs.example/guide/page{}.html#s{n}", n / 20),
            title: format!("Page {}", n / 20),
            anchor: format!("s{n}"),
            heading_path: vec![format!("Page {}", n / 20), format!("Section {n}")],
            text: text.join(" "),
            chunk_index: (n % 20) as u32,
            lead: false,
            content_hash: format!("{n:064x}"),
            doc_hash: format!("{:064x}", n / 20),
            meta: DocMetadata { language: Some("rust".into()), doc_type: Some("guide".into()), ..Default::default() },
        },
    }
}

fn copy_dir(from: &Path, to: &Path) -> u64 {
    std::fs::create_dir_all(to).unwrap();
    let mut bytes = 0;
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            bytes += copy_dir(&e.path(), &t);
        } else if e.file_name() != "LOCK" {
            bytes += std::fs::copy(e.path(), &t).unwrap();
        }
    }
    bytes
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here
    }
    let n = aidocs_benchkit::bench_points(100_000) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EdgeStore::open(EdgeStoreConfig::new(dir.path().join("data"))).unwrap());
        store.create_collection(&CollectionSpec { name: "docs".into(), dims: DIMS, properties: Default::default() }).await.unwrap();
        let mut rng = StdRng::seed_from_u64(42);
        let load = Instant::now();
        for start in (0..n).step_by(2000) {
            let batch: Vec<Point> = (start..(start + 2000).min(n)).map(|i| point(&mut rng, i)).collect();
            store.upsert("docs", batch).await.unwrap();
        }
        eprintln!("loaded {n} points in {:.1} s", load.elapsed().as_secs_f64());

        let t = Instant::now();
        let copied = copy_dir(&dir.path().join("data"), &dir.path().join("copy"));
        let copy_s = t.elapsed().as_secs_f64();

        let repo = Repository::open(dir.path().join("backups").to_str().unwrap(), &dir.path().join("staging")).unwrap();
        let backups = Backups::new(store.clone(), repo, BackupSettings::default());
        let t = Instant::now();
        let b = backups.create("docs", BackupKind::Full).await.unwrap();
        let backup_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        backups.verify(&b.id).await.unwrap();
        let verify_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let r = backups.restore(&b.id, &RestoreOptions { into: Some("restored".into()), switch_alias: None }, &NoValidation).await.unwrap();
        let restore_s = t.elapsed().as_secs_f64();
        assert_eq!(r.points, n);

        let mb = |bytes: u64| bytes as f64 / 1e6;
        let mut report = Report::new("backup", "Backup and restore");
        report.note(format!(
            "{n} points like real chunks (384-d dense, ~40 sparse terms, ~700-byte payload) in the embedded \
             store, backed up to a local directory. The baseline is a plain copy of the store's files \
             ({:.0} MB, a file-level backup of the data dir, mostly from the page cache). A backup holds \
             {:.0} MB of records in a {:.0} MB archive. The restore's load alone took {:.2} s.",
            mb(copied),
            mb(b.raw_bytes),
            mb(b.archive_bytes),
            r.restore_ms as f64 / 1000.0
        ));
        let mut t = Table::new("", &[("s", 2), ("points/s", 0), ("MB/s", 0)]).ratio_of(0);
        t.values("copy the store's files (MB/s on disk)", &[copy_s, n as f64 / copy_s, mb(copied) / copy_s]);
        t.values("backup create (MB/s of records)", &[backup_s, n as f64 / backup_s, mb(b.raw_bytes) / backup_s]);
        t.values("backup verify: every member's sha256, every record decoded (MB/s of archive)", &[verify_s, n as f64 / verify_s, mb(b.archive_bytes) / verify_s]);
        t.values("restore: verify + load + count + sampled bit-exact check (MB/s of records)", &[restore_s, n as f64 / restore_s, mb(b.raw_bytes) / restore_s]);
        report.table(t);
        report.finish().unwrap();
    });
}
