//! What probing found under hostile HTTP input (issue 17), each through the router with
//! `oneshot`: client identity behind proxies, request ids, crawl limits, JSON errors for
//! axum's own rejections, the bearer scheme.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::config::{ApiKey, Scope};
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::Request;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tower::ServiceExt;

async fn send(app: &axum::Router, peer: &str, req: Request<Body>) -> (u16, axum::http::HeaderMap, Value) {
    let app = app.clone().layer(MockConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let resp = app.oneshot(req).await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, body)
}

fn get(uri: &str, xff: &[&str]) -> Request<Body> {
    let mut r = Request::get(uri);
    for x in xff {
        r = r.header("x-forwarded-for", *x);
    }
    r.body(Body::empty()).unwrap()
}

/// nginx appends the address it saw to whatever `X-Forwarded-For` the client sent, so only
/// the right end is trustworthy. Before the fix the server took the first (client-written)
/// hop: a client chose its own rate-limit budget and its canary / A/B arm.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_cannot_pick_its_identity_behind_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.server.rate_limit_per_minute = 1;
    cfg.server.rate_limit_burst = 1;
    cfg.server.trusted_proxies = vec!["10.0.0.9".parse().unwrap(), "10.0.0.8".parse().unwrap()];
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    let proxy = "10.0.0.9:4000";

    assert_eq!(send(&app, proxy, get("/v1/collections", &["1.1.1.1, 203.0.113.5"])).await.0, 200);
    // Same real client (the right-most hop nginx appended), different spoofed prefixes.
    for spoof in ["2.2.2.2, 203.0.113.5", "3.3.3.3, 4.4.4.4, 203.0.113.5", "203.0.113.99, 203.0.113.5"] {
        let (code, _, body) = send(&app, proxy, get("/v1/collections", &[spoof])).await;
        assert_eq!(code, 429, "spoofed `{spoof}` must not get a fresh budget: {body}");
        assert!(body.to_string().contains("203.0.113.5"), "{body}");
    }
    // A chain of trusted proxies is walked through; two header lines count as one list.
    assert_eq!(send(&app, proxy, get("/v1/collections", &["9.9.9.9, 198.51.100.7, 10.0.0.8"])).await.0, 200);
    assert_eq!(send(&app, proxy, get("/v1/collections", &["5.5.5.5, 198.51.100.7", "10.0.0.8"])).await.0, 429);
    // Garbage in the header stops the walk at the last trusted address: no free identities.
    assert_eq!(send(&app, proxy, get("/v1/collections", &["not-an-ip"])).await.0, 200, "the proxy's own budget");
    assert_eq!(send(&app, proxy, get("/v1/collections", &["also-not-an-ip"])).await.0, 429);

    // IPv6 clients are keyed by their /64: rotating the interface id does not help.
    assert_eq!(send(&app, "[2001:db8:1:2::1]:5000", get("/v1/collections", &[])).await.0, 200);
    assert_eq!(send(&app, "[2001:db8:1:2:ffff::7]:5000", get("/v1/collections", &[])).await.0, 429);
    assert_eq!(send(&app, "[2001:db8:1:3::1]:5000", get("/v1/collections", &[])).await.0, 200, "another /64");
    // IPv4-mapped IPv6 is the IPv4 client.
    assert_eq!(send(&app, "192.0.2.50:1", get("/v1/collections", &[])).await.0, 200);
    assert_eq!(send(&app, "[::ffff:192.0.2.50]:1", get("/v1/collections", &[])).await.0, 429);
}

#[test]
fn client_ip_reads_forwarded_for_from_the_right() {
    let trusted: Vec<std::net::IpAddr> = vec!["10.0.0.9".parse().unwrap()];
    let headers = |v: &str| {
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    };
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let c = |peer: &str, xff: &str| aidocs_http::client_ip(ip(peer), &headers(xff), &trusted);
    assert_eq!(c("10.0.0.9", "6.6.6.6, 198.51.100.1"), ip("198.51.100.1"));
    assert_eq!(c("10.0.0.9", "198.51.100.1, 10.0.0.9"), ip("198.51.100.1"));
    assert_eq!(c("198.51.100.2", "6.6.6.6"), ip("198.51.100.2"), "an untrusted peer is the client");
    assert_eq!(c("10.0.0.9", ""), ip("10.0.0.9"));
}

