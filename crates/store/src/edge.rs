//! [`EdgeStore`]: the embedded backend, one `qdrant-edge` shard per collection.
//!
//! Pitfalls of qdrant-edge 0.7.2 handled here:
//! 1. `load()` does not replay the WAL: every write batch is flushed before it is
//!    acknowledged, so an acknowledged write survives `kill -9`.
//! 2. The WAL never shrinks by itself. Since it is never replayed and every acknowledged
//!    write is already in the segments, a shard whose closed WAL segments pass twice the
//!    segment capacity is compacted after a write: closed, its older closed segments
//!    deleted oldest first (the newest is kept, so operation numbers continue), reopened.
//!    Readers wait on the shard's lock for the reopen, never see it missing; a crash at any
//!    step leaves a loadable shard. Its size is `wal_bytes` in collection info.
//! 3. `flush()` panics if another thread holds the WAL lock: `update`, `flush` and
//!    `optimize` are serialised behind one mutex per shard, and a flush panic is caught
//!    and reported as an error instead of killing the process.
//! 4. RRF does not break ties deterministically: results are re-sorted by (score desc,
//!    id asc) over the whole fused candidate list before the limit is applied.
//! 5. `EdgeShard::new` needs its directory: created here.

use crate::catalog::{COLLECTIONS_DIR, Catalog, CollectionEntry, PREVIOUS_FILE, shard_dirs, sync_dir};
use crate::lock::DirLock;
use crate::params::{CollectionParams, SearchParams};
use aidocs_core::{
    ChunkPayload, CollectionInfo, CollectionSpec, FieldKind, Filter, FilterField, FilterValue, Point,
    PointPage, ScoredChunk, SearchMode, StoreError, StoreQuery, StoredPoint, VectorStore,
};
use async_trait::async_trait;
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, FacetRequest, FacetValue, DateTimeWrapper, Distance, EdgeConfigBuilder, EdgeOptimizersConfig, EdgeShard,
    EdgeSparseVectorParamsBuilder, EdgeVectorParamsBuilder, FieldCondition, FieldIndexOperations, HnswIndexConfig,
    QuantizationSearchParams, ScalarQuantizationConfig, ScalarType, SearchParams as EdgeSearchParams,
    Fusion, JsonPath, Match, Modifier, NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStruct, Prefetch, QueryEnum, QueryRequest, Range,
    Record, ScoringQuery, ScrollRequest, UpdateOperation, Vector, VectorInternal, VectorStructInternal, Vectors,
    WithPayloadInterface, WithVector,
};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub const DENSE: &str = "dense";
pub const SPARSE: &str = "sparse";

/// Options for the embedded store.
#[derive(Debug, Clone)]
pub struct EdgeStoreConfig {
    pub data_dir: PathBuf,
    /// WAL segment size in bytes (qdrant default 32 MiB). Smaller bounds WAL growth per
    /// collection at the cost of more files.
    pub wal_segment_capacity: usize,
    /// Dense index of collections created from now on (HNSW `m`, `ef_construct`,
    /// `full_scan_threshold`, int8 quantization, vectors on disk, `indexing_threshold`,
    /// `default_segment_number`). A collection keeps the settings it was created with.
    pub collection: CollectionParams,
    /// How each dense search walks the index (`hnsw_ef`, quantization rescore and
    /// oversampling, exact).
    pub search: SearchParams,
}

impl EdgeStoreConfig {
    /// The embedded defaults: HNSW m 16 / ef_construct 100, no quantization, `hnsw_ef` 128.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            wal_segment_capacity: 8 * 1024 * 1024,
            collection: CollectionParams { quantization: None, ..Default::default() },
            search: SearchParams::default(),
        }
    }
}

struct Shard {
    /// `None` only if a WAL compaction could not reopen the shard (every use then fails
    /// with a clear error; nothing on disk is lost).
    edge: RwLock<Option<EdgeShard>>,
    /// Serialises update / flush / optimize / compaction (pitfall 3).
    write: Mutex<()>,
    /// The shard's directory.
    path: PathBuf,
    /// Closed WAL bytes that trigger a compaction (0: never).
    wal_compact_bytes: u64,
}

/// A read lock on an open shard.
struct EdgeRef<'a>(std::sync::RwLockReadGuard<'a, Option<EdgeShard>>);

impl std::ops::Deref for EdgeRef<'_> {
    type Target = EdgeShard;
    fn deref(&self) -> &EdgeShard {
        self.0.as_ref().expect("Shard::edge checked it is open")
    }
}

struct Inner {
    root: PathBuf,
    cfg: EdgeStoreConfig,
    _lock: DirLock,
    catalog: RwLock<Catalog>,
    shards: RwLock<HashMap<String, Arc<Shard>>>,
    /// Serialises catalog changes (create/delete collection, alias changes).
    admin: Mutex<()>,
}

