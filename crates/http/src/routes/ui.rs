//! The pages for people: the search page (`GET /`) and the operator console
//! (`GET /console`), with their assets under `/ui/`, compiled into the binary (no build
//! step, nothing fetched at run time). The pages talk only to the API with the key a person
//! enters (kept in the tab's session storage): the console's every figure and action goes
//! through the admin API, so without an admin key it shows nothing but the request for one.
//! The pages themselves hold no data and need no scope.
//!
//! Every answer carries a Content-Security-Policy that allows scripts, styles and requests
//! from this origin only (no inline script or style, no framing, no plugins), with
//! `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and no referrer. Not in the
//! OpenAPI document: these are pages, not API.

use aidocs::Engine;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../../ui/index.html");
const COMMON_JS: &str = include_str!("../../ui/common.js");
const APP_JS: &str = include_str!("../../ui/app.js");
const APP_CSS: &str = include_str!("../../ui/app.css");
const CONSOLE: &str = include_str!("../../ui/console.html");
const CONSOLE_JS: &str = include_str!("../../ui/console.js");

/// The policy of every page and asset.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn router() -> Router<Engine> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/ui/common.js", get(|| async { asset("text/javascript; charset=utf-8", COMMON_JS) }))
        .route("/ui/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/ui/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/console", get(|| async { asset("text/html; charset=utf-8", CONSOLE) }))
        .route("/ui/console.js", get(|| async { asset("text/javascript; charset=utf-8", CONSOLE_JS) }))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        // Revalidated each time: a new release's page never runs an old script.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body)
}
