//! [`Engine`]: the assembled service. Built from [`Config`]; runs the search and ingest
//! pipelines over the layer crates' traits.

use crate::config::{CacheBackend, Config, EmbeddingProvider, RerankEngine, StoreKind};
use aidocs_cache::keys::CacheKind;
use aidocs_cache::{Breaker, BreakerConfig, Cache, CachedEmbedder, MemoryCache, RedisCache, RedisCacheConfig, TieredCache};
use std::time::Duration;
use crate::error::{Error, Result};
use crate::guard::{GuardedEmbedder, GuardedGenerator, GuardedReranker};
use crate::metered::MeteredEmbedder;
use aidocs_core::{BreakerState, CircuitBreaker, CollectionSpec, Embedder, Reranker, SparseEncoder, TokenCounter, VectorStore};
use aidocs_embed::{
    Bm25Config, Bm25Encoder, CrossEncoder, CrossEncoderConfig, HttpReranker, HttpRerankerConfig, LocalEmbedder,
    LocalEmbedderConfig, OnnxEmbedder, OnnxEmbedderConfig,
};
use aidocs_obs::Metrics;
use aidocs_hyde::{Hyde, HydeConfig, OpenAiGenerator, OpenAiGeneratorConfig};
use aidocs_store::EdgeStore;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Collection property naming the embedding model its vectors came from.
pub const MODEL_PROPERTY: &str = "embedding_model";

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

/// Where the warm-up is. Readiness answers 503 (`warming`) only while it runs: an engine
/// that was never warmed (embedded in another program, a test) is ready at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WarmState {
    #[default]
    NotStarted,
    Running,
    Done(WarmReport),
}

/// What one warm-up did and how long each part took.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WarmReport {
    /// Wall time of the embeddings, in milliseconds.
    pub embed_ms: f64,
    /// Wall time of the store queries, in milliseconds.
    pub store_ms: f64,
    /// Collections queried.
    pub collections: Vec<String>,
    /// Collections that could not be queried, with why (another model's vectors, a store
    /// error): the warm-up goes on without them.
    pub skipped: Vec<String>,
    /// The embedder failed: the store was warmed with sparse queries only.
    pub embed_error: Option<String>,
    /// The warm-up took longer than its limit and was given up (`crate::warm::LIMIT`).
    pub timed_out: bool,
}

/// What a collection's default version is decided from (cached per collection by the engine).
pub(crate) struct VersionFacts {
    /// Its `version` values, in version order.
    pub(crate) versions: Arc<Vec<String>>,
    /// How many `framework` values it holds, up to 2 (counted only with several versions).
    pub(crate) frameworks: usize,
}

