//! The crawl loop: a frontier, per-host politeness, fetches with retries and bounds.

use crate::discover::{self, PageFormat};
use crate::guard::{AllowList, GuardedResolver, is_guard_error};
use crate::urls::{Scope, normalize};
use crate::{CrawlConfig, CrawlError, CrawlEvent, CrawlStats, Page};
use reqwest::StatusCode;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore, mpsc};
use url::Url;

/// Where a crawl starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedKind {
    /// A page; with `follow_links`, links from it (and from pages it leads to) are followed.
    Page,
    /// A sitemap or sitemap index: every page it lists is fetched.
    Sitemap,
}

#[derive(Debug, Clone)]
pub struct Seed {
    pub url: Url,
    pub kind: SeedKind,
}

/// Validators of a page fetched before, for a conditional request.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// One crawl: seeds, scope, and what is known from earlier crawls.
#[derive(Debug, Clone, Default)]
pub struct CrawlPlan {
    pub seeds: Vec<Seed>,
    pub scope: Scope,
    /// Follow links found in pages (a site crawl); off for sitemaps and URL lists.
    pub follow_links: bool,
    /// Normalised URL -> validators of its last fetch.
    pub known: HashMap<String, Validators>,
    /// Pages fetched before, re-checked even if no link leads to them any more (so removed
    /// pages are noticed).
    pub revisit: Vec<Url>,
}

struct Host {
    /// Set once the robots.txt `Sitemap:` lines were handed to the frontier.
    sitemaps_taken: std::sync::atomic::AtomicBool,
    /// Set once the origin's `/llms.txt` was queued (site crawls).
    llms_taken: std::sync::atomic::AtomicBool,
    permits: Semaphore,
    next_slot: tokio::sync::Mutex<Instant>,
    robots: OnceCell<Robots>,
}

enum Robots {
    Rules(Box<texting_robots::Robot>),
    AllowAll,
    DenyAll(String),
    /// The SSRF guard refused the host itself.
    Blocked(String),
}

/// Why robots.txt keeps a URL from being fetched.
enum Refusal {
    Robots(String),
    Blocked(String),
}

/// A configured crawler (one HTTP client; reusable across crawls).
pub struct Crawler {
    cfg: CrawlConfig,
    client: reqwest::Client,
    allow: AllowList,
    agent: String,
}

enum Job {
    Page { url: Url, depth: usize },
    /// A sitemap, or an `llms.txt` (told apart by their bodies: XML or Markdown).
    /// `discovered`: looked for at an origin's root, not named by anyone, so its absence
    /// is no failure.
    Sitemap { url: Url, discovered: bool },
}

/// What one fetch found.
enum Outcome {
    Events(Vec<CrawlEvent>),
    /// `sitemaps`: robots.txt `Sitemap:` URLs of a site crawl, and `llms`: the origin's
    /// `/llms.txt`, the first time its origin is seen.
    Page { page: Page, links: Vec<Url>, sitemaps: Vec<Url>, llms: Option<Url> },
    Sitemap { url: String, pages: Vec<Url>, sitemaps: Vec<Url> },
}

enum Fetched {
    Body { final_url: Url, content_type: Option<String>, body: Vec<u8>, etag: Option<String>, last_modified: Option<String> },
    Status(StatusCode),
    NotModified,
    TooLarge(u64),
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// `Retry-After`: seconds or an HTTP date.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = header(resp, reqwest::header::RETRY_AFTER)?;
    if let Ok(s) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    (at.to_utc() - chrono::Utc::now()).to_std().ok()
}

