//! Web ingestion on the engine: crawl a site, a sitemap or a URL list (`aidocs-crawl`), turn
//! pages into documents, write what changed; a per-collection registry of sources and page
//! validators makes re-crawls conditional and `sync` re-crawl every source.

use crate::engine::{Batch, Engine, ms, prepare_chunks};
use crate::error::{Error, Result};
use crate::progress::{FileOutcome, IngestProgress};
use aidocs_core::DocMetadata;
use aidocs_crawl::{CrawlConfig, CrawlEvent, CrawlPlan, Crawler, PageFormat, Scope, Seed, SeedKind, Validators};
use aidocs_ingest::{DocFormat, Document, sha256_hex};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use url::Url;

/// How a web source is walked (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebSourceKind {
    /// Start pages; links are followed within the scope.
    Site,
    /// Sitemaps (or sitemap indexes): every listed page in scope.
    Sitemap,
    /// Exactly these pages.
    Urls,
}

/// One web source of a collection, as registered (and re-crawled by `sync`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSource {
    pub kind: WebSourceKind,
    pub urls: Vec<String>,
    /// URL prefix pages must be under (site default: the start page's directory; sitemap
    /// default: the sitemap's origin; URL lists: none).
    #[serde(default)]
    pub scope: Option<String>,
    /// Globs on the URL path (`/docs/**`), repeatable.
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub max_pages: Option<usize>,
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// Extra hosts allowed to resolve to internal addresses (added to `crawl.allow_hosts`).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    #[serde(default)]
    pub metadata: DocMetadata,
}

/// `POST /v1/documents` with `url`, `sitemap` or `urls`, and `aidocs ingest URL`.
#[derive(Debug, Clone)]
pub struct WebIngestRequest {
    pub collection: String,
    pub source: WebSource,
}

pub use crate::report::{UrlNote, WebIngestReport};

const NOTES: usize = 200;

/// What the registry remembers of one fetched page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PageRecord {
    /// The document's source id in the store (its canonical URL).
    id: String,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    /// Consecutive crawls that found it gone.
    #[serde(default)]
    misses: u32,
    /// Index of the registering source.
    source: usize,
}

/// `<data_dir>/crawl/<collection>.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Registry {
    sources: Vec<WebSource>,
    /// Requested (normalised) URL -> record.
    pages: BTreeMap<String, PageRecord>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidRequest(msg.into())
}

