//! What an ingest run reports, whatever its source: one [`IngestReport`] with the counts
//! every pipeline run has, and a [`SourceDetail`] with what only one kind of source knows
//! (a directory's files and bytes, a crawl's HTTP figures). Apart from the pipeline, so the
//! progress observers that receive it know nothing of it.

use aidocs_crawl::CrawlStats;
use serde::{Deserialize, Serialize};

/// At most this many notes are kept per list of a crawl (the counts are in `crawl`).
const WEB_NOTES: usize = 200;

/// What an ingest run did. Serializes flat: the detail's fields sit beside the counts, as
/// the directory and web reports always have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    pub collection: String,
    /// New or changed documents (re)written.
    pub documents_written: usize,
    pub documents_unchanged: usize,
    pub documents_deleted: usize,
    pub chunks_written: usize,
    pub points_deleted: usize,
    #[serde(flatten)]
    pub detail: SourceDetail,
    pub took_ms: f64,
    /// Where the time went, per stage.
    #[serde(default)]
    pub stages: IngestStages,
}

/// Wall-clock milliseconds an ingest run spent in each stage. The pipeline overlaps them
/// (the next documents are chunked while a batch is embedded and written), so they may add
/// up to more than the run's `took_ms`; `embed_ms` near `took_ms` means the embedder was
/// busy the whole run. Reading and parsing are the source's and run beside all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestStages {
    /// Chunking, token counting and BM25 encoding of each document.
    pub chunk_ms: f64,
    /// Dense embedding of the chunks written.
    pub embed_ms: f64,
    /// Store writes: upserting points and deleting the stale ids they replace.
    pub write_ms: f64,
    /// Optimizing the collection's storage at the end (`ingest.optimize`).
    pub optimize_ms: f64,
}

impl IngestReport {
    /// An empty report of a run into `collection` with `detail`.
    pub fn new(collection: impl Into<String>, detail: SourceDetail) -> Self {
        Self {
            collection: collection.into(),
            documents_written: 0,
            documents_unchanged: 0,
            documents_deleted: 0,
            chunks_written: 0,
            points_deleted: 0,
            detail,
            took_ms: 0.0,
            stages: IngestStages::default(),
        }
    }

    /// The directory figures, when the source was a directory (or one file).
    pub fn directory(&self) -> Option<&DirectoryDetail> {
        match &self.detail {
            SourceDetail::Directory(d) => Some(d),
            SourceDetail::Web(_) => None,
        }
    }

    /// The crawl figures, when the source was a web source.
    pub fn web(&self) -> Option<&WebDetail> {
        match &self.detail {
            SourceDetail::Web(w) => Some(w),
            SourceDetail::Directory(_) => None,
        }
    }

    /// Whether anything was written or deleted.
    pub fn changed(&self) -> bool {
        self.chunks_written > 0 || self.points_deleted > 0
    }
}

/// What only one kind of source reports (closed set; untagged on the wire: the fields tell
/// them apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SourceDetail {
    Directory(DirectoryDetail),
    Web(WebDetail),
}

/// A directory (or file) ingest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectoryDetail {
    pub files_seen: usize,
    /// Bytes of the source files that were read and parsed.
    #[serde(default)]
    pub bytes_read: u64,
    /// Every file that was not ingested, and why.
    pub skipped: Vec<SkippedFile>,
}

/// A crawl of a site, a sitemap or a URL list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebDetail {
    pub crawl: CrawlStats,
    /// Pages that answered 404/410 but keep their chunks until `crawl.remove_after_misses`.
    pub documents_missing: usize,
    /// At most 200 entries each; the counts are in `crawl`.
    pub skipped: Vec<UrlNote>,
    pub blocked: Vec<UrlNote>,
    pub failed: Vec<UrlNote>,
}

/// Why an item of a source was not ingested this run (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// Nothing to ingest in it (no text, an unsupported or unreadable file, out of scope).
    Skipped,
    /// Refused by the SSRF guard.
    Blocked,
    /// The fetch failed.
    Failed,
    /// Gone at the source, but its chunks stay until it has been missed often enough.
    Missing,
}

impl SourceDetail {
    /// Record that `item` was not ingested, and why.
    pub fn note(&mut self, kind: NoteKind, item: &str, reason: &str) {
        match self {
            SourceDetail::Directory(d) => d.skipped.push(SkippedFile { path: item.to_owned(), reason: reason.to_owned() }),
            SourceDetail::Web(w) => {
                let list = match kind {
                    NoteKind::Skipped => &mut w.skipped,
                    NoteKind::Missing => {
                        w.documents_missing += 1;
                        &mut w.skipped
                    }
                    NoteKind::Blocked => &mut w.blocked,
                    NoteKind::Failed => &mut w.failed,
                };
                if list.len() < WEB_NOTES {
                    list.push(UrlNote { url: item.to_owned(), reason: reason.to_owned() });
                }
            }
        }
    }

    /// The source listed all its items: `n` of them.
    pub fn listed(&mut self, n: usize) {
        if let SourceDetail::Directory(d) = self {
            d.files_seen = n;
        }
    }

    /// `n` more bytes of source were read.
    pub fn read(&mut self, n: u64) {
        if let SourceDetail::Directory(d) = self {
            d.bytes_read += n;
        }
    }

    /// Bytes of source read in all.
    pub fn bytes(&self) -> u64 {
        match self {
            SourceDetail::Directory(d) => d.bytes_read,
            SourceDetail::Web(w) => w.crawl.bytes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

/// A URL that was not ingested, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlNote {
    pub url: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_details_serialize_flat_and_read_back() {
        let mut dir = IngestReport::new("docs", SourceDetail::Directory(DirectoryDetail::default()));
        dir.detail.listed(3);
        dir.detail.note(NoteKind::Skipped, "a.txt", "not UTF-8");
        let v = serde_json::to_value(&dir).unwrap();
        assert_eq!((v["files_seen"].as_u64(), v["skipped"][0]["path"].as_str()), (Some(3), Some("a.txt")), "{v}");
        assert!(v.get("detail").is_none() && v.get("crawl").is_none(), "{v}");
        assert_eq!(serde_json::from_value::<IngestReport>(v).unwrap(), dir);

        let mut web = IngestReport::new("docs", SourceDetail::Web(WebDetail::default()));
        web.detail.note(NoteKind::Missing, "https://x.test/a", "HTTP 404");
        web.detail.note(NoteKind::Blocked, "http://10.0.0.1/", "internal address");
        let v = serde_json::to_value(&web).unwrap();
        assert_eq!(v["documents_missing"], 1, "{v}");
        assert_eq!(v["blocked"][0]["url"], "http://10.0.0.1/", "{v}");
        assert!(v.get("files_seen").is_none(), "{v}");
        assert_eq!(serde_json::from_value::<IngestReport>(v).unwrap(), web);
    }

    #[test]
    fn crawl_notes_are_capped_directory_notes_are_not() {
        let mut web = SourceDetail::Web(WebDetail::default());
        let mut dir = SourceDetail::Directory(DirectoryDetail::default());
        for i in 0..250 {
            web.note(NoteKind::Failed, &format!("https://x.test/{i}"), "timeout");
            dir.note(NoteKind::Skipped, &format!("{i}.txt"), "not UTF-8");
        }
        let (SourceDetail::Web(w), SourceDetail::Directory(d)) = (web, dir) else { unreachable!() };
        assert_eq!((w.failed.len(), d.skipped.len()), (WEB_NOTES, 250));
    }
}
