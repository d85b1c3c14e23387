//! QdrantStore: the conformance suite, alias switching in one request, API key, version
//! check, retries and snapshots.
//!
//! The suite runs against a real Qdrant when `AIDOCS_TEST_QDRANT_URL` is set (gRPC URL;
//! `AIDOCS_TEST_QDRANT_API_KEY` if it needs one), else against the test server in
//! `aidocs_store::testkit::qdrant_server` (Qdrant's gRPC services over the embedded engine).
//! The other tests need the test server's fault injection and call log.

use aidocs_core::{CollectionSpec, Filter, NativeSnapshots, SnapshotInfo, StoreError, VectorStore};
use aidocs_store::qdrant::RetryPolicy;
use aidocs_store::testkit::qdrant_server::{QdrantTestServer, ServerOptions};
use aidocs_store::{EdgeStore, EdgeStoreConfig, QdrantStore, QdrantStoreConfig, conformance};
use std::time::Duration;

async fn server(dir: &std::path::Path, opts: ServerOptions) -> QdrantTestServer {
    let edge = EdgeStore::open(EdgeStoreConfig::new(dir)).unwrap();
    QdrantTestServer::start(edge, opts).await.unwrap()
}

fn config(s: &QdrantTestServer) -> QdrantStoreConfig {
    let mut cfg = QdrantStoreConfig::new(&s.grpc_url);
    cfg.rest_url = Some(s.rest_url.clone());
    cfg.retry = RetryPolicy { attempts: 3, base: Duration::from_millis(10), max: Duration::from_millis(50) };
    cfg
}