impl Crawler {
    pub fn new(cfg: CrawlConfig) -> Result<Self, CrawlError> {
        if cfg.global_concurrency == 0 || cfg.per_host_concurrency == 0 || cfg.max_pages == 0 {
            return Err(CrawlError::Invalid("concurrency limits and max_pages must be positive".into()));
        }
        // HTTPS needs a process-wide rustls crypto provider; use ring unless the host program
        // installed one.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let allow = AllowList::new(&cfg.allow_hosts);
        let (max_redirects, redirect_allow, credentials) = (cfg.max_redirects, allow.clone(), cfg.credentials.clone());
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            // A request that carried credentials follows redirects within the source's own
            // origins only: elsewhere the secret would go along (or the page would be a
            // login form of another host).
            if let (Some(c), Some(first)) = (&credentials, attempt.previous().first())
                && c.owns(first)
                && !c.owns(attempt.url())
            {
                let to = attempt.url().origin().ascii_serialization();
                return attempt.error(format!("redirect to {to}, another origin than the source's: its credentials are sent to its own origins only"));
            }
            if attempt.previous().len() > max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            if attempt.previous().iter().any(|u| u == attempt.url()) {
                return attempt.error("redirect loop");
            }
            if !matches!(attempt.url().scheme(), "http" | "https") {
                let scheme = attempt.url().scheme().to_owned();
                return attempt.error(format!("redirect to a {scheme} URL"));
            }
            if let Err(why) = redirect_allow.check_url(attempt.url()) {
                return attempt.error(why);
            }
            attempt.follow()
        });
        let client = reqwest::Client::builder()
            .user_agent(&cfg.user_agent)
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .redirect(policy)
            .dns_resolver(Arc::new(GuardedResolver { allow: allow.clone() }))
            .gzip(true)
            .brotli(true)
            .no_proxy()
            .build()
            .map_err(|e| CrawlError::Client(e.to_string()))?;
        let agent = cfg.user_agent.split(['/', ' ']).next().unwrap_or("aidocs-crawler").to_owned();
        Ok(Self { cfg, client, allow, agent })
    }

    /// Run `plan`, sending every event to `events` (a closed receiver stops the crawl).
    pub async fn run(&self, plan: CrawlPlan, events: mpsc::Sender<CrawlEvent>) -> CrawlStats {
        let started = Instant::now();
        let stats = Arc::new(Mutex::new(CrawlStats::default()));
        // The browser starts once per crawl, and a crawl that cannot render fails its seeds
        // with the reason instead of indexing empty app shells.
        let renderer = match &self.cfg.render {
            None => None,
            Some(rc) => match crate::render::Renderer::start(rc, self.allow.clone(), &self.cfg.user_agent).await {
                Ok(r) => Some(Arc::new(r)),
                Err(e) => {
                    for s in &plan.seeds {
                        stats.lock().unwrap().failed += 1;
                        if events.send(CrawlEvent::Failed { url: s.url.to_string(), error: e.to_string() }).await.is_err() {
                            break;
                        }
                    }
                    return self.finish(&stats, started);
                }
            },
        };
        let out = self.crawl(plan, events, stats.clone(), renderer.clone(), started).await;
        if let Some(r) = renderer {
            stats.lock().unwrap().render_blocked = r.blocked();
            r.close().await;
            return self.finish(&stats, started);
        }
        out
    }

    async fn crawl(&self, plan: CrawlPlan, events: mpsc::Sender<CrawlEvent>, stats: Arc<Mutex<CrawlStats>>, renderer: Option<Arc<crate::render::Renderer>>, started: Instant) -> CrawlStats {
        let hosts: Arc<Mutex<HashMap<String, Arc<Host>>>> = Arc::default();
        let global = Arc::new(Semaphore::new(self.cfg.global_concurrency));
        let known = Arc::new(plan.known);
        let mut seen: HashSet<String> = HashSet::new();
        let mut frontier: VecDeque<Job> = VecDeque::new();
        let emit = |e: CrawlEvent| {
            let events = events.clone();
            async move { events.send(e).await.is_ok() }
        };
        for s in &plan.seeds {
            let Some(url) = normalize(&s.url) else {
                stats.lock().unwrap().skipped += 1;
                if !emit(CrawlEvent::Skipped { url: s.url.to_string(), reason: "not an http(s) URL".into() }).await {
                    return self.finish(&stats, started);
                }
                continue;
            };
            if seen.insert(url.to_string()) {
                frontier.push_back(match s.kind {
                    SeedKind::Page => Job::Page { url, depth: 0 },
                    SeedKind::Sitemap => Job::Sitemap { url, discovered: false },
                });
            }
        }
        for u in plan.revisit.iter().filter_map(normalize) {
            if seen.insert(u.to_string()) {
                frontier.push_back(Job::Page { url: u, depth: 0 });
            }
        }
        let mut pages_started = 0usize;
        let mut tasks = tokio::task::JoinSet::new();
        let mut fetched_ids: HashSet<String> = HashSet::new();
        loop {
            // Keep enough jobs in flight to saturate the global limit.
            while tasks.len() < self.cfg.global_concurrency * 2 {
                let Some(job) = frontier.pop_front() else { break };
                if let Job::Page { url, .. } = &job {
                    if pages_started >= self.cfg.max_pages {
                        stats.lock().unwrap().skipped += 1;
                        if !emit(CrawlEvent::Skipped { url: url.to_string(), reason: format!("page cap reached ({} pages)", self.cfg.max_pages) }).await {
                            return self.finish(&stats, started);
                        }
                        continue;
                    }
                    pages_started += 1;
                }
                let ctx = Ctx {
                    client: self.client.clone(),
                    cfg: self.cfg.clone(),
                    allow: self.allow.clone(),
                    agent: self.agent.clone(),
                    hosts: hosts.clone(),
                    global: global.clone(),
                    known: known.clone(),
                    stats: stats.clone(),
                    renderer: renderer.clone(),
                };
                let follow = plan.follow_links;
                tasks.spawn(async move { ctx.job(job, follow).await });
            }
            let Some(done) = tasks.join_next().await else { break };
            let outcome = match done {
                Ok(o) => o,
                Err(e) => Outcome::Events(vec![CrawlEvent::Failed { url: String::new(), error: format!("crawl task failed: {e}") }]),
            };
            let mut out = Vec::new();
            match outcome {
                Outcome::Events(list) => out.extend(list),
                Outcome::Sitemap { url, pages, sitemaps } => {
                    tracing::debug!(sitemap = %url, pages = pages.len(), "sitemap read");
                    for s in sitemaps {
                        if seen.len() < self.cfg.max_queue && seen.insert(s.to_string()) {
                            frontier.push_back(Job::Sitemap { url: s, discovered: false });
                        }
                    }
                    self.enqueue(pages, 0, &plan.scope, &mut seen, &mut frontier, &mut out);
                }
                Outcome::Page { page, links, sitemaps, llms } => {
                    for s in sitemaps {
                        if seen.len() < self.cfg.max_queue && seen.insert(s.to_string()) {
                            frontier.push_back(Job::Sitemap { url: s, discovered: false });
                        }
                    }
                    if let Some(l) = llms
                        && seen.len() < self.cfg.max_queue
                        && seen.insert(l.to_string())
                    {
                        frontier.push_back(Job::Sitemap { url: l, discovered: true });
                    }
                    if !fetched_ids.insert(page.url.clone()) {
                        out.push(CrawlEvent::Skipped { url: page.requested.clone(), reason: format!("duplicate of {}", page.url) });
                        stats.lock().unwrap().skipped += 1;
                    } else {
                        if plan.follow_links && page.depth < self.cfg.max_depth {
                            self.enqueue(links, page.depth + 1, &plan.scope, &mut seen, &mut frontier, &mut out);
                        }
                        out.push(CrawlEvent::Page(page));
                    }
                }
            }
            for e in out {
                if let CrawlEvent::Queued { total } = e {
                    stats.lock().unwrap().queued = total;
                }
                if !emit(e).await {
                    tasks.abort_all();
                    return self.finish(&stats, started);
                }
            }
        }
        self.finish(&stats, started)
    }

    fn enqueue(&self, links: Vec<Url>, depth: usize, scope: &Scope, seen: &mut HashSet<String>, frontier: &mut VecDeque<Job>, out: &mut Vec<CrawlEvent>) {
        let before = seen.len();
        for u in links {
            if !scope.contains(&u) || seen.contains(u.as_str()) {
                continue;
            }
            if seen.len() >= self.cfg.max_queue {
                out.push(CrawlEvent::Skipped { url: u.to_string(), reason: format!("queue cap reached ({} URLs)", self.cfg.max_queue) });
                break;
            }
            seen.insert(u.to_string());
            frontier.push_back(Job::Page { url: u, depth });
        }
        if seen.len() > before {
            out.push(CrawlEvent::Queued { total: seen.len() });
        }
    }

    fn finish(&self, stats: &Mutex<CrawlStats>, started: Instant) -> CrawlStats {
        let mut s = stats.lock().unwrap().clone();
        s.took_ms = started.elapsed().as_millis() as u64;
        s
    }
}

