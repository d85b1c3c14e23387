//! Per-client rate limiting: 429 with `Retry-After`, separate budgets per client IP, and
//! `X-Forwarded-For` believed only from trusted proxies.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::Request;
use std::net::SocketAddr;
use tower::ServiceExt;

async fn status(app: &axum::Router, peer: &str, uri: &str, xff: Option<&str>) -> (u16, Option<String>, String) {
    let app = app.clone().layer(MockConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let mut r = Request::get(uri);
    if let Some(x) = xff {
        r = r.header("x-forwarded-for", x);
    }
    let resp = app.oneshot(r.body(Body::empty()).unwrap()).await.unwrap();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let code = resp.status().as_u16();
    let body = String::from_utf8_lossy(&http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes()).into_owned();
    (code, retry, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_get_429_past_their_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.server.rate_limit_per_minute = 6;
    cfg.server.rate_limit_burst = 3;
    cfg.server.trusted_proxies = vec!["10.0.0.9".parse().unwrap()];
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());

    for _ in 0..3 {
        assert_eq!(status(&app, "10.0.0.1:5000", "/v1/collections", None).await.0, 200);
    }
    let (code, retry, body) = status(&app, "10.0.0.1:5001", "/v1/collections", None).await;
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("\"rate_limited\"") && body.contains("10.0.0.1"), "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=10).contains(&retry), "one request per 10 s: retry in {retry}");
    // Health is not limited; another client has its own budget.
    assert_eq!(status(&app, "10.0.0.1:5002", "/health", None).await.0, 200);
    assert_eq!(status(&app, "10.0.0.2:5000", "/v1/collections", None).await.0, 200);

    // Behind a trusted proxy the client is the forwarded address...
    for _ in 0..3 {
        assert_eq!(status(&app, "10.0.0.9:7000", "/v1/collections", Some("192.0.2.7, 10.0.0.9")).await.0, 200);
    }
    assert_eq!(status(&app, "10.0.0.9:7000", "/v1/collections", Some("192.0.2.7")).await.0, 429);
    assert_eq!(status(&app, "10.0.0.9:7000", "/v1/collections", Some("192.0.2.8")).await.0, 200, "each forwarded client has its own budget");
    // ... but an untrusted peer cannot pick its identity with the header.
    assert_eq!(status(&app, "10.0.0.1:5003", "/v1/collections", Some("198.51.100.1")).await.0, 429);
}

/// Every route that is shed is also rate-limited, `/deployment/status` included (it used to
/// be shed and admin-only but never limited: each layer classified routes by its own list).
#[tokio::test(flavor = "multi_thread")]
async fn deployment_status_is_rate_limited_like_every_api_route() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.server.rate_limit_per_minute = 6;
    cfg.server.rate_limit_burst = 2;
    let app = aidocs_http::router(aidocs::Engine::open(cfg).unwrap());
    for _ in 0..2 {
        assert_eq!(
            status(&app, "10.0.0.3:5000", "/deployment/status", None)
                .await
                .0,
            200
        );
    }
    let (code, retry, body) = status(&app, "10.0.0.3:5000", "/deployment/status", None).await;
    assert_eq!(code, 429, "{body}");
    assert!(retry.is_some());
    // Liveness, readiness and metrics stay outside the limit.
    for uri in ["/health", "/health/ready", "/metrics"] {
        assert_eq!(
            status(&app, "10.0.0.3:5000", uri, None).await.0,
            200,
            "{uri}"
        );
    }
}
