//! Transfer types: what goes over HTTP, apart from the engine's and the stores' own types.
//! Requests convert into domain requests with `From`; responses are built from domain values
//! with `From`. Every type here has a JSON Schema in the OpenAPI document (`utoipa`). The
//! admin client ([`crate::client`]) and the CLI send the same request types, so no tool
//! builds a request body by hand.
//!
//! Stored formats (a canary's persisted state, a backup manifest) are not API formats: a
//! response that has no wire type yet is documented as a free-form object.

use aidocs::core::{CollectionInfo, DocMetadata, SearchMode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use utoipa::{IntoParams, ToSchema};

/// Every error response: `{"error": {"code", "message"}}`. Codes and statuses are the table
/// in `docs/api.md`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `collection_not_found`.
    pub code: String,
    /// What was wrong, for people.
    pub message: String,
}

/// Retrieval mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Hybrid,
    Dense,
    Sparse,
}

impl From<Mode> for SearchMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Hybrid => SearchMode::Hybrid,
            Mode::Dense => SearchMode::Dense,
            Mode::Sparse => SearchMode::Sparse,
        }
    }
}

impl From<SearchMode> for Mode {
    fn from(m: SearchMode) -> Self {
        match m {
            SearchMode::Hybrid => Mode::Hybrid,
            SearchMode::Dense => Mode::Dense,
            SearchMode::Sparse => Mode::Sparse,
        }
    }
}

/// What one search hit stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CollapseBy {
    Section,
    None,
}

impl From<CollapseBy> for aidocs::core::Collapse {
    fn from(c: CollapseBy) -> Self {
        match c {
            CollapseBy::Section => Self::Section,
            CollapseBy::None => Self::None,
        }
    }
}

/// `POST /v1/search`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    pub query: String,
    /// Collection or alias; default `search.default_collection`. A list, or `"*"` (every
    /// collection built by this server's model), searches across collections: rankings fused
    /// by reciprocal rank, each hit naming its `collection`.
    #[serde(default)]
    pub collection: Option<CollectionTarget>,
    /// Default `search.default_limit`, at most `search.max_limit`.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Default `search.default_mode`.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Payload filter: `{"language": "python"}`, `{"version": ["3.11", "3.12"]}`,
    /// `{"difficulty_level": {"gte": 2}}`; keys are the metadata fields.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: Value,
    /// HyDE expansion; default from `hyde.enabled`.
    #[serde(default)]
    pub hyde: Option<bool>,
    /// Rerank the fused candidates; default from `rerank.enabled`.
    #[serde(default)]
    pub rerank: Option<bool>,
    /// Search every version. By default a collection holding several versions side by side
    /// of one library is searched at its newest when `filter` names no `version`
    /// (`default_version` says which); a collection of several libraries (`framework`
    /// values) is searched at every version.
    #[serde(default)]
    pub all_versions: bool,
    /// `section` (one hit per section: its best chunk, so one long section does not take
    /// several slots) or `none` (every chunk); default `search.collapse` (`section`).
    #[serde(default)]
    pub collapse: Option<CollapseBy>,
    /// `page`: also answer `grouped`, each hit's section whole, grouped by page and fitted to
    /// `max_tokens`.
    #[serde(default)]
    pub group_by: Option<GroupBy>,
    /// Token budget of the grouped answer (200 to 100000, default 5000); needs `group_by`.
    #[serde(default)]
    pub max_tokens: Option<usize>,
}

/// One collection (or `"*"`), or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CollectionTarget {
    One(String),
    Many(Vec<String>),
}

impl CollectionTarget {
    /// The engine's form: a name, `*`, or names joined by commas.
    pub fn to_engine(&self) -> Result<String, String> {
        match self {
            Self::One(s) => Ok(s.clone()),
            Self::Many(v) if v.is_empty() => Err("`collection` is an empty list".into()),
            Self::Many(v) => match v.iter().find(|n| n.contains(',') || n.trim().is_empty() || *n == "*") {
                Some(bad) => Err(format!("`collection` list holds `{bad}`, which is not a collection name")),
                None => Ok(v.join(",")),
            },
        }
    }
}