fn parse_url(s: &str, what: &str) -> Result<Url> {
    let u = Url::parse(s.trim()).map_err(|e| bad(format!("{what} `{s}` is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad(format!("{what} `{s}` is not an http(s) URL")));
    }
    Ok(u)
}

fn format_of(f: PageFormat) -> DocFormat {
    match f {
        PageFormat::Html => DocFormat::Html,
        PageFormat::Markdown => DocFormat::Markdown,
        PageFormat::Rst => DocFormat::Rst,
        PageFormat::Text => DocFormat::Text,
    }
}

impl WebSource {
    /// Check URLs and globs, and fill in the default scope.
    pub fn validated(mut self) -> Result<Self> {
        if self.urls.is_empty() {
            return Err(bad("a web source needs at least one URL"));
        }
        let parsed = self.urls.iter().map(|u| parse_url(u, "URL")).collect::<Result<Vec<_>>>()?;
        if let Some(s) = &self.scope {
            parse_url(s, "--scope")?;
        } else {
            self.scope = match self.kind {
                WebSourceKind::Site => parsed[0].join("./").ok().map(|u| u.to_string()),
                WebSourceKind::Sitemap => parsed[0].join("/").ok().map(|u| u.to_string()),
                WebSourceKind::Urls => None,
            };
        }
        Scope::new(None, &self.include, &self.exclude).map_err(bad)?;
        Ok(self)
    }

    fn scope(&self) -> Result<Scope> {
        let prefix = self.scope.as_deref().map(|s| parse_url(s, "--scope")).transpose()?;
        Scope::new(prefix, &self.include, &self.exclude).map_err(bad)
    }
}

impl Engine {
    fn registry_path(&self, collection: &str) -> PathBuf {
        self.config().data_dir.join("crawl").join(format!("{collection}.json"))
    }

    fn load_registry(&self, collection: &str) -> Result<Registry> {
        let path = self.registry_path(collection);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Internal(format!("crawl registry {} is corrupt: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(e) => Err(Error::Internal(format!("reading {}: {e}", path.display()))),
        }
    }

    /// Atomic: temp file, fsync, rename, fsync the directory.
    fn save_registry(&self, collection: &str, reg: &Registry) -> Result<()> {
        let path = self.registry_path(collection);
        let dir = path.parent().expect("registry path has a parent");
        let io = |e: std::io::Error| Error::Internal(format!("writing {}: {e}", path.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        aidocs_fsio::write_atomic_with(&path, |f| {
            serde_json::to_writer_pretty(f, reg).map_err(std::io::Error::other)
        })
        .map_err(io)
    }

    /// The web sources registered for `collection`.
    pub fn web_sources(&self, collection: &str) -> Result<Vec<WebSource>> {
        Ok(self.load_registry(collection)?.sources)
    }

    fn crawl_config(&self, source: &WebSource) -> CrawlConfig {
        let c = &self.config().crawl;
        let mut allow = c.allow_hosts.clone();
        allow.extend(source.allow_hosts.iter().cloned());
        CrawlConfig {
            user_agent: c.user_agent.clone(),
            max_pages: source.max_pages.unwrap_or(c.max_pages),
            max_depth: source.max_depth.unwrap_or(c.max_depth),
            global_concurrency: c.concurrency,
            per_host_concurrency: c.per_host_concurrency,
            min_delay: Duration::from_millis(c.min_delay_ms),
            timeout: Duration::from_millis(c.timeout_ms),
            max_bytes: c.max_bytes,
            max_redirects: c.max_redirects,
            retries: c.retries,
            allow_hosts: allow,
            ..CrawlConfig::default()
        }
    }

    /// Crawl one source into `collection` and register it for `sync`.
    pub async fn ingest_web(&self, req: WebIngestRequest, progress: &dyn IngestProgress) -> Result<WebIngestReport> {
        let source = req.source.validated()?;
        let _one_at_a_time = self.ingest_lock.lock().await;
        let collection = self.ensure_collection(&req.collection).await?;
        let mut reg = self.load_registry(&collection)?;
        let index = match reg.sources.iter().position(|s| s.kind == source.kind && s.urls == source.urls) {
            Some(i) => {
                reg.sources[i] = source.clone();
                i
            }
            None => {
                reg.sources.push(source.clone());
                reg.sources.len() - 1
            }
        };
        let report = self.crawl_source(&collection, &mut reg, index, progress).await;
        // The registry is saved even after a failure: validators of pages written so far
        // stay true.
        self.save_registry(&collection, &reg)?;
        report
    }

    /// Re-crawl every registered source of `collection` (conditional requests: unchanged
    /// pages cost a 304).
    pub async fn sync(&self, collection: &str, progress: &dyn IngestProgress) -> Result<Vec<WebIngestReport>> {
        let _one_at_a_time = self.ingest_lock.lock().await;
        let collection = self.store().resolve(collection).await?;
        let mut reg = self.load_registry(&collection)?;
        if reg.sources.is_empty() {
            return Err(bad(format!("collection `{collection}` has no web sources; add one with `aidocs ingest URL --collection {collection}`")));
        }
        let mut reports = Vec::new();
        for i in 0..reg.sources.len() {
            let r = self.crawl_source(&collection, &mut reg, i, progress).await;
            self.save_registry(&collection, &reg)?;
            reports.push(r?);
        }
        Ok(reports)
    }

    async fn crawl_source(&self, collection: &str, reg: &mut Registry, index: usize, progress: &dyn IngestProgress) -> Result<WebIngestReport> {
        let started = Instant::now();
        let source = reg.sources[index].clone();
        let defaults = DocMetadata::from(&self.config().ingest.metadata).overlay(&source.metadata);
        let seeds: Vec<Seed> = source
            .urls
            .iter()
            .map(|u| {
                let kind = if source.kind == WebSourceKind::Sitemap { SeedKind::Sitemap } else { SeedKind::Page };
                Ok(Seed { url: parse_url(u, "URL")?, kind })
            })
            .collect::<Result<_>>()?;
        let plan = CrawlPlan {
            seeds,
            scope: source.scope()?,
            follow_links: source.kind == WebSourceKind::Site,
            known: reg.pages.iter().map(|(u, r)| (u.clone(), Validators { etag: r.etag.clone(), last_modified: r.last_modified.clone() })).collect(),
            revisit: reg.pages.iter().filter(|(_, r)| r.source == index).filter_map(|(u, _)| Url::parse(u).ok()).collect(),
        };
        let crawler = Crawler::new(self.crawl_config(&source)).map_err(|e| bad(e.to_string()))?;

        // What the collection holds for web documents: source id -> (doc hashes, ids).
        // Ids and hashes only, of web documents only.
        let mut existing: HashMap<String, (HashSet<String>, Vec<uuid::Uuid>)> = HashMap::new();
        let web = std::sync::Arc::new(|s: &str| s.starts_with("http://") || s.starts_with("https://"));
        for p in self.store().scroll_sources(collection, web).await? {
            let e = existing.entry(p.source).or_default();
            e.0.insert(p.doc_hash);
            e.1.push(p.id);
        }

        let (tx, mut rx) = tokio::sync::mpsc::channel::<CrawlEvent>(64);
        let crawl = crawler.run(plan, tx);
        tokio::pin!(crawl);
        let mut report = WebIngestReport { collection: collection.to_owned(), ..Default::default() };
        let mut batch = Batch::default();
        let mut stats = None;
        let remove_after = self.config().crawl.remove_after_misses;
        progress.start(0);
        loop {
            let event = tokio::select! {
                s = &mut crawl, if stats.is_none() => { stats = Some(s); continue; }
                e = rx.recv() => match e { Some(e) => e, None => break },
            };
            match event {
                CrawlEvent::Queued { total } => progress.discovered(total),
                CrawlEvent::Page(page) => {
                    let record = PageRecord { id: page.url.clone(), etag: page.etag.clone(), last_modified: page.last_modified.clone(), misses: 0, source: index };
                    let (requested, id) = (page.requested.clone(), page.url.clone());
                    let doc = {
                        let (cfg, counter, defaults) = (self.config().clone(), self.counter.clone(), defaults.clone());
                        tokio::task::spawn_blocking(move || {
                            let parsed = aidocs_ingest::parse(format_of(page.format), &page.body);
                            let mut meta = defaults.overlay(&parsed.meta);
                            let doc_hash = sha256_hex(&format!("{}\0{}", page.body, serde_json::to_string(&meta).unwrap_or_default()));
                            // The server's Last-Modified dates the page when nothing else does
                            // (after the hash: a new date alone does not rewrite a page).
                            if meta.last_updated.is_none() {
                                meta.last_updated = page
                                    .last_modified
                                    .as_deref()
                                    .and_then(|h| chrono::DateTime::parse_from_rfc2822(h).ok())
                                    .map(|d| d.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                            }
                            let url = Url::parse(&page.url).ok();
                            let title = parsed.title.clone().unwrap_or_else(|| page.url.clone());
                            let doc = Document {
                                source_id: page.url.clone(),
                                path: url.as_ref().map(|u| u.path().to_owned()).unwrap_or_default(),
                                url: page.url.clone(),
                                title,
                                sections: parsed.sections,
                                meta,
                                doc_hash,
                            };
                            let chunks = if doc.sections.is_empty() { Vec::new() } else { prepare_chunks(&doc, &cfg, counter.as_ref()) };
                            (doc, chunks)
                        })
                        .await
                        .map_err(|e| Error::Internal(format!("parse task failed: {e}")))?
                    };
                    let (doc, chunks) = doc;
                    reg.pages.insert(requested, record);
                    if chunks.is_empty() {
                        note(&mut report.skipped, &id, "no text content");
                        progress.file_done(&id, FileOutcome::Skipped);
                        continue;
                    }
                    let Some(n) = batch.stage(&doc.doc_hash, chunks, existing.get(&doc.source_id)) else {
                        report.documents_unchanged += 1;
                        progress.file_done(&id, FileOutcome::Unchanged);
                        continue;
                    };
                    report.documents_written += 1;
                    report.chunks_written += n;
                    progress.file_done(&id, FileOutcome::Written);
                    if batch.chunks.len() >= self.config().ingest.batch_size {
                        report.points_deleted += self.flush(collection, &mut batch).await?;
                    }
                }
                CrawlEvent::NotModified { url } => {
                    if let Some(r) = reg.pages.get_mut(&url) {
                        r.misses = 0;
                    }
                    report.documents_unchanged += 1;
                    progress.file_done(&url, FileOutcome::Unchanged);
                }
                CrawlEvent::Gone { url, status } => {
                    let Some(r) = reg.pages.get_mut(&url) else {
                        note(&mut report.skipped, &url, &format!("HTTP {status}"));
                        continue;
                    };
                    r.misses += 1;
                    if r.misses >= remove_after {
                        let id = r.id.clone();
                        reg.pages.remove(&url);
                        if let Some((_, ids)) = existing.remove(&id) {
                            report.points_deleted += ids.len();
                            self.store().delete(collection, ids).await?;
                        }
                        report.documents_deleted += 1;
                    } else {
                        report.documents_missing += 1;
                        note(&mut report.skipped, &url, &format!("HTTP {status} ({} of {remove_after} misses before its chunks are removed)", r.misses));
                    }
                    progress.file_done(&url, FileOutcome::Skipped);
                }
                CrawlEvent::Skipped { url, reason } => {
                    note(&mut report.skipped, &url, &reason);
                    progress.file_done(&url, FileOutcome::Skipped);
                }
                CrawlEvent::Blocked { url, reason } => {
                    tracing::warn!(%url, %reason, "blocked by the SSRF guard");
                    note(&mut report.blocked, &url, &reason);
                    progress.file_done(&url, FileOutcome::Skipped);
                }
                CrawlEvent::Failed { url, error } => {
                    tracing::warn!(%url, %error, "fetch failed");
                    note(&mut report.failed, &url, &error);
                    progress.file_done(&url, FileOutcome::Skipped);
                }
            }
        }
        let stats = match stats {
            Some(s) => s,
            None => crawl.await,
        };
        report.points_deleted += self.flush(collection, &mut batch).await?;
        self.writes_done(
            collection,
            report.chunks_written > 0 || report.points_deleted > 0,
        )
        .await?;
        report.crawl = stats;
        report.took_ms = ms(started);
        let m = self.metrics();
        m.ingest_documents("written", report.documents_written as u64);
        m.ingest_documents("unchanged", report.documents_unchanged as u64);
        m.ingest_documents("deleted", report.documents_deleted as u64);
        m.ingest_documents("skipped", (report.crawl.skipped + report.crawl.blocked) as u64);
        m.ingest_documents("failed", report.crawl.failed as u64);
        m.ingest_volume(report.chunks_written as u64, report.crawl.bytes);
        progress.finish_web(&report);
        Ok(report)
    }
}

fn note(list: &mut Vec<UrlNote>, url: &str, reason: &str) {
    if list.len() < NOTES {
        list.push(UrlNote { url: url.to_owned(), reason: reason.to_owned() });
    }
}
