//! HTTP API through the router (`oneshot`), with the real engine behind it.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(app: &axum::Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn assert_error(resp: &(StatusCode, Value), status: u16, code: &str, mentions: &str) {
    assert_eq!(resp.0.as_u16(), status, "{:?}", resp.1);
    assert_eq!(resp.1["error"]["code"], code, "{:?}", resp.1);
    let msg = resp.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains(mentions), "message `{msg}` should mention `{mentions}`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_contract() {
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("guide.md"), "# Guide\n\n## Install\n\nInstall the server with cargo.\n\n## Configure\n\nSet the data dir in config.toml.\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let app = aidocs_http::router(common::engine(data.path()));

    assert_eq!(call(&app, "GET", "/health", None).await.0, StatusCode::OK);
    let ready = call(&app, "GET", "/health/ready", None).await;
    assert_eq!((ready.0, ready.1["status"].as_str()), (StatusCode::OK, Some("ready")));

    let ing = call(&app, "POST", "/v1/documents", Some(json!({"path": docs.path(), "collection": "api", "metadata": {"language": "en"}}))).await;
    assert_eq!(ing.0, StatusCode::OK, "{:?}", ing.1);
    assert_eq!(ing.1["chunks_written"], 2);

    let ok = call(&app, "POST", "/v1/search", Some(json!({"query": "how to install", "collection": "api", "limit": 2, "filter": {"language": "en"}}))).await;
    assert_eq!(ok.0, StatusCode::OK, "{:?}", ok.1);
    let hit = &ok.1["hits"][0];
    assert_eq!(hit["path"], "guide.md");
    assert_eq!(hit["anchor"], "install");
    assert!(hit["url"].as_str().unwrap().ends_with("guide.md#install"));
    assert_eq!(hit["heading_path"], json!(["Guide", "Install"]));
    assert_eq!(hit["title"], "Guide");
    assert_eq!(hit["metadata"]["language"], "en");
    assert!(hit["snippet"].as_str().unwrap().contains("cargo"));
    assert!(hit["score"].as_f64().unwrap() > 0.0);
    assert_eq!(ok.1["collection"], "api");
    assert_eq!(ok.1["mode"], "hybrid");
    assert!(ok.1["timings"]["embed_ms"].as_f64().unwrap() > 0.0 && ok.1["timings"]["search_ms"].as_f64().unwrap() > 0.0, "{:?}", ok.1);
    assert!(ok.1.get("hyde").is_none() && ok.1.get("rerank").is_none(), "notes only when requested");
    // HyDE and rerank requested without being configured: 200, same hits, a note for each.
    let staged = call(&app, "POST", "/v1/search", Some(json!({"query": "how to install", "collection": "api", "limit": 2, "hyde": true, "rerank": true}))).await;
    assert_eq!(staged.0, StatusCode::OK, "{:?}", staged.1);
    assert!(staged.1["hyde"].as_str().unwrap().starts_with("skipped: "), "{:?}", staged.1);
    assert!(staged.1["rerank"].as_str().unwrap().starts_with("skipped: "), "{:?}", staged.1);
    assert_eq!(staged.1["hits"][0]["path"], "guide.md");
    assert_error(&call(&app, "POST", "/v1/search", Some(json!({"query": "q", "hyde": "yes"}))).await, 400, "invalid_request", "hyde");

    for mode in ["dense", "sparse"] {
        let r = call(&app, "POST", "/v1/search", Some(json!({"query": "install", "collection": "api", "mode": mode}))).await;
        assert_eq!(r.0, StatusCode::OK);
        assert_eq!(r.1["mode"], mode);
    }

    let search = |body: Value| call(&app, "POST", "/v1/search", Some(body));
    assert_error(&search(json!({"query": "  ", "collection": "api"})).await, 400, "invalid_request", "query");
    assert_error(&search(json!({"query": "x", "collection": "api", "limit": 0})).await, 400, "invalid_request", "limit");
    assert_error(&search(json!({"query": "x", "collection": "api", "limit": 1000})).await, 400, "invalid_request", "limit");
    assert_error(&search(json!({"query": "x", "collection": "api", "filter": {"colour": "red"}})).await, 400, "invalid_request", "colour");
    assert_error(&search(json!({"query": "x", "collection": "api", "mode": "fuzzy"})).await, 400, "invalid_request", "fuzzy");
    assert_error(&search(json!({"query": "x", "collection": "api", "sort": "asc"})).await, 400, "invalid_request", "sort");
    assert_error(&search(json!({"query": "x", "collection": "nope"})).await, 404, "collection_not_found", "nope");

    let raw = app
        .clone()
        .oneshot(Request::post("/v1/search").header("content-type", "application/json").body(Body::from("{not json")).unwrap())
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&raw.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["error"]["code"], "invalid_request");
    let no_ct = app.clone().oneshot(Request::post("/v1/search").body(Body::from("{}")).unwrap()).await.unwrap();
    assert_eq!(no_ct.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let list = call(&app, "GET", "/v1/collections", None).await;
    assert_eq!(list.1["collections"][0]["name"], "api");
    assert_eq!(list.1["collections"][0]["points"], 2);
    let info = call(&app, "GET", "/v1/collections/api", None).await;
    assert_eq!((info.0, info.1["dims"].as_u64()), (StatusCode::OK, Some(384)));
    assert_eq!(info.1["properties"]["embedding_model"], "sentence-transformers/all-MiniLM-L6-v2");
    assert_error(&call(&app, "GET", "/v1/collections/ghost", None).await, 404, "collection_not_found", "ghost");
    assert_error(&call(&app, "POST", "/v1/documents", Some(json!({"path": "/definitely/not/here"}))).await, 403, "forbidden", "allowed_roots");
    assert_error(&call(&app, "GET", "/v2/nothing", None).await, 404, "not_found", "route");
    assert_error(&call(&app, "DELETE", "/v1/search", None).await, 405, "method_not_allowed", "method");

    // Cache administration (the testing template uses the in-process cache).
    let again = call(&app, "POST", "/v1/search", Some(json!({"query": "how to install", "collection": "api", "limit": 2, "filter": {"language": "en"}}))).await;
    assert_eq!(again.1["cached"], true, "{:?}", again.1);
    let stats = call(&app, "GET", "/v1/admin/cache", None).await;
    assert_eq!((stats.0, stats.1["backend"].as_str()), (StatusCode::OK, Some("memory")));
    assert!(stats.1["kinds"]["search"]["hits"].as_u64().unwrap() >= 1, "{:?}", stats.1);
    let cleared = call(&app, "DELETE", "/v1/admin/cache?kind=search", None).await;
    assert_eq!(cleared.0, StatusCode::OK);
    assert!(cleared.1["removed"].as_u64().unwrap() >= 1, "{:?}", cleared.1);
    assert_eq!(cleared.1["kind"], "search");
    assert_error(&call(&app, "DELETE", "/v1/admin/cache?kind=all-of-it", None).await, 400, "invalid_request", "all-of-it");
    assert_error(&call(&app, "DELETE", "/v1/admin/cache?tier=l1", None).await, 400, "invalid_request", "tier");
    assert_eq!(call(&app, "GET", "/health/ready", None).await.1["cache"], "ok");
}

