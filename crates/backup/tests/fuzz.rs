//! Property-based fuzzing of the backup archive reader: real archives with flipped bytes,
//! cut short, or with members spliced in, and arbitrary bytes. Invariants: nothing panics,
//! a damaged archive is refused as corrupt (never read as a different backup), a pristine
//! one still reads.

use aidocs_backup::archive::{ArchiveWriter, read_archive};
use aidocs_backup::format::{self, BackupKind, CollectionConfig, Manifest};
use aidocs_core::{ChunkPayload, Point, SparseVector};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn point(n: u128) -> Point {
    Point {
        id: uuid::Uuid::from_u128(n),
        dense: vec![0.25, -0.5, n as f32, 1.0],
        sparse: SparseVector { indices: vec![1, 7], values: vec![0.5, 2.0] },
        payload: ChunkPayload { source: format!("s{n}"), text: format!("chunk {n}"), ..Default::default() },
    }
}

/// One real archive, written once.
fn pristine() -> &'static Vec<u8> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut w = ArchiveWriter::create(&path, chrono::Utc::now()).unwrap();
        let mut index = BTreeMap::new();
        for b in 0..3u128 {
            w.add_batch(&(b * 10..b * 10 + 10).map(point).collect::<Vec<_>>(), &mut index, None).unwrap();
        }
        let manifest = Manifest {
            format: format::FORMAT.into(),
            format_version: format::FORMAT_VERSION,
            aidocs_version: "fuzz".into(),
            id: "fuzz-backup".into(),
            kind: BackupKind::Full,
            base: None,
            collection: "docs".into(),
            source_collection: "docs".into(),
            created_at: chrono::Utc::now(),
            config: CollectionConfig { dims: 4, properties: BTreeMap::new() },
            points: 30,
            records: 0,
            deleted: 0,
            raw_bytes: 0,
            members: BTreeMap::new(),
        };
        w.finish(manifest, None, &index).unwrap();
        std::fs::read(&path).unwrap()
    })
}

fn read(bytes: &[u8]) -> Result<usize, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    std::fs::write(&path, bytes).unwrap();
    let mut points = 0;
    read_archive(&path, "fuzz-backup", None, |m| {
        if m.kind == format::MemberKind::Batch {
            points += format::decode_batch(&format::decompress(m.data, format::MAX_BATCH_BYTES)?)?.len();
        }
        Ok(())
    })
    .map(|_| points)
    .map_err(|e| e.to_string())
}

proptest! {
    #[test]
    fn damaged_archives_are_refused(flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8), cut in any::<Option<prop::sample::Index>>()) {
        let mut bytes = pristine().clone();
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        // Flips in tar padding or unused header bytes are harmless; anything else is refused.
        if let Ok(n) = read(&bytes) {
            prop_assert_eq!(n, 30, "read as the same backup or not at all");
        }
    }

    #[test]
    fn arbitrary_bytes_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(read(&bytes).is_err());
    }
}

#[test]
fn the_pristine_archive_reads() {
    assert_eq!(read(pristine()), Ok(30));
}
