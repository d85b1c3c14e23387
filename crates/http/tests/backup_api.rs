//! Backups through the engine and the admin API: create, list, verify, restore, prune,
//! drill; a corrupt archive answers 422 `backup_corrupt`; the server's scheduled run
//! falls back to a full backup without a base and applies retention; metrics count it.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::Engine;
use aidocs::progress::NoProgress;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(app: &axum::Router, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    let req = req.body(body.map_or(Body::empty(), |b| Body::from(b.to_string()))).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn engine(dir: &std::path::Path) -> Engine {
    let mut cfg = common::config(&dir.join("data"));
    cfg.backup.kind = aidocs::backup::BackupKind::Incremental;
    cfg.backup.keep_last = Some(1);
    cfg.backup.collections = vec!["docs".into()];
    cfg.backup.validate_queries = vec!["install the server".into()];
    Engine::open(cfg).unwrap()
}

async fn ingest(engine: &Engine, dir: &std::path::Path, files: &[(&str, &str)]) {
    let docs = dir.join("docs");
    common::write_tree(&docs, files);
    let req = aidocs::IngestRequest { path: docs, collection: "docs".into(), metadata: Default::default(), base_url: None };
    engine.ingest().directory(req, &NoProgress).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_routes_create_verify_restore_prune_and_drill() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    ingest(&engine, dir.path(), &[("install.md", "# Install\n\nInstall the server with cargo.\n"), ("tracing.md", "# Tracing\n\nExport spans over OTLP.\n")]).await;
    let app = aidocs_http::router(engine.clone());

    let (s, full) = call(&app, "POST", "/v1/admin/backups", Some(json!({"collection": "docs"}))).await;
    assert_eq!(s, 201, "{full}");
    assert_eq!((full["kind"].as_str(), full["points"].as_u64()), (Some("full"), Some(2)));
    let id = full["id"].as_str().unwrap().to_owned();
    let (s, v) = call(&app, "POST", "/v1/admin/backups", Some(json!({"collection": "docs", "type": "weekly"}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{v}");
    let (s, list) = call(&app, "GET", "/v1/admin/backups?collection=docs", None).await;
    assert_eq!((s, list["backups"].as_array().unwrap().len()), (200, 1), "{list}");
    let (s, v) = call(&app, "POST", &format!("/v1/admin/backups/{id}/verify"), None).await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = call(&app, "POST", "/v1/admin/backups/nope-1/verify", None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")), "{v}");

    // Restore with the configured validation query, switching an alias.
    let (s, r) = call(&app, "POST", &format!("/v1/admin/backups/{id}/restore"), Some(json!({"into": "docs_r", "switch_alias": "live"}))).await;
    assert_eq!(s, 200, "{r}");
    assert!(r["checks"].to_string().contains("1 validation queries returned hits"), "{r}");
    assert_eq!(engine.store().resolve("live").await.unwrap(), "docs_r");
    let (s, v) = call(&app, "POST", &format!("/v1/admin/backups/{id}/restore"), Some(json!({"into": "docs_r"}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("collection_exists")), "an existing target is refused: {v}");

    let (s, d) = call(&app, "POST", "/v1/admin/backups/drill", Some(json!({"collection": "docs"}))).await;
    assert_eq!((s, d["passed"].as_bool()), (200, Some(true)), "{d}");

    // A flipped byte: verify and restore answer 422 backup_corrupt naming the member.
    let archive = dir.path().join("data/backups").join(format!("{id}.tar"));
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[700] ^= 0x10;
    std::fs::write(&archive, bytes).unwrap();
    let (s, v) = call(&app, "POST", &format!("/v1/admin/backups/{id}/verify"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("backup_corrupt")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("batches/000000.zst"), "{v}");
    let (s, _) = call(&app, "POST", &format!("/v1/admin/backups/{id}/restore"), Some(json!({"into": "docs_bad"}))).await;
    assert_eq!(s, 422);
    assert!(engine.store().collection_info("docs_bad").await.is_err(), "nothing written");

    let (s, p) = call(&app, "POST", "/v1/admin/backups/prune", Some(json!({"keep_last": 5}))).await;
    assert_eq!((s, p["deleted"].as_array().unwrap().len()), (200, 0), "{p}");
    let metrics = engine.metrics().encode().unwrap();
    assert!(metrics.contains(r#"backups_total{kind="full",outcome="ok"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"restores_total{kind="drill",outcome="ok"} 1"#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_fall_back_to_full_then_go_incremental_and_apply_retention() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    ingest(&engine, dir.path(), &[("install.md", "# Install\n\nInstall the server with cargo.\n")]).await;
    let first = engine.backup().scheduled().await.unwrap();
    assert_eq!(first[0].kind, aidocs::backup::BackupKind::Full, "no base yet: full");
    ingest(&engine, dir.path(), &[("tracing.md", "# Tracing\n\nExport spans over OTLP.\n")]).await;
    let second = engine.backup().scheduled().await.unwrap();
    assert_eq!((second[0].kind, second[0].records, second[0].base.as_deref()), (aidocs::backup::BackupKind::Incremental, 1, Some(first[0].id.as_str())));
    // keep_last = 1 keeps the newest incremental and, through it, its full base.
    let list = engine.backup().list(Some("docs")).await.unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let third = engine.backup().scheduled().await.unwrap();
    let list = engine.backup().list(Some("docs")).await.unwrap();
    assert_eq!(list.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), [first[0].id.as_str(), second[0].id.as_str(), third[0].id.as_str()], "the chain is kept whole");
}

/// The whole engine on `vector_store.kind = "qdrant"` (the real Qdrant server binary):
/// the startup check, ingest and search through config alone, then a native backup and
/// restore through the admin API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_runs_on_a_qdrant_server_and_takes_native_backups() {
    use aidocs_store::testkit::qdrant_process::{ProcessOptions, QdrantProcess};
    let dir = tempfile::tempdir().unwrap();
    let server = QdrantProcess::start(ProcessOptions { api_key: Some("k3y".into()) }).await.expect("the Qdrant server binary starts");
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.vector_store.kind = aidocs::config::StoreKind::Qdrant;
    cfg.vector_store.url = server.first().grpc_url();
    cfg.vector_store.rest_url = Some(server.first().rest_url());
    cfg.vector_store.api_key = Some("k3y".into());
    cfg.backup.validate_queries = vec!["install the server".into()];
    cfg.validate().unwrap();
    let engine = Engine::open(cfg.clone()).unwrap();
    assert!(engine.store().check().await.unwrap().starts_with("qdrant 1.19.0 at http://127.0.0.1:"));
    ingest(&engine, dir.path(), &[("install.md", "# Install\n\nInstall the server with the package manager, then start it.\n"), ("usage.md", "# Usage\n\nQuery the index over HTTP.\n")]).await;
    let docs = engine.store().resolve("docs").await.unwrap();
    let on_server = server.rest_get(0, &format!("/collections/{docs}")).await.unwrap();
    assert_eq!(on_server["result"]["points_count"], 2, "points went to the Qdrant server: {on_server}");
    let hits = engine.search(aidocs::SearchRequest::new("how do I install the server")).await.unwrap().hits;
    assert_eq!(hits[0].title, "Install");

    let app = aidocs_http::router(engine.clone());
    let (code, created) = call(&app, "POST", "/v1/admin/backups", Some(json!({"collection": "docs", "native": true}))).await;
    assert_eq!(code, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, list) = call(&app, "GET", "/v1/admin/backups", None).await;
    assert_eq!(list["native"][0]["id"], id.as_str());
    let (code, v) = call(&app, "POST", &format!("/v1/admin/backups/{id}/verify"), None).await;
    assert_eq!((code, v["sha256"].as_str().map(str::len)), (200, Some(64)), "{v}");
    let (code, r) = call(&app, "POST", &format!("/v1/admin/backups/{id}/restore"), Some(json!({"into": "docs_r", "switch_alias": "live"}))).await;
    assert_eq!(code, 200, "{r}");
    assert!(r["checks"].to_string().contains("validation queries returned hits"), "{r}");
    assert_eq!(engine.store().resolve("live").await.unwrap(), "docs_r");
    let (code, e) = call(&app, "POST", "/v1/admin/backups", Some(json!({"native": true, "type": "incremental"}))).await;
    assert_eq!((code, e["error"]["code"].as_str()), (400, Some("invalid_request")), "{e}");

    // A wrong API key stops the engine at its startup check, naming the setting.
    let mut bad = cfg;
    bad.vector_store.api_key = Some("nope".into());
    let err = Engine::open(bad).unwrap().store().check().await.unwrap_err().to_string();
    assert!(err.contains("QDRANT_API_KEY"), "{err}");
}
