//! [`IngestService`] (`Engine::ingest`): one pipeline for every [`Source`]. A source sends
//! what it finds ([`SourceEvent`]); the pipeline chunks each document, compares it with what
//! the store holds for the source (ids and hashes only), embeds and writes what changed,
//! deletes the stale ids a rewrite leaves and, for a complete source, the documents it no
//! longer has, then drops cached searches and optimizes, the same way for a directory and
//! a crawl. Progress goes to an [`IngestProgress`] observer; every run returns one
//! [`IngestReport`].
//!
//! Sources: [`DirectorySource`] (`dir`), the crawl of a registered web source (`web`), a
//! Git repository's checkout (`git`, ingested as a directory).
//! Must not know: HTTP, the CLI, or how any source reads its items (that is the source's).

mod dir;
pub mod git;
mod records;
pub mod source;
pub mod web;

pub use dir::DirectorySource;
pub use records::Record;
pub use source::{Owns, Source, SourceEvent};
pub use web::{WebIngestRequest, WebSource, WebSourceKind};
pub use aidocs_crawl::Render;
/// What a [`Source`] sends: a parsed document, and the parser a source may use.
pub use aidocs_ingest::{DocFormat, Document, ParsedDoc, parse};

use crate::config::Config;
use crate::engine::{Engine, ms};
use crate::error::{Error, Result};
use crate::progress::{FileOutcome, IngestProgress};
use crate::report::{IngestReport, NoteKind};
use aidocs_core::{ChunkPayload, DocMetadata, Point, Release, SparseEncoder, SparseVector, TokenCounter};
use aidocs_ingest::{Chunker, ChunkerConfig, point_id, sha256_hex};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

/// What to ingest from a directory (or one file) on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRequest {
    pub path: PathBuf,
    pub collection: String,
    /// Overrides `ingest.metadata` for this run.
    pub metadata: DocMetadata,
    /// Overrides `ingest.base_url`.
    pub base_url: Option<String>,
}

impl Engine {
    /// The ingest service of this engine: directories, web sources and their re-crawls,
    /// pre-split records, and any other [`Source`], through one pipeline.
    pub fn ingest(&self) -> IngestService {
        IngestService { engine: self.clone(), release: Release::Scratch }
    }
}

/// Writes documents into collections (`Engine::ingest`). One run at a time per engine:
/// each computes its deltas against the stored state.
#[derive(Clone)]
pub struct IngestService {
    engine: Engine,
    release: Release,
}

/// Per source id: the doc hashes and point ids the store holds for it.
type Existing = HashMap<String, (HashSet<String>, Vec<uuid::Uuid>)>;

impl IngestService {
    /// What each run asks the embedder to give back once it has embedded everything, before
    /// the final optimize (where an ingest's memory peaks): [`Release::Scratch`] by default,
    /// for a process that goes on searching; [`Release::Model`] for one that exits after the
    /// run (the CLI's `ingest` and `sync`), so the model's memory is not held beside the
    /// optimize's.
    pub fn releasing(mut self, what: Release) -> Self {
        self.release = what;
        self
    }

    /// Ingest a directory tree (or one file), incrementally: unchanged documents are skipped
    /// without embedding, changed ones have all their chunks rewritten and stale chunks
    /// removed, documents gone from the tree are removed. Returns only after every write is
    /// durable.
    pub async fn directory(&self, req: IngestRequest, progress: &dyn IngestProgress) -> Result<IngestReport> {
        let cfg = self.engine.config();
        let base_url = req.base_url.clone().or_else(|| cfg.ingest.base_url.clone());
        let defaults = DocMetadata::from(&cfg.ingest.metadata).overlay(&req.metadata);
        let mut source = DirectorySource::new(&req.path, base_url, defaults)?;
        self.run(&req.collection, &mut source, progress).await
    }

    /// Run any source into `collection` (created for this engine's model when absent).
    pub async fn run(&self, collection: &str, source: &mut dyn Source, progress: &dyn IngestProgress) -> Result<IngestReport> {
        let _one_at_a_time = self.engine.ingest_lock.lock().await;
        let collection = self.engine.ensure_collection(collection).await?;
        self.pipeline(&collection, source, progress).await
    }

