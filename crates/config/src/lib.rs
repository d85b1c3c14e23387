//! `aidocs-config`: the settings of aidocs, one typed tree, layered with figment and
//! resolved once.
//!
//! Owns: the settings sections (one struct per section, named `*Settings`), templates,
//! the raw layers (defaults, template, file, `AIDOCS__*`), [`resolve`] (every environment
//! fallback such as `REDIS_URL` or `QDRANT_URL`, in one place, then per-section validation),
//! redaction for `aidocs config show`, and `config migrate` ([`migrate`]).
//!
//! Must not know: how a setting is used. It converts sections into the leaf crates' own
//! parameter types (store, embed, backup, crawl) and nothing above them: no engine, no HTTP.
//!
//! Layers, lowest first: built-in defaults -> template (`template` key or `CONFIG_TEMPLATE`:
//! `personal-use`, `development`, `production`, `testing`; `minimal-cost` is the old name of
//! `personal-use`) -> config file (`--config`, TOML or JSON by extension) -> environment
//! (`AIDOCS__SECTION__KEY`). Unknown keys are rejected with their path.

use aidocs_core::{Fusion, SearchMode};
use figment::Figment;
use figment::providers::{Env, Format, Json, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod migrate;

/// Templates shipped in `config/templates/`, compiled in.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("personal-use", include_str!("../../../config/templates/personal-use.json")),
    ("development", include_str!("../../../config/templates/development.json")),
    ("production", include_str!("../../../config/templates/production.json")),
    ("testing", include_str!("../../../config/templates/testing.json")),
];

/// One line per template (`aidocs config templates`).
pub const TEMPLATE_SUMMARIES: &[(&str, &str)] = &[
    ("personal-use", "one machine on the embedded defaults: local model, embedded store, in-process cache, listens on 127.0.0.1 (formerly `minimal-cost`)"),
    ("development", "local development: data in data-dev/, no index optimisation after ingest (fast re-ingest)"),
    ("production", "listens on 0.0.0.0:8000, 1 MiB request bodies, up to 100 results per search, indexes optimised after ingest"),
    ("testing", "automated tests: a random port, small WAL segments, indexes optimised after ingest"),
];

/// Deprecated template names and what they load.
const TEMPLATE_ALIASES: &[(&str, &str)] = crate::migrate::TEMPLATE_RENAMES;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Template this config was layered on (informational after loading).
    pub template: Option<String>,
    /// Where collections, the catalog and the lock live.
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub embedding: EmbeddingSettings,
    pub sparse: SparseSettings,
    pub chunking: ChunkingSettings,
    pub search: SearchSettings,
    /// The vector store (formerly `[store]`; `aidocs config migrate` renames it).
    pub vector_store: StoreSettings,
    pub ingest: IngestSettings,
    pub hyde: HydeSettings,
    pub rerank: RerankSettings,
    pub cache: CacheSettings,
    pub auth: AuthSettings,
    pub breaker: BreakerSettings,
    pub telemetry: TelemetrySettings,
    pub rollout: RolloutSettings,
    pub backup: BackupSettings,
    pub crawl: CrawlSettings,
}

/// Web ingestion (`aidocs ingest URL`, `--sitemap`, `--urls`, `aidocs sync`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrawlSettings {
    pub user_agent: String,
    pub max_pages: usize,
    pub max_depth: usize,
    /// Requests in flight at most, over all hosts...
    pub concurrency: usize,
    /// ...and per host.
    pub per_host_concurrency: usize,
    /// Minimum time between two requests to one host (robots.txt `Crawl-delay` raises it).
    pub min_delay_ms: u64,
    pub timeout_ms: u64,
    /// Larger responses are skipped unread.
    pub max_bytes: u64,
    pub max_redirects: usize,
    pub retries: u32,
    /// Hosts allowed to resolve to private, loopback or link-local addresses (an intranet
    /// docs site). Everything else internal is refused.
    pub allow_hosts: Vec<String>,
    /// A page that answers 404/410 this many crawls in a row loses its chunks.
    pub remove_after_misses: u32,
}

impl Default for CrawlSettings {
    fn default() -> Self {
        let d = aidocs_crawl::CrawlConfig::default();
        Self {
            user_agent: d.user_agent,
            max_pages: d.max_pages,
            max_depth: d.max_depth,
            concurrency: d.global_concurrency,
            per_host_concurrency: d.per_host_concurrency,
            min_delay_ms: d.min_delay.as_millis() as u64,
            timeout_ms: d.timeout.as_millis() as u64,
            max_bytes: d.max_bytes,
            max_redirects: d.max_redirects,
            retries: d.retries,
            allow_hosts: Vec::new(),
            remove_after_misses: 2,
        }
    }
}

/// Backups of the index (`aidocs backup`, `/v1/admin/backups`, and the server's schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSettings {
    /// Where archives go: a directory (default `<data_dir>/backups`), `file:///dir`, or an
    /// object store URL (`s3://bucket/prefix`, `gs://...`, `az://...`; credentials from
    /// the environment). Env `AIDOCS_BACKUP_DEST`.
    pub dest: Option<String>,
    /// Cron expression (5 fields, UTC) for backups made by the server; none = no schedule.
    pub schedule: Option<String>,
    /// What the schedule makes: `incremental` falls back to full when no base exists.
    #[serde(rename = "type")]
    pub kind: aidocs_backup::BackupKind,
    /// Collections (or aliases) the schedule backs up; empty = `search.default_collection`.
    pub collections: Vec<String>,
    /// Retention applied after each scheduled backup and by `backup prune`.
    pub keep_last: Option<usize>,
    pub keep_days: Option<u32>,
    /// Points per archive batch.
    pub batch_points: usize,
    /// Points a restore compares bit for bit with the archive.
    pub sample_points: usize,
    /// Validation queries a restore (and the drill) runs on the restored collection: each
    /// must return at least one hit before an alias moves.
    pub validate_queries: Vec<String>,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            dest: None,
            schedule: None,
            kind: aidocs_backup::BackupKind::Full,
            collections: Vec::new(),
            keep_last: Some(7),
            keep_days: None,
            batch_points: 1000,
            sample_points: 64,
            validate_queries: Vec::new(),
        }
    }
}

impl BackupSettings {
    pub fn location(&self, data_dir: &std::path::Path) -> String {
        self.dest.clone().unwrap_or_else(|| data_dir.join("backups").display().to_string())
    }

    pub fn retention(&self) -> aidocs_backup::Retention {
        aidocs_backup::Retention { keep_last: self.keep_last, keep_days: self.keep_days }
    }
}

/// Where rollout state lives (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStateBackend {
    /// Redis when `cache.kind = "redis"` (shared by replicas), else a file.
    Auto,
    /// `<data_dir>/rollout/` (one process).
    File,
    /// The cache's Redis (`cache.url` / `REDIS_URL`), namespaced.
    Redis,
}

/// Canary rollouts and blue-green deployments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSettings {
    pub state: RolloutStateBackend,
    /// How often the server checks every active canary (and due cleanups).
    pub check_interval_s: u64,
    pub blue_green: BlueGreenSettings,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        Self { state: RolloutStateBackend::Auto, check_interval_s: 5, blue_green: BlueGreenSettings::default() }
    }
}

