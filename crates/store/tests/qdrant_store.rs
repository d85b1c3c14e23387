//! QdrantStore against the real Qdrant server binary (`aidocs_store::testkit::qdrant_process`):
//! the conformance suite, collections it did not create, alias switches under a reader, the
//! API key, snapshots round trip and a server restart under retries. The stand-in
//! (`aidocs_store::testkit::qdrant_server`) serves the tests that need what a real server
//! cannot do on demand: its call log, an old version, injected `UNAVAILABLE` answers and TLS
//! with a throwaway CA; it also passes the conformance suite, so it answers as the real one.
//!
//! `AIDOCS_TEST_QDRANT_URL` (gRPC; `AIDOCS_TEST_QDRANT_API_KEY` if it needs one) runs the
//! suite against another server as well, a cluster say.

use aidocs_core::{CollectionSpec, Filter, NativeSnapshots, SnapshotInfo, StoreError, VectorStore};
use aidocs_store::qdrant::RetryPolicy;
use aidocs_store::testkit::qdrant_process::{ProcessOptions, QdrantProcess};
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

/// A real Qdrant server on free loopback ports, and a config for it.
async fn real(opts: ProcessOptions) -> (QdrantProcess, QdrantStoreConfig) {
    let q = QdrantProcess::start(opts).await.expect("the Qdrant server binary starts (see ../shared/tools/qdrant/SOURCE.md)");
    let mut cfg = QdrantStoreConfig::new(q.first().grpc_url());
    cfg.rest_url = Some(q.first().rest_url());
    cfg.api_key = q.api_key.clone();
    cfg.retry = RetryPolicy { attempts: 3, base: Duration::from_millis(10), max: Duration::from_millis(50) };
    (q, cfg)
}

fn spec(name: &str) -> CollectionSpec {
    CollectionSpec { name: name.into(), dims: 4, properties: [("embedding_model".to_owned(), "test".to_owned())].into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_store_passes_conformance_suite_on_a_real_server() {
    let (_q, cfg) = real(ProcessOptions::default()).await;
    let store = QdrantStore::connect(cfg).await.expect("connect");
    assert_eq!(store.server_version().as_deref(), Some("1.19.0"));
    conformance::run_all(&store, "conf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_in_passes_the_same_suite() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), ServerOptions::default()).await;
    let store = QdrantStore::connect(config(&s)).await.expect("connect");
    conformance::run_all(&store, "conf").await;
}

/// The suite against a server named by `AIDOCS_TEST_QDRANT_URL` (a cluster, a managed
/// Qdrant); nothing to do without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_server_passes_the_suite_when_named() {
    let Some(url) = std::env::var("AIDOCS_TEST_QDRANT_URL").ok().filter(|u| !u.is_empty()) else { return };
    let mut cfg = QdrantStoreConfig::new(url);
    cfg.api_key = std::env::var("AIDOCS_TEST_QDRANT_API_KEY").ok();
    let store = QdrantStore::connect(cfg).await.expect("connect");
    // A unique prefix, so a shared server keeps earlier runs' leftovers apart.
    let prefix = format!("aidocs_conf_{}", std::process::id());
    conformance::run_all(&store, &prefix).await;
}

/// A shared server also holds collections other tenants made (here: a plain REST create and
/// an alias to it): aidocs lists around them and refuses to read, delete or alias them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_aidocs_did_not_create_are_skipped_and_never_touched() {
    let (q, cfg) = real(ProcessOptions::default()).await;
    let http = aidocs_store::testkit::qdrant_process::http_client();
    let rest = q.first().rest_url();
    let put = http.put(format!("{rest}/collections/theirs")).json(&serde_json::json!({"vectors": {"size": 4, "distance": "Cosine"}}));
    assert!(put.send().await.unwrap().status().is_success());
    let alias = serde_json::json!({"actions": [{"create_alias": {"collection_name": "theirs", "alias_name": "their_alias"}}]});
    assert!(http.post(format!("{rest}/collections/aliases")).json(&alias).send().await.unwrap().status().is_success());

    let store = QdrantStore::connect(cfg).await.unwrap();
    store.create_collection(&spec("ours")).await.unwrap();
    let names: Vec<String> = store.list_collections().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["ours"], "the foreign collection is skipped, not an error");
    for name in ["theirs", "their_alias"] {
        let err = store.collection_info(name).await.unwrap_err();
        assert!(matches!(&err, StoreError::Foreign(n) if n == "theirs"), "{name}: {err}");
        assert!(err.to_string().contains("not created by aidocs"), "{err}");
    }
    assert!(matches!(store.delete_collection("theirs").await, Err(StoreError::Foreign(_))));
    assert!(matches!(store.set_alias("mine", "theirs").await, Err(StoreError::Foreign(_))));
    assert!(matches!(store.create_collection(&spec("theirs")).await, Err(StoreError::CollectionExists(_))));
    assert!(matches!(store.create_collection(&spec("their_alias")).await, Err(StoreError::CollectionExists(_))));
    let exists: serde_json::Value = http.get(format!("{rest}/collections/theirs")).send().await.unwrap().json().await.unwrap();
    assert_eq!(exists["status"], "ok", "still there: {exists}");
}

