//! Web ingestion end to end: a real HTTP doc server on 127.0.0.1, the real model and store.
//! First crawl writes every page; a re-crawl is all conditional and rewrites nothing; a
//! changed page alone is re-chunked; a removed page loses its chunks after the configured
//! misses; `sync` re-crawls registered sources; the API refuses bad requests.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::progress::NoProgress;
use aidocs::ingest::{WebIngestRequest, WebSource, WebSourceKind};
use aidocs::{Engine, SearchRequest};
use aidocs_crawl::testkit::DocServer;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;
use tower::ServiceExt;

fn page(title: &str, body: &str, links: &[&str]) -> String {
    let a: String = links.iter().map(|l| format!("<li><a href=\"{l}\">{l}</a></li>")).collect();
    format!("<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{body}</p><ul>{a}</ul></body></html>")
}

fn site(root: &Path) {
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let pages = [
        ("index.html", page("Guide", "Welcome to the guide.", &["install.html", "config.html", "tracing.html", "old.html"])),
        ("install.html", page("Install", "Install the server with cargo install aidocs.", &["index.html"])),
        ("config.html", page("Configuration", "Set the data directory with data_dir in the TOML file.", &[])),
        ("tracing.html", page("Tracing", "Enable request tracing to export spans over OTLP.", &[])),
        ("old.html", page("Old page", "Deprecated flags for the legacy importer.", &[])),
    ];
    for (name, html) in pages {
        std::fs::write(docs.join(name), html).unwrap();
    }
    std::fs::write(root.join("robots.txt"), "User-agent: *\nAllow: /\n").unwrap();
}

/// A test config that may crawl the local doc server at full speed.
fn web_config(dir: &Path) -> aidocs::Config {
    let mut cfg = common::config(dir);
    cfg.crawl.allow_hosts = vec!["127.0.0.1".into()];
    cfg.crawl.min_delay_ms = 0;
    cfg.crawl.remove_after_misses = 2;
    cfg
}

fn engine(dir: &Path) -> Engine {
    Engine::open(web_config(dir)).unwrap()
}

fn source(server: &DocServer) -> WebSource {
    WebSource {
        kind: WebSourceKind::Site,
        urls: vec![server.url("/docs/index.html")],
        scope: None,
        include: vec![],
        exclude: vec![],
        max_pages: None,
        max_depth: None,
        allow_hosts: vec![],
        metadata: Default::default(),
        render: Default::default(),
    }
}

