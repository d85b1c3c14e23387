//! The HTTP API (axum). Wire shapes live here; the engine knows nothing of HTTP.
//!
//! Every error response is `{"error": {"code", "message"}}` with the status from the table
//! in [`crate::error::ErrorCode`]; request-body rejections (bad JSON, wrong content type,
//! oversized body) go through the same table.

use crate::config::{ApiKey, AuthSettings, Scope};
use crate::engine::{Engine, IngestRequest, SearchRequest};
use crate::error::{Error, ErrorCode};
use crate::filters;
use crate::jobs::{CancelError, JobKind, JobOutcome, JobProgress, Jobs};
use aidocs_core::{DocMetadata, SearchMode};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// An error on the wire.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if e.code() == ErrorCode::Internal {
            tracing::error!(error = %e, "request failed");
        }
        Self { code: e.code(), message: e.public_message() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code.as_str_and_status();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!({"error": {"code": code, "message": self.message}}))).into_response()
    }
}

/// `Json<T>` whose rejections are API errors with JSON bodies.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rej) => {
                let code = match rej.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
                    _ => ErrorCode::InvalidRequest,
                };
                Err(ApiError::new(code, rej.body_text()))
            }
        }
    }
}

/// `POST /v1/search` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    pub query: String,
    #[serde(default)]
    pub collection: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub mode: Option<SearchMode>,
    #[serde(default)]
    pub filter: Value,
    /// HyDE expansion; default from `hyde.enabled`.
    #[serde(default)]
    pub hyde: Option<bool>,
    /// Rerank the fused candidates; default from `rerank.enabled`.
    #[serde(default)]
    pub rerank: Option<bool>,
}

/// `POST /v1/documents` body: exactly one of `path` (on the server's machine), `url` (a
/// site crawled from this page), `sitemap` or `urls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentsBody {
    /// A file or directory on the server's machine.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub sitemap: Option<String>,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub max_pages: Option<usize>,
    #[serde(default)]
    pub max_depth: Option<usize>,
    #[serde(default)]
    pub collection: Option<String>,
    #[serde(default)]
    pub metadata: crate::config::MetadataDefaults,
    #[serde(default)]
    pub base_url: Option<String>,
}

