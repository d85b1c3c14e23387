//! Writing and reading one archive file (blocking I/O; callers run it off the async runtime).

use crate::BackupError;
use crate::format::{
    self, MAX_MEMBER_BYTES, Manifest, MemberDigest, MemberKind, PointHash, batch_name, compress, member_kind,
};
use aidocs_core::Point;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Hashes and counts every byte written through it.
struct HashingWriter<W> {
    inner: W,
    sha: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes and counts every byte read through it.
struct HashingReader<R> {
    inner: R,
    sha: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The whole archive file's identity, recorded beside it in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArchiveDigest {
    pub bytes: u64,
    pub sha256: String,
}

/// Streams a new archive to a file: batches, then `finish` with the manifest.
pub struct ArchiveWriter {
    builder: tar::Builder<HashingWriter<BufWriter<File>>>,
    members: BTreeMap<String, MemberDigest>,
    batches: usize,
    records: u64,
    raw_bytes: u64,
    mtime: u64,
}

impl ArchiveWriter {
    pub fn create(path: &Path, created_at: chrono::DateTime<chrono::Utc>) -> io::Result<Self> {
        let file = File::create(path)?;
        let out = HashingWriter { inner: BufWriter::with_capacity(256 << 10, file), sha: Sha256::new(), bytes: 0 };
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        Ok(Self { builder, members: BTreeMap::new(), batches: 0, records: 0, raw_bytes: 0, mtime: created_at.timestamp().max(0) as u64 })
    }

    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        self.builder.append_data(&mut header, name, data)?;
        if name != format::MANIFEST {
            self.members.insert(name.to_owned(), MemberDigest { bytes: data.len() as u64, sha256: format::sha256_hex(data) });
        }
        Ok(())
    }

    /// Append one batch of points, recording each point's hash in `index`. With `base` (an
    /// incremental), points whose hash equals the base's are indexed but not written.
    pub fn add_batch(
        &mut self,
        points: &[Point],
        index: &mut BTreeMap<uuid::Uuid, PointHash>,
        base: Option<&BTreeMap<uuid::Uuid, PointHash>>,
    ) -> io::Result<()> {
        let mut raw = Vec::with_capacity(points.len() * 2048);
        let mut written = 0;
        for p in points {
            let start = raw.len();
            let hash = format::encode_point(p, &mut raw);
            if base.is_some_and(|b| b.get(&p.id) == Some(&hash)) {
                raw.truncate(start);
            } else {
                written += 1;
            }
            index.insert(p.id, hash);
        }
        if written == 0 {
            return Ok(());
        }
        self.records += written;
        self.raw_bytes += raw.len() as u64;
        let name = batch_name(self.batches);
        self.batches += 1;
        self.append(&name, &compress(&raw))
    }

    /// Finish: the deleted ids (incrementals), the index, then the manifest, whose member
    /// table, record count and raw size are filled in here. The file is synced to disk.
    pub fn finish(
        mut self,
        mut manifest: Manifest,
        deleted: Option<&[uuid::Uuid]>,
        index: &BTreeMap<uuid::Uuid, PointHash>,
    ) -> io::Result<(Manifest, ArchiveDigest)> {
        if let Some(ids) = deleted {
            self.append(format::DELETED, &format::encode_ids(ids))?;
            manifest.deleted = ids.len() as u64;
        }
        self.append(format::INDEX, &format::encode_index(index))?;
        manifest.members = std::mem::take(&mut self.members);
        manifest.records = self.records;
        manifest.raw_bytes = self.raw_bytes;
        let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        self.append(format::MANIFEST, &json)?;
        let mut out = self.builder.into_inner()?;
        out.flush()?;
        let digest = ArchiveDigest { bytes: out.bytes, sha256: hex::encode(out.sha.finalize_reset()) };
        let file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((manifest, digest))
    }
}

/// What a reader hands its visitor: one member, already checked against the size limit and
/// the name table, content fully read.
pub struct Member<'a> {
    pub name: &'a str,
    pub kind: MemberKind,
    pub data: &'a [u8],
}

