//! [`OpenAiGenerator`]: chat completions over an OpenAI-compatible API with `async-openai`.

use aidocs_core::{CoreError, Generator};
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use async_trait::async_trait;
use std::time::Duration;

/// Where and how to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiGeneratorConfig {
    /// API base including the version path, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:8081/v1`.
    pub base_url: String,
    /// Bearer token; empty for local servers that need none.
    pub api_key: String,
    pub model: String,
    pub temperature: f32,
    pub max_tokens: u32,
    /// Per-request deadline (connect + response).
    pub timeout: Duration,
}

/// A [`Generator`] over an OpenAI-compatible `/chat/completions` endpoint.
///
/// Servers that ignore `n` (llama.cpp's returns one choice) are topped up with further
/// single-choice requests, sent concurrently.
pub struct OpenAiGenerator {
    client: Client<OpenAIConfig>,
    cfg: OpenAiGeneratorConfig,
}

impl std::fmt::Debug for OpenAiGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiGenerator").field("base_url", &self.cfg.base_url).field("model", &self.cfg.model).finish()
    }
}

/// rustls needs a process-wide crypto provider; install ring's once (a no-op if the host
/// application installed one already).
pub(crate) fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl OpenAiGenerator {
    pub fn new(cfg: OpenAiGeneratorConfig) -> Result<Self, CoreError> {
        install_crypto_provider();
        if !(cfg.base_url.starts_with("http://") || cfg.base_url.starts_with("https://")) {
            return Err(CoreError::InvalidInput(format!("generator base_url `{}` must start with http:// or https://", cfg.base_url)));
        }
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| CoreError::Generation(format!("http client: {e}")))?;
        let config = OpenAIConfig::new().with_api_base(cfg.base_url.trim_end_matches('/')).with_api_key(cfg.api_key.clone());
        Ok(Self { client: Client::build(http, config), cfg })
    }

    async fn complete(&self, system: &str, user: &str, n: usize) -> Result<Vec<String>, CoreError> {
        let gen_err = |e: String| CoreError::Generation(format!("{}: {e}", self.cfg.base_url));
        let messages = vec![
            ChatCompletionRequestSystemMessageArgs::default().content(system).build().map_err(|e| gen_err(e.to_string()))?.into(),
            ChatCompletionRequestUserMessageArgs::default().content(user).build().map_err(|e| gen_err(e.to_string()))?.into(),
        ];
        #[allow(deprecated)] // `max_tokens` is what every compatible server understands.
        let req = CreateChatCompletionRequestArgs::default()
            .model(self.cfg.model.clone())
            .messages(messages)
            .temperature(self.cfg.temperature)
            .max_tokens(self.cfg.max_tokens)
            .n(n.clamp(1, 128) as u8)
            .build()
            .map_err(|e| gen_err(e.to_string()))?;
        let resp = self.client.chat().create(req).await.map_err(|e| gen_err(e.to_string()))?;
        Ok(resp.choices.into_iter().filter_map(|c| c.message.content).filter(|t| !t.trim().is_empty()).collect())
    }
}

#[async_trait]
impl Generator for OpenAiGenerator {
    fn model_id(&self) -> &str {
        &self.cfg.model
    }

    async fn generate(&self, system: &str, user: &str, n: usize) -> Result<Vec<String>, CoreError> {
        let n = n.max(1);
        let mut out = self.complete(system, user, n).await?;
        if out.len() < n {
            let more = futures::future::join_all((out.len()..n).map(|_| self.complete(system, user, 1))).await;
            out.extend(more.into_iter().filter_map(Result::ok).flatten());
        }
        out.truncate(n);
        if out.is_empty() {
            return Err(CoreError::Generation(format!("{}: no non-empty completion", self.cfg.base_url)));
        }
        Ok(out)
    }
}