/// Document metadata: every field optional and filterable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// RFC 3339; set by ingest, ignored in requests (read back by clients of the answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difficulty_level: Option<i64>,
}

impl From<Metadata> for DocMetadata {
    fn from(m: Metadata) -> Self {
        DocMetadata { language: m.language, framework: m.framework, doc_type: m.doc_type, version: m.version, last_updated: None, difficulty_level: m.difficulty_level }
    }
}

impl From<DocMetadata> for Metadata {
    fn from(m: DocMetadata) -> Self {
        Metadata { language: m.language, framework: m.framework, doc_type: m.doc_type, version: m.version, last_updated: m.last_updated, difficulty_level: m.difficulty_level }
    }
}

impl From<aidocs::config::MetadataSettings> for Metadata {
    fn from(m: aidocs::config::MetadataSettings) -> Self {
        Metadata { language: m.language, framework: m.framework, doc_type: m.doc_type, version: m.version, last_updated: None, difficulty_level: m.difficulty_level }
    }
}

impl From<Metadata> for aidocs::config::MetadataSettings {
    fn from(m: Metadata) -> Self {
        Self { language: m.language, framework: m.framework, doc_type: m.doc_type, version: m.version, difficulty_level: m.difficulty_level }
    }
}

/// Milliseconds per stage of one search (0 for stages that did not run).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct StageTimings {
    pub embed_ms: f64,
    pub hyde_ms: f64,
    pub search_ms: f64,
    pub rerank_ms: f64,
}

/// One result: a section of a page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    pub id: String,
    /// The collection of the hit, in a search across collections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    pub score: f32,
    pub path: String,
    pub anchor: String,
    /// Deep link: the page's URL plus `#anchor` when the section has one.
    pub url: String,
    pub title: String,
    pub heading_path: Vec<String>,
    pub snippet: String,
    pub metadata: Metadata,
}

/// `POST /v1/search` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    /// The collection that answered (an alias resolved).
    pub collection: String,
    pub mode: Mode,
    pub took_ms: f64,
    pub timings: StageTimings,
    /// When HyDE was requested: `applied (N passages, kind)` or `skipped: <reason>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyde: Option<String>,
    /// When reranking was requested: `applied (model, K candidates)` or `skipped: <reason>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<String>,
    /// Served from the search-result cache.
    pub cached: bool,
    /// The version searched because the collection holds several and the request named
    /// none (the newest); absent otherwise. Send a `version` filter or `all_versions: true`
    /// for others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version: Option<String>,
    pub hits: Vec<SearchHit>,
    /// With `group_by: "page"`: the hits' sections whole, grouped by page, within `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouped: Option<Grouped>,
    pub query: String,
    /// The request id (`X-Request-ID`); send it back with `POST /v1/feedback`.
    pub query_id: String,
}

impl SearchResponse {
    pub fn new(r: aidocs::SearchResponse, query: String, query_id: String) -> Self {
        let t = r.timings;
        Self {
            collection: r.collection,
            mode: r.mode.into(),
            took_ms: r.took_ms,
            timings: StageTimings { embed_ms: t.embed_ms, hyde_ms: t.hyde_ms, search_ms: t.search_ms, rerank_ms: t.rerank_ms },
            hyde: r.hyde.map(|n| n.to_string()),
            rerank: r.rerank.map(|n| n.to_string()),
            cached: r.cached,
            default_version: r.default_version,
            hits: r
                .hits
                .into_iter()
                .map(|h| SearchHit { id: h.id, collection: h.collection, score: h.score, path: h.path, anchor: h.anchor, url: h.url, title: h.title, heading_path: h.heading_path, snippet: h.snippet, metadata: h.metadata.into() })
                .collect(),
            grouped: None,
            query,
            query_id,
        }
    }
}