/// Defaults of a blue-green deployment (each can be set per deployment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlueGreenSettings {
    /// Every validation query must return at least this many hits...
    pub min_hits: usize,
    /// ...with a top score at least this.
    pub min_top_score: f32,
    /// Mean overlap@10 of green's results with blue's (0: not checked).
    pub min_overlap: f64,
    /// Green's point count may differ from blue's by at most this share (0.5 = ±50 %).
    pub max_point_change: f64,
    /// After the switch, watch live traffic on the alias this long...
    pub monitor_s: u64,
    /// ...and switch back when green's error rate or p95 exceeds these (judged once at
    /// least `min_requests` requests were seen).
    pub max_error_rate: f64,
    pub max_p95_ms: f64,
    pub min_requests: u64,
    /// How long blue is kept after a switch before it is deleted.
    pub grace_s: u64,
}

impl Default for BlueGreenSettings {
    fn default() -> Self {
        Self {
            min_hits: 1,
            min_top_score: 0.0,
            min_overlap: 0.0,
            max_point_change: 0.5,
            monitor_s: 60,
            max_error_rate: 0.05,
            max_p95_ms: 500.0,
            min_requests: 20,
            grace_s: 86_400,
        }
    }
}

/// Circuit breakers on the embedding model, the HyDE generator, the reranker and the Redis
/// cache: each opens
/// when `error_rate` of the calls in the last `window_s` failed (with at least `min_calls`
/// calls), refuses calls for `cooldown_ms`, then lets one trial through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    pub error_rate: f64,
    pub window_s: u64,
    pub min_calls: u32,
    pub cooldown_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self { error_rate: 0.05, window_s: 30, min_calls: 20, cooldown_ms: 10_000 }
    }
}

impl BreakerSettings {
    pub fn to_core(&self) -> aidocs_core::BreakerConfig {
        aidocs_core::BreakerConfig {
            error_rate: self.error_rate,
            window: Duration::from_secs(self.window_s),
            min_calls: self.min_calls,
            cooldown: Duration::from_millis(self.cooldown_ms),
        }
    }
}

/// Traces: per-stage spans and their export.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// Per-stage spans (`search.embed`, `search.store_query`, ...) inside each request span;
    /// `ENABLE_REQUEST_TRACING=true` sets it too.
    pub request_tracing: bool,
    /// OTLP/HTTP endpoint for span export (`http://collector:4318`); empty: no export.
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` sets it too.
    pub otlp_endpoint: String,
}

/// API keys. With no keys configured, auth is off (personal use on loopback).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Search (and read-only collection listing) without a key.
    pub public_search: bool,
    pub keys: Vec<ApiKey>,
}

/// One API key, stored as the sha256 of the key (`aidocs auth hash-key KEY`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// For logs: which key was used, never the key.
    pub name: String,
    /// Lowercase hex sha256 of the key.
    pub sha256: String,
    pub scopes: Vec<Scope>,
}

/// What a key may do (closed set). `admin` includes `search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Search,
    Admin,
}

/// Cache backend (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    /// No caching.
    None,
    /// In-process (moka), bounded by `memory_mb`.
    Memory,
    /// Redis, Valkey or DragonflyDB at `url`, with an in-process L1 in front.
    Redis,
}

/// Caches of embeddings, search results and HyDE passages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    pub kind: CacheBackend,
    /// `redis://host:port[/db]`; when empty, `REDIS_URL` or `DRAGONFLY_URL`.
    pub url: String,
    /// Prefix of every Redis key (several deployments can share a server).
    pub namespace: String,
    /// In-process cache size (the L1 when `kind = "redis"`).
    pub memory_mb: u64,
    /// How long an L2 hit stays in L1.
    pub l1_ttl_s: u64,
    /// Deadline per Redis call; a slower call is a miss.
    pub timeout_ms: u64,
    pub pool_size: usize,
    /// Values at least this long are zstd-compressed in Redis.
    pub compress_threshold: usize,
    pub ttl: CacheTtlSettings,
}

/// Time to live per cache kind, seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheTtlSettings {
    pub embedding_s: u64,
    pub hyde_s: u64,
    pub search_s: u64,
}

impl Default for CacheTtlSettings {
    fn default() -> Self {
        Self { embedding_s: 7 * 24 * 3600, hyde_s: 24 * 3600, search_s: 3600 }
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            kind: CacheBackend::Memory,
            url: String::new(),
            namespace: "aidocs:".into(),
            memory_mb: 256,
            l1_ttl_s: 60,
            timeout_ms: 50,
            pool_size: 4,
            compress_threshold: 1024,
            ttl: CacheTtlSettings::default(),
        }
    }
}

impl CacheSettings {
    /// `url`, when set ([`resolve`] fills it from `REDIS_URL` / `DRAGONFLY_URL`).
    pub fn effective_url(&self) -> Option<String> {
        (!self.url.is_empty()).then(|| self.url.clone())
    }
}

/// HyDE query expansion: an OpenAI-compatible chat endpoint writes hypothetical passages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HydeSettings {
    /// Default of a search request's `hyde` flag.
    pub enabled: bool,
    /// API base with version path (`https://api.openai.com/v1`, `http://127.0.0.1:8081/v1`).
    /// Empty: HyDE is not configured and requests for it fall back to hybrid.
    pub base_url: String,
    /// Bearer token (`OPENAI_API_KEY` when empty).
    pub api_key: String,
    pub model: String,
    pub temperature: f32,
    pub max_tokens: u32,
    /// Hypothetical passages per query.
    pub n: usize,
    /// Deadline for generation; past it the search falls back to hybrid.
    pub timeout_ms: u64,
    /// Weight of the real query's embedding against the passages' mean (0..=1).
    pub query_weight: f32,
}

impl Default for HydeSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            base_url: String::new(),
            api_key: String::new(),
            model: "gpt-4o-mini".into(),
            temperature: 0.7,
            max_tokens: 128,
            n: 2,
            timeout_ms: 10_000,
            query_weight: 0.7,
        }
    }
}

/// Which reranker engine (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RerankEngine {
    /// No reranker: requests for reranking are answered unreranked, with a note.
    None,
    /// A BERT cross-encoder from `model_dir`, in-process.
    Local,
    /// A remote `/rerank` endpoint at `url` speaking `api`.
    Http,
}

/// Reranking of the fused candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RerankSettings {
    /// Default of a search request's `rerank` flag.
    pub enabled: bool,
    pub engine: RerankEngine,
    /// `local`: cross-encoder directory (config.json, tokenizer.json, model.safetensors).
    pub model_dir: PathBuf,
    /// Model id reported and used in cache keys (and sent to Cohere/Jina).
    pub model: String,
    /// `http`: full endpoint URL.
    pub url: String,
    pub api: aidocs_embed::RerankApi,
    pub api_key: String,
    /// Candidates of the fused list that are rescored.
    pub top_k: usize,
    pub max_seq_len: usize,
    pub timeout_ms: u64,
}

