//! [`Engine`]: the assembled service. Built from [`Config`]; runs the search and ingest
//! pipelines over the layer crates' traits.

use crate::config::{CacheBackend, Config, EmbeddingProvider, RerankEngine, StoreKind};
use aidocs_cache::keys::CacheKind;
use aidocs_cache::{Breaker, BreakerConfig, Cache, CachedEmbedder, MemoryCache, RedisCache, RedisCacheConfig, TieredCache};
use std::time::Duration;
use crate::error::{Error, Result};
use crate::progress::{FileOutcome, IngestProgress};
use crate::guard::{GuardedEmbedder, GuardedGenerator, GuardedReranker};
use crate::metered::MeteredEmbedder;
use aidocs_core::{
    BreakerState, ChunkPayload, CircuitBreaker, CoreError, CollectionInfo, CollectionSpec, DocMetadata, Embedder, Filter, Point, Reranker, SearchMode,
    SparseEncoder, StoreError, StoreQuery, TokenCounter, VectorStore,
};
use aidocs_embed::{
    Bm25Config, Bm25Encoder, CrossEncoder, CrossEncoderConfig, HttpReranker, HttpRerankerConfig, LocalEmbedder,
    LocalEmbedderConfig, OnnxEmbedder, OnnxEmbedderConfig,
};
use aidocs_obs::{Metrics, Outcome, Stage};
use aidocs_hyde::{Hyde, HydeConfig, OpenAiGenerator, OpenAiGeneratorConfig};
use aidocs_ingest::{Chunker, ChunkerConfig, DirSource, Document, Skipped, point_id, sha256_hex};
use aidocs_store::EdgeStore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument as _;

/// Collection property naming the embedding model its vectors came from.
pub const MODEL_PROPERTY: &str = "embedding_model";

/// A validated search request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub query: String,
    /// Collection or alias; `None` uses `search.default_collection`.
    pub collection: Option<String>,
    pub limit: Option<usize>,
    pub mode: Option<SearchMode>,
    pub filter: Filter,
    /// HyDE expansion; `None` takes `hyde.enabled`.
    pub hyde: Option<bool>,
    /// Rerank the fused candidates; `None` takes `rerank.enabled`.
    pub rerank: Option<bool>,
}

impl SearchRequest {
    /// A request with defaults for everything but the query.
    pub fn new(query: impl Into<String>) -> Self {
        Self { query: query.into(), collection: None, limit: None, mode: None, filter: Filter::default(), hyde: None, rerank: None }
    }
}

/// What an optional search stage (HyDE, rerank) did (closed set). On the wire it is one
/// string, as it always was: `applied (...)` or `skipped: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum StageNote {
    /// It ran; the text says how (`applied (2 passages, how-to prompt)`).
    Applied(String),
    /// It did not run and the answer is degraded; the reason.
    Skipped(String),
}

impl StageNote {
    pub fn applied(detail: impl std::fmt::Display) -> Self {
        Self::Applied(format!("applied ({detail})"))
    }

    pub fn skipped(reason: impl std::fmt::Display) -> Self {
        Self::Skipped(reason.to_string())
    }

    pub fn is_skipped(&self) -> bool {
        matches!(self, Self::Skipped(_))
    }
}

impl std::fmt::Display for StageNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Applied(text) => f.write_str(text),
            Self::Skipped(reason) => write!(f, "skipped: {reason}"),
        }
    }
}

impl From<StageNote> for String {
    fn from(n: StageNote) -> Self {
        n.to_string()
    }
}

impl From<String> for StageNote {
    fn from(s: String) -> Self {
        match s.strip_prefix("skipped: ") {
            Some(reason) => Self::Skipped(reason.to_owned()),
            None => Self::Applied(s),
        }
    }
}

/// Milliseconds spent per stage of one search (0 for stages that did not run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub embed_ms: f64,
    pub hyde_ms: f64,
    pub search_ms: f64,
    pub rerank_ms: f64,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub id: String,
    pub score: f32,
    pub path: String,
    pub anchor: String,
    /// Deep link: document URL plus `#anchor` when the section has one.
    pub url: String,
    pub title: String,
    pub heading_path: Vec<String>,
    pub snippet: String,
    pub metadata: DocMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The collection that answered (an alias resolved).
    pub collection: String,
    pub mode: SearchMode,
    pub took_ms: f64,
    pub timings: StageTimings,
    /// Present when HyDE was requested: `applied (N passages, kind)` or `skipped: <reason>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyde: Option<StageNote>,
    /// Present when reranking was requested: `applied (model, K candidates)` or `skipped: <reason>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<StageNote>,
    /// Served from the search-result cache.
    #[serde(default)]
    pub cached: bool,
    pub hits: Vec<SearchHit>,
}

/// What to ingest.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRequest {
    pub path: PathBuf,
    pub collection: String,
    /// Overrides `ingest.metadata` for this run.
    pub metadata: DocMetadata,
    /// Overrides `ingest.base_url`.
    pub base_url: Option<String>,
}

/// A pre-split unit of text to index as one point (a BEIR document, an API record): no
/// parsing or chunking, the caller owns the split. The point id derives from `id`, so
/// writing the same id again replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub metadata: DocMetadata,
}

impl Record {
    /// What both encoders see: the title, then the text (BEIR's convention).
    pub fn encoder_text(&self) -> String {
        if self.title.is_empty() { self.text.clone() } else { format!("{} {}", self.title, self.text) }
    }
}

pub use crate::report::{IngestReport, SkippedFile};

/// Hits and misses of one kind of cached value, since the engine opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HitsMisses {
    pub hits: u64,
    pub misses: u64,
}

/// The cache's figures per kind of value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CacheKinds {
    pub embedding: HitsMisses,
    pub search: HitsMisses,
    pub hyde: HitsMisses,
}

/// The cache: backend, health, per-tier counters and per-kind hits (`GET /v1/admin/cache`).
#[derive(Debug, Clone, Serialize)]
pub struct CacheReport {
    pub backend: &'static str,
    /// `ok`, or `degraded: ...`.
    pub health: String,
    pub cache: aidocs_core::CacheStats,
    pub kinds: CacheKinds,
}

/// The verdict of `GET /health/detailed` (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    /// An optional dependency (cache, HyDE generator, reranker) fails; search still answers.
    Degraded,
    /// The store or the embedder fails.
    Unhealthy,
}

/// One dependency's probe: its status (`up`, `down`, `degraded`, `none`, `configured`,
/// `not_configured`) and what was learned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The dependency's circuit breaker: `closed`, `open` or `half_open`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

impl Probe {
    fn new(status: &'static str) -> Self {
        Self { status, backend: None, model: None, collections: None, health: None, circuit: None, error: None, latency_ms: None }
    }
}

/// Every dependency's probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Services {
    pub store: Probe,
    pub embedding: Probe,
    pub cache: Probe,
    pub generator: Probe,
    pub reranker: Probe,
}

