//! `cargo xtask bench load`: a real `aidocs-server` (release build) on 127.0.0.1 under `wrk`.
//!
//! Phase 1 holds exactly `server.max_concurrent_requests` requests in flight (wrk
//! connections plus one probe connection): every answer must be 2xx. Phase 2 offers four
//! times the measured capacity as a request rate (clients pause between requests); phase 3
//! four times the concurrency with no pauses at all. The excess must be shed with fast
//! 503s; the report compares accepted latency with phase 1. wrk drives the load and counts statuses; the probe, a separate keep-alive
//! client in this process, times each of its own requests by status, so accepted and
//! rejected latencies are measured apart, on the client side.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Questions about the Python tutorial (the corpus), spread so no two are alike.
const QUERIES: &[&str] = &[
    "how do I create a virtual environment",
    "read a file line by line",
    "what is a list comprehension",
    "handle an exception and clean up with finally",
    "define a class with an init method",
    "format strings with f-strings",
    "how do dictionaries work",
    "install packages with pip",
    "difference between tuples and lists",
    "import a module from a package",
    "write a generator function with yield",
    "default argument values in functions",
    "keyword arguments and *args",
    "how do I loop over two lists at once",
    "floating point arithmetic issues",
    "use the interactive interpreter",
    "raise a custom exception",
    "what does the with statement do",
    "sort a list by a key",
    "what are lambda expressions",
    "json serialization of python objects",
    "how to use the standard library math module",
    "slicing strings",
    "scope and namespaces in python",
];