/// Embedded vector store. Cheap to clone.
#[derive(Clone)]
pub struct EdgeStore {
    inner: Arc<Inner>,
    /// Per handle, so two handles on one store can search with different settings
    /// ([`EdgeStore::with_search`]).
    search: SearchParams,
}

impl std::fmt::Debug for EdgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeStore").field("root", &self.inner.root).finish()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

/// Names: 1-64 chars of `[A-Za-z0-9_-]`, not starting with `-` or `_`.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            name: name.to_owned(),
            reason: "use 1-64 characters from A-Z a-z 0-9 _ -, starting with a letter or digit".into(),
        })
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl EdgeStore {
    /// Open (or create) the store in `cfg.data_dir`, taking the data-dir lock.
    pub fn open(cfg: EdgeStoreConfig) -> Result<Self, StoreError> {
        let root = cfg.data_dir.clone();
        std::fs::create_dir_all(root.join(COLLECTIONS_DIR)).map_err(io_err(&root))?;
        let lock = DirLock::acquire(&root)?;
        let catalog = Catalog::load(&root)?;
        // A store's catalog exists from its first open on: from then on a missing catalog
        // always means lost metadata, never "fresh store" (see `Catalog::load`).
        if !root.join(crate::catalog::CATALOG_FILE).exists() {
            catalog.save(&root)?;
        }
        let mut shards = HashMap::new();
        for (name, entry) in &catalog.collections {
            let path = root.join(COLLECTIONS_DIR).join(&entry.dir);
            let edge = EdgeShard::load(&path, None).map_err(|e| {
                StoreError::Backend(format!("cannot open collection `{name}` at {}: {e}", path.display()))
            })?;
            shards.insert(name.clone(), Arc::new(Shard::new(edge, path)));
        }
        warn_orphans(&root, &catalog);
        let search = cfg.search;
        Ok(Self {
            search,
            inner: Arc::new(Inner {
                root,
                cfg,
                _lock: lock,
                catalog: RwLock::new(catalog),
                shards: RwLock::new(shards),
                admin: Mutex::new(()),
            }),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.root
    }

    /// A handle on the same store (same collections, lock and writes) whose searches use
    /// `search` instead of the configured settings: A/B tests of search settings, and the
    /// exact baseline of the benchmarks.
    pub fn with_search(&self, search: SearchParams) -> Self {
        Self { inner: self.inner.clone(), search }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

/// Shard directories that no catalog entry references: left by a crash between creating a
/// shard and committing the catalog, or between the catalog commit and the directory removal
/// of a delete, or by a catalog restored from an older generation.
fn orphans(root: &Path, catalog: &Catalog) -> Vec<String> {
    shard_dirs(root).into_iter().filter(|d| !catalog.collections.values().any(|c| &c.dir == d)).collect()
}

/// Orphans are reported, never deleted on open: data the catalog does not know about is
/// removed only by an explicit [`EdgeStore::repair`] (`aidocs repair --remove-orphans`).
fn warn_orphans(root: &Path, catalog: &Catalog) {
    for dir in orphans(root, catalog) {
        tracing::warn!(dir = %root.join(COLLECTIONS_DIR).join(&dir).display(), "collection directory not in the catalog (kept; `aidocs repair --remove-orphans` deletes it)");
    }
}

/// What [`EdgeStore::repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairReport {
    /// `catalog.json` was missing or unreadable and `catalog.json.prev` replaced it.
    pub restored_previous: bool,
    /// Collections in the catalog after the repair.
    pub collections: Vec<String>,
    /// Shard directories that no catalog entry references.
    pub orphans: Vec<String>,
    /// Of those, the ones deleted (only with `remove_orphans`).
    pub removed: Vec<String>,
}

impl EdgeStore {
    /// Repair a data dir that [`EdgeStore::open`] refuses, with the data-dir lock held (so
    /// never under a running server): a missing or unreadable `catalog.json` is replaced by
    /// the previous generation; shard directories no catalog entry references are listed, and
    /// deleted only when `remove_orphans` is set.
    pub fn repair(data_dir: &Path, remove_orphans: bool) -> Result<RepairReport, StoreError> {
        let _lock = DirLock::acquire(data_dir)?;
        let mut report = RepairReport::default();
        let current = Catalog::read(&data_dir.join(crate::catalog::CATALOG_FILE));
        let catalog = match current {
            Ok(Some(c)) => c,
            Ok(None) | Err(StoreError::Catalog { .. }) => {
                let prev = data_dir.join(PREVIOUS_FILE);
                match Catalog::read(&prev)? {
                    Some(c) => {
                        c.save(data_dir)?;
                        report.restored_previous = true;
                        c
                    }
                    None if shard_dirs(data_dir).is_empty() => Catalog::default(),
                    None => {
                        return Err(StoreError::Catalog {
                            path: prev.display().to_string(),
                            detail: "no previous catalog generation to restore; restore the data dir from a backup".into(),
                        });
                    }
                }
            }
            Err(e) => return Err(e),
        };
        report.collections = catalog.collections.keys().cloned().collect();
        report.orphans = orphans(data_dir, &catalog);
        if remove_orphans {
            for dir in &report.orphans {
                let path = data_dir.join(COLLECTIONS_DIR).join(dir);
                std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
                report.removed.push(dir.clone());
            }
        }
        Ok(report)
    }
}

impl Inner {
    fn shard(&self, name: &str) -> Result<(String, Arc<Shard>), StoreError> {
        let collection = self
            .catalog
            .read()
            .unwrap()
            .resolve(name)
            .map(str::to_owned)
            .ok_or_else(|| StoreError::CollectionNotFound(name.to_owned()))?;
        let shard = self
            .shards
            .read()
            .unwrap()
            .get(&collection)
            .cloned()
            .ok_or_else(|| StoreError::CollectionNotFound(name.to_owned()))?;
        Ok((collection, shard))
    }

    fn dims(&self, collection: &str) -> usize {
        self.catalog.read().unwrap().collections.get(collection).map(|c| c.dims).unwrap_or(0)
    }

    fn commit_catalog(&self, edit: impl FnOnce(&mut Catalog) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let mut next = self.catalog.read().unwrap().clone();
        edit(&mut next)?;
        next.save(&self.root)?;
        *self.catalog.write().unwrap() = next;
        Ok(())
    }
}

impl Shard {
    /// The compaction bound is twice the shard's own WAL segment capacity (kept in its
    /// config from creation).
    fn new(edge: EdgeShard, path: PathBuf) -> Self {
        let segment = edge.config().wal_options.as_ref().map_or(32 << 20, |w| w.segment_capacity) as u64;
        Self { edge: RwLock::new(Some(edge)), write: Mutex::new(()), path, wal_compact_bytes: 2 * segment }
    }

    fn edge(&self) -> Result<EdgeRef<'_>, StoreError> {
        let guard = self.edge.read().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            return Err(StoreError::Backend(format!(
                "collection shard at {} is closed (a WAL compaction could not reopen it; see the log and restart)",
                self.path.display()
            )));
        }
        Ok(EdgeRef(guard))
    }

    /// Apply write operations and make them durable before returning; then compact the WAL
    /// if it has grown past its bound.
    fn write(&self, ops: Vec<UpdateOperation>) -> Result<(), StoreError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        {
            let edge = self.edge()?;
            for op in ops {
                edge.update(op).map_err(backend)?;
            }
        }
        self.flush_locked()?;
        if self.wal_compact_bytes > 0 && closed_wal_bytes(&self.path.join("wal")) > self.wal_compact_bytes {
            self.compact_wal_locked()?;
        }
        Ok(())
    }

    /// Every point matching `filter`, 1,000 at a time, without vectors, with `payload`.
    fn scroll_all(
        &self,
        filter: Option<qdrant_edge::Filter>,
        payload: WithPayloadInterface,
        mut each: impl FnMut(Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut offset = None;
        loop {
            let (records, next) = self
                .edge()?
                .scroll(ScrollRequest {
                    offset,
                    limit: Some(1000),
                    filter: filter.clone(),
                    with_payload: Some(payload.clone()),
                    with_vector: WithVector::Bool(false),
                    order_by: None,
                })
                .map_err(backend)?;
            records.into_iter().try_for_each(&mut each)?;
            match next {
                Some(n) => offset = Some(n),
                None => return Ok(()),
            }
        }
    }

    fn flush_locked(&self) -> Result<(), StoreError> {
        let edge = self.edge()?;
        std::panic::catch_unwind(AssertUnwindSafe(|| edge.flush()))
            .map_err(|_| StoreError::Backend("flush failed; the last write may not be durable".into()))
    }

    /// Shrink the WAL (the write lock is held). qdrant-edge never replays it and every
    /// acknowledged write is flushed into the segments, so closed WAL segments are dead
    /// weight; the newest one is kept because the next operation numbers continue from it
    /// (a WAL restarting at 0 would number new writes below the points' versions, and the
    /// segments would skip them). Readers wait on the lock while the shard is reopened.
    fn compact_wal_locked(&self) -> Result<u64, StoreError> {
        let mut slot = self.edge.write().unwrap_or_else(|p| p.into_inner());
        // Dropping the shard flushes it and releases the WAL directory's lock.
        if let Some(edge) = slot.take() {
            std::panic::catch_unwind(AssertUnwindSafe(move || drop(edge)))
                .map_err(|_| StoreError::Backend("flush before WAL compaction failed".into()))?;
        }
        let wal = self.path.join("wal");
        let freed = remove_closed_wal_segments(&wal);
        match EdgeShard::load(&self.path, None) {
            Ok(edge) => *slot = Some(edge),
            Err(e) => {
                tracing::error!(shard = %self.path.display(), error = %e, "reopening after WAL compaction failed; the shard is closed until restart");
                return Err(StoreError::Backend(format!("reopening {} after WAL compaction failed: {e}", self.path.display())));
            }
        }
        let freed = freed.map_err(io_err(&wal))?;
        tracing::info!(shard = %self.path.display(), freed_bytes = freed, "WAL compacted");
        Ok(freed)
    }
}

/// `closed-<start index>` segments of a WAL directory, oldest first, with their sizes.
fn closed_wal_segments(wal: &Path) -> Vec<(u64, PathBuf, u64)> {
    let Ok(rd) = std::fs::read_dir(wal) else { return Vec::new() };
    let mut out: Vec<(u64, PathBuf, u64)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let start = name.strip_prefix("closed-")?.parse().ok()?;
            Some((start, e.path(), e.metadata().map_or(0, |m| m.len())))
        })
        .collect();
    out.sort_by_key(|(start, _, _)| *start);
    out
}

