//! End-to-end pipelines with the real model, the embedded Qdrant engine and real docs.

mod common;

use aidocs::core::{Filter, FilterField, FilterValue, SearchMode};
use aidocs::progress::NoProgress;
use aidocs::{IngestRequest, SearchRequest};
use common::*;
use std::collections::BTreeSet;

fn ingest_req(path: &std::path::Path, collection: &str) -> IngestRequest {
    IngestRequest { path: path.to_path_buf(), collection: collection.into(), metadata: Default::default(), base_url: None }
}

fn search(query: &str, collection: &str, limit: usize) -> SearchRequest {
    SearchRequest { collection: Some(collection.into()), limit: Some(limit), ..SearchRequest::new(query) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_python_docs_answer_known_sections() {
    let docs = tempfile::tempdir().unwrap();
    copy_pages(&python_docs(), &["tutorial/venv.html", "tutorial/errors.html", "tutorial/controlflow.html", "tutorial/modules.html"], docs.path());
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    let report = engine.ingest().directory(ingest_req(docs.path(), "py"), &NoProgress).await.unwrap();
    assert_eq!((report.directory().unwrap().files_seen, report.documents_written), (4, 4));
    assert!(report.chunks_written > 40, "{report:?}");

    // Every chunk has a path, an anchor (Sphinx sections all have ids) and a heading path.
    let points = engine.store().scroll("py", &Filter::default()).await.unwrap();
    assert_eq!(points.len(), report.chunks_written);
    for p in &points {
        assert!(!p.payload.path.is_empty() && !p.payload.heading_path.is_empty(), "{:?}", p.payload);
        assert!(!p.payload.anchor.is_empty(), "chunk without anchor: {:?}", p.payload.heading_path);
        assert!(p.payload.url.ends_with(&format!("#{}", p.payload.anchor)));
        assert!(!p.payload.text.contains('¶') && !p.payload.text.contains("Navigation"), "chrome leaked: {}", p.payload.text);
    }

    let cases = [
        ("How do I create a virtual environment?", "tutorial/venv.html#creating-virtual-environments"),
        ("catch an exception with try except", "tutorial/errors.html#handling-exceptions"),
        ("default values for function arguments", "tutorial/controlflow.html#default-argument-values"),
    ];
    for mode in [SearchMode::Hybrid, SearchMode::Dense, SearchMode::Sparse] {
        for (q, want) in cases {
            let mut req = search(q, "py", 5);
            req.mode = Some(mode);
            let resp = engine.search(req).await.unwrap();
            let got: Vec<String> = resp.hits.iter().map(|h| format!("{}#{}", h.path, h.anchor)).collect();
            if mode == SearchMode::Hybrid {
                assert!(got.iter().any(|g| g == want), "{mode:?} `{q}`: {want} not in top 5: {got:?}");
            }
            assert!(resp.hits.len() <= 5);
            assert!(resp.hits.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }
    // Results are stable run to run (RRF ties broken by id).
    let a = engine.search(search("modules and packages import", "py", 10)).await.unwrap();
    let b = engine.search(search("modules and packages import", "py", 10)).await.unwrap();
    assert_eq!(a.hits, b.hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reingest_is_incremental() {
    let docs = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| std::fs::write(docs.path().join(name), body).unwrap();
    write("a.md", "# Alpha\n\nAlpha explains caching layers.\n\n## Details\n\nTTL and eviction.\n");
    write("b.md", "# Beta\n\nBeta covers rate limits.\n");
    write("c.rst", "Gamma\n=====\n\nGamma describes backups.\n");
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    let first = engine.ingest().directory(ingest_req(docs.path(), "inc"), &NoProgress).await.unwrap();
    assert_eq!((first.documents_written, first.chunks_written), (3, 4));
    let ids = |pts: Vec<aidocs::core::StoredPoint>, path: Option<&str>| -> BTreeSet<uuid::Uuid> {
        pts.into_iter().filter(|p| path.is_none_or(|x| p.payload.path == x)).map(|p| p.id).collect()
    };
    let before = ids(engine.store().scroll("inc", &Filter::default()).await.unwrap(), None);

    // Unchanged tree: nothing written, nothing deleted.
    let again = engine.ingest().directory(ingest_req(docs.path(), "inc"), &NoProgress).await.unwrap();
    assert_eq!((again.documents_unchanged, again.documents_written, again.chunks_written, again.points_deleted), (3, 0, 0, 0));
    assert_eq!(ids(engine.store().scroll("inc", &Filter::default()).await.unwrap(), None), before);

    // One file changed: only its chunks change.
    let b_before = ids(engine.store().scroll("inc", &Filter::default()).await.unwrap(), Some("b.md"));
    write("a.md", "# Alpha\n\nAlpha explains caching layers and cache stampedes.\n");
    let changed = engine.ingest().directory(ingest_req(docs.path(), "inc"), &NoProgress).await.unwrap();
    assert_eq!((changed.documents_written, changed.documents_unchanged, changed.chunks_written), (1, 2, 1));
    assert_eq!(changed.points_deleted, 2, "both old chunks of a.md replaced");
    let all = engine.store().scroll("inc", &Filter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(ids(all.clone(), Some("b.md")), b_before);
    assert!(all.iter().any(|p| p.payload.text.contains("stampedes")));

    // One file deleted: its chunks are gone.
    std::fs::remove_file(docs.path().join("c.rst")).unwrap();
    let deleted = engine.ingest().directory(ingest_req(docs.path(), "inc"), &NoProgress).await.unwrap();
    assert_eq!((deleted.documents_deleted, deleted.points_deleted, deleted.documents_unchanged), (1, 1, 2));
    let all = engine.store().scroll("inc", &Filter::default()).await.unwrap();
    assert!(all.iter().all(|p| p.payload.path != "c.rst"));
    assert_eq!(all.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_restrict_results_by_metadata() {
    let py = tempfile::tempdir().unwrap();
    let rs = tempfile::tempdir().unwrap();
    std::fs::write(py.path().join("async.md"), "# Async\n\nRun coroutines concurrently with an event loop and tasks.\n").unwrap();
    std::fs::write(rs.path().join("async.md"), "# Async\n\nRun futures concurrently on the runtime with spawned tasks.\n").unwrap();
    std::fs::write(rs.path().join("own.md"), "---\nlanguage: rust-nightly\n---\n# Ownership\n\nBorrowing rules for tasks.\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    for (dir, lang) in [(py.path(), "python"), (rs.path(), "rust")] {
        let mut req = ingest_req(dir, "mixed");
        req.metadata.language = Some(lang.into());
        engine.ingest().directory(req, &NoProgress).await.unwrap();
    }
    for (lang, n) in [("python", 1), ("rust", 1), ("rust-nightly", 1)] {
        for mode in [SearchMode::Hybrid, SearchMode::Dense, SearchMode::Sparse] {
            let mut req = search("run tasks concurrently", "mixed", 10);
            req.mode = Some(mode);
            req.filter = Filter::default().and(FilterField::Language, FilterValue::Keyword(lang.into()));
            let resp = engine.search(req).await.unwrap();
            assert_eq!(resp.hits.len(), n, "{lang} {mode:?}: {:?}", resp.hits);
            assert!(resp.hits.iter().all(|h| h.metadata.language.as_deref() == Some(lang)), "front matter overrides run metadata");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_restart_and_second_process_is_locked_out() {
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("a.md"), "# Alpha\n\nPersistent text.\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    {
        let engine = engine(data.path());
        engine.ingest().directory(ingest_req(docs.path(), "keep"), &NoProgress).await.unwrap();
        engine.store().set_alias("live", "keep").await.unwrap();
        let err = aidocs::Engine::open(config(data.path())).unwrap_err();
        assert_eq!(err.code(), aidocs::ErrorCode::StoreLocked, "{err}");
    }
    let engine = engine(data.path());
    let resp = engine.search(search("persistent", "live", 3)).await.unwrap();
    assert_eq!(resp.collection, "keep");
    assert_eq!(resp.hits.len(), 1);
}

/// A document whose write was cut short (a crash between two upsert batches) used to count
/// as unchanged forever, because only its hash was compared. Now the stored ids must be
/// exactly its chunks' ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_written_document_is_written_again() {
    let docs = tempfile::tempdir().unwrap();
    let body: String = (0..12).map(|i| format!("## Part {i}\n\nParagraph {i} about partial writes and recovery after a crash.\n\n")).collect();
    std::fs::write(docs.path().join("long.md"), format!("# Long\n\n{body}")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    let first = engine.ingest().directory(ingest_req(docs.path(), "partial"), &NoProgress).await.unwrap();
    assert!(first.chunks_written >= 3, "{first:?}");
    // Simulate the crash: the last chunks of the document never reached the store.
    let mut points = engine.store().scroll("partial", &Filter::default()).await.unwrap();
    points.sort_by_key(|p| p.payload.chunk_index);
    let lost: Vec<uuid::Uuid> = points.iter().skip(2).map(|p| p.id).collect();
    engine.store().delete("partial", lost.clone()).await.unwrap();
    let again = engine.ingest().directory(ingest_req(docs.path(), "partial"), &NoProgress).await.unwrap();
    assert_eq!((again.documents_written, again.documents_unchanged), (1, 0), "{again:?}");
    assert_eq!(engine.store().count("partial", &Filter::default()).await.unwrap(), first.chunks_written);
    let third = engine.ingest().directory(ingest_req(docs.path(), "partial"), &NoProgress).await.unwrap();
    assert_eq!((third.documents_written, third.documents_unchanged), (0, 1), "complete now: {third:?}");
}

/// Ingesting one file touches only that file's chunks: `page.htm` is not a prefix of
/// `page.html`'s source id (before the fix, re-ingesting `page.htm` deleted `page.html`, and
/// `guide.md` deleted `guide.mdx`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file_ingest_leaves_its_siblings_alone() {
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("page.html"), "<h1 id=long>Long</h1><p>Long name page about tokenizers.</p>").unwrap();
    std::fs::write(docs.path().join("page.htm"), "<h1 id=short>Short</h1><p>Short name page about pooling.</p>").unwrap();
    std::fs::write(docs.path().join("guide.md"), "# Guide\n\nThe guide text.\n").unwrap();
    std::fs::write(docs.path().join("guide.md.txt"), "Guide as text, a sibling whose name extends guide.md.\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    engine.ingest().directory(ingest_req(docs.path(), "sib"), &NoProgress).await.unwrap();
    let paths = |pts: Vec<aidocs::core::StoredPoint>| pts.into_iter().map(|p| p.payload.path).collect::<BTreeSet<_>>();
    let before = paths(engine.store().scroll("sib", &Filter::default()).await.unwrap());
    assert_eq!(before.len(), 4, "{before:?}");
    std::fs::write(docs.path().join("page.htm"), "<h1 id=short>Short</h1><p>Short name page about mean pooling.</p>").unwrap();
    let r = engine.ingest().directory(ingest_req(&docs.path().join("page.htm"), "sib"), &NoProgress).await.unwrap();
    assert_eq!((r.documents_written, r.documents_deleted), (1, 0), "{r:?}");
    let r = engine.ingest().directory(ingest_req(&docs.path().join("guide.md"), "sib"), &NoProgress).await.unwrap();
    assert_eq!((r.documents_unchanged, r.documents_deleted, r.points_deleted), (1, 0, 0), "{r:?}");
    let all = engine.store().scroll("sib", &Filter::default()).await.unwrap();
    assert!(all.iter().any(|p| p.payload.text.contains("mean pooling")));
    assert_eq!(all.len(), 4, "every sibling keeps its chunk: {:?}", paths(all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_skipped_and_nothing_else_is_lost() {
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("good.md"), "# Good\n\nFine text.\n").unwrap();
    std::fs::write(docs.path().join("latin1.txt"), b"caf\xe9 au lait").unwrap();
    std::fs::write(docs.path().join("broken.html"), "<html><body><h1 id=t>Title</h2><p>unclosed <div>content here</body").unwrap();
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    let r = engine.ingest().directory(ingest_req(docs.path(), "bad"), &NoProgress).await.unwrap();
    let skipped = &r.directory().unwrap().skipped;
    assert_eq!(skipped.len(), 1, "{r:?}");
    assert_eq!(skipped[0].path, "latin1.txt");
    assert!(skipped[0].reason.contains("UTF-8"));
    assert_eq!(r.documents_written, 2);
    let resp = engine.search(search("content here", "bad", 5)).await.unwrap();
    assert!(resp.hits.iter().any(|h| h.path == "broken.html" && h.anchor == "t"));

    let err = engine.ingest().directory(ingest_req(&docs.path().join("missing"), "bad"), &NoProgress).await.unwrap_err();
    assert_eq!(err.code(), aidocs::ErrorCode::InvalidPath);
    assert_eq!(engine.store().count("bad", &Filter::default()).await.unwrap(), 2, "a failed ingest loses nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_during_ingest_keep_working() {
    let docs = tempfile::tempdir().unwrap();
    for i in 0..30 {
        std::fs::write(docs.path().join(format!("p{i}.md")), format!("# Page {i}\n\nTopic number {i} about caching, search and indexing.\n\n## More\n\n{}\n", "Filler sentence about vectors. ".repeat(20))).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    std::fs::write(data.path().join("seed.md"), "# Seed\n\nseed text\n").unwrap();
    engine.ingest().directory(ingest_req(&data.path().join("seed.md"), "busy"), &NoProgress).await.unwrap();
    let ingest = {
        let engine = engine.clone();
        let path = docs.path().to_path_buf();
        tokio::spawn(async move { engine.ingest().directory(ingest_req(&path, "busy"), &NoProgress).await })
    };
    let mut searches = 0;
    while !ingest.is_finished() {
        let resp = engine.search(search("caching and indexing", "busy", 5)).await.unwrap();
        assert!(!resp.hits.is_empty());
        searches += 1;
    }
    let report = ingest.await.unwrap().unwrap();
    assert_eq!(report.documents_written, 30);
    assert!(searches > 0);
    assert_eq!(engine.store().count("busy", &Filter::default()).await.unwrap(), 1 + report.chunks_written);
}

/// Both engines run the same model under one model id, so a collection indexed on candle is
/// searchable with the ONNX Runtime engine (and they agree on the best hit). Candle embeds
/// when ONNX Runtime is not on disk; `auto` takes ONNX Runtime once it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onnx_engine_searches_a_collection_built_by_candle() {
    let docs = tempfile::tempdir().unwrap();
    copy_pages(&python_docs(), &["tutorial/venv.html", "tutorial/errors.html"], docs.path());
    let data = tempfile::tempdir().unwrap();
    let q = "How do I create a virtual environment?";
    let candle_top = {
        let mut cfg = config(data.path());
        cfg.embedding.provider = aidocs::config::EmbeddingProvider::Auto;
        cfg.embedding.onnx_runtime_lib = data.path().join("no-such-libonnxruntime.so");
        let engine = aidocs::Engine::open(cfg).unwrap();
        assert_eq!(engine.health_detailed().await.1.embedding.backend.as_deref(), Some("local"));
        engine.ingest().directory(ingest_req(docs.path(), "py"), &NoProgress).await.unwrap();
        let mut req = search(q, "py", 3);
        req.mode = Some(SearchMode::Dense);
        engine.search(req).await.unwrap().hits
    };
    let mut cfg = config(data.path());
    cfg.embedding.provider = aidocs::config::EmbeddingProvider::Auto;
    let models = model_dir().parent().unwrap().to_path_buf();
    cfg.embedding.onnx_model_dir = models.join("all-MiniLM-L6-v2-int8");
    cfg.embedding.onnx_runtime_lib = models.join("onnxruntime/libonnxruntime.so.1.31.1");
    let engine = aidocs::Engine::open(cfg).unwrap();
    assert_eq!(engine.health_detailed().await.1.embedding.backend.as_deref(), Some("onnx"), "auto takes ONNX Runtime when it is there");
    let mut req = search(q, "py", 3);
    req.mode = Some(SearchMode::Dense);
    let onnx_top = engine.search(req).await.unwrap().hits;
    assert_eq!(onnx_top[0].id, candle_top[0].id);
    assert_eq!(format!("{}#{}", onnx_top[0].path, onnx_top[0].anchor), "tutorial/venv.html#creating-virtual-environments");
    assert!((onnx_top[0].score - candle_top[0].score).abs() < 0.02);
}

/// Ingest into an existing collection checks the vector size as search does: a collection
/// of another size (here 8 dims, no model recorded) is refused up front as a model
/// mismatch, before anything is embedded (it used to fail at the first write instead).
#[tokio::test]
async fn ingest_refuses_a_collection_of_another_vector_size() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write_tree(&docs, &[("a.md", "# A\n\nSome text.\n")]);
    let engine = common::engine(&dir.path().join("data"));
    let spec = aidocs::core::CollectionSpec {
        name: "small".into(),
        dims: 8,
        properties: Default::default(),
    };
    engine.store().create_collection(&spec).await.unwrap();
    let req = aidocs::IngestRequest {
        path: docs,
        collection: "small".into(),
        metadata: Default::default(),
        base_url: None,
    };
    let err = engine
        .ingest().directory(req, &aidocs::progress::NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(err, aidocs::Error::ModelMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("8 dims"), "{err}");
    assert_eq!(
        engine
            .store()
            .count("small", &aidocs::core::Filter::default())
            .await
            .unwrap(),
        0
    );
}

/// An API spec in a docs tree: the real Gitea API (Swagger 2) ingested beside a JSON file
/// that is not a spec; a paraphrased question lands on its operation, linked at the
/// operationId, and the other JSON file is skipped as having no text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_specs_are_searched_by_operation() {
    const GITEA: &str = "/usr/share/gocode/src/github.com/go-openapi/spec/fixtures/bugs/1614/gitea.json";
    let docs = tempfile::tempdir().unwrap();
    std::fs::copy(GITEA, docs.path().join("gitea.json")).unwrap_or_else(|e| panic!("{GITEA}: {e} (apt-get install golang-github-go-openapi-spec-dev)"));
    std::fs::write(docs.path().join("package.json"), r#"{"name": "site", "version": "1.0.0"}"#).unwrap();
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    let report = engine.ingest().directory(ingest_req(docs.path(), "api"), &NoProgress).await.unwrap();
    assert_eq!(report.documents_written, 1, "{report:?}");
    assert_eq!(report.directory().unwrap().files_seen, 2);
    for (q, want) in [("remove an SSH key of some user as an administrator", "adminDeleteUserPublicKey"), ("star a repository for the signed-in user", "userCurrentPutStar")] {
        let hits = engine.search(search(q, "api", 5)).await.unwrap().hits;
        let got: Vec<&str> = hits.iter().map(|h| h.anchor.as_str()).collect();
        assert!(got.contains(&want), "`{q}`: {want} not in {got:?}");
        let hit = hits.iter().find(|h| h.anchor == want).unwrap();
        assert!(hit.url.ends_with(&format!("gitea.json#{want}")), "{}", hit.url);
    }
    let notes = |r: &aidocs::IngestReport| format!("{:?}", r.directory().unwrap());
    assert!(notes(&report).contains("no `openapi` or `swagger` field"), "{}", notes(&report));
    // The spec damaged (cut in half): named, and what it had indexed stays searchable.
    let text = std::fs::read_to_string(docs.path().join("gitea.json")).unwrap();
    std::fs::write(docs.path().join("gitea.json"), &text[..text.len() / 2]).unwrap();
    let again = engine.ingest().directory(ingest_req(docs.path(), "api"), &NoProgress).await.unwrap();
    assert_eq!((again.documents_written, again.documents_deleted), (0, 0), "{again:?}");
    assert!(notes(&again).contains("neither JSON") && notes(&again).contains("EOF"), "{}", notes(&again));
    let hits = engine.search(search("star a repository for the signed-in user", "api", 5)).await.unwrap().hits;
    assert!(hits.iter().any(|h| h.anchor == "userCurrentPutStar"), "{hits:?}");
}

/// PDFs in a docs tree: two real manuals from Debian (a GNU Texinfo manual and a DocBook
/// spec). A paraphrased question lands on the page that answers it, linked as
/// `file.pdf#page=N`; ingesting them again writes nothing; a PDF damaged on disk is named
/// and what it had indexed stays searchable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdfs_are_searched_by_page() {
    let docs = tempfile::tempdir().unwrap();
    for (from, to) in [("/usr/share/doc/libtasn1-doc/libtasn1.pdf", "libtasn1.pdf"), ("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf", "mime/spec.pdf")] {
        std::fs::create_dir_all(docs.path().join(to).parent().unwrap()).unwrap();
        std::fs::copy(from, docs.path().join(to)).unwrap_or_else(|e| panic!("{from}: {e} (apt-get install libtasn1-doc shared-mime-info)"));
    }
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    let report = engine.ingest().directory(ingest_req(docs.path(), "pdf"), &NoProgress).await.unwrap();
    assert_eq!((report.directory().unwrap().files_seen, report.documents_written), (2, 2), "{report:?}");
    assert!(report.chunks_written > 60, "{report:?}");
    let cases = [
        ("turn a binary DER file back into a readable structure from the shell", "libtasn1.pdf#page=10", "Invoking asn1Decoding"),
        ("which file name patterns map to a MIME type", "mime/spec.pdf#page=7", "2.4. The glob files"),
    ];
    for (q, want, heading) in cases {
        let hits = engine.search(search(q, "pdf", 5)).await.unwrap().hits;
        let got: Vec<String> = hits.iter().map(|h| format!("{}#{}", h.path, h.anchor)).collect();
        let hit = hits.iter().find(|h| format!("{}#{}", h.path, h.anchor) == want).unwrap_or_else(|| panic!("`{q}`: {want} not in {got:?}"));
        assert!(hit.url.ends_with(want), "{}", hit.url);
        assert_eq!(hit.heading_path.last().map(String::as_str), Some(heading));
    }
    let again = engine.ingest().directory(ingest_req(docs.path(), "pdf"), &NoProgress).await.unwrap();
    assert_eq!((again.documents_written, again.chunks_written, again.documents_unchanged), (0, 0, 2), "{again:?}");
    // Damaged on disk (cut short): named, nothing deleted, still answered.
    let bytes = std::fs::read(docs.path().join("libtasn1.pdf")).unwrap();
    std::fs::write(docs.path().join("libtasn1.pdf"), &bytes[..bytes.len() / 3]).unwrap();
    let damaged = engine.ingest().directory(ingest_req(docs.path(), "pdf"), &NoProgress).await.unwrap();
    assert_eq!((damaged.documents_written, damaged.documents_deleted), (0, 0), "{damaged:?}");
    let notes = format!("{:?}", damaged.directory().unwrap());
    assert!(notes.contains("libtasn1.pdf") && notes.contains("not a readable PDF"), "{notes}");
    let hits = engine.search(search(cases[0].0, "pdf", 5)).await.unwrap().hits;
    assert!(hits.iter().any(|h| h.anchor == "page=10" && h.path == "libtasn1.pdf"), "{hits:?}");
}

/// One slot per section: by default the chunks of one long section fold into its best one,
/// in that chunk's place, and the freed slots go to other sections; `collapse: none`
/// answers every chunk (on real Python pages, whose long sections span several chunks).
/// Section evidence is off here (`search.section_weight = 0`), so the two rankings differ
/// by the collapse alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slot_per_section_unless_asked_for_every_chunk() {
    let docs = tempfile::tempdir().unwrap();
    copy_pages(&python_docs(), &["tutorial/errors.html", "tutorial/controlflow.html", "tutorial/classes.html"], docs.path());
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.search.section_weight = 0.0;
    let engine = aidocs::Engine::open(cfg).unwrap();
    engine.ingest().directory(ingest_req(docs.path(), "py"), &NoProgress).await.unwrap();
    let section = |h: &aidocs::SearchHit| format!("{}#{}", h.path, h.anchor);
    for q in ["catch an exception with try except", "define a class with methods and inheritance"] {
        let chunks = engine.search(SearchRequest { collapse: Some(aidocs::core::Collapse::None), ..search(q, "py", 10) }).await.unwrap().hits;
        let collapsed = engine.search(search(q, "py", 10)).await.unwrap().hits;
        let of_chunks: Vec<String> = chunks.iter().map(section).collect();
        let of_collapsed: Vec<String> = collapsed.iter().map(section).collect();
        let distinct = |v: &[String]| v.iter().collect::<BTreeSet<_>>().len();
        assert!(distinct(&of_chunks) < of_chunks.len(), "`{q}`: some section takes several slots without collapse: {of_chunks:?}");
        assert_eq!((collapsed.len(), distinct(&of_collapsed)), (10, 10), "`{q}`: ten sections: {of_collapsed:?}");
        assert_eq!(collapsed[0], chunks[0], "`{q}`: the best chunk leads either way");
        // Each section keeps its best chunk and the order of first appearance.
        let mut firsts: Vec<&aidocs::SearchHit> = Vec::new();
        for h in &chunks {
            if !firsts.iter().any(|f| section(f) == section(h)) {
                firsts.push(h);
            }
        }
        assert_eq!(collapsed[..firsts.len()].iter().collect::<Vec<_>>(), firsts, "`{q}`");
    }
}
