//! `aidocs-eval`: retrieval quality on BEIR-layout datasets and on the docs-QA layout
//! (questions over real documentation trees, answered by a section: [`docsqa`]), measured
//! through the real search pipeline ([`Engine::search`]); `aidocs eval` and `cargo xtask
//! eval` run it.
//!
//! Owns: dataset loading ([`dataset`], [`docsqa`]), the trec_eval metrics ([`metrics`]),
//! the run (index, query per mode, score, dump) and its report. Depends on the application (`aidocs`), never
//! the other way round. Must not know: HTTP, or how the engine is assembled from config.
//!
//! A run indexes the corpus (one point per document, title + text) into a fresh collection,
//! runs every test query in each requested mode, and scores the rankings with the
//! trec_eval definitions in [`metrics`]. Corpus embeddings are cached on disk per
//! (corpus sha256, model id, max_seq_len), so repeated runs (other fusion settings, other
//! BM25 parameters) only re-encode the sparse side.

pub mod dataset;
pub mod docsqa;
pub mod metrics;

use aidocs::{Engine, SearchRequest};
use aidocs::Record;
use aidocs::{Error, Result};
use aidocs_core::{Fusion, SearchMode};
use dataset::Dataset;
use metrics::{QueryMetrics, mean, percentile, score_query};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What one eval row runs (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalMode {
    Sparse,
    Dense,
    /// Hybrid with the configured fusion, or the given one.
    Hybrid,
    /// Hybrid with HyDE expansion of the dense side.
    Hyde,
    /// Hybrid, then the reranker over the top `rerank.top_k`.
    Rerank,
}

impl std::str::FromStr for EvalMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "sparse" => Ok(Self::Sparse),
            "dense" => Ok(Self::Dense),
            "hybrid" => Ok(Self::Hybrid),
            "hyde" => Ok(Self::Hyde),
            "rerank" => Ok(Self::Rerank),
            other => Err(format!("unknown eval mode `{other}` (expected sparse, dense, hybrid, hyde or rerank)")),
        }
    }
}

impl EvalMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sparse => "sparse",
            Self::Dense => "dense",
            Self::Hybrid => "hybrid",
            Self::Hyde => "hyde",
            Self::Rerank => "rerank",
        }
    }
}

/// Options of one eval run.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub dataset: PathBuf,
    pub modes: Vec<EvalMode>,
    /// Extra hybrid rows, one per fusion setting (for fusion studies).
    pub fusions: Vec<Fusion>,
    /// Evaluate only the first N test queries (quick runs); `None` = all.
    pub max_queries: Option<usize>,
    /// Write per-query rankings here (JSONL: mode, qid, ranked doc ids and scores).
    pub dump: Option<PathBuf>,
    /// Corpus embedding cache directory.
    pub cache_dir: PathBuf,
    /// Title weighting on the lexical side: the title counts this many times in each
    /// document's BM25 vector (1 = title + text once, as indexed in production).
    pub title_weight: usize,
    /// Docs-QA: index into this collection and keep it (a second run reuses it: unchanged
    /// pages are skipped), for runs with `--data-dir` that vary only search settings.
    /// `None`: a scratch collection, removed afterwards.
    pub keep_collection: Option<String>,
}

/// The per-query dump (`--dump FILE`, JSON Lines): nothing when no file was asked for.
pub(crate) struct Dump(Option<std::io::BufWriter<std::fs::File>>);

impl Dump {
    /// Create (truncate) `path`; a path that cannot be written is the caller's mistake.
    pub(crate) fn create(path: Option<&Path>) -> Result<Self> {
        let file = match path {
            Some(p) => Some(std::fs::File::create(p).map_err(|e| Error::InvalidRequest(format!("cannot write {}: {e}", p.display())))?),
            None => None,
        };
        Ok(Self(file.map(std::io::BufWriter::new)))
    }

    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Append one JSON value as a line (nothing when off).
    pub(crate) fn line(&mut self, value: &serde_json::Value) -> Result<()> {
        match self.0.as_mut() {
            Some(w) => writeln!(w, "{value}").map_err(|e| Error::Internal(format!("dump: {e}"))),
            None => Ok(()),
        }
    }

