//! [`OpenAiEmbedder`]: any OpenAI-compatible `/embeddings` endpoint (OpenAI, llama.cpp's
//! server, vLLM, Ollama, TEI). Request and response are `async-openai`'s embedding types;
//! the transport is reqwest directly, because the retry policy needs the `Retry-After`
//! header (async-openai's built-in backoff does not expose it).
//!
//! Batches respect the API's input count and an estimated token budget per request;
//! requests and tokens per minute are rate-limited per embedder; 429 / 5xx / transport
//! errors are retried with exponential backoff or `Retry-After`; token usage reported by the
//! provider is counted ([`OpenAiEmbedder::tokens_reported`]).

use aidocs_core::{CoreError, Dims, Embedder};
use async_openai::types::embeddings::{CreateEmbeddingRequest, CreateEmbeddingResponse, EmbeddingInput, EncodingFormat};
use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct OpenAiEmbedderConfig {
    /// API base, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    /// The vector size the model returns (checked on every response).
    pub dims: Dims,
    /// Sent as `dimensions` (models that can shorten their output, e.g. text-embedding-3).
    pub dimensions: Option<u32>,
    /// Inputs per request (OpenAI allows 2048).
    pub max_batch: usize,
    /// Estimated tokens per request (4 characters a token); a longer single input is sent
    /// alone.
    pub max_batch_tokens: usize,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    pub timeout: Duration,
    pub retries: u32,
    pub max_retry_wait: Duration,
}

impl Default for OpenAiEmbedderConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            model: "text-embedding-3-small".into(),
            dims: 1536,
            dimensions: None,
            max_batch: 256,
            max_batch_tokens: 100_000,
            requests_per_minute: None,
            tokens_per_minute: None,
            timeout: Duration::from_secs(60),
            retries: 4,
            max_retry_wait: Duration::from_secs(60),
        }
    }
}

pub struct OpenAiEmbedder {
    cfg: OpenAiEmbedderConfig,
    client: reqwest::Client,
    url: String,
    model_id: String,
    requests: Option<DefaultDirectRateLimiter>,
    tokens: Option<(DefaultDirectRateLimiter, u32)>,
    reported: Arc<AtomicU64>,
}

