//! `GET /v1/admin/profile`: a CPU profile of this server.

use crate::error::ApiError;
use crate::wire::{ProfileFormat, ProfileQuery};
use aidocs::{Engine, Error, ErrorCode};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(profile))
}

/// `GET /v1/admin/profile?seconds=N&frequency=HZ&format=flamegraph|folded`: sample the
/// server's CPU for N seconds (default 10, at most `server.profile_max_seconds` and under
/// the admin deadline) and answer an SVG flame graph or collapsed stacks. One at a time per
/// process: a second request while one runs gets 409 at once.
#[utoipa::path(get, path = "/v1/admin/profile", tag = "admin", params(ProfileQuery),
    responses((status = 200, description = "An SVG flame graph or collapsed stacks; `X-Profile-Samples` counts the samples", content_type = "image/svg+xml", body = String),
              (status = 409, description = "A profile is already running", body = crate::wire::ErrorBody)))]
async fn profile(
    State(engine): State<Engine>,
    query: Result<Query<ProfileQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    use aidocs::obs::profile::{DEFAULT_FREQUENCY, ProfileRequest, Profiler};
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
