//! The middleware of the API that is not auth: request ids, the client address, the
//! per-client rate limit and load shedding (both on the API routers only), request counting.

use crate::error::{ApiError, overloaded};
use aidocs::ErrorCode;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) static REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

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
pub(crate) async fn sanitize_request_id(mut req: Request, next: axum::middleware::Next) -> Response {
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

/// A request whose `Content-Length` is past `max` is answered 413 before one byte of its
/// body is read: the client learns at once, and the server neither buffers nor drains it.
/// Bodies without a length (chunked) are still cut off at `max` while they stream, by
/// `DefaultBodyLimit` in the extractors and by the MCP transport's own limit.
pub(crate) async fn refuse_oversized(State(max): State<usize>, req: Request, next: Next) -> Response {
    let declared = req.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > max as u64 => {
            let mut r = ApiError::new(ErrorCode::PayloadTooLarge, format!("request body of {n} bytes is over the limit of {max} bytes (server.max_body_bytes)")).into_response();
            // The unread body is not drained: the connection ends with this answer.
            r.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            r
        }
        _ => next.run(req).await,
    }
}

/// The span every log line of a request is in: its id, method and path.
pub(crate) fn request_span(req: &Request) -> tracing::Span {
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
}

/// The TCP peer, when known: axum's `ConnectInfo` (a real server) or `MockConnectInfo`
/// (tests). `None` in-process without either.
pub(crate) struct Peer(pub(crate) Option<std::net::SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ext = &parts.extensions;
        Ok(Self(peer_addr(ext)))
    }
}

pub(crate) fn peer_addr(ext: &axum::http::Extensions) -> Option<std::net::SocketAddr> {
    ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<axum::extract::connect_info::MockConnectInfo<std::net::SocketAddr>>().map(|c| c.0))
}

/// Per-client-IP rate limit on `/v1` (GCRA, `governor`).
#[derive(Clone)]
pub(crate) struct RateLimit {
    limiter: Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    trusted: Arc<Vec<std::net::IpAddr>>,
}

impl RateLimit {
    pub(crate) fn from_config(s: &aidocs::config::ServerSettings) -> Option<Self> {
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

/// The per-client rate limit (a `route_layer` of the API routers, with
/// `from_fn_with_state`); `None`, no limit configured, lets every request by.
pub(crate) async fn rate_limit(State(limiter): State<Option<RateLimit>>, req: Request, next: Next) -> Response {
    match limiter.as_ref().map(|l| l.check(&req)) {
        Some(Err(resp)) => resp,
        _ => next.run(req).await,
    }
}

/// Load shedding: past `server.max_concurrent_requests` API requests in flight, a request
/// is answered 503 + `Retry-After` before auth, the rate limit or the handler spend work on
/// it. Its small body is read first so the connection stays usable. Only the API routers
/// carry it: health and metrics are never shed, so load balancers still see the instance.
/// Sheds are counted in `http_requests_shed_total`.
#[derive(Clone)]
pub(crate) struct Shed {
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
    pub(crate) metrics: aidocs::obs::Metrics,
}

pub(crate) async fn shed(State(shed): State<Shed>, req: Request, next: Next) -> Response {
    match shed.permits.try_acquire_owned() {
        Ok(permit) => {
            let resp = next.run(req).await;
            drop(permit);
            resp
        }
        Err(_) => {
            shed.metrics.http_shed();
            let _ = axum::body::to_bytes(req.into_body(), 64 * 1024).await;
            overloaded()
        }
    }
}

/// Request counters of one router, for `/health/detailed`.
pub(crate) struct ApiStats {
    pub(crate) started: std::time::Instant,
    pub(crate) requests: AtomicU64,
    /// Responses with a 5xx status.
    pub(crate) errors: AtomicU64,
}

/// Counts every response, those of the auth, rate-limit and shed layers included:
/// `http_requests_total` by route template, and the health counters.
#[derive(Clone)]
pub(crate) struct Counting {
    pub(crate) stats: Arc<ApiStats>,
    pub(crate) metrics: aidocs::obs::Metrics,
}

pub(crate) async fn count(State(c): State<Counting>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = req.method().clone();
    let resp = next.run(req).await;
    c.stats.requests.fetch_add(1, Ordering::Relaxed);
    if resp.status().is_server_error() {
        c.stats.errors.fetch_add(1, Ordering::Relaxed);
    }
    c.metrics.http_request(&route, method.as_str(), resp.status().as_u16(), started.elapsed().as_secs_f64());
    resp
}
