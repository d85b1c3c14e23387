//! The API's error responses: [`ApiError`] (`{"error": {"code", "message"}}` with the status
//! from the one table, `aidocs::ErrorCode`), the JSON extractor whose rejections use it, and
//! the conversions of axum's own rejections, deadline and shed errors and panics.

use aidocs::{Error, ErrorCode};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Value, json};

/// An error on the wire: `{"error": {"code", "message"}}` ([`crate::wire::ErrorBody`]).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
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

/// The answer to a request past the concurrency limit: prebuilt, no allocation beyond the
/// response itself.
pub(crate) fn overloaded() -> Response {
    const BODY: &str = r#"{"error":{"code":"overloaded","message":"too many concurrent requests; retry shortly"}}"#;
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, [(axum::http::header::CONTENT_TYPE, "application/json")], BODY).into_response();
    r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    r
}

/// Any error response that is not JSON (axum's own rejections) becomes the API's JSON error
/// with the same status; `Retry-After` is kept.
pub(crate) async fn json_errors(resp: Response) -> Response {
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

/// Load shedding and deadline errors as API errors (with `Retry-After` when shed).
pub(crate) async fn overload_error(err: tower::BoxError) -> Response {
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

pub(crate) fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err.downcast_ref::<String>().map(String::as_str).or_else(|| err.downcast_ref::<&str>().copied()).unwrap_or("?");
    tracing::error!(panic = detail, "handler panicked");
    ApiError::new(ErrorCode::Internal, "internal error; see the server log").into_response()
}

pub(crate) fn to_json(v: impl serde::Serialize) -> Result<Value, ApiError> {
    Ok(serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))?)
}

/// A JSON body that may be left out entirely.
pub(crate) fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {e}")))
}
