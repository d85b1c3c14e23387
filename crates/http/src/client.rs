//! [`AdminClient`]: the admin API of a running `aidocs-server`, for tools (the CLI's
//! `canary` and `deploy --server` commands). Error bodies become [`Error`]s with the
//! server's code and message.

use aidocs::{Error, ErrorCode, Result};
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

    /// POST, and when the server answers 202 with a job (a long operation past its wait
    /// limit), follow the job to its end: the result is the operation's own report.
    pub async fn post(&self, path: &str, body: &impl serde::Serialize) -> Result<Value> {
        let (status, body) = self.send_raw(self.http.post(format!("{}{path}", self.base)).json(body)).await?;
        let Some(job) = body["job"]["id"].as_str().filter(|_| status == reqwest::StatusCode::ACCEPTED).map(str::to_owned) else {
            return Ok(body);
        };
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let j = self.get(&format!("/v1/admin/jobs/{job}")).await?;
            match j["state"].as_str() {
                Some("running") => continue,
                Some("succeeded") => return Ok(j["result"].clone()),
                _ => {
                    let (code, message) = (
                        j["error"]["code"].as_str().unwrap_or("error"),
                        j["error"]["message"].as_str().unwrap_or("no message"),
                    );
                    let text = format!(
                        "job {job} ended {}: {code}: {message}",
                        j["state"].as_str().unwrap_or("?")
                    );
                    return Err(Error::Remote {
                        code: ErrorCode::from_code(code).unwrap_or(ErrorCode::Internal),
                        message: text,
                    });
                }
            }
        }
    }

    /// GET, decoded into the answer's wire type.
    pub async fn get_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        decode("GET", path, self.get(path).await?)
    }

    /// POST (following a job to its end, as [`AdminClient::post`]), decoded into the
    /// operation's report type.
    pub async fn post_as<T: serde::de::DeserializeOwned>(&self, path: &str, body: &impl serde::Serialize) -> Result<T> {
        decode("POST", path, self.post(path, body).await?)
    }

    /// GET `/seg/seg?k=v`, each path segment and query value percent-encoded, decoded into
    /// the answer's wire type.
    pub async fn get_at<T: serde::de::DeserializeOwned>(&self, segments: &[&str], query: &[(&str, String)]) -> Result<T> {
        let url = self.url_at(segments, query)?;
        let path = url.path().to_owned();
        decode("GET", &path, self.send(self.http.get(url)).await?)
    }

    /// DELETE `/seg/seg`, each segment percent-encoded, decoded into the answer's wire type.
    pub async fn delete_at<T: serde::de::DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        let url = self.url_at(segments, &[])?;
        let path = url.path().to_owned();
        decode("DELETE", &path, self.send(self.http.delete(url)).await?)
    }

    /// POST with `?wait=false`: a long operation answers at once with its job (`{"job":
    /// {"id", ...}}`) instead of being followed to its end.
    pub async fn start(&self, path: &str, body: &impl serde::Serialize) -> Result<Value> {
        self.send(self.http.post(format!("{}{path}?wait=false", self.base)).json(body)).await
    }

    fn url_at(&self, segments: &[&str], query: &[(&str, String)]) -> Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&format!("{}/", self.base)).map_err(|e| Error::InvalidRequest(format!("server URL `{}`: {e}", self.base)))?;
        url.path_segments_mut().map_err(|()| Error::InvalidRequest(format!("server URL `{}` cannot take a path", self.base)))?.pop_if_empty().extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// GET a non-JSON answer (a profile): the body's bytes on success.
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.map_err(|e| {
            Error::Unavailable(format!("cannot reach aidocs-server at {}: {e}", self.base))
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Unavailable(format!("reading the answer of {}: {e}", self.base)))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(server_error(
            status,
            &serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        Ok(self.send_raw(req).await?.1)
    }

    async fn send_raw(&self, mut req: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, Value)> {
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.map_err(|e| Error::Unavailable(format!("cannot reach aidocs-server at {}: {e}", self.base)))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok((status, body));
        }
        Err(server_error(status, &body))
    }
}

/// A successful answer as `T`; an answer of another shape (a server of another version) is
/// an error naming the route.
fn decode<T: serde::de::DeserializeOwned>(method: &str, path: &str, body: Value) -> Result<T> {
    serde_json::from_value(body).map_err(|e| Error::Remote {
        code: ErrorCode::Internal,
        message: format!("the server's answer to {method} {path} is not what this client expects ({e}); is it another aidocs version?"),
    })
}

/// The error for a server's non-2xx answer, from its JSON error body: the server's own code
/// (401 `unauthorized`, 403 `forbidden`, 429 `rate_limited`, ...), so callers and exit
/// messages tell them apart.
fn server_error(status: reqwest::StatusCode, body: &Value) -> Error {
    let code = body["error"]["code"].as_str().unwrap_or("error");
    let message = body["error"]["message"].as_str().unwrap_or("no message");
    let text = format!("server answered {} {code}: {message}", status.as_u16());
    let code = ErrorCode::from_code(code).unwrap_or(match status.as_u16() {
        400 => ErrorCode::InvalidRequest,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        422 => ErrorCode::ValidationFailed,
        429 => ErrorCode::RateLimited,
        504 => ErrorCode::Timeout,
        500 => ErrorCode::Internal,
        _ => ErrorCode::Unavailable,
    });
    Error::Remote {
        code,
        message: text,
    }
}
