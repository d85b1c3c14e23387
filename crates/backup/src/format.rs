//! The portable archive format, version 1.
//!
//! A backup is one uncompressed tar archive (`<id>.tar`) whose members are, in this order:
//!
//! | member               | content (each `.zst` member is one zstd frame)                    |
//! |----------------------|-------------------------------------------------------------------|
//! | `batches/NNNNNN.zst` | length-prefixed point records (below), ascending id               |
//! | `deleted.zst`        | incrementals only: 16-byte ids deleted since the base             |
//! | `index.zst`          | every point of the collection: 16-byte id + 16-byte content hash  |
//! | `manifest.json`      | [`Manifest`]: config, counts and the sha256 of every other member |
//!
//! A point record is `u32 length` + body, little-endian throughout:
//! `id[16] | u32 dims | f32 × dims | u32 nnz | u32 × nnz | f32 × nnz | u32 n | payload JSON[n]`.
//! The content hash of a point is the first 16 bytes of the sha256 of its body, so a backup
//! of the same point on any backend gives the same hash.
//!
//! Readers reject any other member name (no paths, no links), any member over
//! [`MAX_MEMBER_BYTES`], any decompressed batch over [`MAX_BATCH_BYTES`] and any record
//! whose declared length is over [`MAX_RECORD_BYTES`].

use crate::BackupError;
use aidocs_core::{Point, SparseVector};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const FORMAT: &str = "aidocs-backup";
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const INDEX: &str = "index.zst";
pub const DELETED: &str = "deleted.zst";
/// The largest archive member a reader accepts.
pub const MAX_MEMBER_BYTES: u64 = 1 << 30;
/// The largest decompressed batch a reader accepts.
pub const MAX_BATCH_BYTES: u64 = 512 << 20;
/// The most a member may inflate: decompressed bytes per compressed byte. Real batches
/// (float vectors, ids, hashes, JSON payloads) compress 1.2-10x; a zstd bomb compresses
/// thousands of times. Decompression stops at this ratio (plus [`INFLATE_SLACK`]).
pub const MAX_INFLATE_RATIO: u64 = 256;
/// Decompressed bytes always allowed, whatever the ratio (tiny members).
pub const INFLATE_SLACK: u64 = 1 << 20;
/// The largest single point record a reader accepts.
pub const MAX_RECORD_BYTES: u32 = 16 << 20;
/// zstd level for batches: level 3 is zstd's default speed/ratio trade.
pub const ZSTD_LEVEL: i32 = 3;

/// Full backups hold every point; incrementals hold what changed since their base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    Full,
    Incremental,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
        }
    }
}

impl std::str::FromStr for BackupKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Self::Full),
            "incremental" | "incr" => Ok(Self::Incremental),
            other => Err(format!("unknown backup type `{other}` (expected full or incremental)")),
        }
    }
}

/// What a collection needs to be re-created: vector size and the properties that record the
/// embedding model which built it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionConfig {
    pub dims: usize,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// One archive member's size and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDigest {
    pub bytes: u64,
    pub sha256: String,
}

/// The archive's table of contents (the last member).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub aidocs_version: String,
    pub id: String,
    pub kind: BackupKind,
    /// The backup this incremental applies on top of (full or incremental).
    pub base: Option<String>,
    /// The collection or alias the backup was asked for.
    pub collection: String,
    /// The collection it resolved to at backup time.
    pub source_collection: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub config: CollectionConfig,
    /// Points in the collection at backup time (what a restore of this backup must hold).
    pub points: u64,
    /// Point records in this archive.
    pub records: u64,
    /// Ids deleted since the base (incrementals).
    pub deleted: u64,
    /// Uncompressed size of the point records.
    pub raw_bytes: u64,
    /// Every member except the manifest itself.
    pub members: BTreeMap<String, MemberDigest>,
}

/// A point's content hash (see the module docs).
pub type PointHash = [u8; 16];

/// Name of batch member `n`.
pub fn batch_name(n: usize) -> String {
    format!("batches/{n:06}.zst")
}

/// Which member a name is; anything else is refused before its content is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    Batch,
    Deleted,
    Index,
    Manifest,
}

