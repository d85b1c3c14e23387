//! A real HTTP documentation server on 127.0.0.1 for tests (feature `testkit`): serves a
//! directory with ETag / Last-Modified and conditional 304s, logs every request (path, host,
//! conditional or not, status), records the most requests it ever had in flight, and has
//! hostile routes under `/hostile/`: a redirect loop, a 50 MB body, an endless link maze,
//! malformed HTML, a binary body, redirects to a private and a loopback address, a 429 with
//! `Retry-After` before success. It can stand for a private site: [`DocServer::require`]
//! answers 401 to every request without the given headers, and [`DocServer::redirect`]
//! sends a path elsewhere (another origin, say). [`spa_site`] writes a single-page app whose
//! content exists only once its script has run.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the server saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub path: String,
    pub host: String,
    pub conditional: bool,
    pub status: u16,
    /// Every request header, by lowercase name.
    pub headers: Vec<(String, String)>,
}

#[derive(Clone)]
struct Shared {
    root: PathBuf,
    addr: SocketAddr,
    delay: Duration,
    log: Arc<Mutex<Vec<Hit>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    counters: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    required: Arc<Mutex<Vec<(String, String)>>>,
    redirects: Arc<Mutex<std::collections::HashMap<String, String>>>,
}

pub struct DocServer {
    pub addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DocServer {
    /// Serve `root` on a free 127.0.0.1 port; each response waits `delay` first (so
    /// concurrent requests overlap and a concurrency limit is observable).
    pub async fn start(root: PathBuf, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            root,
            addr,
            delay,
            log: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            counters: Arc::default(),
            required: Arc::default(),
            redirects: Arc::default(),
        };
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { addr, shared, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.shared.log.lock().unwrap().clear();
        self.shared.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// From now on every request needs header `name` with exactly `value` (else 401).
    pub fn require(&self, name: &str, value: &str) {
        self.shared.required.lock().unwrap().push((name.to_ascii_lowercase(), value.to_owned()));
    }

    /// From now on `path` answers 302 to `to`.
    pub fn redirect(&self, path: &str, to: &str) {
        self.shared.redirects.lock().unwrap().insert(path.to_owned(), to.to_owned());
    }

    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }
}

fn etag_of(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("\"{:016x}-{}\"", h.finish(), bytes.len())
}

const LAST_MODIFIED: &str = "Wed, 01 Jan 2025 00:00:00 GMT";

async fn handle(State(s): State<Shared>, req: Request) -> Response {
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(s.delay).await;
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let authorized = s.required.lock().unwrap().iter().all(|(k, v)| headers.get(k.as_str()).is_some_and(|got| got.as_bytes() == v.as_bytes()));
    let moved = s.redirects.lock().unwrap().get(&path).cloned();
    let resp = match (authorized, moved) {
        (false, _) => (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "credentials required").into_response(),
        (true, Some(to)) => redirect(&to),
        (true, None) => route(&s, &path, &headers).await,
    };
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
    let conditional = headers.contains_key(header::IF_NONE_MATCH) || headers.contains_key(header::IF_MODIFIED_SINCE);
    let all = headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    s.log.lock().unwrap().push(Hit { path, host, conditional, status: resp.status().as_u16(), headers: all });
    resp
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_owned())]).into_response()
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn route(s: &Shared, path: &str, headers: &HeaderMap) -> Response {
    if let Some(rest) = path.strip_prefix("/hostile/") {
        return match rest {
            "loop" => redirect("/hostile/loop2"),
            "loop2" => redirect("/hostile/loop"),
            "redirect-private" => redirect("http://10.0.0.1/docs/index.html"),
            "redirect-localhost" => redirect(&format!("http://localhost:{}/docs/index.html", s.addr.port())),
            "big" => {
                // 50 MB of HTML, streamed without a Content-Length.
                let chunk = bytes_of(b"<p>big page text</p>\n", 64 * 1024);
                let stream = futures::stream::iter((0..50 * 1024 * 1024 / (64 * 1024)).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
                ([(header::CONTENT_TYPE, "text/html")], Body::from_stream(stream)).into_response()
            }
            "malformed" => html("<html><head><title>Broken <b>page</head><body><h1>Malformed<p>text without <i>closing <a href='/hostile/maze/0'>tags".into()),
            "binary" => ([(header::CONTENT_TYPE, "application/octet-stream")], vec![0u8, 159, 146, 150, 255]).into_response(),
            "retry" => {
                let n = {
                    let mut c = s.counters.lock().unwrap();
                    let n = c.entry(path.to_owned()).or_default();
                    *n += 1;
                    *n
                };
                if n == 1 {
                    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "slow down").into_response()
                } else {
                    html("<html><head><title>Patience</title></head><body><h1>Patience</h1><p>Served after a 429.</p></body></html>".into())
                }
            }
            _ if rest.starts_with("maze/") => {
                let id = &rest["maze/".len()..];
                html(format!("<html><body><h1>Maze {id}</h1><p>Room {id} of an endless maze.</p><a href='/hostile/maze/{id}a'>a</a> <a href='/hostile/maze/{id}b'>b</a></body></html>"))
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let rel = path.trim_start_matches('/');
    if rel.split('/').any(|c| c == ".." || c.starts_with('.')) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut file = s.root.join(rel);
    if file.is_dir() {
        file = file.join("index.html");
    }
    // Content negotiation: a client that asks for Markdown first gets `page.md` for
    // `page.html` when there is one (as sites that offer Markdown to agents do).
    let markdown_first = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.trim_start().starts_with("text/markdown"));
    if markdown_first && file.extension().is_some_and(|e| e == "html") && file.with_extension("md").is_file() {
        file = file.with_extension("md");
    }
    let Ok(bytes) = std::fs::read(&file) else { return StatusCode::NOT_FOUND.into_response() };
    let etag = etag_of(&bytes);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let ctype = match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "json" => "application/json",
        "js" => "text/javascript",
        "yaml" | "yml" => "application/yaml",
        "gz" => "application/gzip",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    };
    ([(header::CONTENT_TYPE, ctype.to_owned()), (header::ETAG, etag), (header::LAST_MODIFIED, LAST_MODIFIED.to_owned())], bytes).into_response()
}

fn bytes_of(unit: &[u8], size: usize) -> Vec<u8> {
    unit.iter().copied().cycle().take(size).collect()
}

/// `root/app/`: an app shell whose script fetches the content (JSON) and builds the page,
/// with a link to a second page; it also tries to read `localhost`, which no allow-list
/// names, so the renderer's guard must stop it.
pub fn spa_site(root: &std::path::Path) {
    let app = root.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "<!doctype html><html><head><title>Flux docs</title><script src=\"app.js\"></script></head><body><div id=\"root\">Loading...</div></body></html>").unwrap();
    std::fs::write(
        app.join("app.js"),
        r#"document.addEventListener('DOMContentLoaded', function () {
  fetch('content.json').then(function (r) { return r.json(); }).then(function (c) {
    document.getElementById('root').innerHTML = '<h1 id="intro">' + c.title + '</h1><p>' + c.intro + '</p>' +
      '<h2 id="tuning">Tuning the flux capacitor</h2><p>' + c.answer + '</p><a href="guide.html">Guide</a>';
  });
  fetch('http://localhost:' + location.port + '/app/secret.json').then(function (r) { return r.text(); })
    .then(function (t) { document.body.insertAdjacentHTML('beforeend', '<p>' + t + '</p>'); }).catch(function () {});
});
"#,
    )
    .unwrap();
    std::fs::write(
        app.join("content.json"),
        r#"{"title": "Flux capacitor manual", "intro": "Everything about the capacitor.", "answer": "Set the gigawatt dial to 1.21 before you reach eighty-eight miles per hour."}"#,
    )
    .unwrap();
    std::fs::write(app.join("secret.json"), "\"the internal secret\"").unwrap();
    std::fs::write(app.join("guide.html"), "<html><head><title>Guide</title></head><body><h1>Guide</h1><p>A static guide page.</p></body></html>").unwrap();
}