/// Estimated tokens of a text for batching and rate limits (4 characters a token).
fn estimate(text: &str) -> u32 {
    (text.len() / 4 + 1).min(u32::MAX as usize) as u32
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().to_owned();
    if let Ok(s) = v.parse::<f64>() {
        return Some(Duration::from_secs_f64(s.max(0.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(&v).ok()?;
    (at.to_utc() - chrono::Utc::now()).to_std().ok()
}

impl OpenAiEmbedder {
    pub fn new(cfg: OpenAiEmbedderConfig) -> Result<Self, CoreError> {
        if cfg.model.trim().is_empty() || cfg.dims == 0 || cfg.max_batch == 0 {
            return Err(CoreError::InvalidInput("the OpenAI-compatible embedder needs a model, dims > 0 and max_batch > 0".into()));
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = reqwest::Client::builder().timeout(cfg.timeout).build().map_err(|e| CoreError::Embedding(format!("HTTP client: {e}")))?;
        let url = format!("{}/embeddings", cfg.base_url.trim_end_matches('/'));
        let per_minute = |n: u32| NonZeroU32::new(n).map(Quota::per_minute);
        let requests = cfg.requests_per_minute.and_then(per_minute).map(RateLimiter::direct);
        let tokens = cfg.tokens_per_minute.and_then(|n| per_minute(n).map(|q| (RateLimiter::direct(q), n)));
        let model_id = match cfg.dimensions {
            Some(d) => format!("openai:{}@{d}", cfg.model),
            None => format!("openai:{}", cfg.model),
        };
        Ok(Self { cfg, client, url, model_id, requests, tokens, reported: Arc::default() })
    }

    /// Tokens the provider reported in `usage`, summed over every response so far.
    pub fn tokens_reported(&self) -> u64 {
        self.reported.load(Ordering::Relaxed)
    }

    /// Split into requests within the input and token budgets.
    fn batches<'a>(&self, texts: &'a [String]) -> Vec<&'a [String]> {
        let mut out = Vec::new();
        let (mut start, mut tokens) = (0, 0usize);
        for (i, t) in texts.iter().enumerate() {
            let est = estimate(t) as usize;
            if i > start && (i - start >= self.cfg.max_batch || tokens + est > self.cfg.max_batch_tokens) {
                out.push(&texts[start..i]);
                (start, tokens) = (i, 0);
            }
            tokens += est;
        }
        if start < texts.len() {
            out.push(&texts[start..]);
        }
        out
    }

    async fn request(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, CoreError> {
        if let Some(l) = &self.requests {
            l.until_ready().await;
        }
        if let Some((l, burst)) = &self.tokens {
            let want: u32 = batch.iter().map(|t| estimate(t)).sum::<u32>().clamp(1, *burst);
            let _ = l.until_n_ready(NonZeroU32::new(want).expect("clamped to >= 1")).await;
        }
        let body = CreateEmbeddingRequest {
            model: self.cfg.model.clone(),
            input: EmbeddingInput::StringArray(batch.to_vec()),
            encoding_format: Some(EncodingFormat::Float),
            user: None,
            dimensions: self.cfg.dimensions,
        };
        let fail = |m: String| CoreError::Embedding(format!("{} ({}): {m}", self.url, self.cfg.model));
        let mut attempt = 0u32;
        let resp = loop {
            let mut req = self.client.post(&self.url).json(&body);
            if let Some(k) = &self.cfg.api_key {
                req = req.bearer_auth(k);
            }
            let wait = match req.send().await {
                Ok(r) if r.status().is_success() => break r,
                Ok(r) if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS || r.status().is_server_error() => {
                    let wait = retry_after(&r);
                    if attempt >= self.cfg.retries {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        return Err(fail(format!("HTTP {} after {} retries: {}", status.as_u16(), attempt, text.chars().take(300).collect::<String>())));
                    }
                    wait
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    return Err(fail(format!("HTTP {}: {}", status.as_u16(), text.chars().take(300).collect::<String>())));
                }
                Err(e) if attempt < self.cfg.retries && (e.is_timeout() || e.is_connect() || e.is_request()) => None,
                Err(e) => return Err(fail(format!("request failed: {e}"))),
            };
            attempt += 1;
            let backoff = Duration::from_millis(200u64.saturating_mul(1 << attempt.min(16)));
            tokio::time::sleep(wait.unwrap_or(backoff).min(self.cfg.max_retry_wait)).await;
        };
        let bytes = resp.bytes().await.map_err(|e| fail(format!("reading the response: {e}")))?;
        let parsed: CreateEmbeddingResponse = serde_json::from_slice(&bytes).map_err(|e| fail(format!("malformed response: {e}")))?;
        self.reported.fetch_add(u64::from(parsed.usage.total_tokens), Ordering::Relaxed);
        if parsed.data.len() != batch.len() {
            return Err(fail(format!("{} vectors for {} inputs", parsed.data.len(), batch.len())));
        }
        let mut data = parsed.data;
        data.sort_by_key(|e| e.index);
        let mut out = Vec::with_capacity(data.len());
        for (i, e) in data.into_iter().enumerate() {
            if e.index as usize != i {
                return Err(fail(format!("response indexes are not 0..{}", batch.len())));
            }
            if e.embedding.len() != self.cfg.dims {
                return Err(fail(format!("the model returned {} dimensions; embedding.dims is {}", e.embedding.len(), self.cfg.dims)));
            }
            let norm = e.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
            if !norm.is_finite() || norm == 0.0 {
                return Err(fail(format!("input {i} got a zero or non-finite vector")));
            }
            out.push(e.embedding.into_iter().map(|x| x / norm).collect());
        }
        Ok(out)
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dims(&self) -> Dims {
        self.cfg.dims
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, CoreError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in self.batches(texts) {
            out.extend(self.request(batch).await?);
        }
        Ok(out)
    }

    fn tokens_used(&self) -> Option<u64> {
        Some(self.tokens_reported())
    }
}

/// Token counts for chunking when the model's tokenizer is not at hand: 4 characters a
/// token, the usual estimate for English text with BPE tokenizers.
pub struct ApproxTokenCounter;

impl aidocs_core::TokenCounter for ApproxTokenCounter {
    fn count(&self, text: &str) -> usize {
        if text.is_empty() { 0 } else { text.chars().count().div_ceil(4) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_input_and_token_budgets() {
        let e = OpenAiEmbedder::new(OpenAiEmbedderConfig { max_batch: 3, max_batch_tokens: 10, ..Default::default() }).unwrap();
        let texts: Vec<String> = ["aaaa", "bbbb", "cccc", "dddd", &"x".repeat(100), "e"].iter().map(|s| s.to_string()).collect();
        let sizes: Vec<usize> = e.batches(&texts).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [3, 1, 1, 1], "3 inputs max; the 100-char input goes alone");
        assert_eq!(e.model_id(), "openai:text-embedding-3-small");
    }
}
