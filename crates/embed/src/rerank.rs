//! Rerankers: [`CrossEncoder`] (a BERT sequence-classification model such as
//! `cross-encoder/ms-marco-MiniLM-L-6-v2`, in-process on candle) and [`HttpReranker`]
//! (a `/rerank` endpoint in the Text Embeddings Inference, Cohere or Jina shape).

use crate::local::{EmbedError, load_tokenizer};
use aidocs_core::{CoreError, Reranker};
use async_trait::async_trait;
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokenizers::Tokenizer;

/// How to load a cross-encoder.
#[derive(Debug, Clone)]
pub struct CrossEncoderConfig {
    /// Directory with `config.json`, `tokenizer.json`, `model.safetensors` in the Hugging
    /// Face `BertForSequenceClassification` layout (`bert.*`, `bert.pooler.dense`, `classifier`).
    pub model_dir: PathBuf,
    pub model_id: String,
    /// Tokens per (query, passage) pair; the longer side is truncated first.
    pub max_seq_len: usize,
    /// Pairs per forward pass.
    pub batch_size: usize,
}

struct Inner {
    bert: BertModel,
    pooler: Linear,
    classifier: Linear,
    tokenizer: Tokenizer,
    device: Device,
    cfg: CrossEncoderConfig,
}

/// A BERT cross-encoder: `score = classifier(tanh(pooler([CLS])))[0]`, the raw logit (the
/// last label's logit for multi-label heads). Cheap to clone.
#[derive(Clone)]
pub struct CrossEncoder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CrossEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossEncoder").field("model_id", &self.inner.cfg.model_id).finish()
    }
}

impl CrossEncoder {
    pub fn load(cfg: CrossEncoderConfig) -> Result<Self, EmbedError> {
        let dir = cfg.model_dir.clone();
        let file = |name: &str| {
            let p = dir.join(name);
            if p.is_file() { Ok(p) } else { Err(EmbedError::MissingFile { path: p }) }
        };
        let bad = |path: &Path, e: &dyn std::fmt::Display| EmbedError::BadFile { path: path.to_path_buf(), detail: e.to_string() };
        let config_path = file("config.json")?;
        let weights = file("model.safetensors")?;
        let text = std::fs::read_to_string(&config_path).map_err(|e| bad(&config_path, &e))?;
        let bert_cfg: BertConfig = serde_json::from_str(&text).map_err(|e| bad(&config_path, &e))?;
        let raw: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&config_path, &e))?;
        let labels = raw.get("id2label").and_then(|m| m.as_object()).map_or(1, |m| m.len().max(1));
        let device = Device::Cpu;
        // SAFETY: read-only memory map of a model file nothing writes while aidocs runs.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device) }.map_err(|e| bad(&weights, &e))?;
        let bert = BertModel::load(vb.pp("bert"), &bert_cfg).map_err(|e| bad(&weights, &e))?;
        let h = bert_cfg.hidden_size;
        let pooler = candle_nn::linear(h, h, vb.pp("bert.pooler.dense")).map_err(|e| bad(&weights, &e))?;
        let classifier = candle_nn::linear(h, labels, vb.pp("classifier")).map_err(|e| bad(&weights, &e))?;
        let tokenizer = load_tokenizer(&dir, cfg.max_seq_len)?;
        Ok(Self { inner: Arc::new(Inner { bert, pooler, classifier, tokenizer, device, cfg }) })
    }

    /// Score pairs synchronously (CPU-bound; call from a blocking context).
    pub fn score_blocking(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbedError> {
        let mut out = Vec::with_capacity(passages.len());
        for batch in passages.chunks(self.inner.cfg.batch_size.max(1)) {
            out.extend(self.forward(query, batch).map_err(|e| EmbedError::Inference(e.to_string()))?);
        }
        Ok(out)
    }

    fn forward(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, Box<dyn std::error::Error + Send + Sync>> {
        let inner = &self.inner;
        let encodings: Vec<_> =
            passages.iter().map(|p| inner.tokenizer.encode((query, p.as_str()), true)).collect::<Result<_, _>>()?;
        let len = encodings.iter().map(|e| e.get_ids().len()).max().unwrap_or(0).max(1);
        let n = encodings.len();
        let (mut ids, mut types, mut mask) = (vec![0u32; n * len], vec![0u32; n * len], vec![0u32; n * len]);
        for (i, e) in encodings.iter().enumerate() {
            let row = i * len;
            for (j, ((id, t), m)) in e.get_ids().iter().zip(e.get_type_ids()).zip(e.get_attention_mask()).enumerate() {
                ids[row + j] = *id;
                types[row + j] = *t;
                mask[row + j] = *m;
            }
        }
        let dev = &inner.device;
        let ids = Tensor::from_vec(ids, (n, len), dev)?;
        let types = Tensor::from_vec(types, (n, len), dev)?;
        let mask = Tensor::from_vec(mask, (n, len), dev)?;
        let hidden = inner.bert.forward(&ids, &types, Some(&mask))?;
        let cls = hidden.i((.., 0, ..))?.contiguous()?;
        let pooled = inner.pooler.forward(&cls)?.tanh()?;
        let logits = inner.classifier.forward(&pooled)?;
        let last = logits.dim(1)? - 1;
        Ok(logits.i((.., last))?.to_vec1::<f32>()?)
    }
}

#[async_trait]
impl Reranker for CrossEncoder {
    fn model_id(&self) -> &str {
        &self.inner.cfg.model_id
    }

    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, CoreError> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let (this, query, passages) = (self.clone(), query.to_owned(), passages.to_vec());
        tokio::task::spawn_blocking(move || this.score_blocking(&query, &passages))
            .await
            .map_err(|e| CoreError::Rerank(format!("rerank task failed: {e}")))?
            .map_err(|e| CoreError::Rerank(e.to_string()))
    }
}