/// The assembled service. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct Engine {
    cfg: Arc<Config>,
    /// The embedder as supplied (by `open` or `with_embedder`), before the engine's stack.
    base_embedder: Arc<dyn Embedder>,
    /// What the engine embeds with: `base_embedder` metered, behind its circuit breaker,
    /// then cached when there is a cache ([`Engine::compose_embedder`]).
    embedder: Arc<dyn Embedder>,
    /// The same stack without the cache: what health checks probe (a cached answer says
    /// nothing about whether the embedder works).
    uncached_embedder: Arc<dyn Embedder>,
    sparse: Arc<dyn SparseEncoder>,
    pub(crate) counter: Arc<dyn TokenCounter>,
    store: Arc<dyn VectorStore>,
    hyde: Option<Arc<Hyde>>,
    reranker: Option<Arc<dyn Reranker>>,
    cache: Option<Arc<EngineCache>>,
    /// One ingest at a time per engine: runs compute deltas against the stored state.
    pub(crate) ingest_lock: Arc<tokio::sync::Mutex<()>>,
    /// Collections whose embedding model was checked against this engine's (briefly cached:
    /// a replica may recreate a collection in a shared store).
    model_checked: moka::sync::Cache<String, ()>,
    metrics: Metrics,
    /// The circuit breakers by dependency name, shared with the metrics source.
    breakers: Breakers,
    /// Canary and blue-green state; `None` for engines assembled from parts.
    rollouts: Option<Arc<crate::rollout_state::Rollouts>>,
}

type Breakers = Arc<std::sync::RwLock<BTreeMap<&'static str, Arc<CircuitBreaker>>>>;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("store", &self.store.backend()).field("model", &self.embedder.model_id()).finish()
    }
}