async fn top_path(engine: &Engine, q: &str) -> String {
    let mut r = SearchRequest::new(q.to_owned());
    r.collection = Some("web".into());
    r.limit = Some(1);
    engine.search(r).await.unwrap().hits.first().map(|h| h.path.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_ingest_is_incremental_and_removes_gone_pages_after_misses() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    site(&root);
    let server = DocServer::start(root.clone(), Duration::ZERO).await;
    let engine = engine(&dir.path().join("data"));
    let req = || WebIngestRequest { collection: "web".into(), source: source(&server) };

    let first = engine.ingest().web(req(), &NoProgress).await.unwrap();
    assert_eq!((first.documents_written, first.web().unwrap().crawl.pages_fetched), (5, 5), "{first:?}");
    assert!(first.chunks_written >= 5);
    assert_eq!(top_path(&engine, "export spans over OTLP").await, "/docs/tracing.html");
    // Pages are dated by the server's Last-Modified, so `last_updated` filters work.
    let mut r = SearchRequest::new("export spans over OTLP");
    r.collection = Some("web".into());
    r.filter = aidocs::filters::from_pairs(&["last_updated<=2025-06-01T00:00:00Z".to_owned()]).unwrap();
    let hits = engine.search(r).await.unwrap().hits;
    assert_eq!(hits.first().and_then(|h| h.metadata.last_updated.clone()).as_deref(), Some("2025-01-01T00:00:00Z"), "{hits:?}");
    let info = engine.collections().get("web").await.unwrap();
    assert_eq!(info.points, first.chunks_written);

    // Nothing changed: every page request is conditional, nothing is rewritten.
    server.clear();
    let second = engine.ingest().web(req(), &NoProgress).await.unwrap();
    assert_eq!((second.chunks_written, second.documents_written, second.web().unwrap().crawl.not_modified), (0, 0, 5), "{second:?}");
    assert!(server.hits().iter().filter(|h| h.path.starts_with("/docs")).all(|h| h.conditional && h.status == 304), "{:?}", server.hits());

    // One page changes: only it is re-chunked.
    std::fs::write(root.join("docs/config.html"), page("Configuration", "Set the data directory with data_dir, and the bind address with server.bind.", &[])).unwrap();
    let third = engine.ingest().web(req(), &NoProgress).await.unwrap();
    assert_eq!((third.documents_written, third.documents_unchanged), (1, 4), "{third:?}");
    assert_eq!(top_path(&engine, "bind address server.bind").await, "/docs/config.html");

    // One page is removed (and unlinked): it answers 404; its chunks go on the 2nd miss.
    std::fs::remove_file(root.join("docs/old.html")).unwrap();
    std::fs::write(root.join("docs/index.html"), page("Guide", "Welcome to the guide.", &["install.html", "config.html", "tracing.html"])).unwrap();
    let fourth = engine.ingest().web(req(), &NoProgress).await.unwrap();
    assert_eq!((fourth.web().unwrap().documents_missing, fourth.documents_deleted), (1, 0), "{fourth:?}");
    assert_eq!(top_path(&engine, "legacy importer deprecated flags").await, "/docs/old.html", "kept after one miss");
    let reports = engine.ingest().sync("web", &NoProgress).await.unwrap();
    assert_eq!(reports.len(), 1, "one registered source");
    assert_eq!((reports[0].documents_deleted, reports[0].points_deleted), (1, 1), "{:?}", reports[0]);
    assert_ne!(top_path(&engine, "legacy importer deprecated flags").await, "/docs/old.html", "gone after the second miss");
    assert_eq!(engine.ingest().web_sources("web").unwrap().len(), 1);
    // The library says when its sources were last crawled; a directory-only one does not.
    let synced = engine.ingest().last_crawled("web").unwrap().expect("crawled");
    assert!(chrono::DateTime::parse_from_rfc3339(&synced).is_ok(), "{synced}");
    let docs = dir.path().join("dir-docs");
    common::write_tree(&docs, &[("a.md", "# A\n\nText.\n")]);
    let req = aidocs::IngestRequest { path: docs, collection: "local".into(), metadata: Default::default(), base_url: None };
    engine.ingest().directory(req, &NoProgress).await.unwrap();
    let libs = engine.libraries().await.unwrap();
    let lib = |n: &str| libs.iter().find(|l| l.name == n).unwrap().clone();
    assert_eq!(lib("web").last_synced.as_deref(), Some(synced.as_str()));
    assert_eq!(lib("local").last_synced, None);
}

/// A PDF linked from a site is read by page (a real Debian manual, served as
/// `application/pdf`): its hit links to `/docs/libtasn1.pdf#page=10`; a re-crawl is
/// conditional and writes nothing; damaged on the server, the next crawl names it, writes
/// and deletes nothing, and the hit stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdfs_on_a_site_are_read_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("index.html"), page("Manuals", "The ASN.1 library manual is a PDF.", &["libtasn1.pdf"])).unwrap();
    let pdf = std::fs::read("/usr/share/doc/libtasn1-doc/libtasn1.pdf").expect("libtasn1-doc is installed");
    std::fs::write(docs.join("libtasn1.pdf"), &pdf).unwrap();
    let server = DocServer::start(root.clone(), Duration::ZERO).await;
    let engine = engine(&dir.path().join("data"));
    let req = || WebIngestRequest { collection: "web".into(), source: source(&server) };
    let q = "turn a binary DER file back into a readable structure from the shell";
    let hit = || {
        let engine = engine.clone();
        let mut r = SearchRequest::new(q);
        r.collection = Some("web".into());
        r.limit = Some(5);
        async move { engine.search(r).await.unwrap().hits.into_iter().find(|h| h.path == "/docs/libtasn1.pdf" && h.anchor == "page=10") }
    };

    let first = engine.ingest().web(req(), &NoProgress).await.unwrap();
    assert_eq!((first.documents_written, first.web().unwrap().crawl.pages_fetched), (2, 2), "{first:?}");
    let h = hit().await.expect("the page that holds the answer");
    assert!(h.url.ends_with("/docs/libtasn1.pdf#page=10"), "{h:?}");
    assert!(h.heading_path.iter().any(|p| p.contains("Invoking asn1Decoding")), "{h:?}");

    let again = engine.ingest().web(req(), &NoProgress).await.unwrap();
    assert_eq!((again.documents_written, again.web().unwrap().crawl.not_modified), (0, 2), "{again:?}");

    std::fs::write(docs.join("libtasn1.pdf"), &pdf[..pdf.len() / 3]).unwrap();
    let damaged = engine.ingest().web(req(), &NoProgress).await.unwrap();
    assert_eq!((damaged.documents_written, damaged.documents_deleted), (0, 0), "{damaged:?}");
    let notes = format!("{:?}", damaged.web().unwrap());
    assert!(notes.contains("libtasn1.pdf") && notes.contains("not a readable PDF"), "{notes}");
    assert!(hit().await.is_some(), "the indexed pages stay");
    // Mended on the server: fetched whole again (its old validators were kept), unchanged.
    std::fs::write(docs.join("libtasn1.pdf"), &pdf).unwrap();
    let mended = engine.ingest().web(req(), &NoProgress).await.unwrap();
    assert_eq!((mended.documents_written, mended.documents_unchanged), (0, 2), "{mended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_api_crawls_and_refuses_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    site(&root);
    let server = DocServer::start(root, Duration::ZERO).await;
    let app = aidocs_http::router(engine(&dir.path().join("data")));
    let post = |body: serde_json::Value| Request::post("/v1/documents").header("content-type", "application/json").body(Body::from(body.to_string())).unwrap();
    let call = |req: Request<Body>| {
        let app = app.clone();
        async move {
            let r = app.oneshot(req).await.unwrap();
            let s = r.status().as_u16();
            (s, serde_json::from_slice::<serde_json::Value>(&r.into_body().collect().await.unwrap().to_bytes()).unwrap())
        }
    };

    let (status, v) = call(post(serde_json::json!({"urls": [server.url("/docs/install.html"), server.url("/docs/tracing.html")], "collection": "web"}))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["documents_written"], 2, "{v}");
    let (status, v) = call(post(serde_json::json!({"url": "ftp://example.com/docs", "collection": "web"}))).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("ftp://example.com/docs"), "{v}");
    let (status, v) = call(post(serde_json::json!({"url": server.url("/docs/"), "path": "/tmp", "collection": "web"}))).await;
    assert_eq!(status, 400, "{v}");
    // Internal addresses stay blocked for API callers (no allow-list from a request).
    let (status, v) = call(post(serde_json::json!({"urls": ["http://169.254.169.254/latest/meta-data/"], "collection": "web"}))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["crawl"]["blocked"], 1, "{v}");
    assert!(v["blocked"][0]["reason"].as_str().unwrap().contains("link-local"), "{v}");

    // Re-crawl through the API: both registered sources, the page list conditionally.
    let sync = Request::post("/v1/admin/sync").header("content-type", "application/json").body(Body::from(r#"{"collection": "web"}"#)).unwrap();
    let (status, v) = call(sync).await;
    assert_eq!(status, 200, "{v}");
    let reports = v["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2, "{v}");
    assert_eq!(reports[0]["crawl"]["not_modified"], 2, "{v}");
    let (status, v) = call(Request::post("/v1/admin/sync").header("content-type", "application/json").body(Body::from(r#"{"collection": "ghost"}"#)).unwrap()).await;
    assert_eq!((status, v["error"]["code"].as_str()), (404, Some("collection_not_found")), "{v}");
}

/// Web ingest ends like directory ingest: what it changed is optimized (it never was), and
/// an unchanged re-crawl does not optimize again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ingest_optimizes_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    site(&root);
    let server = DocServer::start(root.clone(), Duration::ZERO).await;
    let engine = engine(&dir.path().join("data"));
    let store = std::sync::Arc::new(aidocs_store::testkit::FaultyStore::new(
        engine.store().clone(),
    ));
    let engine = engine.with_store(store.clone());
    let req = || WebIngestRequest {
        collection: "web".into(),
        source: source(&server),
    };
    let first = engine.ingest().web(req(), &NoProgress).await.unwrap();
    assert!(first.chunks_written > 0);
    assert_eq!(store.faults.optimize_calls(), 1, "optimized after writing");
    let again = engine.ingest().web(req(), &NoProgress).await.unwrap();
    assert_eq!(again.chunks_written, 0);
    assert_eq!(
        store.faults.optimize_calls(),
        1,
        "nothing changed, nothing optimized"
    );
}

/// A `[[sources]]` entry is re-crawled on its schedule by the server: the first run writes
/// every page, a page changed at the source is rewritten by a later run, and
/// `GET /v1/admin/sources` shows the newest run and the next; a source that cannot run
/// shows its error and its failures in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_sources_stay_fresh_and_report_their_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    site(&root);
    let server = DocServer::start(root.clone(), Duration::ZERO).await;
    let mut cfg = web_config(&dir.path().join("data"));
    let entry = |name: &str, scope: Option<&str>| aidocs::config::SourceSettings {
        scope: scope.map(str::to_owned),
        ..source_entry(name, "web", aidocs::config::SourceKind::Site, &server.url("/docs/index.html"), "every 1s")
    };
    cfg.sources = vec![entry("guide", None), entry("broken", Some("not a url"))];
    cfg.validate().unwrap();
    let engine = Engine::open(cfg).unwrap();
    let schedules = tokio::spawn(engine.sources().run_schedules());
    let app = aidocs_http::router(engine.clone());
    let v = wait_for(&app, "the first crawl", |v| v["sources"][0]["last_run"]["state"] == "done").await;
    let guide = &v["sources"][0];
    assert_eq!(guide["name"], "guide");
    assert_eq!((guide["last_run"]["pages_seen"].as_u64(), guide["last_run"]["pages_changed"].as_u64()), (Some(5), Some(5)), "{guide}");
    assert!(guide["next_run"].is_string() && guide["failures_in_a_row"] == 0, "{guide}");
    assert_eq!(top_path(&engine, "how do I export spans").await, "/docs/tracing.html");

    // Changed at the source: a later run rewrites that page alone.
    std::fs::write(root.join("docs/tracing.html"), page("Tracing", "Spans now go to the flight recorder file.", &[])).unwrap();
    wait_for(&app, "a run that saw the change", |v| v["sources"][0]["last_run"]["state"] == "done" && v["sources"][0]["last_run"]["pages_changed"] == 1).await;
    assert_eq!(top_path(&engine, "flight recorder file").await, "/docs/tracing.html");

    // The broken source fails every run, says why, and counts its failures.
    let v = wait_for(&app, "two failed runs", |v| v["sources"][1]["failures_in_a_row"].as_u64() >= Some(2)).await;
    let broken = &v["sources"][1];
    assert_eq!(broken["last_run"]["state"], "failed", "{broken}");
    assert!(broken["last_error"].as_str().unwrap().contains("not a URL"), "{broken}");
    // Stopped (and its engine dropped) before the data dir goes.
    schedules.abort();
    let _ = schedules.await;
}

/// A `[[sources]]` entry with nothing but its name, collection, kind, one URL and schedule.
fn source_entry(name: &str, collection: &str, kind: aidocs::config::SourceKind, url: &str, schedule: &str) -> aidocs::config::SourceSettings {
    aidocs::config::SourceSettings::new(name, collection, kind, vec![url.to_owned()], schedule)
}

async fn sources_status(app: &axum::Router) -> serde_json::Value {
    let resp = app.clone().oneshot(Request::get("/v1/admin/sources").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

/// Poll `GET /v1/admin/sources` until `done` holds (at most 15 s).
async fn wait_for(app: &axum::Router, what: &str, done: fn(&serde_json::Value) -> bool) -> serde_json::Value {
    for _ in 0..300 {
        let v = sources_status(app).await;
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: never happened: {}", sources_status(app).await);
}

#[derive(Clone, Default)]
struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A private site: a `[[sources]]` entry with credentials (a bearer token, an extra header
/// and a cookie) crawls what a plain crawl of the same site cannot (401 everywhere), and
/// `sync` of its collection uses them too. They go to the source's own origin only: a page
/// that redirects to another origin is refused with a reason, and that origin never sees a
/// request. The secrets appear in no log line (captured at TRACE, every target, the HTTP
/// client's included), no metric and no API answer.
#[tokio::test(flavor = "current_thread")]
async fn private_sources_are_crawled_with_credentials_that_never_leave_their_origin() {
    const TOKEN: &str = "tok-3c1f9a7e55";
    const KEY: &str = "key-8d2b40c1";
    const COOKIE: &str = "ck-51e0aa93";
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().json().with_env_filter("trace").with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    site(&root);
    let links = ["install.html", "config.html", "tracing.html", "old.html", "moved.html"];
    std::fs::write(root.join("docs/index.html"), page("Guide", "Welcome to the private guide.", &links)).unwrap();
    let private = DocServer::start(root.clone(), Duration::ZERO).await;
    let elsewhere = DocServer::start(root.clone(), Duration::ZERO).await;
    private.require("authorization", &format!("Bearer {TOKEN}"));
    private.require("x-api-key", KEY);
    private.require("cookie", &format!("session={COOKIE}"));
    private.redirect("/docs/moved.html", &elsewhere.url("/docs/install.html"));

    // Without credentials: 401 for everything, nothing written.
    let plain = engine(&dir.path().join("plain"));
    let r = plain.ingest().web(WebIngestRequest { collection: "web".into(), source: source(&private) }, &NoProgress).await;
    assert!(r.as_ref().map_or(true, |r| r.documents_written == 0), "{r:?}");
    assert!(!private.hits().is_empty() && private.hits().iter().all(|h| h.status == 401), "{:?}", private.hits());
    private.clear();

    let mut cfg = web_config(&dir.path().join("data"));
    let auth = aidocs::config::SourceAuth {
        bearer: Some(TOKEN.into()),
        headers: [("X-Api-Key".to_owned(), KEY.to_owned())].into(),
        cookies: [("session".to_owned(), COOKIE.to_owned())].into(),
        basic: None,
    };
    cfg.sources = vec![aidocs::config::SourceSettings { auth: Some(auth), ..source_entry("private", "web", aidocs::config::SourceKind::Site, &private.url("/docs/index.html"), "every 1h") }];
    cfg.validate().unwrap();
    let engine = Engine::open(cfg).unwrap();
    // A crawl of the source's URLs into its collection uses them: every page but the one
    // that redirects off the origin, which is refused and said why.
    let first = engine.ingest().web(WebIngestRequest { collection: "web".into(), source: source(&private) }, &NoProgress).await.unwrap();
    assert_eq!(first.documents_written, 5, "{first:?}");
    let web = first.web().unwrap();
    let moved = web.failed.iter().find(|n| n.url.ends_with("/docs/moved.html")).unwrap_or_else(|| panic!("{web:?}"));
    assert!(moved.reason.contains("another origin"), "{moved:?}");
    assert!(elsewhere.hits().is_empty(), "another origin saw requests: {:?}", elsewhere.hits());
    assert_eq!(top_path(&engine, "export spans over OTLP").await, "/docs/tracing.html");
    // `sync` of the collection and the scheduled run find them by the source's URLs: all
    // conditional requests, none refused.
    let reports = engine.ingest().sync("web", &NoProgress).await.unwrap();
    assert_eq!(reports[0].web().unwrap().crawl.not_modified, 5, "{:?}", reports[0]);
    let run = engine.sources().crawl(&engine.config().sources[0]).await.unwrap();
    assert_eq!(run.counts["pages_seen"], 5, "{}", run.text);
    assert!(private.hits().iter().all(|h| h.status != 401), "{:?}", private.hits());
    // Into another collection, the same URLs get no credentials.
    let other = engine.ingest().web(WebIngestRequest { collection: "elsewhere".into(), source: source(&private) }, &NoProgress).await;
    assert!(other.as_ref().map_or(true, |r| r.documents_written == 0), "{other:?}");
    assert!(private.hits().iter().any(|h| h.status == 401));

    // The secrets are nowhere to be read.
    let app = aidocs_http::router(engine.clone());
    let mut shown = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(shown.contains("moved.html"), "the capture holds the crawl's logs");
    for path in ["/v1/admin/sources", "/health/detailed", "/v1/collections", "/metrics"] {
        let resp = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        shown.push_str(&String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()));
    }
    shown.push_str(&engine.metrics().encode().unwrap());
    shown.push_str(&format!("{:?} {}", engine.config(), engine.config().redacted()));
    for secret in [TOKEN, KEY, COOKIE] {
        assert!(!shown.contains(secret), "`{secret}` is shown");
    }
    let status = sources_status(&app).await;
    assert_eq!(status["sources"][0]["auth"], serde_json::json!(["bearer", "header:X-Api-Key", "cookie:session"]));
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Docs", "-c", "user.email=docs@example.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A Git repository as a scheduled source (a real repository, served by the real `git`
/// over `file://`): the first run clones the branch and ingests the files under `path`; a
/// commit that changes one file and deletes another rewrites the one and removes the other;
/// a symbolic link to a file outside the repository is never ingested; a `path` that
/// leaves the repository and a branch that does not exist fail with errors that say so.
/// The status shows the runs like a web source's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_sources_follow_their_branch() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("docs/guide")).unwrap();
    std::fs::write(dir.path().join("outside.md"), "# Server secret\n\nThe flux capacitor key is 88mph.\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "# Repo\n\nNot under docs.\n").unwrap();
    std::fs::write(repo.join("docs/install.md"), "# Install\n\nRun the installer with the quantum flag.\n").unwrap();
    std::fs::write(repo.join("docs/guide/tuning.md"), "# Tuning\n\nRaise the sparrow buffer for large trees.\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.md"), repo.join("docs/leak.md")).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "docs"]);

    let mut cfg = web_config(&dir.path().join("data"));
    let entry = |name: &str, branch: &str, path: &str| aidocs::config::SourceSettings {
        branch: Some(branch.into()),
        path: Some(path.into()),
        base_url: Some("https://git.example/repo/blob/main/docs".into()),
        ..source_entry(name, "repo", aidocs::config::SourceKind::Git, &format!("file://{}", repo.display()), "every 1h")
    };
    cfg.sources = vec![entry("docs", "main", "docs"), entry("escape", "main", "docs/../.."), entry("nobranch", "nope", "docs")];
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("sources[1] (`escape`)") && err.contains("`path`"), "{err}");
    cfg.sources.remove(1);
    cfg.validate().unwrap();
    let engine = Engine::open(cfg).unwrap();
    let sources = engine.sources();
    let first = sources.crawl(&engine.config().sources[0]).await.unwrap();
    assert_eq!((first.counts["pages_changed"], first.counts["pages_removed"]), (2, 0), "{}", first.text);
    assert!(first.text.contains("at main "), "{}", first.text);
    let top = |q: &str| {
        let engine = engine.clone();
        let q = q.to_owned();
        async move {
            let mut r = SearchRequest::new(q);
            r.collection = Some("repo".into());
            r.limit = Some(5);
            engine.search(r).await.unwrap().hits
        }
    };
    let hits = top("quantum flag installer").await;
    assert!(hits[0].url.starts_with("https://git.example/repo/blob/main/docs/install.md"), "{hits:?}");
    assert!(top("flux capacitor key").await.iter().all(|h| !h.snippet.contains("88mph")), "a symlink out of the repository is not followed");
    assert!(top("not under docs").await.iter().all(|h| !h.path.ends_with("README.md")), "only `path` is ingested");

    // A commit: one file changed, one deleted.
    std::fs::write(repo.join("docs/install.md"), "# Install\n\nRun the installer with the photon switch.\n").unwrap();
    std::fs::remove_file(repo.join("docs/guide/tuning.md")).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "rewrite"]);
    let second = sources.crawl(&engine.config().sources[0]).await.unwrap();
    assert_eq!((second.counts["pages_changed"], second.counts["pages_removed"]), (1, 1), "{}", second.text);
    assert!(top("photon switch").await[0].snippet.contains("photon"));
    assert!(top("sparrow buffer").await.iter().all(|h| !h.snippet.contains("sparrow")));
    // Nothing new: nothing written.
    let third = sources.crawl(&engine.config().sources[0]).await.unwrap();
    assert_eq!((third.counts["pages_changed"], third.counts["pages_removed"]), (0, 0), "{}", third.text);

    // A branch that does not exist: an error naming git's complaint.
    let err = sources.crawl(&engine.config().sources[1]).await.unwrap_err().to_string();
    assert!(err.contains("git clone") && err.contains("nope"), "{err}");
}

/// A JavaScript-built site through the API: `render: "chromium"` indexes what the app's
/// script built (the served page is an empty shell), anchored at its sections. The source
/// is remembered with its renderer, so `sync` renders again: unchanged content writes
/// nothing, changed content (only the JSON the script loads) is rewritten. `render` on a
/// path, or an unknown renderer, is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_site_is_indexed_when_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    aidocs_crawl::testkit::spa_site(&root);
    let server = DocServer::start(root.clone(), Duration::ZERO).await;
    let engine = engine(&dir.path().join("data"));
    let app = aidocs_http::router(engine.clone());
    let call = |path: &str, body: serde_json::Value| {
        let (app, req) = (app.clone(), Request::post(path).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap());
        async move {
            let r = app.oneshot(req).await.unwrap();
            let s = r.status().as_u16();
            (s, serde_json::from_slice::<serde_json::Value>(&r.into_body().collect().await.unwrap().to_bytes()).unwrap())
        }
    };
    let url = server.url("/app/index.html");
    let (status, v) = call("/v1/documents", serde_json::json!({"url": url, "collection": "web", "render": "chromium"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["documents_written"].as_u64(), v["crawl"]["rendered"].as_u64()), (Some(2), Some(2)), "{v}");
    let mut r = SearchRequest::new("what must the power dial read before the car reaches 88 mph".to_owned());
    r.collection = Some("web".into());
    let hits = engine.search(r.clone()).await.unwrap().hits;
    assert_eq!((hits[0].path.as_str(), hits[0].anchor.as_str()), ("/app/", "tuning"), "{hits:?}");
    assert!(hits[0].snippet.contains("gigawatt"), "{hits:?}");

    let sync = || call("/v1/admin/sync", serde_json::json!({"collection": "web"}));
    let (status, v) = sync().await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["reports"][0]["documents_written"].as_u64(), v["reports"][0]["crawl"]["rendered"].as_u64()), (Some(0), Some(2)), "{v}");
    let json = std::fs::read_to_string(root.join("app/content.json")).unwrap().replace("1.21", "2.42");
    std::fs::write(root.join("app/content.json"), json).unwrap();
    let (_, v) = sync().await;
    assert_eq!(v["reports"][0]["documents_written"], 1, "only the app page changed: {v}");
    let hits = engine.search(r).await.unwrap().hits;
    assert!(hits[0].snippet.contains("2.42"), "{hits:?}");

    let (status, v) = call("/v1/documents", serde_json::json!({"path": root, "collection": "web", "render": "chromium"})).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("`render` is for web sources"), "{v}");
    let (status, v) = call("/v1/documents", serde_json::json!({"url": url, "collection": "web", "render": "firefox"})).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("firefox"), "{v}");
}

