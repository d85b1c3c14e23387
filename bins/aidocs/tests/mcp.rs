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