/// With an A/B test running, 1,500 searches with a 200 KB `X-Request-ID` added 297 MB RSS
/// and 300 MB of log. Ids past 128 characters or with odd characters are replaced.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_or_odd_request_ids_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let app = aidocs_http::router(common::engine(dir.path()));
    let id_of = |h: &axum::http::HeaderMap| h.get("x-request-id").unwrap().to_str().unwrap().to_owned();
    let with_id = |id: &str| Request::get("/health").header("x-request-id", id).body(Body::empty()).unwrap();
    let (_, h, _) = send(&app, "127.0.0.1:1", with_id("abc-123_x.y:z")).await;
    assert_eq!(id_of(&h), "abc-123_x.y:z", "a reasonable id is kept");
    let ok128 = "a".repeat(aidocs_http::MAX_REQUEST_ID_LEN);
    assert_eq!(id_of(&send(&app, "127.0.0.1:1", with_id(&ok128)).await.1), ok128);
    for bad in ["a".repeat(200_000), "a".repeat(129), "has space".into(), "new\tline".into(), "ünïcode".into()] {
        let Ok(v) = axum::http::HeaderValue::from_bytes(bad.as_bytes()) else { continue };
        let mut req = Request::get("/health").body(Body::empty()).unwrap();
        req.headers_mut().insert("x-request-id", v);
        let id = id_of(&send(&app, "127.0.0.1:1", req).await.1);
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "replaced by a fresh UUID, got {} chars", id.len());
    }
}

/// A request could raise the crawl limits above config (`max_pages: 1000000000`).
#[tokio::test(flavor = "multi_thread")]
async fn a_request_may_only_lower_crawl_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.crawl.max_pages = 50;
    cfg.crawl.max_depth = 3;
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    let post = |body: Value| Request::post("/v1/documents").header("content-type", "application/json").body(Body::from(body.to_string())).unwrap();
    for (field, value) in [("max_pages", 1_000_000_000u64), ("max_depth", 4)] {
        let (code, _, body) = send(&app, "127.0.0.1:1", post(json!({"url": "https://docs.example.invalid/", field: value}))).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["error"]["code"], "invalid_request");
        assert!(body["error"]["message"].as_str().unwrap().contains(&format!("crawl.{field}")), "{body}");
    }
}

/// axum's own rejections used to answer `text/plain`: an oversized body on a raw-bytes
/// route (413) and a path segment that is not UTF-8 (400).
#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_the_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.server.max_body_bytes = 1024;
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    let big = Request::post("/v1/admin/sync").body(Body::from(vec![b' '; 4096])).unwrap();
    let (code, h, body) = send(&app, "127.0.0.1:1", big).await;
    assert_eq!(code, 413);
    assert_eq!(h.get("content-type").unwrap(), "application/json");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    let bad_utf8 = Request::get("/v1/collections/%FF%FE").body(Body::empty()).unwrap();
    let (code, h, body) = send(&app, "127.0.0.1:1", bad_utf8).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(h.get("content-type").unwrap(), "application/json");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
}

/// The auth scheme is case-insensitive (RFC 9110 §11.1): `bearer KEY` was refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    let key = "search-key-0123456789";
    cfg.auth.keys = vec![ApiKey { name: "r".into(), sha256: aidocs_http::hash_key(key), scopes: vec![Scope::Search] }];
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let req = Request::get("/v1/collections").header("authorization", format!("{scheme} {key}")).body(Body::empty()).unwrap();
        assert_eq!(send(&app, "127.0.0.1:1", req).await.0, 200, "{scheme}");
    }
    let req = Request::get("/v1/collections").header("authorization", format!("Basic {key}")).body(Body::empty()).unwrap();
    assert_eq!(send(&app, "127.0.0.1:1", req).await.0, 401);
}

