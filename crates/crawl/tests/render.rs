//! JavaScript-rendered sites: a single-page app served by a real HTTP server, whose content
//! exists only once its script has run, crawled with and without headless Chromium
//! (Debian's `chromium` and `chromium-driver`, which `.ci/run` installs).

use aidocs_crawl::testkit::{DocServer, spa_site};
use aidocs_crawl::{CrawlConfig, CrawlEvent, CrawlPlan, Crawler, RenderConfig, Scope, Seed, SeedKind};
use std::time::Duration;
use url::Url;

fn config(render: Option<RenderConfig>) -> CrawlConfig {
    CrawlConfig { min_delay: Duration::from_millis(5), allow_hosts: vec!["127.0.0.1".into()], render, ..CrawlConfig::default() }
}

async fn crawl(crawler: &Crawler, server: &DocServer) -> (Vec<CrawlEvent>, aidocs_crawl::CrawlStats) {
    let plan = CrawlPlan {
        seeds: vec![Seed { url: Url::parse(&server.url("/app/index.html")).unwrap(), kind: SeedKind::Page }],
        scope: Scope::new(Some(Url::parse(&server.url("/app/")).unwrap()), &[], &[]).unwrap(),
        follow_links: true,
        ..Default::default()
    };
    aidocs_crawl::testkit::crawl_all(crawler, plan, Duration::from_secs(180)).await
}

fn page<'a>(events: &'a [CrawlEvent], path: &str) -> Option<&'a aidocs_crawl::Page> {
    events.iter().find_map(|e| match e {
        CrawlEvent::Page(p) if p.url.ends_with(path) => Some(p),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_page_app_is_read_only_when_rendered_and_its_script_stays_guarded() {
    let dir = tempfile::tempdir().unwrap();
    spa_site(dir.path());
    let server = DocServer::start(dir.path().to_path_buf(), Duration::ZERO).await;

    // Plain fetch: the shell, no content, and the link the script would add is not there.
    let (events, stats) = crawl(&Crawler::new(config(None)).unwrap(), &server).await;
    let shell = page(&events, "/app/").unwrap_or_else(|| panic!("the shell is fetched: {events:?}"));
    assert!(!shell.body.contains("gigawatt") && shell.body.contains("Loading..."), "{}", shell.body);
    assert!(page(&events, "/app/guide.html").is_none());
    assert_eq!(stats.rendered, 0);

    // Rendered: the content the script built, and the page it links to.
    server.clear();
    let (events, stats) = crawl(&Crawler::new(config(Some(RenderConfig::default()))).unwrap(), &server).await;
    let app = page(&events, "/app/").unwrap_or_else(|| panic!("{events:?}"));
    assert!(app.body.contains("Set the gigawatt dial to 1.21") && app.body.contains("id=\"tuning\""), "{}", app.body);
    assert!(page(&events, "/app/guide.html").is_some(), "a link only the script adds is followed: {events:?}");
    assert_eq!(stats.rendered, 2, "{stats:?}");
    // The script's request to `localhost` (not allow-listed) never reached the server.
    assert!(stats.render_blocked >= 1, "{stats:?}");
    let hits = server.hits();
    assert!(hits.iter().any(|h| h.path == "/app/content.json"), "the browser's own requests go through: {hits:?}");
    assert!(hits.iter().all(|h| h.path != "/app/secret.json"), "{hits:?}");
    assert!(!app.body.contains("internal secret"));
}

/// A renderer that cannot start fails the crawl's seeds with the reason (no shell pages
/// indexed in its place), and the crawl ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_renderer_fails_the_crawl_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    spa_site(dir.path());
    let server = DocServer::start(dir.path().to_path_buf(), Duration::ZERO).await;
    let missing = RenderConfig { driver: "/nonexistent/chromedriver".into(), ..RenderConfig::default() };
    let (events, stats) = crawl(&Crawler::new(config(Some(missing))).unwrap(), &server).await;
    assert_eq!((stats.pages_fetched, stats.failed), (0, 1), "{stats:?}");
    match &events[..] {
        [CrawlEvent::Failed { url, error }] => {
            assert!(url.ends_with("/app/index.html"), "{url}");
            assert!(error.contains("renderer could not start") && error.contains("/nonexistent/chromedriver"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(server.hits().is_empty(), "nothing fetched without a renderer");
}
