//! The search pipeline on the engine: validate, resolve the alias, check the model, (HyDE),
//! encode, one store query, (rerank), shape hits, behind the search-result cache; and its
//! request and response types. HyDE and rerank failures degrade to the plain pipeline with a
//! note in the response; they never fail the search.

use crate::engine::{Engine, ms};
use crate::error::{Error, Result};
use aidocs_core::{Collapse, CoreError, DocMetadata, Filter, FilterField, FilterValue, SearchMode, StoreQuery};
use aidocs_obs::{Outcome, Stage};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tracing::Instrument as _;

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
    /// Search every version a collection holds. By default a collection holding several
    /// versions side by side of one library is searched at its newest when `filter` names no
    /// `version`; a collection of several libraries (`framework` values) at all versions.
    pub all_versions: bool,
    /// One result per section or per chunk; `None` takes `search.collapse`.
    pub collapse: Option<Collapse>,
}

/// How many candidates per result a collapsed search fetches: the chunks of one section
/// that a collapse folds away leave room for other sections.
const COLLAPSE_OVERFETCH: usize = 3;

/// A chunk's section: its page and anchor (a chunk without an anchor: its heading path).
fn section_key(p: &aidocs_core::ChunkPayload) -> (String, Option<String>, String) {
    let section = if p.anchor.is_empty() { p.heading_path.join("\u{1f}") } else { p.anchor.clone() };
    (p.path.clone(), p.meta.version.clone(), section)
}

/// The chunks of `scored` after the first of each section, in order.
fn collapse_sections(scored: &mut Vec<aidocs_core::ScoredChunk>) {
    let mut seen = std::collections::HashSet::new();
    scored.retain(|s| seen.insert(section_key(&s.payload)));
}

/// Add to each candidate's score `weight` times the scores of the other candidates of its
/// section, then re-rank (ties keep their order).
fn add_section_evidence(scored: &mut [aidocs_core::ScoredChunk], weight: f32) {
    if weight == 0.0 {
        return;
    }
    let mut sections: HashMap<_, f32> = HashMap::new();
    for s in scored.iter() {
        *sections.entry(section_key(&s.payload)).or_default() += s.score;
    }
    for s in scored.iter_mut() {
        let own = s.score;
        s.score = own + weight * (sections[&section_key(&s.payload)] - own);
    }
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
}

