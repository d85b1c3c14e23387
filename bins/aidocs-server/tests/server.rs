//! The real server binary on a real socket: ingest over HTTP, `kill -9`, restart, nothing lost;
//! a second server on the same data dir is refused; a restart warms the model and the store
//! before it says it is ready; SIGTERM drains and exits cleanly.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn model_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").is_file(), "model missing: run `cargo xtask models`");
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    addr: String,
    /// Every stderr line so far.
    log: Arc<Mutex<Vec<String>>>,
}

fn start(data: &Path) -> Server {
    start_with(data, &[])
}

fn start_with(data: &Path, env: &[(&str, &str)]) -> Server {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_aidocs-server"))
        .args(["--data-dir"])
        .arg(data)
        .args(["--bind", &addr])
        .env("AIDOCS__EMBEDDING__MODEL_DIR", model_dir())
        // Tests ingest over HTTP from their temporary directories.
        .env("AIDOCS__INGEST__ALLOWED_ROOTS", format!("[{:?}]", std::env::temp_dir().canonicalize().unwrap()))
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines.by_ref() {
        if line.unwrap().contains("listening") {
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| sink.lock().unwrap().push(l)));
    Server { child, addr, log }
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    http_with(addr, method, path, body, "")
}

/// `extra` is added to the request head verbatim (`"X-Request-ID: abc\r\n"`).
fn http_with(addr: &str, method: &str, path: &str, body: &str, extra: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = resp.split_once("\r\n\r\n").unwrap().1;
    // Chunked transfer is not used for these small JSON bodies; axum sends Content-Length.
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

#[test]
fn kill_9_after_api_ingest_loses_nothing_and_lock_is_exclusive() {
    let docs = tempfile::tempdir().unwrap();
    for i in 0..5 {
        std::fs::write(docs.path().join(format!("d{i}.md")), format!("# Doc {i}\n\nDurable content number {i}.\n\n## Part\n\nMore text {i}.\n")).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path());

    // A second server on the same data dir is refused with a clear error.
    let second = Command::new(env!("CARGO_BIN_EXE_aidocs-server"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--bind", &format!("127.0.0.1:{}", free_port())])
        .env("AIDOCS__EMBEDDING__MODEL_DIR", model_dir())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("locked by another aidocs process"), "{err}");

    let body = serde_json::json!({"path": docs.path(), "collection": "durable"}).to_string();
    let (status, report) = http(&server.addr, "POST", "/v1/documents", &body);
    assert_eq!(status, 200, "{report}");
    let chunks = report["chunks_written"].as_u64().unwrap();
    assert_eq!(chunks, 10);
    server.child.kill().unwrap(); // SIGKILL right after the acknowledgement
    server.child.wait().unwrap();

    let mut server = start(data.path());
    // The restarted server warms the model and the collection, then says it is ready.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http(&server.addr, "GET", "/health/ready", "");
        if status == 200 {
            break;
        }
        assert_eq!((status, body["status"].as_str()), (503, Some("warming")), "{body}");
        assert!(Instant::now() < deadline, "still warming after 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, detailed) = http(&server.addr, "GET", "/health/detailed", "");
    let warm = &detailed["warm_up"];
    assert_eq!(warm["state"], "done", "{detailed}");
    assert_eq!(warm["collections"], serde_json::json!(["durable"]), "{detailed}");
    assert!(warm["embed_ms"].as_f64().unwrap() > 0.0 && warm["skipped"] == serde_json::json!([]), "{detailed}");
    assert!(server.log.lock().unwrap().iter().any(|l| l.contains("warmed up")), "the warm-up is logged");
    let (status, info) = http(&server.addr, "GET", "/v1/collections/durable", "");
    assert_eq!(status, 200);
    assert_eq!(info["points"].as_u64(), Some(chunks), "acknowledged ingest lost after kill -9");
    let (status, found) = http(&server.addr, "POST", "/v1/search", r#"{"query": "durable content number 3", "collection": "durable", "limit": 3}"#);
    assert_eq!(status, 200);
    assert!(found["hits"].as_array().unwrap().iter().any(|h| h["path"] == "d3.md"), "{found}");

    // SIGTERM: graceful drain, exit status 0.
    let st = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(st.success());
    assert_clean_exit(&mut server.child, Duration::from_secs(30));
}

/// Wait for `child` to exit, at most `within`, and require exit status 0.
fn assert_clean_exit(child: &mut Child, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "server exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "server did not stop within {within:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_lets_an_in_flight_ingest_finish() {
    // Five real Python doc pages: several seconds of embedding, so the request is surely in
    // flight when SIGTERM arrives a moment after it was sent.
    let src = Path::new("/usr/share/doc/python3.11/html");
    assert!(src.join("tutorial/venv.html").is_file(), "needs Debian's python3.11-doc (.ci/run installs it)");
    let docs = tempfile::tempdir().unwrap();
    for page in ["tutorial/venv.html", "tutorial/controlflow.html", "tutorial/datastructures.html", "tutorial/classes.html", "library/json.html"] {
        let to = docs.path().join(page);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(page), to).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    // A drain deadline far above the ingest's time even on a loaded 2-core machine (the
    // deadline itself is `server.shutdown_timeout_ms`, 30 s by default).
    let generous = [("AIDOCS__SERVER__SHUTDOWN_TIMEOUT_MS", "300000"), ("AIDOCS__SERVER__ADMIN_TIMEOUT_MS", "300000")];
    let mut server = start_with(data.path(), &generous);
    let addr = server.addr.clone();
    let body = serde_json::json!({"path": docs.path(), "collection": "drain"}).to_string();
    let request = std::thread::spawn(move || http(&addr, "POST", "/v1/documents", &body));
    std::thread::sleep(Duration::from_millis(700));
    assert!(!request.is_finished(), "the ingest must still be running when SIGTERM is sent");
    assert!(Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap().success());
    let (status, report) = request.join().unwrap();
    assert_eq!(status, 200, "the in-flight request completes: {report}");
    assert!(report["chunks_written"].as_u64().unwrap() > 20, "{report}");
    assert_clean_exit(&mut server.child, Duration::from_secs(300));
    // Nothing acknowledged was lost: a new server sees every chunk.
    let server = start(data.path());
    let (_, info) = http(&server.addr, "GET", "/v1/collections/drain", "");
    assert_eq!(info["points"].as_u64(), report["chunks_written"].as_u64());
    drop(server);
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stand-in OTLP/HTTP collector (a real one is a remote service that cannot run here):
/// records `(path, body)` of every request and answers 200.
fn collector() -> (String, Arc<Mutex<Vec<(String, Vec<u8>)>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':')
                            && k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap();
                            }
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    sink.lock().unwrap().push((path, body));
                    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n").unwrap();
                }
            });
        }
    });
    (url, seen)
}