/// Git's smart HTTP protocol on 127.0.0.1, answered by the real `git http-backend` (CGI)
/// for every repository under `root`. `/moved/...` answers a redirect to the same path on
/// `localhost` (another host, internal); with a token, a request without
/// `Authorization: Bearer <token>` is a 401. Each request's `Host` and `Authorization` are
/// kept, in order.
struct GitHttp {
    base: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn git_http(root: std::path::PathBuf, token: Option<&str>) -> GitHttp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (log, token) = (seen.clone(), token.map(str::to_owned));
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (root, log, token) = (root.clone(), log.clone(), token.clone());
        async move { git_cgi(req, root, port, log, token).await }
    });
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    GitHttp { base: format!("http://127.0.0.1:{port}"), seen, task }
}

async fn git_cgi(
    req: axum::extract::Request,
    root: std::path::PathBuf,
    port: u16,
    log: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    token: Option<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let auth = header("authorization");
    log.lock().unwrap().push((header("host"), auth.clone()));
    let (path, query) = (parts.uri.path().to_owned(), parts.uri.query().unwrap_or("").to_owned());
    if let Some(rest) = path.strip_prefix("/moved") {
        return (axum::http::StatusCode::FOUND, [("location", format!("http://localhost:{port}{rest}?{query}"))]).into_response();
    }
    if let Some(t) = token
        && auth != format!("Bearer {t}")
    {
        return (axum::http::StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer realm=\"git\"")]).into_response();
    }
    let (method, ctype, encoding, protocol) = (parts.method.to_string(), header("content-type"), header("content-encoding"), header("git-protocol"));
    let body = body.collect().await.unwrap().to_bytes();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = std::process::Command::new("git")
            .arg("http-backend")
            .env("GIT_PROJECT_ROOT", &root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", &path)
            .env("QUERY_STRING", &query)
            .env("REQUEST_METHOD", &method)
            .env("CONTENT_TYPE", &ctype)
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("HTTP_CONTENT_ENCODING", &encoding)
            .env("HTTP_GIT_PROTOCOL", &protocol)
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("git http-backend runs");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let out = child.wait_with_output().unwrap().stdout;
        writer.join().unwrap();
        out
    })
    .await
    .unwrap();
    // CGI: headers (a `Status:` among them), a blank line, the body.
    let (end, gap) = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4)).or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2))).expect("CGI headers");
    let mut resp = axum::response::Response::builder();
    let mut status = 200;
    for line in String::from_utf8_lossy(&out[..end]).lines() {
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("status") {
                status = v.trim()[..3].parse().unwrap();
            } else {
                resp = resp.header(k.trim(), v.trim());
            }
        }
    }
    resp.status(status).body(Body::from(out[end + gap..].to_vec())).unwrap()
}