fn closed_wal_bytes(wal: &Path) -> u64 {
    closed_wal_segments(wal).iter().map(|(_, _, len)| len).sum()
}

/// Delete every closed WAL segment but the newest, oldest first (a crash part-way leaves a
/// contiguous suffix, which the WAL opens as it would after its own prefix truncation).
fn remove_closed_wal_segments(wal: &Path) -> std::io::Result<u64> {
    let segments = closed_wal_segments(wal);
    let mut freed = 0;
    for (_, path, len) in segments.iter().take(segments.len().saturating_sub(1)) {
        std::fs::remove_file(path)?;
        freed += len;
    }
    sync_dir(wal)?;
    Ok(freed)
}

fn field_schema(kind: FieldKind) -> PayloadSchemaType {
    match kind {
        FieldKind::Keyword => PayloadSchemaType::Keyword,
        FieldKind::Integer => PayloadSchemaType::Integer,
        FieldKind::Datetime => PayloadSchemaType::Datetime,
    }
}

fn parse_datetime(field: FilterField, s: &str) -> Result<DateTimeWrapper, StoreError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| DateTimeWrapper(d.with_timezone(&chrono::Utc)))
        .map_err(|e| StoreError::Backend(format!("filter `{field}`: `{s}` is not an RFC 3339 datetime ({e})")))
}

