//! The search page (`GET /`) in a real browser: headless Chromium (Debian `chromium` with
//! `chromium-driver`), driven over WebDriver, against the server's router on a real port and
//! the real model and store. A person types a query and sees results grouped by page with
//! the query's terms marked and deep links; applies a facet; moves with the keyboard; reads
//! a section; enters a wrong and then a right API key. Page text that looks like HTML stays
//! text. The page passes an automated accessibility audit (axe-core) and fits a phone.
//! Screenshots go to `docs/img/` with `AIDOCS_BLESS=1`.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::progress::NoProgress;
use aidocs::{Engine, IngestRequest};
use aidocs_crawl::testkit::Browser;
use fantoccini::Locator;
use fantoccini::key::Key;
use std::path::Path;
use std::time::{Duration, Instant};

/// The server's router on 127.0.0.1, stopped (its engine's store closed) when dropped,
/// before the test's data dir goes.
struct Server {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn serve(engine: Engine) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = aidocs_http::router(engine).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { base: format!("http://{addr}"), task }
}

/// Two libraries' worth of pages in one collection (`language` rust and python), one of
/// them with text that looks like markup.
async fn ingest(engine: &Engine, dir: &Path, base: &str) {
    let rust = dir.join("rust");
    common::write_tree(
        &rust,
        &[
            ("tokio.md", "# Runtime\n\n## Spawning tasks\n\nUse tokio::spawn to run a future as a task on the runtime in the background.\n\n## Shutting down\n\nDrop the runtime to stop every task and shut the runtime down.\n"),
            (
                "escaping.html",
                "<html><head><title>Escaping</title></head><body><h1 id=\"escaping\">Escaping output</h1><p>Never echo &lt;script&gt;document.title='pwned'&lt;/script&gt; or &lt;img src=x onerror=\"document.title='pwned'\"&gt; into a page unescaped.</p></body></html>",
            ),
        ],
    );
    let python = dir.join("python");
    common::write_tree(&python, &[("asyncio.md", "# asyncio\n\n## Creating tasks\n\nUse asyncio.create_task to schedule a coroutine as a task on the event loop.\n")]);
    for (path, language) in [(rust, "rust"), (python, "python")] {
        let metadata = aidocs::core::DocMetadata { language: Some(language.into()), ..Default::default() };
        let req = IngestRequest { base_url: Some(format!("{base}/docs/{language}")), path, collection: "docs".into(), metadata };
        engine.ingest().directory(req, &NoProgress).await.unwrap();
    }
}

/// `GET path` over a plain connection: the status and the headers (lower-case names).
async fn get_head(base: &str, path: &str) -> (u16, std::collections::HashMap<String, String>) {
    request(base, "GET", path, None).await
}

async fn request(base: &str, method: &str, path: &str, json: Option<&str>) -> (u16, std::collections::HashMap<String, String>) {
    request_as(base, method, path, json, None).await
}