/// `POST /v1/documents {"path"}` reads only under `ingest.allowed_roots`. Before the fix any
/// file the server could read became searchable (a mode-600 secret came back in a snippet),
/// and the error told whether a path existed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_ingest_is_confined_to_allowed_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("docs");
    let outside = tmp.path().join("private");
    common::write_tree(&root, &[("guide.md", "# Guide\n\nPublic guide text.\n")]);
    common::write_tree(&outside, &[("secret.md", "# Secret\n\nThe launch code is swordfish.\n")]);
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outside.join("secret.md"), root.join("link.md")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("linkdir")).unwrap();
    }
    let data = tempfile::tempdir().unwrap();

    // No roots (the default): refused outright, existing or not.
    let mut cfg = common::config(data.path());
    cfg.ingest.allowed_roots.clear();
    let closed = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    assert_error(&call(&closed, "POST", "/v1/documents", Some(json!({"path": root}))).await, 403, "forbidden", "disabled");
    drop(closed);

    let mut cfg = common::config(data.path());
    cfg.ingest.allowed_roots = vec![root.clone()];
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    let refused = |r: (StatusCode, Value)| {
        assert_error(&r, 403, "forbidden", "allowed_roots");
        r.1["error"]["message"].as_str().unwrap().to_owned()
    };
    let a = refused(call(&app, "POST", "/v1/documents", Some(json!({"path": outside.join("secret.md"), "collection": "c"}))).await);
    let b = refused(call(&app, "POST", "/v1/documents", Some(json!({"path": outside.join("missing.md"), "collection": "c"}))).await);
    let c = refused(call(&app, "POST", "/v1/documents", Some(json!({"path": root.join("missing.md"), "collection": "c"}))).await);
    let d = refused(call(&app, "POST", "/v1/documents", Some(json!({"path": root.join("../private/secret.md"), "collection": "c"}))).await);
    let e = refused(call(&app, "POST", "/v1/documents", Some(json!({"path": "/etc/passwd", "collection": "c"}))).await);
    assert!([&b, &c, &d, &e].iter().all(|m| **m == a), "one answer whether or not the path exists");
    #[cfg(unix)]
    {
        refused(call(&app, "POST", "/v1/documents", Some(json!({"path": root.join("link.md"), "collection": "c"}))).await);
        refused(call(&app, "POST", "/v1/documents", Some(json!({"path": root.join("linkdir"), "collection": "c"}))).await);
    }

    // Under the root: ingested, and links inside it that leave it are not followed.
    let ok = call(&app, "POST", "/v1/documents", Some(json!({"path": root, "collection": "c"}))).await;
    assert_eq!(ok.0, StatusCode::OK, "{:?}", ok.1);
    assert_eq!(ok.1["documents_written"], 1, "{:?}", ok.1);
    let hits = call(&app, "POST", "/v1/search", Some(json!({"query": "launch code swordfish", "collection": "c", "mode": "sparse"}))).await;
    assert_eq!(hits.0, StatusCode::OK, "{:?}", hits.1);
    assert!(!hits.1["hits"].to_string().contains("swordfish"), "{:?}", hits.1);
}

