//! `aidocs-crawl` owns fetching documentation from the web, politely and safely: robots.txt,
//! per-host and global concurrency limits with a minimum delay (and `Crawl-delay`), link
//! and sitemap discovery within a scope, URL normalisation and de-duplication, conditional
//! re-fetches (ETag / Last-Modified), retries with backoff honouring `Retry-After`, and an
//! SSRF guard that never lets a request reach an internal address unless its host is
//! allow-listed. Every response is bounded (size, redirects, page count, queue size).
//! Credentials of a private site go to its own origins only.
//!
//! It yields [`CrawlEvent`]s; it must not know about parsing into sections, chunking,
//! embedding, storage or HTTP serving (the composition crate turns pages into documents).

mod crawler;
pub mod credentials;
pub mod discover;
pub mod guard;
mod render;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod urls;

pub use crawler::{CrawlPlan, Crawler, Seed, SeedKind, Validators};
pub use credentials::Credentials;
pub use discover::PageFormat;
pub use render::{RenderConfig, RenderError};
pub use urls::{Scope, normalize};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How a crawl behaves. Every limit is a bound: a hostile site makes a crawl finish with
/// its pages reported as skipped or failed, never hang or grow without end.
#[derive(Debug, Clone)]
pub struct CrawlConfig {
    /// Sent as `User-Agent`; its first word is the robots.txt agent token.
    pub user_agent: String,
    /// Pages fetched at most (robots.txt and sitemaps not counted).
    pub max_pages: usize,
    /// Link hops from a seed page.
    pub max_depth: usize,
    /// URLs waiting at most; links past it are dropped and counted.
    pub max_queue: usize,
    pub global_concurrency: usize,
    pub per_host_concurrency: usize,
    /// Minimum time between two requests to one host (robots.txt `Crawl-delay` raises it,
    /// up to `max_crawl_delay`).
    pub min_delay: Duration,
    pub max_crawl_delay: Duration,
    pub connect_timeout: Duration,
    /// Whole request, body included.
    pub timeout: Duration,
    /// Response bodies larger than this are not read.
    pub max_bytes: u64,
    pub max_redirects: usize,
    /// Retries of 429 / 5xx / transport errors, with exponential backoff or `Retry-After`.
    pub retries: u32,
    pub max_retry_wait: Duration,
    /// Hosts allowed to resolve to internal addresses (tests, intranet doc sites).
    pub allow_hosts: Vec<String>,
    /// Sent to the source's own origins only (a private docs site); never on a redirect
    /// that leaves them.
    pub credentials: Option<Credentials>,
    /// Ask for Markdown first (`Accept: text/markdown, text/html;q=0.9, ...`): a site that
    /// offers its pages as Markdown answers with the cleaner text; the others answer HTML.
    /// Off by default: HTML is asked for first.
    pub prefer_markdown: bool,
    /// Render HTML pages in headless Chromium (a JavaScript-built site) before they are
    /// parsed; `None` (the default) takes pages as served.
    pub render: Option<RenderConfig>,
}

/// How a source's HTML pages are read (closed set): as served, or rendered in headless
/// Chromium first (a site whose pages are built by JavaScript).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Render {
    #[default]
    None,
    Chromium,
}

impl Render {
    pub fn is_none(&self) -> bool {
        *self == Render::None
    }
}

impl std::str::FromStr for Render {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Render::None),
            "chromium" => Ok(Render::Chromium),
            other => Err(format!("unknown renderer `{other}` (expected none or chromium)")),
        }
    }
}

impl std::fmt::Display for Render {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Render::None => "none",
            Render::Chromium => "chromium",
        })
    }
}

/// `Accept` of every request: HTML first, or Markdown first (`prefer_markdown`); anything
/// else (robots.txt, sitemaps, specs) still answers.
fn accept(prefer_markdown: bool) -> &'static str {
    if prefer_markdown {
        "text/markdown, text/x-markdown;q=0.95, text/html;q=0.9, application/xhtml+xml;q=0.9, text/plain;q=0.8, */*;q=0.5"
    } else {
        "text/html, application/xhtml+xml, text/markdown;q=0.9, text/plain;q=0.8, */*;q=0.5"
    }
}

impl Default for CrawlConfig {
    fn default() -> Self {
        Self {
            user_agent: format!("aidocs-crawler/{} (+https://example.invalid/aidocs)", env!("CARGO_PKG_VERSION")),
            max_pages: 5_000,
            max_depth: 20,
            max_queue: 100_000,
            global_concurrency: 8,
            per_host_concurrency: 2,
            min_delay: Duration::from_millis(250),
            max_crawl_delay: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_bytes: 10 << 20,
            max_redirects: 5,
            retries: 3,
            max_retry_wait: Duration::from_secs(60),
            allow_hosts: Vec::new(),
            credentials: None,
            prefer_markdown: false,
            render: None,
        }
    }
}

/// A fetched page with text.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The page's identity: its canonical URL when it declares one in scope, else the
    /// normalised URL it was finally served from.
    pub url: String,
    /// The URL that was requested (normalised); differs after a redirect or a canonical.
    pub requested: String,
    pub format: PageFormat,
    /// The page's text (empty for a binary format).
    pub body: String,
    /// The bytes as served, for a binary format ([`PageFormat::Pdf`]); empty for text.
    pub raw: Vec<u8>,
    pub bytes: u64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub depth: usize,
}

/// What happened to one URL, in the order the crawl learns it.
#[derive(Debug, Clone, PartialEq)]
pub enum CrawlEvent {
    Page(Page),
    /// 304 to a conditional request: nothing to do.
    NotModified { url: String },
    /// 404 or 410.
    Gone { url: String, status: u16 },
    /// Not fetched or not used: robots.txt, content type, size, scope, duplicate, page cap.
    Skipped { url: String, reason: String },
    /// Refused by the SSRF guard.
    Blocked { url: String, reason: String },
    Failed { url: String, error: String },
    /// The frontier grew: `total` URLs known so far.
    Queued { total: usize },
}

/// Counters of a finished crawl.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrawlStats {
    pub pages_fetched: usize,
    pub not_modified: usize,
    pub gone: usize,
    pub skipped: usize,
    pub blocked: usize,
    pub failed: usize,
    pub queued: usize,
    pub bytes: u64,
    pub robots_disallowed: usize,
    pub sitemaps_read: usize,
    /// `llms.txt` files read (named as a sitemap, or found at a site's root).
    #[serde(default)]
    pub llms_txt_read: usize,
    /// Pages rendered in the browser, and requests of the browser the SSRF guard refused.
    #[serde(default)]
    pub rendered: usize,
    #[serde(default)]
    pub render_blocked: usize,
    pub requests: usize,
    pub took_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error("invalid crawl request: {0}")]
    Invalid(String),
    #[error("HTTP client setup failed: {0}")]
    Client(String),
}
