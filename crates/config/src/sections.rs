//! The settings sections: the root [`Config`] and one struct per section, each named
//! `*Settings`, with their defaults and their conversions into the leaf crates' parameters.

use aidocs_core::{Collapse, Fusion, SearchMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Web sources the server re-crawls on a schedule (`[[sources]]`).
    pub sources: Vec<SourceSettings>,
}

/// How a scheduled web source is walked (closed set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Start pages; links are followed within the scope.
    #[default]
    Site,
    /// Sitemaps: every listed page in scope.
    Sitemap,
    /// Exactly these pages.
    Urls,
    /// A Git repository (one URL): a shallow checkout of `branch`, its files under `path`
    /// ingested as a directory.
    Git,
}

/// One `[[sources]]` entry: a web source the server keeps fresh. With several replicas
/// sharing their rollout state in Redis, each due re-crawl is made by one of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// Unique among the sources (letters, digits, `-`, `_`, `.`): the schedule's name,
    /// shared by every replica.
    pub name: String,
    /// The collection (or alias) the pages go to.
    pub collection: String,
    #[serde(default)]
    pub kind: SourceKind,
    pub urls: Vec<String>,
    /// `every 6h`, `every 1d`, ... or a cron expression (UTC).
    pub schedule: String,
    /// URL prefix pages must be under (default as for `aidocs ingest URL`).
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub max_pages: Option<usize>,
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// Hosts allowed to resolve to internal addresses, added to `crawl.allow_hosts`.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    #[serde(default)]
    pub metadata: MetadataSettings,
    /// `chromium`: render the site's pages in headless Chromium before parsing (a site built
    /// by JavaScript); `none` (default) reads them as served.
    #[serde(default, skip_serializing_if = "aidocs_crawl::Render::is_none")]
    pub render: aidocs_crawl::Render,
    /// Credentials of a private site (`[sources.auth]`), sent to the origins of `urls` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<SourceAuth>,
    /// Git: the branch (default: the remote's default branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Git: the directory of the repository to ingest (default: all of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Git: where a file's page is on the web, `<base_url>/<file path under path>` (default
    /// for GitHub, GitLab and Codeberg URLs: the file's `blob` page on the branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Git: ingest each tag matching this glob (`v*`) as its own version, side by side (the
    /// newest 20), instead of the branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions_from_tags: Option<String>,
}

impl SourceSettings {
    /// A source with nothing but its name, collection, kind, URLs and schedule; every other
    /// field at its default.
    pub fn new(name: &str, collection: &str, kind: SourceKind, urls: Vec<String>, schedule: &str) -> Self {
        Self {
            name: name.into(),
            collection: collection.into(),
            kind,
            urls,
            schedule: schedule.into(),
            scope: None,
            include: Vec::new(),
            exclude: Vec::new(),
            max_pages: None,
            max_depth: None,
            allow_hosts: Vec::new(),
            metadata: Default::default(),
            render: Default::default(),
            auth: None,
            branch: None,
            path: None,
            base_url: None,
            versions_from_tags: None,
        }
    }
}

/// `[sources.auth]`: how a private docs site is reached. Each value may be, or contain, a
/// `${NAME}` reference to an environment variable, resolved once when the config loads (so
/// the secret itself need not be in the file). Never printed: `Debug` names the parts only,
/// and `aidocs config show` redacts every value.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceAuth {
    /// Extra headers (`"X-Api-Key" = "${DOCS_KEY}"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
    /// `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<String>,
    /// Cookies (name = value), sent as one `Cookie` header.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cookies: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SourceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceAuth").field("parts", &self.parts()).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicAuth(<redacted>)")
    }
}

impl SourceAuth {
    /// What is configured, without a value: `basic`, `bearer`, `header:X-Api-Key`,
    /// `cookie:session`. Safe to show in an API answer.
    pub fn parts(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.basic.is_some() {
            out.push("basic".to_owned());
        }
        if self.bearer.is_some() {
            out.push("bearer".to_owned());
        }
        out.extend(self.headers.keys().map(|k| format!("header:{k}")));
        out.extend(self.cookies.keys().map(|k| format!("cookie:{k}")));
        out
    }