/// `POST /v1/feedback`: a click on a hit of an answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// `query_id` of the search response (its `X-Request-ID`).
    pub query_id: String,
    /// `id` of the clicked hit.
    pub hit_id: String,
}

/// `POST /v1/feedback` answer: the A/B test and variant credited with the click.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedbackAccepted {
    pub ab_test: String,
    pub variant: String,
}

/// A collection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Collection {
    pub name: String,
    /// Dense vector dimensions.
    pub dims: usize,
    pub points: usize,
    pub indexed_vectors: usize,
    pub segments: usize,
    pub aliases: Vec<String>,
    pub created_at: String,
    /// Backend-level properties (`embedding_model`, ...).
    pub properties: std::collections::BTreeMap<String, String>,
}

impl From<CollectionInfo> for Collection {
    fn from(c: CollectionInfo) -> Self {
        Self { name: c.name, dims: c.dims, points: c.points, indexed_vectors: c.indexed_vectors, segments: c.segments, aliases: c.aliases, created_at: c.created_at, properties: c.properties }
    }
}

/// `GET /v1/collections` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Collections {
    pub collections: Vec<Collection>,
}

/// `POST /v1/documents`: exactly one of `path` (on the server's machine, under
/// `ingest.allowed_roots`), `url` (a site crawled from this page), `sitemap`, `urls` or
/// `git` (a repository).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentsBody {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub sitemap: Option<String>,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    /// Only URLs under this prefix (default: the start page's directory).
    #[serde(default)]
    pub scope: Option<String>,
    /// Globs on the URL path a page must match.
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs on the URL path that exclude a page.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// At most `crawl.max_pages` (a request may only lower it).
    #[serde(default)]
    pub max_pages: Option<usize>,
    /// At most `crawl.max_depth`.
    #[serde(default)]
    pub max_depth: Option<usize>,
    #[serde(default)]
    pub collection: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    /// Base URL replacing `file://` links of a path ingest.
    #[serde(default)]
    pub base_url: Option<String>,
    /// `chromium`: load each HTML page in headless Chromium and index what its scripts
    /// built (a JavaScript site); `none` (default): pages as served. Web sources only.
    #[serde(default)]
    pub render: RenderView,
    /// A Git repository: its Markdown, reST, HTML and PDF files at a ref, or at each tag.
    #[serde(default)]
    pub git: Option<GitBody>,
}

/// A Git repository to ingest (`POST /v1/documents` with `git`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GitBody {
    /// `https://` or `http://` (the host must pass the server's SSRF guard, as a crawl's
    /// does), or a repository on the server's machine under `ingest.allowed_roots`
    /// (`file://` or an absolute path).
    pub url: String,
    /// The branch or tag (default: the remote's default branch).
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// The directory of the repository to ingest (default: all of it).
    #[serde(default)]
    pub path: Option<String>,
    /// Ingest every tag matching this pattern (`v*`), each as its version (`v2.3.0` is
    /// `2.3.0`), newest 20; not with `ref`.
    #[serde(default)]
    pub versions_from_tags: Option<String>,
}

/// How a web source's pages are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RenderView {
    #[default]
    None,
    Chromium,
}

impl From<RenderView> for aidocs::ingest::Render {
    fn from(r: RenderView) -> Self {
        match r {
            RenderView::None => aidocs::ingest::Render::None,
            RenderView::Chromium => aidocs::ingest::Render::Chromium,
        }
    }
}

/// `POST /v1/admin/sync`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    #[serde(default)]
    pub collection: Option<String>,
}

/// The answer of `POST /v1/admin/sync`: one report per registered web source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResponse {
    pub reports: Vec<aidocs::IngestReport>,
}

/// The answer of `GET /v1/admin/backups`: archive backups and native snapshots, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupList {
    pub backups: Vec<aidocs::backup::BackupSummary>,
    pub native: Vec<aidocs::backup::NativeEntry>,
}