pub fn member_kind(name: &str) -> Option<MemberKind> {
    match name {
        MANIFEST => Some(MemberKind::Manifest),
        INDEX => Some(MemberKind::Index),
        DELETED => Some(MemberKind::Deleted),
        _ => {
            let digits = name.strip_prefix("batches/")?.strip_suffix(".zst")?;
            (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(MemberKind::Batch)
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Append `p` as one length-prefixed record to `out`; returns its content hash.
pub fn encode_point(p: &Point, out: &mut Vec<u8>) -> PointHash {
    let payload = serde_json::to_vec(&p.payload).expect("payloads serialise");
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(p.id.as_bytes());
    out.extend_from_slice(&(p.dense.len() as u32).to_le_bytes());
    for x in &p.dense {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(&(p.sparse.indices.len() as u32).to_le_bytes());
    for i in &p.sparse.indices {
        out.extend_from_slice(&i.to_le_bytes());
    }
    for v in &p.sparse.values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    hash_body(&out[start + 4..])
}

fn hash_body(body: &[u8]) -> PointHash {
    let d = Sha256::digest(body);
    let mut h = [0; 16];
    h.copy_from_slice(&d[..16]);
    h
}

/// The content hash `encode_point` would give.
pub fn point_hash(p: &Point) -> PointHash {
    let mut buf = Vec::new();
    encode_point(p, &mut buf)
}

/// A little-endian cursor that names what ran out.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| format!("record ends inside {what}"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>, String> {
        Ok(self.take(n.checked_mul(4).ok_or("length overflow")?, what)?.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
    }
}

fn decode_body(body: &[u8]) -> Result<Point, String> {
    let mut c = Cursor { buf: body, at: 0 };
    let id = uuid::Uuid::from_slice(c.take(16, "the id")?).unwrap();
    let dims = c.u32("the dense length")? as usize;
    let dense = c.f32s(dims, "the dense vector")?;
    let nnz = c.u32("the sparse length")? as usize;
    let indices = c.take(nnz.checked_mul(4).ok_or("length overflow")?, "the sparse indices")?.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect();
    let values = c.f32s(nnz, "the sparse values")?;
    let n = c.u32("the payload length")? as usize;
    let payload = serde_json::from_slice(c.take(n, "the payload")?).map_err(|e| format!("payload of {id} is not valid: {e}"))?;
    if c.at != body.len() {
        return Err(format!("{} stray bytes after point {id}", body.len() - c.at));
    }
    Ok(Point { id, dense, sparse: SparseVector { indices, values }, payload })
}

/// Decode the records of a decompressed batch, with each point's content hash.
pub fn decode_batch(raw: &[u8]) -> Result<Vec<(Point, PointHash)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let n = out.len();
        let len_bytes = raw.get(at..at + 4).ok_or_else(|| format!("record {n}: length prefix cut short"))?;
        let len = u32::from_le_bytes(len_bytes.try_into().unwrap());
        if len > MAX_RECORD_BYTES {
            return Err(format!("record {n} declares {len} bytes, over the {MAX_RECORD_BYTES}-byte limit"));
        }
        let body = raw.get(at + 4..at + 4 + len as usize).ok_or_else(|| format!("record {n} declares {len} bytes but the batch ends first"))?;
        let point = decode_body(body).map_err(|e| format!("record {n}: {e}"))?;
        out.push((point, hash_body(body)));
        at += 4 + len as usize;
    }
    Ok(out)
}

/// zstd-compress a member.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(raw, ZSTD_LEVEL).expect("zstd compression of an in-memory buffer")
}

/// Decompress a member, refusing to inflate past `limit` bytes or past
/// [`MAX_INFLATE_RATIO`] times its compressed size, whichever is less: an 18 KB bomb stops
/// at a few MB instead of allocating the full `limit`.
pub fn decompress(member: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let by_ratio = (member.len() as u64).saturating_mul(MAX_INFLATE_RATIO).saturating_add(INFLATE_SLACK);
    let limit = limit.min(by_ratio);
    let mut out = Vec::new();
    let decoder = zstd::stream::read::Decoder::new(member).map_err(|e| format!("zstd: {e}"))?;
    decoder.take(limit + 1).read_to_end(&mut out).map_err(|e| format!("zstd: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("decompresses to more than the {limit}-byte limit"));
    }
    Ok(out)
}

/// Encode the index (sorted by id).
pub fn encode_index(index: &BTreeMap<uuid::Uuid, PointHash>) -> Vec<u8> {
    let mut raw = Vec::with_capacity(index.len() * 32);
    for (id, h) in index {
        raw.extend_from_slice(id.as_bytes());
        raw.extend_from_slice(h);
    }
    compress(&raw)
}

pub fn decode_index(member: &[u8]) -> Result<BTreeMap<uuid::Uuid, PointHash>, String> {
    let raw = decompress(member, MAX_BATCH_BYTES)?;
    if raw.len() % 32 != 0 {
        return Err(format!("index length {} is not a multiple of 32", raw.len()));
    }
    Ok(raw.chunks_exact(32).map(|c| (uuid::Uuid::from_slice(&c[..16]).unwrap(), c[16..].try_into().unwrap())).collect())
}

pub fn encode_ids(ids: &[uuid::Uuid]) -> Vec<u8> {
    compress(&ids.iter().flat_map(|i| *i.as_bytes()).collect::<Vec<u8>>())
}

pub fn decode_ids(member: &[u8]) -> Result<Vec<uuid::Uuid>, String> {
    let raw = decompress(member, MAX_BATCH_BYTES)?;
    if raw.len() % 16 != 0 {
        return Err(format!("id list length {} is not a multiple of 16", raw.len()));
    }
    Ok(raw.chunks_exact(16).map(|c| uuid::Uuid::from_slice(c).unwrap()).collect())
}

impl Manifest {
    /// Check the fixed fields a reader depends on.
    pub fn check(&self) -> Result<(), BackupError> {
        let bad = |detail: String| BackupError::Corrupt { backup: self.id.clone(), member: Some(MANIFEST.into()), detail };
        if self.format != FORMAT {
            return Err(bad(format!("format is `{}`, not `{FORMAT}`", self.format)));
        }
        if self.format_version > FORMAT_VERSION {
            return Err(bad(format!("format version {} is newer than this aidocs reads ({FORMAT_VERSION}); upgrade aidocs", self.format_version)));
        }
        if (self.kind == BackupKind::Incremental) != self.base.is_some() {
            return Err(bad("an incremental needs a base and a full backup has none".into()));
        }
        if let Some(name) = self.members.keys().find(|n| member_kind(n).is_none_or(|k| k == MemberKind::Manifest)) {
            return Err(bad(format!("lists an invalid member name `{name}`")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aidocs_core::ChunkPayload;

    fn pt(n: u128) -> Point {
        Point {
            id: uuid::Uuid::from_u128(n),
            dense: vec![0.5, -0.25, f32::MIN_POSITIVE, 1.0e-30],
            sparse: SparseVector { indices: vec![1, 7], values: vec![0.5, 2.0] },
            payload: ChunkPayload { title: format!("t{n}"), text: "ünïcode".into(), ..Default::default() },
        }
    }

    #[test]
    fn records_round_trip_bit_exact_with_stable_hashes() {
        let mut raw = Vec::new();
        let h1 = encode_point(&pt(1), &mut raw);
        let h2 = encode_point(&pt(2), &mut raw);
        assert_ne!(h1, h2);
        let back = decode_batch(&raw).unwrap();
        assert_eq!(back, vec![(pt(1), h1), (pt(2), h2)]);
        assert_eq!(point_hash(&pt(1)), h1, "hash depends only on content");
    }

    #[test]
    fn hostile_lengths_and_names_are_refused() {
        let mut raw = Vec::new();
        encode_point(&pt(1), &mut raw);
        let mut huge = raw.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_batch(&huge).unwrap_err().contains("over the"), "oversized declared length");
        let cut = &raw[..raw.len() - 3];
        assert!(decode_batch(cut).unwrap_err().contains("ends first"));
        assert!(decode_batch(&raw[..2]).unwrap_err().contains("cut short"));
        for bad in ["../etc/passwd", "batches/../../x.zst", "/abs", "batches/1.zst", "batches/00000a.zst", "index.zst/x"] {
            assert_eq!(member_kind(bad), None, "{bad}");
        }
        assert_eq!(member_kind("batches/000012.zst"), Some(MemberKind::Batch));
        let bomb = compress(&vec![0u8; 4096]);
        assert!(decompress(&bomb, 1024).unwrap_err().contains("limit"));
    }

    /// An 18 KB zstd bomb used to inflate to the 512 MiB batch limit (~540 MB RSS) before it
    /// was refused; now decompression stops at 256x its size.
    #[test]
    fn a_zstd_bomb_stops_at_the_inflate_ratio() {
        use std::io::Write;
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 64 << 10, "a small bomb: {} bytes", bomb.len());
        let err = decompress(&bomb, MAX_BATCH_BYTES).unwrap_err();
        assert!(err.contains("limit"), "{err}");
        // An honest batch still decompresses.
        let mut raw = Vec::new();
        for i in 0..200 {
            encode_point(&pt(i), &mut raw);
        }
        assert_eq!(decompress(&compress(&raw), MAX_BATCH_BYTES).unwrap(), raw);
    }
}
