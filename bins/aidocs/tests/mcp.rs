//! `aidocs mcp` on stdio, as a coding agent starts it: a real MCP client (the official
//! Python SDK, PyPI `mcp`) spawns the binary, lists the tools, calls each read tool with
//! good and bad arguments; write tools are refused without `--allow-write` and run with it.

use std::path::Path;
use std::process::Command;

fn model_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").is_file(), "model missing: run `cargo xtask models`");
    dir
}

fn client(args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/http/tests/mcp_client.py");
    let out = Command::new("python3").arg(&script).args(args).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "the MCP client failed (pip install mcp; .ci/run does this):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default()).expect("one JSON line")
}

#[test]
fn python_sdk_client_over_stdio_read_only_and_with_writes() {
    let src = Path::new("/usr/share/doc/python3.11/html/tutorial");
    assert!(src.join("venv.html").is_file(), "needs Debian's python3.11-doc (.ci/run installs it)");
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for page in ["venv.html", "errors.html", "modules.html"] {
        std::fs::copy(src.join(page), docs.join(page)).unwrap();
    }
    let config = dir.path().join("aidocs.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n\n[embedding]\nmodel_dir = {:?}\n", dir.path().join("data"), model_dir()),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let base = "https://docs.python.org/3.11/tutorial";
    let out = Command::new(env!("CARGO_BIN_EXE_aidocs"))
        .args(["--config", config, "ingest", docs.to_str().unwrap(), "--base-url", base])
        .env_remove("CONFIG_TEMPLATE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = format!("{base}/venv.html");
    let bin = env!("CARGO_BIN_EXE_aidocs");

    let reader = client(&["stdio", "0", &page, "--", bin, "--config", config, "mcp"]);
    assert_eq!(reader["ok"], true, "{reader}");
    assert!(!reader["tools"].as_array().unwrap().iter().any(|t| t == "ingest_docs"), "{reader}");
    let writer = client(&["stdio", "1", &page, "--", bin, "--config", config, "mcp", "--allow-write"]);
    assert!(writer["tools"].as_array().unwrap().iter().any(|t| t == "sync_library"), "{writer}");
}

/// The same reading from the shell: `ingest --library --version`, `libraries`, `resolve`,
/// `show` (a section, a page) and `search --group-by page --max-tokens`.
#[test]
fn libraries_resolve_show_and_grouped_search_from_the_cli() {
    let src = Path::new("/usr/share/doc/python3.11/html/tutorial");
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(src.join("errors.html"), docs.join("errors.html")).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_aidocs"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .env("AIDOCS__EMBEDDING__MODEL_DIR", model_dir())
            .env_remove("CONFIG_TEMPLATE")
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let base = "https://docs.python.org/3.11/tutorial";
    ok(&["ingest", docs.to_str().unwrap(), "--library", "python", "--version", "3.11", "--base-url", base]);

    let libs = ok(&["libraries"]);
    assert!(libs.starts_with("python\tversions: 3.11\t1 pages"), "{libs}");
    assert!(ok(&["resolve", "python@>=3.10"]).contains("python@3.11"));
    let missing = run(&["resolve", "python@3.12"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stdout).contains("indexed: 3.11"), "{}", String::from_utf8_lossy(&missing.stdout));

    let section = ok(&["show", &format!("{base}/errors.html#handling-exceptions"), "--collection", "python"]);
    assert!(section.contains("Handling Exceptions") && section.contains("next: "), "{section}");
    let page = ok(&["show", &format!("{base}/errors.html"), "--collection", "python", "--max-tokens", "300"]);
    assert!(page.contains("read on with cursor"), "{page}");

    let grouped = ok(&["search", "what happens when an exception is not handled", "--collection", "python", "--group-by", "page", "--max-tokens", "400", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&grouped).unwrap();
    assert!(v["grouped"]["tokens"].as_u64().unwrap() <= 400, "{v}");
    assert!(!v["hits"].as_array().unwrap().is_empty());
    let bad = run(&["search", "x", "--max-tokens", "400"]);
    assert!(!bad.status.success(), "--max-tokens needs --group-by");
}

/// `aidocs mcp --server URL --api-key KEY`: the tools served from a running server's `/v1`
/// API (here an in-process server with auth on), driven by the Python SDK over stdio. A
/// reader sees the read tools only; with `--allow-write` and an admin key the write tools run
/// through the admin API; with `--allow-write` and a reader's key the server refuses them.
#[test]
fn python_sdk_client_over_stdio_in_front_of_a_running_server() {
    const KEY: &str = "mcp-remote-reader-key-0123456789";
    const ADMIN: &str = "mcp-remote-admin-key-0123456789a";
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for page in ["venv.html", "errors.html"] {
        std::fs::copy(Path::new("/usr/share/doc/python3.11/html/tutorial").join(page), docs.join(page)).unwrap();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let base = "https://docs.python.org/3.11/tutorial";
    let addr = rt.block_on(async {
        let source = aidocs::ConfigSource { template: Some("testing".into()), ..Default::default() };
        let (mut cfg, _) = aidocs::Config::load(&source).unwrap();
        cfg.data_dir = dir.path().join("data");
        cfg.embedding.model_dir = model_dir();
        cfg.auth.keys = vec![
            aidocs::config::ApiKey { name: "reader".into(), sha256: aidocs_http::hash_key(KEY), scopes: vec![aidocs::config::Scope::Search] },
            aidocs::config::ApiKey { name: "ops".into(), sha256: aidocs_http::hash_key(ADMIN), scopes: vec![aidocs::config::Scope::Admin] },
        ];
        let engine = aidocs::Engine::open(cfg).unwrap();
        let req = aidocs::IngestRequest { path: docs.clone(), collection: "docs".into(), metadata: Default::default(), base_url: Some(base.into()) };
        engine.ingest().directory(req, &aidocs::progress::NoProgress).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = aidocs_http::router(engine);
        tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap() });
        addr
    });
    let server = format!("http://{addr}");
    let bin = env!("CARGO_BIN_EXE_aidocs");
    let page = format!("{base}/venv.html");
    let seen = client(&["stdio", "0", &page, "--", bin, "mcp", "--server", &server, "--api-key", KEY]);
    assert_eq!(seen["ok"], true, "{seen}");
    assert!(!seen["tools"].as_array().unwrap().iter().any(|t| t == "ingest_docs"), "{seen}");
    let writer = client(&["stdio", "1", &page, "--", bin, "mcp", "--server", &server, "--api-key", ADMIN, "--allow-write"]);
    assert_eq!(writer["ok"], true, "{writer}");
    // The write tools listed to a reader's key: the server refuses each call (403).
    let err = remote_call(&server, KEY, "remove_docs", serde_json::json!({"library": "docs"}));
    assert!(err.contains("forbidden"), "{err}");
    let still = remote_call(&server, ADMIN, "list_libraries", serde_json::json!({}));
    assert!(still.contains("\"docs\""), "nothing was removed: {still}");
    let removed = remote_call(&server, ADMIN, "remove_docs", serde_json::json!({"library": "docs"}));
    assert!(removed.contains("removed library `docs`"), "{removed}");
    let gone = remote_call(&server, ADMIN, "list_libraries", serde_json::json!({}));
    assert!(!gone.contains("\"docs\""), "{gone}");
    drop(rt);
}

/// One tool call through `aidocs mcp --server URL --api-key KEY --allow-write`, spoken as
/// newline-delimited JSON-RPC on the child's stdio: the text of the tool's result (errors
/// included, prefixed with their code).
fn remote_call(server: &str, key: &str, tool: &str, arguments: serde_json::Value) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_aidocs"))
        .args(["mcp", "--server", server, "--api-key", key, "--allow-write"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
    for m in [init, initialized, call] {
        writeln!(stdin, "{m}").unwrap();
    }
    stdin.flush().unwrap();
    let mut answer = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["id"] == 2 {
            answer = Some(v["result"]["content"][0]["text"].as_str().unwrap_or_default().to_owned());
            break;
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    answer.expect("an answer to the tool call")
}