/// `full` or `incremental`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupType {
    Full,
    Incremental,
}

impl From<aidocs::backup::BackupKind> for BackupType {
    fn from(k: aidocs::backup::BackupKind) -> Self {
        match k {
            aidocs::backup::BackupKind::Full => Self::Full,
            aidocs::backup::BackupKind::Incremental => Self::Incremental,
        }
    }
}

impl From<BackupType> for aidocs::backup::BackupKind {
    fn from(t: BackupType) -> Self {
        match t {
            BackupType::Full => Self::Full,
            BackupType::Incremental => Self::Incremental,
        }
    }
}

/// `POST /v1/admin/backups`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupCreateBody {
    /// Collection or alias; default `search.default_collection`.
    #[serde(default)]
    pub collection: Option<String>,
    /// `full` (default) or `incremental`.
    #[serde(default, rename = "type")]
    pub kind: Option<BackupType>,
    /// The Qdrant server's own snapshot instead of the portable archive.
    #[serde(default)]
    pub native: bool,
}

/// `POST /v1/admin/backups/{id}/restore`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// Target collection (default `recovery_<timestamp>`); must not exist.
    #[serde(default)]
    pub into: Option<String>,
    /// Point this alias at the restored collection once it validated.
    #[serde(default)]
    pub switch_alias: Option<String>,
    /// Replaces `backup.validate_queries` for this restore.
    #[serde(default)]
    pub validate_queries: Option<Vec<String>>,
}

impl From<aidocs::backup::RestoreRequest> for RestoreBody {
    fn from(r: aidocs::backup::RestoreRequest) -> Self {
        Self { into: r.into, switch_alias: r.switch_alias, validate_queries: r.validate_queries }
    }
}

impl From<RestoreBody> for aidocs::backup::RestoreRequest {
    fn from(b: RestoreBody) -> Self {
        Self { into: b.into, switch_alias: b.switch_alias, validate_queries: b.validate_queries }
    }
}

/// `POST /v1/admin/backups/prune`: retention from the body, else from `[backup]`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneBody {
    #[serde(default)]
    pub keep_last: Option<usize>,
    #[serde(default)]
    pub keep_days: Option<u32>,
}

/// `POST /v1/admin/backups/drill`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillBody {
    #[serde(default)]
    pub collection: Option<String>,
}

/// `GET /v1/admin/backups` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BackupListQuery {
    /// Only this collection's backups.
    pub collection: Option<String>,
}

/// `DELETE /v1/admin/cache` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClearQuery {
    /// `embedding`, `search` or `hyde`; all kinds when absent.
    #[serde(default)]
    pub kind: Option<String>,
}

/// Output of `GET /v1/admin/profile`.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileFormat {
    /// An SVG flame graph.
    #[default]
    Flamegraph,
    /// Collapsed stacks, one `thread;frame;...;frame count` line per stack.
    Folded,
}

/// `GET /v1/admin/profile` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProfileQuery {
    /// Seconds to sample (default 10; at most `server.profile_max_seconds`).
    #[serde(default)]
    pub seconds: Option<u64>,
    /// Samples per second, 1 to 1000 (default 99).
    #[serde(default)]
    pub frequency: Option<u32>,
    #[serde(default)]
    #[param(inline)]
    pub format: ProfileFormat,
}

/// Whether to wait for an admin job: `?wait=false` answers 202 with the job at once.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// `false` (or `Prefer: respond-async`): answer 202 with the job instead of waiting.
    pub wait: Option<bool>,
}

/// `POST /v1/admin/canaries/{id}/rollback`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// One stage of a canary.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryStage {
    /// Share of traffic on the canary, 1..=100; the last stage is 100.
    pub percentage: u8,
    /// How long the stage runs (while not paused) before it can advance.
    pub duration_s: u64,
    /// Canary error rate above which a check counts as a breach.
    pub max_error_rate: f64,
    /// Canary p95 latency (ms) above which a check counts as a breach.
    pub max_p95_ms: f64,
    /// Canary requests needed before the stage can be judged at all.
    pub min_requests: u64,
}

