//! `aidocs eval` end to end on a tiny BEIR-layout dataset, through the real engine.

use aidocs_eval::{EvalMode, EvalOptions};
use std::path::{Path, PathBuf};

/// The engine of the `testing` template on the real MiniLM model (`cargo xtask models`).
fn engine(data_dir: &Path) -> aidocs::Engine {
    let model = std::env::var_os("AIDOCS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"));
    let (mut cfg, _) = aidocs::Config::load(&aidocs::ConfigSource { template: Some("testing".into()), ..Default::default() }).unwrap();
    cfg.data_dir = data_dir.to_path_buf();
    cfg.embedding.model_dir = model;
    aidocs::Engine::open(cfg).expect("engine opens")
}

#[tokio::test(flavor = "multi_thread")]
async fn eval_scores_modes_and_dumps_rankings() {
    let ds = tempfile::tempdir().unwrap();
    let corpus = [
        ("d1", "Virtual environments", "Create an isolated Python environment with python -m venv."),
        ("d2", "JSON", "The json module encodes and decodes JSON documents."),
        ("d3", "Sockets", "Low-level networking interface for TCP and UDP sockets."),
        ("d4", "Regular expressions", "The re module provides pattern matching on strings."),
        ("d5", "Threads", "The threading module runs code concurrently in threads."),
    ];
    let lines: String = corpus.iter().map(|(id, t, x)| format!("{}\n", serde_json::json!({"_id": id, "title": t, "text": x}))).collect();
    std::fs::write(ds.path().join("corpus.jsonl"), lines).unwrap();
    std::fs::write(
        ds.path().join("queries.jsonl"),
        "{\"_id\": \"q1\", \"text\": \"how to make an isolated python environment\"}\n{\"_id\": \"q2\", \"text\": \"parse json text\"}\n{\"_id\": \"q3\", \"text\": \"no judgements\"}\n",
    )
    .unwrap();
    std::fs::write(ds.path().join("qrels-test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n").unwrap();

    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    let dump = data.path().join("runs.jsonl");
    let cache = data.path().join("emb-cache");
    let opts = EvalOptions {
        dataset: ds.path().into(),
        modes: vec![EvalMode::Sparse, EvalMode::Dense, EvalMode::Hybrid, EvalMode::Hyde],
        fusions: vec!["dbsf".parse().unwrap()],
        max_queries: None,
        dump: Some(dump.clone()),
        cache_dir: cache.clone(),
        title_weight: 1,
        keep_collection: None,
    };
    let report = aidocs_eval::run(&engine, &opts, &()).await.unwrap();
    assert_eq!((report.documents, report.queries), (5, 2), "only judged queries are evaluated");
    let labels: Vec<_> = report.rows.iter().map(|r| (r.label.as_str(), r.fusion.as_str())).collect();
    assert_eq!(labels, [("sparse", "-"), ("dense", "-"), ("hybrid", "rrf:20"), ("hyde", "rrf:20"), ("hybrid", "dbsf")]);
    for r in &report.rows {
        // Both queries have their one relevant document first: every metric is 1.
        assert!((r.ndcg_10 - 1.0).abs() < 1e-9 && (r.mrr_10 - 1.0).abs() < 1e-9 && (r.recall_100 - 1.0).abs() < 1e-9, "{r:?}");
        assert!(r.p50_ms > 0.0 && r.p95_ms >= r.p50_ms);
    }
    let hyde = &report.rows[3];
    assert_eq!(hyde.fallbacks, 2, "no generator configured: each query falls back and is counted");
    assert!(hyde.fallback_reason.as_deref().unwrap().contains("not configured"));
    assert!(report.markdown().contains("| hybrid | dbsf | 1.0000 |"));

    // The dump: one line per (row, query) with ranked ids and scores.
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&dump).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5 * 2);
    assert_eq!(lines[0]["mode"], "sparse");
    assert_eq!(lines[0]["qid"], "q1");
    assert_eq!(lines[0]["results"][0][0], "d1");
    // Embeddings were cached on disk; the scratch collection is gone.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    assert!(engine.collections().list().await.unwrap().iter().all(|c| !c.name.starts_with("eval-")));
}