fn json_path(field: FilterField) -> JsonPath {
    field.as_str().parse().expect("filter field names are valid JSON paths")
}

fn to_edge_filter(filter: &Filter) -> Result<Option<qdrant_edge::Filter>, StoreError> {
    if filter.is_empty() {
        return Ok(None);
    }
    let mut must = Vec::new();
    for (field, value) in &filter.must {
        let key = json_path(*field);
        let cond = match value {
            FilterValue::Keyword(s) => FieldCondition::new_match(key, Match::from(s.clone())),
            FilterValue::AnyKeyword(v) => FieldCondition::new_match(key, Match::from(v.clone())),
            FilterValue::Integer(i) => FieldCondition::new_match(key, Match::from(*i)),
            FilterValue::AnyInteger(v) => FieldCondition::new_match(key, Match::from(v.clone())),
            FilterValue::IntRange { gte, lte } => FieldCondition::new_range(
                key,
                Range { lt: None, gt: None, gte: gte.map(|x| OrderedFloat(x as f64)), lte: lte.map(|x| OrderedFloat(x as f64)) },
            ),
            FilterValue::DateRange { gte, lte } => FieldCondition::new_datetime_range(
                key,
                Range {
                    lt: None,
                    gt: None,
                    gte: gte.as_deref().map(|s| parse_datetime(*field, s)).transpose()?,
                    lte: lte.as_deref().map(|s| parse_datetime(*field, s)).transpose()?,
                },
            ),
        };
        must.push(Condition::Field(cond));
    }
    Ok(Some(qdrant_edge::Filter { must: Some(must), ..Default::default() }))
}

fn uuid_of(id: &PointId) -> Result<uuid::Uuid, StoreError> {
    match id {
        PointId::Uuid(u) => Ok(*u),
        PointId::NumId(n) => Err(StoreError::Backend(format!("unexpected numeric point id {n}"))),
    }
}

fn payload_of(map: Option<qdrant_edge::Payload>) -> Result<ChunkPayload, StoreError> {
    let map = map.map(|p| p.0).unwrap_or_default();
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| StoreError::Backend(format!("bad payload: {e}")))
}