/// `POST /v1/admin/canaries`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryStart {
    /// Default `<alias>-<collection>-<time>`.
    #[serde(default)]
    pub id: Option<String>,
    pub alias: String,
    /// The collection to roll out.
    pub collection: String,
    /// Default 5 / 25 / 50 / 100 %, 30 min each, 5 % errors, p95 200 ms, 100 requests.
    #[serde(default)]
    pub stages: Option<Vec<CanaryStage>>,
    /// Consecutive breached checks that roll back (default 2).
    #[serde(default)]
    pub rollback_after_breaches: Option<u32>,
}

impl From<CanaryStart> for aidocs::rollout::CanaryStart {
    fn from(c: CanaryStart) -> Self {
        Self {
            id: c.id,
            alias: c.alias,
            collection: c.collection,
            stages: c.stages.map(|s| {
                s.into_iter()
                    .map(|s| aidocs::rollout::StageSpec { percentage: s.percentage, duration_s: s.duration_s, max_error_rate: s.max_error_rate, max_p95_ms: s.max_p95_ms, min_requests: s.min_requests })
                    .collect()
            }),
            rollback_after_breaches: c.rollback_after_breaches,
        }
    }
}

/// `POST /v1/admin/deploy/blue-green`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlueGreenBody {
    pub alias: String,
    /// The documentation tree to build green from, on the server's machine (under
    /// `ingest.allowed_roots`).
    #[schema(value_type = String)]
    pub source: PathBuf,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub base_url: Option<String>,
    /// Queries green must answer well before the switch.
    #[serde(default)]
    pub validate_queries: Vec<String>,
    /// Overrides of `[rollout.blue_green]` (same keys).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<aidocs::config::BlueGreenSettings>,
}

impl From<aidocs::rollout::BlueGreenRequest> for BlueGreenBody {
    fn from(r: aidocs::rollout::BlueGreenRequest) -> Self {
        Self { alias: r.alias, source: r.source, metadata: r.metadata.into(), base_url: r.base_url, validate_queries: r.validate_queries, settings: r.settings }
    }
}

impl From<BlueGreenBody> for aidocs::rollout::BlueGreenRequest {
    fn from(b: BlueGreenBody) -> Self {
        Self { alias: b.alias, source: b.source, metadata: b.metadata.into(), base_url: b.base_url, validate_queries: b.validate_queries, settings: b.settings }
    }
}

/// One arm of an A/B test.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbVariant {
    /// `[A-Za-z0-9_-]+`, unique in the test; sent back in `X-Aidocs-Variant`.
    pub id: String,
    /// Share of traffic; all weights of a test sum to 1.
    pub weight: f64,
    #[serde(default)]
    pub collection: Option<String>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub hyde: Option<bool>,
    #[serde(default)]
    pub rerank: Option<bool>,
    /// Fusion as in `aidocs eval --fusion`: `rrf:K`, `rrf:K:DW:SW`, `dbsf`.
    #[serde(default)]
    pub fusion: Option<String>,
}

/// `POST /v1/admin/ab`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbCreate {
    #[serde(default)]
    pub id: Option<String>,
    pub alias: String,
    /// The first is the control.
    pub variants: Vec<AbVariant>,
}

impl TryFrom<AbCreate> for aidocs::rollout::AbCreate {
    type Error = String;
    /// Fails on a variant whose fusion does not parse, naming the variant.
    fn try_from(a: AbCreate) -> Result<Self, String> {
        let variants = a
            .variants
            .into_iter()
            .map(|v| {
                let fusion = v.fusion.map(|f| f.parse().map_err(|e| format!("variant `{}`: {e}", v.id))).transpose()?;
                Ok(aidocs::rollout::Variant { id: v.id, weight: v.weight, collection: v.collection, mode: v.mode.map(Into::into), hyde: v.hyde, rerank: v.rerank, fusion })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { id: a.id, alias: a.alias, variants })
    }
}

/// Liveness answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// How `POST /v1/search` groups its answer (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// By page: each hit's section whole, the answer fitted to `max_tokens`.
    Page,
}