/// Run `plan` to its end (at most `limit`) and collect every event with the stats.
pub async fn crawl_all(crawler: &crate::Crawler, plan: crate::CrawlPlan, limit: Duration) -> (Vec<crate::CrawlEvent>, crate::CrawlStats) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let collect = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Some(e) = rx.recv().await {
            out.push(e);
        }
        out
    });
    let stats = tokio::time::timeout(limit, crawler.run(plan, tx)).await.expect("the crawl finishes");
    (collect.await.expect("collecting events"), stats)
}

/// A headless Chromium session over WebDriver (the renderer's own driver start), for tests
/// that drive a page in a real browser. The browser and its driver end when it is dropped.
pub struct Browser {
    pub client: fantoccini::Client,
    _driver: crate::render::Driver,
}

impl Browser {
    /// A fresh browser with a window of `width` x `height` CSS pixels. Panics with what to
    /// install when Chromium or its driver is missing.
    pub async fn start(width: u32, height: u32) -> Self {
        let cfg = crate::RenderConfig::default();
        let (driver, port) = crate::render::start_driver(&cfg).await.expect("chromedriver starts (apt-get install chromium chromium-driver)");
        let args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions", "--hide-scrollbars", &format!("--window-size={width},{height}")];
        let caps = serde_json::json!({ "browserName": "chrome", "goog:chromeOptions": { "args": args } });
        let serde_json::Value::Object(caps) = caps else { unreachable!("an object literal") };
        let client = fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session");
        Self { client, _driver: driver }
    }

    /// End the session (the browser exits); the driver goes with `self`.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}
