//! The `aidocs` CLI as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn model_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").is_file(), "model missing: run `cargo xtask models`");
    dir
}

fn aidocs<S: AsRef<std::ffi::OsStr>>(data: &Path, args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aidocs"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("AIDOCS__EMBEDDING__MODEL_DIR", model_dir())
        .env_remove("CONFIG_TEMPLATE")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "should fail: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "stderr should mention `{needle}`: {err}");
}

#[test]
fn ingest_search_collections_and_errors() {
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("tokio.md"), "# Runtime\n\n## Spawning\n\nUse tokio::spawn to run a future on the runtime.\n").unwrap();
    std::fs::write(docs.path().join("serde.md"), "# Serde\n\nDerive Serialize and Deserialize for your structs.\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let docs_path = docs.path().to_str().unwrap();

    let summary = ok(&aidocs(d, &["ingest", docs_path, "--collection", "rs", "--set", "language=rust", "--set", "version=1.0"]));
    assert!(summary.contains("2 written"), "{summary}");
    let again: serde_json::Value = serde_json::from_str(&ok(&aidocs(d, &["ingest", docs_path, "--collection", "rs", "--json"]))).unwrap();
    assert_eq!(again["documents_unchanged"], 0, "metadata changed (no --set), so documents are rewritten");
    let third: serde_json::Value = serde_json::from_str(&ok(&aidocs(d, &["ingest", docs_path, "--collection", "rs", "--json"]))).unwrap();
    assert_eq!((third["documents_unchanged"].as_u64(), third["chunks_written"].as_u64()), (Some(2), Some(0)));

    let text = ok(&aidocs(d, &["search", "spawn a task on the runtime", "--collection", "rs", "--limit", "1"]));
    assert!(text.contains("tokio.md#spawning"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&aidocs(d, &["search", "derive serialization", "--collection", "rs", "--json", "--mode", "dense"]))).unwrap();
    let hit = &json["hits"][0];
    assert_eq!(hit["path"], "serde.md");
    for field in ["score", "path", "anchor", "url", "title", "heading_path", "snippet", "metadata"] {
        assert!(!hit[field].is_null(), "hit lacks `{field}`: {hit}");
    }
    let filtered: serde_json::Value = serde_json::from_str(&ok(&aidocs(
        d,
        &["search", "runtime", "--collection", "rs", "--json", "--filter", "language=python"],
    )))
    .unwrap();
    assert_eq!(filtered["hits"].as_array().unwrap().len(), 0);

    fails_with(&aidocs(d, &["search", "", "--collection", "rs"]), "query");
    fails_with(&aidocs(d, &["search", "x", "--collection", "rs", "--limit", "1000"]), "limit");
    fails_with(&aidocs(d, &["search", "x", "--collection", "rs", "--filter", "colour=red"]), "colour");
    fails_with(&aidocs(d, &["search", "x", "--collection", "ghost"]), "collection `ghost` not found");
    fails_with(&aidocs(d, &["search", "x", "--mode", "fuzzy"]), "fuzzy");
    fails_with(&aidocs(d, &["ingest", "/no/such/dir", "--collection", "rs"]), "/no/such/dir");
    fails_with(&aidocs(d, &["ingest", docs_path, "--collection", "rs", "--set", "colour=red"]), "colour");

    let list = ok(&aidocs(d, &["collections", "list"]));
    assert!(list.contains("rs\t2 points\t384 dims"), "{list}");
    let info: serde_json::Value = serde_json::from_str(&ok(&aidocs(d, &["collections", "info", "rs"]))).unwrap();
    assert_eq!(info["points"], 2);
    ok(&aidocs(d, &["collections", "delete", "rs"]));
    fails_with(&aidocs(d, &["collections", "info", "rs"]), "not found");
}

#[test]
fn config_show_validate_and_templates() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let shown: serde_json::Value = serde_json::from_str(&ok(&aidocs(d, &["--template", "production", "config", "show"]))).unwrap();
    assert_eq!(shown["server"]["bind"], "0.0.0.0:8000");
    let out = aidocs(d, &["--template", "minimal-cost", "config", "validate"]);
    assert!(ok(&out).contains("personal-use"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("deprecated"));
    let cfg = d.join("bad.toml");
    std::fs::write(&cfg, "[search]\nmax_limt = 5\n").unwrap();
    fails_with(&aidocs(d, &["--config", cfg.to_str().unwrap(), "config", "validate"]), "max_limt");
    fails_with(&aidocs(d, &["--template", "huge", "config", "validate"]), "unknown config template `huge`");

    let list = ok(&aidocs(d, &["config", "templates"]));
    assert_eq!(list.lines().count(), 4, "{list}");
    assert!(list.lines().any(|l| l.starts_with("personal-use") && l.contains("minimal-cost")), "{list}");
    let old = d.join("old.toml");
    std::fs::write(&old, "template = \"minimal-cost\"\n[cache]\nbreaker_cooldown_ms = 500\n").unwrap();
    let out = ok(&aidocs(d, &["config", "migrate", old.to_str().unwrap()]));
    assert!(out.contains("`cache.breaker_cooldown_ms` -> `breaker.cooldown_ms`") && out.contains("+template = \"personal-use\""), "{out}");
    assert!(d.join("old.toml.bak").is_file());
    let shown: serde_json::Value = serde_json::from_str(&ok(&aidocs(d, &["--config", old.to_str().unwrap(), "config", "show"]))).unwrap();
    assert_eq!((shown["template"].as_str(), shown["breaker"]["cooldown_ms"].as_u64()), (Some("personal-use"), Some(500)));
    assert!(ok(&aidocs(d, &["config", "migrate", old.to_str().unwrap()])).contains("is current"));
    fails_with(&aidocs(d, &["config", "migrate", "/no/such.toml"]), "/no/such.toml");

    // Commands that need no config work with a broken one; those that need it say why.
    let broken = ["--config", cfg.to_str().unwrap()];
    for args in [&["config", "templates"][..], &["auth", "hash-key", "0123456789abcdef0123"], &["config", "migrate", old.to_str().unwrap()]] {
        ok(&aidocs(d, &[&broken[..], args].concat()));
    }
    fails_with(&aidocs(d, &[&broken[..], &["search", "x"]].concat()), "max_limt");
}

