//! all-MiniLM-L6-v2 (BERT) with candle: tokenize, forward, mean-pool, normalise.

use aidocs_core::{CoreError, Dims, Embedder, TokenCounter};
use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokenizers::{Tokenizer, TruncationParams};

pub use crate::error::EmbedError;
use crate::memory::{BatchSizer, EncoderShape, MemoryProbe};

/// How to load and run the local model.
#[derive(Debug, Clone)]
pub struct LocalEmbedderConfig {
    /// Directory with `config.json`, `tokenizer.json`, `model.safetensors`.
    pub model_dir: PathBuf,
    /// Model id recorded in collections and cache keys.
    pub model_id: String,
    /// Tokens per input; longer inputs are truncated (the model was trained at 256).
    pub max_seq_len: usize,
    /// Sentences per forward pass (at most; see `memory`).
    pub batch_size: usize,
    /// Memory-adaptive batching: with a probe, each batch shrinks below `batch_size` when
    /// its estimated peak does not fit in half the headroom the probe reports. `None`:
    /// always `batch_size`.
    pub memory: Option<Arc<dyn MemoryProbe>>,
}

impl LocalEmbedderConfig {
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self {
            model_dir: model_dir.into(),
            model_id: "sentence-transformers/all-MiniLM-L6-v2".into(),
            max_seq_len: 256,
            batch_size: 32,
            memory: None,
        }
    }
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dims: Dims,
    sizer: BatchSizer,
    cfg: LocalEmbedderConfig,
}

/// In-process sentence embedder. Cheap to clone (shared model). Async calls run on one
/// thread of the embedder's own ([`crate::batch::Worker`]); `embed_blocking` runs on the
/// caller's.
#[derive(Clone)]
pub struct LocalEmbedder {
    inner: Arc<Inner>,
    worker: Arc<crate::batch::Worker<Arc<Inner>>>,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model_id", &self.inner.cfg.model_id)
            .field("dims", &self.inner.dims)
            .finish()
    }
}

fn need(dir: &Path, name: &str) -> Result<PathBuf, EmbedError> {
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(EmbedError::MissingFile { path: p })
    }
}

/// Load the model's tokenizer with truncation at `max_seq_len` and no padding.
pub(crate) fn load_tokenizer(dir: &Path, max_seq_len: usize) -> Result<Tokenizer, EmbedError> {
    let path = need(dir, "tokenizer.json")?;
    let mut tok = Tokenizer::from_file(&path).map_err(|e| EmbedError::BadFile {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    tok.with_truncation(Some(TruncationParams {
        max_length: max_seq_len,
        ..Default::default()
    }))
    .map_err(|e| EmbedError::BadFile { path, detail: e.to_string() })?;
    tok.with_padding(None);
    Ok(tok)
}

impl LocalEmbedder {
    /// Load config, tokenizer and weights from `cfg.model_dir`.
    pub fn load(cfg: LocalEmbedderConfig) -> Result<Self, EmbedError> {
        let dir = cfg.model_dir.clone();
        let config_path = need(&dir, "config.json")?;
        let weights = need(&dir, "model.safetensors")?;
        let bad = |path: &Path, e: &dyn std::fmt::Display| EmbedError::BadFile {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        let text = std::fs::read_to_string(&config_path).map_err(|e| bad(&config_path, &e))?;
        let bert_cfg: BertConfig =
            serde_json::from_str(&text).map_err(|e| bad(&config_path, &e))?;
        let sizer = BatchSizer::for_model(
            cfg.batch_size,
            EncoderShape::from_config_json(&text),
            cfg.memory.clone(),
        );
        let dims = bert_cfg.hidden_size;
        let device = Device::Cpu;
        // SAFETY: the weights file is memory-mapped read-only; aidocs never writes it while
        // running (the xtask installs models before any process loads them).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device) }
            .map_err(|e| bad(&weights, &e))?;
        let model = BertModel::load(vb, &bert_cfg).map_err(|e| bad(&weights, &e))?;
        let tokenizer = load_tokenizer(&dir, cfg.max_seq_len)?;
        let inner = Arc::new(Inner { model, tokenizer, device, dims, sizer, cfg });
        let worker = crate::batch::Worker::spawn("aidocs-embed", inner.clone())
            .map_err(|e| EmbedError::Inference(format!("cannot start the embedding thread: {e}")))?;
        Ok(Self { inner, worker: Arc::new(worker) })
    }

    /// A token counter sharing this model's tokenizer.
    pub fn token_counter(&self) -> ModelTokenCounter {
        ModelTokenCounter::from_tokenizer(&self.inner.tokenizer)
    }

    /// Embed synchronously (CPU-bound; call from a blocking context).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.embed_blocking(texts)
    }
}

impl Inner {
    fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        crate::batch::embed_batched(
            &self.tokenizer,
            texts,
            &self.sizer,
            |ids, mask, n, len| {
                self.forward(ids, mask, n, len)
                    .map_err(|e| EmbedError::Inference(e.to_string()))
            },
        )
    }

    fn forward(&self, ids: &[u32], mask: &[u32], n: usize, len: usize) -> candle_core::Result<Vec<Vec<f32>>> {
        let dev = &self.device;
        let input_ids = Tensor::from_slice(ids, (n, len), dev)?;
        let attention = Tensor::from_slice(mask, (n, len), dev)?;
        let token_type = input_ids.zeros_like()?;
        let hidden = self.model.forward(&input_ids, &token_type, Some(&attention))?;
        // Mean pooling over real tokens.
        let mask_f = attention.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?;
        let counts = mask_f.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)?.to_vec2::<f32>()
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model_id(&self) -> &str {
        &self.inner.cfg.model_id
    }
    fn dims(&self) -> Dims {
        self.inner.dims
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, CoreError> {
        let texts = texts.to_vec();
        self.worker.run(move |e: &Arc<Inner>| e.embed_blocking(&texts)).await
    }
}

/// Counts tokens with the embedding model's tokenizer (without special tokens).
#[derive(Clone)]
pub struct ModelTokenCounter {
    tokenizer: Arc<Tokenizer>,
}

impl ModelTokenCounter {
    /// Load only the tokenizer from a model directory.
    pub fn load(model_dir: &Path) -> Result<Self, EmbedError> {
        Ok(Self::from_tokenizer(&load_tokenizer(model_dir, 512)?))
    }

    /// A counter over a copy of `tokenizer` without truncation (it must see real lengths).
    pub(crate) fn from_tokenizer(tokenizer: &Tokenizer) -> Self {
        let mut tok = tokenizer.clone();
        tok.with_truncation(None).ok();
        Self { tokenizer: Arc::new(tok) }
    }
}

impl TokenCounter for ModelTokenCounter {
    fn count(&self, text: &str) -> usize {
        if text.is_empty() {
            return 0;
        }
        self.tokenizer.encode(text, false).map(|e| e.get_ids().len()).unwrap_or_else(|_| text.split_whitespace().count())
    }
}
