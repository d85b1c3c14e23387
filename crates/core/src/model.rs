//! Domain types: what flows from sources through chunks into points and back as hits.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Dimension of a dense vector.
pub type Dims = usize;

/// A sparse vector: parallel sorted `indices` and `values`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseVector {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseVector {
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Metadata attached to every chunk of a document; all optional fields are filterable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difficulty_level: Option<i64>,
}

impl DocMetadata {
    /// Fields set in `over` win over fields set in `self`.
    pub fn overlay(&self, over: &DocMetadata) -> DocMetadata {
        DocMetadata {
            language: over.language.clone().or_else(|| self.language.clone()),
            framework: over.framework.clone().or_else(|| self.framework.clone()),
            doc_type: over.doc_type.clone().or_else(|| self.doc_type.clone()),
            version: over.version.clone().or_else(|| self.version.clone()),
            last_updated: over.last_updated.clone().or_else(|| self.last_updated.clone()),
            difficulty_level: over.difficulty_level.or(self.difficulty_level),
        }
    }
}

/// The stored payload of one chunk. This is the one wire shape between ingest, store and
/// search; field names are the store's payload keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkPayload {
    /// Stable id of the source document (e.g. `file:///abs/path.html`).
    pub source: String,
    /// Path relative to the ingest root.
    pub path: String,
    /// Deep link (base URL or `file://` plus `#anchor`).
    pub url: String,
    pub title: String,
    /// Section anchor (HTML id, Markdown slug); empty when the section has none.
    pub anchor: String,
    pub heading_path: Vec<String>,
    /// Text of the chunk as embedded (without the heading prefix).
    pub text: String,
    pub chunk_index: u32,
    /// A section's lead (its first sentences again, as a short chunk of their own): searched
    /// like any chunk, skipped by readers of whole sections. Stored only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lead: bool,
    /// sha256 of the chunk text.
    pub content_hash: String,
    /// sha256 of the whole source file; equal hash means the file is unchanged.
    pub doc_hash: String,
    #[serde(flatten)]
    pub meta: DocMetadata,
}

impl ChunkPayload {
    /// The value of keyword field `field`; `None` for a field that is unset or not a keyword.
    pub fn keyword(&self, field: crate::FilterField) -> Option<&str> {
        use crate::FilterField as F;
        match field {
            F::Language => self.meta.language.as_deref(),
            F::Framework => self.meta.framework.as_deref(),
            F::DocType => self.meta.doc_type.as_deref(),
            F::Version => self.meta.version.as_deref(),
            F::Source => Some(&self.source),
            F::Path => Some(&self.path),
            F::LastUpdated | F::DifficultyLevel => None,
        }
    }
}

/// Facet counts in the order [`crate::VectorStore::facet`] promises: most frequent first,
/// ties by value, at most `limit`.
pub fn top_values(counts: impl IntoIterator<Item = (String, usize)>, limit: usize) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

/// A point ready to be written: id, both vectors, payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: uuid::Uuid,
    pub dense: Vec<f32>,
    pub sparse: SparseVector,
    pub payload: ChunkPayload,
}

/// What incremental ingest knows of a stored point: its id, the document it belongs to
/// and that document's hash; nothing else of its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    pub id: uuid::Uuid,
    pub source: String,
    pub doc_hash: String,
}

/// What listing a library reads of a collection: its chunk count, each document once (its
/// source id with its relative path), the distinct `version` values and the newest
/// `last_updated`. No text, no vectors: its size grows with the documents, not the chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    pub chunks: usize,
    /// Source id -> path relative to the ingest root, one entry per document.
    pub documents: std::collections::BTreeMap<String, String>,
    pub versions: std::collections::BTreeSet<String>,
    /// The newest `last_updated` (RFC 3339) of any chunk.
    pub last_updated: Option<String>,
}

impl Outline {
    /// The payload keys an outline reads.
    pub const FIELDS: [&'static str; 4] = ["source", "path", "version", "last_updated"];

    /// Count one chunk.
    pub fn add(&mut self, source: String, path: String, version: Option<String>, last_updated: Option<String>) {
        self.chunks += 1;
        self.documents.entry(source).or_insert(path);
        if let Some(v) = version {
            self.versions.insert(v);
        }
        if let Some(u) = last_updated
            && self.last_updated.as_ref().is_none_or(|l| u > *l)
        {
            self.last_updated = Some(u);
        }
    }
}

/// Which sources a [`crate::VectorStore::scroll_sources`] keeps.
pub type SourceFilter = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A stored point as returned by a scroll (vectors only on request).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoint {
    pub id: uuid::Uuid,
    pub payload: ChunkPayload,
}

/// One page of a full scan with vectors ([`crate::VectorStore::scroll_points`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointPage {
    /// Points in ascending id order.
    pub points: Vec<Point>,
    /// Where the next page starts (pass it as `from`); `None` after the last page.
    pub next: Option<uuid::Uuid>,
}