/// The router with every route, over an engine.
pub fn router(engine: Engine) -> Router {
    let limit = engine.config().server.max_body_bytes;
    let stats = Arc::new(ApiStats { started: Instant::now(), requests: AtomicU64::new(0), errors: AtomicU64::new(0) });
    // Counts every response, including those of the auth, rate-limit and shed layers
    // inside it: `http_requests_total` by route template, and the health counters.
    let counting = {
        let stats = stats.clone();
        let metrics = engine.metrics().clone();
        axum::middleware::from_fn(move |req: Request, next: axum::middleware::Next| {
            let stats = stats.clone();
            let metrics = metrics.clone();
            async move {
                let started = Instant::now();
                let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
                let method = req.method().clone();
                let resp = next.run(req).await;
                stats.requests.fetch_add(1, Ordering::Relaxed);
                if resp.status().is_server_error() {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                }
                metrics.http_request(&route, method.as_str(), resp.status().as_u16(), started.elapsed().as_secs_f64());
                resp
            }
        })
    };
    let server = &engine.config().server;
    // API routes have a deadline: search and reads `request_timeout_ms`, admin work
    // `admin_timeout_ms`. (Load shedding is the outermost layer, see `shed`.)
    let guard = |timeout_ms: u64| {
        tower::ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(overload_error))
            .timeout(Duration::from_millis(timeout_ms))
    };
    let reads = Router::new()
        .route("/v1/search", post(search))
        .route("/v1/collections", get(collections))
        .route("/v1/collections/{name}", get(collection))
        .route("/v1/feedback", post(feedback))
        .route_layer(guard(server.request_timeout_ms));
    let admin = Router::new()
        .route("/v1/documents", post(documents))
        .route("/v1/admin/cache", get(cache_stats).delete(cache_clear))
        .route("/v1/admin/canaries", get(canary_list).post(canary_start))
        .route("/v1/admin/canaries/{id}", get(canary_get))
        .route("/v1/admin/canaries/{id}/{action}", post(canary_action))
        .route("/v1/admin/deploy/blue-green", post(blue_green))
        .route("/v1/admin/ab", get(ab_list).post(ab_create))
        .route("/v1/admin/ab/{id}", get(ab_status))
        .route("/v1/admin/ab/{id}/stop", post(ab_stop))
        .route("/deployment/status", get(deployment_status))
        .route("/v1/admin/sync", post(sync))
        .route("/v1/admin/backups", get(backup_list).post(backup_create))
        .route("/v1/admin/backups/prune", post(backup_prune))
        .route("/v1/admin/backups/drill", post(backup_drill))
        .route("/v1/admin/backups/{id}/verify", post(backup_verify))
        .route("/v1/admin/backups/{id}/restore", post(backup_restore))
        .route("/v1/admin/jobs", get(job_list))
        .route("/v1/admin/jobs/{id}", get(job_get))
        .route("/v1/admin/jobs/{id}/cancel", post(job_cancel))
        .route("/v1/admin/profile", get(profile))
        .route_layer(guard(server.admin_timeout_ms));
    let api = reads.merge(admin);
    // A request waits for its job until just before the admin deadline, then gets 202. With
    // rollout state in Redis, jobs are shared: any replica answers for any job.
    let jobs = Jobs::with_wait_limit(Duration::from_millis(
        server.admin_timeout_ms.saturating_mul(9) / 10,
    ));
    let jobs = match engine
        .rollout_state()
        .map(|r| r.store().clone())
        .filter(|s| s.backend() == "redis")
    {
        Some(store) => jobs.shared(store),
        None => jobs,
    };
    // Load shedding, outermost: past `max_concurrent_requests` API requests in flight, a
    // request is answered 503 + `Retry-After` before any other layer spends work on it (no
    // id, span, auth or routing), so an overload costs the accepted requests as little CPU
    // as possible. Its small body is read first so the connection stays usable. Health and
    // metrics routes are never shed, so load balancers still see the instance. Sheds are
    // counted in `http_requests_shed_total`.
    let shed = {
        let permits = Arc::new(tokio::sync::Semaphore::new(server.max_concurrent_requests));
        let metrics = engine.metrics().clone();
        axum::middleware::from_fn(move |req: Request, next: axum::middleware::Next| {
            let (permits, metrics) = (permits.clone(), metrics.clone());
            async move {
                if route_class(&req) == RouteClass::Public {
                    return next.run(req).await;
                }
                match permits.try_acquire_owned() {
                    Ok(permit) => {
                        let resp = next.run(req).await;
                        drop(permit);
                        resp
                    }
                    Err(_) => {
                        metrics.http_shed();
                        let _ = axum::body::to_bytes(req.into_body(), 64 * 1024).await;
                        overloaded()
                    }
                }
            }
        })
    };
    let auth = {
        let auth = Arc::new(engine.config().auth.clone());
        axum::middleware::from_fn(move |req: Request, next: axum::middleware::Next| {
            let auth = auth.clone();
            async move {
                match authorize(&auth, &req) {
                    Ok(()) => next.run(req).await,
                    Err(e) => e.into_response(),
                }
            }
        })
    };
    let rate_limit = {
        let limiter = RateLimit::from_config(server);
        axum::middleware::from_fn(move |req: Request, next: axum::middleware::Next| {
            let limiter = limiter.clone();
            async move {
                match limiter.as_ref().map(|l| l.check(&req)) {
                    Some(Err(resp)) => resp,
                    _ => next.run(req).await,
                }
            }
        })
    };
    Router::new()
        .merge(api)
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .route("/health/detailed", get(detailed))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async { ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this route") })
        .layer(DefaultBodyLimit::max(limit))
        // Extractor rejections (an oversized body on a raw-bytes route, a path segment that
        // is not UTF-8) come as text/plain: made the JSON error like every other.
        .layer(axum::middleware::map_response(json_errors))
        .layer(auth)
        .layer(rate_limit)
        .layer(axum::Extension(stats))
        .layer(axum::Extension(jobs))
        .layer(counting)
        // A panicking handler answers 500 with the usual JSON body; the process lives on.
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(engine)
        // Every request gets an id: `X-Request-ID` when the client sent one, else a new UUID.
        // It is returned in the response and is `request_id` on the span of every log line
        // of the request. Outermost layer last.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        // Before it: a client's id that is too long or has odd characters is replaced.
        .layer(axum::middleware::from_fn(sanitize_request_id))
        .layer(shed)
}

/// The answer to a request past the concurrency limit: prebuilt, no allocation beyond the
/// response itself.
fn overloaded() -> Response {
    const BODY: &str = r#"{"error":{"code":"overloaded","message":"too many concurrent requests; retry shortly"}}"#;
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, [(axum::http::header::CONTENT_TYPE, "application/json")], BODY).into_response();
    r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    r
}

static REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// Longest `X-Request-ID` kept from a client (a UUID is 36; W3C trace ids 32 or 55).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a client's `X-Request-ID` is kept: 1 to [`MAX_REQUEST_ID_LEN`] characters of
/// `A-Z a-z 0-9 - _ . :`. The id is logged on every line of the request, returned, and kept
/// for an hour with A/B answers, so an unbounded one costs memory and log volume.
pub fn valid_request_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// Drop a client's `X-Request-ID` unless it is exactly one valid id; the next layer then
/// gives the request a new UUID.
async fn sanitize_request_id(mut req: Request, next: axum::middleware::Next) -> Response {
    let mut ids = req.headers().get_all(&REQUEST_ID).iter();
    let keep = match (ids.next(), ids.next()) {
        (Some(v), None) => valid_request_id(v.as_bytes()),
        _ => false,
    };
    if !keep {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

/// Any error response that is not JSON (axum's own rejections) becomes the API's JSON error
/// with the same status; `Retry-After` is kept.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).trim().to_owned()).unwrap_or_default();
    let code = match status.as_u16() {
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        504 => ErrorCode::Timeout,
        400..=499 => ErrorCode::InvalidRequest,
        _ => ErrorCode::Internal,
    };
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
    let mut out = ApiError::new(code, message).into_response();
    *out.status_mut() = status;
    if let Some(v) = parts.headers.get(axum::http::header::RETRY_AFTER) {
        out.headers_mut().insert(axum::http::header::RETRY_AFTER, v.clone());
    }
    out
}

/// The span every log line of a request is in: its id, method and path.
fn request_span(req: &Request) -> tracing::Span {
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
}

async fn search(
    State(engine): State<Engine>,
    headers: axum::http::HeaderMap,
    Peer(peer): Peer,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<Response, ApiError> {
    let filter = filters::from_json(&body.filter)?;
    let name = body.collection.clone().unwrap_or_else(|| engine.config().search.default_collection.clone());
    // A canary (or a blue-green watch) on this alias decides the collection by routing key:
    // `X-User-ID`, else the client address, else the request id.
    let routed = engine.route(&name, &routing_key(&headers, peer, engine.config()));
    let mut req = SearchRequest {
        query: body.query.clone(),
        collection: Some(routed.as_ref().map_or(name.clone(), |r| r.collection.clone())),
        limit: body.limit,
        mode: body.mode,
        filter,
        hyde: body.hyde,
        rerank: body.rerank,
    };
    // An A/B variant's settings replace the request's (they were validated at creation).
    let mut searcher = engine.clone();
    if let Some(v) = routed.as_ref().and_then(|r| r.variant.as_ref()) {
        if let Some(m) = &v.mode {
            req.mode = serde_json::from_value(Value::String(m.clone())).ok();
        }
        req.hyde = v.hyde.or(req.hyde);
        req.rerank = v.rerank.or(req.rerank);
        if let Some(f) = v.fusion.as_ref().and_then(|f| f.parse().ok()) {
            searcher = engine.with_fusion(f);
        }
    }
    let query_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if let Some(r) = &routed {
        engine.remember_answer(&query_id, r);
    }
    let started = Instant::now();
    let result = searcher.search(req).await;
    if let Some(r) = &routed {
        let sample = aidocs_rollout::Sample {
            latency_ms: started.elapsed().as_secs_f64() * 1e3,
            error: result.as_ref().is_err_and(|e| e.code().as_str_and_status().1 >= 500),
            zero_results: result.as_ref().is_ok_and(|resp| resp.hits.is_empty()),
        };
        let (engine, r) = (engine.clone(), r.clone());
        tokio::spawn(async move { engine.record_routed(&r, sample).await });
    }
    let with_arm = |mut out: Response| {
        if let Some(r) = &routed {
            let h = out.headers_mut();
            let name = if r.variant.is_some() { "x-aidocs-variant" } else { "x-aidocs-arm" };
            if let Ok(arm) = axum::http::HeaderValue::from_str(&r.arm) {
                h.insert(name, arm);
            }
            if let Ok(id) = axum::http::HeaderValue::from_str(&r.rollout_id) {
                h.insert("x-aidocs-rollout", id);
            }
        }
        out
    };
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(target: "aidocs::search", event = "search_request", collection = %name, outcome = "error", error_code = e.code().as_str_and_status().0);
            return Ok(with_arm(ApiError::from(e).into_response()));
        }
    };
    let t = &resp.timings;
    let query = engine.config().server.log_queries.then_some(body.query.as_str());
    tracing::info!(
        target: "aidocs::search",
        event = "search_request",
        collection = %resp.collection,
        mode = resp.mode.as_str(),
        hits = resp.hits.len(),
        cached = resp.cached,
        took_ms = resp.took_ms,
        embed_ms = t.embed_ms,
        hyde_ms = t.hyde_ms,
        search_ms = t.search_ms,
        rerank_ms = t.rerank_ms,
        hyde = resp.hyde.as_ref().map(tracing::field::display),
        rerank = resp.rerank.as_ref().map(tracing::field::display),
        arm = routed.as_ref().map(|r| r.arm.as_str()),
        rollout = routed.as_ref().map(|r| r.rollout_id.as_str()),
        query,
        outcome = "ok",
    );
    let mut v = to_json(&resp)?;
    v["query"] = Value::String(body.query);
    v["query_id"] = Value::String(query_id);
    Ok(with_arm(Json(v).into_response()))
}

/// The TCP peer, when known: axum's `ConnectInfo` (a real server) or `MockConnectInfo`
/// (tests). `None` in-process without either.
struct Peer(Option<std::net::SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ext = &parts.extensions;
        Ok(Self(peer_addr(ext)))
    }
}

fn peer_addr(ext: &axum::http::Extensions) -> Option<std::net::SocketAddr> {
    ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<axum::extract::connect_info::MockConnectInfo<std::net::SocketAddr>>().map(|c| c.0))
}