    /// The pipeline, on a resolved collection, under the ingest lock.
    async fn pipeline(&self, collection: &str, source: &mut dyn Source, progress: &dyn IngestProgress) -> Result<IngestReport> {
        let started = Instant::now();
        let engine = &self.engine;
        let store = engine.store();
        let mut existing: Existing = HashMap::new();
        for p in store.scroll_sources(collection, source.owns()).await? {
            let e = existing.entry(p.source).or_default();
            e.0.insert(p.doc_hash);
            e.1.push(p.id);
        }
        let mut report = IngestReport::new(collection, source.detail());
        let cfg = engine.config();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let overlap = cfg.ingest.overlaps(&cfg.embedding, cores);
        tracing::debug!(overlap, cores, embedding_threads = cfg.embedding.threads, "ingest pipeline");
        let mut run = Run { batch: Batch::default(), writing: None, overlap, seen: HashSet::new(), skipped: 0, failed: 0 };
        let complete = source.complete();
        let (produced, consumed) = {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<SourceEvent>(32);
            let produce = source.produce(tx);
            tokio::pin!(produce);
            let mut produced = None;
            let consumed: Result<()> = async {
                loop {
                    let event = tokio::select! {
                        r = &mut produce, if produced.is_none() => { produced = Some(r); continue; }
                        w = in_flight(&mut run.writing) => {
                            run.writing = None;
                            w?.add_to(&mut report);
                            continue;
                        }
                        e = rx.recv() => match e { Some(e) => e, None => break },
                    };
                    self.event(collection, event, &mut existing, &mut run, &mut report, progress).await?;
                }
                Ok(())
            }
            .await;
            let produced = match produced {
                Some(r) => r,
                // The pipeline stopped first: the source is dropped mid-walk.
                None if consumed.is_err() => Ok(()),
                None => produce.await,
            };
            (produced, consumed)
        };
        source.finish(&mut report.detail);
        // The batch in flight is finished whatever happened; after a failure of the
        // pipeline its own error comes second.
        let written = match run.writing.take() {
            Some(w) => w.await,
            None => Ok(Written::default()),
        };
        consumed?;
        written?.add_to(&mut report);
        // What the source sent before it failed is written; nothing is swept after a failure.
        self.write(collection, std::mem::take(&mut run.batch)).await?.add_to(&mut report);
        if let Err(e) = produced {
            self.engine.invalidate_search(collection).await;
            return Err(e);
        }
        if complete {
            // Documents the source no longer has.
            let gone: Vec<String> = existing.keys().filter(|src| !run.seen.contains(*src)).cloned().collect();
            report.documents_deleted += gone.len();
            let ids: Vec<uuid::Uuid> = gone.iter().filter_map(|s| existing.remove(s)).flat_map(|(_, ids)| ids).collect();
            report.points_deleted += ids.len();
            store.delete(collection, ids).await?;
        }
        if report.chunks_written > 0 {
            // The embedder is done with this run: what its runtime keeps for the next batch
            // (and the model, when the caller will not embed again) goes back before the
            // optimize, where the run's memory peaks. Through the engine's stack: each
            // wrapper passes it on to the embedder it wraps.
            engine.embedder().release_memory(self.release).await;
        }
        report.stages.optimize_ms = self.writes_done(collection, report.changed()).await?;
        report.took_ms = ms(started);
        let m = engine.metrics();
        m.ingest_documents("written", report.documents_written as u64);
        m.ingest_documents("unchanged", report.documents_unchanged as u64);
        m.ingest_documents("deleted", report.documents_deleted as u64);
        m.ingest_documents("skipped", run.skipped);
        if run.failed > 0 {
            m.ingest_documents("failed", run.failed);
        }
        m.ingest_volume(report.chunks_written as u64, report.detail.bytes());
        progress.finish(&report);
        Ok(report)
    }

