//! The reading routes and grouped search over HTTP (`oneshot`, real engine): what the MCP
//! tools answer, as JSON and in the OpenAPI document.

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

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_pages_libraries_resolve_and_grouped_search() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::copy_pages(&common::python_docs(), &["tutorial/venv.html", "tutorial/errors.html"], &docs);
    let engine = common::engine(&dir.path().join("data"));
    let base = "https://docs.python.org/3.11/tutorial";
    let metadata = aidocs::core::DocMetadata { version: Some("3.11".into()), ..Default::default() };
    let req = aidocs::IngestRequest { path: docs.join("tutorial"), collection: "docs".into(), metadata, base_url: Some(base.into()) };
    engine.ingest().directory(req, &aidocs::progress::NoProgress).await.unwrap();
    let app = aidocs_http::router(engine);

    // Grouped search within its budget, with the hits still there.
    let (code, body) = call(&app, "POST", "/v1/search", Some(json!({"query": "create a virtual environment", "group_by": "page", "max_tokens": 600}))).await;
    assert_eq!(code, 200, "{body}");
    let g = &body["grouped"];
    assert!(g["tokens"].as_u64().unwrap() <= 600 && g["max_tokens"] == 600, "{g}");
    assert!(g["pages"][0]["url"].as_str().unwrap().ends_with("venv.html"), "{g}");
    assert!(g["text"].as_str().unwrap().contains("venv"), "{g}");
    assert!(!body["hits"].as_array().unwrap().is_empty());
    let (code, body) = call(&app, "POST", "/v1/search", Some(json!({"query": "venv", "max_tokens": 600}))).await;
    assert_eq!((code.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("group_by"), "{body}");
    let (code, body) = call(&app, "POST", "/v1/search", Some(json!({"query": "venv", "group_by": "page", "max_tokens": 10}))).await;
    assert_eq!(code.as_u16(), 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("max_tokens"), "{body}");
    let (code, _) = call(&app, "POST", "/v1/search", Some(json!({"query": "venv", "group_by": "chapter"}))).await;
    assert_eq!(code.as_u16(), 400);

    // One hit per section by default; `collapse: none` answers every chunk.
    let sections = |body: &Value| -> Vec<String> { body["hits"].as_array().unwrap().iter().map(|h| h["url"].as_str().unwrap().to_owned()).collect() };
    let (code, collapsed) = call(&app, "POST", "/v1/search", Some(json!({"query": "handling exceptions with try and except", "limit": 8}))).await;
    assert_eq!(code, 200, "{collapsed}");
    let (code, every) = call(&app, "POST", "/v1/search", Some(json!({"query": "handling exceptions with try and except", "limit": 8, "collapse": "none"}))).await;
    assert_eq!(code, 200, "{every}");
    let distinct = |v: &[String]| v.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(distinct(&sections(&collapsed)), sections(&collapsed).len(), "{collapsed}");
    assert!(distinct(&sections(&every)) < sections(&every).len(), "{every}");
    let (code, e) = call(&app, "POST", "/v1/search", Some(json!({"query": "venv", "collapse": "page"}))).await;
    assert_eq!((code.as_u16(), e["error"]["code"].as_str()), (400, Some("invalid_request")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("collapse"), "{e}");

    // A section by link, then its neighbour by id.
    let link = format!("{base}/errors.html#handling-exceptions");
    let (code, s) = call(&app, "GET", &format!("/v1/sections/{}", enc(&link)), None).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["section"]["url"], link.as_str());
    assert_eq!(s["metadata"]["version"], "3.11");
    let next = s["next"]["id"].as_str().unwrap();
    let (code, n) = call(&app, "GET", &format!("/v1/sections/{next}"), None).await;
    assert_eq!((code.as_u16(), n["previous"]["url"].as_str()), (200, Some(link.as_str())), "{n}");
    let (code, e) = call(&app, "GET", &format!("/v1/sections/{}", enc(&format!("{base}/errors.html#nope"))), None).await;
    assert_eq!((code.as_u16(), e["error"]["code"].as_str()), (404, Some("not_found")), "{e}");

    // A page, paged.
    let (code, p) = call(&app, "GET", &format!("/v1/pages?url={}&max_tokens=300", enc(&format!("{base}/errors.html"))), None).await;
    assert_eq!(code, 200, "{p}");
    assert!(p["tokens"].as_u64().unwrap() <= 300 && p["next_cursor"].as_u64().is_some(), "{p}");
    let (code, e) = call(&app, "GET", "/v1/pages?max_tokens=300", None).await;
    assert_eq!(code.as_u16(), 400, "{e}");

    // Libraries and resolution.
    let (code, l) = call(&app, "GET", "/v1/libraries", None).await;
    assert_eq!(code, 200, "{l}");
    assert_eq!(l["libraries"][0]["name"], "docs");
    assert_eq!(l["libraries"][0]["versions"], json!(["3.11"]));
    let (code, r) = call(&app, "GET", "/v1/resolve?name=docs%40%5E3.10", None).await;
    assert_eq!((code.as_u16(), r["version"].as_str()), (200, Some("3.11")), "{r}");
    let (code, r) = call(&app, "GET", "/v1/resolve?name=docs&version=3.12", None).await;
    assert_eq!(code, 200, "{r}");
    assert!(r.get("version").is_none() && r["note"].as_str().unwrap().contains("3.11"), "{r}");
    let (code, r) = call(&app, "GET", "/v1/resolve?name=nosuchlib", None).await;
    assert_eq!((code.as_u16(), r["error"]["code"].as_str()), (404, Some("not_found")), "{r}");

    // Facets: every value over the whole collection. Each chunk is version 3.11; no chunk
    // sets a language, framework or doc type.
    let chunks = l["libraries"][0]["chunks"].as_u64().unwrap();
    assert!(chunks > 10, "{l}");
    let (code, f) = call(&app, "GET", "/v1/facets", None).await;
    assert_eq!(code, 200, "{f}");
    assert_eq!(f, json!({"collection": "docs", "facets": {"version": [{"value": "3.11", "count": chunks}], "language": [], "framework": [], "doc_type": []}}));
    let (code, same) = call(&app, "GET", "/v1/facets?collection=docs", None).await;
    assert_eq!((code.as_u16(), &same), (200, &f));
    let (code, e) = call(&app, "GET", "/v1/facets?collection=nosuch", None).await;
    assert_eq!((code.as_u16(), e["error"]["code"].as_str()), (404, Some("collection_not_found")), "{e}");
    let (code, e) = call(&app, "GET", "/v1/facets?field=language", None).await;
    assert_eq!((code.as_u16(), e["error"]["code"].as_str()), (400, Some("invalid_request")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("field"), "{e}");
}

/// An answer that lives only in library B is found by a search over `"*"` (and over a list)
/// with A and B indexed; each hit names its collection, and the grouped answer reads across
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_across_libraries_finds_what_only_one_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    common::write_tree(&a, &[("runtime.md", "# Runtime\n\n## Spawning tasks\n\nUse spawn to run a future on the runtime.\n"), ("timers.md", "# Timers\n\n## Sleep\n\nsleep waits for a duration.\n")]);
    common::write_tree(&b, &[("frob.md", "# Frobnication\n\n## Enabling the frobnicator\n\nSet frobnicate = true in widget.toml to turn on the frobnicator.\n"), ("intro.md", "# Widgets\n\nWidgets are small.\n")]);
    let engine = common::engine(&dir.path().join("data"));
    for (root, name) in [(&a, "liba"), (&b, "libb")] {
        let req = aidocs::IngestRequest { path: root.clone(), collection: name.into(), metadata: Default::default(), base_url: None };
        engine.ingest().directory(req, &aidocs::progress::NoProgress).await.unwrap();
    }
    let app = aidocs_http::router(engine);
    let question = "how do I turn on the frobnicator";
    for target in [json!("*"), json!(["liba", "libb"])] {
        let (code, body) = call(&app, "POST", "/v1/search", Some(json!({"query": question, "collection": target, "limit": 4, "group_by": "page", "max_tokens": 500}))).await;
        assert_eq!(code, 200, "{body}");
        let top = &body["hits"][0];
        assert_eq!((top["collection"].as_str(), top["path"].as_str()), (Some("libb"), Some("frob.md")), "{body}");
        assert!(body["hits"].as_array().unwrap().iter().all(|h| h["collection"].is_string()), "{body}");
        assert!(body["hits"].as_array().unwrap().iter().any(|h| h["collection"] == "liba"), "both libraries answer: {body}");
        assert_eq!(body["grouped"]["pages"][0]["library"], "libb", "{body}");
    }
    // Only library A: the answer is not there.
    let (_, body) = call(&app, "POST", "/v1/search", Some(json!({"query": question, "collection": "liba", "limit": 4}))).await;
    assert!(body["hits"].as_array().unwrap().iter().all(|h| h["path"] != "frob.md"));
    for bad in [json!([]), json!(["liba", "nope"])] {
        let (code, body) = call(&app, "POST", "/v1/search", Some(json!({"query": question, "collection": bad}))).await;
        assert!(code.is_client_error(), "{body}");
    }
    // A search spans at most `search.max_collections` (16): a longer list is refused before
    // any lookup, and so is a `*` that covers more.
    let many: Vec<String> = (0..17).map(|i| format!("lib{i}")).collect();
    let (code, body) = call(&app, "POST", "/v1/search", Some(json!({"query": question, "collection": many}))).await;
    assert_eq!((code.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("lists 17 collections") && body["error"]["message"].as_str().unwrap().contains("search.max_collections"), "{body}");
    drop(app);
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.search.max_collections = 1;
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    let (code, body) = call(&app, "POST", "/v1/search", Some(json!({"query": question, "collection": "*"}))).await;
    assert_eq!(code.as_u16(), 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`*` spans 2 collections"), "{body}");
}

/// Removing a version, then a library, through the admin API (what `remove_docs` does
/// through `aidocs mcp --server`): the other version stays; an alias' name or an unknown
/// collection is a 404 that deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_libraries_are_removed_through_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::engine(&dir.path().join("data"));
    for (version, text) in [("1.0", "Install with the old installer."), ("2.0", "Install with the new installer.")] {
        let root = dir.path().join(version);
        common::write_tree(&root, &[("install.md", &format!("# Install\n\n{text}\n"))]);
        let metadata = aidocs::core::DocMetadata { version: Some(version.into()), ..Default::default() };
        let req = aidocs::IngestRequest { path: root, collection: "docs".into(), metadata, base_url: None };
        engine.ingest().directory(req, &aidocs::progress::NoProgress).await.unwrap();
    }
    engine.store().set_alias("live", "docs").await.unwrap();
    let app = aidocs_http::router(engine.clone());
    let (code, r) = call(&app, "DELETE", "/v1/admin/collections/docs/versions/1.0", None).await;
    assert_eq!((code.as_u16(), r["chunks"].as_u64(), r["version"].as_str()), (200, Some(1), Some("1.0")), "{r}");
    assert_eq!(*engine.versions("docs").await.unwrap(), ["2.0"]);
    let (code, r) = call(&app, "DELETE", "/v1/admin/collections/live", None).await;
    assert_eq!((code.as_u16(), r["error"]["code"].as_str()), (404, Some("collection_not_found")), "by an alias' name: {r}");
    let (code, r) = call(&app, "DELETE", "/v1/admin/collections/nope/versions/1.0", None).await;
    assert_eq!(code.as_u16(), 404, "{r}");
    assert_eq!(engine.store().resolve("live").await.unwrap(), "docs", "nothing deleted");
    let (code, r) = call(&app, "DELETE", "/v1/admin/collections/docs", None).await;
    assert_eq!((code.as_u16(), r["collection"].as_str()), (200, Some("docs")), "{r}");
    let (code, _) = call(&app, "GET", "/v1/collections/docs", None).await;
    assert_eq!(code.as_u16(), 404);
}

/// Two versions side by side in one library: a search that names none is answered from the
/// newest and says so; `all_versions` and a `version` filter reach the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_naming_no_version_takes_the_newest_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::engine(&dir.path().join("data"));
    for (version, text) in [("1.9", "Set retries = 3 in widget.toml to retry."), ("1.10", "Set retry_policy = \"backoff\" in widget.toml to retry.")] {
        let root = dir.path().join(version);
        common::write_tree(&root, &[("retry.md", &format!("# Retries\n\n## Retrying requests\n\n{text}\n"))]);
        let metadata = aidocs::core::DocMetadata { version: Some(version.into()), ..Default::default() };
        let req = aidocs::IngestRequest { path: root, collection: "widget".into(), metadata, base_url: None };
        engine.ingest().directory(req, &aidocs::progress::NoProgress).await.unwrap();
    }
    let app = aidocs_http::router(engine);
    let ask = |extra: Value| {
        let mut body = json!({"query": "how do I retry requests", "collection": "widget"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let versions = |body: &Value| body["hits"].as_array().unwrap().iter().map(|h| h["metadata"]["version"].as_str().unwrap().to_owned()).collect::<std::collections::BTreeSet<_>>();

    let (code, body) = call(&app, "POST", "/v1/search", Some(ask(json!({})))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["default_version"], "1.10", "1.10 is newer than 1.9: {body}");
    assert_eq!(versions(&body).into_iter().collect::<Vec<_>>(), ["1.10"], "{body}");

    let (code, body) = call(&app, "POST", "/v1/search", Some(ask(json!({"all_versions": true})))).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.get("default_version").is_none(), "{body}");
    assert_eq!(versions(&body).into_iter().collect::<Vec<_>>(), ["1.10", "1.9"], "{body}");

    let (code, body) = call(&app, "POST", "/v1/search", Some(ask(json!({"filter": {"version": "1.9"}})))).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.get("default_version").is_none(), "{body}");
    assert_eq!(versions(&body).into_iter().collect::<Vec<_>>(), ["1.9"], "{body}");

    let (code, body) = call(&app, "POST", "/v1/search", Some(ask(json!({"all_versions": "yes"})))).await;
    assert_eq!(code.as_u16(), 400, "{body}");
}