/// A bare copy of `repo` served as `<served>/<name>`.
fn serve_bare(repo: &Path, served: &Path, name: &str) {
    std::fs::create_dir_all(served).unwrap();
    git(served, &["clone", "-q", "--bare", repo.to_str().unwrap(), name]);
}

/// `POST /v1/documents` with `body`: the status and the JSON answer.
async fn post_documents(app: axum::Router, body: serde_json::Value) -> (u16, serde_json::Value) {
    let req = Request::post("/v1/documents").header("content-type", "application/json").body(Body::from(body.to_string())).unwrap();
    let r = app.oneshot(req).await.unwrap();
    let s = r.status().as_u16();
    (s, serde_json::from_slice::<serde_json::Value>(&r.into_body().collect().await.unwrap().to_bytes()).unwrap())
}

/// A repository with docs at two tagged versions (the newer one on `main`).
fn versioned_repo(repo: &Path) {
    std::fs::create_dir_all(repo.join("docs")).unwrap();
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("docs/install.md"), "# Install\n\nRun the installer with the quantum flag.\n").unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "one"]);
    git(repo, &["tag", "v1.0.0"]);
    std::fs::write(repo.join("docs/install.md"), "# Install\n\nRun the installer with the photon switch.\n").unwrap();
    git(repo, &["commit", "-q", "-am", "two"]);
    git(repo, &["tag", "v2.0.0"]);
}