/// What a fetch task needs.
struct Ctx {
    client: reqwest::Client,
    cfg: CrawlConfig,
    allow: AllowList,
    agent: String,
    hosts: Arc<Mutex<HashMap<String, Arc<Host>>>>,
    global: Arc<Semaphore>,
    known: Arc<HashMap<String, Validators>>,
    stats: Arc<Mutex<CrawlStats>>,
    renderer: Option<Arc<crate::render::Renderer>>,
}

impl Ctx {
    fn count(&self, f: impl FnOnce(&mut CrawlStats)) {
        f(&mut self.stats.lock().unwrap());
    }

    fn host(&self, url: &Url) -> Arc<Host> {
        let key = url.origin().ascii_serialization();
        self.hosts
            .lock()
            .unwrap()
            .entry(key)
            .or_insert_with(|| Arc::new(Host { sitemaps_taken: Default::default(), llms_taken: Default::default(), permits: Semaphore::new(self.cfg.per_host_concurrency), next_slot: tokio::sync::Mutex::new(Instant::now()), robots: OnceCell::new() }))
            .clone()
    }

    async fn job(self, job: Job, follow: bool) -> Outcome {
        match job {
            Job::Sitemap { url, discovered } => {
                let key = url.to_string();
                let quiet = |why: String| {
                    tracing::debug!(url = %key, %why, "no llms.txt at the origin's root");
                    Outcome::Events(Vec::new())
                };
                match self.fetch(&url, None).await {
                    Ok(Fetched::Body { body, content_type, final_url, .. }) => {
                        let html = content_type.as_deref().is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
                        if discovered && html {
                            // A site that answers every path with its app shell.
                            return quiet("answered HTML".into());
                        }
                        let max = self.cfg.max_bytes;
                        // Parsing up to `max_bytes`: off the async workers.
                        match tokio::task::spawn_blocking(move || discover::parse_url_list(&final_url, &body, max)).await {
                            Err(e) => self.failed(key, format!("sitemap parse task failed: {e}")),
                            Ok(Ok((s, discover::UrlList::Sitemap))) => {
                                self.count(|c| c.sitemaps_read += 1);
                                Outcome::Sitemap { url: key, pages: s.pages, sitemaps: s.sitemaps }
                            }
                            Ok(Ok((s, discover::UrlList::LlmsTxt))) => {
                                self.count(|c| c.llms_txt_read += 1);
                                Outcome::Sitemap { url: key, pages: s.pages, sitemaps: Vec::new() }
                            }
                            Ok(Err(e)) if discovered => quiet(e),
                            Ok(Err(e)) => self.failed(key, format!("sitemap: {e}")),
                        }
                    }
                    Ok(Fetched::Status(s)) if discovered => quiet(format!("HTTP {}", s.as_u16())),
                    Ok(Fetched::Status(s)) => self.failed(key, format!("sitemap answered HTTP {}", s.as_u16())),
                    Ok(Fetched::TooLarge(n)) => self.skipped(key, format!("sitemap larger than {} bytes ({n})", self.cfg.max_bytes)),
                    Ok(Fetched::NotModified) => Outcome::Events(Vec::new()),
                    Err(FetchError::Blocked(why) | FetchError::Other(why)) if discovered => quiet(why),
                    Err(e) => self.error(key, e),
                }
            }
            Job::Page { url, depth } => self.page(url, depth, follow).await,
        }
    }

