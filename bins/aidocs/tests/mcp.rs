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