/// One section as read: its chunks merged in reading order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SectionText {
    /// Point id of the section's first chunk (`GET /v1/sections/{id}`).
    pub id: String,
    /// The page URL plus `#anchor` when the section has one.
    pub url: String,
    pub heading_path: Vec<String>,
    pub text: String,
    /// Best search score among its chunks (search answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The text was cut to fit the budget.
    #[serde(default)]
    pub truncated: bool,
}

impl From<aidocs::read::SectionText> for SectionText {
    fn from(s: aidocs::read::SectionText) -> Self {
        Self { id: s.id, url: s.url, heading_path: s.heading_path, text: s.text, score: s.score, truncated: s.truncated }
    }
}

/// The sections of one page in a grouped answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageHits {
    pub title: String,
    /// The page, without an anchor.
    pub url: String,
    /// The collection it lives in.
    pub library: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    pub sections: Vec<SectionText>,
}

/// A grouped answer sized for a context window (`group_by: "page"`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Grouped {
    pub pages: Vec<PageHits>,
    /// Tokens of `text`, by the embedding model's tokenizer; at most `max_tokens`.
    pub tokens: usize,
    pub max_tokens: usize,
    /// Sections left out because the budget was spent.
    pub omitted_sections: usize,
    /// Sections whose text was cut.
    pub truncated_sections: usize,
    /// The answer as Markdown, for a model to read (what `tokens` counts).
    pub text: String,
}

impl From<aidocs::read::Fitted> for Grouped {
    fn from(f: aidocs::read::Fitted) -> Self {
        let text = f.render();
        Self {
            pages: f
                .pages
                .into_iter()
                .map(|p| PageHits { title: p.title, url: p.url, library: p.library, version: p.version, updated: p.updated, sections: p.sections.into_iter().map(Into::into).collect() })
                .collect(),
            tokens: f.tokens,
            max_tokens: f.max_tokens,
            omitted_sections: f.omitted_sections,
            truncated_sections: f.truncated_sections,
            text,
        }
    }
}

/// The title and link of a neighbouring section.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Neighbour {
    pub heading_path: Vec<String>,
    pub url: String,
    pub id: String,
}

impl From<aidocs::read::Neighbour> for Neighbour {
    fn from(n: aidocs::read::Neighbour) -> Self {
        Self { heading_path: n.heading_path, url: n.url, id: n.id }
    }
}

/// `GET /v1/sections/{id}`: a section whole with its neighbours.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SectionResponse {
    pub library: String,
    pub title: String,
    pub page_url: String,
    pub section: SectionText,
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Neighbour>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Neighbour>,
}

impl From<aidocs::read::SectionView> for SectionResponse {
    fn from(v: aidocs::read::SectionView) -> Self {
        Self {
            library: v.library,
            title: v.title,
            page_url: v.page_url,
            section: v.section.into(),
            metadata: v.metadata.into(),
            previous: v.previous.map(Into::into),
            next: v.next.map(Into::into),
        }
    }
}

/// `GET /v1/pages`: a page, or one stretch of it, in reading order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageResponse {
    pub library: String,
    pub title: String,
    pub url: String,
    pub metadata: Metadata,
    pub sections: Vec<SectionText>,
    /// Pass it as `cursor` to read on; absent at the end of the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<usize>,
    pub tokens: usize,
}

impl From<aidocs::read::PageView> for PageResponse {
    fn from(v: aidocs::read::PageView) -> Self {
        Self {
            library: v.library,
            title: v.title,
            url: v.url,
            metadata: v.metadata.into(),
            sections: v.sections.into_iter().map(Into::into).collect(),
            next_cursor: v.next_cursor,
            tokens: v.tokens,
        }
    }
}

