//! Canary rollouts through the HTTP API with real searches and a controllable clock:
//! promotion through stages, rollback on injected errors, hold on no data, pause/resume,
//! a restart in the middle. Blue-green under continuous load on a real socket. Promotion and
//! blue-green also run on a real Qdrant server (the store testkit's `qdrant_process`).

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::progress::NoProgress;
use aidocs::rollout::Rollouts;
use aidocs::{Engine, IngestRequest};
use aidocs_rollout::canary::Decision;
use aidocs_rollout::{WallClock, bucket};
use aidocs_store::testkit::qdrant_process::{ProcessOptions, QdrantProcess};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tower::ServiceExt;

#[derive(Clone, Default)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn set_s(&self, s: u64) {
        self.0.store(1_000_000 + s * 1000, Ordering::SeqCst);
    }
}

impl WallClock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

const V1: &[(&str, &str)] = &[
    ("install.md", "# Install\n\nInstall the server with cargo and start it with `aidocs-server`.\n"),
    ("config.md", "# Configure\n\nSet the data dir and the bind address in config.toml.\n"),
];
const V2: &[(&str, &str)] = &[
    ("install.md", "# Install\n\nInstall the server with cargo and start it with `aidocs-server`.\n"),
    ("config.md", "# Configure\n\nSet the data dir and the bind address in config.toml.\n"),
    ("tracing.md", "# Tracing\n\nEnable request tracing with ENABLE_REQUEST_TRACING to export spans over OTLP.\n"),
];

fn open(dir: &std::path::Path, clock: &TestClock) -> Engine {
    open_on(dir, clock, None)
}

/// An engine on the embedded store, or on a real Qdrant server when one is given.
fn open_on(dir: &std::path::Path, clock: &TestClock, qdrant: Option<&QdrantProcess>) -> Engine {
    let mut cfg = common::config(&dir.join("data"));
    if let Some(q) = qdrant {
        common::on_qdrant(&mut cfg, q);
    }
    let rollouts = Rollouts::open(&cfg).unwrap().with_clock(Arc::new(clock.clone()));
    Engine::open(cfg).unwrap().with_rollouts(rollouts)
}

async fn ingest(engine: &Engine, dir: &std::path::Path, name: &str, files: &[(&str, &str)]) {
    let src = dir.join(name);
    common::write_tree(&src, files);
    engine.ingest().directory(IngestRequest { path: src, collection: name.into(), metadata: Default::default(), base_url: None }, &NoProgress).await.unwrap();
}

/// An engine at clock 0 with collections `docs_v1` and `docs_v2`, alias `docs` -> v1.
async fn two_builds(dir: &std::path::Path, clock: &TestClock) -> Engine {
    two_builds_on(dir, clock, None).await
}

async fn two_builds_on(dir: &std::path::Path, clock: &TestClock, qdrant: Option<&QdrantProcess>) -> Engine {
    clock.set_s(0);
    let engine = open_on(dir, clock, qdrant);
    ingest(&engine, dir, "docs_v1", V1).await;
    ingest(&engine, dir, "docs_v2", V2).await;
    engine.store().set_alias("docs", "docs_v1").await.unwrap();
    engine
}