/// `config show` prints the resolved settings, environment fallbacks applied, and never a
/// secret.
#[test]
fn config_show_resolves_the_environment_and_redacts_secrets() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aidocs"))
        .args(["--data-dir", data.path().to_str().unwrap(), "config", "show"])
        .env_remove("CONFIG_TEMPLATE")
        .env("OPENAI_API_KEY", "sk-very-secret")
        .env("REDIS_URL", "redis://:hunter2@cache.internal:6379/0")
        .env("QDRANT_URL", "http://qdrant.internal:6334")
        .env("AIDOCS__VECTOR_STORE__API_KEY", "qdrant-secret")
        .env("ORT_DYLIB_PATH", data.path().join("no-libonnxruntime.so"))
        .output()
        .unwrap();
    let text = ok(&out);
    for secret in ["sk-very-secret", "hunter2", "qdrant-secret"] {
        assert!(!text.contains(secret), "`{secret}` is shown: {text}");
    }
    let shown: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(shown["embedding"]["openai"]["api_key"], "<redacted>", "OPENAI_API_KEY was applied, then hidden");
    assert_eq!(shown["vector_store"]["url"], "http://qdrant.internal:6334", "QDRANT_URL was applied");
    assert_eq!(shown["vector_store"]["api_key"], "<redacted>");
    let cache_url = shown["cache"]["url"].as_str().unwrap();
    assert!(cache_url.starts_with("redis://") && cache_url.contains("cache.internal:6379") && cache_url.contains("redacted"), "{cache_url}");
    assert_eq!(shown["embedding"]["provider"], "local", "auto, with no ONNX Runtime where ORT_DYLIB_PATH says, is candle");

    // With the model and the runtime that `cargo xtask models` fetched, auto is ONNX Runtime.
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let out = Command::new(env!("CARGO_BIN_EXE_aidocs"))
        .args(["--data-dir", data.path().to_str().unwrap(), "config", "show"])
        .env("ORT_DYLIB_PATH", models.join("onnxruntime/libonnxruntime.so.1.31.1"))
        .env("AIDOCS__EMBEDDING__ONNX_MODEL_DIR", models.join("all-MiniLM-L6-v2-int8"))
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(shown["embedding"]["provider"], "onnx");
}