/// `GET /v1/pages` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The page's URL (an `#anchor` is ignored).
    pub url: String,
    /// The collection; default `search.default_collection`.
    #[serde(default)]
    pub library: Option<String>,
    /// Section to start from (`next_cursor` of the previous answer); default 0.
    #[serde(default)]
    pub cursor: Option<usize>,
    /// Token budget, 200 to 100000; default 5000.
    #[serde(default)]
    pub max_tokens: Option<usize>,
}

/// `GET /v1/sections/{id}` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LibraryQuery {
    /// The collection; default `search.default_collection`.
    #[serde(default)]
    pub library: Option<String>,
}

/// A library: a collection and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Library {
    pub name: String,
    pub aliases: Vec<String>,
    /// Distinct `version` values, in version order.
    pub versions: Vec<String>,
    pub pages: usize,
    pub chunks: usize,
    /// URL origins and directory roots its documents came from (at most 20).
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// When a crawl of its web sources last finished (RFC 3339); absent for directories only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced: Option<String>,
}

/// The answer of `DELETE /v1/admin/collections/{name}` (and `.../versions/{version}`, which
/// also says how many chunks went).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Removed {
    pub collection: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<usize>,
}

/// `GET /v1/libraries`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Libraries {
    pub libraries: Vec<Library>,
}

impl From<Vec<aidocs::read::Library>> for Libraries {
    fn from(v: Vec<aidocs::read::Library>) -> Self {
        Self {
            libraries: v
                .into_iter()
                .map(|l| Library { name: l.name, aliases: l.aliases, versions: l.versions, pages: l.pages, chunks: l.chunks, sources: l.sources, last_updated: l.last_updated, last_synced: l.last_synced })
                .collect(),
        }
    }
}

/// One value of a facet field and how many chunks carry it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: usize,
}

/// The answer of `GET /v1/facets`: each facet field's values over the whole collection,
/// most chunks first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FacetsResponse {
    /// The collection counted (an alias resolved).
    pub collection: String,
    /// `language`, `framework`, `doc_type` and `version`, each with its values (at most 100);
    /// a field no chunk sets is an empty list.
    pub facets: BTreeMap<String, Vec<FacetCount>>,
}

impl From<aidocs::read::Facets> for FacetsResponse {
    fn from(f: aidocs::read::Facets) -> Self {
        Self {
            collection: f.collection,
            facets: f
                .fields
                .into_iter()
                .map(|(field, values)| (field.as_str().to_owned(), values.into_iter().map(|(value, count)| FacetCount { value, count }).collect()))
                .collect(),
        }
    }
}

/// `GET /v1/facets` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FacetQuery {
    /// The collection or alias; default `search.default_collection`.
    #[serde(default)]
    pub collection: Option<String>,
}

/// `GET /v1/resolve` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResolveQuery {
    /// A library name, optionally with a version: `react`, `react@18`, `python>=3.10`.
    pub name: String,
    /// A version or requirement (`3.11`, `^18.2`, `>=3.10,<3.12`); overrides one in `name`.
    #[serde(default)]
    pub version: Option<String>,
}

/// `GET /v1/resolve`: the library and the newest indexed version that satisfies the request;
/// `version` is absent when none does (never another version in its place).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Resolution {
    pub library: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub available: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    pub note: String,
}

impl From<aidocs::read::Resolution> for Resolution {
    fn from(r: aidocs::read::Resolution) -> Self {
        Self { library: r.library, version: r.version, available: r.available, requested: r.requested, note: r.note }
    }
}

impl From<SectionText> for aidocs::read::SectionText {
    fn from(s: SectionText) -> Self {
        Self { id: s.id, url: s.url, heading_path: s.heading_path, text: s.text, score: s.score, truncated: s.truncated }
    }
}

