//! The auth matrix: every route × (no key, unknown key, search key, admin key), and
//! `auth.public_search`.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::config::{ApiKey, Scope};
use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use tower::ServiceExt;

const SEARCH_KEY: &str = "search-key-0123456789";
const ADMIN_KEY: &str = "admin-key-0123456789abc";

fn app(dir: &std::path::Path, public_search: bool) -> axum::Router {
    let mut cfg = common::config(dir);
    cfg.auth.public_search = public_search;
    cfg.auth.keys = vec![
        ApiKey { name: "reader".into(), sha256: aidocs_http::hash_key(SEARCH_KEY), scopes: vec![Scope::Search] },
        ApiKey { name: "ops".into(), sha256: aidocs_http::hash_key(ADMIN_KEY).to_uppercase(), scopes: vec![Scope::Admin] },
    ];
    cfg.validate().unwrap();
    aidocs_http::router(aidocs::Engine::open(cfg).unwrap())
}

fn request(method: &str, uri: &str, key: Option<&str>, body: Option<serde_json::Value>, docs: &std::path::Path) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        r = if k.starts_with("admin") { r.header("x-api-key", k) } else { r.header("authorization", format!("Bearer {k}")) };
    }
    let body = match body {
        Some(mut v) => {
            if v.get("path").is_some() {
                v["path"] = json!(docs);
            }
            r = r.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    r.body(body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_checks_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write_tree(&docs, &[("a.md", "# Alpha\n\nAlpha text about keys.\n")]);
    let app = app(&dir.path().join("data"), false);
    let search = json!({"query": "alpha", "collection": "docs"});
    let ingest = json!({"path": "", "collection": "docs"});
    // (method, uri, body, [no key, unknown key, search key, admin key])
    let matrix: Vec<(&str, &str, Option<serde_json::Value>, [u16; 4])> = vec![
        ("POST", "/v1/documents", Some(ingest), [401, 401, 403, 200]),
        ("POST", "/v1/search", Some(search), [401, 401, 200, 200]),
        ("GET", "/v1/collections", None, [401, 401, 200, 200]),
        ("GET", "/v1/collections/docs", None, [401, 401, 200, 200]),
        ("GET", "/v1/admin/cache", None, [401, 401, 403, 200]),
        ("DELETE", "/v1/admin/cache", None, [401, 401, 403, 200]),
        ("GET", "/v1/admin/canaries", None, [401, 401, 403, 200]),
        // Admin passes auth and reaches the handler: no such canary / alias.
        ("GET", "/v1/admin/canaries/none", None, [401, 401, 403, 404]),
        ("POST", "/v1/admin/canaries", Some(json!({"alias": "nope", "collection": "docs"})), [401, 401, 403, 400]),
        ("POST", "/v1/admin/canaries/none/pause", None, [401, 401, 403, 404]),
        // Admin passes auth; the source path is outside ingest.allowed_roots.
        ("POST", "/v1/admin/deploy/blue-green", Some(json!({"alias": "docs", "source": "/nonexistent"})), [401, 401, 403, 403]),
        ("GET", "/deployment/status", None, [401, 401, 403, 200]),
        ("GET", "/metrics", None, [200, 200, 200, 200]),
        ("GET", "/health", None, [200, 200, 200, 200]),
        ("GET", "/health/ready", None, [200, 200, 200, 200]),
        // Lists every collection and runs an embedding: operators only.
        ("GET", "/health/detailed", None, [401, 401, 403, 200]),
        // Admin passes auth; a zero-second profile is refused by the handler.
        (
            "GET",
            "/v1/admin/profile?seconds=0",
            None,
            [401, 401, 403, 400],
        ),
        // HEAD is a read like GET (it used to need admin).
        ("HEAD", "/v1/collections", None, [401, 401, 200, 200]),
    ];
    for (method, uri, body, expected) in matrix {
        for (key, want) in [None, Some("not-a-real-key-000000"), Some(SEARCH_KEY), Some(ADMIN_KEY)].into_iter().zip(expected) {
            let resp = app.clone().oneshot(request(method, uri, key, body.clone(), &docs)).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
            assert_eq!(status, want, "{method} {uri} with {key:?}: {}", String::from_utf8_lossy(&bytes));
            if (want == 401 || want == 403) && method != "HEAD" {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(v["error"]["code"], if want == 401 { "unauthorized" } else { "forbidden" });
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn public_search_opens_reads_only() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write_tree(&docs, &[("a.md", "# Alpha\n\nAlpha text.\n")]);
    let app = app(&dir.path().join("data"), true);
    let ingest = json!({"path": "", "collection": "docs"});
    assert_eq!(app.clone().oneshot(request("POST", "/v1/documents", Some(ADMIN_KEY), Some(ingest.clone()), &docs)).await.unwrap().status(), 200);
    let search = json!({"query": "alpha", "collection": "docs"});
    assert_eq!(app.clone().oneshot(request("POST", "/v1/search", None, Some(search), &docs)).await.unwrap().status(), 200);
    assert_eq!(app.clone().oneshot(request("GET", "/v1/collections", None, None, &docs)).await.unwrap().status(), 200);
    assert_eq!(app.clone().oneshot(request("POST", "/v1/documents", None, Some(ingest), &docs)).await.unwrap().status(), 401);
    assert_eq!(app.clone().oneshot(request("DELETE", "/v1/admin/cache", Some(SEARCH_KEY), None, &docs)).await.unwrap().status(), 403);
}

#[test]
fn malformed_key_hashes_are_rejected_by_validation() {
    let mut cfg = aidocs::Config::default();
    cfg.auth.keys = vec![ApiKey { name: "bad".into(), sha256: "abc".into(), scopes: vec![Scope::Admin] }];
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("auth.keys `bad`") && err.contains("64 hex"), "{err}");
}

/// The admin client (every CLI `--server` command) keeps the server's error code: 401, 403
/// and 429 used to all come back as `unavailable`.
#[tokio::test(flavor = "multi_thread")]
async fn the_admin_client_decodes_the_servers_error_codes() {
    use aidocs::error::ErrorCode;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.auth.keys = vec![
        ApiKey {
            name: "reader".into(),
            sha256: aidocs_http::hash_key(SEARCH_KEY),
            scopes: vec![Scope::Search],
        },
        ApiKey {
            name: "ops".into(),
            sha256: aidocs_http::hash_key(ADMIN_KEY),
            scopes: vec![Scope::Admin],
        },
    ];
    cfg.server.rate_limit_per_minute = 1;
    cfg.server.rate_limit_burst = 3;
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    let client = |key: Option<&str>| {
        aidocs_http::client::AdminClient::new(
            &base,
            key.map(str::to_owned),
            std::time::Duration::from_secs(30),
        )
        .unwrap()
    };
    let code = |r: Result<serde_json::Value, aidocs::Error>| r.unwrap_err().code();
    assert_eq!(
        code(client(None).get("/v1/admin/cache").await),
        ErrorCode::Unauthorized
    );
    assert_eq!(
        code(client(Some(SEARCH_KEY)).get("/v1/admin/cache").await),
        ErrorCode::Forbidden
    );
    let err = client(Some(ADMIN_KEY))
        .get("/v1/admin/canaries/none")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(
        err.to_string()
            .starts_with("server answered 404 not_found:"),
        "{err}"
    );
    // The burst of 3 is spent: the next request is rate limited.
    assert_eq!(
        code(client(Some(ADMIN_KEY)).get("/v1/admin/cache").await),
        ErrorCode::RateLimited
    );
}