/// A Qdrant server that cannot be reached is a dependency outage: 503 `unavailable` naming
/// the store (it used to be a 500 `internal` that said nothing).
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_qdrant_server_is_a_503_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.vector_store.kind = aidocs::config::StoreKind::Qdrant;
    // Nothing listens on port 1.
    cfg.vector_store.url = "http://127.0.0.1:1".into();
    cfg.vector_store.retries = 1;
    cfg.vector_store.connect_timeout_ms = 500;
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    let req = Request::post("/v1/search")
        .header("content-type", "application/json")
        .body(Body::from(json!({"query": "anything"}).to_string()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Qdrant"),
        "{body}"
    );
}

/// Readiness says `warming` (503) while the warm-up at start runs, and ready once it is done;
/// the warm-up queries every collection (one of another model's dimensions through its
/// sparse index only) and counts no search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_warm_up_at_start() {
    use aidocs::engine::WarmState;
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("guide.md"), "# Guide\n\n## Install\n\nInstall the server with cargo.\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let engine = common::engine(data.path());
    let app = aidocs_http::router(engine.clone());
    assert_eq!(call(&app, "POST", "/v1/documents", Some(json!({"path": docs.path(), "collection": "warm"}))).await.0, StatusCode::OK);
    let other = aidocs::core::CollectionSpec { name: "older-model".into(), dims: 8, properties: Default::default() };
    engine.store().create_collection(&other).await.unwrap();
    // An engine nobody warms (embedded in another program) is ready at once.
    assert_eq!(call(&app, "GET", "/health/ready", None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", "/health/detailed", None).await.1["warm_up"], json!({"state": "not_started"}));

    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let engine = engine.clone().with_embedder(common::Held::gated(engine.base_embedder().clone(), gate.clone()));
    let app = aidocs_http::router(engine.clone());
    let warming = tokio::spawn({
        let engine = engine.clone();
        async move { engine.warm_up().await }
    });
    let started = std::time::Instant::now();
    while engine.warm_state() != WarmState::Running {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the warm-up did not start");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (status, body) = call(&app, "GET", "/health/ready", None).await;
    assert_eq!((status, &body), (StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "warming"})));
    // (`/health/detailed` would probe the gated embedder and wait too.)
    assert_eq!(serde_json::to_value(engine.warm_state()).unwrap(), json!({"state": "running"}));

    gate.add_permits(64);
    let report = warming.await.unwrap();
    assert_eq!(report.collections, ["older-model", "warm"], "{report:?}");
    assert!(report.skipped.is_empty() && report.embed_error.is_none(), "{report:?}");
    assert!(report.embed_ms > 0.0 && report.store_ms > 0.0, "{report:?}");
    assert_eq!(call(&app, "GET", "/health/ready", None).await.1["status"], "ready");
    let warm = call(&app, "GET", "/health/detailed", None).await.1["warm_up"].clone();
    assert_eq!((&warm["state"], &warm["collections"]), (&json!("done"), &json!(["older-model", "warm"])), "{warm}");
    let metrics = engine.metrics().encode().unwrap();
    assert!(!metrics.lines().any(|l| l.contains("search_requests_total{")), "the warm-up counts no search:\n{metrics}");

    // An embedder that never answers: the warm-up is given up at its limit and readiness
    // stops waiting for it.
    let stuck = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let engine = engine.clone().with_embedder(common::Held::gated(engine.base_embedder().clone(), stuck));
    let report = engine.warm_up_within(std::time::Duration::from_millis(300)).await;
    assert!(report.timed_out && report.collections.is_empty(), "{report:?}");
    assert_eq!(call(&aidocs_http::router(engine.clone()), "GET", "/health/ready", None).await.1["status"], "ready");
    assert_eq!(serde_json::to_value(engine.warm_state()).unwrap()["timed_out"], true);
}