async fn call(app: &axum::Router, req: Request<Body>) -> (u16, axum::http::HeaderMap, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn post(uri: &str, body: Value) -> Request<Body> {
    Request::post(uri).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
}

fn search_as(user: &str, query: &str) -> Request<Body> {
    Request::post("/v1/search").header("content-type", "application/json").header("x-user-id", user).body(Body::from(json!({"query": query, "collection": "docs"}).to_string())).unwrap()
}

fn stages(min: u64, p95: f64) -> Value {
    json!([
        {"percentage": 50, "duration_s": 60, "max_error_rate": 0.05, "max_p95_ms": p95, "min_requests": min},
        {"percentage": 100, "duration_s": 60, "max_error_rate": 0.05, "max_p95_ms": p95, "min_requests": min},
    ])
}

/// Wait until the canary arm of `id` has at least `n` requests (samples are recorded by a
/// spawned task after each response).
async fn wait_for_canary_requests(app: &axum::Router, id: &str, n: u64) -> Value {
    for _ in 0..100 {
        let (_, _, v) = call(app, Request::get(format!("/v1/admin/canaries/{id}")).body(Body::empty()).unwrap()).await;
        if v["arms"]["canary"]["requests"].as_u64().unwrap_or(0) >= n {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("canary `{id}` never saw {n} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_promotes_through_stages_on_real_traffic_and_routing_is_sticky() {
    canary_promotes_through_stages(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_promotes_through_stages_on_a_real_qdrant_server() {
    let q = QdrantProcess::start(ProcessOptions::default()).await.expect("the Qdrant server binary starts");
    canary_promotes_through_stages(Some(&q)).await;
}

async fn canary_promotes_through_stages(qdrant: Option<&QdrantProcess>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::default();
    let engine = two_builds_on(dir.path(), &clock, qdrant).await;
    let app = aidocs_http::router(engine.clone());

    let (status, _, c) = call(&app, post("/v1/admin/canaries", json!({"id": "c1", "alias": "docs", "collection": "docs_v2", "stages": stages(10, 60_000.0)}))).await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["plan"]["stable"], "docs_v1");
    let (status, _, err) = call(&app, post("/v1/admin/canaries", json!({"alias": "docs", "collection": "docs_v2"}))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("conflict")), "one canary per alias");

    // Stage 1 (50 %): each user lands where the MD5 bucket says, every time.
    let users: Vec<String> = (0..30).map(|i| format!("user-{i}")).collect();
    for round in 0..2 {
        for u in &users {
            let (status, h, body) = call(&app, search_as(u, "how do I enable tracing")).await;
            assert_eq!(status, 200, "{body}");
            let want = if bucket(&format!("user:{u}")) < 50 { "canary" } else { "stable" };
            assert_eq!(h["x-aidocs-arm"], want, "round {round}, {u}");
            assert_eq!(body["collection"], if want == "canary" { "docs_v2" } else { "docs_v1" });
        }
    }
    let status_v = wait_for_canary_requests(&app, "c1", 10).await;
    assert!(status_v["arms"]["stable"]["requests"].as_u64().unwrap() > 0);
    assert_eq!(status_v["arms"]["canary"]["error_rate"], 0.0);

    clock.set_s(30);
    assert_eq!(engine.rollout().rollout_tick().await.unwrap(), vec![("c1".to_owned(), Decision::Continue)]);
    clock.set_s(61);
    assert_eq!(engine.rollout().rollout_tick().await.unwrap(), vec![("c1".to_owned(), Decision::Advance { to_stage: 1 })]);

    // Stage 2 (100 %): everyone on the canary; then promotion moves the alias.
    for u in &users[..12] {
        let (_, h, _) = call(&app, search_as(u, "configure the bind address")).await;
        assert_eq!(h["x-aidocs-arm"], "canary");
    }
    wait_for_canary_requests(&app, "c1", 10).await;
    clock.set_s(122);
    assert_eq!(engine.rollout().rollout_tick().await.unwrap(), vec![("c1".to_owned(), Decision::Promote)]);
    assert_eq!(engine.store().resolve("docs").await.unwrap(), "docs_v2", "promotion switched the alias");
    let (_, h, body) = call(&app, search_as("user-1", "how do I enable tracing")).await;
    assert!(h.get("x-aidocs-arm").is_none(), "the canary ended");
    assert_eq!(body["collection"], "docs_v2");
    assert_eq!(body["hits"][0]["path"], "tracing.md");
    let (_, _, v) = call(&app, Request::get("/v1/admin/canaries/c1").body(Body::empty()).unwrap()).await;
    assert_eq!(v["status"]["state"], "promoted", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_holds_on_no_data_pauses_for_real_and_rolls_back_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::default();
    let base = two_builds(dir.path(), &clock).await;
    let faulty = Arc::new(aidocs_store::testkit::FaultyStore::new(base.store().clone()));
    let engine = base.with_store(faulty.clone());
    let app = aidocs_http::router(engine.clone());
    let (status, _, c) = call(&app, post("/v1/admin/canaries", json!({"id": "c2", "alias": "docs", "collection": "docs_v2", "stages": stages(8, 60_000.0), "rollback_after_breaches": 2}))).await;
    assert_eq!(status, 201, "{c}");

    // No traffic: past the stage duration it holds and says why; it never promotes.
    clock.set_s(600);
    match &engine.rollout().rollout_tick().await.unwrap()[0].1 {
        Decision::Hold(why) => assert!(why.contains("0 of 8 canary requests"), "{why}"),
        d => panic!("{d:?}"),
    }
    let (_, _, v) = call(&app, Request::get("/deployment/status").body(Body::empty()).unwrap()).await;
    assert_eq!(v["canaries"][0]["stage"], 0, "{v}");
    assert!(v["canaries"][0]["hold_reason"].as_str().unwrap().starts_with("inconclusive"), "{v}");

    // Pause stops the stage timer: with enough data, no progress while paused.
    let (status, _, _) = call(&app, post("/v1/admin/canaries/c2/pause", json!({}))).await;
    assert_eq!(status, 200);
    let (status, _, err) = call(&app, post("/v1/admin/canaries/c2/pause", json!({}))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("conflict")));
    let users: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    for u in &users {
        assert_eq!(call(&app, search_as(u, "install the server")).await.0, 200, "paused canaries still route");
    }
    wait_for_canary_requests(&app, "c2", 8).await;
    clock.set_s(5_000);
    assert_eq!(engine.rollout().rollout_tick().await.unwrap()[0].1, Decision::Continue, "paused: the timer is stopped");
    let (status, _, _) = call(&app, post("/v1/admin/canaries/c2/resume", json!({}))).await;
    assert_eq!(status, 200);

    // The canary collection starts failing: canary users get 500s, stable users 200s; two
    // consecutive breached checks roll back, and everyone is on stable again.
    faulty.faults.fail_queries_on(Some("docs_v2"));
    let mut canary_errors = 0;
    for u in &users {
        let (status, h, _) = call(&app, search_as(u, "configure the data dir")).await;
        if h.get("x-aidocs-arm").is_some_and(|a| a == "canary") {
            assert_eq!(status, 500);
            canary_errors += 1;
        } else {
            assert_eq!(status, 200);
        }
    }
    assert!(canary_errors >= 8, "{canary_errors}");
    wait_for_canary_requests(&app, "c2", 8 + canary_errors).await;
    clock.set_s(5_001);
    assert!(matches!(engine.rollout().rollout_tick().await.unwrap()[0].1, Decision::Breach(_)));
    clock.set_s(5_002);
    match &engine.rollout().rollout_tick().await.unwrap()[0].1 {
        Decision::Rollback(why) => assert!(why.contains("error rate"), "{why}"),
        d => panic!("{d:?}"),
    }
    for u in &users {
        let (status, h, body) = call(&app, search_as(u, "configure the data dir")).await;
        assert_eq!(status, 200, "after rollback nobody reaches the broken collection");
        assert!(h.get("x-aidocs-arm").is_none());
        assert_eq!(body["collection"], "docs_v1");
    }
    assert_eq!(engine.store().resolve("docs").await.unwrap(), "docs_v1");
    let text = engine.metrics().encode().unwrap();
    assert!(text.contains("canary_events_total{event=\"rolled_back_automatic\"} 1"), "{text}");
    let errors = text.lines().find(|l| l.starts_with("rollout_requests_total{arm=\"canary\",kind=\"canary\",outcome=\"error\"}")).unwrap();
    assert_eq!(errors.rsplit(' ').next().unwrap().parse::<u64>().unwrap(), canary_errors);
    // Manual rollback of an ended canary is a conflict.
    let (status, _, _) = call(&app, post("/v1/admin/canaries/c2/rollback", json!({"reason": "again"}))).await;
    assert_eq!(status, 409);
    let (status, _, _) = call(&app, post("/v1/admin/canaries/nope/pause", json!({}))).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_canary_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::default();
    {
        let engine = two_builds(dir.path(), &clock).await;
        let app = aidocs_http::router(engine.clone());
        call(&app, post("/v1/admin/canaries", json!({"id": "c3", "alias": "docs", "collection": "docs_v2", "stages": stages(5, 60_000.0)}))).await;
        for i in 0..20 {
            call(&app, search_as(&format!("u{i}"), "install")).await;
        }
        wait_for_canary_requests(&app, "c3", 5).await;
        clock.set_s(61);
        assert_eq!(engine.rollout().rollout_tick().await.unwrap()[0].1, Decision::Advance { to_stage: 1 });
        clock.set_s(70);
        // Ten seconds into stage 2, the process stops.
    }
    let engine = open(dir.path(), &clock);
    engine.rollout().rollout_tick().await.unwrap();
    let c = engine.rollout().canary("c3").await.unwrap();
    assert_eq!((c.stage, c.current().percentage), (1, 100), "resumed in the stage it was in");
    let app = aidocs_http::router(engine.clone());
    let (_, h, _) = call(&app, search_as("anyone", "install")).await;
    assert_eq!(h["x-aidocs-arm"], "canary", "routing resumes at 100 %");
    for i in 0..6 {
        call(&app, search_as(&format!("v{i}"), "install")).await;
    }
    wait_for_canary_requests(&app, "c3", 5).await;
    clock.set_s(125);
    assert_eq!(engine.rollout().rollout_tick().await.unwrap()[0].1, Decision::Promote);
    assert_eq!(engine.store().resolve("docs").await.unwrap(), "docs_v2");
}

/// Keeps searching `docs` over a real socket until told to stop; returns (requests,
/// failures, empty result sets, collections seen in order of first appearance).
fn load_loop(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, Vec<String>, u64, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut n, mut failures, mut empty, mut seen) = (0u64, Vec::new(), 0u64, Vec::<String>::new());
        while !stop.load(Ordering::SeqCst) {
            let body = r#"{"query": "install the server", "collection": "docs", "limit": 3}"#;
            let (status, json) = common::post_json(addr, "/v1/search", body);
            n += 1;
            if status != "200" {
                failures.push(format!("{status}: {json}"));
                continue;
            }
            if json["hits"].as_array().is_none_or(|h| h.is_empty()) {
                empty += 1;
            }
            let c = json["collection"].as_str().unwrap_or("").to_owned();
            if seen.last() != Some(&c) {
                seen.push(c);
            }
        }
        (n, failures, empty, seen)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_under_load_has_no_failed_or_empty_answers_and_cleans_up_blue() {
    blue_green_under_load(None).await;
}

/// The same on a real Qdrant server: the alias switch is Qdrant's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_under_load_on_a_real_qdrant_server() {
    let q = QdrantProcess::start(ProcessOptions::default()).await.expect("the Qdrant server binary starts");
    blue_green_under_load(Some(&q)).await;
}

async fn blue_green_under_load(qdrant: Option<&QdrantProcess>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::default();
    clock.set_s(0);
    let engine = open_on(dir.path(), &clock, qdrant);
    let (v1, v2) = (dir.path().join("v1"), dir.path().join("v2"));
    common::write_tree(&v1, V1);
    common::write_tree(&v2, V2);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = aidocs_http::router(engine.clone());
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap() });
    let deploy = |source: &std::path::Path, queries: Value, settings: Value| {
        let body = json!({"alias": "docs", "source": source, "validate_queries": queries, "settings": settings}).to_string();
        async move { reqwest_like(addr, "/v1/admin/deploy/blue-green", &body).await }
    };
    let settings = |monitor_s: u64, min_top_score: f64| {
        json!({"min_hits": 1, "min_top_score": min_top_score, "min_overlap": 0.3, "max_point_change": 2.0, "monitor_s": monitor_s,
               "max_error_rate": 0.05, "max_p95_ms": 60000.0, "min_requests": 5, "grace_s": 3600})
    };

    // First deployment: no blue yet; the alias is created.
    let (status, first) = deploy(&v1, json!(["install the server"]), settings(0, 0.0)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["blue"], Value::Null);
    let blue = first["green"].as_str().unwrap().to_owned();
    assert_eq!(engine.store().resolve("docs").await.unwrap(), blue);

    // Second deployment under continuous load.
    let stop = Arc::new(AtomicBool::new(false));
    let load = load_loop(addr, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, second) = deploy(&v2, json!(["install the server", "configure the bind address"]), settings(2, 0.0)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let (n, failures, empty, seen) = load.join().unwrap();
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["status"], "switched", "{second}");
    let green = second["green"].as_str().unwrap().to_owned();
    assert!(n > 10, "the load loop ran ({n} requests)");
    assert!(failures.is_empty(), "{} of {n} requests failed: {failures:?}", failures.len());
    assert_eq!(empty, 0, "no empty result sets in {n} requests");
    assert_eq!(seen.first(), Some(&blue), "{seen:?}");
    assert_eq!(seen.last(), Some(&green), "after the switch, answers come from green: {seen:?}");
    assert!(second["events"].to_string().contains("monitored 2 s"), "{second}");

    // Validation failure: nothing switches, green is deleted.
    let (status, failed) = deploy(&v2, json!(["install the server"]), settings(0, 1.5)).await;
    assert_eq!(status, 422, "{failed}");
    assert_eq!(failed["error"]["code"], "validation_failed");
    assert!(failed["error"]["message"].as_str().unwrap().contains("top score"), "{failed}");
    assert_eq!(engine.store().resolve("docs").await.unwrap(), green);
    let names: Vec<String> = engine.collections().list().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names.len(), 2, "only blue (awaiting cleanup) and green remain: {names:?}");

    // Blue is deleted once its grace period is over, by the persisted schedule, even across
    // a restart.
    let cleanups = engine.rollout().cleanups().await.unwrap();
    assert_eq!(cleanups.iter().map(|c| c.collection.clone()).collect::<Vec<_>>(), vec![blue.clone()]);
    clock.set_s(1800);
    engine.rollout().rollout_tick().await.unwrap();
    assert!(engine.store().collection_info(&blue).await.is_ok(), "not yet due");
    let reopened = Rollouts::open(engine.config()).unwrap().with_clock(Arc::new(clock.clone()));
    let engine = engine.with_rollouts(reopened);
    clock.set_s(3_700);
    engine.rollout().rollout_tick().await.unwrap();
    assert!(engine.store().collection_info(&blue).await.is_err(), "blue deleted after its grace period");
    assert!(engine.rollout().cleanups().await.unwrap().is_empty());
    assert_eq!(engine.store().resolve("docs").await.unwrap(), green, "green keeps serving");
}

