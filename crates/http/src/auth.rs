//! API keys: who may call which router. Each router declares the scope it needs with
//! [`require`] (a `route_layer`), so no layer matches path strings to find it.

use crate::error::ApiError;
use aidocs::ErrorCode;
use aidocs::config::{ApiKey, AuthSettings, Scope};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The hex sha256 stored in config for an API key.
pub fn hash_key(key: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()))
}

/// What a router needs of the caller's key: the state of its [`require`] layer.
#[derive(Clone)]
pub struct Guard {
    auth: Arc<AuthSettings>,
    scope: Scope,
}

impl Guard {
    /// Keys with `scope` (or admin) pass; no keys configured, everyone passes; the search
    /// scope is not needed at all with `auth.public_search`.
    pub fn new(auth: Arc<AuthSettings>, scope: Scope) -> Self {
        Self { auth, scope }
    }
}

/// The auth layer of a router: `router.route_layer(from_fn_with_state(Guard::new(..), require))`.
pub async fn require(axum::extract::State(guard): axum::extract::State<Guard>, req: Request, next: axum::middleware::Next) -> Response {
    let needed = match (guard.scope, guard.auth.public_search) {
        (Scope::Search, true) => None,
        (scope, _) => Some(scope),
    };
    match needed.map(|scope| authorize(&guard.auth, scope, &req)) {
        Some(Err(e)) => e.into_response(),
        _ => next.run(req).await,
    }
}

/// Check the request's key (`Authorization: Bearer KEY` or `X-API-Key: KEY`) against the
/// configured sha256 hashes, in constant time. No keys configured: auth is off.
fn authorize(auth: &AuthSettings, scope: Scope, req: &Request) -> Result<(), ApiError> {
    if auth.keys.is_empty() {
        return Ok(());
    }
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
