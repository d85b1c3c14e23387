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

/// Who is calling, as the [`require`] layer found it: put in the request's extensions for
/// handlers that decide more finely than their router (the MCP server's write tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The key has the admin scope. False when auth is off (no keys): nobody is known to be
    /// an admin, so what needs one stays closed.
    pub admin: bool,
}

/// The auth layer of a router: `router.route_layer(from_fn_with_state(Guard::new(..), require))`.
pub async fn require(axum::extract::State(guard): axum::extract::State<Guard>, mut req: Request, next: axum::middleware::Next) -> Response {
    let needed = match (guard.scope, guard.auth.public_search) {
        (Scope::Search, true) => None,
        (scope, _) => Some(scope),
    };
    let key = identify(&guard.auth, &req);
    if let Some(scope) = needed {
        match &key {
            Err(e) => return e.clone().into_response(),
            Ok(Some(k)) if !(k.scopes.contains(&Scope::Admin) || k.scopes.contains(&scope)) => {
                tracing::info!(key = %k.name, needed = ?scope, "API key lacks scope");
                return ApiError::new(ErrorCode::Forbidden, format!("API key `{}` lacks the {scope:?} scope", k.name).to_lowercase()).into_response();
            }
            Ok(_) => {}
        }
    }
    // Whether the key (required by this router or not) is an admin's.
    let admin = matches!(key, Ok(Some(k)) if k.scopes.contains(&Scope::Admin));
    req.extensions_mut().insert(Caller { admin });
    next.run(req).await
}

/// The configured key the request presents (`Authorization: Bearer KEY` or `X-API-Key:
/// KEY`), compared by sha256 in constant time. No keys configured: auth is off (`Ok(None)`).
fn identify<'a>(auth: &'a AuthSettings, req: &Request) -> Result<Option<&'a ApiKey>, ApiError> {
    if auth.keys.is_empty() {
        return Ok(None);
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
    found.map(Some).ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "unknown API key"))
}
