//! Web sources: crawl a site, a sitemap or a URL list (`aidocs-crawl`) as a [`Source`] of
//! the ingest pipeline. A per-collection registry of sources and page validators makes
//! re-crawls conditional and `sync` re-crawl every source.

use super::IngestService;
use super::source::{Owns, Source, SourceEvent};
use crate::error::{Error, Result};
use crate::progress::IngestProgress;
use crate::report::{IngestReport, NoteKind, SourceDetail, WebDetail};
use aidocs_core::DocMetadata;
use aidocs_crawl::{CrawlConfig, CrawlEvent, CrawlPlan, CrawlStats, Crawler, PageFormat, Scope, Seed, SeedKind, Validators};
use aidocs_ingest::{DocFormat, Document, content_hash};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Sender;
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

impl WebSourceKind {
    /// The web kind of a configured source; `None` for a git source.
    pub fn of(k: crate::config::SourceKind) -> Option<Self> {
        match k {
            crate::config::SourceKind::Site => Some(Self::Site),
            crate::config::SourceKind::Sitemap => Some(Self::Sitemap),
            crate::config::SourceKind::Urls => Some(Self::Urls),
            crate::config::SourceKind::Git => None,
        }
    }
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
    /// Render pages in headless Chromium before parsing (`crawl.render_*` settings).
    #[serde(default, skip_serializing_if = "aidocs_crawl::Render::is_none")]
    pub render: aidocs_crawl::Render,
}

/// `POST /v1/documents` with `url`, `sitemap` or `urls`, and `aidocs ingest URL`.
#[derive(Debug, Clone)]
pub struct WebIngestRequest {
    pub collection: String,
    pub source: WebSource,
}

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
    /// When a crawl of one of the sources last finished without error (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_crawled: Option<String>,
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
        PageFormat::OpenApi => DocFormat::OpenApi,
        PageFormat::Pdf => DocFormat::Pdf,
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

impl IngestService {
    fn registry_path(&self, collection: &str) -> PathBuf {
        self.engine.config().data_dir.join("crawl").join(format!("{collection}.json"))
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

    /// When a crawl of `collection`'s web sources (an ingest of a URL, or `sync`) last
    /// finished without error; `None` when it has none or none finished.
    pub fn last_crawled(&self, collection: &str) -> Result<Option<String>> {
        Ok(self.load_registry(collection)?.last_crawled)
    }

    /// The credentials of `source` when a `[[sources]]` entry of `collection` configures it
    /// (same kind and URLs) with `auth`: the scheduled runs and `sync` of that collection
    /// use them; nothing else does, and they are never written to the registry.
    async fn credentials(&self, collection: &str, source: &WebSource) -> Result<Option<aidocs_crawl::Credentials>> {
        for s in &self.engine.config().sources {
            let Some(auth) = s.auth.as_ref().filter(|_| WebSourceKind::of(s.kind) == Some(source.kind) && s.urls == source.urls) else { continue };
            // The entry names a collection or an alias; `collection` is resolved.
            let its = self.engine.store().resolve(&s.collection).await.unwrap_or_else(|_| s.collection.clone());
            if its == collection {
                return auth.credentials(&s.urls).map(Some).map_err(|e| bad(format!("source `{}`: auth: {e}", s.name)));
            }
        }
        Ok(None)
    }

    fn crawl_config(&self, source: &WebSource, credentials: Option<aidocs_crawl::Credentials>) -> CrawlConfig {
        let c = &self.engine.config().crawl;
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
            credentials,
            prefer_markdown: c.prefer_markdown,
            render: (source.render == aidocs_crawl::Render::Chromium).then(|| c.renderer()),
            ..CrawlConfig::default()
        }
    }