impl SearchRequest {
    /// A request with defaults for everything but the query.
    pub fn new(query: impl Into<String>) -> Self {
        Self { query: query.into(), collection: None, limit: None, mode: None, filter: Filter::default(), hyde: None, rerank: None, all_versions: false, collapse: None }
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
    /// The collection the hit comes from, in a search across collections (`*` or `a,b`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
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
    /// The version searched because the collection holds several and the request named
    /// none: the newest. Absent when the request filtered by version, asked for
    /// `all_versions`, or the collection holds one version or none, or several libraries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version: Option<String>,
    pub hits: Vec<SearchHit>,
}


/// The RRF constant of searches across collections (as in the store's own fusion).
const RRF_K: f32 = 60.0;

/// The collections of a search across collections.
enum Targets {
    All,
    These(Vec<String>),
}

/// `*` or a comma-separated list: a search across collections; one name: `None`.
fn federated_targets(collection: &str) -> Option<Targets> {
    let c = collection.trim();
    if c == "*" {
        return Some(Targets::All);
    }
    c.contains(',').then(|| Targets::These(c.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect()))
}

/// Bump when the search pipeline changes what it returns for the same inputs: cached
/// results of other versions are then never served.
pub const PIPELINE_VERSION: &str = "search-2";

impl Engine {
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
        if let Some(targets) = req.collection.as_deref().and_then(federated_targets) {
            return self.search_federated(req.clone(), targets, started).await;
        }
        let (query, limit, mode) = self.validate(&req)?;
        let name = req.collection.clone().unwrap_or_else(|| self.cfg.search.default_collection.clone());
        let collection = self.store.resolve(&name).await?;
        self.check_model(&collection).await?;
        // Several versions side by side and none asked for: the newest, said so.
        let mut req = req;
        let default_version = if req.all_versions || req.filter.must.iter().any(|(f, _)| *f == FilterField::Version) {
            None
        } else {
            self.default_version_of(collection.clone()).await?
        };
        if let Some(v) = &default_version {
            req.filter = std::mem::take(&mut req.filter).and(FilterField::Version, FilterValue::Keyword(v.clone()));
        }
        let mut timings = StageTimings::default();
        let want_hyde = req.hyde.unwrap_or(self.cfg.hyde.enabled);
        let want_rerank = req.rerank.unwrap_or(self.cfg.rerank.enabled);
        let collapse = req.collapse.unwrap_or(self.cfg.search.collapse);
        let cache_key = self.cache.as_ref().map(|_| self.search_key(&collection, &query, limit, mode, &req.filter, want_hyde, want_rerank, collapse));
        if let (Some(c), Some(key)) = (&self.cache, &cache_key)
            && let Some(mut hit) = c.get_json::<SearchResponse>(&c.search, key).await {
                hit.took_ms = ms(started);
                hit.cached = true;
                // The same search may have been cached for a request that named the version.
                hit.default_version = default_version;
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
                        default_version,
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
            let mut vecs = self.embed(&texts).instrument(self.stage_span(Stage::Embedding)).await?;
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
        let wanted = if collapse == Collapse::Section { limit.saturating_mul(COLLAPSE_OVERFETCH) } else { limit };
        let fetch = if want_rerank && self.reranker.is_some() { wanted.max(self.cfg.rerank.top_k) } else { wanted };
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
        add_section_evidence(&mut scored, self.cfg.search.section_weight);
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
        if collapse == Collapse::Section {
            collapse_sections(&mut scored);
        }
        scored.truncate(limit);
        let hits = scored
            .into_iter()
            .map(|s| {
                let p = s.payload;
                SearchHit {
                    id: s.id.to_string(),
                    collection: None,
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
        let resp = SearchResponse { collection, mode, took_ms: ms(started), timings, hyde: hyde_note, rerank: rerank_note, cached: false, default_version, hits };
        if let (Some(c), Some(key), false) = (&self.cache, &cache_key, degraded) {
            // A degraded answer (a stage skipped) is not cached: the next request retries it.
            c.set_json(key, &resp, Duration::from_secs(self.cfg.cache.ttl.search_s)).await;
        }
        Ok(resp)
    }

    /// A search across collections: `*` (every collection built by this engine's model;
    /// others are left out) or a list (each must be built by this model). Each collection is
    /// searched with the request; each hit's reciprocal rank (k = 60) in its collection's
    /// ranking is fused with its reciprocal rank among all hits by dense similarity to the
    /// query; every hit names its collection.
    async fn search_federated(&self, req: SearchRequest, targets: Targets, started: Instant) -> Result<SearchResponse> {
        let (_, limit, mode) = self.validate(&req)?;
        let label = req.collection.clone().unwrap_or_default();
        let max = self.cfg.search.max_collections;
        let too_many = |n: usize, what: &str| {
            Error::InvalidRequest(format!(
                "{what} {n} collections; one search may span at most {max} (search.max_collections): name the libraries to search"
            ))
        };
        if let Targets::These(list) = &targets
            && list.len() > max
        {
            // Refused before a single store call: a long list costs one lookup per name.
            return Err(too_many(list.len(), "`collection` lists"));
        }
        let names: Vec<String> = match targets {
            Targets::All => {
                let mut ok = Vec::new();
                for c in self.store.list_collections().await? {
                    if self.check_model(&c.name).await.is_ok() {
                        ok.push(c.name);
                    }
                }
                if ok.len() > max {
                    return Err(too_many(ok.len(), "`*` spans"));
                }
                ok
            }
            Targets::These(list) => {
                let mut resolved = Vec::new();
                for name in list {
                    let c = self.store.resolve(&name).await?;
                    self.check_model(&c).await?;
                    if !resolved.contains(&c) {
                        resolved.push(c);
                    }
                }
                resolved
            }
        };
        let mut fused: HashMap<(String, String), (f32, SearchHit)> = HashMap::new();
        let mut timings = StageTimings::default();
        let (mut hyde, mut rerank) = (None, None);
        for name in &names {
            let one = SearchRequest { collection: Some(name.clone()), ..req.clone() };
            let resp = Box::pin(self.search_inner(one, Instant::now())).await?;
            timings.embed_ms += resp.timings.embed_ms;
            timings.hyde_ms += resp.timings.hyde_ms;
            timings.search_ms += resp.timings.search_ms;
            timings.rerank_ms += resp.timings.rerank_ms;
            hyde = hyde.or(resp.hyde);
            rerank = rerank.or(resp.rerank);
            for (rank, mut hit) in resp.hits.into_iter().enumerate() {
                hit.collection = Some(name.clone());
                let rrf = 1.0 / (RRF_K + rank as f32 + 1.0);
                fused.entry((name.clone(), hit.id.clone())).and_modify(|e| e.0 += rrf).or_insert((rrf, hit));
            }
        }
        // Ranks within one collection say nothing about which collection's best is better:
        // a second ranking, every hit by the query's dense similarity (one model, so
        // comparable across collections), is fused in by the same reciprocal rank.
        let mut hits: Vec<(f32, SearchHit)> = fused.into_values().collect();
        if let Ok(similarity) = self.dense_similarity(&req.query, &hits).await {
            let mut by_sim: Vec<usize> = (0..hits.len()).collect();
            by_sim.sort_by(|&a, &b| similarity[b].total_cmp(&similarity[a]));
            for (rank, i) in by_sim.into_iter().enumerate() {
                hits[i].0 += 1.0 / (RRF_K + rank as f32 + 1.0);
            }
        }
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
        hits.truncate(limit);
        let hits = hits
            .into_iter()
            .map(|(score, mut h)| {
                h.score = score;
                h
            })
            .collect();
        Ok(SearchResponse { collection: label, mode, took_ms: ms(started), timings, hyde, rerank, cached: false, default_version: None, hits })
    }

    /// The cosine of the query's dense vector with each hit's (hits named by collection).
    async fn dense_similarity(&self, query: &str, hits: &[(f32, SearchHit)]) -> Result<Vec<f32>> {
        let q = self.embed(&[query.to_owned()]).await?.pop().unwrap_or_default();
        let mut vectors: HashMap<String, Vec<f32>> = HashMap::new();
        let mut by_collection: HashMap<&str, Vec<uuid::Uuid>> = HashMap::new();
        for (_, h) in hits {
            if let (Some(c), Ok(id)) = (h.collection.as_deref(), h.id.parse::<uuid::Uuid>()) {
                by_collection.entry(c).or_default().push(id);
            }
        }
        for (c, ids) in by_collection {
            for p in self.store.retrieve(c, &ids).await? {
                vectors.insert(format!("{c}/{}", p.id), p.dense);
            }
        }
        let dot = |v: &[f32]| {
            let (mut d, mut n) = (0.0f32, 0.0f32);
            for (a, b) in q.iter().zip(v) {
                d += a * b;
                n += b * b;
            }
            if n > 0.0 { d / n.sqrt() } else { 0.0 }
        };
        Ok(hits
            .iter()
            .map(|(_, h)| vectors.get(&format!("{}/{}", h.collection.as_deref().unwrap_or_default(), h.id)).map_or(f32::MIN, |v| dot(v)))
            .collect())
    }

    /// The search-result key: everything that shapes the answer, and the resolved
    /// collection, so an alias switch or a model change never serves an old entry.
    #[allow(clippy::too_many_arguments)]
    fn search_key(&self, collection: &str, query: &str, limit: usize, mode: SearchMode, filter: &Filter, hyde: bool, rerank: bool, collapse: Collapse) -> String {
        let s = &self.cfg.search;
        let request = serde_json::json!({
            "q": aidocs_cache::keys::normalize_query(query),
            "mode": mode,
            "limit": limit,
            "collapse": collapse,
            "filter": filter,
            "fusion": s.fusion,
            "section_weight": s.section_weight,
            "prefetch": s.prefetch_limit,
            "snippet": s.snippet_chars,
            // The flag itself, then what would serve it (`None` when not configured).
            "hyde": (hyde, hyde.then(|| self.hyde.as_ref().map(|h| (h.generator().model_id().to_owned(), h.config().n, h.config().query_weight, aidocs_hyde::PROMPT_VERSION)))),
            "rerank": (rerank, rerank.then(|| self.reranker.as_ref().map(|r| (r.model_id().to_owned(), self.cfg.rerank.top_k)))),
        });
        let pipeline = format!("{PIPELINE_VERSION}:{}:{:?}:{:?}", self.embedder.model_id(), self.cfg.embedding.provider, self.cfg.sparse);
        aidocs_cache::keys::search(collection, &pipeline, &request.to_string())
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

    fn chunk(path: &str, anchor: &str, score: f32) -> aidocs_core::ScoredChunk {
        let payload = aidocs_core::ChunkPayload { path: path.into(), anchor: anchor.into(), ..Default::default() };
        aidocs_core::ScoredChunk { id: uuid::Uuid::new_v4(), score, payload }
    }

    fn order(scored: &[aidocs_core::ScoredChunk]) -> Vec<String> {
        scored.iter().map(|s| format!("{}#{}", s.payload.path, s.payload.anchor)).collect()
    }

    /// Weight 0 keeps the store's order; a section weight lifts a section with several
    /// matching chunks above a sibling with one; chunks of other pages with the same anchor
    /// are other sections.
    #[test]
    fn section_evidence_lifts_sections_that_match_in_several_chunks() {
        let candidates = || vec![chunk("p.html", "one", 0.50), chunk("p.html", "two", 0.45), chunk("q.html", "one", 0.40), chunk("p.html", "two", 0.30)];
        let mut kept = candidates();
        super::add_section_evidence(&mut kept, 0.0);
        assert_eq!(order(&kept), order(&candidates()));

        let mut lifted = candidates();
        super::add_section_evidence(&mut lifted, 0.2);
        // p#two: 0.45 + 0.2 * 0.30 = 0.51 > p#one 0.50; q#one stays 0.40 (another page's
        // section), above p#two's second chunk: 0.30 + 0.2 * 0.45 = 0.39.
        assert_eq!(order(&lifted), ["p.html#two", "p.html#one", "q.html#one", "p.html#two"]);
        assert!((lifted[0].score - 0.51).abs() < 1e-6, "{}", lifted[0].score);
    }

    #[test]
    fn snippet_cuts_on_words() {
        assert_eq!(super::snippet("short  text\nhere", 50), "short text here");
        assert_eq!(super::snippet("alpha beta gamma delta", 12), "alpha beta…");
    }
}