/// The assembled service. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct Engine {
    pub(crate) cfg: Arc<Config>,
    /// The embedder as supplied (by `open` or `with_embedder`), before the engine's stack.
    base_embedder: Arc<dyn Embedder>,
    /// What the engine embeds with: `base_embedder` metered, behind its circuit breaker,
    /// then cached when there is a cache ([`Engine::compose_embedder`]).
    pub(crate) embedder: Arc<dyn Embedder>,
    /// The same stack without the cache: what health checks probe (a cached answer says
    /// nothing about whether the embedder works).
    pub(crate) uncached_embedder: Arc<dyn Embedder>,
    pub(crate) sparse: Arc<dyn SparseEncoder>,
    pub(crate) counter: Arc<dyn TokenCounter>,
    pub(crate) store: Arc<dyn VectorStore>,
    pub(crate) hyde: Option<Arc<Hyde>>,
    pub(crate) reranker: Option<Arc<dyn Reranker>>,
    pub(crate) cache: Option<Arc<EngineCache>>,
    /// One ingest at a time per engine: runs compute deltas against the stored state.
    pub(crate) ingest_lock: Arc<tokio::sync::Mutex<()>>,
    /// Collections whose embedding model was checked against this engine's (briefly cached:
    /// a replica may recreate a collection in a shared store).
    pub(crate) model_checked: moka::sync::Cache<String, ()>,
    /// The `version` values of each collection, in version order, and how many libraries it
    /// holds (briefly cached; dropped when the collection's content changes here).
    pub(crate) versions: moka::sync::Cache<String, Arc<VersionFacts>>,
    pub(crate) metrics: Metrics,
    /// The circuit breakers by dependency name, shared with the metrics source.
    breakers: Breakers,
    /// Canary and blue-green state; `None` for engines assembled from parts.
    rollouts: Option<Arc<crate::rollout_state::Rollouts>>,
    /// Where the start's warm-up is (`crate::warm`); readiness reads it.
    warm: Arc<std::sync::RwLock<WarmState>>,
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
    pub fn open(mut cfg: Config) -> Result<Self> {
        // A config built in code may still say `auto`; a loaded one names its engine.
        cfg.embedding.provider = cfg.embedding.engine();
        log_engine_choice(&cfg.embedding);
        let (embedder, counter): (Arc<dyn Embedder>, Arc<dyn TokenCounter>) =
            match cfg.embedding.provider {
                EmbeddingProvider::Local | EmbeddingProvider::Auto => {
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
                    let lib = cfg.embedding.onnx_runtime_lib.clone();
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
        crate::clones::sweep_stale_clones(&cfg.data_dir.join("sources"));
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
            versions: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(30)).build(),
            metrics,
            breakers,
            rollouts: None,
            warm: Arc::default(),
        };
        engine.compose_embedder();
        engine
    }

    /// Where the warm-up at start is: [`WarmState::Running`] makes readiness answer 503.
    pub fn warm_state(&self) -> WarmState {
        self.warm.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_warm_state(&self, state: WarmState) {
        *self.warm.write().unwrap_or_else(|p| p.into_inner()) = state;
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

    /// Dense vectors of `texts` from the engine's embedder stack; a failure names the
    /// embedder (provider and model) and says whether it is a remote service.
    pub(crate) async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.embedder.embed(texts).await.map_err(|source| {
            let provider = self.cfg.embedding.provider;
            Error::Dependency {
                dependency: format!("embedder {} ({})", provider.as_str(), self.embedder.model_id()),
                remote: provider == EmbeddingProvider::Openai,
                source,
            }
        })
    }

    /// The token counter of the embedding model (what budgets are counted in).
    pub fn counter(&self) -> &Arc<dyn TokenCounter> {
        &self.counter
    }

    /// The sparse (BM25) encoder of documents and queries.
    pub fn sparse(&self) -> &Arc<dyn SparseEncoder> {
        &self.sparse
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

    /// Where this engine's scheduled work is coordinated: its rollout state (shared with
    /// the other replicas when in Redis); an engine without one runs its schedules alone,
    /// with slots under `<data_dir>/rollout/`.
    pub fn scheduler(&self) -> Result<crate::scheduler::Coordinator> {
        if let Some(r) = &self.rollouts {
            return Ok(r.coordinator());
        }
        let store = aidocs_rollout::FileStateStore::open(&self.cfg.data_dir.join("rollout")).map_err(crate::rollout_state::rollout_err)?;
        Ok(crate::scheduler::Coordinator::new(Arc::new(store), Arc::new(aidocs_rollout::SystemWallClock)))
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
            backend: Some(self.cfg.embedding.provider.as_str().to_owned()),
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
        self.versions.invalidate(collection);
        if let Some(c) = &self.cache
            && let Err(e) = c.cache.delete_prefix(&aidocs_cache::keys::search_prefix(collection)).await {
                tracing::warn!(error = %e, collection, "could not drop cached search results; they expire with their TTL");
            }
    }

}

/// One line at start that says which engine embeds, and, when candle does because ONNX
/// Runtime is missing, where it was looked for and how to get it.
fn log_engine_choice(e: &crate::config::EmbeddingSettings) {
    match e.provider {
        EmbeddingProvider::Onnx => tracing::info!(engine = "onnx", model = %e.onnx_model_dir.display(), runtime = %e.onnx_runtime_lib.display(), "embedding with ONNX Runtime (int8)"),
        EmbeddingProvider::Local | EmbeddingProvider::Auto if e.onnx_present() => tracing::info!(engine = "local", model = %e.model_dir.display(), "embedding with candle, as configured"),
        EmbeddingProvider::Local | EmbeddingProvider::Auto => tracing::info!(
            engine = "local",
            model = %e.model_dir.display(),
            "embedding with candle; ONNX Runtime, several times faster, is not at {} with its model in {} (`cargo xtask models` fetches both)",
            e.onnx_runtime_lib.display(),
            e.onnx_model_dir.display()
        ),
        EmbeddingProvider::Openai => tracing::info!(engine = "openai", base_url = %e.openai.base_url, model = %e.openai.model, "embedding through an OpenAI-compatible API"),
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

/// Hit/miss counters of one cache kind.
#[derive(Debug, Default)]
pub(crate) struct KindCounters {
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
pub(crate) struct EngineCache {
    pub(crate) cache: Arc<dyn Cache>,
    /// The top of the embedding stack; replaced when the embedder is.
    embedder: std::sync::RwLock<Arc<CachedEmbedder>>,
    pub(crate) search: KindCounters,
    pub(crate) hyde: KindCounters,
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
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(&self, counters: &KindCounters, key: &str) -> Option<T> {
        use std::sync::atomic::Ordering::Relaxed;
        let v = self.cache.get(key).await.ok().flatten().and_then(|b| serde_json::from_slice(&b).ok());
        if v.is_some() { counters.hits.fetch_add(1, Relaxed) } else { counters.misses.fetch_add(1, Relaxed) };
        v
    }

    pub(crate) async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
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