/// Our fusion as qdrant-edge's; prefetch order is (dense, sparse).
fn edge_fusion(f: aidocs_core::Fusion) -> Fusion {
    match f {
        aidocs_core::Fusion::Rrf { k, dense_weight, sparse_weight } => Fusion::Rrf {
            k,
            weights: (dense_weight != 1.0 || sparse_weight != 1.0)
                .then(|| vec![OrderedFloat(dense_weight), OrderedFloat(sparse_weight)]),
        },
        aidocs_core::Fusion::Dbsf => Fusion::Dbsf,
    }
}

/// A stored record (fetched with vectors and payload) as our point.
fn point_of(r: Record) -> Result<Point, StoreError> {
    let id = uuid_of(&r.id)?;
    let missing = |what: &str| StoreError::Backend(format!("point {id} has no {what} vector"));
    let Some(VectorStructInternal::Named(mut named)) = r.vector else {
        return Err(missing("named"));
    };
    let dense = match named.remove(DENSE) {
        Some(VectorInternal::Dense(d)) => d,
        _ => return Err(missing(DENSE)),
    };
    let sparse = match named.remove(SPARSE) {
        Some(VectorInternal::Sparse(s)) => aidocs_core::SparseVector { indices: s.indices, values: s.values },
        // qdrant leaves an empty sparse vector out.
        None => aidocs_core::SparseVector::default(),
        _ => return Err(missing(SPARSE)),
    };
    Ok(Point { id, dense, sparse, payload: payload_of(r.payload)? })
}

fn sparse_internal(s: &aidocs_core::SparseVector) -> Result<VectorInternal, StoreError> {
    Ok(Vector::new_sparse(s.indices.clone(), s.values.clone()).map_err(backend)?.0)
}