async fn job_state(app: &axum::Router, id: &str) -> Value {
    let (code, _, body) = send(app, "127.0.0.1:1", Request::get(format!("/v1/admin/jobs/{id}")).body(Body::empty()).unwrap()).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn wait_for_end(app: &axum::Router, id: &str) -> Value {
    for _ in 0..600 {
        let job = job_state(app, id).await;
        if job["state"] != "running" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {id} did not end");
}

fn slow_app(dir: &std::path::Path, admin_timeout_ms: u64, delay_ms: u64) -> (axum::Router, aidocs::Engine) {
    let mut cfg = common::config(&dir.join("data"));
    cfg.server.admin_timeout_ms = admin_timeout_ms;
    cfg.ingest.batch_size = 1;
    let engine = aidocs::Engine::open(cfg).unwrap();
    let slow = common::Held::slow(engine.base_embedder().clone(), std::time::Duration::from_millis(delay_ms));
    let engine = engine.with_embedder(slow);
    (aidocs_http::router(engine.clone()), engine)
}

/// Path ingest used to be cancelled by the admin deadline or a client disconnect (web
/// ingest and backups were detached; it was not). Now every long admin operation is a job
/// that outlives its request: just before the deadline the answer becomes 202 with the job,
/// and the ingest finishes anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_stops_waiting_for_an_ingest_not_the_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write_tree(&docs, &[("a.md", "# A\n\nFirst page.\n"), ("b.md", "# B\n\nSecond page.\n"), ("c.md", "# C\n\nThird page.\n")]);
    let (app, engine) = slow_app(dir.path(), 300, 400);
    let post = Request::post("/v1/documents").header("content-type", "application/json").body(Body::from(json!({"path": docs, "collection": "jobs"}).to_string())).unwrap();
    let (code, headers, body) = send(&app, "127.0.0.1:1", post).await;
    assert_eq!(code, 202, "{body}");
    let id = headers.get("x-aidocs-job").expect("the job is named").to_str().unwrap().to_owned();
    assert_eq!(body["job"]["id"], id.as_str());
    assert_eq!(body["job"]["state"], "running");
    let job = wait_for_end(&app, &id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "ingest");
    assert_eq!(job["result"]["documents_written"], 3, "{job}");
    assert_eq!(job["progress"]["files_done"], 3, "{job}");
    assert_eq!(engine.store().count("jobs", &aidocs::core::Filter::default()).await.unwrap(), 3, "nothing lost to the deadline");
    let (_, _, list) = send(&app, "127.0.0.1:1", Request::get("/v1/admin/jobs").body(Body::empty()).unwrap()).await;
    assert_eq!(list["jobs"][0]["id"], id.as_str());
}

/// `?wait=false` answers 202 with the job at once; a running ingest can be cancelled, an
/// ended one cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_can_be_started_without_waiting_and_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    let pages: Vec<(String, String)> = (0..20).map(|i| (format!("p{i}.md"), format!("# Page {i}\n\nText of page {i}.\n"))).collect();
    common::write_tree(&docs, &pages.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>());
    let (app, _engine) = slow_app(dir.path(), 60_000, 500);
    let post = |c: &str| {
        Request::post("/v1/documents?wait=false").header("content-type", "application/json").body(Body::from(json!({"path": docs, "collection": c}).to_string())).unwrap()
    };
    let (code, headers, body) = send(&app, "127.0.0.1:1", post("slow")).await;
    assert_eq!(code, 202, "{body}");
    let id = body["job"]["id"].as_str().unwrap().to_owned();
    assert_eq!(headers.get("location").unwrap().to_str().unwrap(), format!("/v1/admin/jobs/{id}"));
    assert_eq!(body["job"]["state"], "running");
    assert_eq!(body["job"]["cancellable"], true);
    let cancel = |id: &str| Request::post(format!("/v1/admin/jobs/{id}/cancel")).body(Body::empty()).unwrap();
    let (code, _, body) = send(&app, "127.0.0.1:1", cancel(&id)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "cancelled");
    let job = wait_for_end(&app, &id).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    let (code, _, body) = send(&app, "127.0.0.1:1", cancel(&id)).await;
    assert_eq!((code, body["error"]["code"].as_str()), (409, Some("conflict")), "{body}");
    let (code, _, _) = send(&app, "127.0.0.1:1", cancel("job-nope")).await;
    assert_eq!(code, 404);
    assert!(!aidocs::jobs::JobKind::BlueGreen.cancellable() && !aidocs::jobs::JobKind::BackupRestore.cancellable());
}