#[test]
fn request_tracing_logs_stage_spans_and_exports_them_over_otlp() {
    let (endpoint, exported) = collector();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("guide.md"), "# Install\n\nInstall the server with cargo, then start it.\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let env = [("ENABLE_REQUEST_TRACING", "true"), ("LOG_FORMAT", "json"), ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    let mut server = start_with(data.path(), &env);
    let body = serde_json::json!({"path": docs.path(), "collection": "docs"}).to_string();
    assert_eq!(http(&server.addr, "POST", "/v1/documents", &body).0, 200);
    let (status, _) = http_with(&server.addr, "POST", "/v1/search", r#"{"query": "install the server"}"#, "X-Request-ID: trace-me-1\r\n");
    assert_eq!(status, 200);
    // SIGTERM: the exporter flushes on the way out.
    assert!(Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap().success());
    assert_clean_exit(&mut server.child, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(200));

    // Logs: each stage span closes with its timings, inside the request's span.
    let log = server.log.lock().unwrap().clone();
    for stage in ["search.embed", "search.store_query"] {
        let line = log
            .iter()
            .find(|l| l.contains(&format!("\"name\":\"{stage}\"")) && l.contains("\"close\""))
            .unwrap_or_else(|| panic!("no close event of {stage} in:\n{}", log.join("\n")));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["time.busy"].is_string(), "{line}");
        assert!(line.contains("trace-me-1"), "the stage span is inside the request span: {line}");
    }
    // OTLP: the spans reached the collector as protobuf, with the service name.
    let exported = exported.lock().unwrap();
    let traces: Vec<&Vec<u8>> = exported.iter().filter(|(p, _)| p == "/v1/traces").map(|(_, b)| b).collect();
    assert!(!traces.is_empty(), "no POST /v1/traces; got {:?}", exported.iter().map(|(p, _)| p).collect::<Vec<_>>());
    let all: Vec<u8> = traces.into_iter().flatten().copied().collect();
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    for needle in [&b"search.embed"[..], b"search.store_query", b"aidocs-server", b"trace-me-1"] {
        assert!(has(needle), "exported spans lack {:?}", String::from_utf8_lossy(needle));
    }
}