    /// The crawler's credentials for the origins of `urls`.
    pub fn credentials(&self, urls: &[String]) -> Result<aidocs_crawl::Credentials, aidocs_crawl::CrawlError> {
        let mut c = aidocs_crawl::Credentials::for_urls(urls.iter().map(String::as_str))?;
        for (name, value) in &self.headers {
            c = c.header(name, value)?;
        }
        if let Some(b) = &self.basic {
            c = c.basic(&b.username, &b.password)?;
        }
        if let Some(t) = &self.bearer {
            c = c.bearer(t)?;
        }
        c.cookies(self.cookies.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Every value, mutable: for resolving `${NAME}` references.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = (String, &mut String)> {
        let headers = self.headers.iter_mut().map(|(k, v)| (format!("headers.{k}"), v));
        let cookies = self.cookies.iter_mut().map(|(k, v)| (format!("cookies.{k}"), v));
        let basic = self.basic.iter_mut().flat_map(|b| [("basic.username".to_owned(), &mut b.username), ("basic.password".to_owned(), &mut b.password)]);
        let bearer = self.bearer.iter_mut().map(|t| ("bearer".to_owned(), t));
        headers.chain(cookies).chain(basic).chain(bearer)
    }
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
    /// Ask sites for Markdown first (`Accept: text/markdown, text/html;q=0.9`); a site that
    /// offers it answers with its pages' Markdown.
    pub prefer_markdown: bool,
    /// The WebDriver server that drives Chromium for sources with `render = "chromium"`
    /// (Debian: `chromedriver` from chromium-driver, which finds `chromium` itself).
    pub render_driver: String,
    /// The Chromium binary, when the driver should not look for it (empty: its choice).
    pub render_browser: String,
    /// Loading and rendering one page, its scripts included.
    pub render_timeout_ms: u64,
}

impl CrawlSettings {
    /// The renderer's settings for a source with `render = "chromium"`.
    pub fn renderer(&self) -> aidocs_crawl::RenderConfig {
        aidocs_crawl::RenderConfig {
            driver: self.render_driver.clone().into(),
            browser: (!self.render_browser.is_empty()).then(|| self.render_browser.clone().into()),
            timeout: std::time::Duration::from_millis(self.render_timeout_ms),
            ..aidocs_crawl::RenderConfig::default()
        }
    }
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
            prefer_markdown: d.prefer_markdown,
            render_driver: "chromedriver".into(),
            render_browser: String::new(),
            render_timeout_ms: 30_000,
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
    /// When the server makes backups: `every 6h`, `every 1d`, ... or a cron expression
    /// (UTC); none = no schedule. With several replicas, one of them makes each.
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
    /// How long a claim on a scheduled run (a backup, a source's re-crawl, a blue-green
    /// cleanup) holds without renewal: a replica killed mid-run is replaced this long after
    /// its last renewal. The holder renews at a third of it.
    pub lease_s: u64,
    pub blue_green: BlueGreenSettings,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        Self { state: RolloutStateBackend::Auto, check_interval_s: 5, lease_s: 30, blue_green: BlueGreenSettings::default() }
    }
}

impl RolloutSettings {
    /// [`RolloutSettings::lease_s`] as a duration.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_s)
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
    /// At start, embed a few texts and query each collection (up to 16) before readiness
    /// says ready (`warming` until then), so the first searches cost what later ones do.
    pub warm_up: bool,
}

/// Embedding provider (closed set; more come with later backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingProvider {
    /// The default: `onnx` when its model (`onnx_model_dir/model.onnx`) and runtime
    /// (`onnx_runtime_lib`) are both on disk (`cargo xtask models`, the container image and
    /// the release tarball put them there), else `local`. Chosen once, when the config
    /// resolves: `aidocs config show` and `/health/detailed` name the engine it chose.
    Auto,
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
            Self::Auto => "auto",
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
    /// `libonnxruntime.so` for `onnx` (the environment's `ORT_DYLIB_PATH` replaces it).
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
    /// The engine these settings embed with: the configured provider, or for `auto` the
    /// ONNX Runtime engine when its model and runtime are on disk, else candle.
    pub fn engine(&self) -> EmbeddingProvider {
        match self.provider {
            EmbeddingProvider::Auto if self.onnx_present() => EmbeddingProvider::Onnx,
            EmbeddingProvider::Auto => EmbeddingProvider::Local,
            chosen => chosen,
        }
    }

