//! The whole engine on a real Qdrant server (the binary at `../shared/tools/qdrant/`, started
//! by `aidocs_store::testkit::qdrant_process`): the same answers as the embedded store on
//! real documentation, and a three-node cluster that loses a node while aidocs-server serves
//! searches.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::core::{DocMetadata, Filter, FilterField, FilterValue};
use aidocs::progress::NoProgress;
use aidocs::{Config, Engine, IngestRequest, SearchRequest};
use aidocs_store::testkit::qdrant_process::{ProcessOptions, QdrantProcess};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const TUTORIAL: &[&str] = &[
    "tutorial/venv.html",
    "tutorial/controlflow.html",
    "tutorial/errors.html",
    "tutorial/modules.html",
];
const LIBRARY: &[&str] = &["library/json.html", "library/pathlib.html"];

/// Copies of a few pages of Debian's Python manual: the tutorial as doc type `tutorial`, two
/// library pages as `reference`.
fn pages(dir: &Path) -> [(std::path::PathBuf, &'static str); 2] {
    let docs = common::python_docs();
    let (tutorial, library) = (dir.join("tutorial-src"), dir.join("library-src"));
    common::copy_pages(&docs, TUTORIAL, &tutorial);
    common::copy_pages(&docs, LIBRARY, &library);
    [(tutorial, "tutorial"), (library, "reference")]
}

async fn ingest(engine: &Engine, collection: &str, trees: &[(std::path::PathBuf, &str)]) -> usize {
    let mut chunks = 0;
    for (path, doc_type) in trees {
        let metadata = DocMetadata { doc_type: Some((*doc_type).to_owned()), ..Default::default() };
        let req = IngestRequest { path: path.clone(), collection: collection.into(), metadata, base_url: None };
        chunks += engine.ingest().directory(req, &NoProgress).await.expect("ingest").chunks_written;
    }
    chunks
}

fn no_cache(mut cfg: Config) -> Config {
    cfg.cache.kind = aidocs::config::CacheBackend::None;
    cfg
}

const QUESTIONS: &[&str] = &[
    "how do I create a virtual environment",
    "activate a venv on windows",
    "install packages with pip into the environment",
    "loop over a sequence with its index",
    "what does the else clause of a for loop do",
    "define a function with default argument values",
    "keyword arguments and *args",
    "match statement with patterns",
    "handle an exception and re-raise it",
    "clean-up actions that always run",
    "define my own exception class",
    "exception groups and except*",
    "import a module from a package",
    "what is __name__ == '__main__' for",
    "where does python look for modules",
    "serialize a dict to a JSON string",
    "pretty print json with indentation",
    "join two filesystem paths",
    "list files matching a glob pattern",
    "read the whole text of a file with pathlib",
];

async fn top10(engine: &Engine, q: &str, filter: &Filter) -> Vec<String> {
    let mut req = SearchRequest::new(q);
    req.collection = Some("docs".into());
    req.limit = Some(10);
    req.filter = filter.clone();
    // The stores are compared chunk for chunk: no folding of a section's chunks into one.
    req.collapse = Some(aidocs::core::Collapse::None);
    engine.search(req).await.expect("search").hits.into_iter().map(|h| h.id).collect()
}

/// The same documents ingested into the embedded store and into a real Qdrant server give
/// the same hybrid top 10 (mean overlap >= 0.9 over 20 questions, unfiltered and with a
/// `doc_type` filter) and the same first hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_on_a_real_qdrant_server_matches_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let trees = pages(dir.path());
    let q = QdrantProcess::start(ProcessOptions::default()).await.expect("the Qdrant server binary starts");
    let embedded = Engine::open(no_cache(common::config(&dir.path().join("a")))).unwrap();
    let mut cfg = no_cache(common::config(&dir.path().join("b")));
    common::on_qdrant(&mut cfg, &q);
    let on_qdrant = Engine::open(cfg).unwrap();
    let n = ingest(&embedded, "docs", &trees).await;
    assert_eq!(ingest(&on_qdrant, "docs", &trees).await, n, "the same chunks");
    assert!(n > 100, "{n} chunks");
    let count = |e: &Engine| {
        let e = e.clone();
        async move { e.store().count("docs", &Filter::default()).await.unwrap() }
    };
    assert_eq!((count(&embedded).await, count(&on_qdrant).await), (n, n));

    let (mut overlap, mut same_first, mut asked) = (0.0, 0, 0);
    for (i, question) in QUESTIONS.iter().enumerate() {
        let filter = if i % 2 == 0 {
            Filter::default()
        } else {
            let doc_type = if i >= 15 { "reference" } else { "tutorial" };
            Filter::default().and(FilterField::DocType, FilterValue::Keyword(doc_type.into()))
        };
        let (a, b) = (top10(&embedded, question, &filter).await, top10(&on_qdrant, question, &filter).await);
        assert_eq!(a.len(), 10, "{question}: {a:?}");
        let common: BTreeSet<&String> = a.iter().collect::<BTreeSet<_>>().intersection(&b.iter().collect()).copied().collect();
        overlap += common.len() as f64 / 10.0;
        same_first += usize::from(a[0] == b[0]);
        asked += 1;
    }
    let mean = overlap / asked as f64;
    eprintln!("real Qdrant vs embedded over {asked} questions: mean overlap@10 {mean:.3}, same first hit {same_first}/{asked}");
    assert!(mean >= 0.9, "mean overlap@10 {mean:.3}");
    assert!(same_first >= asked - 1, "same first hit {same_first}/{asked}");
}

