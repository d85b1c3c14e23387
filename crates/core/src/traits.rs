//! The small traits each layer implements. Contracts are written on each trait; every
//! implementation is held to them by a shared conformance suite.

use crate::{
    CacheError, CollectionInfo, CollectionSpec, CoreError, Dims, Filter, Point, PointPage, ScoredChunk, SparseVector,
    StoreError, StoreQuery, StoredPoint,
};
use async_trait::async_trait;

/// Dense text embedder.
///
/// Contract: `embed(texts)` returns exactly `texts.len()` vectors, in order, each of
/// length `dims()`, L2-normalised. The same input always gives the same vector. An empty
/// slice returns an empty vec.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Stable id of the model (part of cache keys and collection properties).
    fn model_id(&self) -> &str;
    fn dims(&self) -> Dims;
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, CoreError>;
    /// Tokens the provider reported consuming so far (remote APIs report usage); `None` when
    /// it does not report, and callers count with a [`TokenCounter`] instead.
    fn tokens_used(&self) -> Option<u64> {
        None
    }
    /// Give back memory kept between calls: with [`Release::Scratch`] what is kept for reuse
    /// (an inference runtime's arena), with [`Release::Model`] the loaded model as well, e.g.
    /// before an ingest's final optimize. The contract of `embed` still holds afterwards: the
    /// next call may be slower (the arena grows again, the model is loaded again) and gives
    /// the same vectors. Never fails: an embedder that cannot release logs why. Default:
    /// nothing kept.
    async fn release_memory(&self, _what: Release) {}
}

/// What [`Embedder::release_memory`] gives back (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Memory kept between calls for reuse (an arena); the model stays loaded. For a
    /// process that goes on embedding, such as a server after a scheduled ingest.
    Scratch,
    /// The model too, loaded again by the next call (a second or so). For a process that
    /// will not embed again soon, such as the CLI after its ingest has embedded everything.
    Model,
}

/// Sparse (lexical) encoder.
///
/// Contract: deterministic; indices sorted ascending and unique; values > 0. `encode_query`
/// gives query-side weights (the store applies IDF), `encode_doc` document-side weights.
pub trait SparseEncoder: Send + Sync {
    fn encode_doc(&self, text: &str) -> SparseVector;
    fn encode_query(&self, text: &str) -> SparseVector;
}

/// Counts tokens the way the embedding model will see them, so chunking respects its budget.
///
/// Contract: `count("")` is 0; counts are additive enough that the sum over parts is within a
/// few tokens of the count of their concatenation.
pub trait TokenCounter: Send + Sync {
    fn count(&self, text: &str) -> usize;
}

/// Scores (query, passage) pairs for reranking.
///
/// Contract: `rerank(query, passages)` returns exactly `passages.len()` scores, in input
/// order; higher means more relevant; deterministic for the same input. Scores are only
/// comparable within one call. An empty slice returns an empty vec.
#[async_trait]
pub trait Reranker: Send + Sync {
    /// Stable id of the model or endpoint (part of cache keys and responses).
    fn model_id(&self) -> &str;
    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, CoreError>;
}

/// A chat-completion text generator (an LLM behind an OpenAI-compatible API, say).
///
/// Contract: `generate` returns between 1 and `n` non-empty completions of the same
/// prompt, or an error; it never blocks past its configured timeout.
#[async_trait]
pub trait Generator: Send + Sync {
    /// Stable id of the generator model (part of cache keys).
    fn model_id(&self) -> &str;
    async fn generate(&self, system: &str, user: &str, n: usize) -> Result<Vec<String>, CoreError>;
}

/// A byte-valued cache with per-entry TTL (in-process, Redis, Valkey, DragonflyDB...).
///
/// Contract:
/// - after `set(k, v, ttl)`, `get(k)` returns `v` until `ttl` has elapsed and never after
///   (expiry may be lazy, but an expired value is never returned);
/// - values are opaque, binary-safe bytes; `mget` returns one slot per key, in key order;
/// - `delete_prefix(p)` removes every key starting with `p` and returns how many it removed;
/// - errors mean "unavailable": callers treat them as misses, a cache never fails a request;
/// - `stats` counts this cache's own hits, misses and errors since it was created.
#[async_trait]
pub trait Cache: Send + Sync {
    /// Backend name for diagnostics ("memory", "redis", "tiered").
    fn backend(&self) -> &'static str;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn set(&self, key: &str, value: Vec<u8>, ttl: std::time::Duration) -> Result<(), CacheError>;
    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError>;
    async fn mset(&self, entries: Vec<(String, Vec<u8>)>, ttl: std::time::Duration) -> Result<(), CacheError>;
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError>;
    fn stats(&self) -> CacheStats;
    /// The circuit breaker guarding this cache (or a tier of it), for health and metrics.
    fn circuit(&self) -> Option<std::sync::Arc<crate::CircuitBreaker>> {
        None
    }
}

/// Counters of one cache (or one tier of a tiered cache).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CacheStats {
    pub backend: String,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    /// Entries and bytes held, where the backend knows (in-process caches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Tiers below this one (L1, L2) for tiered caches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<CacheStats>,
    /// `ok`, or why the cache is degraded (circuit open, unreachable).
    pub health: String,
}

