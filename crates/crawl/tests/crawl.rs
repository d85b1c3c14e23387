//! The crawler against a real HTTP server on 127.0.0.1 serving a real documentation tree
//! (Debian's python3.11-doc tutorial), with robots.txt, a sitemap, hostile routes and
//! internal addresses.

use aidocs_crawl::testkit::DocServer;
use aidocs_crawl::{CrawlConfig, CrawlEvent, CrawlPlan, Crawler, Scope, Seed, SeedKind, Validators};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;
use url::Url;

const PYDOC: &str = "/usr/share/doc/python3.11/html/tutorial";

/// `root/docs/tutorial/`: the real tutorial, plus a page that links to a robots-disallowed
/// directory and a Markdown page; `root/robots.txt` and a sitemap.
fn doc_tree(root: &Path) -> usize {
    assert!(Path::new(PYDOC).join("venv.html").is_file(), "needs Debian's python3.11-doc (.ci/run installs it)");
    let tut = root.join("docs/tutorial");
    std::fs::create_dir_all(tut.join("private")).unwrap();
    let mut pages = 0;
    for e in std::fs::read_dir(PYDOC).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".html") {
            let mut text = std::fs::read_to_string(e.path()).unwrap();
            if name == "index.html" {
                text = text.replace("</body>", "<a href=\"more.html\">more</a></body>");
            }
            std::fs::write(tut.join(&name), text).unwrap();
            pages += 1;
        }
    }
    std::fs::write(
        tut.join("more.html"),
        "<html><head><title>More</title></head><body><h1>More</h1><p>See <a href=\"private/secret.html\">secret</a> and <a href=\"notes.md\">notes</a>.</p></body></html>",
    )
    .unwrap();
    std::fs::write(tut.join("notes.md"), "# Notes\n\nMarkdown notes on virtual environments.\n").unwrap();
    std::fs::write(tut.join("private/secret.html"), "<html><body><h1>Secret</h1><p>Never fetched.</p></body></html>").unwrap();
    std::fs::write(root.join("robots.txt"), "User-agent: *\nDisallow: /docs/tutorial/private/\n").unwrap();
    pages + 2
}

fn sitemap(server: &DocServer, root: &Path) {
    let locs = ["/docs/tutorial/venv.html", "/docs/tutorial/private/secret.html", "/docs/tutorial/notes.md"]
        .iter()
        .map(|p| format!("<url><loc>{}</loc></url>", server.url(p)))
        .collect::<String>();
    std::fs::write(root.join("docs/tutorial/sitemap.xml"), format!("<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{locs}</urlset>")).unwrap();
    // robots.txt announces it, as sites do.
    let robots = std::fs::read_to_string(root.join("robots.txt")).unwrap();
    std::fs::write(root.join("robots.txt"), format!("{robots}Sitemap: {}\n", server.url("/docs/tutorial/sitemap.xml"))).unwrap();
}

fn config(max_pages: usize) -> CrawlConfig {
    CrawlConfig {
        max_pages,
        min_delay: Duration::from_millis(5),
        per_host_concurrency: 2,
        global_concurrency: 8,
        retries: 2,
        max_bytes: 1 << 20,
        allow_hosts: vec!["127.0.0.1".into()],
        ..CrawlConfig::default()
    }
}

async fn run(crawler: &Crawler, plan: CrawlPlan) -> (Vec<CrawlEvent>, aidocs_crawl::CrawlStats) {
    aidocs_crawl::testkit::crawl_all(crawler, plan, Duration::from_secs(120)).await
}