/// Read a whole archive, checking every member name, size and sha256 against the manifest
/// and the whole file against `expect` (when the catalog knows it). `visit` sees each
/// non-manifest member in archive order; an `Err(detail)` from it aborts the read with that
/// member named. Nothing is trusted until this returns `Ok`.
pub fn read_archive(
    path: &Path,
    backup: &str,
    expect: Option<&ArchiveDigest>,
    mut visit: impl FnMut(Member<'_>) -> Result<(), String>,
) -> Result<Manifest, BackupError> {
    let corrupt = |member: Option<&str>, detail: String| BackupError::Corrupt { backup: backup.to_owned(), member: member.map(str::to_owned), detail };
    let file = File::open(path).map_err(|e| BackupError::io(path, e))?;
    let mut reader = HashingReader { inner: BufReader::with_capacity(1 << 20, file), sha: Sha256::new(), bytes: 0 };
    let mut seen: BTreeMap<String, MemberDigest> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    let mut last: Option<String> = None;
    {
        let mut archive = tar::Archive::new(&mut reader);
        let entries = archive.entries().map_err(|e| corrupt(None, format!("not a tar archive: {e}")))?;
        for entry in entries {
            let after = || last.as_deref().map_or("at the start".to_owned(), |l| format!("after member {l}"));
            let mut entry = entry.map_err(|e| corrupt(last.as_deref(), format!("archive header unreadable {}: {e}", after())))?;
            let raw_name = entry.path_bytes().into_owned();
            let name = String::from_utf8(raw_name).map_err(|_| corrupt(None, format!("a member name is not UTF-8 ({})", after())))?;
            let Some(kind) = member_kind(&name) else {
                return Err(corrupt(Some(&name), "not a member of the aidocs archive format (unexpected name or path traversal); refusing the archive".into()));
            };
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(corrupt(Some(&name), format!("is a {:?} entry, not a regular file", entry.header().entry_type())));
            }
            let declared = entry.header().size().map_err(|e| corrupt(Some(&name), format!("bad size field: {e}")))?;
            if declared > MAX_MEMBER_BYTES {
                return Err(corrupt(Some(&name), format!("declares {declared} bytes, over the {MAX_MEMBER_BYTES}-byte limit")));
            }
            if manifest.is_some() || seen.contains_key(&name) {
                return Err(corrupt(Some(&name), "appears after the manifest or twice".into()));
            }
            // Grown as bytes arrive, never preallocated at the declared size: a header may
            // declare 1 GiB in a file of a few bytes.
            let mut data = Vec::with_capacity(declared.min(1 << 20) as usize);
            (&mut entry).take(declared).read_to_end(&mut data).map_err(|e| corrupt(Some(&name), format!("read failed: {e}")))?;
            if (data.len() as u64) < declared {
                return Err(corrupt(Some(&name), format!("archive truncated: {} of {declared} bytes present", data.len())));
            }
            if kind == MemberKind::Manifest {
                let m: Manifest = serde_json::from_slice(&data).map_err(|e| corrupt(Some(&name), format!("not a valid manifest: {e}")))?;
                m.check()?;
                manifest = Some(m);
            } else {
                let digest = MemberDigest { bytes: declared, sha256: format::sha256_hex(&data) };
                visit(Member { name: &name, kind, data: &data }).map_err(|d| corrupt(Some(&name), d))?;
                seen.insert(name.clone(), digest);
            }
            last = Some(name);
        }
    }
    let Some(manifest) = manifest else {
        return Err(corrupt(Some(format::MANIFEST), format!("missing: archive truncated {}", last.map_or("before any member".into(), |l| format!("after member {l}")))));
    };
    for (name, want) in &manifest.members {
        match seen.get(name) {
            None => return Err(corrupt(Some(name), "listed in the manifest but missing from the archive".into())),
            Some(got) if got != want => {
                return Err(corrupt(Some(name), format!("sha256 mismatch: manifest says {} ({} bytes), content is {} ({} bytes)", want.sha256, want.bytes, got.sha256, got.bytes)));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.keys().find(|n| !manifest.members.contains_key(*n)) {
        return Err(corrupt(Some(extra), "present in the archive but not listed in the manifest".into()));
    }
    io::copy(&mut reader, &mut io::sink()).map_err(|e| BackupError::io(path, e))?;
    if let Some(want) = expect {
        let got = hex::encode(reader.sha.finalize_reset());
        if reader.bytes != want.bytes || got != want.sha256 {
            return Err(corrupt(None, format!("archive file is {} bytes with sha256 {got}; the catalog recorded {} bytes with sha256 {}", reader.bytes, want.bytes, want.sha256)));
        }
    }
    Ok(manifest)
}
