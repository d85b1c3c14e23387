//! What an ingest run reports, for every source: the directory pipeline's
//! [`IngestReport`] and a crawl's [`WebIngestReport`]. Apart from the pipelines, so the
//! progress observers that receive them know nothing of either.

use aidocs_crawl::CrawlStats;
use serde::{Deserialize, Serialize};

/// What an ingest run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    pub collection: String,
    pub files_seen: usize,
    /// New or changed documents (re)written.
    pub documents_written: usize,
    pub documents_unchanged: usize,
    pub documents_deleted: usize,
    pub chunks_written: usize,
    pub points_deleted: usize,
    /// Bytes of the source files that were read and parsed.
    #[serde(default)]
    pub bytes_read: u64,
    pub skipped: Vec<SkippedFile>,
    pub took_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

/// The end summary of a web ingest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebIngestReport {
    pub collection: String,
    pub crawl: CrawlStats,
    pub documents_written: usize,
    pub documents_unchanged: usize,
    pub documents_deleted: usize,
    pub chunks_written: usize,
    pub points_deleted: usize,
    /// Pages that answered 404/410 but keep their chunks until `crawl.remove_after_misses`.
    pub documents_missing: usize,
    /// At most 200 entries each; the counts are in `crawl`.
    pub skipped: Vec<UrlNote>,
    pub blocked: Vec<UrlNote>,
    pub failed: Vec<UrlNote>,
    pub took_ms: f64,
}

/// A URL that was not ingested, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlNote {
    pub url: String,
    pub reason: String,
}