fn pages(events: &[CrawlEvent]) -> Vec<&aidocs_crawl::Page> {
    events.iter().filter_map(|e| if let CrawlEvent::Page(p) = e { Some(p) } else { None }).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawls_a_real_doc_tree_politely_once_each_then_conditionally() {
    let dir = tempfile::tempdir().unwrap();
    let expected = doc_tree(dir.path());
    let server = DocServer::start(dir.path().to_path_buf(), Duration::from_millis(15)).await;
    sitemap(&server, dir.path());
    let crawler = Crawler::new(config(500)).unwrap();
    let start = Url::parse(&server.url("/docs/tutorial/index.html")).unwrap();
    // The sitemap is not a seed: robots.txt announces it.
    let plan = CrawlPlan {
        seeds: vec![Seed { url: start.clone(), kind: SeedKind::Page }],
        scope: Scope::new(Some(Url::parse(&server.url("/docs/tutorial/")).unwrap()), &[], &[]).unwrap(),
        follow_links: true,
        ..Default::default()
    };
    let (events, stats) = run(&crawler, plan.clone()).await;
    let got = pages(&events);
    let mut urls: Vec<&str> = got.iter().map(|p| p.url.as_str()).collect();
    urls.sort_unstable();
    urls.dedup();
    assert_eq!(urls.len(), got.len(), "each page delivered once");
    assert_eq!(got.len(), expected, "every allowed page of the tree: {urls:?}");
    assert!(got.iter().any(|p| p.url.ends_with("/notes.md") && p.format == aidocs_crawl::PageFormat::Markdown));
    assert_eq!(stats.sitemaps_read, 1, "the sitemap robots.txt announces is read");
    let hits = server.hits();
    assert!(hits.iter().all(|h| !h.path.contains("/private/")), "the robots-disallowed directory is never requested");
    assert!(stats.robots_disallowed >= 1, "{stats:?}");
    let mut per_path: HashMap<&str, usize> = HashMap::new();
    for h in hits.iter().filter(|h| h.status == 200) {
        *per_path.entry(h.path.as_str()).or_default() += 1;
    }
    assert!(per_path.values().all(|&n| n == 1), "no page fetched twice: {per_path:?}");
    assert_eq!(hits.iter().filter(|h| h.path == "/robots.txt").count(), 1, "robots.txt once per host");
    assert!(server.max_in_flight() <= 2, "per-host concurrency limit exceeded: {}", server.max_in_flight());
    assert!(server.max_in_flight() == 2, "requests did overlap up to the limit");

    // Re-crawl with the validators: every page request is conditional and answered 304.
    server.clear();
    let known: HashMap<String, Validators> = got.iter().map(|p| (p.requested.clone(), Validators { etag: p.etag.clone(), last_modified: p.last_modified.clone() })).collect();
    let again = CrawlPlan { known, revisit: got.iter().map(|p| Url::parse(&p.requested).unwrap()).collect(), ..plan };
    let (events, stats) = run(&crawler, again).await;
    assert!(pages(&events).is_empty(), "nothing changed, nothing delivered");
    assert_eq!(stats.not_modified, expected, "{stats:?}");
    let page_hits: Vec<_> = server.hits().into_iter().filter(|h| !["/robots.txt", "/llms.txt"].contains(&h.path.as_str()) && !h.path.ends_with("sitemap.xml")).collect();
    assert!(page_hits.iter().all(|h| h.conditional && h.status == 304), "all page requests conditional: {page_hits:?}");
}

/// `llms.txt`: a site crawl reads the one at the origin's root and fetches the pages it
/// lists within the scope (a page no link leads to included); named as a sitemap, it is read
/// as a URL list; an `llms-full.txt` is a Markdown page whose links are followed too. A site
/// without one costs one quiet 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llms_txt_lists_pages_and_its_absence_is_no_failure() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::create_dir_all(root.join("blog")).unwrap();
    std::fs::write(root.join("docs/index.html"), "<html><body><h1>Docs</h1><p>Start here.</p><a href=\"install.html\">install</a></body></html>").unwrap();
    std::fs::write(root.join("docs/install.html"), "<html><body><h1>Install</h1><p>cargo install.</p></body></html>").unwrap();
    std::fs::write(root.join("docs/agents.md"), "# Agents\n\nOnly llms.txt leads here. See [the FAQ](faq.md).\n").unwrap();
    std::fs::write(root.join("docs/faq.md"), "# FAQ\n\nReached through a Markdown link.\n").unwrap();
    std::fs::write(root.join("blog/post.html"), "<html><body><h1>Post</h1></body></html>").unwrap();
    std::fs::write(root.join("llms.txt"), "# Example\n\n> Docs for agents.\n\n## Docs\n\n- [Install](/docs/install.html): first steps\n- [Agents](/docs/agents.md)\n\n## Optional\n\n- [Blog](/blog/post.html)\n").unwrap();
    std::fs::write(root.join("docs/llms-full.txt"), "# Everything\n\n## Install\n\ncargo install aidocs\n\nMore in [the FAQ](faq.md).\n").unwrap();
    let server = DocServer::start(root.to_path_buf(), Duration::ZERO).await;
    let crawler = Crawler::new(config(50)).unwrap();
    let scope = Scope::new(Some(Url::parse(&server.url("/docs/")).unwrap()), &[], &[]).unwrap();
    let seed = |path: &str, kind| Seed { url: Url::parse(&server.url(path)).unwrap(), kind };
    let fetched = |events: &[CrawlEvent]| {
        let mut p: Vec<String> = pages(events).iter().map(|p| Url::parse(&p.url).unwrap().path().to_owned()).collect();
        p.sort();
        p
    };

    // A site crawl: the root's llms.txt adds agents.md (no link leads there); its Markdown
    // link adds faq.md; the blog is out of scope.
    let plan = CrawlPlan { seeds: vec![seed("/docs/index.html", SeedKind::Page)], scope: scope.clone(), follow_links: true, ..Default::default() };
    let (events, stats) = run(&crawler, plan).await;
    // (`index.html` is the page `/docs/`.)
    assert_eq!(fetched(&events), ["/docs/", "/docs/agents.md", "/docs/faq.md", "/docs/install.html"]);
    assert_eq!(stats.llms_txt_read, 1, "{stats:?}");
    assert!(server.hits().iter().all(|h| h.path != "/blog/post.html"));

    // Named as a sitemap: a URL list, no links followed.
    server.clear();
    let plan = CrawlPlan { seeds: vec![seed("/llms.txt", SeedKind::Sitemap)], scope: scope.clone(), ..Default::default() };
    let (events, stats) = run(&crawler, plan).await;
    assert_eq!(fetched(&events), ["/docs/agents.md", "/docs/install.html"]);
    assert_eq!((stats.llms_txt_read, stats.sitemaps_read), (1, 0));

    // llms-full.txt is a Markdown page (content, not a list).
    let plan = CrawlPlan { seeds: vec![seed("/docs/llms-full.txt", SeedKind::Page)], scope: scope.clone(), follow_links: true, ..Default::default() };
    let (events, _) = run(&crawler, plan).await;
    let full = pages(&events).into_iter().find(|p| p.url.ends_with("llms-full.txt")).expect("llms-full.txt is a page");
    assert_eq!(full.format, aidocs_crawl::PageFormat::Markdown);
    assert!(fetched(&events).contains(&"/docs/faq.md".to_owned()), "its links are followed");

    // No llms.txt: one 404, no failure, nothing skipped for it.
    std::fs::remove_file(root.join("llms.txt")).unwrap();
    server.clear();
    let plan = CrawlPlan { seeds: vec![seed("/docs/index.html", SeedKind::Page)], scope, follow_links: true, ..Default::default() };
    let (events, stats) = run(&crawler, plan).await;
    assert_eq!(fetched(&events), ["/docs/", "/docs/install.html"]);
    assert_eq!((stats.failed, stats.llms_txt_read), (0, 0), "{events:?}");
    assert_eq!(server.hits().iter().filter(|h| h.path == "/llms.txt").count(), 1);
}