    /// Crawl one source into `collection` and register it for `sync`.
    pub async fn web(&self, req: WebIngestRequest, progress: &dyn IngestProgress) -> Result<IngestReport> {
        let source = req.source.validated()?;
        let _one_at_a_time = self.engine.ingest_lock.lock().await;
        let collection = self.engine.ensure_collection(&req.collection).await?;
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
        if report.is_ok() {
            reg.last_crawled = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        // The registry is saved even after a failure: validators of pages written so far
        // stay true.
        self.save_registry(&collection, &reg)?;
        report
    }

    /// Re-crawl every registered source of `collection` (conditional requests: unchanged
    /// pages cost a 304).
    pub async fn sync(&self, collection: &str, progress: &dyn IngestProgress) -> Result<Vec<IngestReport>> {
        let _one_at_a_time = self.engine.ingest_lock.lock().await;
        let collection = self.engine.store().resolve(collection).await?;
        let mut reg = self.load_registry(&collection)?;
        if reg.sources.is_empty() {
            return Err(bad(format!("collection `{collection}` has no web sources; add one with `aidocs ingest URL --collection {collection}`")));
        }
        let mut reports = Vec::new();
        for i in 0..reg.sources.len() {
            let r = self.crawl_source(&collection, &mut reg, i, progress).await;
            if r.is_ok() {
                reg.last_crawled = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            self.save_registry(&collection, &reg)?;
            reports.push(r?);
        }
        Ok(reports)
    }

    async fn crawl_source(&self, collection: &str, reg: &mut Registry, index: usize, progress: &dyn IngestProgress) -> Result<IngestReport> {
        let source = reg.sources[index].clone();
        let defaults = DocMetadata::from(&self.engine.config().ingest.metadata).overlay(&source.metadata);
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
        let credentials = self.credentials(collection, &source).await?;
        let crawler = Crawler::new(self.crawl_config(&source, credentials)).map_err(|e| bad(e.to_string()))?;
        let remove_after = self.engine.config().crawl.remove_after_misses;
        let mut crawl = CrawlSource { reg, index, crawl: Some((crawler, plan)), defaults, remove_after, stats: None };
        self.pipeline(collection, &mut crawl, progress).await
    }
}

/// One registered web source, crawled: pages become documents, 304s keep theirs, pages gone
/// often enough (`crawl.remove_after_misses`) are removed. Not complete: a crawl may stop at
/// its page limit, so pages it did not reach keep their chunks.
struct CrawlSource<'r> {
    reg: &'r mut Registry,
    index: usize,
    /// The crawler and its plan, taken by the one run.
    crawl: Option<(Crawler, CrawlPlan)>,
    defaults: DocMetadata,
    remove_after: u32,
    stats: Option<CrawlStats>,
}

#[async_trait::async_trait]
impl Source for CrawlSource<'_> {
    fn owns(&self) -> Owns {
        // Web documents of every source of the collection: their ids are their URLs.
        Arc::new(|s: &str| s.starts_with("http://") || s.starts_with("https://"))
    }

    fn complete(&self) -> bool {
        false
    }

    fn detail(&self) -> SourceDetail {
        SourceDetail::Web(WebDetail::default())
    }

    async fn produce(&mut self, events: Sender<SourceEvent>) -> Result<()> {
        let (crawler, plan) = self.crawl.take().ok_or_else(|| Error::Internal("a crawl source runs once".into()))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<CrawlEvent>(64);
        let crawl = crawler.run(plan, tx);
        tokio::pin!(crawl);
        let mut stats = None;
        if events.send(SourceEvent::Listed { total: 0 }).await.is_err() {
            return Ok(());
        }
        loop {
            let event = tokio::select! {
                s = &mut crawl, if stats.is_none() => { stats = Some(s); continue; }
                e = rx.recv() => match e { Some(e) => e, None => break },
            };
            let Some(event) = self.page_event(event).await? else { continue };
            if events.send(event).await.is_err() {
                break;
            }
        }
        self.stats = Some(match stats {
            Some(s) => s,
            None => crawl.await,
        });
        Ok(())
    }

    fn finish(&mut self, detail: &mut SourceDetail) {
        if let (SourceDetail::Web(w), Some(stats)) = (detail, self.stats.take()) {
            w.crawl = stats;
        }
    }
}