const LUA: &str = r#"
local queries = {QUERIES}
-- Global: the main thread reads each thread's `counts` with thread:get.
counts = {}
local threads = {}
math.randomseed(os.time())
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  counts = {}
end
function request()
  local q = queries[math.random(#queries)]
  local body = '{"query": "' .. q .. '", "limit": 10}'
  return wrk.format("POST", "/v1/search", {["Content-Type"] = "application/json"}, body)
end
{DELAY_FN}
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, '"' .. k .. '": ' .. v) end
  io.write(string.format('WRK_RESULT {"requests": %d, "duration_us": %d, "errors_connect": %d, "errors_read": %d, "errors_timeout": %d, "p50_us": %d, "p99_us": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(parts, ", ")))
end
"#;

/// Concurrency limit of the server under test: two cores, each request embeds on one.
const LIMIT: usize = 4;
const PHASE: Duration = Duration::from_secs(20);

pub fn load(root: &Path, bin_dir: &Path) -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed: apt-get install wrk");
    }
    let work = bin_dir.join("bench-load");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let data = work.join("data");
    let corpus = Path::new(crate::PYTHON_DOCS).join("tutorial");
    let corpus = if corpus.is_dir() { corpus } else { root.join("docs") };
    eprintln!("bench load: ingesting {}", corpus.display());
    let env = [("AIDOCS__EMBEDDING__PROVIDER", "onnx"), ("AIDOCS__CACHE__KIND", "none")];
    crate::run(Command::new(bin_dir.join("aidocs")).envs(env).arg("--data-dir").arg(&data).arg("ingest").arg(&corpus).args(["--collection", "docs"]))?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Command::new(bin_dir.join("aidocs-server"))
        .envs(env)
        .env("AIDOCS__SERVER__MAX_CONCURRENT_REQUESTS", LIMIT.to_string())
        .env("LOG_LEVEL", "warn")
        .arg("--data-dir")
        .arg(&data)
        .args(["--bind", &addr])
        .stderr(Stdio::null())
        .spawn()
        .context("starting aidocs-server")?;
    let result = (|| {
        wait_ready(&addr)?;
        let script = work.join("search.lua");
        let list = QUERIES.iter().map(|q| format!("\"{q}\"")).collect::<Vec<_>>().join(", ");
        let lua = LUA.replace("{QUERIES}", &format!("{{{list}}}"));
        std::fs::write(&script, lua.replace("{DELAY_FN}", ""))?;
        eprintln!("bench load: warm-up");
        phase(&addr, &script, LIMIT - 1, Duration::from_secs(5))?;
        eprintln!("bench load: {LIMIT} in flight (at the limit)");
        let at_limit = phase(&addr, &script, LIMIT - 1, PHASE)?;
        // 4x the measured capacity as a request rate: each connection pauses between its
        // requests (clients that back off), so the offered rate, not the loop speed, is 4x.
        let capacity = at_limit.wrk["requests"].as_f64().unwrap_or(1.0) / (at_limit.wrk["duration_us"].as_f64().unwrap_or(1e6) / 1e6);
        let conns = 4 * LIMIT - 1;
        let delay_ms = (conns as f64 * 1000.0 / (4.0 * capacity)).round().max(1.0) as u64;
        let paced = work.join("search-paced.lua");
        std::fs::write(&paced, lua.replace("{DELAY_FN}", &format!("function delay() return {delay_ms} end")))?;
        eprintln!("bench load: 4x the capacity as a rate ({conns} connections pausing {delay_ms} ms)");
        let rate = phase(&addr, &paced, conns, PHASE)?;
        eprintln!("bench load: {} in flight without pauses (4x the limit)", 4 * LIMIT);
        let overload = phase(&addr, &script, conns, PHASE)?;
        report(&[("at the limit", &at_limit), ("4x rate (paced clients)", &rate), ("4x concurrency (tight loop)", &overload)]);
        if at_limit.non_2xx() > 0 {
            bail!("{} non-2xx answers at the concurrency limit", at_limit.non_2xx());
        }
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

fn wait_ready(addr: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(mut c) = Client::connect(addr)
            && c.get("/health/ready").is_ok_and(|(s, _)| s == 200) {
                return Ok(());
            }
        if Instant::now() > deadline {
            bail!("aidocs-server did not become ready on {addr}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// What one phase measured.
struct Phase {
    connections: usize,
    wrk: serde_json::Value,
    /// Probe latencies in ms by status.
    probe: Vec<(u16, f64)>,
}

impl Phase {
    fn wrk_status(&self, pred: impl Fn(u16) -> bool) -> u64 {
        let s = self.wrk["statuses"].as_object().cloned().unwrap_or_default();
        s.iter().filter(|(k, _)| k.parse().is_ok_and(&pred)).map(|(_, v)| v.as_u64().unwrap_or(0)).sum()
    }

    fn non_2xx(&self) -> u64 {
        let socket = ["errors_connect", "errors_read", "errors_timeout"].iter().map(|k| self.wrk[*k].as_u64().unwrap_or(0)).sum::<u64>();
        self.wrk_status(|s| !(200..300).contains(&s)) + self.probe.iter().filter(|(s, _)| !(200..300).contains(s)).count() as u64 + socket
    }

    fn probe_ms(&self, status: u16) -> Vec<f64> {
        let mut v: Vec<f64> = self.probe.iter().filter(|(s, _)| *s == status).map(|(_, ms)| *ms).collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn phase(addr: &str, script: &Path, connections: usize, dur: Duration) -> Result<Phase> {
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let (stop, addr) = (stop.clone(), addr.to_owned());
        std::thread::spawn(move || -> Result<Vec<(u16, f64)>> {
            let mut c = Client::connect(&addr)?;
            let mut out = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = format!(r#"{{"query": "{}", "limit": 10}}"#, QUERIES[i % QUERIES.len()]);
                i += 7;
                let t = Instant::now();
                let (status, _) = c.post("/v1/search", &body)?;
                out.push((status, t.elapsed().as_secs_f64() * 1e3));
            }
            Ok(out)
        })
    };
    let threads = connections.clamp(1, 2);
    let out = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &connections.to_string(), "-d", &format!("{}s", dur.as_secs()), "--timeout", "10s", "-s"])
        .arg(script)
        .arg(format!("http://{addr}"))
        .output()
        .context("running wrk")?;
    stop.store(true, Ordering::Relaxed);
    let probe = probe.join().map_err(|_| anyhow::anyhow!("probe thread panicked"))??;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("WRK_RESULT ")).with_context(|| format!("no result from wrk:\n{text}"))?;
    Ok(Phase { connections: connections + 1, wrk: serde_json::from_str(line)?, probe })
}

fn report(rows: &[(&str, &Phase)]) {
    println!("\n| phase | connections | wrk requests/s | wrk 2xx | wrk 503 | other | wrk p50 / p99 (all answers) | probe 200 p50 / p95 / p99 | probe 503 p50 / p99 (n) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, p) in rows {
        let secs = p.wrk["duration_us"].as_f64().unwrap_or(1.0) / 1e6;
        let ok = p.probe_ms(200);
        let shed = p.probe_ms(503);
        println!(
            "| {name} | {} | {:.1} | {} | {} | {} | {:.1} / {:.1} ms | {:.1} / {:.1} / {:.1} ms | {:.2} / {:.2} ms ({}) |",
            p.connections,
            p.wrk["requests"].as_f64().unwrap_or(0.0) / secs,
            p.wrk_status(|s| (200..300).contains(&s)),
            p.wrk_status(|s| s == 503),
            p.non_2xx() - p.wrk_status(|s| s == 503) - shed.len() as u64,
            p.wrk["p50_us"].as_f64().unwrap_or(0.0) / 1e3,
            p.wrk["p99_us"].as_f64().unwrap_or(0.0) / 1e3,
            pct(&ok, 0.5),
            pct(&ok, 0.95),
            pct(&ok, 0.99),
            pct(&shed, 0.5),
            pct(&shed, 0.99),
            shed.len(),
        );
    }
    let base = pct(&rows[0].1.probe_ms(200), 0.95);
    for (name, p) in &rows[1..] {
        println!(
            "{name}: accepted p95 / at-limit p95 = {:.2}; accepted 2xx/s {:.1}; rejected p99 {:.2} ms",
            pct(&p.probe_ms(200), 0.95) / base,
            p.wrk_status(|s| (200..300).contains(&s)) as f64 / (p.wrk["duration_us"].as_f64().unwrap_or(1e6) / 1e6),
            pct(&p.probe_ms(503), 0.99)
        );
    }
}

/// A minimal HTTP/1.1 keep-alive client for the probe. It reconnects when the server closes
/// the connection (it does after refusing a request whose body it did not read).
struct Client {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    closed: bool,
}

impl Client {
    fn connect(addr: &str) -> Result<Self> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self { addr: addr.to_owned(), writer: s.try_clone()?, reader: BufReader::new(s), closed: false })
    }

    fn get(&mut self, path: &str) -> Result<(u16, String)> {
        self.exchange(&format!("GET {path} HTTP/1.1\r\nHost: aidocs\r\n\r\n"))
    }

    fn post(&mut self, path: &str, body: &str) -> Result<(u16, String)> {
        self.exchange(&format!("POST {path} HTTP/1.1\r\nHost: aidocs\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()))
    }

    /// Send a request; when the connection turns out closed before any answer, reconnect
    /// and send it again (it never reached the server).
    fn exchange(&mut self, request: &str) -> Result<(u16, String)> {
        for attempt in 0..2 {
            if self.closed {
                *self = Self::connect(&self.addr)?;
            }
            let sent = self.writer.write_all(request.as_bytes());
            match sent.map_err(anyhow::Error::from).and_then(|()| self.read()) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) | Err(_) if attempt == 0 => self.closed = true,
                Ok(None) => bail!("connection closed before an answer"),
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// One response; `None` when the connection was closed before a status line.
    fn read(&mut self) -> Result<Option<(u16, String)>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let status: u16 = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).with_context(|| format!("bad status line {line:?}"))?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse()?;
                }
                if k.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close") {
                    self.closed = true;
                }
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body)?;
        Ok(Some((status, String::from_utf8_lossy(&body).into_owned())))
    }
}

/// Where `cargo build --release` puts the binaries.
pub fn release_dir() -> PathBuf {
    crate::target_dir().join("release")
}