/// `aidocs sources add | list | remove` on a config file: added entries keep the file's
/// comments, bad ones are refused with the file unchanged, and credentials added by hand
/// with `${ENV}` references are resolved, named by `list` and redacted by `config show`.
#[test]
fn sources_are_added_listed_and_removed_in_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("aidocs.toml");
    std::fs::write(&file, "# ops team\n[search]\ndefault_limit = 7\n").unwrap();
    let cfg = file.to_str().unwrap();
    let add = |args: &[&str]| aidocs(&data, &[&["--config", cfg, "sources", "add"], args].concat());
    let out = ok(&add(&["tokio", "https://docs.rs/tokio/latest/tokio/", "--collection", "rust", "--every", "6h", "--include", "/tokio/**"]));
    assert!(out.contains("added source `tokio` (every 6h"), "{out}");
    ok(&add(&["std", "https://doc.rust-lang.org/std/sitemap.xml", "--kind", "sitemap", "--collection", "rust", "--cron", "0 3 * * *"]));
    ok(&add(&["handbook", "https://github.com/example/handbook.git", "--kind", "git", "--collection", "rust", "--every", "1d", "--branch", "main", "--path", "docs"]));
    fails_with(&add(&["g2", "https://github.com/example/handbook.git", "--kind", "git", "--collection", "rust", "--every", "1d", "--scope", "https://x/"]), "`scope` is for web sources");
    fails_with(&add(&["w2", "https://x.example/", "--collection", "rust", "--every", "1d", "--branch", "main"]), "are for git sources");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# ops team\n") && text.contains("kind = \"sitemap\"") && text.contains("include = [\"/tokio/**\"]"), "{text}");
    assert!(text.contains("kind = \"git\"") && text.contains("branch = \"main\"") && text.contains("path = \"docs\""), "{text}");
    // Refused, file unchanged: a taken name, a bad period, a non-URL, no schedule, no --config.
    fails_with(&add(&["tokio", "https://x.example/", "--collection", "rust", "--every", "1h"]), "another source has this name");
    fails_with(&add(&["n", "https://x.example/", "--collection", "rust", "--every", "fortnight"]), "schedule");
    fails_with(&add(&["n", "not-a-url", "--collection", "rust", "--every", "1h"]), "http(s) URL");
    fails_with(&add(&["n", "https://x.example/", "--collection", "rust"]), "--every");
    fails_with(&aidocs(&data, &["sources", "add", "n", "https://x.example/", "--collection", "rust", "--every", "1h"]), "pass --config FILE");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    // Credentials by hand, from the environment.
    let std_entry = "schedule = \"0 3 * * *\"\n";
    assert!(text.contains(std_entry), "{text}");
    std::fs::write(&file, text.replacen(std_entry, &format!("{std_entry}\n[sources.auth]\nbearer = \"${{STD_DOCS_TOKEN}}\"\n"), 1)).unwrap();
    let with_env = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_aidocs")).args(["--data-dir", data.to_str().unwrap(), "--config", cfg]).args(args).env_remove("CONFIG_TEMPLATE").env("STD_DOCS_TOKEN", "tok-0a9f7c").output().unwrap()
    };
    let listed = ok(&with_env(&["sources", "list"]));
    assert!(listed.contains("tokio -> rust (every 6h") && listed.contains("std -> rust (0 3 * * *") && listed.contains("credentials: bearer"), "{listed}");
    assert!(listed.contains("last run: none yet") && listed.contains("next run: "), "{listed}");
    let shown = ok(&with_env(&["config", "show"]));
    assert!(!shown.contains("tok-0a9f7c") && shown.contains("<redacted>"), "{shown}");
    fails_with(&aidocs(&data, &["--config", cfg, "sources", "list"]), "${STD_DOCS_TOKEN}");

    ok(&with_env(&["sources", "remove", "tokio"]));
    fails_with(&with_env(&["sources", "remove", "tokio"]), "no source named `tokio`");
    let listed = ok(&with_env(&["sources", "list", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(v["sources"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!((v["sources"][0]["name"].as_str(), v["sources"][1]["kind"].as_str()), (Some("std"), Some("git")), "{v}");
}

#[test]
fn cache_admin_and_eval_errors() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    // A shared Redis cache, administered without opening the data dir.
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_aidocs"))
            .args(["--data-dir"])
            .arg(d)
            .args(args)
            .env("AIDOCS__CACHE__KIND", "redis")
            .env("AIDOCS__CACHE__URL", &url)
            .env("AIDOCS__CACHE__TIMEOUT_MS", "2000")
            .env("AIDOCS__CACHE__NAMESPACE", format!("aidocs-cli-test:{}:", std::process::id()))
            .output()
            .unwrap()
    };
    let stats: serde_json::Value = serde_json::from_str(&ok(&redis(&["cache", "stats"]))).unwrap();
    assert_eq!(stats["backend"], "tiered", "{stats}");
    assert!(ok(&redis(&["cache", "clear", "--kind", "search"])).contains("removed 0 cached entries (search)"));
    fails_with(&redis(&["cache", "clear", "--kind", "everything"]), "unknown cache kind `everything`");
    // Memory cache: nothing shared to administer, but the commands answer.
    assert!(ok(&aidocs(d, &["cache", "stats"])).contains("\"backend\": \"memory\""));
    // Eval input errors name what is wrong.
    fails_with(&aidocs(d, &["eval", "--dataset", "/nonexistent"]), "--dataset /nonexistent: not a directory");
    fails_with(&aidocs(d, &["eval", "--dataset", "/tmp", "--modes", "fast"]), "unknown eval mode `fast`");
    fails_with(&aidocs(d, &["eval", "--dataset", "/tmp", "--fusion", "rrf:x"]), "invalid fusion `rrf:x`");
    let empty = tempfile::tempdir().unwrap();
    fails_with(&aidocs(d, &["eval", "--dataset", empty.path().to_str().unwrap()]), "none of corpus.jsonl.gz, corpus.jsonl found");
    fails_with(&aidocs(d, &["search", "q", "--hyde", "maybe"]), "--hyde");
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[test]
fn deploy_blue_green_switches_the_alias_and_refuses_a_bad_build() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (v1, v2) = (tmp.path().join("v1"), tmp.path().join("v2"));
    write(&v1, &[("install.md", "# Install\n\nInstall the server with cargo.\n")]);
    write(&v2, &[("install.md", "# Install\n\nInstall the server with cargo.\n"), ("tracing.md", "# Tracing\n\nEnable request tracing to export spans over OTLP.\n")]);
    let queries = tmp.path().join("queries.txt");
    std::fs::write(&queries, "# one per line\ninstall the server\nexport spans\n").unwrap();

    let first: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["deploy", "blue-green", "--alias", "docs", "--source", v1.to_str().unwrap()]))).unwrap();
    assert_eq!(first["status"], "switched", "{first}");
    assert_eq!(first["blue"], serde_json::Value::Null);
    let q = queries.to_str().unwrap();
    fails_with(
        &aidocs(&data, &["deploy", "blue-green", "--alias", "docs", "--source", v2.to_str().unwrap(), "--validate-queries", q, "--min-top-score", "5"]),
        "failed validation",
    );
    let second: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["deploy", "blue-green", "--alias", "docs", "--source", v2.to_str().unwrap(), "--validate-queries", q, "--max-point-change", "2"]))).unwrap();
    assert_eq!(second["status"], "switched", "{second}");
    assert_eq!(second["blue"], first["green"]);
    let hits = ok(&aidocs(&data, &["search", "export spans over OTLP", "--collection", "docs", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&hits).unwrap();
    assert_eq!(v["collection"], second["green"], "the alias serves green");
    assert_eq!(v["hits"][0]["path"], "tracing.md");
    fails_with(&aidocs(&data, &["deploy", "blue-green", "--alias", "docs", "--source", "/no/such/dir"]), "/no/such/dir");
}

#[test]
fn canary_commands_drive_a_running_server() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, _engine) = rt.block_on(async {
        let mut cfg = aidocs::Config::default();
        cfg.data_dir = tmp.path().join("server-data");
        cfg.embedding.model_dir = model_dir();
        let engine = aidocs::Engine::open(cfg).unwrap();
        for (name, text) in [("docs_v1", "# One\n\nFirst build.\n"), ("docs_v2", "# Two\n\nSecond build.\n")] {
            let src = tmp.path().join(name);
            write(&src, &[("a.md", text)]);
            let req = aidocs::IngestRequest { path: src, collection: name.into(), metadata: Default::default(), base_url: None };
            engine.ingest().directory(req, &aidocs::progress::NoProgress).await.unwrap();
        }
        engine.store().set_alias("docs", "docs_v1").await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = aidocs_http::router(engine.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, engine)
    });
    let server = format!("http://{addr}");
    let data = tmp.path().join("cli-data");
    let canary = |args: &[&str]| {
        let mut all = vec!["canary", "--server", server.as_str()];
        all.extend_from_slice(args);
        aidocs(&data, &all)
    };
    let started: serde_json::Value = serde_json::from_str(&ok(&canary(&["start", "--alias", "docs", "--collection", "docs_v2", "--id", "c1"]))).unwrap();
    assert_eq!(started["plan"]["stages"].as_array().unwrap().len(), 4, "default stages: {started}");
    let status: serde_json::Value = serde_json::from_str(&ok(&canary(&["status", "c1"]))).unwrap();
    assert_eq!(status["stage_percentage"], 5);
    assert_eq!(status["arms"]["canary"]["requests"], 0);
    let paused: serde_json::Value = serde_json::from_str(&ok(&canary(&["pause", "c1"]))).unwrap();
    assert_eq!(paused["status"]["state"], "paused");
    fails_with(&canary(&["pause", "c1"]), "409 conflict");
    ok(&canary(&["resume", "c1"]));
    assert!(ok(&canary(&["list"])).contains("\"c1\""));
    let rolled: serde_json::Value = serde_json::from_str(&ok(&canary(&["rollback", "c1", "--reason", "cli test"]))).unwrap();
    assert!(rolled["status"]["reason"].as_str().unwrap().contains("cli test"), "{rolled}");
    fails_with(&canary(&["status", "nope"]), "404 not_found");
    let variants = tmp.path().join("variants.json");
    std::fs::write(&variants, r#"[{"id": "control", "weight": 0.5}, {"id": "dense", "weight": 0.5, "mode": "dense"}]"#).unwrap();
    let ab = |args: &[&str]| {
        let mut all = vec!["ab", "--server", server.as_str()];
        all.extend_from_slice(args);
        aidocs(&data, &all)
    };
    let created: serde_json::Value = serde_json::from_str(&ok(&ab(&["create", "--alias", "docs", "--id", "t1", "--variants", variants.to_str().unwrap()]))).unwrap();
    assert_eq!(created["status"], "running");
    let status: serde_json::Value = serde_json::from_str(&ok(&ab(&["status", "t1"]))).unwrap();
    assert_eq!(status["control"], "control");
    assert!(ok(&ab(&["list"])).contains("\"t1\""));
    ok(&ab(&["stop", "t1"]));
    fails_with(&ab(&["stop", "t1"]), "409 conflict");
    fails_with(&aidocs(&data, &["canary", "--server", "http://127.0.0.1:9", "list"]), "cannot reach aidocs-server");
    drop(rt);
}