    fn skipped(&self, url: String, reason: String) -> Outcome {
        self.count(|c| c.skipped += 1);
        Outcome::Events(vec![CrawlEvent::Skipped { url, reason }])
    }

    fn failed(&self, url: String, error: String) -> Outcome {
        self.count(|c| c.failed += 1);
        Outcome::Events(vec![CrawlEvent::Failed { url, error }])
    }

    /// A transport error: blocked by the guard, or failed.
    fn error(&self, url: String, e: FetchError) -> Outcome {
        match e {
            FetchError::Blocked(reason) => {
                self.count(|c| c.blocked += 1);
                Outcome::Events(vec![CrawlEvent::Blocked { url, reason }])
            }
            FetchError::Other(error) => self.failed(url, error),
        }
    }

    async fn page(&self, url: Url, depth: usize, follow: bool) -> Outcome {
        let key = url.to_string();
        if let Err(reason) = self.allow.check_url(&url) {
            self.count(|c| c.blocked += 1);
            return Outcome::Events(vec![CrawlEvent::Blocked { url: key, reason }]);
        }
        match self.robots_allow(&url).await {
            Ok(()) => {}
            Err(Refusal::Robots(reason)) => {
                self.count(|c| {
                    c.skipped += 1;
                    c.robots_disallowed += 1;
                });
                return Outcome::Events(vec![CrawlEvent::Skipped { url: key, reason }]);
            }
            Err(Refusal::Blocked(reason)) => {
                self.count(|c| c.blocked += 1);
                return Outcome::Events(vec![CrawlEvent::Blocked { url: key, reason }]);
            }
        }
        // A rendered page is fetched whole each time: its shell rarely changes while what
        // its script loads does (an unchanged rendering still writes nothing downstream).
        let validators = if self.renderer.is_some() { None } else { self.known.get(&key) };
        let fetched = match self.fetch(&url, validators).await {
            Ok(f) => f,
            Err(e) => return self.error(key, e),
        };
        let (final_url, content_type, body, etag, last_modified) = match fetched {
            Fetched::Body { final_url, content_type, body, etag, last_modified } => (final_url, content_type, body, etag, last_modified),
            Fetched::NotModified => {
                self.count(|c| c.not_modified += 1);
                return Outcome::Events(vec![CrawlEvent::NotModified { url: key }]);
            }
            Fetched::Status(s) if s == StatusCode::NOT_FOUND || s == StatusCode::GONE => {
                self.count(|c| c.gone += 1);
                return Outcome::Events(vec![CrawlEvent::Gone { url: key, status: s.as_u16() }]);
            }
            Fetched::Status(s) => return self.failed(key, format!("HTTP {}", s.as_u16())),
            Fetched::TooLarge(n) => return self.skipped(key, format!("response of {n} bytes is over the {}-byte limit", self.cfg.max_bytes)),
        };
        let final_norm = normalize(&final_url).unwrap_or(final_url.clone());
        let Some(format) = discover::detect_format(content_type.as_deref(), &final_norm) else {
            return self.skipped(key, format!("content type {} is not HTML, Markdown, reST, text, JSON, YAML or PDF", content_type.as_deref().unwrap_or("(none)")));
        };
        let bytes = body.len() as u64;
        // A JavaScript-built page: what the browser shows replaces what was served.
        let body = match (&self.renderer, format) {
            (Some(r), PageFormat::Html) => match r.render(&final_url).await {
                Ok(html) => {
                    self.count(|c| c.rendered += 1);
                    html.into_bytes()
                }
                Err(e) => return self.failed(key, e.to_string()),
            },
            _ => body,
        };
        // Decoding and link discovery parse the whole page: CPU work, off the async workers
        // (one big page would otherwise stall every other request of the process).
        let served = final_url.clone();
        let Some((text, raw, (links, canonical))) = decode_and_discover(body, served, format).await
        else {
            return self.failed(key, "link discovery task failed".into());
        };
        // The page's identity: a canonical URL on the same origin, else where it was served.
        let id = canonical.filter(|c| c.origin() == final_norm.origin()).unwrap_or(final_norm);
        self.count(|c| {
            c.pages_fetched += 1;
            c.bytes += bytes;
        });
        let page = Page { url: id.to_string(), requested: key, format, bytes, body: text, raw, etag, last_modified, depth };
        // A site crawl also reads the sitemaps robots.txt announces (once per origin).
        let host = self.host(&url);
        let sitemaps = match host.robots.get() {
            Some(Robots::Rules(r)) if follow && !host.sitemaps_taken.swap(true, std::sync::atomic::Ordering::SeqCst) => {
                r.sitemaps.iter().filter_map(|s| crate::urls::resolve(None, s)).collect()
            }
            _ => Vec::new(),
        };
        // ... and the origin's `llms.txt`, the site's own index of its pages, when it has one.
        let llms = (follow && !host.llms_taken.swap(true, std::sync::atomic::Ordering::SeqCst)).then(|| url.join("/llms.txt").ok()).flatten();
        Outcome::Page { page, links: if follow { links } else { Vec::new() }, sitemaps, llms }
    }