/// Content negotiation: with `prefer_markdown` the crawler asks for Markdown first, and a
/// site that offers it answers with the page's Markdown (its URL stays the page's; its
/// Markdown links are followed); by default HTML is asked for and served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdown_is_asked_for_first_when_preferred() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("guide.html"), "<html><body><h1>Guide</h1><p>HTML edition.</p></body></html>").unwrap();
    std::fs::write(docs.join("guide.md"), "# Guide\n\nMarkdown edition; see [setup](setup.html).\n").unwrap();
    std::fs::write(docs.join("setup.html"), "<html><body><h1>Setup</h1><p>Only in HTML.</p></body></html>").unwrap();
    let server = DocServer::start(dir.path().to_path_buf(), Duration::ZERO).await;
    let plan = CrawlPlan {
        seeds: vec![Seed { url: Url::parse(&server.url("/docs/guide.html")).unwrap(), kind: SeedKind::Page }],
        scope: Scope::new(Some(Url::parse(&server.url("/docs/")).unwrap()), &[], &[]).unwrap(),
        follow_links: true,
        ..Default::default()
    };
    for (prefer, format, text) in [(true, aidocs_crawl::PageFormat::Markdown, "Markdown edition"), (false, aidocs_crawl::PageFormat::Html, "HTML edition")] {
        let crawler = Crawler::new(CrawlConfig { prefer_markdown: prefer, ..config(10) }).unwrap();
        let (events, _) = run(&crawler, plan.clone()).await;
        let got = pages(&events);
        let guide = got.iter().find(|p| p.url.ends_with("/docs/guide.html")).unwrap_or_else(|| panic!("{events:?}"));
        assert_eq!(guide.format, format);
        assert!(guide.body.contains(text), "{}", guide.body);
        if prefer {
            assert!(got.iter().any(|p| p.url.ends_with("/docs/setup.html") && p.format == aidocs_crawl::PageFormat::Html), "the Markdown's link is followed, and a page without Markdown answers HTML");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_are_never_fetched_unless_allow_listed() {
    let dir = tempfile::tempdir().unwrap();
    doc_tree(dir.path());
    let server = DocServer::start(dir.path().to_path_buf(), Duration::ZERO).await;
    let crawler = Crawler::new(CrawlConfig { connect_timeout: Duration::from_secs(2), timeout: Duration::from_secs(5), retries: 0, ..config(50) }).unwrap();
    let port = server.addr.port();
    let targets = [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/docs/index.html".to_owned(),
        "http://[::1]/x".to_owned(),
        format!("http://localhost:{port}/docs/tutorial/venv.html"),
        server.url("/hostile/redirect-private"),
        server.url("/hostile/redirect-localhost"),
    ];
    let plan = CrawlPlan { seeds: targets.iter().map(|u| Seed { url: Url::parse(u).unwrap(), kind: SeedKind::Page }).collect(), ..Default::default() };
    let (events, stats) = run(&crawler, plan).await;
    let blocked: BTreeMap<String, String> = events.iter().filter_map(|e| if let CrawlEvent::Blocked { url, reason } = e { Some((url.clone(), reason.clone())) } else { None }).collect();
    assert_eq!(blocked.len(), targets.len(), "every target blocked: {events:?}");
    assert_eq!(stats.blocked, targets.len());
    assert!(blocked.values().any(|r| r.contains("link-local")), "{blocked:?}");
    assert!(blocked.values().any(|r| r.contains("localhost resolves to 127.0.0.1")), "{blocked:?}");
    let hits = server.hits();
    assert!(hits.iter().all(|h| !h.host.starts_with("localhost")), "nothing reached the server as localhost: {hits:?}");
    assert!(hits.iter().filter(|h| h.path.starts_with("/hostile/redirect")).all(|h| h.status == 302), "the redirects were answered, not followed");

    // Allow-listed, localhost is fetched.
    let allowed = Crawler::new(CrawlConfig { allow_hosts: vec!["localhost".into(), "127.0.0.1".into()], ..config(5) }).unwrap();
    let plan = CrawlPlan { seeds: vec![Seed { url: Url::parse(&targets[3]).unwrap(), kind: SeedKind::Page }], ..Default::default() };
    let (events, _) = run(&allowed, plan).await;
    assert_eq!(pages(&events).len(), 1, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sites_are_bounded_reported_and_the_crawl_finishes() {
    let dir = tempfile::tempdir().unwrap();
    doc_tree(dir.path());
    let server = DocServer::start(dir.path().to_path_buf(), Duration::ZERO).await;
    let crawler = Crawler::new(CrawlConfig { max_depth: 100, ..config(25) }).unwrap();
    let seeds = ["/hostile/loop", "/hostile/big", "/hostile/malformed", "/hostile/binary", "/hostile/retry", "/hostile/maze/0"];
    let plan = CrawlPlan {
        seeds: seeds.iter().map(|p| Seed { url: Url::parse(&server.url(p)).unwrap(), kind: SeedKind::Page }).collect(),
        scope: Scope::new(Some(Url::parse(&server.url("/hostile/")).unwrap()), &[], &[]).unwrap(),
        follow_links: true,
        ..Default::default()
    };
    let (events, stats) = run(&crawler, plan).await;
    let find = |suffix: &str| events.iter().find(|e| matches!(e, CrawlEvent::Failed { url, .. } | CrawlEvent::Skipped { url, .. } if url.ends_with(suffix))).cloned();
    assert!(matches!(find("/hostile/loop"), Some(CrawlEvent::Failed { error, .. }) if error.contains("redirect")), "{:?}", find("/hostile/loop"));
    assert!(matches!(find("/hostile/big"), Some(CrawlEvent::Skipped { reason, .. }) if reason.contains("over the 1048576-byte limit")), "{:?}", find("/hostile/big"));
    assert!(matches!(find("/hostile/binary"), Some(CrawlEvent::Skipped { reason, .. }) if reason.contains("application/octet-stream")));
    let got = pages(&events);
    assert!(got.iter().any(|p| p.url.ends_with("/hostile/malformed")), "malformed HTML still parses");
    assert!(got.iter().any(|p| p.url.ends_with("/hostile/retry") && p.body.contains("Served after a 429")), "retried after 429 + Retry-After");
    let retry_hits: Vec<u16> = server.hits().iter().filter(|h| h.path == "/hostile/retry").map(|h| h.status).collect();
    assert_eq!(retry_hits, [429, 200]);
    assert!(got.len() <= 25, "page cap holds against the maze: {}", got.len());
    assert!(events.iter().any(|e| matches!(e, CrawlEvent::Skipped { reason, .. } if reason.contains("page cap"))), "the maze hit the page cap");
    assert!(stats.bytes < 5 << 20, "the 50 MB body was not read: {} bytes", stats.bytes);
}