#[test]
fn backup_create_list_verify_restore_drill_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let docs = tmp.path().join("docs");
    write(&docs, &[("install.md", "# Install\n\nInstall the server with cargo.\n"), ("tracing.md", "# Tracing\n\nEnable request tracing to export spans over OTLP.\n")]);
    ok(&aidocs(&data, &["ingest", docs.to_str().unwrap(), "--collection", "docs"]));

    let created: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["backup", "create", "--collection", "docs"]))).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!((created["kind"].as_str(), created["points"].as_u64()), (Some("full"), Some(2)), "{created}");
    let archive = data.join("backups").join(format!("{id}.tar"));
    assert!(archive.is_file(), "archive in the default backup.dest");
    let list = ok(&aidocs(&data, &["backup", "list"]));
    assert!(list.contains(&id) && list.contains("full"), "{list}");
    let verified: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["backup", "verify", &id]))).unwrap();
    assert_eq!(verified["ok"], true);
    {
        // While another process owns the data dir (a running server), list and verify
        // still work (they read only the repository); create says why it cannot.
        let _owner = aidocs_store::EdgeStore::open(aidocs_store::EdgeStoreConfig::new(&data)).unwrap();
        assert!(ok(&aidocs(&data, &["backup", "list"])).contains(&id));
        ok(&aidocs(&data, &["backup", "verify", &id]));
        fails_with(&aidocs(&data, &["backup", "create", "--collection", "docs"]), "locked");
    }

    let queries = tmp.path().join("queries.txt");
    std::fs::write(&queries, "install the server\n").unwrap();
    let restored: serde_json::Value = serde_json::from_str(&ok(&aidocs(
        &data,
        &["backup", "restore", &id, "--into", "docs_restored", "--switch-alias", "live", "--validate-queries", queries.to_str().unwrap()],
    )))
    .unwrap();
    assert_eq!(restored["collection"], "docs_restored", "{restored}");
    assert!(restored["checks"].to_string().contains("1 validation queries returned hits"), "{restored}");
    let hits: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["search", "export spans over OTLP", "--collection", "live", "--json"]))).unwrap();
    assert_eq!((hits["collection"].as_str(), hits["hits"][0]["path"].as_str()), (Some("docs_restored"), Some("tracing.md")));
    let drill: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["backup", "drill", "--collection", "docs"]))).unwrap();
    assert_eq!(drill["passed"], true, "{drill}");

    fails_with(&aidocs(&data, &["backup", "create", "--collection", "docs", "--type", "weekly"]), "weekly");
    fails_with(&aidocs(&data, &["backup", "create", "--collection", "ghost"]), "ghost");
    fails_with(&aidocs(&data, &["backup", "verify", "nope-123"]), "backup `nope-123` not found");
    fails_with(&aidocs(&data, &["backup", "restore", &id, "--into", "docs"]), "already exists");
    // A flipped byte: verify and restore refuse, naming the member.
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[700] ^= 0x01;
    std::fs::write(&archive, &bytes).unwrap();
    fails_with(&aidocs(&data, &["backup", "verify", &id]), "batches/000000.zst");
    fails_with(&aidocs(&data, &["backup", "restore", &id]), "corrupt");
    let list: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["collections", "list", "--json"]))).unwrap();
    assert_eq!(list["collections"].as_array().unwrap().len(), 2, "nothing restored from a corrupt archive: {list}");
}