/// A search loop over a real socket: (requests, failures, empty answers, longest time
/// without a successful answer, slowest answer).
fn search_loop(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, Vec<String>, u64, Duration, Duration)> {
    std::thread::spawn(move || {
        let (mut n, mut failures, mut empty) = (0u64, Vec::new(), 0u64);
        let (mut last_ok, mut stall, mut slowest) = (Instant::now(), Duration::ZERO, Duration::ZERO);
        while !stop.load(Ordering::SeqCst) {
            let q = QUESTIONS[n as usize % QUESTIONS.len()];
            let body = json!({"query": q, "collection": "docs", "limit": 5}).to_string();
            let started = Instant::now();
            let (status, json) = common::post_json(addr, "/v1/search", &body);
            n += 1;
            slowest = slowest.max(started.elapsed());
            if status != "200" {
                failures.push(format!("{status}: {json}"));
                continue;
            }
            if json["hits"].as_array().is_none_or(|h| h.is_empty()) {
                empty += 1;
                continue;
            }
            stall = stall.max(last_ok.elapsed());
            last_ok = Instant::now();
        }
        (n, failures, empty, stall, slowest)
    })
}

/// Every shard replica of `collection` reported `Active` by node `i`.
async fn replicas(q: &QdrantProcess, i: usize, collection: &str) -> Vec<(u64, String)> {
    let Ok(c) = q.rest_get(i, &format!("/collections/{collection}/cluster")).await else { return Vec::new() };
    let r = &c["result"];
    let mut out: Vec<(u64, String)> = Vec::new();
    for s in r["local_shards"].as_array().into_iter().flatten() {
        out.push((s["shard_id"].as_u64().unwrap_or(u64::MAX), s["state"].as_str().unwrap_or("?").to_owned()));
    }
    for s in r["remote_shards"].as_array().into_iter().flatten() {
        out.push((s["shard_id"].as_u64().unwrap_or(u64::MAX), s["state"].as_str().unwrap_or("?").to_owned()));
    }
    out.sort();
    out
}

/// Qdrant's exact point count of `collection`, asked of node `i`.
async fn exact_count(q: &QdrantProcess, i: usize, collection: &str) -> Option<u64> {
    let url = format!("{}/collections/{collection}/points/count", q.nodes[i].rest_url());
    let r: Value = aidocs_store::testkit::qdrant_process::http_client().post(url).json(&json!({"exact": true})).send().await.ok()?.json().await.ok()?;
    r["result"]["count"].as_u64()
}

/// Three Qdrant nodes in one cluster; aidocs creates its collection from config with two
/// shards, two replicas each and write consistency 1, and serves searches over HTTP while
/// one node is killed with SIGKILL. No search fails or comes back empty, a write during the
/// outage is acknowledged, and once the node is back every replica is active again and each
/// node counts exactly the points aidocs wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_loses_a_node_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let trees = pages(dir.path());
    let mut q = QdrantProcess::cluster(3, ProcessOptions::default()).await.expect("a three-node Qdrant cluster starts");
    let mut cfg = no_cache(common::config(&dir.path().join("data")));
    common::on_qdrant(&mut cfg, &q);
    cfg.vector_store.collection.shard_number = Some(2);
    cfg.vector_store.collection.replication_factor = Some(2);
    cfg.vector_store.collection.write_consistency_factor = Some(1);
    let engine = Engine::open(cfg).unwrap();
    let mut chunks = ingest(&engine, "docs", &trees[..1]).await;
    let collection = engine.store().resolve("docs").await.unwrap();
    let layout = replicas(&q, 0, &collection).await;
    assert_eq!(layout.len(), 4, "2 shards x 2 replicas: {layout:?}");
    assert!(layout.iter().all(|(_, s)| s == "Active"), "{layout:?}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = aidocs_http::router(engine.clone());
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap() });
    let stop = Arc::new(AtomicBool::new(false));
    let load = search_loop(addr, stop.clone());
    tokio::time::sleep(Duration::from_millis(800)).await;

    // Node 2 (not the one aidocs talks to) dies without warning; writes go on.
    q.kill(2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    chunks += ingest(&engine, "docs", &trees[1..]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    q.restart(2).await.expect("node 2 restarts on its old storage");
    q.wait_for_peers(2, 3).await.unwrap();

    // The restarted node's replicas catch up (Qdrant transfers what they missed).
    let started = Instant::now();
    let converged = loop {
        let mut ok = true;
        for i in 0..3 {
            let r = replicas(&q, i, &collection).await;
            ok &= r.len() == 4 && r.iter().all(|(_, s)| s == "Active");
            ok &= exact_count(&q, i, &collection).await == Some(chunks as u64);
        }
        if ok {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(90), "no convergence: {:?}", replicas(&q, 0, &collection).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    stop.store(true, Ordering::SeqCst);
    let (n, failures, empty, stall, slowest) = load.join().unwrap();
    eprintln!(
        "cluster: {n} searches, {} failed, {empty} empty, longest stall {stall:?}, slowest answer {slowest:?}; {chunks} points; converged {converged:?} after the restart",
        failures.len()
    );
    assert!(n > 20, "the search loop ran ({n})");
    assert!(failures.is_empty(), "{} of {n} searches failed: {failures:?}", failures.len());
    assert_eq!(empty, 0, "no empty answers in {n}");
    assert_eq!(engine.store().count("docs", &Filter::default()).await.unwrap(), chunks, "aidocs counts every point it wrote");
}
