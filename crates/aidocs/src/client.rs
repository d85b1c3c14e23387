//! [`AdminClient`]: the admin API of a running `aidocs-server`, for tools (the CLI's
//! `canary` and `deploy --server` commands). Error bodies become [`Error`]s with the
//! server's code and message.

use crate::error::{Error, Result};
use serde_json::Value;
use std::time::Duration;

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
}

impl AdminClient {
    /// `base` like `http://127.0.0.1:8000`; `api_key` needs the admin scope when auth is on.
    /// `timeout` bounds each request (a blue-green deployment runs to its end).
    pub fn new(base: &str, api_key: Option<String>, timeout: Duration) -> Result<Self> {
        // reqwest is built without a TLS provider of its own; the process uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().timeout(timeout).build().map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), api_key })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body)).await
    }

    async fn send(&self, mut req: reqwest::RequestBuilder) -> Result<Value> {
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.map_err(|e| Error::Unavailable(format!("cannot reach aidocs-server at {}: {e}", self.base)))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let code = body["error"]["code"].as_str().unwrap_or("error");
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        let text = format!("server answered {} {code}: {message}", status.as_u16());
        Err(match status.as_u16() {
            400 => Error::InvalidRequest(text),
            404 => Error::NotFound(text),
            409 => Error::Conflict(text),
            422 => Error::ValidationFailed(text),
            _ => Error::Unavailable(text),
        })
    }
}