    /// One event of a source.
    async fn event<'a>(
        &'a self,
        collection: &'a str,
        event: SourceEvent,
        existing: &mut Existing,
        run: &mut Run<'a>,
        report: &mut IngestReport,
        progress: &dyn IngestProgress,
    ) -> Result<()> {
        match event {
            SourceEvent::Scanning => progress.scanning(),
            SourceEvent::Listed { total } => {
                report.detail.listed(total);
                progress.start(total);
            }
            SourceEvent::Discovered { total } => progress.discovered(total),
            SourceEvent::Document { item, doc, bytes } => {
                report.detail.read(bytes);
                let chunking = Instant::now();
                let (doc, chunks) = {
                    let (cfg, counter, sparse) = (self.engine.cfg.clone(), self.engine.counter.clone(), self.engine.sparse().clone());
                    tokio::task::spawn_blocking(move || {
                        let chunks = prepare_chunks(&doc, &cfg, counter.as_ref(), sparse.as_ref());
                        (doc, chunks)
                    })
                    .await
                    .map_err(|e| Error::Internal(format!("chunking task failed: {e}")))?
                };
                report.stages.chunk_ms += ms(chunking);
                if chunks.is_empty() {
                    // Like a document the source no longer has: a complete source's sweep
                    // removes its old chunks.
                    run.note(report, NoteKind::Skipped, &item, "no text content");
                    progress.file_done(&item, FileOutcome::Skipped);
                    return Ok(());
                }
                run.seen.insert(doc.source_id.clone());
                let Some(n) = run.batch.stage(&doc.doc_hash, chunks, existing.get(&doc.source_id)) else {
                    report.documents_unchanged += 1;
                    progress.file_done(&item, FileOutcome::Unchanged);
                    return Ok(());
                };
                report.documents_written += 1;
                report.chunks_written += n;
                progress.file_done(&item, FileOutcome::Written);
                if run.batch.chunks.len() >= self.engine.config().ingest.batch_size {
                    // One batch in flight: wait for the one before, then let this one
                    // embed and write while the next documents are chunked; without the
                    // overlap, finish it first.
                    run.drain(report).await?;
                    run.writing = Some(Box::pin(self.write(collection, std::mem::take(&mut run.batch))));
                    if !run.overlap {
                        run.drain(report).await?;
                    }
                }
            }
            SourceEvent::Unchanged { item, source_id } => {
                run.seen.insert(source_id);
                report.documents_unchanged += 1;
                progress.file_done(&item, FileOutcome::Unchanged);
            }
            SourceEvent::Kept { item, source_id, kind, reason } => {
                run.seen.insert(source_id);
                run.note(report, kind, &item, &reason);
                progress.file_done(&item, FileOutcome::Skipped);
            }
            SourceEvent::Removed { item, source_id } => {
                // Store operations keep the order of the events.
                run.drain(report).await?;
                if let Some((_, ids)) = existing.remove(&source_id) {
                    report.points_deleted += ids.len();
                    self.engine.store().delete(collection, ids).await?;
                }
                report.documents_deleted += 1;
                progress.file_done(&item, FileOutcome::Skipped);
            }
            SourceEvent::Skipped { item, kind, reason } => {
                run.note(report, kind, &item, &reason);
                progress.file_done(&item, FileOutcome::Skipped);
            }
        }
        Ok(())
    }

    /// Embed and write a batch's chunks, then delete the stale ids they replace.
    async fn write(&self, collection: &str, batch: Batch) -> Result<Written> {
        let Batch { chunks, deletes } = batch;
        let store = self.engine.store();
        let mut written = Written::default();
        if !chunks.is_empty() {
            let embedding = Instant::now();
            let texts: Vec<String> = chunks.iter().map(|c| c.text.clone()).collect();
            let dense = self.engine.embed(&texts).await?;
            written.embed_ms = ms(embedding);
            let writing = Instant::now();
            let points = chunks.into_iter().zip(dense).map(|(c, dense)| Point { id: c.id, sparse: c.sparse, dense, payload: c.payload }).collect();
            store.upsert(collection, points).await?;
            written.write_ms = ms(writing);
        }
        let deleting = Instant::now();
        written.points_deleted = deletes.len();
        store.delete(collection, deletes).await?;
        written.write_ms += ms(deleting);
        Ok(written)
    }

    /// The end of every run: when anything changed, drop cached searches of the collection
    /// and, with `ingest.optimize`, optimize its storage.
    async fn writes_done(&self, collection: &str, changed: bool) -> Result<f64> {
        if changed {
            self.engine.invalidate_search(collection).await;
            if self.engine.config().ingest.optimize {
                let optimizing = Instant::now();
                self.engine.store().optimize(collection).await?;
                return Ok(ms(optimizing));
            }
        }
        Ok(0.0)
    }
}

/// The state of one pipeline run beside its report.
struct Run<'a> {
    /// Chunks staged for the next write.
    batch: Batch,
    /// The batch being embedded and written, at most one: the pipeline keeps chunking
    /// beside it, and holds at most two batches of chunks (back-pressure).
    writing: Option<Writing<'a>>,
    /// Whether the next documents are chunked while `writing` runs (`ingest.overlap`);
    /// otherwise each batch is written before the next document is chunked.
    overlap: bool,
    /// Source ids the source named this run.
    seen: HashSet<String>,
    /// Items not ingested (any kind but failed) and failed fetches, for the metrics.
    skipped: u64,
    failed: u64,
}

/// A batch's embedding and store writes, polled beside the pipeline's loop (not spawned:
/// dropping the run drops it, so no write outlives the ingest lock).
type Writing<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Written>> + Send + 'a>>;