#[async_trait]
impl VectorStore for EdgeStore {
    fn backend(&self) -> &'static str {
        "edge"
    }

    async fn check(&self) -> Result<String, StoreError> {
        Ok(format!("embedded qdrant-edge at {}", self.inner.root.display()))
    }

    async fn create_collection(&self, spec: &CollectionSpec) -> Result<(), StoreError> {
        validate_name(&spec.name)?;
        let spec = spec.clone();
        self.blocking(move |inner| {
            let _admin = inner.admin.lock().unwrap();
            {
                let cat = inner.catalog.read().unwrap();
                if cat.collections.contains_key(&spec.name) || cat.aliases.contains_key(&spec.name) {
                    return Err(StoreError::CollectionExists(spec.name.clone()));
                }
            }
            let dir = format!("{}-{}", spec.name, uuid::Uuid::new_v4().simple());
            let path = inner.root.join(COLLECTIONS_DIR).join(&dir);
            std::fs::create_dir_all(&path).map_err(io_err(&path))?;
            let params = &inner.cfg.collection;
            let mut dense = EdgeVectorParamsBuilder::new(spec.dims, Distance::Cosine).on_disk(params.on_disk_vectors);
            if let Some(q) = params.quantization {
                dense = dense.quantization_config(
                    ScalarQuantizationConfig { r#type: ScalarType::Int8, quantile: Some(q.quantile), always_ram: Some(q.always_ram) }.into(),
                );
            }
            let config = EdgeConfigBuilder::new()
                .vector(DENSE, dense.build())
                .optimizers(EdgeOptimizersConfig {
                    indexing_threshold: params.indexing_threshold.map(|kb| kb as usize),
                    default_segment_number: params.default_segment_number.map(|n| n as usize),
                    ..Default::default()
                })
                .hnsw_config(HnswIndexConfig {
                    m: params.hnsw_m as usize,
                    ef_construct: params.hnsw_ef_construct as usize,
                    full_scan_threshold: params.full_scan_threshold as usize,
                    ..Default::default()
                })
                .sparse_vector(SPARSE, EdgeSparseVectorParamsBuilder::new().modifier(Modifier::Idf).build())
                .on_disk_payload(true)
                .wal_options(qdrant_edge::WalOptions {
                    segment_capacity: inner.cfg.wal_segment_capacity,
                    ..Default::default()
                })
                .build();
            let edge = EdgeShard::new(&path, config).map_err(backend)?;
            let shard = Shard::new(edge, path.clone());
            let index_ops = FilterField::ALL
                .into_iter()
                .map(|f| {
                    UpdateOperation::FieldIndexOperation(FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name: json_path(f),
                        field_schema: Some(PayloadFieldSchema::FieldType(field_schema(f.kind()))),
                    }))
                })
                .collect();
            shard.write(index_ops)?;
            sync_dir(&path).map_err(io_err(&path))?;
            inner.commit_catalog(|cat| {
                cat.collections.insert(
                    spec.name.clone(),
                    CollectionEntry {
                        dir,
                        dims: spec.dims,
                        created_at: chrono::Utc::now().to_rfc3339(),
                        properties: spec.properties.clone(),
                    },
                );
                Ok(())
            })?;
            inner.shards.write().unwrap().insert(spec.name.clone(), Arc::new(shard));
            Ok(())
        })
        .await
    }

    async fn delete_collection(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.blocking(move |inner| {
            let _admin = inner.admin.lock().unwrap();
            let entry = inner
                .catalog
                .read()
                .unwrap()
                .collections
                .get(&name)
                .cloned()
                .ok_or_else(|| StoreError::CollectionNotFound(name.clone()))?;
            inner.commit_catalog(|cat| {
                cat.collections.remove(&name);
                cat.aliases.retain(|_, target| *target != name);
                Ok(())
            })?;
            let shard = inner.shards.write().unwrap().remove(&name);
            if let Some(mut shard) = shard {
                // Wait for in-flight readers to finish before the shard is dropped (its drop
                // flushes) and its files removed.
                for _ in 0..600 {
                    match Arc::try_unwrap(shard) {
                        Ok(s) => {
                            drop(s);
                            break;
                        }
                        Err(s) => {
                            shard = s;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            }
            let path = inner.root.join(COLLECTIONS_DIR).join(&entry.dir);
            std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
            Ok(())
        })
        .await
    }

    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        let names: Vec<String> = self.inner.catalog.read().unwrap().collections.keys().cloned().collect();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(self.collection_info(&n).await?);
        }
        Ok(out)
    }

    async fn collection_info(&self, name: &str) -> Result<CollectionInfo, StoreError> {
        let name = name.to_owned();
        self.blocking(move |inner| {
            let (collection, shard) = inner.shard(&name)?;
            let info = shard.edge()?.info();
            let cat = inner.catalog.read().unwrap();
            let entry = cat.collections.get(&collection).cloned().ok_or_else(|| StoreError::CollectionNotFound(name.clone()))?;
            let aliases = cat.aliases.iter().filter(|(_, t)| **t == collection).map(|(a, _)| a.clone()).collect();
            let path = inner.root.join(COLLECTIONS_DIR).join(&entry.dir);
            let mut properties = entry.properties.clone();
            properties.insert("disk_bytes".into(), dir_size(&path).to_string());
            properties.insert("wal_bytes".into(), dir_size(&path.join("wal")).to_string());
            Ok(CollectionInfo {
                name: collection,
                dims: entry.dims,
                points: info.points_count,
                indexed_vectors: info.indexed_vectors_count,
                segments: info.segments_count,
                aliases,
                created_at: entry.created_at,
                properties,
            })
        })
        .await
    }

    async fn resolve(&self, name: &str) -> Result<String, StoreError> {
        self.inner
            .catalog
            .read()
            .unwrap()
            .resolve(name)
            .map(str::to_owned)
            .ok_or_else(|| StoreError::CollectionNotFound(name.to_owned()))
    }

    async fn set_alias(&self, alias: &str, collection: &str) -> Result<(), StoreError> {
        validate_name(alias)?;
        let (alias, collection) = (alias.to_owned(), collection.to_owned());
        self.blocking(move |inner| {
            let _admin = inner.admin.lock().unwrap();
            inner.commit_catalog(|cat| {
                if !cat.collections.contains_key(&collection) {
                    return Err(StoreError::CollectionNotFound(collection.clone()));
                }
                if cat.collections.contains_key(&alias) {
                    return Err(StoreError::CollectionExists(alias.clone()));
                }
                cat.aliases.insert(alias.clone(), collection.clone());
                Ok(())
            })
        })
        .await
    }

    async fn delete_alias(&self, alias: &str) -> Result<(), StoreError> {
        let alias = alias.to_owned();
        self.blocking(move |inner| {
            let _admin = inner.admin.lock().unwrap();
            inner.commit_catalog(|cat| {
                cat.aliases.remove(&alias).map(|_| ()).ok_or_else(|| StoreError::AliasNotFound(alias.clone()))
            })
        })
        .await
    }

    async fn list_aliases(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self.inner.catalog.read().unwrap().aliases.iter().map(|(a, c)| (a.clone(), c.clone())).collect())
    }

    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<(), StoreError> {
        if points.is_empty() {
            return Ok(());
        }
        let name = collection.to_owned();
        self.blocking(move |inner| {
            let (collection, shard) = inner.shard(&name)?;
            let dims = inner.dims(&collection);
            let mut list = Vec::with_capacity(points.len());
            for p in points {
                if p.dense.len() != dims {
                    return Err(StoreError::DimensionMismatch { expected: dims, got: p.dense.len() });
                }
                let payload = serde_json::to_value(&p.payload).map_err(backend)?;
                let sparse = Vector::new_sparse(p.sparse.indices, p.sparse.values).map_err(backend)?;
                let vectors = Vectors::new_named([(DENSE, Vector::new_dense(p.dense)), (SPARSE, sparse)]);
                list.push(PointStruct::new(PointId::Uuid(p.id), vectors, payload).into());
            }
            shard.write(vec![UpdateOperation::PointOperation(PointOperations::UpsertPoints(
                PointInsertOperations::PointsList(list),
            ))])
        })
        .await
    }

    async fn delete(&self, collection: &str, ids: Vec<uuid::Uuid>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let name = collection.to_owned();
        self.blocking(move |inner| {
            let (_, shard) = inner.shard(&name)?;
            let ids = ids.into_iter().map(PointId::Uuid).collect();
            shard.write(vec![UpdateOperation::PointOperation(PointOperations::DeletePoints { ids })])
        })
        .await
    }

    async fn scroll(&self, collection: &str, filter: &Filter) -> Result<Vec<StoredPoint>, StoreError> {
        let name = collection.to_owned();
        let filter = to_edge_filter(filter)?;
        self.blocking(move |inner| {
            let (_, shard) = inner.shard(&name)?;
            let mut out = Vec::new();
            shard.scroll_all(filter, WithPayloadInterface::Bool(true), |r| {
                out.push(StoredPoint { id: uuid_of(&r.id)?, payload: payload_of(r.payload)? });
                Ok(())
            })?;
            Ok(out)
        })
        .await
    }

    async fn scroll_sources(&self, collection: &str, keep: aidocs_core::SourceFilter) -> Result<Vec<aidocs_core::SourceEntry>, StoreError> {
        let name = collection.to_owned();
        self.blocking(move |inner| {
            let (_, shard) = inner.shard(&name)?;
            let fields: Vec<JsonPath> = ["source", "doc_hash"].iter().map(|f| f.parse().expect("valid JSON paths")).collect();
            let mut out = Vec::new();
            shard.scroll_all(None, WithPayloadInterface::Fields(fields), |r| {
                let map = r.payload.map(|p| p.0).unwrap_or_default();
                let text = |k: &str| map.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let source = text("source");
                if keep(&source) {
                    out.push(aidocs_core::SourceEntry { id: uuid_of(&r.id)?, source, doc_hash: text("doc_hash") });
                }
                Ok(())
            })?;
            Ok(out)
        })
        .await
    }

    async fn facet(&self, collection: &str, field: FilterField, limit: usize) -> Result<Vec<(String, usize)>, StoreError> {
        let name = collection.to_owned();
        self.blocking(move |inner| {
            let (_, shard) = inner.shard(&name)?;
            let r = shard.edge()?.facet(FacetRequest { key: json_path(field), limit: limit.max(1), filter: None, exact: true }).map_err(backend)?;
            let counts = r.hits.into_iter().filter_map(|h| match h.value {
                FacetValue::Keyword(s) => Some((s, h.count)),
                _ => None,
            });
            Ok(aidocs_core::top_values(counts, limit))
        })
        .await
    }

    async fn outline(&self, collection: &str) -> Result<aidocs_core::Outline, StoreError> {
        let name = collection.to_owned();
        self.blocking(move |inner| {
            let (_, shard) = inner.shard(&name)?;
            let fields: Vec<JsonPath> = aidocs_core::Outline::FIELDS.iter().map(|f| f.parse().expect("valid JSON paths")).collect();
            let mut out = aidocs_core::Outline::default();
            shard.scroll_all(None, WithPayloadInterface::Fields(fields), |r| {
                let map = r.payload.map(|p| p.0).unwrap_or_default();
                let text = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                out.add(text("source").unwrap_or_default(), text("path").unwrap_or_default(), text("version"), text("last_updated"));
                Ok(())
            })?;
            Ok(out)
        })
        .await
    }

    async fn scroll_points(&self, collection: &str, from: Option<uuid::Uuid>, limit: usize) -> Result<PointPage, StoreError> {
        let name = collection.to_owned();
        self.blocking(move |inner| {
            let (_, shard) = inner.shard(&name)?;
            let (records, next) = shard
                .edge()?
                .scroll(ScrollRequest {
                    offset: from.map(PointId::Uuid),
                    limit: Some(limit.max(1)),
                    filter: None,
                    with_payload: Some(WithPayloadInterface::Bool(true)),
                    with_vector: WithVector::Bool(true),
                    order_by: None,
                })
                .map_err(backend)?;
            let points = records.into_iter().map(point_of).collect::<Result<Vec<_>, _>>()?;
            Ok(PointPage { points, next: next.as_ref().map(uuid_of).transpose()? })
        })
        .await
    }

    async fn retrieve(&self, collection: &str, ids: &[uuid::Uuid]) -> Result<Vec<Point>, StoreError> {
        let name = collection.to_owned();
        let ids: Vec<PointId> = ids.iter().copied().map(PointId::Uuid).collect();
        self.blocking(move |inner| {
            let (_, shard) = inner.shard(&name)?;
            let records = shard
                .edge()?
                .retrieve(&ids, Some(WithPayloadInterface::Bool(true)), Some(WithVector::Bool(true)))
                .map_err(backend)?;
            records.into_iter().map(point_of).collect()
        })
        .await
    }

    async fn count(&self, collection: &str, filter: &Filter) -> Result<usize, StoreError> {
        let name = collection.to_owned();
        let filter = to_edge_filter(filter)?;
        self.blocking(move |inner| {
            let (_, shard) = inner.shard(&name)?;
            shard.edge()?.count(CountRequest { filter, exact: true }).map_err(backend)
        })
        .await
    }

    async fn query(&self, collection: &str, q: &StoreQuery) -> Result<Vec<ScoredChunk>, StoreError> {
        let name = collection.to_owned();
        let filter = to_edge_filter(&q.filter)?;
        let q = q.clone();
        let s = self.search;
        let dense_params = EdgeSearchParams {
            hnsw_ef: s.hnsw_ef.map(|ef| ef as usize),
            exact: s.exact,
            quantization: Some(QuantizationSearchParams { ignore: false, rescore: Some(s.rescore), oversampling: Some(s.oversampling) }),
            ..Default::default()
        };
        self.blocking(move |inner| {
            let (collection, shard) = inner.shard(&name)?;
            let dims = inner.dims(&collection);
            let dense = match &q.dense {
                Some(v) if v.len() != dims => return Err(StoreError::DimensionMismatch { expected: dims, got: v.len() }),
                Some(v) => Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                    query: VectorInternal::Dense(v.clone()),
                    using: Some(DENSE.into()),
                }))),
                None => None,
            };
            let sparse = match &q.sparse {
                Some(s) => Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                    query: sparse_internal(s)?,
                    using: Some(SPARSE.into()),
                }))),
                None => None,
            };
            let need = |v: Option<ScoringQuery>, what: &str| {
                v.ok_or_else(|| StoreError::Backend(format!("{} query needs a {what} vector", q.mode.as_str())))
            };
            // Fetch ids and scores of every candidate, order them deterministically, then
            // load payloads for the page only.
            let top_params = (q.mode == SearchMode::Dense).then(|| dense_params.clone());
            let (prefetches, query, fetch) = match q.mode {
                SearchMode::Dense => (vec![], need(dense, "dense")?, q.limit),
                SearchMode::Sparse => (vec![], need(sparse, "sparse")?, q.limit),
                SearchMode::Hybrid => {
                    // The request's filter goes on the root only: the engine merges a root
                    // filter into every prefetch, so repeating it here would check each
                    // condition twice per visited point.
                    let pf = |query, params| Prefetch {
                        prefetches: vec![],
                        query: Some(query),
                        limit: q.prefetch_limit.max(q.limit),
                        params,
                        filter: None,
                        score_threshold: None,
                    };
                    let prefetches = vec![pf(need(dense, "dense")?, Some(dense_params.clone())), pf(need(sparse, "sparse")?, None)];
                    let fetch = 2 * q.prefetch_limit.max(q.limit);
                    (prefetches, ScoringQuery::Fusion(edge_fusion(q.fusion)), fetch)
                }
            };
            let mut scored = shard
                .edge()?
                .query(QueryRequest {
                    prefetches,
                    query: Some(query),
                    filter: filter.clone(),
                    score_threshold: None,
                    limit: fetch,
                    offset: 0,
                    params: top_params,
                    with_vector: WithVector::Bool(false),
                    with_payload: WithPayloadInterface::Bool(false),
                })
                .map_err(backend)?
                .into_iter()
                .map(|p| Ok((uuid_of(&p.id)?, p.score)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored.truncate(q.limit);
            let ids: Vec<PointId> = scored.iter().map(|(id, _)| PointId::Uuid(*id)).collect();
            let records = shard
                .edge()?
                .retrieve(&ids, Some(WithPayloadInterface::Bool(true)), Some(WithVector::Bool(false)))
                .map_err(backend)?;
            let mut payloads: HashMap<uuid::Uuid, _> =
                records.into_iter().map(|r| Ok((uuid_of(&r.id)?, r.payload))).collect::<Result<_, StoreError>>()?;
            scored
                .into_iter()
                .filter_map(|(id, score)| payloads.remove(&id).map(|p| (id, score, p)))
                .map(|(id, score, p)| Ok(ScoredChunk { id, score, payload: payload_of(p)? }))
                .collect()
        })
        .await
    }

    async fn optimize(&self, collection: &str) -> Result<(), StoreError> {
        let name = collection.to_owned();
        self.blocking(move |inner| {
            let (_, shard) = inner.shard(&name)?;
            let _guard = shard.write.lock().unwrap_or_else(|p| p.into_inner());
            shard.edge()?.optimize().map_err(backend)?;
            shard.flush_locked()
        })
        .await
    }
}