impl Default for RerankSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            engine: RerankEngine::None,
            model_dir: PathBuf::from("models/ms-marco-MiniLM-L-6-v2"),
            model: "cross-encoder/ms-marco-MiniLM-L-6-v2".into(),
            url: String::new(),
            api: aidocs_embed::RerankApi::Tei,
            api_key: String::new(),
            top_k: 50,
            max_seq_len: 512,
            timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub bind: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Put the query text into `search_request` log events (off: queries can be sensitive).
    pub log_queries: bool,
    /// API requests served at once; more are shed at once with 503 + `Retry-After` instead
    /// of queueing into timeouts (`/health*` is never shed).
    pub max_concurrent_requests: usize,
    /// Deadline of one search or read request; past it the answer is 504.
    pub request_timeout_ms: u64,
    /// Deadline of one admin request (ingest, cache clear), which may run for minutes.
    pub admin_timeout_ms: u64,
    /// On SIGTERM/SIGINT, how long in-flight requests may finish before the process exits.
    pub shutdown_timeout_ms: u64,
    /// Async worker threads for HTTP and I/O (0: one per core). Embedding runs on its own
    /// blocking threads; fewer I/O workers leave more CPU to it under overload.
    pub worker_threads: usize,
    /// API requests per minute per client IP (0: no limit; `API_RATE_LIMIT` sets it too);
    /// past it, 429 with `Retry-After`.
    pub rate_limit_per_minute: u32,
    /// Requests a client may send at once before the per-minute pace applies.
    pub rate_limit_burst: u32,
    /// Peers whose `X-Forwarded-For` is believed (load balancers); others are the client.
    /// Behind them the client is the right-most `X-Forwarded-For` hop that is not itself a
    /// trusted proxy (what the client wrote further left is never believed).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve on a non-loopback address with no API keys configured. Off: such a server
    /// refuses to start (a public server without auth is almost always a mistake).
    pub allow_unauthenticated: bool,
    /// Longest CPU profile `GET /v1/admin/profile` may take, in seconds (at most 300; 0
    /// turns the endpoint off). Also bounded by `admin_timeout_ms`.
    pub profile_max_seconds: u64,
}

/// Embedding provider (closed set; more come with later backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingProvider {
    /// all-MiniLM-L6-v2 in-process on candle (pure Rust, f32).
    Local,
    /// The same model on ONNX Runtime (`onnx_model_dir`, `onnx_runtime_lib`): int8 export,
    /// several times faster on CPU, cosine >= 0.999 to the f32 model.
    Onnx,
    /// Any OpenAI-compatible `/embeddings` API (`[embedding.openai]`: OpenAI, llama.cpp's
    /// server, vLLM, Ollama, TEI).
    Openai,
}

impl EmbeddingProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Onnx => "onnx",
            Self::Openai => "openai",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingSettings {
    pub provider: EmbeddingProvider,
    /// Model for `local` (safetensors, tokenizer.json, config.json).
    pub model_dir: PathBuf,
    /// Model for `onnx` (model.onnx, tokenizer.json, config.json).
    pub onnx_model_dir: PathBuf,
    /// `libonnxruntime.so` for `onnx` (`ORT_DYLIB_PATH` overrides).
    pub onnx_runtime_lib: PathBuf,
    /// Recorded in collections; both engines run the same model, so they share it.
    pub model_id: String,
    /// Sentences per forward pass, at most (see `adaptive_batching`).
    pub batch_size: usize,
    /// Shrink a batch below `batch_size` when its estimated peak memory (growing with the
    /// square of its token length) does not fit in half the headroom left under the
    /// process's cgroup limit and the machine's available memory (local engines).
    pub adaptive_batching: bool,
    pub max_seq_len: usize,
    /// ONNX Runtime intra-op threads (0: one per core); candle uses all cores.
    pub threads: usize,
    /// Price per million embedded tokens, for `embedding_cost_usd_total`, when the model is
    /// not in `prices` (0 for local models).
    pub usd_per_million_tokens: f64,
    /// US dollars per million tokens by model name (OpenAI list prices by default).
    pub prices: BTreeMap<String, f64>,
    pub openai: OpenAiEmbeddingSettings,
}

/// `[embedding.openai]`: an OpenAI-compatible embeddings API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiEmbeddingSettings {
    /// API base URL (env `OPENAI_BASE_URL`).
    pub base_url: String,
    /// Bearer key; empty: env `OPENAI_API_KEY`, else none (local servers).
    pub api_key: String,
    pub model: String,
    /// The vector size the model returns (required: collections are created with it).
    pub dims: usize,
    /// Ask the API to shorten vectors to this size (0: not sent).
    pub dimensions: u32,
    pub max_batch: usize,
    pub max_batch_tokens: usize,
    /// Client-side rate limits (0: none).
    pub requests_per_minute: u32,
    pub tokens_per_minute: u32,
    pub timeout_ms: u64,
    pub retries: u32,
}

impl Default for OpenAiEmbeddingSettings {
    fn default() -> Self {
        let d = aidocs_embed::OpenAiEmbedderConfig::default();
        Self {
            base_url: d.base_url,
            api_key: String::new(),
            model: d.model,
            dims: d.dims,
            dimensions: 0,
            max_batch: d.max_batch,
            max_batch_tokens: d.max_batch_tokens,
            requests_per_minute: 0,
            tokens_per_minute: 0,
            timeout_ms: d.timeout.as_millis() as u64,
            retries: d.retries,
        }
    }
}

impl OpenAiEmbeddingSettings {
    pub fn to_embedder_config(&self) -> aidocs_embed::OpenAiEmbedderConfig {
        aidocs_embed::OpenAiEmbedderConfig {
            base_url: self.base_url.clone(),
            api_key: Some(self.api_key.clone()).filter(|k| !k.is_empty()),
            model: self.model.clone(),
            dims: self.dims,
            dimensions: (self.dimensions > 0).then_some(self.dimensions),
            max_batch: self.max_batch,
            max_batch_tokens: self.max_batch_tokens,
            requests_per_minute: (self.requests_per_minute > 0).then_some(self.requests_per_minute),
            tokens_per_minute: (self.tokens_per_minute > 0).then_some(self.tokens_per_minute),
            timeout: std::time::Duration::from_millis(self.timeout_ms),
            retries: self.retries,
            ..aidocs_embed::OpenAiEmbedderConfig::default()
        }
    }
}