/// What writing one batch did.
#[derive(Debug, Default)]
struct Written {
    points_deleted: usize,
    embed_ms: f64,
    write_ms: f64,
}

impl Written {
    fn add_to(self, report: &mut IngestReport) {
        report.points_deleted += self.points_deleted;
        report.stages.embed_ms += self.embed_ms;
        report.stages.write_ms += self.write_ms;
    }
}

/// The batch in flight to completion, or never when there is none (a `select!` branch).
async fn in_flight(writing: &mut Option<Writing<'_>>) -> Result<Written> {
    match writing {
        Some(w) => w.await,
        None => std::future::pending().await,
    }
}

impl Run<'_> {
    /// Wait for the batch in flight, if any, and count it.
    async fn drain(&mut self, report: &mut IngestReport) -> Result<()> {
        if let Some(w) = self.writing.take() {
            w.await?.add_to(report);
        }
        Ok(())
    }

    fn note(&mut self, report: &mut IngestReport, kind: NoteKind, item: &str, reason: &str) {
        match kind {
            NoteKind::Failed => self.failed += 1,
            NoteKind::Skipped | NoteKind::Blocked => self.skipped += 1,
            NoteKind::Missing => {}
        }
        report.detail.note(kind, item, reason);
    }
}

/// A chunk ready to write but for its dense vector: its id, the text the embedder sees, its
/// sparse vector (encoded on the chunking thread) and its payload.
struct Staged {
    id: uuid::Uuid,
    text: String,
    sparse: SparseVector,
    payload: ChunkPayload,
}

/// Pending writes of an ingest run: staged chunks and ids to delete after.
#[derive(Default)]
struct Batch {
    chunks: Vec<Staged>,
    deletes: Vec<uuid::Uuid>,
}

impl Batch {
    /// Queue a document's chunks, unless `old` (its hashes and point ids in the store) says
    /// it is unchanged and complete: then `None`. Complete means the store holds exactly the
    /// ids its chunks have (ids are deterministic), so a document whose write was cut short
    /// between two batches (a crash, a killed server) is written again, never taken for
    /// unchanged. The old ids the new chunks do not reuse are deleted after the write
    /// (upsert first, so a crash in between never leaves a hole). Returns the number of
    /// chunks queued.
    fn stage(&mut self, doc_hash: &str, chunks: Vec<Staged>, old: Option<&(HashSet<String>, Vec<uuid::Uuid>)>) -> Option<usize> {
        let new_ids: HashSet<uuid::Uuid> = chunks.iter().map(|c| c.id).collect();
        let complete = |ids: &Vec<uuid::Uuid>| ids.len() == new_ids.len() && ids.iter().all(|id| new_ids.contains(id));
        if old.is_some_and(|(hashes, ids)| hashes.len() == 1 && hashes.contains(doc_hash) && complete(ids)) {
            return None;
        }
        if let Some((_, ids)) = old {
            self.deletes.extend(ids.iter().filter(|id| !new_ids.contains(id)));
        }
        let n = chunks.len();
        self.chunks.extend(chunks);
        Some(n)
    }
}

/// Chunk a document and build each chunk's id, encoder text, sparse vector and payload.
fn prepare_chunks(doc: &Document, cfg: &Config, counter: &dyn TokenCounter, sparse: &dyn SparseEncoder) -> Vec<Staged> {
    let chunker = Chunker::new(
        ChunkerConfig { max_tokens: cfg.chunking.max_tokens, overlap_tokens: cfg.chunking.overlap_tokens, lead_tokens: cfg.chunking.lead_tokens },
        counter,
    );
    chunker
        .chunk(&doc.title, &doc.sections)
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let content_hash = sha256_hex(&c.text);
            let id = point_id(&doc.source_id, i as u32, &content_hash);
            let text = c.embedding_text(&doc.title);
            let sparse = sparse.encode_doc(&text);
            let url = if c.anchor.is_empty() { doc.url.clone() } else { format!("{}#{}", doc.url, c.anchor) };
            let payload = ChunkPayload {
                source: doc.source_id.clone(),
                path: doc.path.clone(),
                url,
                title: doc.title.clone(),
                anchor: c.anchor,
                heading_path: c.heading_path,
                text: c.text,
                chunk_index: i as u32,
                lead: c.lead,
                content_hash,
                doc_hash: doc.doc_hash.clone(),
                meta: doc.meta.clone(),
            };
            Staged { id, text, sparse, payload }
        })
        .collect()
}