    /// robots.txt of the URL's origin, fetched once per crawl.
    async fn robots_allow(&self, url: &Url) -> Result<(), Refusal> {
        let host = self.host(url);
        let robots = host
            .robots
            .get_or_init(|| async {
                let Ok(robots_url) = url.join("/robots.txt") else { return Robots::AllowAll };
                match self.fetch(&robots_url, None).await {
                    Ok(Fetched::Body { body, .. }) => match texting_robots::Robot::new(&self.agent, &body) {
                        Ok(r) => Robots::Rules(Box::new(r)),
                        Err(e) => Robots::DenyAll(format!("robots.txt unparseable ({e}); the host is treated as disallowed")),
                    },
                    Ok(Fetched::Status(s)) if s.is_client_error() => Robots::AllowAll,
                    Ok(Fetched::Status(s)) => Robots::DenyAll(format!("robots.txt answered HTTP {}; the host is treated as disallowed until it answers", s.as_u16())),
                    Ok(Fetched::TooLarge(_)) | Ok(Fetched::NotModified) => Robots::AllowAll,
                    Err(FetchError::Blocked(why)) => Robots::Blocked(why),
                    Err(FetchError::Other(e)) => Robots::DenyAll(format!("robots.txt unreachable ({e}); the host is treated as disallowed")),
                }
            })
            .await;
        match robots {
            Robots::AllowAll => Ok(()),
            Robots::DenyAll(why) => Err(Refusal::Robots(why.clone())),
            Robots::Blocked(why) => Err(Refusal::Blocked(why.clone())),
            Robots::Rules(r) => {
                if r.allowed(url.as_str()) {
                    Ok(())
                } else {
                    Err(Refusal::Robots("disallowed by robots.txt".into()))
                }
            }
        }
    }