/// POST `body` to `path` over a real socket; (status, JSON body).
async fn reqwest_like(addr: std::net::SocketAddr, path: &str, body: &str) -> (u16, Value) {
    let (path, body) = (path.to_owned(), body.to_owned());
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, resp.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_test_splits_sticky_applies_variant_settings_and_credits_clicks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::default();
    let engine = two_builds(dir.path(), &clock).await;
    let app = aidocs_http::router(engine.clone());

    let bad = json!({"alias": "docs", "variants": [{"id": "a", "weight": 0.5}, {"id": "b", "weight": 0.6}]});
    let (status, _, err) = call(&app, post("/v1/admin/ab", bad)).await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("sum to 1"));
    // Mode and fusion are typed: a bad one is refused when the test is created, by name.
    let bad = json!({"alias": "docs", "variants": [{"id": "a", "weight": 0.5}, {"id": "b", "weight": 0.5, "mode": "fuzzy"}]});
    let (status, _, err) = call(&app, post("/v1/admin/ab", bad)).await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("fuzzy"), "{err}");
    let bad = json!({"alias": "docs", "variants": [{"id": "a", "weight": 0.5}, {"id": "b", "weight": 0.5, "fusion": "rrf:x"}]});
    let (status, _, err) = call(&app, post("/v1/admin/ab", bad)).await;
    assert_eq!(status, 400, "{err}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("variant `b`") && msg.contains("rrf:x"), "{msg}");
    let create = json!({"id": "ab1", "alias": "docs", "variants": [
        {"id": "control", "weight": 0.5},
        {"id": "sparse-v2", "weight": 0.5, "collection": "docs_v2", "mode": "sparse", "fusion": "rrf:60"},
    ]});
    let (status, _, t) = call(&app, post("/v1/admin/ab", create)).await;
    assert_eq!(status, 201, "{t}");
    let test: aidocs_rollout::AbTest = serde_json::from_value(t).unwrap();

    let mut clicks = 0;
    let mut per_variant = std::collections::BTreeMap::<String, u64>::new();
    for i in 0..60 {
        let user = format!("user-{i}");
        let (status, h, body) = call(&app, search_as(&user, "install the server")).await;
        assert_eq!(status, 200, "{body}");
        let variant = h["x-aidocs-variant"].to_str().unwrap().to_owned();
        assert_eq!(variant, test.variants[test.assign(&format!("user:{user}"))].id, "assignment is the test's hash");
        let (_, h2, _) = call(&app, search_as(&user, "configure the data dir")).await;
        assert_eq!(h2["x-aidocs-variant"].to_str().unwrap(), variant, "sticky");
        *per_variant.entry(variant.clone()).or_default() += 2;
        if variant == "sparse-v2" {
            assert_eq!((body["mode"].as_str(), body["collection"].as_str()), (Some("sparse"), Some("docs_v2")));
            // Users of the treatment click their first hit.
            let fb = json!({"query_id": body["query_id"], "hit_id": body["hits"][0]["id"]});
            let (status, _, ack) = call(&app, post("/v1/feedback", fb)).await;
            assert_eq!(status, 202, "{ack}");
            assert_eq!(ack["variant"], "sparse-v2");
            clicks += 1;
        } else {
            assert_eq!((body["mode"].as_str(), body["collection"].as_str()), (Some("hybrid"), Some("docs_v1")));
        }
    }
    assert!(per_variant.len() == 2 && per_variant.values().all(|n| *n >= 20), "{per_variant:?}");
    let (status, _, _) = call(&app, post("/v1/feedback", json!({"query_id": "never-seen", "hit_id": "x"}))).await;
    assert_eq!(status, 404);

    // Status: per-variant numbers from the real requests, tests against the control.
    let mut status_v = Value::Null;
    for _ in 0..100 {
        let (_, _, v) = call(&app, Request::get("/v1/admin/ab/ab1").body(Body::empty()).unwrap()).await;
        let seen: u64 = v["variants"].as_array().unwrap().iter().map(|x| x["requests"].as_u64().unwrap()).sum();
        if seen == 120 {
            status_v = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let variants = status_v["variants"].as_array().expect("all 120 requests recorded");
    assert_eq!(variants[0]["requests"].as_u64(), per_variant.get("control").copied());
    assert_eq!(variants[1]["clicks"], clicks);
    assert_eq!(variants[0]["clicks"], 0);
    let ctr = &variants[1]["vs_control"]["click_through_rate"];
    assert!(ctr["p_value"].as_f64().unwrap() < 0.05 && ctr["significant"] == true, "{ctr}");
    assert!(variants[1]["vs_control"]["latency"]["p_value"].is_number(), "{status_v}");

    let (status, _, stopped) = call(&app, post("/v1/admin/ab/ab1/stop", json!({}))).await;
    assert_eq!((status, stopped["status"].as_str()), (200, Some("stopped")));
    assert_eq!(call(&app, post("/v1/admin/ab/ab1/stop", json!({}))).await.0, 409);
    let (_, h, _) = call(&app, search_as("user-1", "install")).await;
    assert!(h.get("x-aidocs-variant").is_none(), "a stopped test routes nothing");
}

/// A replica of its own data dir sharing rollout state in Redis under `namespace`, with no
/// live monitoring after a blue-green switch; `tweak` adjusts the rest.
fn redis_replica(data: &std::path::Path, url: &str, namespace: &str, tweak: impl FnOnce(&mut aidocs::Config)) -> Engine {
    let mut cfg = common::config(data);
    cfg.rollout.state = aidocs::config::RolloutStateBackend::Redis;
    cfg.rollout.blue_green.monitor_s = 0;
    cfg.cache.url = url.to_owned();
    cfg.cache.namespace = namespace.to_owned();
    tweak(&mut cfg);
    Engine::open(cfg).unwrap()
}

/// The blue-green log and cleanup schedule live in the rollout state: two replicas sharing
/// Redis see the same schedule (it was a local `deployments.json`, so a replica that did not
/// run the deployment never cleaned up blue and did not list it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_share_the_blue_green_log_and_cleanups() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (dir.path().join("v1"), dir.path().join("v2"));
    common::write_tree(&v1, V1);
    common::write_tree(&v2, V2);
    let namespace = format!("aidocs-test-deploy-{}:", uuid::Uuid::new_v4().simple());
    let replica = |name: &str| redis_replica(&dir.path().join(name), &url, &namespace, |_| {});
    let (a, b) = (replica("a"), replica("b"));
    let req = |source: &std::path::Path| -> aidocs::rollout::BlueGreenRequest {
        serde_json::from_value(json!({"alias": "docs", "source": source, "validate_queries": ["install the server"]})).unwrap()
    };
    let first = a.rollout().deploy_blue_green(req(&v1), &NoProgress).await.unwrap();
    let second = a.rollout().deploy_blue_green(req(&v2), &NoProgress).await.unwrap();
    let blue = first.green.clone();
    assert_ne!(second.green, blue);
    // B ran nothing, yet sees A's schedule and history.
    let on_b: Vec<String> = b.rollout().cleanups().await.unwrap().into_iter().map(|c| c.collection).collect();
    assert_eq!(on_b, vec![blue.clone()], "B sees the cleanup A scheduled");
    let status = b.rollout().deployment_status().await.unwrap();
    assert_eq!(status.state_backend, "redis");
    assert_eq!(status.deployments.len(), 2, "{status:?}");
    // Two replicas writing at once (each deploying into its own store) lose neither entry:
    // compare-and-set on the shared log, the loser retried.
    let (ra_svc, rb_svc) = (a.rollout(), b.rollout());
    let (ra, rb) = tokio::join!(ra_svc.deploy_blue_green(req(&v1), &NoProgress), rb_svc.deploy_blue_green(req(&v1), &NoProgress));
    ra.unwrap();
    rb.unwrap();
    let after = a.rollout().deployment_status().await.unwrap();
    assert_eq!(after.deployments.len(), 4, "{after:?}");
}

/// A due blue-green cleanup runs once across replicas: it is claimed as a slot in the
/// shared state, so of two replicas checking at the same moment exactly one runs it, and
/// the schedule is empty on both afterwards (before, every replica deleted on every check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_run_each_due_cleanup_once() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (dir.path().join("v1"), dir.path().join("v2"));
    common::write_tree(&v1, V1);
    common::write_tree(&v2, V2);
    let namespace = format!("aidocs-test-cleanup-{}:", uuid::Uuid::new_v4().simple());
    let replica = |name: &str| redis_replica(&dir.path().join(name), &url, &namespace, |c| c.rollout.blue_green.grace_s = 0);
    let (a, b) = (replica("a"), replica("b"));
    let req = |source: &std::path::Path| -> aidocs::rollout::BlueGreenRequest {
        serde_json::from_value(json!({"alias": "docs", "source": source, "validate_queries": ["install the server"]})).unwrap()
    };
    let blue = a.rollout().deploy_blue_green(req(&v1), &NoProgress).await.unwrap().green;
    a.rollout().deploy_blue_green(req(&v2), &NoProgress).await.unwrap();
    assert_eq!(b.rollout().cleanups().await.unwrap().into_iter().map(|c| c.collection).collect::<Vec<_>>(), [blue.clone()]);
    let (ra, rb) = (a.rollout(), b.rollout());
    let (ta, tb) = tokio::join!(ra.rollout_tick(), rb.rollout_tick());
    ta.unwrap();
    tb.unwrap();
    let runs = |e: &Engine| -> u64 {
        let text = e.metrics().encode().unwrap();
        text.lines()
            .filter(|l| l.starts_with("scheduled_runs_total{") && l.contains("task=\"cleanup\"") && l.contains("outcome=\"ok\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(runs(&a) + runs(&b), 1, "one replica ran the cleanup");
    assert!(a.rollout().cleanups().await.unwrap().is_empty() && b.rollout().cleanups().await.unwrap().is_empty());
    // Checked again: nothing left to run.
    let (ta, tb) = tokio::join!(ra.rollout_tick(), rb.rollout_tick());
    ta.unwrap();
    tb.unwrap();
    assert_eq!(runs(&a) + runs(&b), 1);
    if runs(&a) == 1 {
        assert!(a.collections().list().await.unwrap().iter().all(|c| c.name != blue), "A deleted blue from its store");
    }
}