/// Retrieval mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Dense + sparse prefetch fused with RRF.
    #[default]
    Hybrid,
    Dense,
    Sparse,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Dense => "dense",
            Self::Sparse => "sparse",
        }
    }
}

impl std::str::FromStr for SearchMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hybrid" => Ok(Self::Hybrid),
            "dense" => Ok(Self::Dense),
            "sparse" => Ok(Self::Sparse),
            other => Err(format!("unknown mode `{other}` (expected hybrid, dense or sparse)")),
        }
    }
}

/// What one result stands for (closed set): a search answers with one slot per section by
/// default, so the chunks of one long section do not crowd out the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Collapse {
    /// One result per section (page and anchor): its best chunk, in that chunk's place.
    #[default]
    Section,
    /// Every chunk is a result of its own.
    None,
}

impl Collapse {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Section => "section",
            Self::None => "none",
        }
    }
}

impl std::str::FromStr for Collapse {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "section" => Ok(Self::Section),
            "none" => Ok(Self::None),
            other => Err(format!("unknown collapse `{other}` (expected section or none)")),
        }
    }
}

/// Parameters of one store query; vectors are already encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreQuery {
    pub mode: SearchMode,
    pub dense: Option<Vec<f32>>,
    pub sparse: Option<SparseVector>,
    pub filter: crate::Filter,
    pub limit: usize,
    /// Candidates taken from each prefetch in hybrid mode.
    pub prefetch_limit: usize,
    /// How hybrid mode fuses the dense and sparse candidate lists.
    pub fusion: Fusion,
}

/// Fusion of the dense and sparse candidate lists in hybrid mode (closed set).
///
/// Contract: the fused score orders candidates; ties are broken by point id ascending, so
/// equal inputs always give the same page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fusion {
    /// Reciprocal rank fusion: `score = w_dense / (k + rank_dense) + w_sparse / (k + rank_sparse)`.
    /// Equal weights (1, 1) is classic RRF.
    Rrf {
        k: usize,
        #[serde(default = "one")]
        dense_weight: f32,
        #[serde(default = "one")]
        sparse_weight: f32,
    },
    /// Distribution-based score fusion (Qdrant's DBSF): each list's scores are normalised by
    /// `mean ± 3σ` to [0, 1], then summed.
    Dbsf,
}

fn one() -> f32 {
    1.0
}

impl Default for Fusion {
    /// RRF with k = 20 and equal weights: the best setting across SciFact and NFCorpus in
    /// `docs/quality.md` (k = 60, the textbook value, was 0.005 nDCG@10 lower on average).
    fn default() -> Self {
        Self::Rrf { k: 20, dense_weight: 1.0, sparse_weight: 1.0 }
    }
}

impl std::fmt::Display for Fusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rrf { k, dense_weight, sparse_weight } if dense_weight == sparse_weight => write!(f, "rrf:{k}"),
            Self::Rrf { k, dense_weight, sparse_weight } => write!(f, "rrf:{k}:{dense_weight}:{sparse_weight}"),
            Self::Dbsf => f.write_str("dbsf"),
        }
    }
}

impl std::str::FromStr for Fusion {
    type Err = String;
    /// `rrf:K`, `rrf:K:DENSE_W:SPARSE_W` or `dbsf`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid fusion `{s}` (expected rrf:K, rrf:K:DENSE_W:SPARSE_W or dbsf)");
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["dbsf"] => Ok(Self::Dbsf),
            ["rrf", k] => Ok(Self::Rrf { k: k.parse().map_err(|_| bad())?, dense_weight: 1.0, sparse_weight: 1.0 }),
            ["rrf", k, d, sp] => {
                let w = |x: &str| x.parse::<f32>().ok().filter(|w| w.is_finite() && *w >= 0.0).ok_or_else(bad);
                Ok(Self::Rrf { k: k.parse().map_err(|_| bad())?, dense_weight: w(d)?, sparse_weight: w(sp)? })
            }
            _ => Err(bad()),
        }
    }
}

/// One scored result from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredChunk {
    pub id: uuid::Uuid,
    pub score: f32,
    pub payload: ChunkPayload,
}

/// Static facts about a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionInfo {
    pub name: String,
    pub dims: Dims,
    pub points: usize,
    pub indexed_vectors: usize,
    pub segments: usize,
    pub aliases: Vec<String>,
    pub created_at: String,
    /// Free-form backend-level properties (model id, etc.).
    pub properties: BTreeMap<String, String>,
}

/// How to create a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSpec {
    pub name: String,
    pub dims: Dims,
    /// Recorded with the collection (e.g. `embedding_model`).
    pub properties: BTreeMap<String, String>,
}