impl EmbeddingSettings {
    /// Price per million tokens of the configured model.
    pub fn price(&self) -> f64 {
        let model = match self.provider {
            EmbeddingProvider::Openai => &self.openai.model,
            _ => &self.model_id,
        };
        self.prices.get(model).copied().unwrap_or(self.usd_per_million_tokens)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SparseSettings {
    pub k1: f32,
    pub b: f32,
    pub avg_doc_len: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChunkingSettings {
    pub max_tokens: usize,
    pub overlap_tokens: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchSettings {
    pub default_collection: String,
    pub default_limit: usize,
    pub max_limit: usize,
    pub default_mode: SearchMode,
    /// Candidates per prefetch (dense and sparse) before fusion.
    pub prefetch_limit: usize,
    /// How hybrid mode fuses the two lists (`{kind = "rrf", k, dense_weight, sparse_weight}`
    /// or `{kind = "dbsf"}`).
    pub fusion: Fusion,
    pub snippet_chars: usize,
    pub max_query_chars: usize,
    /// Most values in one filter (list items counted one by one).
    pub max_filter_values: usize,
}

/// Vector store backend (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// Embedded Qdrant engine (qdrant-edge) in the data dir; `edge` is the old name.
    #[serde(alias = "edge")]
    Embedded,
    /// A Qdrant server or cluster over gRPC (`url`, `api_key`).
    Qdrant,
}

/// `[vector_store]`: which backend holds the points, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    pub kind: StoreKind,
    /// Embedded: WAL segment size per collection, MiB.
    pub wal_segment_mb: usize,
    /// Qdrant: gRPC URL (`http://qdrant:6334`; `https://` for TLS). Env `QDRANT_URL`.
    pub url: String,
    /// Qdrant: REST URL for snapshots; default the gRPC URL with port 6333.
    pub rest_url: Option<String>,
    /// Qdrant: API key. Env `QDRANT_API_KEY` (keep it out of files).
    pub api_key: Option<String>,
    /// Qdrant: PEM of a CA to trust besides the system roots.
    pub ca_cert: Option<PathBuf>,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Tries per call on transient errors (unavailable, deadline, rate limited).
    pub retries: u32,
    /// Points per upsert request.
    pub upsert_batch: usize,
    /// How collections are created (both backends; cluster fields are Qdrant-only).
    pub collection: CollectionSettings,
    /// Query-time parameters of each dense search (both backends).
    pub search: IndexSearchSettings,
}

/// How a collection's dense index is built, on both backends; `shard_number`,
/// `replication_factor` and `write_consistency_factor` apply to a Qdrant server only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectionSettings {
    pub on_disk_vectors: bool,
    pub hnsw_m: u64,
    pub hnsw_ef_construct: u64,
    pub full_scan_threshold: u64,
    /// `int8` scalar quantization, or `none`. Unset: the backend's default (`int8` on a
    /// Qdrant server, `none` embedded; see docs/operators/tuning.md).
    pub quantization: Option<QuantizationKind>,
    pub quantile: f32,
    pub always_ram: bool,
    pub indexing_threshold: Option<u64>,
    pub default_segment_number: Option<u64>,
    pub shard_number: Option<u32>,
    pub replication_factor: Option<u32>,
    pub write_consistency_factor: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantizationKind {
    Int8,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexSearchSettings {
    pub hnsw_ef: Option<u64>,
    /// Re-score quantized candidates with the original vectors.
    pub rescore: bool,
    pub oversampling: f64,
    /// Score every vector instead of walking the index (audits and baselines; slow).
    pub exact: bool,
}

impl Default for CollectionSettings {
    fn default() -> Self {
        let d = aidocs_store::params::CollectionParams::default();
        let q = d.quantization.unwrap_or_default();
        Self {
            on_disk_vectors: d.on_disk_vectors,
            hnsw_m: d.hnsw_m,
            hnsw_ef_construct: d.hnsw_ef_construct,
            full_scan_threshold: d.full_scan_threshold,
            quantization: None,
            quantile: q.quantile,
            always_ram: q.always_ram,
            indexing_threshold: d.indexing_threshold,
            default_segment_number: d.default_segment_number,
            shard_number: d.shard_number,
            replication_factor: d.replication_factor,
            write_consistency_factor: d.write_consistency_factor,
        }
    }
}

impl Default for IndexSearchSettings {
    fn default() -> Self {
        let d = aidocs_store::params::SearchParams::default();
        Self { hnsw_ef: d.hnsw_ef, rescore: d.rescore, oversampling: d.oversampling, exact: d.exact }
    }
}

impl CollectionSettings {
    /// As the store's params; `default_quantization` applies when `quantization` is unset.
    pub fn params(&self, default_quantization: QuantizationKind) -> aidocs_store::params::CollectionParams {
        aidocs_store::params::CollectionParams {
            on_disk_vectors: self.on_disk_vectors,
            hnsw_m: self.hnsw_m,
            hnsw_ef_construct: self.hnsw_ef_construct,
            full_scan_threshold: self.full_scan_threshold,
            quantization: (self.quantization.unwrap_or(default_quantization) == QuantizationKind::Int8)
                .then_some(aidocs_store::params::ScalarQuantization { quantile: self.quantile, always_ram: self.always_ram }),
            indexing_threshold: self.indexing_threshold,
            default_segment_number: self.default_segment_number,
            shard_number: self.shard_number,
            replication_factor: self.replication_factor,
            write_consistency_factor: self.write_consistency_factor,
        }
    }
}

impl IndexSearchSettings {
    pub fn params(&self) -> aidocs_store::params::SearchParams {
        aidocs_store::params::SearchParams { hnsw_ef: self.hnsw_ef, rescore: self.rescore, oversampling: self.oversampling, exact: self.exact }
    }
}

impl StoreSettings {
    /// The embedded backend's settings.
    pub fn to_edge(&self, data_dir: &std::path::Path) -> aidocs_store::EdgeStoreConfig {
        let mut e = aidocs_store::EdgeStoreConfig::new(data_dir);
        e.wal_segment_capacity = self.wal_segment_mb.max(1) * 1024 * 1024;
        e.collection = self.collection.params(QuantizationKind::None);
        e.search = self.search.params();
        e
    }

    /// The Qdrant backend's settings.
    pub fn to_qdrant(&self) -> aidocs_store::QdrantStoreConfig {
        let mut q = aidocs_store::QdrantStoreConfig::new(&self.url);
        q.collection = self.collection.params(QuantizationKind::Int8);
        q.search = self.search.params();
        q.rest_url = self.rest_url.clone().filter(|u| !u.is_empty());
        q.api_key = self.api_key.clone().filter(|k| !k.is_empty());
        q.ca_cert = self.ca_cert.clone();
        q.timeout = Duration::from_millis(self.timeout_ms);
        q.connect_timeout = Duration::from_millis(self.connect_timeout_ms);
        q.retry.attempts = self.retries.max(1);
        q.upsert_batch = self.upsert_batch.max(1);
        q
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Replaces `file://<root>` in document URLs (e.g. `https://docs.example.com`).
    pub base_url: Option<String>,
    /// Chunks embedded and written per batch.
    pub batch_size: usize,
    /// Build the HNSW index after an ingest that wrote points.
    pub optimize: bool,
    /// Run-level metadata defaults (front matter overrides them).
    pub metadata: MetadataSettings,
    /// Directories whose files `POST /v1/documents {"path"}` may read. Empty (the default):
    /// path ingest over HTTP is refused. The CLI is not limited by it.
    pub allowed_roots: Vec<PathBuf>,
}

/// Metadata applied to every document of an ingest run unless its front matter says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataSettings {
    pub language: Option<String>,
    pub framework: Option<String>,
    pub doc_type: Option<String>,
    pub version: Option<String>,
    pub difficulty_level: Option<i64>,
}

impl From<&MetadataSettings> for aidocs_core::DocMetadata {
    fn from(m: &MetadataSettings) -> Self {
        Self {
            language: m.language.clone(),
            framework: m.framework.clone(),
            doc_type: m.doc_type.clone(),
            version: m.version.clone(),
            last_updated: None,
            difficulty_level: m.difficulty_level,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            template: None,
            data_dir: PathBuf::from("data"),
            server: ServerSettings::default(),
            embedding: EmbeddingSettings::default(),
            sparse: SparseSettings::default(),
            chunking: ChunkingSettings::default(),
            search: SearchSettings::default(),
            vector_store: StoreSettings::default(),
            ingest: IngestSettings::default(),
            hyde: HydeSettings::default(),
            rerank: RerankSettings::default(),
            cache: CacheSettings::default(),
            auth: AuthSettings::default(),
            breaker: BreakerSettings::default(),
            telemetry: TelemetrySettings::default(),
            rollout: RolloutSettings::default(),
            backup: BackupSettings::default(),
            crawl: CrawlSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8000".into(),
            max_body_bytes: 1 << 20,
            log_queries: false,
            max_concurrent_requests: 64,
            request_timeout_ms: 30_000,
            admin_timeout_ms: 1_800_000,
            shutdown_timeout_ms: 30_000,
            worker_threads: 0,
            rate_limit_per_minute: 0,
            rate_limit_burst: 20,
            trusted_proxies: Vec::new(),
            allow_unauthenticated: false,
            profile_max_seconds: 60,
        }
    }
}

impl Default for EmbeddingSettings {
    fn default() -> Self {
        Self {
            provider: EmbeddingProvider::Local,
            model_dir: PathBuf::from("models/all-MiniLM-L6-v2"),
            onnx_model_dir: PathBuf::from("models/all-MiniLM-L6-v2-int8"),
            onnx_runtime_lib: PathBuf::from("models/onnxruntime/libonnxruntime.so.1.31.1"),
            model_id: "sentence-transformers/all-MiniLM-L6-v2".into(),
            batch_size: 32,
            adaptive_batching: true,
            max_seq_len: 256,
            threads: 0,
            usd_per_million_tokens: 0.0,
            // OpenAI list prices, US dollars per million tokens.
            prices: [("text-embedding-3-small", 0.02), ("text-embedding-3-large", 0.13), ("text-embedding-ada-002", 0.10)]
                .into_iter()
                .map(|(m, p)| (m.to_owned(), p))
                .collect(),
            openai: OpenAiEmbeddingSettings::default(),
        }
    }
}

impl Default for SparseSettings {
    fn default() -> Self {
        let d = aidocs_embed::Bm25Config::default();
        Self { k1: d.k1, b: d.b, avg_doc_len: d.avg_doc_len }
    }
}

impl Default for ChunkingSettings {
    fn default() -> Self {
        Self { max_tokens: 256, overlap_tokens: 32 }
    }
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            default_collection: "docs".into(),
            default_limit: 10,
            max_limit: 100,
            default_mode: SearchMode::Hybrid,
            prefetch_limit: 100,
            fusion: Fusion::default(),
            snippet_chars: 300,
            max_query_chars: 2000,
            max_filter_values: 64,
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            kind: StoreKind::Embedded,
            wal_segment_mb: 8,
            url: String::new(),
            rest_url: None,
            api_key: None,
            ca_cert: None,
            timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            retries: 4,
            upsert_batch: 256,
            collection: CollectionSettings::default(),
            search: IndexSearchSettings::default(),
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self { base_url: None, batch_size: 128, optimize: true, metadata: Default::default(), allowed_roots: Vec::new() }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown config template `{0}` (known: personal-use, development, production, testing)")]
    UnknownTemplate(String),
    #[error("config file {0} not found")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// `config migrate` could not read, parse or re-check the file; the message says which.
    #[error("{0}")]
    Migrate(String),
    #[error("writing {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Where configuration comes from besides the defaults.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// Config file (TOML, or JSON if it ends in `.json`).
    pub file: Option<PathBuf>,
    /// Template override (else `template` in file/env, else `CONFIG_TEMPLATE`).
    pub template: Option<String>,
    /// Read `AIDOCS__*` and `CONFIG_TEMPLATE` from the environment.
    pub use_env: bool,
}

/// The environment the fallbacks of [`resolve`] read: the process ([`ProcessEnv`]), nothing
/// ([`NoEnv`]), or a map (tests, `config show --env-file` style callers).
///
/// Contract: `var` returns the variable's value, `None` when it is unset; callers treat an
/// empty value as unset.
pub trait EnvVars {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvVars for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// No environment at all (`ConfigSource::use_env = false`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl EnvVars for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

impl EnvVars for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Every environment variable [`resolve`] reads, with the setting it fills. The one place
/// aidocs reads its environment besides `AIDOCS__*` and `CONFIG_TEMPLATE`.
pub const ENV_FALLBACKS: &[(&str, &str)] = &[
    ("API_RATE_LIMIT", "server.rate_limit_per_minute, when 0"),
    ("ENABLE_REQUEST_TRACING", "telemetry.request_tracing = true, when 1/true/yes"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint, when empty"),
    ("QDRANT_URL", "vector_store.url, when empty"),
    ("QDRANT_API_KEY", "vector_store.api_key, when unset"),
    ("AIDOCS_BACKUP_DEST", "backup.dest, when unset"),
    ("AIDOCS_API_KEYS", "added to auth.keys (name:scope[+scope]:sha256,...)"),
    ("REDIS_URL", "cache.url, when empty"),
    ("DRAGONFLY_URL", "cache.url, when empty and REDIS_URL is unset"),
    ("OPENAI_API_KEY", "embedding.openai.api_key and hyde.api_key, when empty"),
    ("OPENAI_BASE_URL", "embedding.openai.base_url (replaces the configured value)"),
];

/// Raw settings (defaults, template, file, `AIDOCS__*`) -> resolved settings: applies every
/// environment fallback of [`ENV_FALLBACKS`] from `env`, then validates each section. Runs
/// once, in [`Config::load`]; no other part of aidocs reads the environment for settings.
pub fn resolve(mut cfg: Config, env: &dyn EnvVars) -> Result<Config, ConfigError> {
    let var = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
    if cfg.server.rate_limit_per_minute == 0
        && let Some(v) = var("API_RATE_LIMIT")
    {
        cfg.server.rate_limit_per_minute =
            v.trim().parse().map_err(|_| ConfigError::Invalid(format!("API_RATE_LIMIT `{v}` is not a number of requests per minute")))?;
    }
    if var("ENABLE_REQUEST_TRACING").is_some_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True" | "yes")) {
        cfg.telemetry.request_tracing = true;
    }
    if cfg.telemetry.otlp_endpoint.is_empty() {
        cfg.telemetry.otlp_endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    }
    if cfg.vector_store.url.is_empty() {
        cfg.vector_store.url = var("QDRANT_URL").unwrap_or_default();
    }
    if cfg.vector_store.api_key.is_none() {
        cfg.vector_store.api_key = var("QDRANT_API_KEY");
    }
    if cfg.backup.dest.is_none() {
        cfg.backup.dest = var("AIDOCS_BACKUP_DEST");
    }
    // API keys from a secret: `AIDOCS_API_KEYS=name:scope[+scope]:sha256,...`.
    if let Some(v) = var("AIDOCS_API_KEYS") {
        cfg.auth.keys.extend(parse_api_keys(&v)?);
    }
    if cfg.cache.url.is_empty() {
        cfg.cache.url = var("REDIS_URL").or_else(|| var("DRAGONFLY_URL")).unwrap_or_default();
    }
    if let Some(key) = var("OPENAI_API_KEY") {
        if cfg.embedding.openai.api_key.is_empty() {
            cfg.embedding.openai.api_key = key.clone();
        }
        if cfg.hyde.api_key.is_empty() {
            cfg.hyde.api_key = key;
        }
    }
    if let Some(url) = var("OPENAI_BASE_URL") {
        cfg.embedding.openai.base_url = url;
    }
    cfg.validate()?;
    Ok(cfg)
}

const REDACTED: &str = "<redacted>";

fn redact(v: &mut serde_json::Value, key: &str) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                redact(child, k);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact(i, key)),
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => {
            if matches!(key, "api_key" | "password" | "token" | "secret" | "sha256" | "hash") {
                *s = REDACTED.to_owned();
            } else if let Ok(mut url) = url::Url::parse(s)
                && url.password().is_some()
            {
                let _ = url.set_password(Some(REDACTED));
                *s = url.to_string();
            }
        }
        _ => {}
    }
}

/// Messages about the load worth logging (deprecations).
pub type Warnings = Vec<String>;

fn file_figment(file: &Path) -> Figment {
    if file.extension().is_some_and(|e| e == "json") {
        Figment::from(Json::file_exact(file))
    } else {
        Figment::from(Toml::file_exact(file))
    }
}

impl Config {
    /// Load and validate configuration from all layers, with the process environment
    /// (when `src.use_env`) for `AIDOCS__*`, `CONFIG_TEMPLATE` and the fallbacks of [`resolve`].
    pub fn load(src: &ConfigSource) -> Result<(Config, Warnings), ConfigError> {
        if src.use_env { Self::load_with(src, &ProcessEnv) } else { Self::load_with(src, &NoEnv) }
    }