/// Request/response shape of a remote `/rerank` API (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RerankApi {
    /// Hugging Face Text Embeddings Inference: `{query, texts}` -> `[{index, score}]`.
    Tei,
    /// Cohere: `{model, query, documents}` -> `{results: [{index, relevance_score}]}`.
    Cohere,
    /// Jina: the Cohere shape.
    Jina,
}

/// Where a remote reranker lives.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRerankerConfig {
    /// Full endpoint URL, e.g. `http://127.0.0.1:8080/rerank` or `https://api.cohere.com/v1/rerank`.
    pub url: String,
    pub api: RerankApi,
    /// Model name sent to Cohere/Jina (ignored by TEI) and reported as `model_id`.
    pub model: String,
    /// Bearer token; empty for none.
    pub api_key: String,
    pub timeout: Duration,
}

/// A [`Reranker`] over HTTP.
#[derive(Debug, Clone)]
pub struct HttpReranker {
    http: reqwest::Client,
    cfg: HttpRerankerConfig,
}

#[derive(serde::Deserialize)]
struct TeiHit {
    index: usize,
    score: f32,
}

#[derive(serde::Deserialize)]
struct CohereHit {
    index: usize,
    relevance_score: f32,
}

#[derive(serde::Deserialize)]
struct CohereResponse {
    results: Vec<CohereHit>,
}

impl HttpReranker {
    pub fn new(cfg: HttpRerankerConfig) -> Result<Self, CoreError> {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        if !(cfg.url.starts_with("http://") || cfg.url.starts_with("https://")) {
            return Err(CoreError::InvalidInput(format!("rerank url `{}` must start with http:// or https://", cfg.url)));
        }
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| CoreError::Rerank(format!("http client: {e}")))?;
        Ok(Self { http, cfg })
    }
}

#[async_trait]
impl Reranker for HttpReranker {
    fn model_id(&self) -> &str {
        &self.cfg.model
    }

    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, CoreError> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let err = |e: String| CoreError::Rerank(format!("{}: {e}", self.cfg.url));
        let body = match self.cfg.api {
            RerankApi::Tei => serde_json::json!({"query": query, "texts": passages, "raw_scores": false, "truncate": true}),
            RerankApi::Cohere | RerankApi::Jina => serde_json::json!({
                "model": self.cfg.model, "query": query, "documents": passages, "top_n": passages.len(), "return_documents": false
            }),
        };
        let mut req = self.http.post(&self.cfg.url).json(&body);
        if !self.cfg.api_key.is_empty() {
            req = req.bearer_auth(&self.cfg.api_key);
        }
        let resp = req.send().await.map_err(|e| err(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(err(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>())));
        }
        let hits: Vec<(usize, f32)> = match self.cfg.api {
            RerankApi::Tei => resp.json::<Vec<TeiHit>>().await.map_err(|e| err(e.to_string()))?.into_iter().map(|h| (h.index, h.score)).collect(),
            RerankApi::Cohere | RerankApi::Jina => resp
                .json::<CohereResponse>()
                .await
                .map_err(|e| err(e.to_string()))?
                .results
                .into_iter()
                .map(|h| (h.index, h.relevance_score))
                .collect(),
        };
        let mut scores = vec![f32::NAN; passages.len()];
        for (i, s) in hits {
            *scores.get_mut(i).ok_or_else(|| err(format!("response index {i} out of range")))? = s;
        }
        if scores.iter().any(|s| s.is_nan()) {
            return Err(err("response does not score every passage".into()));
        }
        Ok(scores)
    }
}
