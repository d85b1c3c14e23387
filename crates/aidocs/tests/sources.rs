//! The ingest pipeline's `Source` contract, through a source of this test's own (what an
//! embedder of the crate, or a new kind of source, writes): the pipeline writes what changed,
//! sweeps only for complete sources, keeps what `Kept` names, deletes what `Removed` names,
//! and keeps what was written when the source fails.

mod common;

use aidocs::core::{Filter, Release};
use aidocs::ingest::{DocFormat, Document, Owns, Source, SourceEvent, parse};
use aidocs::progress::{FileOutcome, IngestProgress};
use aidocs::report::{DirectoryDetail, NoteKind, SourceDetail};
use aidocs::{Error, IngestReport};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::Sender;

/// Markdown pages in memory, under `mem://`.
struct Pages {
    pages: Vec<(&'static str, String)>,
    complete: bool,
    /// Extra events after the pages.
    then: Vec<SourceEvent>,
    /// Fail after sending this many pages.
    fail_after: Option<usize>,
}

fn doc(id: &str, text: &str) -> Document {
    let parsed = parse(DocFormat::Markdown, text);
    Document {
        source_id: format!("mem://{id}"),
        path: id.to_owned(),
        url: format!("mem://{id}"),
        title: parsed.title.clone().unwrap_or_else(|| id.to_owned()),
        sections: parsed.sections,
        meta: Default::default(),
        doc_hash: aidocs_ingest_hash(text),
    }
}

fn aidocs_ingest_hash(text: &str) -> String {
    // Any stable function of the content will do for the pipeline's comparison.
    format!("{:x}", text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3)))
}

#[async_trait::async_trait]
impl Source for Pages {
    fn owns(&self) -> Owns {
        Arc::new(|s: &str| s.starts_with("mem://"))
    }
    fn complete(&self) -> bool {
        self.complete
    }
    fn detail(&self) -> SourceDetail {
        SourceDetail::Directory(DirectoryDetail::default())
    }
    async fn produce(&mut self, events: Sender<SourceEvent>) -> aidocs::Result<()> {
        events.send(SourceEvent::Listed { total: self.pages.len() }).await.ok();
        for (i, (id, text)) in self.pages.iter().enumerate() {
            if self.fail_after == Some(i) {
                return Err(Error::Unavailable("the page source went away".into()));
            }
            events.send(SourceEvent::Document { item: id.to_string(), doc: doc(id, text), bytes: text.len() as u64 }).await.ok();
        }
        for e in self.then.drain(..) {
            events.send(e).await.ok();
        }
        Ok(())
    }
}

fn page(title: &str, body: &str) -> String {
    format!("# {title}\n\n{body}\n")
}

