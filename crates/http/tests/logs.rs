//! Request ids and the `search_request` log event, captured from a real subscriber.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use axum::body::Body;
use axum::http::Request;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn search(id: Option<&str>) -> Request<Body> {
    let mut r = Request::post("/v1/search").header("content-type", "application/json");
    if let Some(id) = id {
        r = r.header("x-request-id", id);
    }
    r.body(Body::from(r#"{"query": "secret project codename", "collection": "logs"}"#)).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn request_ids_reach_responses_and_every_log_line() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let docs = tempfile::tempdir().unwrap();
    common::write_tree(docs.path(), &[("a.md", "# Alpha\n\nThe alpha section talks about codenames.\n")]);
    let data = tempfile::tempdir().unwrap();
    let engine = common::engine(data.path());
    let req = aidocs::IngestRequest { path: docs.path().into(), collection: "logs".into(), metadata: Default::default(), base_url: None };
    engine.ingest().directory(req, &aidocs::progress::NoProgress).await.unwrap();
    let app = aidocs_http::router(engine);

    // A client-sent id is honoured and echoed.
    let resp = app.clone().oneshot(search(Some("req-abc-123"))).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "req-abc-123");
    // Otherwise one is generated (a UUID).
    let resp = app.clone().oneshot(search(None)).await.unwrap();
    let generated = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&generated).unwrap().get_version_num(), 4);
    // Errors carry it too.
    let resp = app.clone().oneshot(Request::get("/nope").header("x-request-id", "r-404").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.headers()["x-request-id"].to_str().unwrap()), (404, "r-404"));

    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let events: Vec<&serde_json::Value> = lines.iter().filter(|l| l["event"] == "search_request").collect();
    assert_eq!(events.len(), 2, "one search_request event per search:\n{text}");
    let first = events[0];
    assert_eq!(first["span"]["request_id"], "req-abc-123", "{first}");
    assert_eq!(first["collection"], "logs");
    assert_eq!(first["mode"], "hybrid");
    assert_eq!(first["outcome"], "ok");
    assert!(first["hits"].as_u64().unwrap() >= 1 && first["search_ms"].as_f64().is_some(), "{first}");
    assert_eq!(events[1]["span"]["request_id"], generated.as_str());
    assert!(!text.contains("secret project codename"), "query text is not logged unless server.log_queries");
}