#[test]
fn ingest_url_crawls_a_site_and_sync_recrawls_it_conditionally() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write(
        &site.join("docs"),
        &[
            ("index.html", "<html><head><title>Guide</title></head><body><h1>Guide</h1><p>Start here.</p><a href=\"install.html\">install</a> <a href=\"notes.md\">notes</a></body></html>"),
            ("install.html", "<html><head><title>Install</title></head><body><h1>Install</h1><p>Install the server with cargo.</p></body></html>"),
            ("notes.md", "# Notes\n\nExport spans over OTLP with request tracing.\n"),
        ],
    );
    let server = rt.block_on(aidocs_crawl::testkit::DocServer::start(site, std::time::Duration::ZERO));
    let data = tmp.path().join("data");
    let start = server.url("/docs/index.html");

    // 127.0.0.1 is internal: without --allow-host the crawl is refused, and says so.
    let out = aidocs(&data, &["ingest", &start, "--collection", "web"]);
    let text = ok(&out);
    assert!(text.contains("0 pages fetched") && text.contains("1 blocked"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"), "{}", String::from_utf8_lossy(&out.stderr));

    let first: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["ingest", &start, "--collection", "web", "--allow-host", "127.0.0.1", "--json"]))).unwrap();
    assert_eq!((first["documents_written"].as_u64(), first["crawl"]["pages_fetched"].as_u64()), (Some(3), Some(3)), "{first}");
    let hits: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["search", "export spans over OTLP", "--collection", "web", "--json"]))).unwrap();
    assert_eq!(hits["hits"][0]["url"].as_str().map(|u| u.starts_with(&server.url("/docs/notes.md"))), Some(true), "{hits}");
    // `sync` re-crawls the registered source (its allow-list included): all 304s.
    let again: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["sync", "--collection", "web", "--json"]))).unwrap();
    assert_eq!((again["crawl"]["not_modified"].as_u64(), again["chunks_written"].as_u64()), (Some(3), Some(0)), "{again}");

    let empty = tmp.path().join("urls.txt");
    std::fs::write(&empty, "# nothing\n").unwrap();
    fails_with(&aidocs(&data, &["ingest", "--urls", empty.to_str().unwrap(), "--collection", "web"]), "lists no URLs");
    fails_with(&aidocs(&data, &["ingest", &start, "--sitemap", &start]), "give one of");
    fails_with(&aidocs(&data, &["ingest", &start, "--include", "[", "--collection", "web"]), "--include pattern `[`");
    fails_with(&aidocs(&data, &["sync", "--collection", "ghost"]), "ghost");
}

/// `aidocs ingest URL --render chromium`: a site whose text only its script writes is
/// indexed, and the summary says how many pages the browser rendered.
#[test]
fn ingest_url_renders_a_javascript_site() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    aidocs_crawl::testkit::spa_site(&site);
    let server = rt.block_on(aidocs_crawl::testkit::DocServer::start(site, std::time::Duration::ZERO));
    let data = tmp.path().join("data");
    let start = server.url("/app/index.html");
    let plain = ok(&aidocs(&data, &["ingest", &start, "--collection", "shell", "--allow-host", "127.0.0.1"]));
    assert!(plain.contains("pages fetched, ") && !plain.contains("rendered"), "{plain}");
    let text = ok(&aidocs(&data, &["ingest", &start, "--collection", "web", "--allow-host", "127.0.0.1", "--render", "chromium"]));
    // The app's script also asks `localhost` (not allow-listed) for a secret: refused.
    assert!(text.contains("2 pages fetched, 2 rendered (") && !text.contains("(0 browser requests blocked)") && text.contains("2 written"), "{text}");
    let hits: serde_json::Value = serde_json::from_str(&ok(&aidocs(&data, &["search", "power dial reading before 88 mph", "--collection", "web", "--json"]))).unwrap();
    assert_eq!(hits["hits"][0]["anchor"], "tuning", "{hits}");
}