/// A Git repository through `POST /v1/documents {"git"}`: over git's smart HTTP protocol
/// (the real `git http-backend`) from an allow-listed host, at a ref, at every tag as its
/// version, and from a path under `ingest.allowed_roots`; a second request writes nothing.
/// What a client may not make the server reach is refused and named: an internal host the
/// config does not allow, a redirect to another host (never followed), other transports,
/// credentials in the URL, a path outside the allowed roots, `render`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_repositories_through_the_api_reach_only_what_the_guard_allows() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    versioned_repo(&repo);
    let served = dir.path().join("served");
    serve_bare(&repo, &served, "repo.git");
    let server = git_http(served, None).await;
    let engine = engine(&dir.path().join("data"));
    let app = aidocs_http::router(engine.clone());
    let call = |body: serde_json::Value| post_documents(app.clone(), body);
    let top = |q: &str, version: Option<&str>| {
        let engine = engine.clone();
        let mut r = SearchRequest::new(q.to_owned());
        r.collection = Some("lib".into());
        r.limit = Some(3);
        if let Some(v) = version {
            r.filter = aidocs::filters::from_pairs(&[format!("version={v}")]).unwrap();
        }
        async move { engine.search(r).await.unwrap().hits }
    };
    let url = format!("{}/repo.git", server.base);

    let (status, v) = call(serde_json::json!({"git": {"url": url, "path": "docs"}, "collection": "lib"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["reports"][0]["ref"].as_str(), v["reports"][0]["report"]["documents_written"].as_u64()), (Some("main"), Some(1)), "{v}");
    assert!(top("photon switch", None).await[0].snippet.contains("photon"));
    let (_, v) = call(serde_json::json!({"git": {"url": url, "path": "docs"}, "collection": "lib"})).await;
    assert_eq!(v["reports"][0]["report"]["documents_written"], 0, "unchanged: {v}");

    let (status, v) = call(serde_json::json!({"git": {"url": url, "path": "docs", "versions_from_tags": "v*"}, "collection": "lib"})).await;
    assert_eq!(status, 200, "{v}");
    let refs: Vec<&str> = v["reports"].as_array().unwrap().iter().filter_map(|r| r["ref"].as_str()).collect();
    assert_eq!(refs, ["v2.0.0", "v1.0.0"], "{v}");
    let old = top("how do I run the installer", Some("1.0.0")).await;
    assert!(old[0].snippet.contains("quantum") && old[0].metadata.version.as_deref() == Some("1.0.0"), "{old:?}");

    // A repository on the server's machine, under ingest.allowed_roots (the temp dir).
    let (status, v) = call(serde_json::json!({"git": {"url": format!("file://{}", repo.display()), "ref": "v1.0.0"}, "collection": "local"})).await;
    assert_eq!((status, v["reports"][0]["ref"].as_str()), (200, Some("v1.0.0")), "{v}");

    let refused = [
        (serde_json::json!({"git": {"url": url.replace("127.0.0.1", "localhost")}}), 400, "not fetched by git"),
        (serde_json::json!({"git": {"url": format!("{}/moved/repo.git", server.base)}}), 503, "git clone"),
        (serde_json::json!({"git": {"url": "ssh://git@127.0.0.1/repo.git"}}), 400, "`ssh:` is not taken"),
        (serde_json::json!({"git": {"url": "ext::sh -c touch /tmp/pwned"}}), 400, "ext"),
        (serde_json::json!({"git": {"url": url.replace("http://", "http://ci:pw@")}}), 400, "cannot carry credentials"),
        (serde_json::json!({"git": {"url": "file:///etc"}}), 403, "allowed_roots"),
        (serde_json::json!({"git": {"url": url, "ref": "--upload-pack=touch /tmp/pwned"}}), 400, "`ref`"),
        (serde_json::json!({"git": {"url": url}, "render": "chromium"}), 400, "not a `path` or `git`"),
        (serde_json::json!({"git": {"url": url}, "url": url}), 400, "exactly one of"),
        (serde_json::json!({"git": {"url": url, "branch": "main"}}), 400, "branch"),
    ];
    for (body, want, says) in refused {
        let (status, v) = call(body.clone()).await;
        assert_eq!(status, want, "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap_or("").contains(says) || v.to_string().contains(says), "{body}: {v}");
    }
    assert!(!std::path::Path::new("/tmp/pwned").exists());
    let hosts: Vec<String> = server.seen.lock().unwrap().iter().map(|(h, _)| h.clone()).collect();
    assert!(hosts.iter().all(|h| h.starts_with("127.0.0.1:")), "the redirect to localhost was not followed: {hosts:?}");
}

/// A branch `big` of `repo` with a file of `bytes` that does not compress.
fn big_branch(repo: &Path, bytes: usize) {
    git(repo, &["checkout", "-q", "-b", "big"]);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(repo.join("docs/blob.bin"), noise).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "big"]);
    git(repo, &["checkout", "-q", "main"]);
}

