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
