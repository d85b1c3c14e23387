//! `aidocs-http`: the HTTP edge of aidocs (axum).
//!
//! Owns: the routes, one module per resource (`routes/`), each an `OpenApiRouter` whose
//! handlers carry their OpenAPI description; the transfer types ([`wire`]); the error
//! responses ([`error`], codes from `aidocs::ErrorCode`); auth scopes, declared on the routers
//! they guard ([`auth`]); the middleware stack ([`layers`]); admin jobs over HTTP ([`jobs`]);
//! the OpenAPI 3.1 document ([`openapi`], served at `GET /openapi.json`); the MCP server for
//! coding agents ([`mcp`], streamable HTTP at `/mcp`, stdio through `aidocs mcp`); and the
//! admin client tools use to talk to a running server ([`client`]).
//!
//! Must not know: how search, ingest or rollouts work (it calls `aidocs::Engine`), or how
//! settings are read (it receives the resolved config through the engine).
//!
//! The stack, outermost first: request-id sanitising, request id, trace span, panic
//! catching, request counting, jobs and stats extensions, JSON error bodies for axum's own
//! rejections, the body limit; then per router: load shedding, rate limit, auth scope and
//! deadline (API routers only; health, metrics and the OpenAPI document carry none).

pub mod auth;
pub mod client;
pub mod error;
pub mod jobs;
pub mod layers;
pub mod mcp;
pub mod openapi;
pub mod routes;
pub mod wire;

pub use auth::hash_key;
pub use error::{ApiError, ApiJson};
pub use layers::{MAX_REQUEST_ID_LEN, client_ip, valid_request_id};

use aidocs::Engine;
use aidocs::config::Scope;
use aidocs::jobs::Jobs;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

/// The API router over an engine: every route, the middleware, and `GET /openapi.json`.
pub fn router(engine: Engine) -> Router {
    let jobs = jobs(&engine);
    let (api, doc) = api(&engine, &jobs).split_for_parts();
    let doc = openapi::finish(doc);
    let server = &engine.config().server;
    let stats = Arc::new(layers::ApiStats { started: Instant::now(), requests: AtomicU64::new(0), errors: AtomicU64::new(0) });
    let counting = layers::Counting { stats: stats.clone(), metrics: engine.metrics().clone() };
    Router::new()
        .merge(api)
        .route("/openapi.json", openapi::serve(&doc))
        .merge(routes::ui::router())
        .fallback(|| async { ApiError::new(aidocs::ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async { ApiError::new(aidocs::ErrorCode::MethodNotAllowed, "method not allowed on this route") })
        .layer(DefaultBodyLimit::max(server.max_body_bytes))
        .layer(from_fn_with_state(server.max_body_bytes, layers::refuse_oversized))
        // Extractor rejections (an oversized body on a raw-bytes route, a path segment that
        // is not UTF-8) come as text/plain: made the JSON error like every other.
        .layer(map_response(error::json_errors))
        .layer(axum::Extension(stats))
        .layer(axum::Extension(jobs))
        .layer(from_fn_with_state(counting, layers::count))
        // A panicking handler answers 500 with the usual JSON body; the process lives on.
        .layer(CatchPanicLayer::custom(error::panic_response))
        .with_state(engine)
        // Every request gets an id: `X-Request-ID` when the client sent one, else a new UUID.
        // It is returned in the response and is `request_id` on the span of every log line
        // of the request. Outermost layer last.
        .layer(PropagateRequestIdLayer::new(layers::REQUEST_ID.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(layers::request_span))
        .layer(SetRequestIdLayer::new(layers::REQUEST_ID.clone(), MakeRequestUuid))
        // Before it: a client's id that is too long or has odd characters is replaced.
        .layer(from_fn(layers::sanitize_request_id))
}

/// The routers with their scopes, deadlines, rate limit and shedding: the one place that
/// says which route needs what.
fn api(engine: &Engine, jobs: &Jobs) -> OpenApiRouter<Engine> {
    let server = &engine.config().server;
    let auth = Arc::new(engine.config().auth.clone());
    // MCP: search scope to reach it; its write tools check for an admin key themselves.
    let mcp = OpenApiRouter::new().route_service("/mcp", mcp::http_service(engine.clone(), jobs.clone(), server.max_body_bytes));
    let reads = guarded(routes::reads().merge(mcp), auth.clone(), Scope::Search, Some(server.request_timeout_ms));
    let admin = guarded(routes::admin::router(), auth.clone(), Scope::Admin, Some(server.admin_timeout_ms));
    let detailed = guarded(routes::health::detailed_router(), auth, Scope::Admin, None);
    // Rate limit and shedding: one limiter and one permit pool for every API router.
    let limiter = layers::RateLimit::from_config(server);
    let shed = layers::Shed { permits: Arc::new(tokio::sync::Semaphore::new(server.max_concurrent_requests)), metrics: engine.metrics().clone() };
    let limited = reads
        .merge(admin)
        .merge(detailed)
        .route_layer(from_fn_with_state(limiter, layers::rate_limit))
        .route_layer(from_fn_with_state(shed, layers::shed));
    OpenApiRouter::with_openapi(openapi::base()).merge(limited).merge(routes::health::public())
}

/// A router that needs `scope` (marked on its operations in the OpenAPI document) and, when
/// given, answers within a deadline (504 `timeout` past it).
fn guarded(router: OpenApiRouter<Engine>, auth: Arc<aidocs::config::AuthSettings>, scope: Scope, deadline_ms: Option<u64>) -> OpenApiRouter<Engine> {
    let router = match deadline_ms {
        Some(ms) => router.route_layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(error::overload_error))
                .timeout(Duration::from_millis(ms)),
        ),
        None => router,
    };
    let mut router = router.route_layer(from_fn_with_state(auth::Guard::new(auth, scope), auth::require));
    openapi::require_scope(router.get_openapi_mut(), scope);
    router
}

/// Admin jobs: a request waits for its job until just before the admin deadline, then gets
/// 202. With rollout state in Redis, jobs are shared: any replica answers for any job.
fn jobs(engine: &Engine) -> Jobs {
    let jobs = Jobs::with_wait_limit(Duration::from_millis(engine.config().server.admin_timeout_ms.saturating_mul(9) / 10));
    match engine.rollout_state().map(|r| r.store().clone()).filter(|s| s.backend() == "redis") {
        Some(store) => jobs.shared(store),
        None => jobs,
    }
}