/// The key that keeps a user on one side of a split: `X-User-ID`, else the client address
/// (see [`client_ip`]), else the request id.
fn routing_key(headers: &axum::http::HeaderMap, peer: Option<std::net::SocketAddr>, cfg: &crate::Config) -> String {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    if let Some(user) = header("x-user-id") {
        return format!("user:{user}");
    }
    if let Some(peer) = peer {
        return format!("ip:{}", client_ip(peer.ip(), headers, &cfg.server.trusted_proxies));
    }
    format!("req:{}", header("x-request-id").unwrap_or_default())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /v1/admin/canaries`.
async fn canary_start(State(engine): State<Engine>, ApiJson(body): ApiJson<crate::rollout::CanaryStart>) -> Result<Response, ApiError> {
    let c = engine.canary_start(body).await?;
    Ok((StatusCode::CREATED, Json(to_json(c)?)).into_response())
}

/// `GET /v1/admin/canaries`.
async fn canary_list(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"canaries": engine.canaries().await?})))
}

/// `GET /v1/admin/canaries/{id}`: state and both arms' statistics in the current stage.
async fn canary_get(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(engine.canary_status(&id).await?))
}

/// `POST /v1/admin/canaries/{id}/pause|resume|rollback`.
async fn canary_action(State(engine): State<Engine>, Path((id, action)): Path<(String, String)>, body: axum::body::Bytes) -> Result<Json<Value>, ApiError> {
    let c = match action.as_str() {
        "pause" => engine.canary_pause(&id).await?,
        "resume" => engine.canary_resume(&id).await?,
        "rollback" => {
            let reason = if body.is_empty() {
                None
            } else {
                serde_json::from_slice::<RollbackBody>(&body).map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))?.reason
            };
            engine.canary_rollback(&id, reason.as_deref().unwrap_or("requested by an operator")).await?
        }
        other => return Err(ApiError::new(ErrorCode::NotFound, format!("unknown canary action `{other}` (pause, resume, rollback)"))),
    };
    Ok(Json(to_json(c)?))
}

/// `POST /v1/admin/deploy/blue-green`: runs to the end (build, validate, switch, monitor).
async fn blue_green(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, ApiJson(mut body): ApiJson<crate::rollout::BlueGreenRequest>) -> Result<Response, ApiError> {
    // The tree green is built from is read on the server's machine: the same allow-list as
    // path ingest.
    body.source = allowed_path(&engine.config().ingest.allowed_roots, &body.source)?;
    let target = Some(body.alias.clone());
    run_job(&jobs, JobKind::BlueGreen, target, wait, StatusCode::OK, move |p| async move { engine.deploy_blue_green(body, p.as_ref()).await }).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    #[serde(default)]
    collection: Option<String>,
}

/// `POST /v1/admin/sync`: re-crawl every web source registered for a collection.
async fn sync(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: SyncBody = optional_body(&body)?;
    let collection = b.collection.unwrap_or_else(|| engine.config().search.default_collection.clone());
    run_job(&jobs, JobKind::Sync, Some(collection.clone()), wait, StatusCode::OK, move |p| async move {
        engine.sync(&collection, p.as_ref()).await.map(|reports| json!({"reports": reports}))
    })
    .await
}

/// `POST /v1/admin/backups` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupCreateBody {
    /// Collection or alias; default `search.default_collection`.
    #[serde(default)]
    collection: Option<String>,
    /// `full` (default) or `incremental`.
    #[serde(default, rename = "type")]
    kind: Option<aidocs_backup::BackupKind>,
    /// The Qdrant server's own snapshot instead of the portable archive.
    #[serde(default)]
    native: bool,
}

fn to_json(v: impl serde::Serialize) -> Result<Value, ApiError> {
    Ok(serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))?)
}

/// A JSON body that may be left out entirely.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {e}")))
}

/// Whether the client waits for a job's end (the default) or takes its id at once
/// (`?wait=false`, or `Prefer: respond-async`).
#[derive(Debug, Clone, Copy)]
struct Wait(bool);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Wait {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let no_wait_query = parts.uri.query().is_some_and(|q| q.split('&').any(|kv| kv == "wait=false" || kv == "wait=0"));
        let prefer_async = parts
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("respond-async")));
        Ok(Self(!(no_wait_query || prefer_async)))
    }
}

/// A job's result as the wire has it.
fn job_outcome<T: serde::Serialize>(r: crate::Result<T>) -> JobOutcome {
    match r {
        Ok(v) => serde_json::to_value(v).map_err(|e| (ErrorCode::Internal, e.to_string())),
        Err(e) => {
            let e = ApiError::from(e);
            Err((e.code, e.message))
        }
    }
}

/// Run `work` as a job ([`crate::jobs`]): it outlives this request, so a deadline or a client
/// that hangs up stops waiting for it, never the work itself. Waiting, the answer is the
/// work's own (`status` and its report, or its error); not waiting, 202 with the job. Either
/// way `X-Aidocs-Job` names the job (`GET /v1/admin/jobs/{id}`).
async fn run_job<T, F, Fut>(jobs: &Jobs, kind: JobKind, target: Option<String>, wait: Wait, status: StatusCode, work: F) -> Result<Response, ApiError>
where
    T: serde::Serialize,
    F: FnOnce(Arc<JobProgress>) -> Fut,
    Fut: std::future::Future<Output = crate::Result<T>> + Send + 'static,
{
    let (id, done) = jobs.spawn(kind, target, move |p| {
        let fut = work(p);
        async move { job_outcome(fut.await) }
    });
    let header = axum::http::HeaderValue::from_str(&id).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let accepted = || -> Result<Response, ApiError> {
        let job = jobs
            .local(&id)
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "job vanished"))?;
        let mut r = (StatusCode::ACCEPTED, Json(json!({"job": job}))).into_response();
        if let Ok(loc) = axum::http::HeaderValue::from_str(&format!("/v1/admin/jobs/{id}")) {
            r.headers_mut().insert(axum::http::header::LOCATION, loc);
        }
        Ok(r)
    };
    let outcome = |o: Result<JobOutcome, tokio::sync::oneshot::error::RecvError>| match o {
        Ok(Ok(v)) => (status, Json(v)).into_response(),
        Ok(Err((code, message))) => ApiError::new(code, message).into_response(),
        Err(_) => ApiError::new(ErrorCode::Internal, "the job ended without an outcome").into_response(),
    };
    let mut resp = match (wait.0, jobs.wait_limit()) {
        (false, _) => accepted()?,
        (true, None) => outcome(done.await),
        // Past the wait limit (just under the admin deadline) the answer is the job, 202.
        (true, Some(limit)) => match tokio::time::timeout(limit, done).await {
            Ok(o) => outcome(o),
            Err(_) => accepted()?,
        },
    };
    resp.headers_mut().insert("x-aidocs-job", header);
    Ok(resp)
}

/// `GET /v1/admin/jobs`: every running job and the newest finished ones, newest first.
async fn job_list(jobs: axum::Extension<Jobs>) -> Result<Json<Value>, ApiError> {
    let list = jobs
        .list()
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
    Ok(Json(json!({"jobs": list})))
}

/// `GET /v1/admin/jobs/{id}`: state, progress, and the result or error once it ended.
async fn job_get(
    jobs: axum::Extension<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = jobs
        .get(&id)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no job `{id}` (unknown, or finished long ago)"),
            )
        })?;
    Ok(Json(to_json(job)?))
}

/// `POST /v1/admin/jobs/{id}/cancel`: stop a running ingest or sync.
async fn job_cancel(
    jobs: axum::Extension<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match jobs.cancel(&id).await {
        Ok(job) => Ok(Json(to_json(job)?)),
        Err(CancelError::NotFound) => Err(ApiError::new(ErrorCode::NotFound, format!("no job `{id}`"))),
        Err(CancelError::NotCancellable(why)) => Err(ApiError::new(ErrorCode::Conflict, why)),
        Err(CancelError::Unavailable(why)) => Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("shared job state: {why}"),
        )),
    }
}

/// Output of `GET /v1/admin/profile` (closed set).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ProfileFormat {
    #[default]
    Flamegraph,
    Folded,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileQuery {
    #[serde(default)]
    seconds: Option<u64>,
    #[serde(default)]
    frequency: Option<u32>,
    #[serde(default)]
    format: ProfileFormat,
}

/// `GET /v1/admin/profile?seconds=N&frequency=HZ&format=flamegraph|folded`: sample the
/// server's CPU for N seconds (default 10, at most `server.profile_max_seconds` and under
/// the admin deadline) and answer an SVG flame graph or collapsed stacks. One at a time per
/// process: a second request while one runs gets 409 at once.
async fn profile(
    State(engine): State<Engine>,
    query: Result<Query<ProfileQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    use aidocs_obs::profile::{DEFAULT_FREQUENCY, ProfileRequest, Profiler};
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))?;
    let server = &engine.config().server;
    if server.profile_max_seconds == 0 {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "CPU profiling is turned off on this server (server.profile_max_seconds = 0)",
        ));
    }
    // The answer must leave before the admin deadline cuts the request.
    let max = server
        .profile_max_seconds
        .min((server.admin_timeout_ms / 1000).saturating_sub(5).max(1));
    let req = ProfileRequest {
        seconds: q.seconds.unwrap_or(10).min(max),
        frequency: q.frequency.unwrap_or(DEFAULT_FREQUENCY),
    };
    if let Some(asked) = q.seconds {
        ProfileRequest {
            seconds: asked,
            ..req
        }
        .check(max)
        .map_err(Error::from)?;
    }
    tracing::info!(
        seconds = req.seconds,
        frequency = req.frequency,
        "CPU profile started"
    );
    let profile = Profiler::new().run(req).await.map_err(Error::from)?;
    tracing::info!(samples = profile.samples, "CPU profile finished");
    let (content_type, body) = match q.format {
        ProfileFormat::Flamegraph => (
            "image/svg+xml",
            profile.flamegraph_svg().map_err(Error::from)?,
        ),
        ProfileFormat::Folded => (
            "text/plain; charset=utf-8",
            profile.folded_text().into_bytes(),
        ),
    };
    let mut resp = (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, content_type)],
        body,
    )
        .into_response();
    resp.headers_mut().insert(
        "x-profile-samples",
        axum::http::HeaderValue::from(profile.samples),
    );
    Ok(resp)
}

/// The report of a backup operation on an aidocs archive or a native (Qdrant snapshot)
/// backup, serialized as that report itself.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum BackupReport<A, N> {
    Archive(A),
    Native(N),
}

/// `POST /v1/admin/backups`: back up a collection now.
async fn backup_create(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: BackupCreateBody = optional_body(&body)?;
    let kind = b.kind.unwrap_or(aidocs_backup::BackupKind::Full);
    if b.native && b.kind.is_some() {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "a native backup is always a full snapshot; leave out `type`"));
    }
    let target = b.collection.clone();
    run_job(
        &jobs,
        JobKind::BackupCreate,
        target,
        wait,
        StatusCode::CREATED,
        move |_| async move {
            Ok(if b.native {
                BackupReport::Native(engine.backup_create_native(b.collection.as_deref()).await?)
            } else {
                BackupReport::Archive(engine.backup_create(b.collection.as_deref(), kind).await?)
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupListQuery {
    collection: Option<String>,
}

/// `GET /v1/admin/backups[?collection=C]`.
async fn backup_list(State(engine): State<Engine>, query: Result<Query<BackupListQuery>, QueryRejection>) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))?;
    let c = q.collection.as_deref();
    Ok(Json(json!({"backups": engine.backup_list(c).await?, "native": engine.backup_list_native(c).await?})))
}

/// `POST /v1/admin/backups/{id}/verify`: 200 with the checked chain, or 422 `backup_corrupt`.
async fn backup_verify(
    State(engine): State<Engine>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(if crate::backup::is_native_id(&id) {
        BackupReport::Native(engine.backup_verify_native(&id).await?)
    } else {
        BackupReport::Archive(engine.backup_verify(&id).await?)
    })?))
}

/// `POST /v1/admin/backups/{id}/restore`: verify, restore into a new collection, validate,
/// then switch the alias if asked.
async fn backup_restore(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, Path(id): Path<String>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let req: crate::backup::RestoreRequest = optional_body(&body)?;
    run_job(
        &jobs,
        JobKind::BackupRestore,
        Some(id.clone()),
        wait,
        StatusCode::OK,
        move |_| async move {
            Ok(if crate::backup::is_native_id(&id) {
                BackupReport::Native(engine.backup_restore_native(&id, req).await?)
            } else {
                BackupReport::Archive(engine.backup_restore(&id, req).await?)
            })
        },
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PruneBody {
    #[serde(default)]
    keep_last: Option<usize>,
    #[serde(default)]
    keep_days: Option<u32>,
}

/// `POST /v1/admin/backups/prune`: retention from the body, else from `[backup]`.
async fn backup_prune(State(engine): State<Engine>, body: axum::body::Bytes) -> Result<Json<Value>, ApiError> {
    let b: PruneBody = optional_body(&body)?;
    let policy = (b.keep_last.is_some() || b.keep_days.is_some()).then_some(aidocs_backup::Retention { keep_last: b.keep_last, keep_days: b.keep_days });
    Ok(Json(to_json(engine.backup_prune(policy).await?)?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillBody {
    #[serde(default)]
    collection: Option<String>,
}

/// `POST /v1/admin/backups/drill`: restore the newest backup into a temporary collection,
/// check it, delete it, report.
async fn backup_drill(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: DrillBody = optional_body(&body)?;
    run_job(&jobs, JobKind::BackupDrill, b.collection.clone(), wait, StatusCode::OK, move |_| async move { engine.backup_drill(b.collection.as_deref()).await }).await
}

/// `POST /v1/feedback` body: a click on a hit of an answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    /// `query_id` of the search response (its `X-Request-ID`).
    query_id: String,
    /// `id` of the clicked hit.
    hit_id: String,
}

/// `POST /v1/feedback`: credit a click to the A/B variant that answered.
async fn feedback(State(engine): State<Engine>, ApiJson(body): ApiJson<FeedbackBody>) -> Result<Response, ApiError> {
    if body.hit_id.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "`hit_id` must not be empty"));
    }
    let r = engine.record_click(&body.query_id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"ab_test": r.rollout_id, "variant": r.arm}))).into_response())
}

/// `POST /v1/admin/ab`.
async fn ab_create(State(engine): State<Engine>, ApiJson(body): ApiJson<crate::rollout::AbCreate>) -> Result<Response, ApiError> {
    let t = engine.ab_create(body).await?;
    Ok((StatusCode::CREATED, Json(to_json(t)?)).into_response())
}

async fn ab_list(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"ab_tests": engine.ab_tests().await?})))
}

async fn ab_status(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(engine.ab_status(&id).await?))
}

async fn ab_stop(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(engine.ab_stop(&id).await?)?))
}

/// `GET /deployment/status`.
async fn deployment_status(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    Ok(Json(engine.deployment_status().await?))
}

async fn documents(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, ApiJson(body): ApiJson<DocumentsBody>) -> Result<Response, ApiError> {
    use crate::web::{WebIngestRequest, WebSource, WebSourceKind};
    let collection = body.collection.unwrap_or_else(|| engine.config().search.default_collection.clone());
    let web = match (body.path, body.url, body.sitemap, body.urls) {
        (Some(path), None, None, None) => {
            let path = allowed_path(&engine.config().ingest.allowed_roots, std::path::Path::new(&path))?;
            let req = IngestRequest { path, collection: collection.clone(), metadata: DocMetadata::from(&body.metadata), base_url: body.base_url };
            return run_job(&jobs, JobKind::Ingest, Some(collection), wait, StatusCode::OK, move |p| async move { engine.ingest(req, p.as_ref()).await })
                .await;
        }
        (None, Some(u), None, None) => (WebSourceKind::Site, vec![u]),
        (None, None, Some(u), None) => (WebSourceKind::Sitemap, vec![u]),
        (None, None, None, Some(list)) => (WebSourceKind::Urls, list),
        _ => return Err(ApiError::new(ErrorCode::InvalidRequest, "give exactly one of `path`, `url`, `sitemap` or `urls`")),
    };
    // Internal hosts are only ever allowed by config (`crawl.allow_hosts`), never by a request;
    // a request may lower the configured crawl limits, never raise them.
    let crawl = &engine.config().crawl;
    for (name, asked, limit) in [("max_pages", body.max_pages, crawl.max_pages), ("max_depth", body.max_depth, crawl.max_depth)] {
        if let Some(asked) = asked.filter(|a| *a > limit) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("`{name}` {asked} is above this server's crawl.{name} ({limit}); a request may only lower it"),
            ));
        }
    }
    let source = WebSource {
        kind: web.0,
        urls: web.1,
        scope: body.scope,
        include: body.include,
        exclude: body.exclude,
        max_pages: body.max_pages,
        max_depth: body.max_depth,
        allow_hosts: Vec::new(),
        metadata: DocMetadata::from(&body.metadata),
    };
    let target = Some(collection.clone());
    run_job(&jobs, JobKind::WebIngest, target, wait, StatusCode::OK, move |p| async move {
        engine.ingest_web(WebIngestRequest { collection, source }, p.as_ref()).await
    })
    .await
}

/// The canonical form of a path a client asked the server to ingest, if it lies under one
/// of `ingest.allowed_roots` (symlinks resolved, so a link that leaves a root is refused).
/// A missing, unreadable or outside path gets one and the same answer: a client learns
/// nothing about what exists on the server's machine.
fn allowed_path(roots: &[std::path::PathBuf], requested: &std::path::Path) -> Result<std::path::PathBuf, ApiError> {
    if roots.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "path ingest over HTTP is disabled on this server: ingest.allowed_roots names no directories (use `url`, or the CLI on the server's machine)",
        ));
    }
    let refused = || ApiError::new(ErrorCode::Forbidden, "`path` is not a readable file or directory under the server's ingest.allowed_roots");
    let canonical = requested.canonicalize().map_err(|_| refused())?;
    let inside = roots.iter().filter_map(|r| r.canonicalize().ok()).any(|root| canonical.starts_with(&root));
    if !inside {
        return Err(refused());
    }
    Ok(canonical)
}

async fn collections(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"collections": engine.collections().await?})))
}

async fn collection(State(engine): State<Engine>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(engine.collection(&name).await?)?))
}

/// `GET /v1/admin/cache`: per-kind and per-tier counters and health.
async fn cache_stats(State(engine): State<Engine>) -> Json<Value> {
    Json(engine.cache_stats().unwrap_or_else(|| json!({"backend": "none"})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearQuery {
    #[serde(default)]
    kind: Option<String>,
}

/// `DELETE /v1/admin/cache[?kind=embedding|search|hyde]`.
async fn cache_clear(State(engine): State<Engine>, query: Result<Query<ClearQuery>, QueryRejection>) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))?;
    let kind = q.kind.map(|k| k.parse::<aidocs_cache::keys::CacheKind>()).transpose().map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e))?;
    let removed = engine.cache_clear(kind).await?;
    Ok(Json(json!({"removed": removed, "kind": kind.map_or("all", |k| k.as_str())})))
}

/// `GET /metrics`: the Prometheus text exposition (catalogue in `docs/metrics.md`).
/// Outside `/v1`, so neither auth nor the rate limit applies; expose it to the scraper only.
async fn metrics(State(engine): State<Engine>) -> Result<Response, ApiError> {
    engine.refresh_store_metrics().await;
    let text = engine.metrics().encode().map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// Liveness: no dependency calls.
async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Per-client-IP rate limit on `/v1` (GCRA, `governor`).
#[derive(Clone)]
struct RateLimit {
    limiter: Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    trusted: Arc<Vec<std::net::IpAddr>>,
}

impl RateLimit {
    fn from_config(s: &crate::config::ServerConfig) -> Option<Self> {
        let per_minute = std::num::NonZeroU32::new(s.rate_limit_per_minute)?;
        let burst = std::num::NonZeroU32::new(s.rate_limit_burst.max(1))?;
        let quota = governor::Quota::per_minute(per_minute).allow_burst(burst);
        Some(Self { limiter: Arc::new(governor::RateLimiter::keyed(quota)), trusted: Arc::new(s.trusted_proxies.clone()) })
    }

    /// The rate-limit key of a request: its client (see [`client_ip`]), IPv6 clients by
    /// their /64 (one host usually holds a whole /64, so single addresses are free to it).
    /// Without connection info (in-process use) the client is 0.0.0.0.
    fn client(&self, req: &Request) -> std::net::IpAddr {
        let peer = peer_addr(req.extensions()).map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.ip());
        rate_key(client_ip(peer, req.headers(), &self.trusted))
    }

    fn check(&self, req: &Request) -> Result<(), Response> {
        if route_class(req) == RouteClass::Public {
            return Ok(());
        }
        let client = self.client(req);
        self.limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut r = ApiError::new(ErrorCode::RateLimited, format!("rate limit exceeded for {client}; retry in {secs} s")).into_response();
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs.max(1)));
            r
        })
    }
}

/// The client of a request. A peer that is not a trusted proxy is the client. Behind trusted
/// proxies, `X-Forwarded-For` is read from the right (each proxy appends the address it saw,
/// so only the right end is written by proxies we trust): the first hop that is not itself a
/// trusted proxy is the client. Anything further left was written by the client and is never
/// believed. A hop that does not parse ends the walk at the last trusted address.
pub fn client_ip(peer: std::net::IpAddr, headers: &axum::http::HeaderMap, trusted: &[std::net::IpAddr]) -> std::net::IpAddr {
    let canon = |ip: std::net::IpAddr| ip.to_canonical();
    let peer = canon(peer);
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|t| canon(*t) == *ip);
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<std::net::IpAddr>().map(canon) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// IPv6 addresses keyed by their /64 network; IPv4 as they are.
fn rate_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => std::net::IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// The scope a request needs: none for `/health` and `/health/ready`, `search` for search
/// and read-only collection info (GET or HEAD; none with `auth.public_search`), `admin` for
/// `/health/detailed` and everything else under `/v1`.
/// What a request is to the layers that treat routes differently: load shedding and the
/// rate limit (every class but [`Public`](RouteClass::Public)) and auth (the scope each
/// class needs). The one place routes are classified (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteClass {
    /// Liveness, readiness and metrics (for load balancers and scrapers) and unknown paths
    /// outside the API: never shed, limited or authenticated.
    Public,
    /// Search, feedback and collection reads: the search scope (none with
    /// `auth.public_search`).
    Read,
    /// Everything else under `/v1/`, `/deployment/*` and `/health/detailed` (it lists every
    /// collection and runs an embedding): the admin scope.
    Admin,
}

fn route_class(req: &Request) -> RouteClass {
    let path = req.uri().path();
    let method = req.method();
    if path.starts_with("/deployment") || path == "/health/detailed" {
        return RouteClass::Admin;
    }
    if !path.starts_with("/v1/") {
        return RouteClass::Public;
    }
    let get_or_head = method == axum::http::Method::GET || method == axum::http::Method::HEAD;
    let read = ((path == "/v1/search" || path == "/v1/feedback") && method == axum::http::Method::POST)
        || (path.starts_with("/v1/collections") && get_or_head);
    if read {
        RouteClass::Read
    } else {
        RouteClass::Admin
    }
}

fn required_scope(auth: &AuthSettings, req: &Request) -> Option<Scope> {
    match (route_class(req), auth.public_search) {
        (RouteClass::Public, _) | (RouteClass::Read, true) => None,
        (RouteClass::Read, false) => Some(Scope::Search),
        (RouteClass::Admin, _) => Some(Scope::Admin),
    }
}

/// The hex sha256 stored in config for an API key.
pub fn hash_key(key: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()))
}

/// Check the request's key (`Authorization: Bearer KEY` or `X-API-Key: KEY`) against the
/// configured sha256 hashes, in constant time. No keys configured: auth is off.
fn authorize(auth: &AuthSettings, req: &Request) -> Result<(), ApiError> {
    if auth.keys.is_empty() {
        return Ok(());
    }
    let Some(scope) = required_scope(auth, req) else { return Ok(()) };
    let h = req.headers();
    let presented = h
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, k)| k))
        .or_else(|| h.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim);
    let Some(presented) = presented.filter(|k| !k.is_empty()) else {
        return Err(ApiError::new(ErrorCode::Unauthorized, "an API key is required (Authorization: Bearer KEY or X-API-Key)"));
    };
    let digest = hash_key(presented);
    // Compare against every key (no early exit), each comparison constant-time.
    let mut found: Option<&ApiKey> = None;
    for k in &auth.keys {
        if bool::from(subtle::ConstantTimeEq::ct_eq(digest.as_bytes(), k.sha256.to_ascii_lowercase().as_bytes())) {
            found = Some(k);
        }
    }
    let Some(key) = found else {
        return Err(ApiError::new(ErrorCode::Unauthorized, "unknown API key"));
    };
    let allowed = key.scopes.contains(&Scope::Admin) || key.scopes.contains(&scope);
    if !allowed {
        tracing::info!(key = %key.name, needed = ?scope, "API key lacks scope");
        return Err(ApiError::new(ErrorCode::Forbidden, format!("API key `{}` lacks the {scope:?} scope", key.name).to_lowercase()));
    }
    Ok(())
}

/// Load shedding and deadline errors as API errors (with `Retry-After` when shed).
async fn overload_error(err: tower::BoxError) -> Response {
    if err.is::<tower::load_shed::error::Overloaded>() {
        let mut r = ApiError::new(ErrorCode::Overloaded, "too many concurrent requests; retry shortly").into_response();
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        r
    } else if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(ErrorCode::Timeout, "request took longer than its deadline (server.request_timeout_ms, or server.admin_timeout_ms for admin routes)").into_response()
    } else {
        tracing::error!(error = %err, "middleware error");
        ApiError::new(ErrorCode::Internal, "internal error; see the server log").into_response()
    }
}

fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err.downcast_ref::<String>().map(String::as_str).or_else(|| err.downcast_ref::<&str>().copied()).unwrap_or("?");
    tracing::error!(panic = detail, "handler panicked");
    ApiError::new(ErrorCode::Internal, "internal error; see the server log").into_response()
}

/// Request counters of one router, for `/health/detailed`.
struct ApiStats {
    started: Instant,
    requests: AtomicU64,
    /// Responses with a 5xx status.
    errors: AtomicU64,
}

/// `GET /health/detailed`: every dependency probed, with latency; 503 only when unhealthy.
async fn detailed(State(engine): State<Engine>, axum::Extension(stats): axum::Extension<Arc<ApiStats>>) -> Response {
    let (status, services) = engine.health_detailed().await;
    let requests = stats.requests.load(Ordering::Relaxed);
    let errors = stats.errors.load(Ordering::Relaxed);
    let body = json!({
        "status": status,
        "services": services,
        "metrics": {
            "uptime_s": stats.started.elapsed().as_secs(),
            "requests_total": requests,
            "errors_total": errors,
            "error_rate": if requests == 0 { 0.0 } else { errors as f64 / requests as f64 },
        },
    });
    let code = if status == "unhealthy" { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, Json(body)).into_response()
}

/// Readiness: the store answers and the model is loaded (an engine exists only with both).
async fn ready(State(engine): State<Engine>) -> Response {
    match engine.store().list_aliases().await {
        // A degraded cache is reported, but the service is still ready: search bypasses it.
        Ok(_) => Json(json!({
            "status": "ready",
            "store": engine.store().backend(),
            "model": engine.embedder().model_id(),
            "cache": engine.cache_health(),
        }))
        .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "store": e.to_string()}))).into_response(),
    }
}
