//! Admin work that outlives its request: [`run_job`] runs it as a job (`aidocs::jobs`) and
//! answers with its result, or 202 and the job when the client does not wait ([`Wait`]).

use crate::error::ApiError;
use aidocs::ErrorCode;
use aidocs::jobs::{JobKind, JobOutcome, JobProgress, Jobs};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// Whether the client waits for a job's end (the default) or takes its id at once
/// (`?wait=false`, or `Prefer: respond-async`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait(pub(crate) bool);

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
pub(crate) fn job_outcome<T: serde::Serialize>(r: aidocs::Result<T>) -> JobOutcome {
    match r {
        Ok(v) => serde_json::to_value(v).map_err(|e| (ErrorCode::Internal, e.to_string())),
        Err(e) => {
            let e = ApiError::from(e);
            Err((e.code, e.message))
        }
    }
}

/// Run `work` as a job (`aidocs::jobs`): it outlives this request, so a deadline or a client
/// that hangs up stops waiting for it, never the work itself. Waiting, the answer is the
/// work's own (`status` and its report, or its error); not waiting, 202 with the job. Either
/// way `X-Aidocs-Job` names the job (`GET /v1/admin/jobs/{id}`).
pub(crate) async fn run_job<T, F, Fut>(jobs: &Jobs, kind: JobKind, target: Option<String>, wait: Wait, status: StatusCode, work: F) -> Result<Response, ApiError>
where
    T: serde::Serialize,
    F: FnOnce(Arc<JobProgress>) -> Fut,
    Fut: std::future::Future<Output = aidocs::Result<T>> + Send + 'static,
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
