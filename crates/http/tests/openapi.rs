//! The OpenAPI document: served at `GET /openapi.json`, the same as the committed
//! `docs/openapi.json` (regenerate with `AIDOCS_BLESS=1 cargo test -p aidocs-http --test
//! openapi`), and true to the router: every documented operation is routed, and every route
//! of the API surface is documented with the scope its router enforces.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::BTreeSet;
use tower::ServiceExt;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The API surface, as users call it: adding or removing a route must change this list, the
/// committed document and docs/api.md together.
const SURFACE: &[(&str, &str, Option<&str>)] = &[
    ("get", "/health", None),
    ("get", "/health/ready", None),
    ("get", "/metrics", None),
    ("get", "/health/detailed", Some("admin")),
    ("post", "/v1/search", Some("search")),
    ("post", "/v1/feedback", Some("search")),
    ("get", "/v1/collections", Some("search")),
    ("get", "/v1/collections/{name}", Some("search")),
    ("get", "/v1/sections/{id}", Some("search")),
    ("get", "/v1/pages", Some("search")),
    ("get", "/v1/libraries", Some("search")),
    ("get", "/v1/resolve", Some("search")),
    ("get", "/v1/facets", Some("search")),
    ("post", "/v1/documents", Some("admin")),
    ("get", "/v1/admin/cache", Some("admin")),
    ("delete", "/v1/admin/cache", Some("admin")),
    ("get", "/v1/admin/canaries", Some("admin")),
    ("post", "/v1/admin/canaries", Some("admin")),
    ("get", "/v1/admin/canaries/{id}", Some("admin")),
    ("post", "/v1/admin/canaries/{id}/{action}", Some("admin")),
    ("post", "/v1/admin/deploy/blue-green", Some("admin")),
    ("get", "/v1/admin/ab", Some("admin")),
    ("post", "/v1/admin/ab", Some("admin")),
    ("get", "/v1/admin/ab/{id}", Some("admin")),
    ("post", "/v1/admin/ab/{id}/stop", Some("admin")),
    ("get", "/deployment/status", Some("admin")),
    ("post", "/v1/admin/sync", Some("admin")),
    ("get", "/v1/admin/sources", Some("admin")),
    ("get", "/v1/admin/backups", Some("admin")),
    ("post", "/v1/admin/backups", Some("admin")),
    ("post", "/v1/admin/backups/prune", Some("admin")),
    ("post", "/v1/admin/backups/drill", Some("admin")),
    ("post", "/v1/admin/backups/{id}/verify", Some("admin")),
    ("post", "/v1/admin/backups/{id}/restore", Some("admin")),
    ("delete", "/v1/admin/collections/{name}", Some("admin")),
    ("delete", "/v1/admin/collections/{name}/versions/{version}", Some("admin")),
    ("get", "/v1/admin/jobs", Some("admin")),
    ("get", "/v1/admin/jobs/{id}", Some("admin")),
    ("post", "/v1/admin/jobs/{id}/cancel", Some("admin")),
    ("get", "/v1/admin/profile", Some("admin")),
];

async fn send(app: &axum::Router, method: &str, uri: &str, body: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = Request::builder().method(method.to_uppercase().as_str()).uri(uri);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let resp = app.clone().oneshot(req.body(body.map_or(Body::empty(), |b| Body::from(b.to_owned()))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_committed_one_and_true_to_the_router() {
    let data = tempfile::tempdir().unwrap();
    let app = aidocs_http::router(common::engine(data.path()));
    let (status, body) = send(&app, "get", "/openapi.json", None).await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "aidocs");

    // The committed copy.
    let committed_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var_os("AIDOCS_BLESS").is_some() {
        std::fs::write(&committed_path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == pretty,
        "docs/openapi.json differs from GET /openapi.json: the API changed. Review the change, then run \
         `AIDOCS_BLESS=1 cargo test --workspace --test openapi` and commit docs/openapi.json"
    );

    // Documented operations = the surface, each with the scope its router enforces.
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let scopes: BTreeSet<&str> = op["security"].as_array().into_iter().flatten().flat_map(|r| r.as_object().unwrap().values()).flat_map(|v| v.as_array().unwrap()).map(|s| s.as_str().unwrap()).collect();
            let scope = match scopes.len() {
                0 => None,
                1 => scopes.into_iter().next(),
                _ => panic!("{m} {path}: several scopes {scopes:?}"),
            };
            documented.insert((m.to_owned(), path.clone(), scope.map(str::to_owned)));
            assert!(op["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"].as_str().is_some_and(|r| r.ends_with("/ErrorBody")), "{m} {path}: error body");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{m} {path}: a tag");
        }
    }
    let surface: BTreeSet<(String, String, Option<String>)> = SURFACE.iter().map(|(m, p, s)| (m.to_string(), p.to_string(), s.map(str::to_owned))).collect();
    assert_eq!(documented, surface, "the documented operations are the API surface");
    for schema in ["ErrorBody", "SearchBody", "SearchResponse", "DocumentsBody", "CanaryStart", "AbCreate", "BlueGreenBody", "Collection", "Grouped", "SectionResponse", "PageResponse", "Libraries", "Resolution"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema}");
    }

    // Every documented operation is routed: no 404 "no such route", no 405.
    for (method, path, _) in SURFACE {
        let uri = path.replace("{name}", "ghost").replace("{id}", "ghost").replace("{action}", "pause");
        let uri = if uri.ends_with("/profile") { format!("{uri}?seconds=0") } else { uri };
        let body = (*method == "post").then_some("{}");
        let (status, body) = send(&app, method, &uri, body).await;
        let text = String::from_utf8_lossy(&body);
        assert!(status != 405 && !(status == 404 && text.contains("no such route")), "{method} {uri} is documented but not routed: {status} {text}");
    }
    let (status, _) = send(&app, "get", "/v1/not-a-route", None).await;
    assert_eq!(status, 404, "an undocumented path is not routed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_in_the_document_are_the_scopes_enforced() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = common::config(data.path());
    let key = |k: &str, scopes: Vec<aidocs::config::Scope>| aidocs::config::ApiKey { name: k.into(), sha256: aidocs_http::hash_key(&format!("{k}-key-0123456789")), scopes };
    cfg.auth.keys = vec![key("reader", vec![aidocs::config::Scope::Search])];
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    for (method, path, scope) in SURFACE {
        let uri = path.replace("{name}", "ghost").replace("{id}", "ghost").replace("{action}", "pause");
        let uri = if uri.ends_with("/profile") { format!("{uri}?seconds=0") } else { uri };
        let body = (*method == "post").then_some("{}");
        let (anonymous, _) = send(&app, method, &uri, body).await;
        match scope {
            None => assert_ne!(anonymous, 401, "{method} {path} is public"),
            Some(_) => assert_eq!(anonymous, 401, "{method} {path} needs a key"),
        }
        let mut req = Request::builder().method(method.to_uppercase().as_str()).uri(&uri).header("authorization", "Bearer reader-key-0123456789");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let status = app.clone().oneshot(req.body(body.map_or(Body::empty(), |b| Body::from(b.to_owned()))).unwrap()).await.unwrap().status().as_u16();
        match scope {
            Some("admin") => assert_eq!(status, 403, "{method} {path} needs the admin scope"),
            _ => assert!(status != 401 && status != 403, "{method} {path} is open to a search key: {status}"),
        }
    }
}