/// A docs-QA dataset end to end: two small trees (one from two of its directories) ingested
/// through the real pipeline into one collection, questions asked per split, each scored by
/// the rank of its answering section; a filter question finds the answer only in its tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_qa_questions_are_scored_by_their_answering_section() {
    let dir = tempfile::tempdir().unwrap();
    let (tools, lib) = (dir.path().join("tools"), dir.path().join("lib"));
    for (path, text) in [
        (tools.join("guide/stash.md"), "# Stash\n\n## Saving work\n\nThe stash command puts uncommitted changes aside on a stack.\n\n## Listing\n\nShow every entry of the stack.\n"),
        (tools.join("ref/clone.md"), "# Clone\n\n## Shallow copies\n\nA depth option fetches only the newest history.\n"),
        (tools.join("skipped/other.md"), "# Other\n\n## Unrelated\n\nNot ingested: outside the listed directories.\n"),
        (tools.join("guide/stash.txt"), "Stash\n\nNot ingested: not one of the tree's extensions.\n"),
        (lib.join("stash.md"), "# Cache\n\n## Saving work\n\nThe library keeps computed values aside for reuse.\n"),
    ] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let ds = dir.path().join("ds");
    std::fs::create_dir_all(&ds).unwrap();
    let manifest = serde_json::json!({"name": "tiny", "trees": [
        {"name": "tools", "package": "tools-doc", "root": tools, "dirs": ["guide", "ref"], "extensions": ["md"], "metadata": {"framework": "tools"}},
        {"name": "lib", "package": "lib-doc", "root": lib, "metadata": {"framework": "lib"}},
    ]});
    std::fs::write(ds.join("dataset.json"), manifest.to_string()).unwrap();
    let questions = [
        serde_json::json!({"id": "t1", "split": "test", "kind": "paraphrase", "query": "put my uncommitted edits aside for later", "answers": ["tools/guide/stash.md#saving-work"]}),
        serde_json::json!({"id": "t2", "split": "test", "kind": "howto", "query": "how do I fetch only the newest history", "answers": ["tools/ref/clone.md#shallow-copies"]}),
        serde_json::json!({"id": "t3", "split": "test", "kind": "filter", "query": "saving work", "answers": ["lib/stash.md#saving-work"], "filter": {"framework": "lib"}}),
        serde_json::json!({"id": "d1", "split": "dev", "kind": "paraphrase", "query": "list every stack entry", "answers": ["tools/guide/stash.md#listing"]}),
    ];
    std::fs::write(ds.join("questions.jsonl"), questions.iter().map(|q| format!("{q}\n")).collect::<String>()).unwrap();
    let loaded = aidocs_eval::docsqa::DocsQa::load(&ds).unwrap();
    assert_eq!(loaded.questions.len(), 4);

    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    let opts = EvalOptions {
        dataset: ds.clone(),
        modes: vec![EvalMode::Hybrid],
        fusions: vec![],
        max_queries: None,
        dump: None,
        cache_dir: data.path().join("cache"),
        title_weight: 1,
        keep_collection: None,
    };
    let splits = ["test".parse().unwrap(), "dev".parse().unwrap()];
    let collapses = [None, Some(aidocs::core::Collapse::None)];
    let report = aidocs_eval::docsqa::run(&engine, &loaded, &opts, &splits, &collapses, &()).await.unwrap();
    assert_eq!(report.pages, 3, "{report:?}");
    let runs: Vec<(&str, &str, usize)> = report.runs.iter().map(|r| (r.split.as_str(), r.collapse.as_str(), r.rows[0].all.questions)).collect();
    assert_eq!(runs, [("test", "section", 3), ("test", "none", 3), ("dev", "section", 1), ("dev", "none", 1)]);
    let hybrid = &report.runs[0].rows[0];
    assert_eq!((hybrid.all.section_hit_1, hybrid.all.mrr_10, hybrid.all.page_hit_10), (1.0, 1.0, 1.0), "{hybrid:?}");
    assert_eq!(hybrid.by_kind["filter"].questions, 1);
    assert_eq!(report.runs[2].rows[0].all.section_hit_1, 1.0);
    assert!(report.markdown().contains("| hybrid | rrf:20 | 1.000 |"), "{}", report.markdown());
    assert!(engine.collections().list().await.unwrap().is_empty(), "the scratch collection is removed");

    // A kept collection stays, and a second run over it writes nothing and scores the same.
    // It also dumps each question of each row: answers, the rank of the first answer, hits.
    let dump = data.path().join("docsqa.jsonl");
    let kept = EvalOptions { keep_collection: Some("docsqa_kept".into()), dump: Some(dump.clone()), ..opts.clone() };
    let first = aidocs_eval::docsqa::run(&engine, &loaded, &kept, &splits[..1], &collapses[..1], &()).await.unwrap();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&dump).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["t1", "t2", "t3"], "one line per test question of the one row");
    let t3 = &lines[2];
    assert_eq!((t3["split"].as_str(), t3["collapse"].as_str(), t3["mode"].as_str()), (Some("test"), Some("section"), Some("hybrid")));
    assert_eq!(t3["rank"], 1, "{t3}");
    assert_eq!(t3["hits"][0]["key"], "lib/stash.md#saving-work", "{t3}");
    assert_eq!(t3["hits"][0]["heading_path"], serde_json::json!(["Cache", "Saving work"]), "{t3}");
    assert_eq!(t3["answers"], serde_json::json!(["lib/stash.md#saving-work"]));
    let again = aidocs_eval::docsqa::run(&engine, &loaded, &kept, &splits[..1], &collapses[..1], &()).await.unwrap();
    assert_eq!((first.pages, again.pages, again.chunks), (3, 0, first.chunks), "the second run reuses the index");
    assert_eq!(again.runs[0].rows[0].all.mrr_10, first.runs[0].rows[0].all.mrr_10);
    assert_eq!(engine.collections().list().await.unwrap().len(), 1);

    // A tree whose package is not installed is named.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("dataset.json"), serde_json::json!({"name": "b", "trees": [{"name": "x", "package": "x-doc", "root": "/nonexistent/x"}]}).to_string()).unwrap();
    std::fs::write(broken.join("questions.jsonl"), "{\"id\": \"q\", \"split\": \"test\", \"kind\": \"api\", \"query\": \"q\", \"answers\": [\"x/a.html#b\"]}\n").unwrap();
    let err = aidocs_eval::docsqa::run(&engine, &aidocs_eval::docsqa::DocsQa::load(&broken).unwrap(), &opts, &splits, &collapses, &()).await.unwrap_err();
    assert!(err.to_string().contains("install the Debian package x-doc"), "{err}");
    std::fs::write(broken.join("questions.jsonl"), "{\"id\": \"q\", \"split\": \"test\", \"kind\": \"api\", \"query\": \"q\", \"answers\": [\"y/a.html#b\"]}\n").unwrap();
    let err = aidocs_eval::docsqa::DocsQa::load(&broken).unwrap_err();
    assert!(err.to_string().contains("line 1 (q)") && err.to_string().contains("y/a.html#b"), "{err}");
}