    /// [`Config::load`] with `env` as the environment of `CONFIG_TEMPLATE` and of the
    /// fallbacks ([`resolve`]). `AIDOCS__*` keys are read from the process when `src.use_env`.
    pub fn load_with(src: &ConfigSource, env: &dyn EnvVars) -> Result<(Config, Warnings), ConfigError> {
        let mut warnings = Vec::new();
        if let Some(f) = &src.file
            && !f.is_file() {
                return Err(ConfigError::MissingFile(f.clone()));
            }
        // Upper layers alone, to find the template name.
        let mut upper = Figment::new();
        if let Some(f) = &src.file {
            upper = upper.merge(file_figment(f));
        }
        if src.use_env {
            upper = upper.merge(Env::prefixed("AIDOCS__").split("__"));
        }
        let template = src
            .template
            .clone()
            .or_else(|| upper.extract_inner::<String>("template").ok())
            .or_else(|| env.var("CONFIG_TEMPLATE").filter(|t| !t.is_empty()));
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let mut resolved_template = None;
        if let Some(name) = template {
            let canonical = match TEMPLATE_ALIASES.iter().find(|(old, _)| *old == name) {
                Some((old, new)) => {
                    warnings.push(format!("config template `{old}` is deprecated; it now loads `{new}`"));
                    *new
                }
                None => name.as_str(),
            };
            let (_, text) = TEMPLATES
                .iter()
                .find(|(n, _)| *n == canonical)
                .ok_or_else(|| ConfigError::UnknownTemplate(name.clone()))?;
            fig = fig.merge(Json::string(text));
            resolved_template = Some(canonical.to_owned());
        }
        // Keys an older aidocs wrote: say how to update the file rather than "unknown field".
        let old: Vec<&str> = crate::migrate::CHANGES.iter().map(|(k, _)| *k).filter(|k| upper.find_value(k).is_ok()).collect();
        if !old.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "the config uses keys of an older aidocs ({}); run `aidocs config migrate FILE` to update it",
                old.join(", ")
            )));
        }
        fig = fig.merge(upper);
        let mut cfg: Config = fig.extract().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.template = resolved_template;
        let cfg = resolve(cfg, env)?;
        Ok((cfg, warnings))
    }

    /// A server about to listen on `server.bind`: refused on a non-loopback address with no
    /// API keys, unless `server.allow_unauthenticated` says so explicitly.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        let addr: std::net::SocketAddr = self
            .server
            .bind
            .parse()
            .map_err(|_| ConfigError::Invalid(format!("server.bind `{}` is not an address like 127.0.0.1:8000", self.server.bind)))?;
        if addr.ip().is_loopback() || !self.auth.keys.is_empty() || self.server.allow_unauthenticated {
            return Ok(());
        }
        Err(ConfigError::Invalid(format!(
            "server.bind {addr} is reachable from other machines but no API keys are configured, so anyone could search and administer this server. \
             Configure keys ([[auth.keys]] or AIDOCS_API_KEYS=name:admin:SHA256; `aidocs auth hash-key KEY`), bind to 127.0.0.1, \
             or set server.allow_unauthenticated = true (AIDOCS__SERVER__ALLOW_UNAUTHENTICATED=true) if a proxy in front authenticates"
        )))
    }

    /// The resolved settings as JSON with every secret replaced by `"<redacted>"`: keys named
    /// `api_key`, `password`, `token` or `secret`, API key hashes, and the password in a URL's
    /// user info (`redis://:pw@host`). What `aidocs config show` prints.
    pub fn redacted(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("the config serializes");
        redact(&mut v, "");
        v
    }

    /// Semantic checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.search.max_limit == 0 || self.search.default_limit == 0 || self.search.default_limit > self.search.max_limit {
            return bad("search.default_limit must be between 1 and search.max_limit");
        }
        if self.chunking.max_tokens < 16 {
            return bad("chunking.max_tokens must be at least 16");
        }
        if self.chunking.overlap_tokens >= self.chunking.max_tokens {
            return bad("chunking.overlap_tokens must be smaller than chunking.max_tokens");
        }
        if self.embedding.batch_size == 0 || self.ingest.batch_size == 0 {
            return bad("embedding.batch_size and ingest.batch_size must be positive");
        }
        if !(0.0..=1.0).contains(&self.hyde.query_weight) {
            return bad("hyde.query_weight must be between 0 and 1");
        }
        if self.hyde.n == 0 || self.hyde.n > 16 {
            return bad("hyde.n must be between 1 and 16");
        }
        if self.server.max_concurrent_requests == 0 || self.server.request_timeout_ms == 0 || self.server.admin_timeout_ms == 0 {
            return bad("server.max_concurrent_requests, server.request_timeout_ms and server.admin_timeout_ms must be positive");
        }
        if !(self.breaker.error_rate > 0.0 && self.breaker.error_rate <= 1.0) || self.breaker.window_s == 0 {
            return bad("breaker.error_rate must be in (0, 1] and breaker.window_s positive");
        }
        if let Some(expr) = &self.backup.schedule {
            aidocs_backup::schedule::Schedule::parse(expr).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        if self.embedding.provider == EmbeddingProvider::Openai {
            let o = &self.embedding.openai;
            if o.model.trim().is_empty() || o.dims == 0 || o.max_batch == 0 {
                return bad("embedding.openai needs model, dims (the vector size the model returns) and max_batch > 0");
            }
            if o.dimensions > 0 && o.dimensions as usize != o.dims {
                return bad("embedding.openai.dimensions asks the API for vectors of that size, so embedding.openai.dims must equal it");
            }
        }
        if self.vector_store.kind == StoreKind::Qdrant {
            let v = &self.vector_store;
            if v.url.trim().is_empty() {
                return bad("vector_store.kind = \"qdrant\" needs vector_store.url (or QDRANT_URL), e.g. http://qdrant:6334");
            }
            if !(v.url.starts_with("http://") || v.url.starts_with("https://")) {
                return bad("vector_store.url must start with http:// or https:// (the gRPC port, 6334 by default)");
            }
            if v.timeout_ms == 0 || v.connect_timeout_ms == 0 || !(v.collection.quantile > 0.5 && v.collection.quantile <= 1.0) || v.search.oversampling < 1.0 {
                return bad("vector_store: timeouts must be positive, collection.quantile in (0.5, 1] and search.oversampling >= 1");
            }
        }
        if self.crawl.concurrency == 0 || self.crawl.per_host_concurrency == 0 || self.crawl.max_pages == 0 {
            return bad("crawl.concurrency, crawl.per_host_concurrency and crawl.max_pages must be positive");
        }
        if self.crawl.remove_after_misses == 0 {
            return bad("crawl.remove_after_misses must be at least 1");
        }
        if self.backup.batch_points == 0 || self.backup.batch_points > 100_000 {
            return bad("backup.batch_points must be between 1 and 100000");
        }
        if self.rollout.check_interval_s == 0 {
            return bad("rollout.check_interval_s must be positive");
        }
        if self.rollout.state == RolloutStateBackend::Redis && self.cache.effective_url().is_none() {
            return bad("rollout.state = \"redis\" needs cache.url (or REDIS_URL / DRAGONFLY_URL)");
        }
        if self.search.max_filter_values == 0 {
            return bad("search.max_filter_values must be positive");
        }
        if let Some(k) = self.auth.keys.iter().find(|k| k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit())) {
            return bad(&format!("auth.keys `{}`: sha256 must be 64 hex characters (aidocs auth hash-key KEY)", k.name));
        }
        if self.rerank.top_k == 0 {
            return bad("rerank.top_k must be positive");
        }
        if self.rerank.engine == RerankEngine::Http && self.rerank.url.is_empty() {
            return bad("rerank.engine = \"http\" needs rerank.url");
        }
        if self.cache.kind == CacheBackend::Redis && self.cache.effective_url().is_none() {
            return bad("cache.kind = \"redis\" needs cache.url (or REDIS_URL / DRAGONFLY_URL)");
        }
        if let Some(r) = self.ingest.allowed_roots.iter().find(|r| !r.is_absolute()) {
            return bad(&format!("ingest.allowed_roots: `{}` must be an absolute path", r.display()));
        }
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return bad(&format!("server.bind `{}` is not an address like 127.0.0.1:8000", self.server.bind));
        }
        Ok(())
    }
}

