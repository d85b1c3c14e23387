//! Crawl throughput against a local HTTP server serving Debian's python3.11-doc HTML tree
//! (~530 pages): the crawler (robots.txt, link discovery, normalisation, per-host limit 4,
//! global 8, no delay) against a baseline measured in the same run: the same URLs fetched
//! by a plain reqwest client with 4 requests in flight and nothing else. Runs once.
//!
//! Chunks/s: the fetched pages parsed into sections and chunked (400-token chunks, tokens
//! counted as words, as in the chunking bench), embedding excluded.
//!
//! Rendering: the tutorial subtree (~17 pages) crawled as served and rendered in headless
//! Chromium (one page at a time, each waiting to settle), same run, same crawler settings.
//!
//! `cargo bench --workspace --bench crawl`

use aidocs_benchkit::{Report, Table};
use aidocs_crawl::testkit::DocServer;
use aidocs_crawl::{CrawlConfig, CrawlEvent, CrawlPlan, Crawler, Scope, Seed, SeedKind};
use std::time::{Duration, Instant};
use url::Url;

/// Tokens counted as whitespace-separated words (no tokenizer file needed).
struct Words;

impl aidocs_core::TokenCounter for Words {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = std::path::Path::new("/usr/share/doc/python3.11/html");
    assert!(root.join("index.html").is_file(), "needs Debian's python3.11-doc");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // The tree is served from /docs/ so robots.txt (none: 404) and scope work as on a site.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(root, dir.path().join("docs")).unwrap();
        let server = DocServer::start(dir.path().to_path_buf(), Duration::ZERO).await;
        let cfg = CrawlConfig { per_host_concurrency: 4, global_concurrency: 8, min_delay: Duration::ZERO, max_pages: 5000, allow_hosts: vec!["127.0.0.1".into()], ..CrawlConfig::default() };
        let crawler = Crawler::new(cfg).unwrap();
        let plan = CrawlPlan {
            seeds: vec![Seed { url: Url::parse(&server.url("/docs/index.html")).unwrap(), kind: SeedKind::Page }],
            scope: Scope::new(Some(Url::parse(&server.url("/docs/")).unwrap()), &[], &["/docs/_*/**".into()]).unwrap(),
            follow_links: true,
            ..Default::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let collect = tokio::spawn(async move {
            let mut pages = Vec::new();
            while let Some(e) = rx.recv().await {
                if let CrawlEvent::Page(p) = e {
                    pages.push((p.requested, p.body));
                }
            }
            pages
        });
        let t = Instant::now();
        let stats = crawler.run(plan, tx).await;
        let crawl_s = t.elapsed().as_secs_f64();
        let pages = collect.await.unwrap();
        let urls: Vec<String> = pages.iter().map(|p| p.0.clone()).collect();
        let t = Instant::now();
        let counter = Words;
        let chunker = aidocs_ingest::Chunker::new(aidocs_ingest::ChunkerConfig { max_tokens: 400, overlap_tokens: 40, lead_tokens: 0 }, &counter);
        let chunks: usize = pages
            .iter()
            .map(|(_, body)| {
                let doc = aidocs_ingest::parse(aidocs_ingest::DocFormat::Html, body);
                chunker.chunk(doc.title.as_deref().unwrap_or(""), &doc.sections).len()
            })
            .sum();
        let chunk_s = t.elapsed().as_secs_f64();

        // Baseline: the same pages, plain GETs, 4 in flight.
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for u in urls.clone() {
            let (client, sem) = (client.clone(), sem.clone());
            tasks.spawn(async move {
                let _p = sem.acquire().await.unwrap();
                client.get(u).send().await.unwrap().bytes().await.unwrap().len()
            });
        }
        let mut bytes = 0;
        while let Some(n) = tasks.join_next().await {
            bytes += n.unwrap();
        }
        let base_s = t.elapsed().as_secs_f64();
        let mb = |b: u64| b as f64 / 1e6;
        let mut report = Report::new("crawl", "Crawling");
        report.note(format!(
            "Debian's python3.11-doc HTML tree ({} pages, {:.1} MB) served over HTTP on 127.0.0.1 by the \
             test doc server, crawled from `index.html` with 4 requests per host, 8 in all, no politeness \
             delay. The baseline fetches the same URLs with plain GETs, 4 in flight.",
            stats.pages_fetched,
            mb(stats.bytes)
        ));
        let mut t = Table::new("", &[("s", 2), ("pages/s", 0), ("MB/s", 1)]).ratio_of(0);
        t.values(format!("plain GETs of the same {} URLs, 4 in flight", urls.len()), &[base_s, urls.len() as f64 / base_s, mb(bytes as u64) / base_s]);
        t.values(
            format!("crawler: robots.txt, link discovery, normalisation ({} requests, {} skipped, {} failed)", stats.requests, stats.skipped, stats.failed),
            &[crawl_s, stats.pages_fetched as f64 / crawl_s, mb(stats.bytes) / crawl_s],
        );
        let total = crawl_s + chunk_s;
        t.values(format!("crawler, then parse + chunk every page ({chunks} chunks, {:.0} chunks/s)", chunks as f64 / total), &[total, stats.pages_fetched as f64 / total, mb(stats.bytes) / total]);
        report.table(t);

        // Rendered against plain, on the tutorial subtree.
        let tutorial = |render: Option<aidocs_crawl::RenderConfig>| {
            let cfg = CrawlConfig { per_host_concurrency: 4, global_concurrency: 8, min_delay: Duration::ZERO, max_pages: 5000, allow_hosts: vec!["127.0.0.1".into()], render, ..CrawlConfig::default() };
            let plan = CrawlPlan {
                seeds: vec![Seed { url: Url::parse(&server.url("/docs/tutorial/index.html")).unwrap(), kind: SeedKind::Page }],
                scope: Scope::new(Some(Url::parse(&server.url("/docs/tutorial/")).unwrap()), &[], &[]).unwrap(),
                follow_links: true,
                ..Default::default()
            };
            (Crawler::new(cfg).unwrap(), plan)
        };
        let mut t = Table::new("Rendering in headless Chromium (the tutorial subtree)", &[("s", 2), ("pages/s", 1)]).ratio_of(1);
        for (label, render) in [("crawler, pages as served", None), ("crawler, every page rendered in headless Chromium (start included)", Some(aidocs_crawl::RenderConfig::default()))] {
            let (crawler, plan) = tutorial(render);
            let (tx, mut rx) = tokio::sync::mpsc::channel(256);
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let t0 = Instant::now();
            let stats = crawler.run(plan, tx).await;
            let s = t0.elapsed().as_secs_f64();
            drain.await.unwrap();
            assert!(stats.pages_fetched > 10 && stats.failed == 0, "{stats:?}");
            t.values(format!("{label} ({} pages, {} rendered)", stats.pages_fetched, stats.rendered), &[s, stats.pages_fetched as f64 / s]);
        }
        report.table(t);
        report.finish().unwrap();
    });
}