/// Records how many health answers had been counted when the walk began and ended.
struct WalkWindow {
    answered: std::sync::Arc<std::sync::atomic::AtomicU64>,
    at_scan: std::sync::atomic::AtomicU64,
    at_start: std::sync::atomic::AtomicU64,
}

impl aidocs::progress::IngestProgress for WalkWindow {
    fn scanning(&self) {
        self.at_scan.store(self.answered.load(std::sync::atomic::Ordering::SeqCst), std::sync::atomic::Ordering::SeqCst);
    }
    fn start(&self, _: usize) {
        self.at_start.store(self.answered.load(std::sync::atomic::Ordering::SeqCst), std::sync::atomic::Ordering::SeqCst);
    }
    fn file_done(&self, _: &str, _: aidocs::progress::FileOutcome) {}
    fn finish(&self, _: &aidocs::IngestReport) {}
}

/// A directory walk used to run on the async worker that handled the ingest: with one
/// worker, `/health` went unanswered for the whole walk (~1 s for a 200k-file tree). Now the
/// walk runs on the blocking pool and health requests are answered while it runs: counted
/// between the walk's start and end (before the fix, exactly none: there is no await in
/// between), not timed. 20,000 entries: creating files is slow on CI machines, and the
/// count before the fix is zero at any size.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn health_answers_during_a_large_walk() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    for d in 0..20 {
        let sub = docs.join(format!("d{d:03}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..1000 {
            std::fs::File::create(sub.join(format!("asset{f:04}.png"))).unwrap();
        }
    }
    let engine = common::engine(&dir.path().join("data"));
    let app = aidocs_http::router(engine.clone());
    let answered = std::sync::Arc::new(AtomicU64::new(0));
    let window = std::sync::Arc::new(WalkWindow { answered: answered.clone(), at_scan: AtomicU64::new(0), at_start: AtomicU64::new(0) });
    let req = aidocs::IngestRequest { path: docs, collection: "walk".into(), metadata: Default::default(), base_url: None };
    let observer = window.clone();
    let ingest = tokio::spawn(async move { engine.ingest().directory(req, observer.as_ref()).await });
    while !ingest.is_finished() {
        let (code, _, _) = send(&app, "127.0.0.1:1", Request::get("/health").body(Body::empty()).unwrap()).await;
        assert_eq!(code, 200);
        answered.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
    }
    let report = ingest.await.unwrap().unwrap();
    assert_eq!(report.directory().unwrap().files_seen, 0, "{report:?}");
    let during = window.at_start.load(Ordering::SeqCst) - window.at_scan.load(Ordering::SeqCst);
    assert!(during >= 1, "no health request was answered while 20,000 entries were walked");
}

/// The admin client (the CLI's `--server` commands) follows a job the server hands back
/// past its wait limit, and returns the operation's own report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_client_follows_a_job_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write_tree(&docs, &[("a.md", "# A\n\nFirst page.\n"), ("b.md", "# B\n\nSecond page.\n")]);
    let (app, _engine) = slow_app(dir.path(), 300, 400);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap() });
    let client = aidocs_http::client::AdminClient::new(&format!("http://{addr}"), None, std::time::Duration::from_secs(60)).unwrap();
    let report = client.post("/v1/documents", &json!({"path": docs, "collection": "followed"})).await.unwrap();
    assert_eq!(report["documents_written"], 2, "{report}");
    let err = client.post("/v1/documents", &json!({"path": "/etc", "collection": "followed"})).await.unwrap_err();
    assert!(err.to_string().contains("allowed_roots"), "{err}");
}