/// Parse `AIDOCS_API_KEYS`: comma-separated `name:scope[+scope]:sha256` entries (the digest
/// from `aidocs auth hash-key KEY`; never the key itself).
pub fn parse_api_keys(v: &str) -> Result<Vec<ApiKey>, ConfigError> {
    let bad = |entry: &str, why: &str| {
        ConfigError::Invalid(format!("AIDOCS_API_KEYS entry `{}`: {why} (expected name:scope[+scope]:sha256)", entry.split(':').next().unwrap_or("")))
    };
    v.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let mut parts = entry.splitn(3, ':');
            let (Some(name), Some(scopes), Some(sha)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad(entry, "three fields needed"));
            };
            let scopes = scopes
                .split('+')
                .map(|s| match s.trim() {
                    "search" => Ok(Scope::Search),
                    "admin" => Ok(Scope::Admin),
                    other => Err(bad(entry, &format!("unknown scope `{other}` (search, admin)"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sha = sha.trim().to_ascii_lowercase();
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(entry, "the digest must be 64 hex characters"));
            }
            Ok(ApiKey { name: name.trim().to_owned(), sha256: sha, scopes })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_file(text: &str, ext: &str) -> Result<(Config, Warnings), ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(format!("c.{ext}"));
        std::fs::write(&f, text).unwrap();
        Config::load(&ConfigSource { file: Some(f), ..Default::default() })
    }

    #[test]
    fn a_public_bind_needs_keys_or_an_explicit_opt_out() {
        let mut cfg = Config::default();
        cfg.check_exposure().expect("loopback without keys is fine");
        cfg.server.bind = "[::1]:8000".into();
        cfg.check_exposure().expect("IPv6 loopback too");
        for bind in ["0.0.0.0:8000", "[::]:8000", "10.1.2.3:8000"] {
            cfg.server.bind = bind.into();
            let err = cfg.check_exposure().unwrap_err().to_string();
            assert!(err.contains("no API keys") && err.contains("allow_unauthenticated"), "{err}");
        }
        cfg.server.allow_unauthenticated = true;
        cfg.check_exposure().unwrap();
        cfg.server.allow_unauthenticated = false;
        cfg.auth.keys = parse_api_keys(&format!("ops:admin:{}", "A".repeat(64))).unwrap();
        cfg.check_exposure().unwrap();
        // The production template binds 0.0.0.0: without keys it must not serve.
        let (prod, _) = Config::load(&ConfigSource { template: Some("production".into()), ..Default::default() }).unwrap();
        assert!(prod.check_exposure().is_err());
    }

    #[test]
    fn api_keys_from_the_environment_form() {
        let sha = "ab".repeat(32);
        let keys = parse_api_keys(&format!(" ops:admin:{sha}, app:search:{} ,both:search+admin:{sha}", sha.to_uppercase())).unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!((keys[0].name.as_str(), keys[0].scopes.as_slice()), ("ops", &[Scope::Admin][..]));
        assert_eq!(keys[1].sha256, sha, "digests are lowercased");
        assert_eq!(keys[2].scopes, vec![Scope::Search, Scope::Admin]);
        for bad in ["ops:admin", "ops:root:{sha}", "ops:admin:xyz", &format!("ops:admin:{}", "g".repeat(64))] {
            let bad = bad.replace("{sha}", &sha);
            let err = parse_api_keys(&bad).unwrap_err().to_string();
            assert!(err.contains("AIDOCS_API_KEYS entry `ops`"), "{err}");
        }
    }

    #[test]
    fn allowed_roots_must_be_absolute() {
        let mut cfg = Config::default();
        cfg.ingest.allowed_roots = vec![PathBuf::from("docs")];
        assert!(cfg.validate().unwrap_err().to_string().contains("allowed_roots"));
        cfg.ingest.allowed_roots = vec![PathBuf::from("/srv/docs")];
        cfg.validate().unwrap();
    }

    #[test]
    fn defaults_are_valid() {
        let (cfg, w) = Config::load(&ConfigSource::default()).unwrap();
        assert_eq!(cfg, Config::default());
        assert!(w.is_empty());
    }

    #[test]
    fn index_settings_reach_both_backends_with_their_quantization_defaults() {
        let mut cfg = Config::default();
        assert_eq!(cfg.vector_store.to_edge(Path::new("/d")).collection.quantization, None, "embedded: unset = none");
        assert!(cfg.vector_store.to_qdrant().collection.quantization.is_some(), "Qdrant: unset = int8");
        cfg.vector_store.collection.quantization = Some(QuantizationKind::Int8);
        cfg.vector_store.collection.hnsw_m = 32;
        cfg.vector_store.search.hnsw_ef = Some(64);
        cfg.vector_store.search.exact = true;
        let e = cfg.vector_store.to_edge(Path::new("/d"));
        assert_eq!(e.collection.quantization.map(|q| q.quantile), Some(0.99));
        assert_eq!((e.collection.hnsw_m, e.search.hnsw_ef, e.search.exact), (32, Some(64), true));
        cfg.vector_store.collection.quantization = Some(QuantizationKind::None);
        assert_eq!(cfg.vector_store.to_qdrant().collection.quantization, None);
    }

    #[test]
    fn shipped_default_toml_matches_the_built_in_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        let (cfg, _) = Config::load(&ConfigSource { file: Some(path), ..Default::default() }).unwrap();
        assert_eq!(cfg, Config::default(), "config/default.toml must document the real defaults");
    }

    #[test]
    fn every_template_loads() {
        for (name, _) in TEMPLATES {
            let (cfg, _) = Config::load(&ConfigSource { template: Some(name.to_string()), ..Default::default() }).unwrap();
            assert_eq!(cfg.template.as_deref(), Some(*name));
        }
    }

    #[test]
    fn minimal_cost_loads_personal_use_with_deprecation_warning() {
        let (cfg, w) = load_file("template = \"minimal-cost\"\n", "toml").unwrap();
        let (personal, _) = Config::load(&ConfigSource { template: Some("personal-use".into()), ..Default::default() }).unwrap();
        assert_eq!(cfg, personal);
        assert!(w[0].contains("deprecated"), "{w:?}");
    }

    #[test]
    fn file_overrides_template_and_unknown_keys_are_named() {
        let (cfg, _) = load_file("template = \"production\"\n[search]\ndefault_limit = 7\n", "toml").unwrap();
        assert_eq!(cfg.search.default_limit, 7);
        assert_eq!(cfg.server.bind, "0.0.0.0:8000", "from the production template");
        let err = load_file("[search]\ndefault_limt = 7\n", "toml").unwrap_err().to_string();
        assert!(err.contains("default_limt"), "{err}");
        let err = load_file("{\"serverr\": {}}", "json").unwrap_err().to_string();
        assert!(err.contains("serverr"), "{err}");
        let err = load_file("template = \"tiny\"\n", "toml").unwrap_err().to_string();
        assert!(err.contains("unknown config template `tiny`"), "{err}");
        let err = load_file("[search]\ndefault_limit = 0\n", "toml").unwrap_err().to_string();
        assert!(err.contains("search.default_limit"), "{err}");
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn resolve_applies_every_fallback_from_the_given_environment_only() {
        let e = env(&[
            ("API_RATE_LIMIT", "90"),
            ("ENABLE_REQUEST_TRACING", "yes"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318"),
            ("QDRANT_URL", "http://qdrant:6334"),
            ("QDRANT_API_KEY", "qk"),
            ("AIDOCS_BACKUP_DEST", "/backups"),
            ("AIDOCS_API_KEYS", &format!("ops:admin:{}", "a".repeat(64))),
            ("DRAGONFLY_URL", "redis://dragonfly:6379"),
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", "http://llm:8080/v1"),
        ]);
        let cfg = resolve(Config::default(), &e).unwrap();
        assert_eq!(cfg.server.rate_limit_per_minute, 90);
        assert!(cfg.telemetry.request_tracing);
        assert_eq!(cfg.telemetry.otlp_endpoint, "http://otel:4318");
        assert_eq!((cfg.vector_store.url.as_str(), cfg.vector_store.api_key.as_deref()), ("http://qdrant:6334", Some("qk")));
        assert_eq!(cfg.backup.dest.as_deref(), Some("/backups"));
        assert_eq!(cfg.auth.keys.len(), 1);
        assert_eq!(cfg.cache.effective_url().as_deref(), Some("redis://dragonfly:6379"), "DRAGONFLY_URL when REDIS_URL is unset");
        assert_eq!((cfg.embedding.openai.api_key.as_str(), cfg.hyde.api_key.as_str()), ("sk-test", "sk-test"));
        assert_eq!(cfg.embedding.openai.to_embedder_config().base_url, "http://llm:8080/v1");
        // REDIS_URL wins over DRAGONFLY_URL; configured values win over fallbacks.
        let mut configured = Config::default();
        configured.cache.url = "redis://configured:6379".into();
        configured.hyde.api_key = "own".into();
        configured.server.rate_limit_per_minute = 5;
        let both = env(&[("REDIS_URL", "redis://r:6379"), ("DRAGONFLY_URL", "redis://d:6379"), ("OPENAI_API_KEY", "sk"), ("API_RATE_LIMIT", "90")]);
        assert_eq!(resolve(Config::default(), &both).unwrap().cache.url, "redis://r:6379");
        let kept = resolve(configured, &both).unwrap();
        assert_eq!((kept.cache.url.as_str(), kept.hyde.api_key.as_str(), kept.server.rate_limit_per_minute), ("redis://configured:6379", "own", 5));
        // No environment: nothing filled; a bad value names its variable.
        let none = resolve(Config::default(), &NoEnv).unwrap();
        assert!(none.cache.url.is_empty() && none.vector_store.url.is_empty() && none.embedding.openai.api_key.is_empty());
        let err = resolve(Config::default(), &env(&[("API_RATE_LIMIT", "lots")])).unwrap_err().to_string();
        assert!(err.contains("API_RATE_LIMIT `lots`"), "{err}");
        // Every variable resolve reads is listed, and the list names no variable it ignores.
        let src = include_str!("lib.rs");
        let body = &src[src.find("pub fn resolve(").unwrap()..src.find("const REDACTED").unwrap()];
        for (name, _) in ENV_FALLBACKS {
            assert!(body.contains(&format!("\"{name}\"")), "{name} is listed but not read");
        }
    }

    #[test]
    fn redacted_hides_every_secret_and_keeps_the_rest() {
        let mut cfg = Config::default();
        cfg.embedding.openai.api_key = "sk-embed".into();
        cfg.hyde.api_key = "sk-hyde".into();
        cfg.rerank.api_key = "sk-rerank".into();
        cfg.vector_store.api_key = Some("qdrant-secret".into());
        cfg.cache.url = "redis://user:hunter2@cache:6379/0".into();
        cfg.auth.keys = parse_api_keys(&format!("ops:admin:{}", "b".repeat(64))).unwrap();
        let shown = serde_json::to_string(&cfg.redacted()).unwrap();
        for secret in ["sk-embed", "sk-hyde", "sk-rerank", "qdrant-secret", "hunter2", &"b".repeat(64)] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        let v = cfg.redacted();
        assert_eq!(v["cache"]["url"], "redis://user:%3Credacted%3E@cache:6379/0");
        assert_eq!(v["hyde"]["api_key"], "<redacted>");
        assert_eq!(v["auth"]["keys"][0]["name"], "ops", "names are not secrets");
        assert_eq!(v["search"]["default_limit"], cfg.search.default_limit, "other values are shown as resolved");
        assert_eq!(Config::default().redacted()["hyde"]["api_key"], "", "an unset secret stays visibly unset");
    }
}