const CLONE_CHILD: &str = "AIDOCS_TEST_CLONE_CHILD";

/// The operator's Git source `killed`: `docs/` of `branch` of the repository at `repo`.
fn operator_git(repo: &Path, branch: &str) -> aidocs::ingest::git::GitIngestRequest {
    aidocs::ingest::git::GitIngestRequest {
        name: "killed".into(),
        collection: "lib".into(),
        url: format!("file://{}", repo.display()),
        branch: Some(branch.into()),
        path: Some("docs".into()),
        base_url: None,
        metadata: Default::default(),
        versions_from_tags: None,
        remote: aidocs::ingest::git::Remote::Operator,
        credentials: None,
    }
}

/// The child half of `kill_9_during_a_clone_leaves_no_clone_after_a_restart`: runs only
/// when the parent re-executes this test binary with `CLONE_CHILD` set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_git_clone_to_be_killed() {
    let Ok(dir) = std::env::var(CLONE_CHILD) else { return };
    let dir = Path::new(&dir);
    let engine = Engine::open(web_config(&dir.join("data"))).unwrap();
    let _ = engine.ingest().git(operator_git(&dir.join("repo"), "big"), &NoProgress).await;
    panic!("the parent should have killed this run while git was cloning");
}

/// `kill -9` while git clones: the clone's directory (`sources/.clone-<id>`) is left behind
/// by the killed process, and the next start removes it (its lock died with the process);
/// the source then clones and ingests as usual.
#[test]
fn kill_9_during_a_clone_leaves_no_clone_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    versioned_repo(&repo);
    big_branch(&repo, 64 << 20);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_git_clone_to_be_killed", "--nocapture", "--test-threads=1"])
        .env(CLONE_CHILD, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let sources = dir.path().join("data/sources");
    let clones = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&sources).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".clone-")).collect()).unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let clone = loop {
        assert!(std::time::Instant::now() < deadline, "git never started cloning");
        assert!(child.try_wait().unwrap().is_none(), "the child exited before it was killed");
        if let Some(c) = clones().into_iter().find(|c| c.join(".git").exists()) {
            break c;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // The whole process group, git included, as a container runtime or systemd kills a
    // service.
    let killed = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status().unwrap();
    assert!(killed.success());
    child.wait().unwrap();
    assert!(clone.exists(), "the killed run left its clone behind");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine = Engine::open(web_config(&dir.path().join("data"))).unwrap();
        assert!(clones().is_empty(), "the restart removed the abandoned clone: {:?}", clones());
        let run = engine.ingest().git(operator_git(&repo, "main"), &NoProgress).await.unwrap();
        assert_eq!(run.report.documents_written, 1, "{run:?}");
        assert!(sources.join("killed/.git").is_dir());
        assert!(clones().is_empty(), "{:?}", clones());
    });
}