/// Two replicas sharing their rollout state in Redis: a job started on one is seen, with its
/// progress and result, on the other, and a cancel sent to the other stops it where it runs.
/// (The registry used to be per process: behind a load balancer, `GET /v1/admin/jobs/{id}`
/// answered 404 on every replica but the one running the job.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_shared_between_replicas_through_redis() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    let pages: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!("p{i}.md"),
                format!("# Page {i}\n\nText of page {i}.\n"),
            )
        })
        .collect();
    common::write_tree(
        &docs,
        &pages
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<Vec<_>>(),
    );
    let namespace = format!("aidocs-test-jobs-{}:", uuid::Uuid::new_v4().simple());
    let replica = |name: &str, delay_ms: u64| {
        let mut cfg = common::config(&dir.path().join(name));
        cfg.ingest.batch_size = 1;
        cfg.rollout.state = aidocs::config::RolloutStateBackend::Redis;
        // No embedding cache: both ingests embed the same pages, and the second must be slow.
        cfg.cache.kind = aidocs::config::CacheBackend::None;
        cfg.cache.url = url.clone();
        cfg.cache.namespace = namespace.clone();
        let engine = aidocs::Engine::open(cfg).unwrap();
        let slow = common::Held::slow(engine.base_embedder().clone(), std::time::Duration::from_millis(delay_ms));
        aidocs_http::router(engine.with_embedder(slow))
    };
    let (a, b) = (replica("a", 300), replica("b", 300));
    let post = |c: &str| {
        Request::post("/v1/documents?wait=false")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"path": docs, "collection": c}).to_string(),
            ))
            .unwrap()
    };
    let get = |id: &str| {
        Request::get(format!("/v1/admin/jobs/{id}"))
            .body(Body::empty())
            .unwrap()
    };

    // A job that runs to its end on A is followed to its result on B.
    let (code, _, body) = send(&a, "127.0.0.1:1", post("first")).await;
    assert_eq!(code, 202, "{body}");
    let first = body["job"]["id"].as_str().unwrap().to_owned();
    let mut seen_running_on_b = false;
    let done = loop {
        let (code, _, job) = send(&b, "127.0.0.1:1", get(&first)).await;
        if code == 200 && job["state"] == "running" {
            seen_running_on_b = true;
        }
        if code == 200 && job["state"] != "running" {
            break job;
        }
        assert!(code == 200 || code == 404, "{code} {job}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(seen_running_on_b, "B saw the job while it ran on A");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"]["documents_written"], 20, "{done}");
    assert_eq!(done["progress"]["files_done"], 20, "{done}");
    let (_, _, list) = send(
        &b,
        "127.0.0.1:1",
        Request::get("/v1/admin/jobs").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == first.as_str()),
        "{list}"
    );

    // A cancel sent to B stops the job running on A.
    let (code, _, body) = send(&a, "127.0.0.1:1", post("second")).await;
    assert_eq!(code, 202, "{body}");
    let second = body["job"]["id"].as_str().unwrap().to_owned();
    let (code, _, body) = loop {
        let r = send(
            &b,
            "127.0.0.1:1",
            Request::post(format!("/v1/admin/jobs/{second}/cancel"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        if r.0 != 404 {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "cancelled");
    let on_a = wait_for_end(&a, &second).await;
    assert_eq!(
        on_a["state"], "cancelled",
        "A carried out the cancel: {on_a}"
    );
    assert!(
        on_a["progress"]["files_done"].as_u64().unwrap() < 20,
        "stopped before the end: {on_a}"
    );
    let (_, _, on_b) = send(&b, "127.0.0.1:1", get(&second)).await;
    assert_eq!(on_b["state"], "cancelled", "{on_b}");
    // Unknown everywhere: 404.
    let (code, _, _) = send(&b, "127.0.0.1:1", get("job-nope")).await;
    assert_eq!(code, 404);
}