impl From<Neighbour> for aidocs::read::Neighbour {
    fn from(n: Neighbour) -> Self {
        Self { heading_path: n.heading_path, url: n.url, id: n.id }
    }
}

impl From<SectionResponse> for aidocs::read::SectionView {
    fn from(v: SectionResponse) -> Self {
        Self {
            library: v.library,
            title: v.title,
            page_url: v.page_url,
            section: v.section.into(),
            metadata: v.metadata.into(),
            previous: v.previous.map(Into::into),
            next: v.next.map(Into::into),
        }
    }
}

impl From<PageResponse> for aidocs::read::PageView {
    fn from(v: PageResponse) -> Self {
        Self {
            library: v.library,
            title: v.title,
            url: v.url,
            metadata: v.metadata.into(),
            sections: v.sections.into_iter().map(Into::into).collect(),
            next_cursor: v.next_cursor,
            tokens: v.tokens,
        }
    }
}

impl From<Resolution> for aidocs::read::Resolution {
    fn from(r: Resolution) -> Self {
        Self { library: r.library, version: r.version, available: r.available, requested: r.requested, note: r.note }
    }
}

/// `GET /v1/admin/sources`: the scheduled web sources (`[[sources]]`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sources {
    pub sources: Vec<SourceView>,
}

/// One scheduled source: its schedule, its newest run and how the runs have gone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourceView {
    pub name: String,
    pub collection: String,
    pub kind: SourceKindView,
    pub urls: Vec<String>,
    /// `every 6h` or a cron expression (UTC).
    pub schedule: String,
    /// The credentials configured, by kind and name, never by value: `basic`, `bearer`,
    /// `header:X-Api-Key`, `cookie:session`. Empty for a public source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth: Vec<String>,
    /// The next due time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<SourceRunView>,
    /// The error of the newest finished run, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How many of the newest finished runs failed one after another.
    pub failures_in_a_row: u32,
}

/// One run of a scheduled source (made by one replica).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourceRunView {
    /// When it was due (RFC 3339).
    pub due: String,
    pub state: RunStateView,
    /// The replica that made it.
    pub holder: String,
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    pub pages_seen: u64,
    pub pages_changed: u64,
    pub pages_removed: u64,
    /// A summary, or the error.
    pub detail: String,
}

/// How a scheduled source is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKindView {
    /// Start pages; links are followed within the scope.
    Site,
    /// Sitemaps: every listed page in scope.
    Sitemap,
    /// Exactly these pages.
    Urls,
    /// A Git repository's files.
    Git,
}

/// How a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStateView {
    /// A replica works on it under a lease.
    Running,
    Done,
    Failed,
}

impl std::fmt::Display for RunStateView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        })
    }
}

impl From<aidocs::sources::SourceStatus> for SourceView {
    fn from(s: aidocs::sources::SourceStatus) -> Self {
        use aidocs::config::SourceKind;
        use aidocs::sources::RunState as SlotState;
        Self {
            name: s.name,
            collection: s.collection,
            kind: match s.kind {
                SourceKind::Site => SourceKindView::Site,
                SourceKind::Sitemap => SourceKindView::Sitemap,
                SourceKind::Urls => SourceKindView::Urls,
                SourceKind::Git => SourceKindView::Git,
            },
            urls: s.urls,
            schedule: s.schedule,
            auth: s.auth,
            next_run: s.next_run,
            last_run: s.last_run.map(|r| SourceRunView {
                due: r.due,
                state: match r.state {
                    SlotState::Running => RunStateView::Running,
                    SlotState::Done => RunStateView::Done,
                    SlotState::Failed => RunStateView::Failed,
                },
                holder: r.holder,
                started: r.started,
                finished: r.finished,
                pages_seen: r.pages_seen,
                pages_changed: r.pages_changed,
                pages_removed: r.pages_removed,
                detail: r.detail,
            }),
            last_error: s.last_error,
            failures_in_a_row: s.failures_in_a_row,
        }
    }
}
