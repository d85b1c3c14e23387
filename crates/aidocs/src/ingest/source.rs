//! The [`Source`] trait: what the ingest pipeline reads documents from. A source walks its
//! items (files of a directory, pages of a crawl, ...) and tells the pipeline, in order, what
//! it found for each, as [`SourceEvent`]s; the pipeline does the rest (chunk, compare with
//! the store, embed, write, delete stale ids, optimize, count, report), the same way for
//! every source. In the manner of ripgrep's `Searcher` and `Sink`: the source knows where
//! documents come from, never what becomes of them.

use crate::error::Result;
use crate::report::{NoteKind, SourceDetail};
use aidocs_ingest::Document;
use std::sync::Arc;

/// Which of the store's source ids belong to a source.
pub type Owns = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What a source found for one item, in the order it found them.
#[derive(Debug)]
pub enum SourceEvent {
    /// The source is listing its items (a directory walk has begun).
    Scanning,
    /// Every item is known: there are `total` (a directory, once walked).
    Listed { total: usize },
    /// `total` items are known so far, and more may come (a crawl).
    Discovered { total: usize },
    /// A document to ingest; `bytes` of source were read for it.
    Document { item: String, doc: Document, bytes: u64 },
    /// The source knows `source_id` did not change (an HTTP 304): its chunks stay.
    Unchanged { item: String, source_id: String },
    /// `source_id` could not be read this time (or is missing for now): its chunks stay.
    Kept { item: String, source_id: String, kind: NoteKind, reason: String },
    /// `source_id` is gone: its chunks are deleted.
    Removed { item: String, source_id: String },
    /// Nothing of `item` is ingested this run.
    Skipped { item: String, kind: NoteKind, reason: String },
}

/// A producer of documents for the ingest pipeline.
///
/// Contract:
/// - [`Source::produce`] sends every event of one run, in order, then returns; an error ends
///   the run (what was written stays, nothing is deleted by a sweep).
/// - The store ids of every document it sends satisfy [`Source::owns`], and so do the ids
///   it names in `Unchanged`, `Kept` and `Removed`.
/// - When [`Source::complete`] is true, a run sees every document the source still has, so
///   the pipeline deletes what it owns in the store and the run did not name; when false
///   (a crawl that may stop at its page limit), only `Removed` deletes.
#[async_trait::async_trait]
pub trait Source: Send {
    /// The store source ids this source owns (to compare with, and to sweep).
    fn owns(&self) -> Owns;
    /// Whether a run names every document the source has.
    fn complete(&self) -> bool;
    /// The empty source-specific part of the report.
    fn detail(&self) -> SourceDetail;
    /// Walk the source, sending its events.
    async fn produce(&mut self, events: tokio::sync::mpsc::Sender<SourceEvent>) -> Result<()>;
    /// After the run (also after a failed one): fill in what only the source knows.
    fn finish(&mut self, _detail: &mut SourceDetail) {}
}