    /// Wait for this host's next slot (min delay, or the robots.txt crawl delay).
    async fn pace(&self, host: &Host) {
        let delay = match host.robots.get() {
            Some(Robots::Rules(r)) => r.delay.map(|d| Duration::from_secs_f32(d.max(0.0))).unwrap_or_default().min(self.cfg.max_crawl_delay).max(self.cfg.min_delay),
            _ => self.cfg.min_delay,
        };
        let mut next = host.next_slot.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep(*next - now).await;
        }
        *next = Instant::now() + delay;
    }

    /// GET with politeness, conditional headers, retries and a size bound.
    async fn fetch(&self, url: &Url, validators: Option<&Validators>) -> Result<Fetched, FetchError> {
        self.allow.check_url(url).map_err(FetchError::Blocked)?;
        let host = self.host(url);
        let _global = self.global.acquire().await.expect("never closed");
        let _host = host.permits.acquire().await.expect("never closed");
        let mut attempt = 0;
        loop {
            self.pace(&host).await;
            self.count(|c| c.requests += 1);
            let mut req = self.client.get(url.clone()).header(reqwest::header::ACCEPT, crate::accept(self.cfg.prefer_markdown));
            if let Some(c) = self.cfg.credentials.as_ref().filter(|c| c.owns(url)) {
                req = req.headers(c.headers().clone());
            }
            if let Some(v) = validators {
                if let Some(e) = &v.etag {
                    req = req.header(reqwest::header::IF_NONE_MATCH, e);
                }
                if let Some(m) = &v.last_modified {
                    req = req.header(reqwest::header::IF_MODIFIED_SINCE, m);
                }
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    if let Some(why) = is_guard_error(&e) {
                        return Err(FetchError::Blocked(why));
                    }
                    let transient = e.is_timeout() || e.is_connect() || e.is_request();
                    if transient && !e.is_redirect() && attempt < self.cfg.retries {
                        attempt += 1;
                        tokio::time::sleep(self.backoff(attempt, None)).await;
                        continue;
                    }
                    return Err(FetchError::Other(error_chain(&e)));
                }
            };
            let status = resp.status();
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) && attempt < self.cfg.retries {
                attempt += 1;
                let wait = self.backoff(attempt, retry_after(&resp));
                tracing::debug!(%url, status = status.as_u16(), wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status == StatusCode::NOT_MODIFIED {
                return Ok(Fetched::NotModified);
            }
            if !status.is_success() {
                return Ok(Fetched::Status(status));
            }
            if let Some(n) = resp.content_length().filter(|&n| n > self.cfg.max_bytes) {
                return Ok(Fetched::TooLarge(n));
            }
            let final_url = resp.url().clone();
            let content_type = header(&resp, reqwest::header::CONTENT_TYPE);
            let etag = header(&resp, reqwest::header::ETAG);
            let last_modified = header(&resp, reqwest::header::LAST_MODIFIED);
            let mut resp = resp;
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() as u64 + chunk.len() as u64 > self.cfg.max_bytes {
                            return Ok(Fetched::TooLarge(body.len() as u64 + chunk.len() as u64));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(FetchError::Other(format!("reading the body: {}", error_chain(&e)))),
                }
            }
            return Ok(Fetched::Body { final_url, content_type, body, etag, last_modified });
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = Duration::from_millis(250u64.saturating_mul(1 << attempt.min(16)));
        retry_after.unwrap_or(exp).min(self.cfg.max_retry_wait)
    }
}