impl CrawlSource<'_> {
    /// What one crawl event means for the pipeline, keeping the registry current.
    async fn page_event(&mut self, event: CrawlEvent) -> Result<Option<SourceEvent>> {
        Ok(Some(match event {
            CrawlEvent::Queued { total } => SourceEvent::Discovered { total },
            CrawlEvent::Page(page) => {
                let record = PageRecord { id: page.url.clone(), etag: page.etag.clone(), last_modified: page.last_modified.clone(), misses: 0, source: self.index };
                let requested = page.requested.clone();
                let bytes = page.bytes;
                let defaults = self.defaults.clone();
                let doc = tokio::task::spawn_blocking(move || page_document(page, &defaults))
                    .await
                    .map_err(|e| Error::Internal(format!("parse task failed: {e}")))?;
                let doc = match doc {
                    Ok(doc) => doc,
                    // A damaged file (a cut PDF) keeps what it had indexed, and its old
                    // validators: the next run fetches it whole again.
                    Err(reason) => {
                        let source_id = self.reg.pages.get(&requested).map(|r| r.id.clone()).unwrap_or(record.id);
                        return Ok(Some(SourceEvent::Kept { item: requested, source_id, kind: NoteKind::Failed, reason }));
                    }
                };
                self.reg.pages.insert(requested, record);
                if doc.sections.is_empty() {
                    SourceEvent::Skipped { item: doc.source_id, kind: NoteKind::Skipped, reason: "no text content".into() }
                } else {
                    SourceEvent::Document { item: doc.source_id.clone(), doc, bytes }
                }
            }
            CrawlEvent::NotModified { url } => {
                let source_id = match self.reg.pages.get_mut(&url) {
                    Some(r) => {
                        r.misses = 0;
                        r.id.clone()
                    }
                    None => url.clone(),
                };
                SourceEvent::Unchanged { item: url, source_id }
            }
            CrawlEvent::Gone { url, status } => {
                let Some(r) = self.reg.pages.get_mut(&url) else {
                    return Ok(Some(SourceEvent::Skipped { item: url, kind: NoteKind::Skipped, reason: format!("HTTP {status}") }));
                };
                r.misses += 1;
                if r.misses >= self.remove_after {
                    let source_id = r.id.clone();
                    self.reg.pages.remove(&url);
                    SourceEvent::Removed { item: url, source_id }
                } else {
                    let reason = format!("HTTP {status} ({} of {} misses before its chunks are removed)", r.misses, self.remove_after);
                    SourceEvent::Kept { item: url, source_id: r.id.clone(), kind: NoteKind::Missing, reason }
                }
            }
            CrawlEvent::Skipped { url, reason } => SourceEvent::Skipped { item: url, kind: NoteKind::Skipped, reason },
            CrawlEvent::Blocked { url, reason } => {
                tracing::warn!(%url, %reason, "blocked by the SSRF guard");
                SourceEvent::Skipped { item: url, kind: NoteKind::Blocked, reason }
            }
            CrawlEvent::Failed { url, error } => {
                tracing::warn!(%url, %error, "fetch failed");
                SourceEvent::Skipped { item: url, kind: NoteKind::Failed, reason: error }
            }
        }))
    }
}

/// A fetched page as a document: parsed, its metadata over the source's defaults. A
/// binary page that cannot be read (a damaged PDF) is the reason why.
fn page_document(page: aidocs_crawl::Page, defaults: &DocMetadata) -> std::result::Result<Document, String> {
    let (parsed, content) = match page.format {
        PageFormat::Pdf => (aidocs_ingest::parse_bytes(DocFormat::Pdf, &page.raw).map_err(|e| e.to_string())?, page.raw.as_slice()),
        f => (aidocs_ingest::parse(format_of(f), &page.body), page.body.as_bytes()),
    };
    let mut meta = defaults.overlay(&parsed.meta);
    let doc_hash = content_hash(content, &meta);
    // The server's Last-Modified dates the page when nothing else does (after the hash: a
    // new date alone does not rewrite a page).
    if meta.last_updated.is_none() {
        meta.last_updated = page
            .last_modified
            .as_deref()
            .and_then(|h| chrono::DateTime::parse_from_rfc2822(h).ok())
            .map(|d| d.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    let url = Url::parse(&page.url).ok();
    let title = parsed.title.clone().unwrap_or_else(|| page.url.clone());
    Ok(Document {
        source_id: page.url.clone(),
        path: url.as_ref().map(|u| u.path().to_owned()).unwrap_or_default(),
        url: page.url,
        title,
        sections: parsed.sections,
        meta,
        doc_hash,
    })
}
