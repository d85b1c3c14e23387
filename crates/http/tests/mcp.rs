//! The MCP server at `/mcp` on a real listening server, driven by a real MCP client (the
//! official Python SDK, PyPI `mcp`; `.ci/run` installs it): initialize, the tool list and its
//! schemas, every read tool with good and bad arguments, an unknown tool, and the write
//! tools refused or run by the key's scope. Plus the HTTP auth matrix and the per-tool
//! metrics.

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::config::{ApiKey, Scope};
use aidocs::progress::NoProgress;
use std::net::SocketAddr;
use std::path::Path;

const SEARCH_KEY: &str = "mcp-reader-key-0123456789";
const ADMIN_KEY: &str = "mcp-admin-key-0123456789";
const BASE: &str = "https://docs.python.org/3.11/tutorial";

/// Run the Python client; its JSON line on success.
pub fn python_client(args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py");
    // Without `version`, search_docs searches the newest of the library's two versions.
    let out = std::process::Command::new("python3").arg(&script).args(args).env("EXPECT_NEWEST_VERSION", "3.12").output().expect("python3 runs");
    assert!(
        out.status.success(),
        "the MCP client failed (pip install mcp; .ci/run does this):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default()).expect("one JSON line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_over_streamable_http_with_the_auth_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::copy_pages(&common::python_docs(), &["tutorial/venv.html", "tutorial/errors.html", "tutorial/modules.html"], &docs);
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.auth.keys = vec![
        ApiKey { name: "reader".into(), sha256: aidocs_http::hash_key(SEARCH_KEY), scopes: vec![Scope::Search] },
        ApiKey { name: "ops".into(), sha256: aidocs_http::hash_key(ADMIN_KEY), scopes: vec![Scope::Admin] },
    ];
    let engine = aidocs::Engine::open(cfg).unwrap();
    // Two versions side by side: the tutorial as 3.11, and its venv page again as 3.12.
    let v312 = dir.path().join("v312");
    common::copy_pages(&common::python_docs(), &["tutorial/venv.html"], &v312);
    for (root, version) in [(docs.join("tutorial"), "3.11"), (v312.join("tutorial"), "3.12")] {
        let metadata = aidocs::core::DocMetadata { version: Some(version.into()), ..Default::default() };
        let req = aidocs::IngestRequest { path: root, collection: "docs".into(), metadata, base_url: Some(BASE.into()) };
        engine.ingest().directory(req, &NoProgress).await.unwrap();
    }
    let app = aidocs_http::router(engine.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap() });
    let url = format!("http://{addr}/mcp");
    let page = format!("{BASE}/venv.html");

    // No key: the same 401 JSON as `/v1`.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = http.post(&url).header("accept", "application/json, text/event-stream").json(&init).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");

    // A search-scope key: read tools only; write tools refused.
    let (u, p) = (url.clone(), page.clone());
    let reader = tokio::task::spawn_blocking(move || python_client(&["http", &u, SEARCH_KEY, "0", &p])).await.unwrap();
    assert_eq!(reader["ok"], true, "{reader}");
    assert!(!reader["tools"].as_array().unwrap().iter().any(|t| t == "ingest_docs"), "{reader}");
    // An admin key: the write tools too.
    let (u, p) = (url.clone(), page.clone());
    let admin = tokio::task::spawn_blocking(move || python_client(&["http", &u, ADMIN_KEY, "1", &p])).await.unwrap();
    assert!(admin["tools"].as_array().unwrap().iter().any(|t| t == "remove_docs"), "{admin}");

    // Per-tool metrics, and `/mcp` counted like any route.
    let text = engine.metrics().encode().unwrap();
    let line = |needle: &str| text.lines().find(|l| l.starts_with(needle)).map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap());
    assert!(line(r#"mcp_tool_calls_total{outcome="ok",tool="search_docs"}"#).unwrap_or(0.0) >= 2.0, "{text}");
    assert!(line(r#"mcp_tool_calls_total{outcome="error",tool="search_docs"}"#).unwrap_or(0.0) >= 8.0, "{text}");
    assert!(line(r#"mcp_tool_duration_seconds_count{tool="get_page"}"#).unwrap_or(0.0) >= 4.0, "{text}");
    assert!(text.lines().any(|l| l.starts_with("http_requests_total{") && l.contains(r#"route="/mcp""#)), "{text}");
}

/// The MCP Inspector's CLI mode (npm `@modelcontextprotocol/inspector`, installed by
/// `cargo xtask ci` and `.ci/run` under `~/.cache/aidocs/npm`; `AIDOCS_MCP_INSPECTOR` names
/// another binary) lists the tools and calls `search_docs` against a running server. Its
/// CLI sends no headers, so this server runs with auth off: the read tools only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_inspector_cli_lists_the_tools_and_searches() {
    let inspector = std::env::var_os("AIDOCS_MCP_INSPECTOR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var("HOME").unwrap()).join(".cache/aidocs/npm/node_modules/.bin/mcp-inspector"));
    assert!(
        inspector.is_file(),
        "{} missing: npm install --prefix ~/.cache/aidocs/npm @modelcontextprotocol/inspector@0.15.0 (cargo xtask ci does this)",
        inspector.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::copy_pages(&common::python_docs(), &["tutorial/venv.html"], &docs);
    let engine = common::engine(&dir.path().join("data"));
    let req = aidocs::IngestRequest { path: docs.join("tutorial"), collection: "docs".into(), metadata: Default::default(), base_url: Some(BASE.into()) };
    engine.ingest().directory(req, &NoProgress).await.unwrap();
    let app = aidocs_http::router(engine);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap() });
    let url = format!("http://{addr}/mcp");
    let run = move |args: Vec<String>| {
        let out = std::process::Command::new(&inspector).args(["--cli", &url, "--transport", "http"]).args(args).output().expect("the inspector runs");
        assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON on stdout")
    };
    let list = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || run(vec!["--method".into(), "tools/list".into()])).await.unwrap()
    };
    let names: Vec<&str> = list["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["search_docs", "get_section", "get_page", "list_libraries", "resolve_library"], "{list}");
    // The inspector sends every argument as a string: counts are taken from strings too.
    let args: Vec<String> = ["--method", "tools/call", "--tool-name", "search_docs", "--tool-arg", "query=create a virtual environment", "--tool-arg", "max_tokens=300"].map(String::from).to_vec();
    let called = tokio::task::spawn_blocking(move || run(args)).await.unwrap();
    assert!(called.get("isError").is_none_or(|e| e == false), "{called}");
    let text = called["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("venv.html") && text.contains("id: "), "{text}");
}

/// `/mcp` under hostile input: JSON nested far past any parser's limit, a body past the
/// server's size limit, and clients that hang up mid-request or mid-answer. Each gets a
/// 4xx (or nothing, when the client is gone), and the server keeps answering tool calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mcp_requests_get_4xx_and_the_server_keeps_serving() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write_tree(&docs, &[("install.md", "# Install\n\nInstall the server with cargo.\n")]);
    let engine = aidocs::Engine::open(common::config(&dir.path().join("data"))).unwrap();
    let req = aidocs::IngestRequest { path: docs, collection: "docs".into(), metadata: Default::default(), base_url: None };
    engine.ingest().directory(req, &NoProgress).await.unwrap();
    let max_body = engine.config().server.max_body_bytes;
    let app = aidocs_http::router(engine);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap() });
    let url = format!("http://{addr}/mcp");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let post = |body: String| http.post(&url).header("accept", "application/json, text/event-stream").header("content-type", "application/json").body(body).send();
    let search = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "search_docs", "arguments": {"query": "install the server", "library": "docs"}}})
    .to_string();
    let still_serving = || async {
        let r = post(search.clone()).await.unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains("install.md"), "{text}");
    };
    still_serving().await;

    // Arguments nested 100,000 deep.
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"search_docs","arguments":{{"query":{}1{}}}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let r = post(deep).await.unwrap();
    assert!(r.status().is_client_error(), "deep nesting: {}", r.status());
    // A body past the limit. Declared by `Content-Length` (40 MB), it is refused before a
    // byte of it is read: only the head is sent, and the answer comes anyway. Sent chunked,
    // with no length, it is cut off while it streams, one byte past the limit (the whole of
    // what is sent is read, so the server's close is clean and the answer can be read).
    let answer = move |head: String, body: Vec<u8>| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        String::from_utf8_lossy(&resp).into_owned()
    };
    let head = |framing: String| format!("POST /mcp HTTP/1.1\r\nHost: x\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n{framing}\r\n\r\n");
    let resp = tokio::task::spawn_blocking(move || answer(head(format!("Content-Length: {}", 40 << 20)), Vec::new())).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 413"), "declared huge body: {resp}");
    assert!(resp.contains("payload_too_large") && resp.contains("server.max_body_bytes"), "{resp}");
    let mut chunked = format!("{:x}\r\n", max_body + 1).into_bytes();
    chunked.extend(std::iter::repeat_n(b'a', max_body + 1));
    let resp = tokio::task::spawn_blocking(move || answer(head("Transfer-Encoding: chunked".into()), chunked)).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 413"), "chunked huge body: {resp}");
    assert!(resp.contains("payload_too_large"), "{resp}");
    // Not JSON at all, and JSON that is not JSON-RPC.
    for junk in ["{", "[]", "{\"jsonrpc\":\"2.0\"}", "null"] {
        let r = post(junk.to_owned()).await.unwrap();
        assert!(r.status().is_client_error(), "{junk}: {}", r.status());
    }
    // A client that sends half its body and hangs up, and one that hangs up before reading
    // the answer.
    for cut in [true, false] {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let body = if cut { &search[..search.len() / 2] } else { search.as_str() };
        let len = search.len();
        write!(s, "POST /mcp HTTP/1.1\r\nHost: x\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n{body}").unwrap();
        drop(s);
    }
    still_serving().await;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}