/// A server on a non-loopback address with no API keys refuses to start, naming the fix;
/// `server.allow_unauthenticated = true` lets it (the shipped production stack used to serve
/// every route to anyone).
#[test]
fn a_public_bind_without_keys_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aidocs-server"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--bind", &format!("0.0.0.0:{}", free_port())])
        .env("AIDOCS__EMBEDDING__MODEL_DIR", model_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no API keys") && err.contains("allow_unauthenticated"), "{err}");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aidocs-server"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--bind", &format!("0.0.0.0:{port}")])
        .env("AIDOCS__EMBEDDING__MODEL_DIR", model_dir())
        .env("AIDOCS__SERVER__ALLOW_UNAUTHENTICATED", "true")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = lines.map_while(Result::ok).any(|l| l.contains("listening"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "an explicit opt-out starts");
}

/// The shipped nginx config in front of the real server: nginx appends the address it saw to
/// the client's `X-Forwarded-For`, so a client that writes its own header must still be
/// counted as itself. Before the fix (first hop) every spoofed header got a fresh budget.
#[test]
fn behind_the_shipped_nginx_a_client_cannot_spoof_its_rate_limit_identity() {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).is_file()).expect("nginx is needed (apt-get install nginx; .ci/run installs it)");
    let data = tempfile::tempdir().unwrap();
    let server = start_with(
        data.path(),
        &[("AIDOCS__SERVER__RATE_LIMIT_PER_MINUTE", "1"), ("AIDOCS__SERVER__RATE_LIMIT_BURST", "2"), ("AIDOCS__SERVER__TRUSTED_PROXIES", "[\"127.0.0.3\"]")],
    );
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("tls")).unwrap();
    std::fs::create_dir_all(t.path().join("logs")).unwrap();
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=aidocs.test", "-keyout"])
        .arg(t.path().join("tls/aidocs.key"))
        .arg("-out")
        .arg(t.path().join("tls/aidocs.crt"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success(), "openssl makes a throwaway certificate");
    let (http_port, https_port) = (free_port(), free_port());
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/aidocs.conf")).unwrap();
    // Only addresses and paths change; every proxy header is the shipped one.
    let conf = shipped
        .replace("/etc/nginx/tls/", &format!("{}/tls/", t.path().display()))
        .replace("server aidocs:8000", &format!("server {}", server.addr))
        .replace("listen 80;", &format!("listen 127.0.0.1:{http_port};"))
        .replace("listen 443 ssl", &format!("listen 127.0.0.1:{https_port} ssl"));
    assert!(conf.contains(&format!("127.0.0.1:{https_port} ssl")) && conf.contains("$proxy_add_x_forwarded_for"), "{conf}");
    std::fs::write(t.path().join("aidocs.conf"), conf).unwrap();
    let p = t.path().display();
    std::fs::write(
        t.path().join("nginx.conf"),
        format!(
            "pid {p}/nginx.pid;\nerror_log {p}/logs/error.log;\nevents {{}}\nhttp {{\n  access_log {p}/logs/access.log;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n  proxy_bind 127.0.0.3;\n  include {p}/aidocs.conf;\n}}\n"
        ),
    )
    .unwrap();
    let mut proxy = Command::new(nginx).arg("-p").arg(t.path()).arg("-c").arg(t.path().join("nginx.conf")).args(["-g", "daemon off;"]).spawn().unwrap();
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _proxy = Kill(&mut proxy);
    let curl = |xff: Option<&str>| -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sk", "-o", "-", "-w", "\n%{http_code}", "--max-time", "30"]);
        if let Some(x) = xff {
            cmd.args(["-H", &format!("X-Forwarded-For: {x}")]);
        }
        let out = cmd.arg(format!("https://127.0.0.1:{https_port}/v1/collections")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while curl(None).0 == 0 {
        assert!(Instant::now() < deadline, "nginx did not come up: {}", std::fs::read_to_string(t.path().join("logs/error.log")).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    }
    // nginx reaches the server from 127.0.0.3 (the trusted proxy); curl reaches nginx from
    // 127.0.0.1. The probe above used one of the two burst requests; the client stays
    // 127.0.0.1, whatever it writes in the header.
    let (code, body) = curl(Some("198.51.100.1"));
    assert_eq!(code, 200, "{body}");
    for spoof in ["198.51.100.2", "203.0.113.9, 198.51.100.3", "10.9.9.9"] {
        let (code, body) = curl(Some(spoof));
        assert_eq!(code, 429, "X-Forwarded-For: {spoof} must not buy a fresh budget: {body}");
        assert!(body.contains("rate_limited") && body.contains("127.0.0.1"), "{body}");
    }
}

/// Three servers sharing one Redis (each its own data dir, one backup destination) with a
/// backup every 2 s: every due backup is made by exactly one of them, as their logs and the
/// backup catalog both show.
#[test]
fn three_replicas_make_each_scheduled_backup_once() {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ns = format!("aidocs-test-sched-{}-{}:", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    let dest = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("a.md"), "# Backed up\n\nSomething worth keeping.\n").unwrap();
    let dest_s = dest.path().display().to_string();
    let env = [
        ("AIDOCS__ROLLOUT__STATE", "redis"),
        ("AIDOCS__CACHE__URL", redis.as_str()),
        ("AIDOCS__CACHE__NAMESPACE", ns.as_str()),
        ("AIDOCS__BACKUP__DEST", dest_s.as_str()),
        ("AIDOCS__BACKUP__SCHEDULE", "every 2s"),
        ("RUST_LOG", "info"),
    ];
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers: Vec<Server> = dirs.iter().map(|d| start_with(d.path(), &env)).collect();
    for s in &servers {
        let (status, body) = http(&s.addr, "POST", "/v1/documents", &serde_json::json!({"path": docs.path()}).to_string());
        assert_eq!(status, 200, "{body}");
    }
    std::thread::sleep(Duration::from_secs(9));
    for s in &mut servers {
        s.child.kill().unwrap();
        s.child.wait().unwrap();
    }
    // Each server's log: the due times it started, and the ones it finished.
    // `due_ms=1764...` in text logs (perhaps with colour codes), `"due_ms":1764...` in JSON:
    // the first run of 13 digits after the field's name.
    let due_of = |l: &str| l.split("due_ms").nth(1)?.split(|c: char| !c.is_ascii_digit()).find(|d| d.len() >= 13)?.parse::<u64>().ok();
    let mut started: BTreeMap<u64, usize> = BTreeMap::new();
    let mut done: BTreeMap<u64, usize> = BTreeMap::new();
    for s in &servers {
        for l in s.log.lock().unwrap().iter() {
            if let Some(due) = due_of(l) {
                if l.contains("scheduled run started") {
                    *started.entry(due).or_default() += 1;
                } else if l.contains("scheduled run done") {
                    *done.entry(due).or_default() += 1;
                }
            }
        }
    }
    assert!(done.len() >= 3, "about four due times in 9 s: started {started:?}, done {done:?}");
    assert!(started.values().all(|n| *n == 1) && done.values().all(|n| *n == 1), "each due time once: started {started:?}, done {done:?}");
    // The catalog: one backup per finished due time, never two.
    let catalog = std::fs::read_dir(dest.path()).unwrap().filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "tar")).count();
    assert_eq!(catalog, done.len(), "one backup per due time in {}", dest.path().display());
}