/// One request over a fresh plain connection (with `key` as a bearer token), read to its
/// end: the status and the headers.
async fn request_as(base: &str, method: &str, path: &str, json: Option<&str>, key: Option<&str>) -> (u16, std::collections::HashMap<String, String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    let body = json.unwrap_or("");
    let kind = if json.is_some() { "Content-Type: application/json\r\n" } else { "" };
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    s.write_all(format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{kind}{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let text = String::from_utf8_lossy(&resp);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = head.lines().skip(1).filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    (status, headers)
}

async fn js(b: &Browser, script: &str) -> serde_json::Value {
    b.client.execute(script, Vec::new()).await.unwrap()
}

/// Wait (at most 30 s) until the page has answered `n` searches.
async fn searched(b: &Browser, n: u64) {
    let start = Instant::now();
    loop {
        let done = js(b, "return Number(document.body.dataset.searches || 0)").await.as_u64().unwrap_or(0);
        if done >= n {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "search {n} never answered; status: {}", js(b, "return document.getElementById('status').textContent").await);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn status_text(b: &Browser) -> String {
    js(b, "return document.getElementById('status').textContent").await.as_str().unwrap_or("").to_owned()
}

/// Wait (at most 30 s) until the status line says `what`.
async fn status_says(b: &Browser, what: &str) -> String {
    let start = Instant::now();
    loop {
        let s = status_text(b).await;
        if s.contains(what) {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the status never said `{what}`: {s}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn active_id(b: &Browser) -> String {
    js(b, "var a = document.activeElement; return (a.id || '') + '|' + (a.className || '') + '|' + (a.getAttribute('href') || '')").await.as_str().unwrap_or("").to_owned()
}

/// One key pressed and released on the keyboard, to whatever has the focus.
async fn press(b: &Browser, key: impl Into<char>) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let value = key.into();
    let keys = KeyActions::new("keyboard".into()).then(KeyAction::Down { value }).then(KeyAction::Up { value });
    b.client.perform_actions(keys).await.unwrap();
}

fn screenshot(name: &str, png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{name}: a real screenshot");
    if std::env::var_os("AIDOCS_BLESS").is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

/// axe-core's audit of the page as it is (WCAG 2 A and AA rules): the serious and critical
/// violations, by rule and element.
async fn accessibility_violations(b: &Browser) -> Vec<String> {
    let axe = std::env::var_os("AIDOCS_AXE").map(std::path::PathBuf::from).unwrap_or_else(|| {
        Path::new(&std::env::var("HOME").unwrap()).join(".cache/aidocs/npm/node_modules/axe-core/axe.min.js")
    });
    let source = std::fs::read_to_string(&axe).unwrap_or_else(|e| panic!("axe-core at {}: {e} (npm install --prefix ~/.cache/aidocs/npm axe-core; .ci/run does)", axe.display()));
    b.client.execute(&source, Vec::new()).await.unwrap();
    let found = b
        .client
        .execute_async(
            "var done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'best-practice'] }).then(function (r) {
               done(r.violations.filter(function (v) { return v.impact === 'serious' || v.impact === 'critical'; })
                 .map(function (v) { return v.id + ': ' + v.nodes.map(function (n) { return n.target.join(' '); }).join(', '); }));
             });",
            Vec::new(),
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_searches_filters_reads_and_moves_with_the_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::engine(&dir.path().join("data"));
    let server = serve(engine.clone()).await;
    let base = server.base.clone();
    ingest(&engine, &dir.path().join("docs"), &base).await;
    let b = Browser::start(1280, 900).await;

    // A shared link opens with its results.
    b.client.goto(&format!("{base}/?q=spawn+a+task+in+the+background&collection=docs")).await.unwrap();
    searched(&b, 1).await;
    let pages = b.client.find_all(Locator::Css("article.page")).await.unwrap();
    assert!(pages.len() >= 2, "results grouped by page: {}", pages.len());
    let first = b.client.find(Locator::Css("article.page h2 a")).await.unwrap();
    assert_eq!(first.text().await.unwrap(), "Runtime");
    let link = b.client.find(Locator::Css("a.section")).await.unwrap();
    assert_eq!(link.attr("href").await.unwrap().as_deref(), Some(format!("{base}/docs/rust/tokio.md#spawning-tasks").as_str()));
    assert!(link.text().await.unwrap().contains("Spawning tasks"));
    let marks: Vec<String> = serde_json::from_value(js(&b, "return Array.from(document.querySelectorAll('#results mark')).map(function (m) { return m.textContent.toLowerCase(); })").await).unwrap();
    assert!(marks.iter().any(|m| m == "spawn") && marks.iter().any(|m| m == "task"), "the query's terms are marked: {marks:?}");
    assert!(!marks.iter().any(|m| m == "in" || m == "the" || m == "a"), "common words are not marked: {marks:?}");
    let inside = js(&b, "return Array.from(document.querySelectorAll('#results mark')).filter(function (m) { var p = m.previousSibling; return p && /[\\p{L}\\p{N}_]$/u.test(p.textContent); }).length").await;
    assert_eq!(inside, 0, "marks start words, never inside one");
    let badges = js(&b, "return Array.from(document.querySelectorAll('.badge.library')).map(function (x) { return x.textContent; })").await;
    assert_eq!(badges[0], "docs", "{badges}");
    let violations = accessibility_violations(&b).await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");
    screenshot("search-desktop.png", &b.client.screenshot().await.unwrap());

    // Typing searches as you type, and the URL follows.
    let q = b.client.find(Locator::Id("q")).await.unwrap();
    q.clear().await.unwrap();
    q.send_keys("schedule a coroutine on the event loop").await.unwrap();
    searched(&b, 2).await;
    let top = b.client.find(Locator::Css("article.page h2 a")).await.unwrap();
    assert_eq!(top.text().await.unwrap(), "asyncio");
    let url = b.client.current_url().await.unwrap();
    assert!(url.query().unwrap_or("").contains("q=schedule+a+coroutine+on+the+event+loop"), "{url}");

    // A facet narrows the results to one language, and is in the URL too.
    let facet = b.client.find(Locator::Css("button.facet[data-field=language][data-value=rust]")).await.unwrap();
    facet.click().await.unwrap();
    searched(&b, 3).await;
    let hrefs: Vec<String> = serde_json::from_value(js(&b, "return Array.from(document.querySelectorAll('a.section')).map(function (a) { return a.getAttribute('href'); })").await).unwrap();
    assert!(!hrefs.is_empty() && hrefs.iter().all(|h| h.contains("/docs/rust/")), "{hrefs:?}");
    assert!(b.client.current_url().await.unwrap().query().unwrap_or("").contains("language=rust"));
    let pressed = b.client.find(Locator::Css("button.facet[aria-pressed=true]")).await.unwrap();
    pressed.click().await.unwrap();
    searched(&b, 4).await;

    // Facet counts are the whole collection's (GET /v1/facets), not the hits on screen: with
    // the results narrowed to python, the rust facet is still offered with every rust chunk.
    let facet = b.client.find(Locator::Css("button.facet[data-field=language][data-value=python]")).await.unwrap();
    facet.click().await.unwrap();
    searched(&b, 5).await;
    let hrefs: Vec<String> = serde_json::from_value(js(&b, "return Array.from(document.querySelectorAll('a.section')).map(function (a) { return a.getAttribute('href'); })").await).unwrap();
    assert!(!hrefs.is_empty() && hrefs.iter().all(|h| h.contains("/docs/python/")), "{hrefs:?}");
    let language = |l: &str| aidocs::core::Filter::default().and(aidocs::core::FilterField::Language, aidocs::core::FilterValue::Keyword(l.into()));
    let rust_chunks = engine.store().count("docs", &language("rust")).await.unwrap();
    let python_chunks = engine.store().count("docs", &language("python")).await.unwrap();
    assert!(rust_chunks >= 3 && python_chunks >= 1, "{rust_chunks} {python_chunks}");
    let rust = b.client.find(Locator::Css("button.facet[data-field=language][data-value=rust]")).await.unwrap();
    assert_eq!(rust.attr("data-count").await.unwrap(), Some(rust_chunks.to_string()), "the rust facet counts the collection's rust chunks");
    assert_eq!(rust.text().await.unwrap(), format!("language: rust ({rust_chunks})"));
    let pressed = b.client.find(Locator::Css("button.facet[aria-pressed=true]")).await.unwrap();
    assert_eq!(pressed.attr("data-count").await.unwrap(), Some(python_chunks.to_string()));
    pressed.click().await.unwrap();
    searched(&b, 6).await;

    // The keyboard: `/` to the box, arrows through the sections, Enter opens the deep link.
    js(&b, "document.activeElement.blur(); return null").await;
    press(&b, '/').await;
    assert!(active_id(&b).await.starts_with("q|"), "{}", active_id(&b).await);
    press(&b, Key::Down).await;
    let one = active_id(&b).await;
    press(&b, Key::Down).await;
    let two = active_id(&b).await;
    assert!(one.contains("|section|") && two.contains("|section|") && one != two, "{one} then {two}");
    press(&b, Key::Up).await;
    assert_eq!(active_id(&b).await, one);
    let target = one.rsplit('|').next().unwrap().to_owned();
    press(&b, Key::Enter).await;
    let start = Instant::now();
    while b.client.current_url().await.unwrap().as_str() != target {
        assert!(start.elapsed() < Duration::from_secs(10), "Enter did not open {target}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    b.client.back().await.unwrap();

    // Read a section whole, then close it with Escape.
    b.client.goto(&format!("{base}/?q=spawn+a+task+in+the+background")).await.unwrap();
    searched(&b, 1).await;
    b.client.find(Locator::Css("button.read")).await.unwrap().click().await.unwrap();
    let text = b.client.wait().for_element(Locator::Css("#reader:not([hidden]) #reader-text")).await.unwrap().text().await.unwrap();
    assert!(text.contains("tokio::spawn"), "{text}");
    press(&b, Key::Escape).await;
    assert_eq!(js(&b, "return document.getElementById('reader').hidden").await, true);
    assert!(active_id(&b).await.contains("|read|"), "focus returns to the button");

    // Text that looks like markup is shown as text and stays inert.
    b.client.goto(&format!("{base}/?q=echo+script+img+onerror+unescaped")).await.unwrap();
    searched(&b, 1).await;
    let snippet = b.client.find(Locator::Css(".snippet")).await.unwrap().text().await.unwrap();
    assert!(snippet.contains("<img src=x onerror="), "{snippet}");
    assert_eq!(js(&b, "return document.querySelectorAll('#results img, #results script').length").await, 0);
    assert_eq!(js(&b, "return document.title").await, "aidocs search");

    // A phone: no sideways scrolling, the box stays usable.
    b.client.goto(&format!("{base}/?q=spawn+a+task+in+the+background")).await.unwrap();
    b.client.set_window_size(390, 844).await.unwrap();
    searched(&b, 1).await;
    let fit = js(&b, "return [document.documentElement.scrollWidth, window.innerWidth, document.getElementById('q').getBoundingClientRect().width]").await;
    assert!(fit[0].as_f64() <= fit[1].as_f64() && fit[2].as_f64().unwrap() >= 200.0, "{fit}");
    screenshot("search-phone.png", &b.client.screenshot().await.unwrap());

    // Time to first results for a cached query (the same search again), from navigation.
    b.client.set_window_size(1280, 900).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        b.client.goto(&format!("{base}/?q=spawn+a+task+in+the+background")).await.unwrap();
        searched(&b, 1).await;
        times.push(js(&b, "return Number(document.body.dataset.firstResultsMs)").await.as_f64().unwrap());
        assert_eq!(js(&b, "return document.body.dataset.cached").await, "true", "answered from the search cache");
    }
    times.sort_by(f64::total_cmp);
    // The baseline: the same requests from a plain HTTP client, one connection each.
    let mut plain = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        for path in ["/", "/ui/common.js", "/ui/app.js", "/ui/app.css", "/v1/libraries", "/v1/facets?collection=docs"] {
            assert_eq!(request(&base, "GET", path, None).await.0, 200);
        }
        let (status, head) = request(&base, "POST", "/v1/search", Some(r#"{"query": "spawn a task in the background", "limit": 20}"#)).await;
        assert!(status == 200 && head.contains_key("content-length"), "{status}");
        plain.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    plain.sort_by(f64::total_cmp);
    println!("time to first results, cached query: median {:.0} ms in the browser (of {times:?}), {:.1} ms for the same requests from a plain client", times[2], plain[2]);
    if std::env::var_os("AIDOCS_BLESS").is_some() {
        let report = serde_json::json!({
            "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "browser": "headless Chromium over WebDriver",
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
            "browser_ms": times,
            "plain_ms": plain,
        });
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bench/browser.json");
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
    }
    b.close().await;
    server.stop().await;
}

/// A server with API keys: the page asks for one, names a wrong one, and searches with the
/// right one (kept for the tab: a reload still searches). Pages and assets carry the
/// security headers, and need no key themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_asks_for_an_api_key_and_keeps_it_for_the_tab() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.auth.keys = aidocs::config::parse_api_keys(&format!("reader:search:{}", aidocs_http::hash_key("r1ght-key"))).unwrap();
    let engine = Engine::open(cfg).unwrap();
    let server = serve(engine.clone()).await;
    let base = server.base.clone();
    ingest(&engine, &dir.path().join("docs"), &base).await;

    for path in ["/", "/console", "/ui/common.js", "/ui/app.js", "/ui/console.js", "/ui/app.css"] {
        let (status, head) = get_head(&base, path).await;
        assert_eq!(status, 200, "{path} needs no key");
        let csp = head.get("content-security-policy").map(String::as_str).unwrap_or("");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!((head["x-content-type-options"].as_str(), head["x-frame-options"].as_str()), ("nosniff", "DENY"), "{path}");
    }

    let b = Browser::start(1280, 900).await;
    b.client.goto(&format!("{base}/?q=spawn+a+task")).await.unwrap();
    status_says(&b, "needs an API key").await;
    assert_eq!(js(&b, "return document.getElementById('key-box').open").await, true);
    let key = b.client.find(Locator::Id("key")).await.unwrap();
    key.send_keys("wr0ng-key").await.unwrap();
    key.send_keys(&char::from(Key::Enter).to_string()).await.unwrap();
    status_says(&b, "not accepted").await;
    let key = b.client.find(Locator::Id("key")).await.unwrap();
    key.send_keys("r1ght-key").await.unwrap();
    key.send_keys(&char::from(Key::Enter).to_string()).await.unwrap();
    searched(&b, 1).await;
    assert!(status_text(&b).await.contains("result"), "{}", status_text(&b).await);
    assert!(js(&b, "return document.body.innerText").await.as_str().unwrap().contains("Spawning tasks"));
    b.client.refresh().await.unwrap();
    searched(&b, 1).await;
    b.close().await;
    server.stop().await;
}

/// A client past the server's rate limit is told to wait, with the server's `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_when_searches_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.server.rate_limit_per_minute = 3;
    cfg.server.rate_limit_burst = 3;
    let engine = Engine::open(cfg).unwrap();
    let server = serve(engine.clone()).await;
    ingest(&engine, &dir.path().join("docs"), &server.base).await;
    let b = Browser::start(1280, 900).await;
    // The libraries, one search and the facets (asked beside it, in either order; kept for
    // the next searches): the budget of 3.
    b.client.goto(&format!("{}/?q=spawn+a+task", server.base)).await.unwrap();
    searched(&b, 1).await;
    let q = b.client.find(Locator::Id("q")).await.unwrap();
    q.send_keys(" now").await.unwrap();
    let said = status_says(&b, "Too many searches").await;
    assert!(said.contains(" s."), "says when to retry: {said}");
    assert_eq!(js(&b, "return document.querySelectorAll('#results article').length").await, 0);
    b.close().await;
    server.stop().await;
}

/// Wait (at most 30 s) until `script` returns true.
async fn until(b: &Browser, what: &str, script: &str) {
    let start = Instant::now();
    while js(b, script).await != true {
        assert!(start.elapsed() < Duration::from_secs(30), "never: {what}; status: {}", status_text(b).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the table `id`'s body rows, one string per row.
async fn table(b: &Browser, id: &str) -> Vec<String> {
    serde_json::from_value(js(b, &format!("return Array.from(document.querySelectorAll('#{id} tbody tr')).map(function (r) {{ return r.innerText; }})")).await).unwrap()
}

/// The operator console: it asks for an admin key and says when a key is not one; with the
/// admin key it shows the collections with their aliases, a running canary with both arms,
/// the health and a traffic chart from the server's own metrics; a sync asks first
/// (cancelled: nothing runs), then runs as a job and says what it wrote; pausing the canary
/// asks first too. Page and console pass the accessibility audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_state_and_acts_only_after_confirmation() {
    use aidocs::ingest::{WebIngestRequest, WebSource, WebSourceKind};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.crawl.allow_hosts = vec!["127.0.0.1".into()];
    cfg.crawl.min_delay_ms = 0;
    let keys = format!("ops:admin:{},reader:search:{}", aidocs_http::hash_key("0p3rator-key"), aidocs_http::hash_key("r3ader-key"));
    cfg.auth.keys = aidocs::config::parse_api_keys(&keys).unwrap();
    let rollouts = aidocs::rollout::Rollouts::open(&cfg).unwrap();
    let engine = Engine::open(cfg).unwrap().with_rollouts(rollouts);
    for (name, text) in [("docs_v1", "Install the server with cargo."), ("docs_v2", "Install the server with cargo, or from the release tarball.")] {
        let path = dir.path().join(name);
        common::write_tree(&path, &[("install.md", &format!("# Install\n\n{text}\n"))]);
        engine.ingest().directory(IngestRequest { path, collection: name.into(), metadata: Default::default(), base_url: None }, &NoProgress).await.unwrap();
    }
    engine.store().set_alias("docs", "docs_v1").await.unwrap();
    let site = dir.path().join("site");
    common::write_tree(&site, &[("guide/index.html", "<html><head><title>Guide</title></head><body><h1>Guide</h1><p>Start the server.</p></body></html>")]);
    let docs = aidocs_crawl::testkit::DocServer::start(site, Duration::ZERO).await;
    let source = WebSource { kind: WebSourceKind::Site, urls: vec![docs.url("/guide/index.html")], scope: None, include: vec![], exclude: vec![], max_pages: None, max_depth: None, allow_hosts: vec![], metadata: Default::default(), render: Default::default() };
    engine.ingest().web(WebIngestRequest { collection: "web".into(), source }, &NoProgress).await.unwrap();
    let server = serve(engine.clone()).await;
    let base = server.base.clone();
    let canary = r#"{"id": "c1", "alias": "docs", "collection": "docs_v2"}"#;
    assert_eq!(request_as(&base, "POST", "/v1/admin/canaries", Some(canary), Some("0p3rator-key")).await.0, 201);
    let deploy = serde_json::json!({"alias": "handbook", "source": dir.path().join("docs_v2")}).to_string();
    assert_eq!(request_as(&base, "POST", "/v1/admin/deploy/blue-green", Some(&deploy), Some("0p3rator-key")).await.0, 200);
    let ab = r#"{"id": "modes", "alias": "handbook", "variants": [{"id": "hybrid", "weight": 0.5}, {"id": "dense", "weight": 0.5, "mode": "dense"}]}"#;
    assert_eq!(request_as(&base, "POST", "/v1/admin/ab", Some(ab), Some("0p3rator-key")).await.0, 201);
    for q in ["install", "install the server", "release tarball", "cargo", "from the release", "server"] {
        let body = serde_json::json!({"query": q, "collection": "handbook"}).to_string();
        assert_eq!(request_as(&base, "POST", "/v1/search", Some(&body), Some("r3ader-key")).await.0, 200);
    }

    let b = Browser::start(1280, 900).await;
    b.client.goto(&format!("{base}/console")).await.unwrap();
    status_says(&b, "needs an admin API key").await;
    for (key, then) in [("r3ader-key", "not an admin key"), ("0p3rator-key", "")] {
        let field = b.client.find(Locator::Id("key")).await.unwrap();
        field.send_keys(key).await.unwrap();
        field.send_keys(&char::from(Key::Enter).to_string()).await.unwrap();
        if !then.is_empty() {
            status_says(&b, then).await;
        }
    }
    until(&b, "the console loaded", "return Number(document.body.dataset.loads || 0) >= 1").await;
    let collections = table(&b, "collections").await;
    for name in ["docs_v1", "docs_v2", "web"] {
        assert!(collections.iter().any(|r| r.starts_with(name)), "{name} in {collections:?}");
    }
    assert!(collections.iter().any(|r| r.starts_with("docs_v1") && r.contains("docs")), "the alias: {collections:?}");
    assert!(collections.iter().all(|r| r.contains("all-MiniLM-L6-v2 (384 dims)") && (r.contains("KiB") || r.contains("MiB"))), "the model and the size on disk: {collections:?}");
    let canaries = table(&b, "canaries").await;
    assert!(canaries.len() == 1 && canaries[0].contains("c1") && canaries[0].contains("docs: docs_v1 → docs_v2") && canaries[0].contains("running"), "{canaries:?}");
    assert!(canaries[0].contains("requests"), "both arms' figures: {canaries:?}");
    assert!(js(&b, "return document.getElementById('health').textContent").await.as_str().unwrap().starts_with("health: "));
    // The A/B test with each variant's own figures from GET /v1/admin/ab/{id}: all six
    // searches counted, split between the variants.
    let ab = table(&b, "ab").await;
    assert!(ab.len() == 1 && ab[0].starts_with("modes") && ab[0].contains("handbook") && ab[0].contains("running"), "{ab:?}");
    assert!(ab[0].contains("hybrid (control), weight 0.5: ") && ab[0].contains("dense, weight 0.5: ") && ab[0].contains("p95"), "{ab:?}");
    let counted: u64 = ab[0].split(" requests").filter_map(|before| before.rsplit(' ').next()?.parse::<u64>().ok()).sum();
    assert_eq!(counted, 6, "per-variant requests add up to the searches made: {ab:?}");
    let deployments = table(&b, "bluegreen").await;
    assert!(deployments.len() == 1 && deployments[0].contains("handbook") && deployments[0].contains("(none) → ") && deployments[0].contains("switched"), "{deployments:?}");

    // Sync the web collection: cancelled at the question, nothing runs; accepted, it runs.
    let sync = "Array.from(document.querySelectorAll('#collections tbody tr')).filter(function (r) { return r.cells[0].textContent === 'web'; })[0].querySelector('button[data-action=sync]')";
    js(&b, &format!("{sync}.click(); return null")).await;
    assert!(b.client.get_alert_text().await.unwrap().contains("“web”"));
    b.client.dismiss_alert().await.unwrap();
    status_says(&b, "Cancelled").await;
    docs.clear();
    js(&b, &format!("{sync}.click(); return null")).await;
    b.client.accept_alert().await.unwrap();
    let said = status_says(&b, "Synced web").await;
    assert!(said.contains("1 source(s), 0 documents written"), "{said}");
    assert!(!docs.hits().is_empty(), "the sync fetched the site again");
    until(&b, "the sync job listed", "return Array.from(document.querySelectorAll('#jobs tbody tr')).some(function (r) { return r.innerText.indexOf('sync') === 0 && r.innerText.indexOf('succeeded') > 0; })").await;

    // A collection built from a directory has nothing to re-crawl: the page says so.
    let sync_v1 = "Array.from(document.querySelectorAll('#collections tbody tr')).filter(function (r) { return r.cells[0].textContent === 'docs_v1'; })[0].querySelector('button[data-action=sync]')";
    js(&b, &format!("{sync_v1}.click(); return null")).await;
    b.client.accept_alert().await.unwrap();
    let said = status_says(&b, "The sync of docs_v1 failed").await;
    assert!(said.contains("has no web sources"), "{said}");

    // Pause the canary, after the question.
    // Found and clicked in one script: the console re-renders its tables after each action.
    js(&b, "document.querySelector('#canaries button[data-action=pause]').click(); return null").await;
    assert!(b.client.get_alert_text().await.unwrap().contains("c1"));
    b.client.accept_alert().await.unwrap();
    status_says(&b, "Canary c1 paused").await;
    until(&b, "the canary shows paused", "return document.querySelector('#canaries tbody tr').innerText.indexOf('paused') >= 0").await;

    // Stop the A/B test, after the question: the alias serves plainly again.
    js(&b, "document.querySelector('#ab button[data-action=stop]').click(); return null").await;
    assert!(b.client.get_alert_text().await.unwrap().contains("“modes”"));
    b.client.accept_alert().await.unwrap();
    status_says(&b, "A/B test modes stopped").await;
    until(&b, "the A/B test shows stopped", "return document.querySelector('#ab tbody tr').innerText.indexOf('stopped') >= 0").await;
    assert!(engine.rollout().ab_tests().await.unwrap().iter().all(|t| t.id != "modes" || t.status == aidocs_rollout::ab::AbStatus::Stopped));

    // A backup, then its verification, each after the question.
    let backup = "Array.from(document.querySelectorAll('#collections tbody tr')).filter(function (r) { return r.cells[0].textContent === 'docs_v2'; })[0].querySelector('button[data-action=backup]')";
    js(&b, &format!("{backup}.click(); return null")).await;
    assert!(b.client.get_alert_text().await.unwrap().contains("backup of “docs_v2”"));
    b.client.accept_alert().await.unwrap();
    let created = status_says(&b, " created.").await;
    until(&b, "the backup listed", "return document.querySelectorAll('#backups button[data-action=verify]').length >= 1").await;
    js(&b, "document.querySelector('#backups button[data-action=verify]').click(); return null").await;
    b.client.accept_alert().await.unwrap();
    let verified = status_says(&b, " verified: ").await;
    assert!(created.contains(verified.split(' ').nth(1).unwrap()) && created.contains("of docs_v2"), "{created} / {verified}");

    // The traffic chart draws from the server's own metrics.
    until(&b, "two metric samples", "return Number(document.body.dataset.samples || 0) >= 2").await;
    assert_ne!(js(&b, "return document.querySelector('#chart .rate').getAttribute('points')").await, "");
    let violations = accessibility_violations(&b).await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");
    js(&b, "document.activeElement.blur(); window.scrollTo(0, 0); return null").await;
    screenshot("console-desktop.png", &b.client.screenshot().await.unwrap());
    b.client.set_window_size(390, 844).await.unwrap();
    js(&b, "window.scrollTo(0, 0); return null").await;
    screenshot("console-phone.png", &b.client.screenshot().await.unwrap());
    b.close().await;
    server.stop().await;
}