fn spec(name: &str) -> CollectionSpec {
    CollectionSpec { name: name.into(), dims: 4, properties: [("embedding_model".to_owned(), "test".to_owned())].into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_store_passes_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let _server;
    let cfg = match std::env::var("AIDOCS_TEST_QDRANT_URL") {
        Ok(url) if !url.is_empty() => {
            let mut cfg = QdrantStoreConfig::new(url);
            cfg.api_key = std::env::var("AIDOCS_TEST_QDRANT_API_KEY").ok();
            cfg
        }
        _ => {
            _server = server(dir.path(), ServerOptions::default()).await;
            config(&_server)
        }
    };
    let store = QdrantStore::connect(cfg).await.expect("connect");
    // A unique prefix, so a shared real server keeps earlier runs' leftovers apart.
    let prefix = format!("aidocs_conf_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    conformance::run_all(&store, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_switch_is_one_request_and_readers_never_miss_the_alias() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), ServerOptions::default()).await;
    let store = QdrantStore::connect(config(&s)).await.unwrap();
    for (name, n) in [("blue", 1u128), ("green", 2)] {
        store.create_collection(&spec(name)).await.unwrap();
        store.upsert(name, vec![conformance::point(n, [1.0, 0.0, 0.0, 0.0], &[(1, 1.0)], "python")]).await.unwrap();
    }
    store.set_alias("live", "blue").await.unwrap();
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let n = store.count("live", &Filter::default()).await.expect("the alias always resolves");
                assert_eq!(n, 1);
                seen.insert(store.resolve("live").await.expect("resolves"));
            }
            seen
        })
    };
    for i in 0..20 {
        store.set_alias("live", if i % 2 == 0 { "green" } else { "blue" }).await.unwrap();
    }
    let seen = reader.await.unwrap();
    assert!(!seen.is_empty());
    let switches: Vec<String> = s.calls().into_iter().filter(|c| c.starts_with("update_aliases")).collect();
    assert_eq!(switches[0], "update_aliases[1]", "first create: one action");
    assert!(switches[1..].iter().all(|c| c == "update_aliases[2]"), "each switch is one request with delete + create: {switches:?}");
    assert_eq!(switches.len(), 21);
    assert_eq!(store.resolve("live").await.unwrap(), "blue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_sent_and_a_wrong_one_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), ServerOptions { api_key: Some("s3cret".into()), ..Default::default() }).await;
    let err = QdrantStore::connect(config(&s)).await.unwrap_err().to_string();
    assert!(err.contains("api_key") && err.contains("QDRANT_API_KEY"), "{err}");
    let mut cfg = config(&s);
    cfg.api_key = Some("wrong".into());
    assert!(QdrantStore::connect(cfg).await.is_err());
    let mut cfg = config(&s);
    cfg.api_key = Some("s3cret".into());
    let store = QdrantStore::connect(cfg).await.unwrap();
    store.create_collection(&spec("docs")).await.unwrap();
    assert_eq!(store.count("docs", &Filter::default()).await.unwrap(), 0);
    // Snapshot download (REST) carries the key too.
    let snap = store.create_snapshot("docs").await.unwrap();
    let out = dir.path().join("docs.snapshot");
    assert_eq!(store.download_snapshot("docs", &snap, &out).await.unwrap(), snap.size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_server_is_refused_with_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), ServerOptions { version: "1.12.4".into(), ..Default::default() }).await;
    let err = QdrantStore::connect(config(&s)).await.unwrap_err().to_string();
    assert!(err.contains("1.12.4") && err.contains(">= 1.19"), "{err}");
    let err = QdrantStore::connect(QdrantStoreConfig::new("not a url")).await.unwrap_err().to_string();
    assert!(err.contains("invalid Qdrant URL"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_persistent_ones_reported() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), ServerOptions::default()).await;
    let store = QdrantStore::connect(config(&s)).await.unwrap();
    store.create_collection(&spec("docs")).await.unwrap();
    store.upsert("docs", vec![conformance::point(1, [1.0, 0.0, 0.0, 0.0], &[], "go")]).await.unwrap();
    s.fail_next(2);
    assert_eq!(store.count("docs", &Filter::default()).await.unwrap(), 1, "two failures, third attempt succeeds");
    s.fail_next(3);
    let err = store.count("docs", &Filter::default()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable { store, .. } if store.contains("Qdrant")),
        "an outage is `unavailable`, naming the store: {err}"
    );
    s.fail_next(0);
    assert!(matches!(store.count("missing", &Filter::default()).await, Err(StoreError::CollectionNotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_download_and_recover_the_same_points() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), ServerOptions::default()).await;
    let store = QdrantStore::connect(config(&s)).await.unwrap();
    store.create_collection(&spec("docs")).await.unwrap();
    let pts: Vec<_> = (1..=50).map(|i| conformance::point(i, [1.0, i as f32, 0.0, 1.0], &[(i as u32, 1.0)], "rust")).collect();
    store.upsert("docs", pts.clone()).await.unwrap();
    let snap = store.create_snapshot("docs").await.unwrap();
    assert_eq!(store.list_snapshots("docs").await.unwrap().iter().map(|s| &s.name).collect::<Vec<_>>(), [&snap.name]);
    let file = dir.path().join("docs.snapshot");
    store.download_snapshot("docs", &snap, &file).await.unwrap();
    store.delete_collection("docs").await.unwrap();
    store.recover_snapshot("docs", &file).await.unwrap();
    let ids: Vec<_> = pts.iter().map(|p| p.id).collect();
    assert_eq!(store.retrieve("docs", &ids).await.unwrap(), pts, "recovered points are identical");
    assert_eq!(store.collection_info("docs").await.unwrap().properties["embedding_model"], "test");
    store.delete_snapshot("docs", &snap.name).await.unwrap();
    assert!(store.list_snapshots("docs").await.unwrap().is_empty());
    let missing = SnapshotInfo { name: "nope.snapshot".into(), size: 0, created_at: String::new(), checksum: None };
    let err = store.download_snapshot("docs", &missing, &dir.path().join("x")).await.unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");
    assert!(!dir.path().join("x").exists() && !dir.path().join("x.part").exists());
}


/// TLS: with the server's CA in `ca_cert` the client connects over https; without it the
/// certificate is refused. The certificate comes from the `openssl` command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca_and_refusal_without_it() {
    let dir = tempfile::tempdir().unwrap();
    // A private CA and a server certificate for localhost signed by it.
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ext.cnf"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir.path()).output().expect("openssl is installed (.ci/run installs it)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=aidocs test CA", "-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "server.csr"]);
    openssl(&["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "cert.pem"]);
    let (cert, key) = (p("cert.pem"), p("key.pem"));
    let tls = Some((std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()));
    let s = server(&dir.path().join("q"), ServerOptions { tls, ..Default::default() }).await;
    assert!(s.grpc_url.starts_with("https://localhost:"), "{}", s.grpc_url);
    let mut cfg = config(&s);
    cfg.ca_cert = Some(p("ca.pem"));
    let store = QdrantStore::connect(cfg).await.expect("connects over TLS with the CA");
    store.create_collection(&spec("docs")).await.unwrap();
    store.upsert("docs", vec![conformance::point(1, [1.0, 0.0, 0.0, 0.0], &[], "go")]).await.unwrap();
    assert_eq!(store.count("docs", &Filter::default()).await.unwrap(), 1);
    let mut cfg = config(&s);
    cfg.retry.attempts = 1;
    let err = QdrantStore::connect(cfg).await.unwrap_err().to_string();
    assert!(err.contains("cannot reach Qdrant"), "an unknown CA is refused: {err}");
}
