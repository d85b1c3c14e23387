//! A real Qdrant server for tests: the `qdrant` binary started as a child process on free
//! loopback ports, its storage in a temporary directory, as one node or as a cluster in
//! Qdrant's distributed mode. The processes are killed when the value is dropped.
//!
//! The binary is `$AIDOCS_QDRANT_BIN`, else `../shared/tools/qdrant/qdrant` beside the
//! workspace (see its `SOURCE.md`); [`qdrant_binary`] says where it looked when it finds none.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to answer `/readyz` (and a cluster to elect a leader).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The Qdrant server binary, or a message naming every place that was tried.
pub fn qdrant_binary() -> Result<PathBuf, String> {
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os("AIDOCS_QDRANT_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(format!("$AIDOCS_QDRANT_BIN = {}", p.display()));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for p in [workspace.join("../shared/tools/qdrant/qdrant"), PathBuf::from("/work/shared/tools/qdrant/qdrant")] {
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p.display().to_string());
    }
    Err(format!(
        "no Qdrant server binary: set AIDOCS_QDRANT_BIN to a `qdrant` 1.19 executable (tried {})",
        tried.join(", ")
    ))
}

/// A plain HTTP client for a node's REST API (installs the process' TLS crypto provider
/// first, as reqwest is built without one).
pub fn http_client() -> reqwest::Client {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::new()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// Options for [`QdrantProcess::start`] and [`QdrantProcess::cluster`].
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    /// Require this `api-key` on every request.
    pub api_key: Option<String>,
}

/// One `qdrant` process: its ports, its storage directory and (while it runs) its child.
pub struct QdrantNode {
    pub http_port: u16,
    pub grpc_port: u16,
    /// The peer-to-peer port, in distributed mode.
    pub p2p_port: Option<u16>,
    dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl QdrantNode {
    /// The gRPC URL (what `QdrantStoreConfig::new` takes).
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// The REST URL (snapshot files, cluster state).
    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The node's directory: `storage/`, `snapshots/`, `tmp/` and `qdrant.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("qdrant.log")).unwrap_or_default()
    }

    fn spawn(&mut self, bin: &Path) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("qdrant.log"))?;
        let child = Command::new(bin)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL: no shutdown, no flush; what the process had not written is lost to it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let url = format!("{}/readyz", self.rest_url());
        let client = http_client();
        let start = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return Err(format!("qdrant exited with {status} before it was ready:\n{}", tail(&self.log())));
            }
            if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(format!("qdrant was not ready at {url} after {START_TIMEOUT:?}:\n{}", tail(&self.log())));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for QdrantNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A real Qdrant: one node, or several in one cluster. Dropping it kills every node and
/// removes their storage.
pub struct QdrantProcess {
    bin: PathBuf,
    root: PathBuf,
    pub nodes: Vec<QdrantNode>,
    pub api_key: Option<String>,
}

impl QdrantProcess {
    /// One node on free loopback ports, ready to serve.
    pub async fn start(opts: ProcessOptions) -> Result<Self, String> {
        let mut p = Self::new(opts.api_key)?;
        let node = p.node(None, None)?;
        p.nodes.push(node);
        p.nodes[0].wait_ready().await?;
        Ok(p)
    }

    /// `n` nodes in distributed mode: the first names its own peer URI, the others bootstrap
    /// from it. Returns once every node is ready and the cluster has `n` peers and a leader.
    pub async fn cluster(n: usize, opts: ProcessOptions) -> Result<Self, String> {
        let mut p = Self::new(opts.api_key)?;
        let first_p2p = free_port();
        let first = p.node(Some(first_p2p), None)?;
        p.nodes.push(first);
        p.nodes[0].wait_ready().await?;
        for _ in 1..n {
            let node = p.node(Some(free_port()), Some(first_p2p))?;
            p.nodes.push(node);
            p.nodes.last_mut().unwrap().wait_ready().await?;
        }
        p.wait_for_peers(0, n).await?;
        Ok(p)
    }

    fn new(api_key: Option<String>) -> Result<Self, String> {
        let bin = qdrant_binary()?;
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let root = std::env::temp_dir().join(format!("aidocs-qdrant-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        Ok(Self { bin, root, nodes: Vec::new(), api_key })
    }

    fn node(&self, p2p: Option<u16>, bootstrap: Option<u16>) -> Result<QdrantNode, String> {
        let dir = self.root.join(format!("node{}", self.nodes.len()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (http_port, grpc_port) = (free_port(), free_port());
        let d = dir.display();
        let mut env: Vec<(String, String)> = [
            ("QDRANT__SERVICE__HOST", "127.0.0.1".to_owned()),
            ("QDRANT__SERVICE__HTTP_PORT", http_port.to_string()),
            ("QDRANT__SERVICE__GRPC_PORT", grpc_port.to_string()),
            ("QDRANT__STORAGE__STORAGE_PATH", format!("{d}/storage")),
            ("QDRANT__STORAGE__SNAPSHOTS_PATH", format!("{d}/snapshots")),
            ("QDRANT__STORAGE__TEMP_PATH", format!("{d}/tmp")),
            ("QDRANT__TELEMETRY_DISABLED", "true".to_owned()),
            ("QDRANT__LOG_LEVEL", "WARN".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(k) = &self.api_key {
            env.push(("QDRANT__SERVICE__API_KEY".into(), k.clone()));
        }
        let mut args = Vec::new();
        if let Some(p2p) = p2p {
            env.push(("QDRANT__CLUSTER__ENABLED".into(), "true".into()));
            env.push(("QDRANT__CLUSTER__P2P__PORT".into(), p2p.to_string()));
            if let Some(b) = bootstrap {
                args.extend(["--bootstrap".to_owned(), format!("http://127.0.0.1:{b}")]);
            }
            args.extend(["--uri".to_owned(), format!("http://127.0.0.1:{p2p}")]);
        }
        let mut node = QdrantNode { http_port, grpc_port, p2p_port: p2p, dir, args, env, child: None };
        node.spawn(&self.bin).map_err(|e| format!("starting {}: {e}", self.bin.display()))?;
        Ok(node)
    }

    /// The first node (the only one of a single-node server).
    pub fn first(&self) -> &QdrantNode {
        &self.nodes[0]
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Start node `i` again on its old ports and storage, and wait until it is ready.
    pub async fn restart(&mut self, i: usize) -> Result<(), String> {
        let bin = self.bin.clone();
        let node = &mut self.nodes[i];
        node.kill();
        node.spawn(&bin).map_err(|e| format!("restarting {}: {e}", bin.display()))?;
        node.wait_ready().await
    }

    /// GET a REST path on node `i` (with the API key), as JSON.
    pub async fn rest_get(&self, i: usize, path: &str) -> Result<serde_json::Value, String> {
        let url = format!("{}{path}", self.nodes[i].rest_url());
        let mut req = http_client().get(&url);
        if let Some(k) = &self.api_key {
            req = req.header("api-key", k);
        }
        let resp = req.send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}: {body}"));
        }
        Ok(body)
    }

    /// Wait until node `i` sees `n` peers and a raft leader.
    pub async fn wait_for_peers(&self, i: usize, n: usize) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let state = self.rest_get(i, "/cluster").await;
            if let Ok(s) = &state {
                let peers = s["result"]["peers"].as_object().map_or(0, |p| p.len());
                let leader = s["result"]["raft_info"]["leader"].as_u64().is_some();
                if peers == n && leader {
                    return Ok(());
                }
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(format!("the cluster did not reach {n} peers with a leader: {state:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for QdrantProcess {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