/// Storage of points with dense + sparse vectors, payload filters and aliases.
///
/// Contract:
/// - a write that returned `Ok` is durable: it survives a crash of the process right after;
/// - `upsert` with an existing id replaces that point; `delete` of a missing id is not an error;
/// - names resolve through aliases everywhere a collection name is accepted (`resolve`);
/// - `set_alias` switches atomically: readers see the old or the new target, never none;
/// - `query` returns at most `limit` hits, best first, ties broken by id ascending.
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// Backend name for diagnostics ("edge", "qdrant").
    fn backend(&self) -> &'static str;
    /// Check the backend is reachable and compatible (a server's version, its API key);
    /// returns a one-line description for logs and health checks. Called before serving.
    async fn check(&self) -> Result<String, StoreError> {
        Ok(self.backend().to_owned())
    }
    async fn create_collection(&self, spec: &CollectionSpec) -> Result<(), StoreError>;
    async fn delete_collection(&self, name: &str) -> Result<(), StoreError>;
    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, StoreError>;
    /// Info on a collection or alias target.
    async fn collection_info(&self, name: &str) -> Result<CollectionInfo, StoreError>;
    /// Resolve an alias (or a collection name) to the collection name.
    async fn resolve(&self, name: &str) -> Result<String, StoreError>;
    /// Point alias at collection, replacing any previous target atomically.
    async fn set_alias(&self, alias: &str, collection: &str) -> Result<(), StoreError>;
    async fn delete_alias(&self, alias: &str) -> Result<(), StoreError>;
    async fn list_aliases(&self) -> Result<Vec<(String, String)>, StoreError>;
    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<(), StoreError>;
    async fn delete(&self, collection: &str, ids: Vec<uuid::Uuid>) -> Result<(), StoreError>;
    /// All points matching `filter`, payload only.
    async fn scroll(&self, collection: &str, filter: &Filter) -> Result<Vec<StoredPoint>, StoreError>;
    /// Id, `source` and `doc_hash` of every point whose source `keep` accepts: what an
    /// incremental ingest compares, so its memory grows with the sources it ingests, not
    /// with the collection. Backends should read only those two payload fields page by page;
    /// this default scrolls whole payloads.
    async fn scroll_sources(&self, collection: &str, keep: crate::SourceFilter) -> Result<Vec<crate::SourceEntry>, StoreError> {
        Ok(self
            .scroll(collection, &Filter::default())
            .await?
            .into_iter()
            .filter(|p| keep(&p.payload.source))
            .map(|p| crate::SourceEntry { id: p.id, source: p.payload.source, doc_hash: p.payload.doc_hash })
            .collect())
    }
    /// The distinct values of keyword field `field` with how many points hold each, most
    /// frequent first (ties by value), at most `limit`. Backends answer from the field's
    /// payload index (every filter field has one); this default scrolls whole payloads.
    async fn facet(&self, collection: &str, field: crate::FilterField, limit: usize) -> Result<Vec<(String, usize)>, StoreError> {
        let mut counts = std::collections::HashMap::<String, usize>::new();
        for p in self.scroll(collection, &Filter::default()).await? {
            if let Some(v) = p.payload.keyword(field) {
                *counts.entry(v.to_owned()).or_default() += 1;
            }
        }
        Ok(crate::top_values(counts, limit))
    }
    /// The collection's [`crate::Outline`] (what listing libraries shows). Backends should
    /// read only [`crate::Outline::FIELDS`] page by page; this default scrolls whole payloads.
    async fn outline(&self, collection: &str) -> Result<crate::Outline, StoreError> {
        let mut o = crate::Outline::default();
        for p in self.scroll(collection, &Filter::default()).await? {
            o.add(p.payload.source, p.payload.path, p.payload.meta.version, p.payload.meta.last_updated);
        }
        Ok(o)
    }
    /// One page of every point with both vectors and payload, in ascending id order, starting
    /// at id `from` (inclusive; `None` = the first point), at most `limit` points. Walking the
    /// pages visits each point that existed throughout the walk exactly once (backups and
    /// migrations are built on this).
    async fn scroll_points(&self, collection: &str, from: Option<uuid::Uuid>, limit: usize) -> Result<PointPage, StoreError>;
    /// The points with these ids, vectors and payload, in the order asked; missing ids are
    /// left out.
    async fn retrieve(&self, collection: &str, ids: &[uuid::Uuid]) -> Result<Vec<Point>, StoreError>;
    async fn count(&self, collection: &str, filter: &Filter) -> Result<usize, StoreError>;
    async fn query(&self, collection: &str, query: &StoreQuery) -> Result<Vec<ScoredChunk>, StoreError>;
    /// Build indexes after a bulk load. May take long; queries keep working meanwhile.
    async fn optimize(&self, collection: &str) -> Result<(), StoreError>;
    /// The backend's own snapshots, where it has them (a Qdrant server); `None` otherwise.
    fn native_snapshots(&self) -> Option<&dyn NativeSnapshots> {
        None
    }
}

/// A store backend's own collection snapshots: the fastest same-engine backup and restore.
///
/// Contract:
/// - `create_snapshot` captures the collection (or an alias's target) as it is now, on the
///   server;
/// - `download_snapshot` writes the complete file to `dest` or leaves nothing at `dest`,
///   and returns its size in bytes;
/// - `recover_snapshot` makes `collection` hold exactly the snapshot's points and config
///   (created, or replaced if it exists);
/// - `delete_snapshot` of a missing snapshot is an error naming it.
#[async_trait]
pub trait NativeSnapshots: Send + Sync {
    async fn create_snapshot(&self, collection: &str) -> Result<SnapshotInfo, StoreError>;
    async fn download_snapshot(&self, collection: &str, snapshot: &SnapshotInfo, dest: &std::path::Path) -> Result<u64, StoreError>;
    async fn recover_snapshot(&self, collection: &str, file: &std::path::Path) -> Result<(), StoreError>;
    async fn delete_snapshot(&self, collection: &str, name: &str) -> Result<(), StoreError>;
}

/// One snapshot on a store server.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    pub name: String,
    pub size: u64,
    /// RFC 3339.
    pub created_at: String,
    pub checksum: Option<String>,
}