    pub(crate) fn finish(self) -> Result<()> {
        match self.0 {
            Some(mut w) => w.flush().map_err(|e| Error::Internal(format!("dump: {e}"))),
            None => Ok(()),
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    /// Row label: the mode, plus the fusion for hybrid-based rows.
    pub label: String,
    pub mode: EvalMode,
    pub fusion: String,
    pub ndcg_10: f64,
    pub recall_100: f64,
    pub mrr_10: f64,
    /// Whole-search latency per query (the engine's `took_ms`).
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// HyDE generation latency (hyde rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hyde_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hyde_p95_ms: Option<f64>,
    /// Queries whose HyDE or rerank stage was skipped (fell back), with the first reason.
    pub fallbacks: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub dataset: String,
    pub corpus_sha256: String,
    pub documents: usize,
    pub queries: usize,
    pub embedding_model: String,
    pub bm25: aidocs::config::SparseSettings,
    pub title_weight: usize,
    pub prefetch_limit: usize,
    pub index_s: f64,
    pub rows: Vec<ModeReport>,
}

impl EvalReport {
    /// The report as a Markdown table.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "**{}**: {} documents, {} test queries, model `{}`, BM25 k1={} b={} avgdl={}, title weight {}, prefetch {}\n\n",
            self.dataset,
            self.documents,
            self.queries,
            self.embedding_model,
            self.bm25.k1,
            self.bm25.b,
            self.bm25.avg_doc_len,
            self.title_weight,
            self.prefetch_limit
        );
        s.push_str("| mode | fusion | nDCG@10 | recall@100 | MRR@10 | p50 ms | p95 ms | notes |\n");
        s.push_str("|---|---|---:|---:|---:|---:|---:|---|\n");
        for r in &self.rows {
            let mut notes = Vec::new();
            if let (Some(p50), Some(p95)) = (r.hyde_p50_ms, r.hyde_p95_ms) {
                notes.push(format!("generation p50 {p50:.0} ms, p95 {p95:.0} ms"));
            }
            if r.fallbacks > 0 {
                notes.push(format!("{} fallbacks ({})", r.fallbacks, r.fallback_reason.as_deref().unwrap_or("")));
            }
            s.push_str(&format!(
                "| {} | {} | {:.4} | {:.4} | {:.4} | {:.1} | {:.1} | {} |\n",
                r.label,
                r.fusion,
                r.ndcg_10,
                r.recall_100,
                r.mrr_10,
                r.p50_ms,
                r.p95_ms,
                notes.join("; ")
            ));
        }
        s
    }
}

/// Progress callbacks (the CLI draws bars; tests pass `()`).
pub trait EvalProgress: Send + Sync {
    fn stage(&self, _what: &str, _total: usize) {}
    fn inc(&self, _n: usize) {}
}

impl EvalProgress for () {}