fn pages(ids: &[&'static str], version: &str) -> Vec<(&'static str, String)> {
    ids.iter().map(|id| (*id, page(id, &format!("All about {id}, revision {version}. It explains the {id} setting in detail.")))).collect()
}

async fn sources_in(engine: &aidocs::Engine, collection: &str) -> BTreeSet<String> {
    engine.store().scroll(collection, &Filter::default()).await.unwrap().into_iter().map(|p| p.payload.source).collect()
}

/// Counts what the observer was told.
#[derive(Default)]
struct Seen {
    calls: Mutex<Vec<String>>,
}

impl IngestProgress for Seen {
    fn start(&self, total: usize) {
        self.calls.lock().unwrap().push(format!("start {total}"));
    }
    fn file_done(&self, path: &str, outcome: FileOutcome) {
        self.calls.lock().unwrap().push(format!("{path} {outcome:?}"));
    }
    fn finish(&self, r: &IngestReport) {
        self.calls.lock().unwrap().push(format!("finish {}", r.documents_written));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_source_is_swept_an_incomplete_one_is_not() {
    let data = tempfile::tempdir().unwrap();
    let engine = common::engine(data.path());
    let ingest = engine.ingest();
    let seen = Seen::default();
    let mut first = Pages { pages: pages(&["a", "b", "c"], "1"), complete: true, then: vec![], fail_after: None };
    let r = ingest.run("mem", &mut first, &seen).await.unwrap();
    assert_eq!((r.documents_written, r.documents_deleted), (3, 0), "{r:?}");
    assert_eq!(r.directory().unwrap().files_seen, 3);
    assert_eq!(*seen.calls.lock().unwrap(), ["start 3", "a Written", "b Written", "c Written", "finish 3"]);

    // Incomplete: `c` is not named, and stays; `a` changed and is rewritten.
    let mut partial = Pages { pages: vec![pages(&["a"], "2").remove(0), pages(&["b"], "1").remove(0)], complete: false, then: vec![], fail_after: None };
    let r = ingest.run("mem", &mut partial, &Seen::default()).await.unwrap();
    assert_eq!((r.documents_written, r.documents_unchanged, r.documents_deleted), (1, 1, 0), "{r:?}");
    assert_eq!(sources_in(&engine, "mem").await, ["mem://a", "mem://b", "mem://c"].map(String::from).into());

    // Complete: `c` is not named, so it is gone; `b` could not be read and keeps its chunks.
    let kept = SourceEvent::Kept { item: "b".into(), source_id: "mem://b".into(), kind: NoteKind::Skipped, reason: "unreadable".into() };
    let mut complete = Pages { pages: pages(&["a"], "2"), complete: true, then: vec![kept], fail_after: None };
    let r = ingest.run("mem", &mut complete, &Seen::default()).await.unwrap();
    assert_eq!((r.documents_unchanged, r.documents_deleted), (1, 1), "{r:?}");
    assert_eq!(r.directory().unwrap().skipped[0].path, "b");
    assert_eq!(sources_in(&engine, "mem").await, ["mem://a", "mem://b"].map(String::from).into());

    // `Removed` deletes even from an incomplete source.
    let removed = SourceEvent::Removed { item: "b".into(), source_id: "mem://b".into() };
    let mut remove = Pages { pages: vec![], complete: false, then: vec![removed], fail_after: None };
    let r = ingest.run("mem", &mut remove, &Seen::default()).await.unwrap();
    assert_eq!(r.documents_deleted, 1, "{r:?}");
    assert_eq!(sources_in(&engine, "mem").await, ["mem://a"].map(String::from).into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_keeps_what_was_written_and_sweeps_nothing() {
    let data = tempfile::tempdir().unwrap();
    let engine = common::engine(data.path());
    let ingest = engine.ingest();
    let mut first = Pages { pages: pages(&["a", "b"], "1"), complete: true, then: vec![], fail_after: None };
    ingest.run("fail", &mut first, &Seen::default()).await.unwrap();

    // `c` is written, then the source fails before naming `a` or `b`: a sweep now would
    // delete both.
    let mut failing = Pages { pages: pages(&["c", "a", "b"], "1"), complete: true, then: vec![], fail_after: Some(1) };
    let err = ingest.run("fail", &mut failing, &Seen::default()).await.unwrap_err();
    assert!(err.to_string().contains("the page source went away"), "{err}");
    assert_eq!(sources_in(&engine, "fail").await, ["mem://a", "mem://b", "mem://c"].map(String::from).into());
}

/// Counts the documents written so far, as a progress bar would.
#[derive(Default)]
struct Written(std::sync::atomic::AtomicUsize);

impl IngestProgress for Written {
    fn start(&self, _: usize) {}
    fn file_done(&self, _: &str, outcome: FileOutcome) {
        if outcome == FileOutcome::Written {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    fn finish(&self, _: &IngestReport) {}
}

/// The pipeline chunks the next documents while a batch is embedded and written, and holds
/// at most two batches: with the embedder held, it takes in two batches' worth of documents
/// (the one in flight and the next) and waits; released, it writes every chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_chunks_one_batch_ahead_of_the_embedder_and_no_more() {
    let report = held_pipeline(aidocs::config::IngestOverlap::On, 4).await;
    let s = report.stages;
    assert!(s.embed_ms > 0.0 && s.chunk_ms > 0.0 && s.write_ms > 0.0, "{s:?}");
    // The embedder was held for most of the run.
    assert!(s.embed_ms >= 300.0 && s.embed_ms <= report.took_ms + 1.0, "{s:?} within {} ms", report.took_ms);
}

/// `ingest.overlap = "off"` (what `auto` picks where the embedder's threads take every
/// core): nothing more is chunked while a batch is embedded and written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_overlap_the_pipeline_takes_in_nothing_while_a_batch_embeds() {
    let report = held_pipeline(aidocs::config::IngestOverlap::Off, 2).await;
    assert!(report.stages.embed_ms >= 300.0, "{:?}", report.stages);
}

/// Ingests ten one-chunk pages in batches of two through an embedder held on a semaphore;
/// checks that exactly `taken` documents are taken in while the first batch is held, then
/// releases it and checks that all ten are written.
async fn held_pipeline(overlap: aidocs::config::IngestOverlap, taken: usize) -> aidocs::IngestReport {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = common::config(data.path());
    cfg.ingest.batch_size = 2;
    cfg.ingest.overlap = overlap;
    let engine = aidocs::Engine::open(cfg).unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = common::Held::gated(engine.base_embedder().clone(), gate.clone());
    let engine = engine.clone().with_embedder(held.clone());
    let ids = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let progress = Arc::new(Written::default());
    let run = tokio::spawn({
        let (engine, progress) = (engine.clone(), progress.clone());
        async move {
            let mut source = Pages { pages: pages(&ids, "1"), complete: true, then: vec![], fail_after: None };
            engine.ingest().run("ahead", &mut source, progress.as_ref()).await
        }
    });
    let written = || progress.0.load(std::sync::atomic::Ordering::SeqCst);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while written() < taken {
        assert!(std::time::Instant::now() < deadline, "with the first batch held in the embedder, the pipeline took in {} documents, not {taken}", written());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Back-pressure: nothing more is taken in while the first batch is held.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(written(), taken, "documents taken in while the first batch is held ({overlap:?})");
    assert!(!run.is_finished());

    gate.add_permits(1000);
    let report = run.await.unwrap().unwrap();
    assert_eq!((report.documents_written, report.chunks_written), (10, 10), "{report:?}");
    assert_eq!(sources_in(&engine, "ahead").await, ids.iter().map(|id| format!("mem://{id}")).collect());
    // The embedder was asked once to give back its runtime's scratch memory (not the model:
    // by default the process goes on searching), after the last batch.
    assert_eq!(held.releases(), [Release::Scratch]);
    // Nothing to embed, nothing to give back.
    let mut source = Pages { pages: pages(&ids, "1"), complete: true, then: vec![], fail_after: None };
    let again = engine.ingest().run("ahead", &mut source, &Written::default()).await.unwrap();
    assert_eq!((again.documents_unchanged, again.chunks_written, held.releases().len()), (10, 0, 1), "{again:?}");
    // A caller that will not embed again (the CLI) has the model given back too.
    let mut source = Pages { pages: pages(&ids[..2], "2"), complete: false, then: vec![], fail_after: None };
    let changed = engine.ingest().releasing(Release::Model).run("ahead", &mut source, &Written::default()).await.unwrap();
    assert_eq!((changed.chunks_written, held.releases()), (2, vec![Release::Scratch, Release::Model]), "{changed:?}");
    report
}

/// A client that hangs up while a batch is in flight (the run's future dropped, as axum
/// drops a handler's): nothing is written after the drop, even when the held embedding
/// then finishes; the ingest lock is free again; a second run writes every document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_dropped_with_a_batch_in_flight_writes_nothing_after_and_the_next_run_completes() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = common::config(data.path());
    cfg.ingest.batch_size = 2;
    cfg.ingest.overlap = aidocs::config::IngestOverlap::On;
    let engine = aidocs::Engine::open(cfg).unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(1));
    let held = engine.clone().with_embedder(common::Held::gated(engine.base_embedder().clone(), gate.clone()));
    let ids = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let progress = Arc::new(Written::default());
    let run = tokio::spawn({
        let (held, progress) = (held.clone(), progress.clone());
        async move {
            let mut source = Pages { pages: pages(&ids, "1"), complete: true, then: vec![], fail_after: None };
            held.ingest().run("dropped", &mut source, progress.as_ref()).await
        }
    });
    // The first batch embeds (one permit) and is written; the second is held in flight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while progress.0.load(std::sync::atomic::Ordering::SeqCst) < 6 {
        assert!(std::time::Instant::now() < deadline, "took in {} documents", progress.0.load(std::sync::atomic::Ordering::SeqCst));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    let after_drop = sources_in(&engine, "dropped").await;
    assert_eq!(after_drop.len(), 2, "the first batch is written, the held one is not: {after_drop:?}");
    // The held embedding may now finish: its result goes nowhere.
    gate.add_permits(1000);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sources_in(&engine, "dropped").await, after_drop, "a write outlived the dropped run");

    let mut source = Pages { pages: pages(&ids, "1"), complete: true, then: vec![], fail_after: None };
    let report = tokio::time::timeout(std::time::Duration::from_secs(60), engine.ingest().run("dropped", &mut source, &Written::default()))
        .await
        .expect("the ingest lock was released with the dropped run")
        .unwrap();
    assert_eq!((report.documents_unchanged, report.documents_written), (2, 8), "{report:?}");
    assert_eq!(sources_in(&engine, "dropped").await, ids.iter().map(|id| format!("mem://{id}")).collect());
}