enum FetchError {
    Blocked(String),
    Other(String),
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// What a page's body gives: its text, its bytes (a binary format only), its links and
/// canonical URL.
type Decoded = (String, Vec<u8>, (Vec<Url>, Option<Url>));

/// Decode a page and find its links and canonical URL on tokio's blocking pool: a page of
/// several MB takes a second to parse, which must not stall the async workers. A binary
/// page (PDF) is kept as bytes, with no links. `None` when the task failed.
async fn decode_and_discover(body: Vec<u8>, served: Url, format: PageFormat) -> Option<Decoded> {
    if format == PageFormat::Pdf {
        return Some((String::new(), body, (Vec::new(), None)));
    }
    tokio::task::spawn_blocking(move || {
        let text = String::from_utf8_lossy(&body).into_owned();
        // Relative links resolve against the URL as served (a trailing slash matters).
        let found = match format {
            PageFormat::Html => discover::html_links(&served, &text),
            PageFormat::Markdown => (discover::markdown_links(&served, &text), None),
            PageFormat::Rst | PageFormat::Text | PageFormat::OpenApi | PageFormat::Pdf => (Vec::new(), None),
        };
        (text, Vec::new(), found)
    })
    .await
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Link discovery of a huge page leaves the runtime's only worker free: a task that
    /// counts its own turns keeps turning while the page is parsed. Parsed on the worker, it
    /// would count none between the call and its answer (no await lies between); counted,
    /// not timed.
    #[tokio::test(flavor = "current_thread")]
    async fn link_discovery_of_a_huge_page_does_not_stall_the_worker() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let mut html = String::from("<html><body>");
        for i in 0..150_000 {
            html.push_str(&format!("<div><a href=\"/p/{i}.html\">page {i}</a></div>"));
        }
        html.push_str("</body></html>");
        let turns = Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let turns = turns.clone();
            async move {
                loop {
                    turns.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            }
        });
        tokio::task::yield_now().await;
        let before = turns.load(Ordering::SeqCst);
        let url = Url::parse("https://docs.example.com/index.html").unwrap();
        let (text, _, (links, _)) = decode_and_discover(html.into_bytes(), url, PageFormat::Html)
            .await
            .unwrap();
        let during = turns.load(Ordering::SeqCst) - before;
        ticker.abort();
        assert!(text.len() > 5_000_000);
        assert_eq!(links.len(), 150_000);
        assert!(
            during > 1,
            "the worker ran other tasks {during} times while a {} MB page was parsed",
            text.len() / 1_000_000
        );
    }
}