/// Run an evaluation on `engine` (its config decides model, BM25 and default fusion).
pub async fn run(engine: &Engine, opts: &EvalOptions, progress: &dyn EvalProgress) -> Result<EvalReport> {
    let ds = tokio::task::spawn_blocking({
        let dir = opts.dataset.clone();
        move || Dataset::load(&dir)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    let queries: Vec<_> = ds.queries.iter().take(opts.max_queries.unwrap_or(usize::MAX)).cloned().collect();
    let collection = format!("eval-{}-{}", sanitize(&ds.name), &uuid::Uuid::new_v4().simple().to_string()[..8]);

    let t = Instant::now();
    let dense = corpus_embeddings(engine, &ds, &opts.cache_dir, progress).await?;
    let records: Vec<(Record, Vec<f32>)> = ds
        .corpus
        .iter()
        .zip(dense)
        .map(|(d, v)| {
            // Extra title copies go into the text: only the sparse side is encoded here (the
            // dense vectors come from the corpus embeddings above).
            let extra = format!("{} ", d.title).repeat(opts.title_weight.saturating_sub(1));
            let record = Record { id: d.id.clone(), title: d.title.clone(), text: format!("{extra}{}", d.text), url: String::new(), metadata: Default::default() };
            (record, v)
        })
        .collect();
    progress.stage("indexing", records.len());
    let source = format!("beir:{}", ds.name);
    for chunk in records.chunks(2048) {
        engine.ingest().embedded_records(&collection, &source, chunk.to_vec()).await?;
        progress.inc(chunk.len());
    }
    engine.collections().optimize(&collection).await?;
    let index_s = t.elapsed().as_secs_f64();

    let mut rows: Vec<(EvalMode, Option<Fusion>)> = opts.modes.iter().map(|m| (*m, None)).collect();
    rows.extend(opts.fusions.iter().map(|f| (EvalMode::Hybrid, Some(*f))));
    let mut dump = Dump::create(opts.dump.as_deref())?;
    let mut reports = Vec::new();
    let result = async {
        for (mode, fusion) in rows {
            let (eng, fusion_label) = row_engine(engine, mode, fusion);
            progress.stage(&format!("{} {}", mode.as_str(), fusion_label), queries.len());
            let mut per_query: Vec<QueryMetrics> = Vec::with_capacity(queries.len());
            let (mut took, mut hyde_ms) = (Vec::new(), Vec::new());
            let (mut fallbacks, mut reason) = (0, None);
            for q in &queries {
                let mut req = SearchRequest::new(q.text.clone());
                req.collection = Some(collection.clone());
                req.limit = Some(100.min(eng.config().search.max_limit));
                set_mode(&mut req, mode);
                let resp = eng.search(req).await?;
                took.push(resp.took_ms);
                if mode == EvalMode::Hyde {
                    hyde_ms.push(resp.timings.hyde_ms);
                }
                for note in [&resp.hyde, &resp.rerank].into_iter().flatten() {
                    if note.is_skipped() {
                        fallbacks += 1;
                        reason.get_or_insert_with(|| note.to_string());
                    }
                }
                let ranked: Vec<String> = resp.hits.iter().map(|h| h.path.clone()).collect();
                if dump.is_on() {
                    let results: Vec<(&str, f32)> = resp.hits.iter().map(|h| (h.path.as_str(), h.score)).collect();
                    dump.line(&serde_json::json!({"mode": mode.as_str(), "fusion": fusion_label, "qid": q.id, "results": results}))?;
                }
                per_query.push(score_query(&q.id, &ranked, &ds.qrels[&q.id]));
                progress.inc(1);
            }
            let m = mean(&per_query);
            reports.push(ModeReport {
                label: mode.as_str().to_owned(),
                mode,
                fusion: fusion_label,
                ndcg_10: m.ndcg_10,
                recall_100: m.recall_100,
                mrr_10: m.mrr_10,
                p50_ms: percentile(&took, 50.0),
                p95_ms: percentile(&took, 95.0),
                hyde_p50_ms: (!hyde_ms.is_empty()).then(|| percentile(&hyde_ms, 50.0)),
                hyde_p95_ms: (!hyde_ms.is_empty()).then(|| percentile(&hyde_ms, 95.0)),
                fallbacks,
                fallback_reason: reason,
            });
        }
        Ok::<_, Error>(())
    }
    .await;
    // The eval collection is scratch: always removed, also after a failed row.
    let _ = engine.collections().delete(&collection).await;
    result?;
    dump.finish()?;
    Ok(EvalReport {
        dataset: ds.name.clone(),
        corpus_sha256: ds.corpus_sha256.clone(),
        documents: ds.corpus.len(),
        queries: queries.len(),
        embedding_model: engine.embedder().model_id().to_owned(),
        bm25: engine.config().sparse.clone(),
        title_weight: opts.title_weight,
        prefetch_limit: engine.config().search.prefetch_limit,
        index_s,
        rows: reports,
    })
}

/// The engine one row searches with (the given fusion, else the configured one) and the
/// row's fusion label (`-` for the single-list modes).
pub(crate) fn row_engine(engine: &Engine, mode: EvalMode, fusion: Option<Fusion>) -> (Engine, String) {
    let eng = match fusion {
        Some(f) => engine.with_fusion(f),
        None => engine.clone(),
    };
    let label = match mode {
        EvalMode::Sparse | EvalMode::Dense => "-".to_owned(),
        _ => eng.config().search.fusion.to_string(),
    };
    (eng, label)
}

/// A request's retrieval mode, HyDE and rerank flags for a row's mode.
pub(crate) fn set_mode(req: &mut SearchRequest, mode: EvalMode) {
    req.mode = Some(match mode {
        EvalMode::Sparse => SearchMode::Sparse,
        EvalMode::Dense => SearchMode::Dense,
        _ => SearchMode::Hybrid,
    });
    req.hyde = Some(mode == EvalMode::Hyde);
    req.rerank = Some(mode == EvalMode::Rerank);
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// Dense vectors of the corpus (title + text), from the on-disk cache when it has them.
/// Cache file: little-endian f32 rows in corpus order; written atomically.
async fn corpus_embeddings(engine: &Engine, ds: &Dataset, cache_dir: &Path, progress: &dyn EvalProgress) -> Result<Vec<Vec<f32>>> {
    let embedder = engine.embedder();
    let dims = embedder.dims();
    // The engine matters too: the ONNX int8 export shares the model id but not the exact vectors.
    let key = aidocs_ingest::sha256_hex(&format!(
        "{}\n{:?}\n{}\n{}\n{}",
        ds.corpus_sha256,
        engine.config().embedding.provider,
        embedder.model_id(),
        engine.config().embedding.max_seq_len,
        dims
    ));
    let path = cache_dir.join(format!("{}-{}.f32", sanitize(&ds.name), &key[..16]));
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() == ds.corpus.len() * dims * 4 {
            let floats: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            return Ok(floats.chunks(dims).map(<[f32]>::to_vec).collect());
        }
        tracing::warn!(path = %path.display(), "embedding cache has the wrong size; recomputing");
    }
    progress.stage("embedding corpus", ds.corpus.len());
    let mut out = Vec::with_capacity(ds.corpus.len());
    for chunk in ds.corpus.chunks(256) {
        let texts: Vec<String> = chunk
            .iter()
            .map(|d| Record { id: String::new(), title: d.title.clone(), text: d.text.clone(), url: String::new(), metadata: Default::default() }.encoder_text())
            .collect();
        out.extend(embedder.embed(&texts).await?);
        progress.inc(chunk.len());
    }
    std::fs::create_dir_all(cache_dir)
        .map_err(|e| Error::Internal(format!("{}: {e}", cache_dir.display())))?;
    let bytes: Vec<u8> = out.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    aidocs_fsio::write_atomic(&path, &bytes)
        .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
    Ok(out)
}