impl Engine {
    /// Build every component from config: load the model, open the store (taking the
    /// data-dir lock).
    pub fn open(cfg: Config) -> Result<Self> {
        let (embedder, counter): (Arc<dyn Embedder>, Arc<dyn TokenCounter>) =
            match cfg.embedding.provider {
                EmbeddingProvider::Local => {
                    let local = LocalEmbedder::load(LocalEmbedderConfig {
                        model_dir: cfg.embedding.model_dir.clone(),
                        model_id: cfg.embedding.model_id.clone(),
                        max_seq_len: cfg.embedding.max_seq_len,
                        batch_size: cfg.embedding.batch_size,
                        memory: memory_probe(&cfg),
                    })?;
                    let counter = Arc::new(local.token_counter());
                    (Arc::new(local), counter)
                }
                EmbeddingProvider::Onnx => {
                    let lib = std::env::var_os("ORT_DYLIB_PATH")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| cfg.embedding.onnx_runtime_lib.clone());
                    let onnx = OnnxEmbedder::load(OnnxEmbedderConfig {
                        model_dir: cfg.embedding.onnx_model_dir.clone(),
                        runtime_lib: lib,
                        model_id: cfg.embedding.model_id.clone(),
                        max_seq_len: cfg.embedding.max_seq_len,
                        batch_size: cfg.embedding.batch_size,
                        memory: memory_probe(&cfg),
                        threads: cfg.embedding.threads,
                    })?;
                    let counter = Arc::new(onnx.token_counter());
                    (Arc::new(onnx), counter)
                }
                EmbeddingProvider::Openai => {
                    let remote = aidocs_embed::OpenAiEmbedder::new(
                        cfg.embedding.openai.to_embedder_config(),
                    )?;
                    // Chunk sizes in MiniLM tokens when its tokenizer is at hand (close to most BPE
                    // vocabularies), else 4 characters a token.
                    let counter: Arc<dyn TokenCounter> =
                        match aidocs_embed::ModelTokenCounter::load(&cfg.embedding.model_dir) {
                            Ok(c) => Arc::new(c),
                            Err(_) => Arc::new(aidocs_embed::ApproxTokenCounter),
                        };
                    (Arc::new(remote), counter)
                }
            };
        let sparse = Arc::new(Bm25Encoder::new(Bm25Config {
            k1: cfg.sparse.k1,
            b: cfg.sparse.b,
            avg_doc_len: cfg.sparse.avg_doc_len,
        }));
        let store = open_store(&cfg)?;
        let hyde = build_hyde(&cfg)?;
        let reranker = build_reranker(&cfg)?;
        let rollouts = crate::rollout_state::Rollouts::open(&cfg)?;
        let cache = build_cache(&cfg)?;
        let mut engine = Self::from_parts(cfg, embedder, sparse, counter, store).with_rollouts(rollouts);
        if let Some(h) = hyde {
            engine = engine.with_hyde(h);
        }
        if let Some(r) = reranker {
            engine = engine.with_reranker(r);
        }
        if let Some(c) = cache {
            engine = engine.with_cache(c);
        }
        Ok(engine)
    }

    /// Replace the embedder (e.g. to instrument [`Engine::base_embedder`]). It gets the
    /// same stack as the one it replaces (metering, a circuit breaker, the cache when there
    /// is one) in whatever order the builder methods are called.
    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.base_embedder = embedder;
        self.compose_embedder();
        self
    }

    /// Build the embedding stack over `base_embedder`: token metering, then the circuit
    /// breaker, then (with a cache) the cache, so cached embeddings are served while the
    /// embedder is down and every embedding that runs is metered once.
    fn compose_embedder(&mut self) {
        let provider = self.cfg.embedding.provider.as_str();
        let metered = MeteredEmbedder::new(self.base_embedder.clone(), self.counter.clone(), self.metrics.clone(), provider, self.cfg.embedding.price());
        let guarded = GuardedEmbedder::new(Arc::new(metered), self.cfg.breaker.to_core());
        self.set_breaker(guarded.breaker().clone());
        let guarded: Arc<dyn Embedder> = Arc::new(guarded);
        self.uncached_embedder = guarded.clone();
        self.embedder = match &self.cache {
            Some(c) => {
                let ttl = Duration::from_secs(self.cfg.cache.ttl.embedding_s);
                let cached = Arc::new(CachedEmbedder::new(guarded, c.cache.clone(), provider, ttl));
                *c.embedder.write().unwrap_or_else(|p| p.into_inner()) = cached.clone();
                cached
            }
            None => guarded,
        };
    }

    fn set_breaker(&self, b: Arc<CircuitBreaker>) {
        self.breakers.write().unwrap_or_else(|p| p.into_inner()).insert(b.name(), b);
    }

    /// The state of each circuit breaker by dependency (`embedding`, `generator`, `reranker`,
    /// `cache`).
    pub fn breaker_states(&self) -> BTreeMap<&'static str, BreakerState> {
        self.breakers.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, b)| (*k, b.state())).collect()
    }

    /// Cache embeddings, search results and HyDE passages in `cache` (TTLs from config).
    /// The embedding stack gets a [`CachedEmbedder`] on top ([`Engine::compose_embedder`]).
    pub fn with_cache(mut self, cache: Arc<dyn Cache>) -> Self {
        if let Some(circuit) = cache.circuit() {
            self.set_breaker(circuit);
        }
        // The placeholder is replaced by compose_embedder below.
        let placeholder = Arc::new(CachedEmbedder::new(self.base_embedder.clone(), cache.clone(), "", Duration::ZERO));
        let c = Arc::new(EngineCache { cache, embedder: std::sync::RwLock::new(placeholder), search: KindCounters::default(), hyde: KindCounters::default() });
        self.cache = Some(c.clone());
        self.compose_embedder();
        // Weak: the metrics outlive neither the engine nor keep its cache alive.
        let weak = Arc::downgrade(&c);
        self.metrics.add_source(move |snap| {
            if let Some(c) = weak.upgrade() {
                c.snapshot_into(snap);
            }
        });
        self
    }

    /// The same engine (shared components) with another hybrid fusion; for studies such as
    /// `aidocs eval --fusion`.
    pub fn with_fusion(&self, fusion: aidocs_core::Fusion) -> Self {
        let mut cfg = (*self.cfg).clone();
        cfg.search.fusion = fusion;
        Self { cfg: Arc::new(cfg), ..self.clone() }
    }

    /// Use `hyde` for HyDE requests; its generator gets a circuit breaker.
    pub fn with_hyde(mut self, hyde: Hyde) -> Self {
        let guarded = GuardedGenerator::new(hyde.generator().clone(), self.cfg.breaker.to_core());
        self.set_breaker(guarded.breaker().clone());
        self.hyde = Some(Arc::new(Hyde::new(Arc::new(guarded), hyde.config().clone())));
        self
    }

    /// Use `reranker` for rerank requests, behind a circuit breaker.
    pub fn with_reranker(mut self, reranker: Arc<dyn Reranker>) -> Self {
        let guarded = GuardedReranker::new(reranker, self.cfg.breaker.to_core());
        self.set_breaker(guarded.breaker().clone());
        self.reranker = Some(Arc::new(guarded));
        self
    }

    /// Assemble from ready components (for embedding aidocs with custom backends).
    pub fn from_parts(
        cfg: Config,
        embedder: Arc<dyn Embedder>,
        sparse: Arc<dyn SparseEncoder>,
        counter: Arc<dyn TokenCounter>,
        store: Arc<dyn VectorStore>,
    ) -> Self {
        let breakers: Breakers = Arc::default();
        // Fails only if the exporter cannot register with a fresh registry: a bug.
        let metrics = Metrics::new(env!("CARGO_PKG_VERSION")).expect("a fresh metrics registry");
        let weak = Arc::downgrade(&breakers);
        metrics.add_source(move |snap| {
            if let Some(b) = weak.upgrade() {
                for (name, b) in b.read().unwrap_or_else(|p| p.into_inner()).iter() {
                    snap.breakers.push((name, b.state() as u8, b.rejected()));
                }
            }
        });
        let mut engine = Self {
            cfg: Arc::new(cfg),
            base_embedder: embedder.clone(),
            uncached_embedder: embedder.clone(),
            embedder,
            sparse,
            counter,
            store,
            hyde: None,
            reranker: None,
            cache: None,
            ingest_lock: Default::default(),
            model_checked: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(30)).build(),
            metrics,
            breakers,
            rollouts: None,
        };
        engine.compose_embedder();
        engine
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn store(&self) -> &Arc<dyn VectorStore> {
        &self.store
    }

    /// What the engine embeds with: the full stack (metering, circuit breaker, cache).
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// The embedder as supplied, without the engine's stack: wrap this one to instrument it
    /// and hand the wrapper to [`Engine::with_embedder`].
    pub fn base_embedder(&self) -> &Arc<dyn Embedder> {
        &self.base_embedder
    }

    /// Replace the store, e.g. with a wrapper that instruments or injects faults into this
    /// engine's own store (`engine.store().clone()`).
    pub fn with_store(mut self, store: Arc<dyn VectorStore>) -> Self {
        self.store = store;
        self
    }

    /// Keep canary and blue-green state in `rollouts` (e.g. with a test clock).
    pub fn with_rollouts(mut self, rollouts: crate::rollout_state::Rollouts) -> Self {
        self.rollouts = Some(Arc::new(rollouts));
        self
    }

    /// The rollout machinery, when this engine has a state store.
    pub fn rollout_state(&self) -> Option<&Arc<crate::rollout_state::Rollouts>> {
        self.rollouts.as_ref()
    }

    /// The spec of a new collection for this engine's model.
    pub(crate) fn collection_spec(&self, name: &str) -> CollectionSpec {
        CollectionSpec {
            name: name.to_owned(),
            dims: self.embedder.dims(),
            properties: BTreeMap::from([(MODEL_PROPERTY.to_owned(), self.embedder.model_id().to_owned())]),
        }
    }

    /// This engine's metric instruments (`GET /metrics` renders them).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Read the values a scrape reports from the store (points per collection). Store
    /// errors are logged and leave the last values in place: a scrape never fails on them.
    pub async fn refresh_store_metrics(&self) {
        match self.store.list_collections().await {
            Ok(cs) => cs.iter().for_each(|c| self.metrics.store_points(&c.name, c.points as u64)),
            Err(e) => tracing::warn!(error = %e, "store metrics not refreshed"),
        }
    }

    /// A span around one search stage when `telemetry.request_tracing` is on (logged on
    /// close with its timings, exported over OTLP when configured); a no-op span otherwise.
    fn stage_span(&self, stage: Stage) -> tracing::Span {
        if !self.cfg.telemetry.request_tracing {
            return tracing::Span::none();
        }
        match stage {
            Stage::Embedding => tracing::info_span!("search.embed"),
            Stage::StoreQuery => tracing::info_span!("search.store_query"),
            Stage::HydeGeneration => tracing::info_span!("search.hyde"),
            Stage::Rerank => tracing::info_span!("search.rerank"),
        }
    }

    /// Validate a request against config limits; returns (query, limit, mode).
    fn validate(&self, req: &SearchRequest) -> Result<(String, usize, SearchMode)> {
        let s = &self.cfg.search;
        let query = req.query.trim();
        if query.is_empty() {
            return Err(Error::InvalidRequest("`query` must not be empty".into()));
        }
        if query.chars().count() > s.max_query_chars {
            return Err(Error::InvalidRequest(format!("`query` is longer than {} characters", s.max_query_chars)));
        }
        let values = req.filter.value_count();
        if values > s.max_filter_values {
            return Err(Error::InvalidRequest(format!("`filter` has {values} values; at most {} are allowed (search.max_filter_values)", s.max_filter_values)));
        }
        let longest = req.filter.longest_keyword();
        if longest > aidocs_core::filter::MAX_FILTER_KEYWORD_CHARS {
            return Err(Error::InvalidRequest(format!(
                "`filter` value of {longest} characters is longer than {}",
                aidocs_core::filter::MAX_FILTER_KEYWORD_CHARS
            )));
        }
        let limit = req.limit.unwrap_or(s.default_limit);
        if limit == 0 || limit > s.max_limit {
            return Err(Error::InvalidRequest(format!("`limit` must be between 1 and {} (got {limit})", s.max_limit)));
        }
        Ok((query.to_owned(), limit, req.mode.unwrap_or(s.default_mode)))
    }

    /// The search pipeline: validate, resolve alias, (HyDE), encode, one store query,
    /// (rerank), shape hits. HyDE and rerank failures degrade to the plain pipeline with a
    /// note in the response; they never fail the search.
    pub async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let started = Instant::now();
        let requested = req.mode.unwrap_or(self.cfg.search.default_mode);
        let r = self.search_inner(req, started).await;
        let secs = started.elapsed().as_secs_f64();
        match &r {
            Ok(resp) => {
                let outcome = if resp.cached { Outcome::Cached } else { Outcome::Ok };
                self.metrics.search(resp.mode.as_str(), outcome, secs, resp.hits.len(), None);
            }
            Err(e) => self.metrics.search(requested.as_str(), Outcome::Error, secs, 0, Some(e.code().as_str_and_status().0)),
        }
        r
    }

    async fn search_inner(&self, req: SearchRequest, started: Instant) -> Result<SearchResponse> {
        let (query, limit, mode) = self.validate(&req)?;
        let name = req.collection.clone().unwrap_or_else(|| self.cfg.search.default_collection.clone());
        let collection = self.store.resolve(&name).await?;
        self.check_model(&collection).await?;
        let mut timings = StageTimings::default();
        let want_hyde = req.hyde.unwrap_or(self.cfg.hyde.enabled);
        let want_rerank = req.rerank.unwrap_or(self.cfg.rerank.enabled);
        let cache_key = self.cache.as_ref().map(|_| self.search_key(&collection, &query, limit, mode, &req.filter, want_hyde, want_rerank));
        if let (Some(c), Some(key)) = (&self.cache, &cache_key)
            && let Some(mut hit) = c.get_json::<SearchResponse>(&c.search, key).await {
                hit.took_ms = ms(started);
                hit.cached = true;
                return Ok(hit);
            }
        let sparse = (mode != SearchMode::Dense).then(|| self.sparse.encode_query(&query));
        let mut effective = mode;
        if let Some(sv) = &sparse
            && sv.is_empty() {
                // Only stop words: lexical search has nothing to match.
                if mode == SearchMode::Sparse {
                    let skipped = |f: bool| f.then(|| StageNote::skipped("no searchable terms"));
                    return Ok(SearchResponse {
                        collection,
                        mode,
                        took_ms: ms(started),
                        timings,
                        hyde: skipped(want_hyde),
                        rerank: skipped(want_rerank),
                        cached: false,
                        hits: Vec::new(),
                    });
                }
                effective = SearchMode::Dense;
            }
        let mut hyde_note = None;
        let dense = if effective != SearchMode::Sparse {
            let passages = if want_hyde {
                let t = Instant::now();
                let (passages, note) = self.hyde_passages(&query).instrument(self.stage_span(Stage::HydeGeneration)).await;
                timings.hyde_ms = ms(t);
                hyde_note = Some(note);
                passages
            } else {
                Vec::new()
            };
            let t = Instant::now();
            let mut texts = Vec::with_capacity(1 + passages.len());
            texts.push(query.clone());
            texts.extend(passages);
            let mut vecs = self.embedder.embed(&texts).instrument(self.stage_span(Stage::Embedding)).await?;
            timings.embed_ms = ms(t);
            self.metrics.stage(Stage::Embedding, t.elapsed().as_secs_f64(), "");
            if vecs.is_empty() {
                return Err(Error::Internal("embedder returned no vector".into()));
            }
            let q = vecs.remove(0);
            let w = self.hyde.as_ref().map_or(1.0, |h| h.config().query_weight);
            Some(aidocs_hyde::combine(&q, &vecs, w))
        } else {
            if want_hyde {
                hyde_note = Some(StageNote::skipped("sparse mode does not use embeddings"));
            }
            None
        };
        let fetch = if want_rerank && self.reranker.is_some() { limit.max(self.cfg.rerank.top_k) } else { limit };
        let q = StoreQuery {
            mode: effective,
            dense,
            sparse,
            filter: req.filter.clone(),
            limit: fetch,
            prefetch_limit: self.cfg.search.prefetch_limit,
            fusion: self.cfg.search.fusion,
        };
        let t = Instant::now();
        let mut scored = self.store.query(&collection, &q).instrument(self.stage_span(Stage::StoreQuery)).await?;
        timings.search_ms = ms(t);
        self.metrics.stage(Stage::StoreQuery, t.elapsed().as_secs_f64(), effective.as_str());
        let rerank_note = if want_rerank {
            let t = Instant::now();
            let note = self.rerank(&query, &mut scored).instrument(self.stage_span(Stage::Rerank)).await;
            timings.rerank_ms = ms(t);
            Some(note)
        } else {
            None
        };
        scored.truncate(limit);
        let hits = scored
            .into_iter()
            .map(|s| {
                let p = s.payload;
                SearchHit {
                    id: s.id.to_string(),
                    score: s.score,
                    snippet: snippet(&p.text, self.cfg.search.snippet_chars),
                    path: p.path,
                    anchor: p.anchor,
                    url: p.url,
                    title: p.title,
                    heading_path: p.heading_path,
                    metadata: p.meta,
                }
            })
            .collect();
        let degraded = [&hyde_note, &rerank_note].into_iter().flatten().any(StageNote::is_skipped);
        let resp = SearchResponse { collection, mode, took_ms: ms(started), timings, hyde: hyde_note, rerank: rerank_note, cached: false, hits };
        if let (Some(c), Some(key), false) = (&self.cache, &cache_key, degraded) {
            // A degraded answer (a stage skipped) is not cached: the next request retries it.
            c.set_json(key, &resp, Duration::from_secs(self.cfg.cache.ttl.search_s)).await;
        }
        Ok(resp)
    }

    /// The search-result key: everything that shapes the answer, and the resolved
    /// collection, so an alias switch or a model change never serves an old entry.
    #[allow(clippy::too_many_arguments)]
    fn search_key(&self, collection: &str, query: &str, limit: usize, mode: SearchMode, filter: &Filter, hyde: bool, rerank: bool) -> String {
        let s = &self.cfg.search;
        let request = serde_json::json!({
            "q": aidocs_cache::keys::normalize_query(query),
            "mode": mode,
            "limit": limit,
            "filter": filter,
            "fusion": s.fusion,
            "prefetch": s.prefetch_limit,
            "snippet": s.snippet_chars,
            // The flag itself, then what would serve it (`None` when not configured).
            "hyde": (hyde, hyde.then(|| self.hyde.as_ref().map(|h| (h.generator().model_id().to_owned(), h.config().n, h.config().query_weight, aidocs_hyde::PROMPT_VERSION)))),
            "rerank": (rerank, rerank.then(|| self.reranker.as_ref().map(|r| (r.model_id().to_owned(), self.cfg.rerank.top_k)))),
        });
        let pipeline = format!("{PIPELINE_VERSION}:{}:{:?}:{:?}", self.embedder.model_id(), self.cfg.embedding.provider, self.cfg.sparse);
        aidocs_cache::keys::search(collection, &pipeline, &request.to_string())
    }

    /// Cache statistics per kind and per tier; `None` without a cache.
    pub fn cache_stats(&self) -> Option<CacheReport> {
        let c = self.cache.as_ref()?;
        let stats = c.cache.stats();
        let (hits, misses) = c.embedder.read().unwrap_or_else(|p| p.into_inner()).hits_misses();
        Some(CacheReport {
            backend: c.cache.backend(),
            health: stats.health.clone(),
            cache: stats,
            kinds: CacheKinds { embedding: HitsMisses { hits, misses }, search: c.search.snapshot(), hyde: c.hyde.snapshot() },
        })
    }

    /// Per-dependency health with probe latencies: the overall verdict is `healthy`,
    /// `degraded` (an optional dependency such as the cache is failing; search still answers)
    /// or `unhealthy` (the store or the embedder fails).
    pub async fn health_detailed(&self) -> (Health, Services) {
        let t = Instant::now();
        let store = match self.store.list_collections().await {
            Ok(c) => Probe { collections: Some(c.len()), ..Probe::new("up") },
            Err(e) => Probe { error: Some(e.to_string()), ..Probe::new("down") },
        };
        let store = Probe { backend: Some(self.store.backend().to_owned()), latency_ms: Some(ms(t)), ..store };
        let t = Instant::now();
        // A fixed probe text: after the first call it is an embedding-cache hit, so probing
        // often costs nothing and adds no keys.
        let embedding = match self.uncached_embedder.embed(&["aidocs health probe".to_owned()]).await {
            Ok(_) => Probe::new("up"),
            Err(e) => Probe { error: Some(e.to_string()), ..Probe::new("down") },
        };
        let states = self.breaker_states();
        let embedding = Probe {
            model: Some(self.embedder.model_id().to_owned()),
            latency_ms: Some(ms(t)),
            circuit: Some(states.get("embedding").map_or("closed", |s| s.as_str())),
            ..embedding
        };
        let cache = match &self.cache {
            None => Probe::new("none"),
            Some(c) => {
                let t = Instant::now();
                let probe = c.cache.get("v1:health-probe").await;
                let health = c.cache.stats().health;
                let status = if probe.is_ok() && health == "ok" { "up" } else { "degraded" };
                Probe { backend: Some(c.cache.backend().to_owned()), health: Some(health), latency_ms: Some(ms(t)), error: probe.err().map(|e| e.to_string()), ..Probe::new(status) }
            }
        };
        let optional = |model: Option<&str>, breaker: &str| match (model, states.get(breaker)) {
            (None, _) => Probe::new("not_configured"),
            (Some(m), Some(BreakerState::Open)) => Probe { model: Some(m.to_owned()), circuit: Some("open"), ..Probe::new("degraded") },
            (Some(m), state) => Probe { model: Some(m.to_owned()), circuit: Some(state.map_or("closed", |s| s.as_str())), ..Probe::new("configured") },
        };
        let generator = optional(self.hyde.as_ref().map(|h| h.generator().model_id()), "generator");
        let reranker = optional(self.reranker.as_ref().map(|r| r.model_id()), "reranker");
        let overall = if store.status != "up" || embedding.status != "up" {
            Health::Unhealthy
        } else if [&cache, &generator, &reranker].iter().any(|p| p.status == "degraded") {
            Health::Degraded
        } else {
            Health::Healthy
        };
        (overall, Services { store, embedding, cache, generator, reranker })
    }

    /// Health of the cache: `ok`, `degraded: ...`, or `none` without one.
    pub fn cache_health(&self) -> String {
        self.cache.as_ref().map_or_else(|| "none".to_owned(), |c| c.cache.stats().health)
    }

    /// Remove cached entries of one kind, or all kinds; returns how many were removed.
    pub async fn cache_clear(&self, kind: Option<CacheKind>) -> Result<u64> {
        let Some(c) = &self.cache else { return Ok(0) };
        aidocs_cache::clear(c.cache.as_ref(), kind).await.map_err(|e| Error::Unavailable(e.to_string()))
    }

    /// Drop cached search results of `collection` (after its content changed).
    pub(crate) async fn invalidate_search(&self, collection: &str) {
        if let Some(c) = &self.cache
            && let Err(e) = c.cache.delete_prefix(&aidocs_cache::keys::search_prefix(collection)).await {
                tracing::warn!(error = %e, collection, "could not drop cached search results; they expire with their TTL");
            }
    }

    /// HyDE passages for `query` and the note for the response; no passages on any failure.
    async fn hyde_passages(&self, query: &str) -> (Vec<String>, StageNote) {
        let Some(hyde) = &self.hyde else {
            self.metrics.hyde_query(Outcome::Skipped);
            return (Vec::new(), StageNote::skipped("hyde is not configured (set hyde.base_url)"));
        };
        let key = aidocs_cache::keys::hyde(hyde.generator().model_id(), aidocs_hyde::PROMPT_VERSION, hyde.config().n, query);
        if let Some(c) = &self.cache
            && let Some(passages) = c.get_json::<Vec<String>>(&c.hyde, &key).await {
                let note = StageNote::applied(format_args!("{} passages, cached", passages.len()));
                self.metrics.hyde_query(Outcome::Cached);
                return (passages, note);
            }
        let t = Instant::now();
        let expanded = hyde.expand(query).await;
        let outcome = match &expanded {
            Ok(_) => Outcome::Ok,
            Err(CoreError::CircuitOpen { .. }) => Outcome::Skipped,
            Err(_) => Outcome::Error,
        };
        self.metrics.stage(Stage::HydeGeneration, t.elapsed().as_secs_f64(), outcome.as_str());
        self.metrics.hyde_query(outcome);
        match expanded {
            Ok(x) => {
                let note = StageNote::applied(format_args!("{} passages, {} prompt", x.passages.len(), x.kind.as_str()));
                if let Some(c) = &self.cache {
                    c.set_json(&key, &x.passages, Duration::from_secs(self.cfg.cache.ttl.hyde_s)).await;
                }
                (x.passages, note)
            }
            Err(e) => {
                tracing::warn!(error = %e, "HyDE failed; searching without expansion");
                (Vec::new(), StageNote::skipped(e))
            }
        }
    }

    /// Rescore the first `rerank.top_k` candidates in place (best first); the rest keep the
    /// fused order after them. Returns the note for the response.
    async fn rerank(&self, query: &str, scored: &mut Vec<aidocs_core::ScoredChunk>) -> StageNote {
        let t = Instant::now();
        let (note, outcome) = self.rerank_inner(query, scored).await;
        self.metrics.stage(Stage::Rerank, t.elapsed().as_secs_f64(), outcome.as_str());
        self.metrics.rerank(outcome);
        note
    }

    async fn rerank_inner(&self, query: &str, scored: &mut Vec<aidocs_core::ScoredChunk>) -> (StageNote, Outcome) {
        let Some(reranker) = &self.reranker else {
            return (StageNote::skipped("no reranker configured (set rerank.engine)"), Outcome::Skipped);
        };
        let k = self.cfg.rerank.top_k.min(scored.len());
        if k == 0 {
            return (StageNote::skipped("no candidates"), Outcome::Skipped);
        }
        let passages: Vec<String> = scored[..k]
            .iter()
            .map(|s| if s.payload.title.is_empty() { s.payload.text.clone() } else { format!("{} {}", s.payload.title, s.payload.text) })
            .collect();
        let timeout = Duration::from_millis(self.cfg.rerank.timeout_ms);
        match tokio::time::timeout(timeout, reranker.rerank(query, &passages)).await {
            Ok(Ok(scores)) if scores.len() == k => {
                let mut head: Vec<_> = scored.drain(..k).zip(scores).collect();
                head.sort_by(|a, b| b.1.total_cmp(&a.1));
                let rest = std::mem::take(scored);
                scored.extend(head.into_iter().map(|(mut s, score)| {
                    s.score = score;
                    s
                }));
                scored.extend(rest);
                (StageNote::applied(format_args!("{}, {k} candidates", reranker.model_id())), Outcome::Ok)
            }
            Ok(Ok(scores)) => (StageNote::skipped(format_args!("reranker returned {} scores for {k} passages", scores.len())), Outcome::Error),
            Ok(Err(e @ CoreError::CircuitOpen { .. })) => (StageNote::skipped(e), Outcome::Skipped),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "rerank failed; keeping fused order");
                (StageNote::skipped(e), Outcome::Error)
            }
            Err(_) => (StageNote::skipped(format_args!("reranker timed out after {} ms", timeout.as_millis())), Outcome::Error),
        }
    }

    pub async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        Ok(self.store.list_collections().await?)
    }

    pub async fn collection(&self, name: &str) -> Result<CollectionInfo> {
        Ok(self.store.collection_info(name).await?)
    }

    pub async fn delete_collection(&self, name: &str) -> Result<()> {
        let resolved = self.store.resolve(name).await.unwrap_or_else(|_| name.to_owned());
        self.store.delete_collection(name).await?;
        self.model_checked.invalidate(&resolved);
        self.invalidate_search(&resolved).await;
        Ok(())
    }

    /// Refuse to query a collection built with another embedding model (its vectors would be
    /// garbage to this model's queries, even at equal dimensions).
    async fn check_model(&self, collection: &str) -> Result<()> {
        if self.model_checked.contains_key(collection) {
            return Ok(());
        }
        let info = self.store.collection_info(collection).await?;
        if let Some(found) = info.properties.get(MODEL_PROPERTY).filter(|f| *f != self.embedder.model_id()) {
            return Err(Error::ModelMismatch { collection: collection.to_owned(), expected: self.embedder.model_id().into(), found: found.clone() });
        }
        if info.dims != self.embedder.dims() {
            return Err(Error::ModelMismatch { collection: collection.to_owned(), expected: format!("{} ({} dims)", self.embedder.model_id(), self.embedder.dims()), found: format!("a model with {} dims", info.dims) });
        }
        self.model_checked.insert(collection.to_owned(), ());
        Ok(())
    }

    /// Resolve `name` to a collection, creating it for this engine's model if absent, and
    /// refuse collections built with another model.
    pub(crate) async fn ensure_collection(&self, name: &str) -> Result<String> {
        match self.store.resolve(name).await {
            Ok(c) => {
                // The same check as search: the model id and the vector size.
                self.check_model(&c).await?;
                Ok(c)
            }
            Err(StoreError::CollectionNotFound(_)) => {
                let spec = self.collection_spec(name);
                match self.store.create_collection(&spec).await {
                    Ok(()) | Err(StoreError::CollectionExists(_)) => Ok(name.to_owned()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The ingest pipeline. Incremental: unchanged documents are skipped without embedding,
    /// changed ones have all their chunks rewritten and stale chunks removed, documents gone
    /// from the tree are removed. Returns only after every write is durable.
    pub async fn ingest(&self, req: IngestRequest, progress: &dyn IngestProgress) -> Result<IngestReport> {
        let _one_at_a_time = self.ingest_lock.lock().await;
        let started = Instant::now();
        let base_url = req.base_url.clone().or_else(|| self.cfg.ingest.base_url.clone());
        let source = DirSource::new(&req.path, base_url)?;
        let collection = self.ensure_collection(&req.collection).await?;
        let defaults = DocMetadata::from(&self.cfg.ingest.metadata).overlay(&req.metadata);

        // What the collection holds for this source tree: source id -> (doc hashes, ids).
        // Ids and hashes only, of this source's documents only.
        let mut existing: HashMap<String, (HashSet<String>, Vec<uuid::Uuid>)> = HashMap::new();
        let owner = source.clone();
        for p in self.store.scroll_sources(&collection, Arc::new(move |s: &str| owner.owns(s))).await? {
            let e = existing.entry(p.source).or_default();
            e.0.insert(p.doc_hash);
            e.1.push(p.id);
        }

        // A directory walk is blocking I/O (200k entries take a while): off the async workers.
        progress.scanning();
        let files = {
            let source = source.clone();
            tokio::task::spawn_blocking(move || source.files()).await.map_err(|e| Error::Internal(format!("directory walk failed: {e}")))?
        };
        progress.start(files.len());
        let mut report = IngestReport { collection: collection.clone(), files_seen: files.len(), ..Default::default() };
        let mut batch = Batch::default();
        let mut seen = HashSet::new();
        for file in files {
            let loaded = {
                let (source, file, defaults, cfg, counter) =
                    (source.clone(), file.clone(), defaults.clone(), self.cfg.clone(), self.counter.clone());
                tokio::task::spawn_blocking(move || {
                    let bytes = std::fs::metadata(&file.abs).map_or(0, |m| m.len());
                    source.load(&file, &defaults).map(|doc| {
                        let chunks = prepare_chunks(&doc, &cfg, counter.as_ref());
                        (doc, chunks, bytes)
                    })
                })
                .await
                .map_err(|e| Error::Internal(format!("ingest task failed: {e}")))?
            };
            let (doc, chunks, bytes) = match loaded {
                Ok(x) => x,
                Err(reason) => {
                    if reason == Skipped::Empty {
                        // No text left: like a deleted file, its old chunks are removed below.
                    } else {
                        tracing::warn!(path = %file.abs.display(), %reason, "skipping file");
                        // A file that became unreadable keeps its old chunks: nothing is lost.
                        seen.insert(file.source_id());
                    }
                    report.skipped.push(SkippedFile { path: file.rel.clone(), reason: reason.to_string() });
                    progress.file_done(&file.rel, FileOutcome::Skipped);
                    continue;
                }
            };
            seen.insert(doc.source_id.clone());
            report.bytes_read += bytes;
            let Some(n) = batch.stage(&doc.doc_hash, chunks, existing.get(&doc.source_id)) else {
                report.documents_unchanged += 1;
                progress.file_done(&file.rel, FileOutcome::Unchanged);
                continue;
            };
            report.documents_written += 1;
            report.chunks_written += n;
            progress.file_done(&file.rel, FileOutcome::Written);
            if batch.chunks.len() >= self.cfg.ingest.batch_size {
                report.points_deleted += self.flush(&collection, &mut batch).await?;
            }
        }
        report.points_deleted += self.flush(&collection, &mut batch).await?;
        // Documents that disappeared from the tree.
        let gone: Vec<uuid::Uuid> = existing
            .iter()
            .filter(|(src, _)| !seen.contains(*src))
            .flat_map(|(_, (_, ids))| ids.iter().copied())
            .collect();
        report.documents_deleted = existing.keys().filter(|src| !seen.contains(*src)).count();
        report.points_deleted += gone.len();
        self.store.delete(&collection, gone).await?;
        self.writes_done(
            &collection,
            report.chunks_written > 0 || report.points_deleted > 0,
        )
        .await?;
        report.took_ms = ms(started);
        let m = &self.metrics;
        m.ingest_documents("written", report.documents_written as u64);
        m.ingest_documents("unchanged", report.documents_unchanged as u64);
        m.ingest_documents("deleted", report.documents_deleted as u64);
        m.ingest_documents("skipped", report.skipped.len() as u64);
        m.ingest_volume(report.chunks_written as u64, report.bytes_read);
        progress.finish(&report);
        Ok(report)
    }

    /// Embed and write `records` (one point each) into `collection`, created if absent.
    /// Returns the number of points written.
    pub async fn upsert_records(&self, collection: &str, source: &str, records: Vec<Record>) -> Result<usize> {
        let texts: Vec<String> = records.iter().map(Record::encoder_text).collect();
        let dense = self.embedder.embed(&texts).await?;
        self.write_records(collection, source, records.into_iter().zip(dense).collect()).await
    }

    /// Write records whose dense vectors the caller already has (e.g. from a cache keyed by
    /// this engine's model id). Vectors must have the collection's dimensions.
    pub async fn write_records(&self, collection: &str, source: &str, records: Vec<(Record, Vec<f32>)>) -> Result<usize> {
        let collection = self.ensure_collection(collection).await?;
        let n = records.len();
        let sparse = self.sparse.clone();
        let source = source.to_owned();
        let points = tokio::task::spawn_blocking(move || {
            records
                .into_iter()
                .map(|(r, dense)| {
                    let text = r.encoder_text();
                    let content_hash = sha256_hex(&text);
                    Point {
                        id: point_id(&source, 0, &r.id),
                        sparse: sparse.encode_doc(&text),
                        dense,
                        payload: ChunkPayload {
                            source: source.clone(),
                            path: r.id,
                            url: r.url,
                            title: r.title,
                            anchor: String::new(),
                            heading_path: Vec::new(),
                            text: r.text,
                            chunk_index: 0,
                            doc_hash: content_hash.clone(),
                            content_hash,
                            meta: r.metadata,
                        },
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Error::Internal(format!("encode task failed: {e}")))?;
        for chunk in points.chunks(self.cfg.ingest.batch_size.max(1)).map(<[Point]>::to_vec) {
            self.store.upsert(&collection, chunk).await?;
        }
        self.invalidate_search(&collection).await;
        Ok(n)
    }

    /// Optimize a collection's storage (merge segments, build indexes).
    pub async fn optimize(&self, collection: &str) -> Result<()> {
        let c = self.store.resolve(collection).await?;
        Ok(self.store.optimize(&c).await?)
    }

    /// The end of every ingest (directory or web): when anything changed, drop cached
    /// searches of the collection and, with `ingest.optimize`, optimize its storage.
    pub(crate) async fn writes_done(&self, collection: &str, changed: bool) -> Result<()> {
        if changed {
            self.invalidate_search(collection).await;
            if self.cfg.ingest.optimize {
                self.store.optimize(collection).await?;
            }
        }
        Ok(())
    }

    /// Embed and write pending chunks, then delete the stale ids they replace.
    pub(crate) async fn flush(&self, collection: &str, batch: &mut Batch) -> Result<usize> {
        let chunks = std::mem::take(&mut batch.chunks);
        let deletes = std::mem::take(&mut batch.deletes);
        if !chunks.is_empty() {
            let texts: Vec<String> = chunks.iter().map(|c| c.1.clone()).collect();
            let dense = self.embedder.embed(&texts).await?;
            let points = chunks
                .into_iter()
                .zip(dense)
                .map(|((id, text, payload), dense)| Point { id, sparse: self.sparse.encode_doc(&text), dense, payload })
                .collect();
            self.store.upsert(collection, points).await?;
        }
        let n = deletes.len();
        self.store.delete(collection, deletes).await?;
        Ok(n)
    }
}

/// Open the vector store `cfg` describes, taking its data-dir lock (no model, no cache:
/// what the engine and a migration share).
pub fn open_store(cfg: &Config) -> Result<Arc<dyn VectorStore>> {
    Ok(match cfg.vector_store.kind {
        StoreKind::Embedded => Arc::new(EdgeStore::open(cfg.vector_store.to_edge(&cfg.data_dir))?),
        // No I/O here: the server is checked by `VectorStore::check` before serving.
        StoreKind::Qdrant => Arc::new(aidocs_store::QdrantStore::new(cfg.vector_store.to_qdrant())?),
    })
}

/// Pending writes of an ingest run: (id, text to encode, payload) and ids to delete after.
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) chunks: Vec<(uuid::Uuid, String, ChunkPayload)>,
    pub(crate) deletes: Vec<uuid::Uuid>,
}

impl Batch {
    /// Queue a document's chunks, unless `old` (its hashes and point ids in the store) says
    /// it is unchanged and complete: then `None`. Complete means the store holds exactly the
    /// ids its chunks have (ids are deterministic), so a document whose write was cut short
    /// between two batches (a crash, a killed server) is written again, never taken for
    /// unchanged. The old ids the new chunks do not reuse are deleted after the write
    /// (upsert first, so a crash in between never leaves a hole). Returns the number of
    /// chunks queued.
    pub(crate) fn stage(&mut self, doc_hash: &str, chunks: Vec<(uuid::Uuid, String, ChunkPayload)>, old: Option<&(HashSet<String>, Vec<uuid::Uuid>)>) -> Option<usize> {
        let new_ids: HashSet<uuid::Uuid> = chunks.iter().map(|c| c.0).collect();
        let complete = |ids: &Vec<uuid::Uuid>| ids.len() == new_ids.len() && ids.iter().all(|id| new_ids.contains(id));
        if old.is_some_and(|(hashes, ids)| hashes.len() == 1 && hashes.contains(doc_hash) && complete(ids)) {
            return None;
        }
        if let Some((_, ids)) = old {
            self.deletes.extend(ids.iter().filter(|id| !new_ids.contains(id)));
        }
        let n = chunks.len();
        self.chunks.extend(chunks);
        Some(n)
    }
}

/// Chunk a document and build each chunk's id, encoder text and payload.
pub(crate) fn prepare_chunks(doc: &Document, cfg: &Config, counter: &dyn TokenCounter) -> Vec<(uuid::Uuid, String, ChunkPayload)> {
    let chunker = Chunker::new(
        ChunkerConfig { max_tokens: cfg.chunking.max_tokens, overlap_tokens: cfg.chunking.overlap_tokens },
        counter,
    );
    chunker
        .chunk(&doc.title, &doc.sections)
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let content_hash = sha256_hex(&c.text);
            let id = point_id(&doc.source_id, i as u32, &content_hash);
            let text = c.embedding_text(&doc.title);
            let url = if c.anchor.is_empty() { doc.url.clone() } else { format!("{}#{}", doc.url, c.anchor) };
            let payload = ChunkPayload {
                source: doc.source_id.clone(),
                path: doc.path.clone(),
                url,
                title: doc.title.clone(),
                anchor: c.anchor,
                heading_path: c.heading_path,
                text: c.text,
                chunk_index: i as u32,
                content_hash,
                doc_hash: doc.doc_hash.clone(),
                meta: doc.meta.clone(),
            };
            (id, text, payload)
        })
        .collect()
}

/// Bump when the search pipeline changes what it returns for the same inputs: cached
/// results of other versions are then never served.
pub const PIPELINE_VERSION: &str = "search-1";

/// Hit/miss counters of one cache kind.
#[derive(Debug, Default)]
struct KindCounters {
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl KindCounters {
    fn snapshot(&self) -> HitsMisses {
        use std::sync::atomic::Ordering::Relaxed;
        HitsMisses { hits: self.hits.load(Relaxed), misses: self.misses.load(Relaxed) }
    }
}

/// The engine's cache and its per-kind counters.
struct EngineCache {
    cache: Arc<dyn Cache>,
    /// The top of the embedding stack; replaced when the embedder is.
    embedder: std::sync::RwLock<Arc<CachedEmbedder>>,
    search: KindCounters,
    hyde: KindCounters,
}

impl EngineCache {
    /// Per-kind and per-tier counters for a metrics scrape.
    fn snapshot_into(&self, snap: &mut aidocs_obs::Snapshot) {
        use std::sync::atomic::Ordering::Relaxed;
        let (eh, em) = self.embedder.read().unwrap_or_else(|p| p.into_inner()).hits_misses();
        snap.cache_kinds.push(("embedding", eh, em));
        snap.cache_kinds.push(("search", self.search.hits.load(Relaxed), self.search.misses.load(Relaxed)));
        snap.cache_kinds.push(("hyde", self.hyde.hits.load(Relaxed), self.hyde.misses.load(Relaxed)));
        let stats = self.cache.stats();
        let tiers = if stats.tiers.is_empty() { vec![stats] } else { stats.tiers };
        for t in tiers {
            snap.cache_tiers.push((t.backend, t.hits, t.misses, t.errors));
        }
    }

    /// A JSON value from the cache; errors and undecodable values are misses.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, counters: &KindCounters, key: &str) -> Option<T> {
        use std::sync::atomic::Ordering::Relaxed;
        let v = self.cache.get(key).await.ok().flatten().and_then(|b| serde_json::from_slice(&b).ok());
        if v.is_some() { counters.hits.fetch_add(1, Relaxed) } else { counters.misses.fetch_add(1, Relaxed) };
        v
    }

    async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        if let Ok(bytes) = serde_json::to_vec(value)
            && let Err(e) = self.cache.set(key, bytes, ttl).await {
                tracing::debug!(error = %e, "cache write skipped");
            }
    }
}

/// The cache from config: none, moka, or moka (L1) in front of Redis behind a breaker (L2).
/// Needs a tokio runtime (Redis connections are spawned tasks).
pub fn build_cache(cfg: &Config) -> Result<Option<Arc<dyn Cache>>> {
    let c = &cfg.cache;
    let memory = || MemoryCache::new(c.memory_mb.max(1) * 1024 * 1024);
    Ok(match c.kind {
        CacheBackend::None => None,
        CacheBackend::Memory => Some(Arc::new(memory())),
        CacheBackend::Redis => {
            let url = c.effective_url().ok_or_else(|| Error::InvalidRequest("cache.kind = redis needs cache.url or REDIS_URL".into()))?;
            let redis = RedisCache::new(RedisCacheConfig {
                url,
                namespace: c.namespace.clone(),
                pool_size: c.pool_size,
                timeout: Duration::from_millis(c.timeout_ms),
                compress_threshold: c.compress_threshold,
            })
            .map_err(|e| Error::Unavailable(e.to_string()))?;
            let guarded = Breaker::new(redis, BreakerConfig { timeout: Duration::from_millis(c.timeout_ms), circuit: cfg.breaker.to_core() });
            Some(Arc::new(TieredCache::new(memory(), Arc::new(guarded), Duration::from_secs(c.l1_ttl_s))))
        }
    })
}

/// The HyDE expander from config; `None` when `hyde.base_url` is empty.
fn build_hyde(cfg: &Config) -> Result<Option<Hyde>> {
    let h = &cfg.hyde;
    if h.base_url.is_empty() {
        return Ok(None);
    }
    let api_key = h.api_key.clone();
    let timeout = Duration::from_millis(h.timeout_ms);
    let generator = OpenAiGenerator::new(OpenAiGeneratorConfig {
        base_url: h.base_url.clone(),
        api_key,
        model: h.model.clone(),
        temperature: h.temperature,
        max_tokens: h.max_tokens,
        timeout,
    })?;
    Ok(Some(Hyde::new(Arc::new(generator), HydeConfig { n: h.n, query_weight: h.query_weight, timeout })))
}

/// The memory probe of adaptive batching, when `embedding.adaptive_batching` is on.
fn memory_probe(cfg: &Config) -> Option<Arc<dyn aidocs_embed::memory::MemoryProbe>> {
    cfg.embedding.adaptive_batching.then(|| {
        Arc::new(aidocs_embed::memory::SystemMemory::new())
            as Arc<dyn aidocs_embed::memory::MemoryProbe>
    })
}

/// The reranker from config; `None` for `engine = "none"`.
fn build_reranker(cfg: &Config) -> Result<Option<Arc<dyn Reranker>>> {
    let r = &cfg.rerank;
    Ok(match r.engine {
        RerankEngine::None => None,
        RerankEngine::Local => Some(Arc::new(CrossEncoder::load(CrossEncoderConfig {
            model_dir: r.model_dir.clone(),
            model_id: r.model.clone(),
            max_seq_len: r.max_seq_len,
            batch_size: cfg.embedding.batch_size,
        })?)),
        RerankEngine::Http => Some(Arc::new(HttpReranker::new(HttpRerankerConfig {
            url: r.url.clone(),
            api: r.api,
            model: r.model.clone(),
            api_key: r.api_key.clone(),
            timeout: Duration::from_millis(r.timeout_ms),
        })?)),
    })
}

pub(crate) fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// First `max` characters of `text` on a word boundary, with an ellipsis when cut.
pub fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::StageNote;

    #[test]
    fn stage_notes_keep_their_wire_strings() {
        let applied = StageNote::applied("2 passages, how-to prompt");
        let skipped = StageNote::skipped("hyde is not configured (set hyde.base_url)");
        assert_eq!(serde_json::to_value(&applied).unwrap(), "applied (2 passages, how-to prompt)");
        assert_eq!(serde_json::to_value(&skipped).unwrap(), "skipped: hyde is not configured (set hyde.base_url)");
        for n in [applied, skipped] {
            let back: StageNote = serde_json::from_value(serde_json::to_value(&n).unwrap()).unwrap();
            assert_eq!(back, n);
        }
        assert!(StageNote::skipped("x").is_skipped() && !StageNote::applied("y").is_skipped());
    }

    #[test]
    fn snippet_cuts_on_words() {
        assert_eq!(super::snippet("short  text\nhere", 50), "short text here");
        assert_eq!(super::snippet("alpha beta gamma delta", 12), "alpha beta…");
    }
}