/// Every process below `pid` (by `/proc/*/stat`), the browser's included.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`: the name may hold spaces, so read after its `)`.
        let Some(ppid) = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok()) else { continue };
        parent_of.push((child, ppid));
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out.remove(0);
    out
}

/// `kill -9` of `aidocs ingest --render chromium` in the middle of a render (a page whose
/// script never lets it settle): the driver and the whole browser are gone soon after,
/// not left running.
#[test]
fn a_killed_render_leaves_no_browser_behind() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("busy.html"), "<html><body><p id=t>0</p><script>setInterval(function () { var t = document.getElementById('t'); t.textContent = String(Number(t.textContent) + 1); }, 50);</script></body></html>").unwrap();
    let server = rt.block_on(aidocs_crawl::testkit::DocServer::start(site, std::time::Duration::ZERO));
    let mut child = Command::new(env!("CARGO_BIN_EXE_aidocs"))
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(["ingest", &server.url("/busy.html"), "--collection", "web", "--allow-host", "127.0.0.1", "--render", "chromium"])
        .env("AIDOCS__EMBEDDING__MODEL_DIR", model_dir())
        .env("AIDOCS__CRAWL__RENDER_TIMEOUT_MS", "120000")
        .env_remove("CONFIG_TEMPLATE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let comm = |p: u32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
    // Wait (up to a minute) for the browser to be running below aidocs.
    let mut below = Vec::new();
    for _ in 0..600 {
        below = descendants(child.id());
        if below.iter().any(|p| comm(*p).contains("chrom") && !comm(*p).contains("chromedriver")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(below.iter().any(|p| comm(*p).contains("chromedriver")), "the driver runs: {:?}", below.iter().map(|p| comm(*p)).collect::<Vec<_>>());
    assert!(below.len() >= 3, "the browser runs: {:?}", below.iter().map(|p| comm(*p)).collect::<Vec<_>>());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let below = descendants(child.id());
    println!("below aidocs before kill -9: {:?}", below.iter().map(|p| comm(*p).trim().to_owned()).collect::<Vec<_>>());
    child.kill().unwrap();
    child.wait().unwrap();
    let alive = |p: &u32| std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| !s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')));
    let mut left = below.clone();
    for _ in 0..100 {
        left.retain(alive);
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(left.is_empty(), "still running after aidocs was killed: {:?}", left.iter().map(|p| comm(*p)).collect::<Vec<_>>());
}

#[test]
fn migrate_copies_a_collection_between_data_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let docs = tmp.path().join("docs");
    write(&docs, &[("install.md", "# Install\n\nInstall the server with cargo.\n"), ("tracing.md", "# Tracing\n\nExport spans over OTLP.\n")]);
    ok(&aidocs(&a, &["ingest", docs.to_str().unwrap(), "--collection", "docs"]));
    let report: serde_json::Value = serde_json::from_str(&ok(&aidocs(
        &a,
        &["migrate", "--from", a.to_str().unwrap(), "--to", b.to_str().unwrap(), "--collection", "docs", "--alias", "live"],
    )))
    .unwrap();
    assert_eq!((report["points"].as_u64(), report["resumed"].as_bool()), (Some(2), Some(false)), "{report}");
    let hits: serde_json::Value = serde_json::from_str(&ok(&aidocs(&b, &["search", "export spans", "--collection", "live", "--json"]))).unwrap();
    assert_eq!(hits["hits"][0]["path"], "tracing.md", "{hits}");
    fails_with(&aidocs(&a, &["migrate", "--from", a.to_str().unwrap(), "--to", a.to_str().unwrap(), "--collection", "docs"]), "same store");
    fails_with(&aidocs(&a, &["migrate", "--from", a.to_str().unwrap(), "--to", b.to_str().unwrap(), "--collection", "docs"]), "already exists");
}

/// `aidocs migrate` from a data dir to a real Qdrant server (named by a config file) and
/// back to another data dir: every copy answers the same search.
#[test]
fn migrate_moves_a_collection_to_a_real_qdrant_server_and_back() {
    use aidocs_store::testkit::qdrant_process::{ProcessOptions, QdrantProcess};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = rt.block_on(QdrantProcess::start(ProcessOptions::default())).expect("the Qdrant server binary starts");
    let tmp = tempfile::tempdir().unwrap();
    let (a, c) = (tmp.path().join("a"), tmp.path().join("c"));
    let docs = tmp.path().join("docs");
    write(&docs, &[("install.md", "# Install\n\nInstall the server with cargo.\n"), ("tracing.md", "# Tracing\n\nExport spans over OTLP.\n")]);
    ok(&aidocs(&a, &["ingest", docs.to_str().unwrap(), "--collection", "docs"]));
    let server = tmp.path().join("qdrant.toml");
    let (grpc, rest) = (q.first().grpc_url(), q.first().rest_url());
    std::fs::write(&server, format!("[vector_store]\nkind = \"qdrant\"\nurl = \"{grpc}\"\nrest_url = \"{rest}\"\n")).unwrap();
    let (a_s, c_s, server_s) = (a.to_str().unwrap(), c.to_str().unwrap(), server.to_str().unwrap());
    let report: serde_json::Value =
        serde_json::from_str(&ok(&aidocs(&a, &["migrate", "--from", a_s, "--to", server_s, "--collection", "docs", "--alias", "live"]))).unwrap();
    assert_eq!(report["points"].as_u64(), Some(2), "{report}");
    let search = |data: &Path, config: Option<&str>| -> serde_json::Value {
        let mut args = config.map(|c| vec!["--config", c]).unwrap_or_default();
        args.extend(["search", "export spans", "--collection", "live", "--json"]);
        serde_json::from_str(&ok(&aidocs(data, &args))).unwrap()
    };
    assert_eq!(search(&a, Some(server_s))["hits"][0]["path"], "tracing.md", "from the Qdrant server");
    ok(&aidocs(&a, &["migrate", "--from", server_s, "--to", c_s, "--collection", "live", "--into", "docs", "--alias", "live"]));
    assert_eq!(search(&c, None)["hits"][0]["path"], "tracing.md", "back in a data dir");
    fails_with(&aidocs(&a, &["migrate", "--from", a_s, "--to", server_s, "--collection", "docs"]), "already exists");
}

#[test]
fn profile_samples_a_running_server_one_at_a_time_and_needs_the_admin_scope() {
    use aidocs::config::{ApiKey, Scope};
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (addr, load) = rt.block_on(async {
        let mut cfg = aidocs::Config::default();
        cfg.data_dir = tmp.path().join("server-data");
        cfg.embedding.model_dir = model_dir();
        cfg.auth.keys = vec![
            ApiKey {
                name: "ops".into(),
                sha256: aidocs_http::hash_key("admin-key-0123456789"),
                scopes: vec![Scope::Admin],
            },
            ApiKey {
                name: "reader".into(),
                sha256: aidocs_http::hash_key("search-key-0123456789"),
                scopes: vec![Scope::Search],
            },
        ];
        let engine = aidocs::Engine::open(cfg).unwrap();
        let src = tmp.path().join("docs");
        write(
            &src,
            &[(
                "a.md",
                "# Profiles\n\nA flame graph shows where the CPU time goes.\n",
            )],
        );
        let req = aidocs::IngestRequest {
            path: src,
            collection: "docs".into(),
            metadata: Default::default(),
            base_url: None,
        };
        engine
            .ingest().directory(req, &aidocs::progress::NoProgress)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, aidocs_http::router(engine.clone())).into_future());
        // Work for the profiler to see: searches (query embedding on candle) in a loop.
        let stop = stop.clone();
        let load = tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let q = aidocs::SearchRequest {
                    collection: Some("docs".into()),
                    ..aidocs::SearchRequest::new(format!("where does the CPU time go {n}"))
                };
                engine.search(q).await.unwrap();
                n += 1;
            }
            n
        });
        (addr, load)
    });
    let server = format!("http://{addr}");
    let data = tmp.path().join("cli-data");
    let out = tmp.path().join("profile.folded");
    let profile = |key: &str, extra: &[&str]| -> Vec<String> {
        ["profile", "--server", server.as_str(), "--api-key", key]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    // Refusals first: the wrong scope, no valid key, a duration out of bounds.
    fails_with(
        &aidocs(
            &data,
            &profile("search-key-0123456789", &["--seconds", "1"]),
        ),
        "403 forbidden",
    );
    fails_with(
        &aidocs(
            &data,
            &profile("wrong-key-000000000000", &["--seconds", "1"]),
        ),
        "401 unauthorized",
    );
    fails_with(
        &aidocs(&data, &profile("admin-key-0123456789", &["--seconds", "0"])),
        "seconds must be 1 to 60",
    );
    fails_with(
        &aidocs(
            &data,
            &profile("admin-key-0123456789", &["--seconds", "61"]),
        ),
        "400 invalid_request",
    );

    let args = profile(
        "admin-key-0123456789",
        &[
            "--seconds",
            "2",
            "--frequency",
            "199",
            "--format",
            "folded",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    let mut first = Command::new(env!("CARGO_BIN_EXE_aidocs"))
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let profiler = aidocs::obs::profile::Profiler::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !profiler.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the profile did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // One at a time: a second profile is refused at once, not queued.
    fails_with(
        &aidocs(
            &data,
            &profile("admin-key-0123456789", &["--seconds", "1", "--output", "-"]),
        ),
        "409 conflict",
    );
    let status = first.wait().unwrap();
    assert!(status.success(), "profile failed");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let searches = rt.block_on(load).unwrap();
    let folded = std::fs::read_to_string(&out).unwrap();
    let samples: u64 = folded
        .lines()
        .map(|l| {
            l.rsplit(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .expect("`stack count` lines")
        })
        .sum();
    assert!(
        samples >= 50,
        "{samples} samples in 2 s at 199 Hz while {searches} searches ran"
    );
    assert!(
        folded
            .lines()
            .any(|l| ["candle", "gemm", "aidocs::"].iter().any(|f| l.contains(f))),
        "the searches' work (aidocs, query embedding on candle and its gemm kernels) is in the profile:\n{}",
        &folded[..folded.len().min(2000)]
    );
    assert!(!profiler.is_running(), "the profiler is free again");
    // And the SVG flame graph, to standard output.
    let svg = ok(&aidocs(
        &data,
        &profile("admin-key-0123456789", &["--seconds", "1", "--output", "-"]),
    ));
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "{}",
        &svg[..svg.len().min(200)]
    );
    drop(rt);
}

/// A PDF from the command line: ingested with the rest of a folder, answered with its page
/// link; a damaged one is named on stderr and the run goes on. `--render` is refused where
/// it cannot apply, and an unknown renderer is named.
#[test]
fn pdfs_and_render_flags() {
    let docs = tempfile::tempdir().unwrap();
    std::fs::copy("/usr/share/doc/libtasn1-doc/libtasn1.pdf", docs.path().join("libtasn1.pdf")).expect("apt-get install libtasn1-doc");
    std::fs::write(docs.path().join("broken.pdf"), b"%PDF-1.5\n1 0 obj << /Type /Catalog").unwrap();
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let p = docs.path().to_str().unwrap();
    let out = aidocs(d, &["ingest", p, "--collection", "pdf"]);
    let summary = ok(&out);
    assert!(summary.contains("1 written"), "{summary}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.pdf") && err.contains("not a readable PDF"), "{err}");
    let text = ok(&aidocs(d, &["search", "decode a DER file from the command line", "--collection", "pdf", "--limit", "3"]));
    assert!(text.contains("libtasn1.pdf#page=10"), "{text}");

    fails_with(&aidocs(d, &["ingest", p, "--collection", "pdf", "--render", "chromium"]), "--render is for web sources");
    fails_with(&aidocs(d, &["ingest", "https://docs.example/", "--render", "firefox"]), "firefox");
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A Git repository from the command line: one ref (`--ref`), or every tag as its own
/// version (`--versions-from-tags`), side by side in one library; a second run writes
/// nothing; a pattern no tag matches is named.
#[test]
fn git_repositories_at_a_ref_and_tags_as_versions() {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path();
    git(repo, &["init", "-q"]);
    std::fs::create_dir_all(repo.join("docs")).unwrap();
    std::fs::write(repo.join("README.md"), "# Repo\n\nNot under docs/.\n").unwrap();
    std::fs::write(repo.join("docs/flags.md"), "# Flags\n\n## Startup\n\nStart the daemon with the --legacy-mode flag to keep the old wire format.\n").unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "one"]);
    git(repo, &["tag", "v1.9.0"]);
    std::fs::write(repo.join("docs/flags.md"), "# Flags\n\n## Startup\n\nStart the daemon with the --fast-start flag; the old wire format is gone.\n").unwrap();
    git(repo, &["commit", "-qam", "two"]);
    git(repo, &["tag", "v1.10.0"]);
    git(repo, &["tag", "nightly"]);
    let url = format!("file://{}", repo.display());
    let data = tempfile::tempdir().unwrap();
    let d = data.path();

    let one = ok(&aidocs(d, &["ingest", "--git", &url, "--ref", "v1.9.0", "--path", "docs", "--collection", "at-ref"]));
    assert!(one.starts_with("v1.9.0 at ") && one.contains("1 written"), "{one}");
    let text = ok(&aidocs(d, &["search", "how do I start the daemon", "--collection", "at-ref", "--limit", "1"]));
    assert!(text.contains("legacy-mode"), "{text}");

    let runs: serde_json::Value = serde_json::from_str(&ok(&aidocs(d, &["ingest", "--git", &url, "--path", "docs", "--versions-from-tags", "v*", "--library", "daemon", "--json"]))).unwrap();
    let refs: Vec<&str> = runs.as_array().unwrap().iter().map(|r| r["ref"].as_str().unwrap()).collect();
    assert_eq!(refs, ["v1.10.0", "v1.9.0"], "newest first, `nightly` not matched");
    assert!(runs.as_array().unwrap().iter().all(|r| r["report"]["documents_written"] == 1), "{runs}");
    // Newest by default; the older version on request.
    let newest: serde_json::Value = serde_json::from_str(&ok(&aidocs(d, &["search", "start the daemon flag", "--collection", "daemon", "--json"]))).unwrap();
    assert_eq!(newest["default_version"], "1.10.0", "{newest}");
    assert!(newest["hits"][0]["snippet"].as_str().unwrap().contains("fast-start"), "{newest}");
    let old = ok(&aidocs(d, &["search", "start the daemon flag", "--collection", "daemon", "--filter", "version=1.9.0", "--limit", "1"]));
    assert!(old.contains("legacy-mode"), "{old}");

    let again: serde_json::Value = serde_json::from_str(&ok(&aidocs(d, &["ingest", "--git", &url, "--path", "docs", "--versions-from-tags", "v*", "--library", "daemon", "--json"]))).unwrap();
    assert!(again.as_array().unwrap().iter().all(|r| r["report"]["documents_written"] == 0 && r["report"]["documents_unchanged"] == 1), "{again}");
    fails_with(&aidocs(d, &["ingest", "--git", &url, "--versions-from-tags", "release-*", "--library", "daemon"]), "no tag of");
    fails_with(&aidocs(d, &["ingest", "--git", &url, "--ref", "v9", "--library", "daemon"]), "v9");
}