/// A repository bigger than `ingest.max_git_checkout_mb`: git is stopped while it fetches,
/// the checkout removed, the answer a 413 naming the limit, and what was indexed stays.
/// Requests for one repository at once (three refs, one checkout) take turns and all land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_checkouts_are_capped_in_size_and_taken_in_turns() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    versioned_repo(&repo);
    big_branch(&repo, 3 << 20);
    let served = dir.path().join("served");
    serve_bare(&repo, &served, "repo.git");
    let server = git_http(served, None).await;
    let data = dir.path().join("data");
    let mut cfg = web_config(&data);
    cfg.ingest.max_git_checkout_mb = 1;
    let engine = Engine::open(cfg).unwrap();
    let app = aidocs_http::router(engine.clone());
    let call = |body: serde_json::Value| post_documents(app.clone(), body);
    let top = |collection: &'static str| {
        let engine = engine.clone();
        let mut r = SearchRequest::new("how do I run the installer".to_owned());
        r.collection = Some(collection.into());
        r.limit = Some(1);
        async move { engine.search(r).await.unwrap().hits.first().map(|h| h.snippet.clone()).unwrap_or_default() }
    };
    let url = format!("{}/repo.git", server.base);
    let checkouts = || -> Vec<String> { std::fs::read_dir(data.join("sources")).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default() };

    let (status, v) = call(serde_json::json!({"git": {"url": url, "path": "docs"}, "collection": "lib"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(checkouts().len(), 1, "{:?}", checkouts());
    let (status, v) = call(serde_json::json!({"git": {"url": url, "ref": "big", "path": "docs"}, "collection": "lib"})).await;
    assert_eq!((status, v["error"]["code"].as_str()), (413, Some("payload_too_large")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("past 1 MiB (ingest.max_git_checkout_mb)"), "{v}");
    assert!(checkouts().is_empty(), "the oversized checkout is removed: {:?}", checkouts());
    assert!(top("lib").await.contains("photon"), "what was indexed stays");

    // Three refs of one repository at once: one checkout, taken in turns.
    let runs = [("main", "at_main"), ("v1.0.0", "at_v1"), ("v2.0.0", "at_v2")].map(|(r, c)| call(serde_json::json!({"git": {"url": url, "ref": r, "path": "docs"}, "collection": c})));
    let [a, b, c] = runs;
    let (a, b, c) = tokio::join!(a, b, c);
    for (status, v) in [&a, &b, &c] {
        assert_eq!(*status, 200, "{v}");
        assert_eq!(v["reports"][0]["report"]["documents_written"], 1, "{v}");
    }
    assert!(top("at_main").await.contains("photon") && top("at_v1").await.contains("quantum") && top("at_v2").await.contains("photon"));
    assert_eq!(checkouts().len(), 1, "{:?}", checkouts());
}

/// A private Git repository as a scheduled source: `[sources.auth]` reaches git (in its
/// environment, never its command line) for the source's own origin only; without it, or
/// with a wrong token, the run fails without showing the token; a redirect to another host
/// is not followed, so the token never leaves its origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_git_sources_send_their_credentials_to_their_origin_only() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    versioned_repo(&repo);
    let served = dir.path().join("served");
    serve_bare(&repo, &served, "private.git");
    let server = git_http(served, Some("s3cret-git-token")).await;
    let mut cfg = web_config(&dir.path().join("data"));
    let entry = |name: &str, path: &str, token: Option<&str>| aidocs::config::SourceSettings {
        auth: token.map(|t| aidocs::config::SourceAuth { bearer: Some(t.into()), ..Default::default() }),
        ..source_entry(name, "private", aidocs::config::SourceKind::Git, &format!("{}{path}", server.base), "every 1h")
    };
    cfg.sources = vec![
        entry("private", "/private.git", Some("s3cret-git-token")),
        entry("anonymous", "/private.git", None),
        entry("wrong", "/private.git", Some("wr0ng-token")),
        entry("moved", "/moved/private.git", Some("s3cret-git-token")),
    ];
    cfg.validate().unwrap();
    let engine = Engine::open(cfg).unwrap();
    let sources = engine.sources();
    let run = sources.crawl(&engine.config().sources[0]).await.unwrap();
    assert_eq!(run.counts["pages_changed"], 1, "{}", run.text);
    assert!(server.seen.lock().unwrap().iter().all(|(_, a)| a == "Bearer s3cret-git-token"), "every request carried the token");
    for (i, secret) in [(1, "s3cret-git-token"), (2, "wr0ng-token"), (3, "s3cret-git-token")] {
        server.seen.lock().unwrap().clear();
        let err = sources.crawl(&engine.config().sources[i]).await.unwrap_err().to_string();
        assert!(err.contains("git") && !err.contains(secret), "{err}");
        let seen = server.seen.lock().unwrap().clone();
        assert!(!seen.is_empty() && seen.iter().all(|(h, _)| h.starts_with("127.0.0.1:")), "{seen:?}");
    }
    let mut r = SearchRequest::new("photon switch".to_owned());
    r.collection = Some("private".into());
    assert!(engine.search(r).await.unwrap().hits[0].snippet.contains("photon"));
}