    /// Whether the ONNX engine's model and runtime library are both on disk.
    pub fn onnx_present(&self) -> bool {
        self.onnx_model_dir.join("model.onnx").is_file() && self.onnx_runtime_lib.is_file()
    }

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
    /// Tokens of a section's lead: a short extra chunk (heading path and the section's first
    /// sentences) for each section whose first chunk is longer than 1.5 times this; 0 = none.
    pub lead_tokens: usize,
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
    /// Most collections one search may span (a list, or `*`).
    pub max_collections: usize,
    /// `section` (one result per section: its best chunk) or `none` (every chunk); a
    /// request's `collapse` overrides it.
    pub collapse: Collapse,
    /// Evidence from a chunk's own section: this share of the scores of the other
    /// candidates of its section is added to its score before ranking, so a section that
    /// matches in several chunks rises above a sibling that matches once (0..=1; 0 ranks
    /// every chunk on its own). 0.1 was chosen on the docs-QA dev half (docs/quality.md).
    pub section_weight: f32,
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
    /// The most a Git source's checkout may take on disk, in MiB: a clone or fetch that
    /// grows past it is stopped, its files removed, and the run fails naming the limit.
    pub max_git_checkout_mb: u64,
    /// Whether the next documents are chunked while a batch embeds (`auto`: where cores
    /// are left beside the embedder's own threads).
    pub overlap: IngestOverlap,
}

/// Whether an ingest chunks the next documents while a batch embeds and writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestOverlap {
    /// Overlap where it pays: when the embedder leaves a core free (ONNX Runtime with
    /// `embedding.threads` below the core count) or embeds elsewhere (`openai`). Beside an
    /// embedder whose threads take every core, chunking (a few percent of the embedder's
    /// time: the most an overlap can save) competes for the same cores and measured no
    /// faster (docs/operators/tuning.md), so there it runs serially.
    #[default]
    Auto,
    /// Always overlap.
    On,
    /// Never: chunk, then embed and write, one batch at a time.
    Off,
}

impl IngestSettings {
    /// Whether an ingest overlaps chunking with embedding on a machine of `cores` cores,
    /// embedding with `embedding`.
    pub fn overlaps(&self, embedding: &EmbeddingSettings, cores: usize) -> bool {
        match self.overlap {
            IngestOverlap::On => true,
            IngestOverlap::Off => false,
            IngestOverlap::Auto => match embedding.engine() {
                EmbeddingProvider::Openai => true,
                EmbeddingProvider::Onnx => embedding.threads > 0 && embedding.threads < cores,
                // candle's matrix kernels use every core.
                EmbeddingProvider::Local | EmbeddingProvider::Auto => false,
            },
        }
    }
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
            sources: Vec::new(),
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
            warm_up: true,
        }
    }
}

impl Default for EmbeddingSettings {
    fn default() -> Self {
        Self {
            provider: EmbeddingProvider::Auto,
            model_dir: PathBuf::from("models/all-MiniLM-L6-v2"),
            onnx_model_dir: PathBuf::from("models/all-MiniLM-L6-v2-int8"),
            onnx_runtime_lib: PathBuf::from("models/onnxruntime/libonnxruntime.so.1.31.1"),
            model_id: "sentence-transformers/all-MiniLM-L6-v2".into(),
            batch_size: 8,
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
        Self { max_tokens: 256, overlap_tokens: 32, lead_tokens: 128 }
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
            max_collections: 16,
            collapse: Collapse::Section,
            section_weight: 0.1,
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
        Self { base_url: None, batch_size: 128, optimize: true, metadata: Default::default(), allowed_roots: Vec::new(), max_git_checkout_mb: 2048, overlap: IngestOverlap::Auto }
    }
}