/// The due time in a scheduler log line: `due_ms=1764...` in text logs (perhaps with colour
/// codes), `"due_ms":1764...` in JSON: the first run of 13 digits after the field's name.
fn due_in(line: &str) -> Option<u64> {
    line.split("due_ms").nth(1)?.split(|c: char| !c.is_ascii_digit()).find(|d| d.len() >= 13)?.parse::<u64>().ok()
}

/// A leader killed with `kill -9` mid-run: two servers share Redis and a source whose
/// re-crawl is slow (a real doc server answering each request after 1.2 s). The one that
/// claims the due run is killed while it crawls; the other takes the same due run over once
/// the 3 s lease lapses (`claims=2` in its log), finishes it, and the shared status says so.
#[test]
fn a_killed_leaders_scheduled_run_is_taken_over_after_its_lease() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(site.path().join("docs")).unwrap();
    let links: String = (1..=4).map(|i| format!("<a href=\"p{i}.html\">p{i}</a> ")).collect();
    std::fs::write(site.path().join("docs/index.html"), format!("<html><body><h1>Slow docs</h1><p>Start.</p>{links}</body></html>")).unwrap();
    for i in 1..=4 {
        std::fs::write(site.path().join(format!("docs/p{i}.html")), format!("<html><body><h1>Page {i}</h1><p>Slow page number {i}.</p></body></html>")).unwrap();
    }
    let docs = rt.block_on(aidocs_crawl::testkit::DocServer::start(site.path().to_path_buf(), Duration::from_millis(1200)));
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ns = format!("aidocs-test-takeover-{}-{}:", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    let conf = tempfile::tempdir().unwrap();
    let file = conf.path().join("aidocs.toml");
    std::fs::write(
        &file,
        format!(
            "[rollout]\nstate = \"redis\"\nlease_s = 3\n\n[cache]\nurl = \"{redis}\"\nnamespace = \"{ns}\"\n\n[crawl]\nmin_delay_ms = 0\nallow_hosts = [\"127.0.0.1\"]\n\n\
             [[sources]]\nname = \"slow\"\ncollection = \"slow\"\nurls = [\"{}\"]\nschedule = \"every 10s\"\n",
            docs.url("/docs/index.html")
        ),
    )
    .unwrap();
    let config = file.display().to_string();
    let env = [("AIDOCS_CONFIG", config.as_str()), ("RUST_LOG", "info"), ("LOG_FORMAT", "json")];
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers: Vec<Server> = dirs.iter().map(|d| start_with(d.path(), &env)).collect();
    // A due time both schedulers wait for: after both started.
    let both_up = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    // Who claimed the next due run, and which.
    let find = |servers: &[Server], what: &str, due: Option<u64>| {
        servers.iter().position(|s| {
            s.log.lock().unwrap().iter().any(|l| l.contains(what) && l.contains("source:slow") && due_in(l).is_some_and(|d| due.map_or(d > both_up, |want| d == want)))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let (leader, due) = loop {
        if let Some(i) = find(&servers, "scheduled run started", None) {
            let log = servers[i].log.lock().unwrap().clone();
            let due = log.iter().filter(|l| l.contains("scheduled run started")).filter_map(|l| due_in(l)).find(|d| *d > both_up).expect("a due time in the log");
            break (i, due);
        }
        assert!(Instant::now() < deadline, "no run started in 40 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    // kill -9 mid-crawl: no renewal, no release.
    servers[leader].child.kill().unwrap();
    servers[leader].child.wait().unwrap();
    assert!(find(&servers[leader..=leader], "scheduled run done", Some(due)).is_none(), "the leader was killed before it finished");
    let survivor = 1 - leader;
    let deadline = Instant::now() + Duration::from_secs(40);
    while find(&servers[survivor..=survivor], "scheduled run done", Some(due)).is_none() {
        assert!(Instant::now() < deadline, "the due run was not taken over: {:#?}", servers[survivor].log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = servers[survivor].log.lock().unwrap().clone();
    let started = log.iter().find(|l| l.contains("scheduled run started") && due_in(l) == Some(due)).expect("the survivor started it");
    assert!(started.contains("\"claims\":2"), "taken over, not run afresh: {started}");
    let (status, body) = http(&servers[survivor].addr, "GET", "/v1/admin/sources", "");
    assert_eq!(status, 200, "{body}");
    let run = &body["sources"][0]["last_run"];
    assert!(run["state"] == "done" || run["state"] == "running", "{body}");
    let done_runs = log.iter().filter(|l| l.contains("scheduled run done") && due_in(l) == Some(due)).count();
    assert_eq!(done_runs, 1, "finished once");
    servers[survivor].child.kill().unwrap();
    servers[survivor].child.wait().unwrap();
}