/// On the real server: 20 switches while a reader counts through the alias; it never fails
/// and always sees exactly one collection's points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_switches_on_a_real_server_never_leave_readers_without_the_alias() {
    let (_q, cfg) = real(ProcessOptions::default()).await;
    let store = QdrantStore::connect(cfg).await.unwrap();
    for (name, n) in [("blue", 1usize), ("green", 2)] {
        store.create_collection(&spec(name)).await.unwrap();
        let pts = (0..n).map(|i| conformance::point(10 * n as u128 + i as u128, [1.0, 0.0, 0.0, 0.0], &[(1, 1.0)], "python")).collect();
        store.upsert(name, pts).await.unwrap();
    }
    store.set_alias("live", "blue").await.unwrap();
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                seen.insert(store.count("live", &Filter::default()).await.expect("the alias always resolves"));
            }
            seen
        })
    };
    for i in 0..20 {
        store.set_alias("live", if i % 2 == 0 { "green" } else { "blue" }).await.expect("an existing alias moves");
    }
    let seen = reader.await.unwrap();
    assert!(seen.iter().all(|n| [1, 2].contains(n)), "{seen:?}");
    assert_eq!(store.resolve("live").await.unwrap(), "blue");
    assert_eq!(store.collection_info("live").await.unwrap().name, "blue");
}

/// The server restarts (SIGKILL, then the same storage) while the client keeps calling:
/// calls during the outage are `unavailable`, the retry budget rides out a short one, and
/// every acknowledged point is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_unavailable_then_serves_every_acknowledged_point() {
    let (mut q, mut cfg) = real(ProcessOptions::default()).await;
    cfg.retry = RetryPolicy { attempts: 2, base: Duration::from_millis(10), max: Duration::from_millis(20) };
    let store = QdrantStore::connect(cfg.clone()).await.unwrap();
    store.create_collection(&spec("docs")).await.unwrap();
    let pts: Vec<_> = (1..=40).map(|i| conformance::point(i, [1.0, i as f32, 0.0, 1.0], &[(i as u32, 1.0)], "rust")).collect();
    store.upsert("docs", pts.clone()).await.unwrap();
    q.kill(0);
    let err = store.count("docs", &Filter::default()).await.unwrap_err();
    assert!(matches!(&err, StoreError::Unavailable { store, .. } if store.contains("Qdrant")), "{err}");
    // A longer budget covers a restart that completes while the call is retrying.
    let mut patient = cfg.clone();
    patient.retry = RetryPolicy { attempts: 40, base: Duration::from_millis(50), max: Duration::from_millis(250) };
    let patient = QdrantStore::new(patient).unwrap();
    let call = tokio::spawn(async move { patient.count("docs", &Filter::default()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    q.restart(0).await.unwrap();
    assert_eq!(call.await.unwrap().expect("retried through the restart"), 40);
    let ids: Vec<_> = pts.iter().map(|p| p.id).collect();
    assert_eq!(store.retrieve("docs", &ids).await.unwrap(), pts, "acknowledged writes survive SIGKILL");
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
    let (_q, good) = real(ProcessOptions { api_key: Some("s3cret".into()) }).await;
    let mut cfg = good.clone();
    cfg.api_key = None;
    let err = QdrantStore::connect(cfg).await.unwrap_err().to_string();
    assert!(err.contains("api_key") && err.contains("QDRANT_API_KEY"), "{err}");
    let mut cfg = good.clone();
    cfg.api_key = Some("wrong".into());
    assert!(QdrantStore::connect(cfg).await.is_err());
    let store = QdrantStore::connect(good).await.unwrap();
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
    let (_q, cfg) = real(ProcessOptions::default()).await;
    let store = QdrantStore::connect(cfg).await.unwrap();
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
    let left = store.list_snapshots("docs").await.unwrap();
    assert!(left.is_empty(), "{left:?}");
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
