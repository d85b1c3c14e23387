//! `POST /v1/search` and `POST /v1/feedback`.

use crate::error::{ApiError, ApiJson};
use crate::layers::{Peer, client_ip};
use crate::wire::{FeedbackAccepted, FeedbackBody, SearchBody, SearchResponse};
use aidocs::{Engine, ErrorCode, SearchRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(search)).routes(routes!(feedback))
}

/// Search a collection or alias: hybrid (dense + BM25, fused), dense or sparse, with
/// optional HyDE and reranking and a payload filter. A canary, blue-green watch or A/B test
/// on the alias decides the collection by routing key (`X-User-ID`, else the client address);
/// the arm answers in `X-Aidocs-Arm` or `X-Aidocs-Variant`.
#[utoipa::path(post, path = "/v1/search", tag = "search", request_body = SearchBody,
    params(("X-User-ID" = Option<String>, Header, description = "Keeps a user on one side of a canary or A/B split")),
    responses((status = 200, description = "Ranked sections", body = SearchResponse)))]
async fn search(State(engine): State<Engine>, headers: axum::http::HeaderMap, Peer(peer): Peer, ApiJson(body): ApiJson<SearchBody>) -> Result<Response, ApiError> {
    let filter = aidocs::filters::from_json(&body.filter)?;
    if body.max_tokens.is_some() && body.group_by.is_none() {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "`max_tokens` sizes a grouped answer: add `\"group_by\": \"page\"`"));
    }
    let budget = body.group_by.map(|_| aidocs::read::budget(body.max_tokens)).transpose()?;
    let name = match &body.collection {
        Some(t) => t.to_engine().map_err(|m| ApiError::new(ErrorCode::InvalidRequest, m))?,
        None => engine.config().search.default_collection.clone(),
    };
    // A canary (or a blue-green watch) on this alias decides the collection by routing key:
    // `X-User-ID`, else the client address, else the request id.
    let routed = engine.rollout().route(&name, &routing_key(&headers, peer, &engine.config().server.trusted_proxies));
    let mut req = SearchRequest {
        query: body.query.clone(),
        collection: Some(routed.as_ref().map_or(name.clone(), |r| r.collection.clone())),
        limit: body.limit,
        mode: body.mode.map(Into::into),
        filter,
        hyde: body.hyde,
        rerank: body.rerank,
        all_versions: body.all_versions,
        collapse: body.collapse.map(Into::into),
    };
    // An A/B variant's settings replace the request's (typed, so checked at creation).
    let mut searcher = engine.clone();
    if let Some(v) = routed.as_ref().and_then(|r| r.variant.as_ref()) {
        req.mode = v.mode.or(req.mode);
        req.hyde = v.hyde.or(req.hyde);
        req.rerank = v.rerank.or(req.rerank);
        if let Some(f) = v.fusion {
            searcher = engine.with_fusion(f);
        }
    }
    let query_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if let Some(r) = &routed {
        engine.rollout().remember_answer(&query_id, r);
    }
    let started = Instant::now();
    let result = searcher.search(req).await;
    if let Some(r) = &routed {
        let sample = aidocs_rollout_sample(started, &result);
        let (engine, r) = (engine.clone(), r.clone());
        tokio::spawn(async move { engine.rollout().record_routed(&r, sample).await });
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
    let grouped = match budget {
        Some(max) => match searcher.fit(&resp, max).await {
            Ok(f) => Some(f.into()),
            Err(e) => return Ok(with_arm(ApiError::from(e).into_response())),
        },
        None => None,
    };
    let mut out = SearchResponse::new(resp, body.query, query_id);
    out.grouped = grouped;
    Ok(with_arm(Json(out).into_response()))
}

/// A routed search's sample for its rollout's statistics.
fn aidocs_rollout_sample(started: Instant, result: &aidocs::Result<aidocs::SearchResponse>) -> aidocs::rollout::Sample {
    aidocs::rollout::Sample {
        latency_ms: started.elapsed().as_secs_f64() * 1e3,
        error: result.as_ref().is_err_and(|e| e.code().as_str_and_status().1 >= 500),
        zero_results: result.as_ref().is_ok_and(|resp| resp.hits.is_empty()),
    }
}

/// The key that keeps a user on one side of a split: `X-User-ID`, else the client address
/// (see [`client_ip`]), else the request id.
fn routing_key(headers: &axum::http::HeaderMap, peer: Option<std::net::SocketAddr>, trusted: &[std::net::IpAddr]) -> String {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    if let Some(user) = header("x-user-id") {
        return format!("user:{user}");
    }
    if let Some(peer) = peer {
        return format!("ip:{}", client_ip(peer.ip(), headers, trusted));
    }
    format!("req:{}", header("x-request-id").unwrap_or_default())
}

/// Credit a click on a hit to the A/B variant that answered the query.
#[utoipa::path(post, path = "/v1/feedback", tag = "search", request_body = FeedbackBody,
    responses((status = 202, description = "The click was credited", body = FeedbackAccepted)))]
async fn feedback(State(engine): State<Engine>, ApiJson(body): ApiJson<FeedbackBody>) -> Result<Response, ApiError> {
    if body.hit_id.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "`hit_id` must not be empty"));
    }
    let r = engine.rollout().record_click(&body.query_id).await?;
    Ok((StatusCode::ACCEPTED, Json(FeedbackAccepted { ab_test: r.rollout_id, variant: r.arm })).into_response())
}
