//! Ingest progress: a bar on a terminal, periodic log lines otherwise.

use crate::report::{IngestReport, SourceDetail};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcome {
    Written,
    Unchanged,
    Skipped,
}

/// Observer of an ingest run. Calls come from the ingest task, in order.
pub trait IngestProgress: Send + Sync {
    /// The source tree is being walked (before `start`, which gives the files found).
    fn scanning(&self) {}
    fn start(&self, total_files: usize);
    /// A crawl found more URLs: `total` known so far (the total grows as it goes).
    fn discovered(&self, _total: usize) {}
    fn file_done(&self, path: &str, outcome: FileOutcome);
    /// The end of the run, with its report.
    fn finish(&self, report: &IngestReport);
}

/// Reports nothing.
pub struct NoProgress;

impl IngestProgress for NoProgress {
    fn start(&self, _: usize) {}
    fn file_done(&self, _: &str, _: FileOutcome) {}
    fn finish(&self, _: &IngestReport) {}
}

/// Logs a line every `every` (and at the end) through `tracing`.
pub struct LogProgress {
    every: Duration,
    state: Mutex<(usize, usize, Instant)>,
}

impl LogProgress {
    pub fn new(every: Duration) -> Self {
        Self { every, state: Mutex::new((0, 0, Instant::now())) }
    }
}

impl IngestProgress for LogProgress {
    fn start(&self, total: usize) {
        *self.state.lock().unwrap() = (total, 0, Instant::now());
        tracing::info!(files = total, "ingest started");
    }
    fn file_done(&self, _: &str, _: FileOutcome) {
        let mut s = self.state.lock().unwrap();
        s.1 += 1;
        if s.2.elapsed() >= self.every {
            s.2 = Instant::now();
            tracing::info!(done = s.1, total = s.0, "ingest progress");
        }
    }
    fn finish(&self, r: &IngestReport) {
        match &r.detail {
            SourceDetail::Web(w) => tracing::info!(
                collection = %r.collection, fetched = w.crawl.pages_fetched, not_modified = w.crawl.not_modified, written = r.documents_written,
                unchanged = r.documents_unchanged, deleted = r.documents_deleted, chunks = r.chunks_written, skipped = w.crawl.skipped,
                blocked = w.crawl.blocked, failed = w.crawl.failed, took_ms = r.took_ms,
                "web ingest finished"
            ),
            SourceDetail::Directory(d) => tracing::info!(
                collection = %r.collection, written = r.documents_written, unchanged = r.documents_unchanged,
                deleted = r.documents_deleted, chunks = r.chunks_written, skipped = d.skipped.len(), took_ms = r.took_ms,
                "ingest finished"
            ),
        }
    }
}

/// An indicatif bar on stderr.
pub struct BarProgress {
    bar: ProgressBar,
}

impl Default for BarProgress {
    fn default() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
                .expect("valid template"),
        );
        Self { bar }
    }
}

impl IngestProgress for BarProgress {
    fn start(&self, total: usize) {
        self.bar.set_length(total as u64);
    }
    fn file_done(&self, path: &str, _: FileOutcome) {
        self.bar.set_message(path.to_owned());
        self.bar.inc(1);
    }
    fn discovered(&self, total: usize) {
        self.bar.set_length(total as u64);
    }
    fn finish(&self, _: &IngestReport) {
        self.bar.finish_and_clear();
    }
}

/// A bar when stderr is a terminal, log lines every 5 s otherwise.
pub fn for_terminal() -> Box<dyn IngestProgress> {
    if std::io::stderr().is_terminal() {
        Box::new(BarProgress::default())
    } else {
        Box::new(LogProgress::new(Duration::from_secs(5)))
    }
}
