//! `cargo xtask bench`: every benchmark in one run, written up.
//!
//! `cargo xtask bench` (or `bench all`) runs the criterion suites (`cargo bench --workspace`:
//! embedding, store, chunking, caches, backup, crawl) and the end-to-end workloads of
//! [`http`] (ingest, HTTP throughput against concurrency with the cache off and on, HyDE
//! cost, overload, profiling cost), against real release binaries, Redis, the onnxruntime Python package
//! and a llama.cpp server. Each bench writes an [`aidocs_benchkit::Report`]; this module
//! collects them into one [`Run`] keyed by commit and host
//! (`docs/bench/runs/<commit>-<host>.json`), draws the figures (`docs/bench/*.svg`: latency
//! histograms, throughput against concurrency) and renders `docs/benchmarks.md`.
//! `bench report [RUN.json]` re-renders from a saved run without measuring. `bench --quick`
//! runs everything at 3,000 points with short phases and writes into
//! `<target>/bench-quick/` instead of `docs/`: a check that the pipeline works, not a
//! measurement.

pub mod http;
mod plot;

use aidocs_benchkit::{REPORT_DIR_ENV, Report};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Order of the sections in docs/benchmarks.md; suites not listed follow in name order.
const ORDER: &[&str] = &[
    "embed", "store", "qdrant", "scale", "chunking", "ingest", "pipeline", "cache", "http", "start", "serve", "hyde", "mcp", "overload", "profile",
    "backup", "crawl",
];

/// One `cargo xtask bench` run: where and when, and every suite's report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Run {
    pub commit: String,
    /// Uncommitted changes to tracked files when the run started.
    pub dirty: bool,
    pub host: String,
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub rustc: String,
    /// UTC, RFC 3339.
    pub date: String,
    pub duration_s: f64,
    pub reports: Vec<Report>,
}

pub fn main(root: &Path, args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--quick").collect();
    match args.first().map(|a| a.as_str()).unwrap_or("all") {
        "all" => all(root, quick),
        "load" => {
            crate::models(root)?;
            build_release()?;
            http::load(root, &http::release_dir())
        }
        "profile" => {
            crate::models(root)?;
            build_release()?;
            http::profile_only(root, &http::release_dir())
        }
        "mcp" => http::mcp_only(root, &bins_to_measure(root, quick)?),
        "start" => http::start_only(root, &bins_to_measure(root, quick)?),
        "serve" => http::serve_only(root, &bins_to_measure(root, quick)?),
        "ingest" => http::ingest_only(root, &bins_to_measure(root, quick)?),
        "criterion" => crate::run(crate::cargo().args(["bench", "--workspace"])),
        // The scale curve alone (10k, 100k, 1M points; `AIDOCS_BENCH_SCALE` for others).
        "scale" => crate::run(crate::cargo().args(["bench", "--workspace", "--bench", "scale"])),
        // The ingest pipeline against its embedder alone, in one process, on the same chunks.
        "pipeline" => {
            crate::models(root)?;
            crate::run(crate::cargo().args(["bench", "--workspace", "--bench", "pipeline"]))
        }
        "report" => {
            let path = match args.get(1) {
                Some(p) => PathBuf::from(p.as_str()),
                None => latest_run(root)?,
            };
            let run: Run = serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
                .with_context(|| format!("{} is not a bench run", path.display()))?;
            // A run saved as <docs>/bench/runs/X.json renders into <docs>.
            let docs = path.parent().and_then(Path::parent).and_then(Path::parent).filter(|d| d.join("bench/runs").is_dir());
            render(docs.unwrap_or(&root.join("docs")), &run, &path)
        }
        other => bail!("unknown bench `{other}` (all, load, profile, ingest, pipeline, mcp, start, serve, scale, criterion, report [RUN.json])"),
    }
}

/// The benches of `cargo bench --workspace`, each run once at 2,000 points in criterion's
/// test mode (debug build, part of `cargo xtask ci`): every suite must run and write its
/// report. Catches benches that no longer build or run; measures nothing.
pub fn smoke() -> Result<()> {
    let out = crate::target_dir().join("bench-smoke");
    let _ = std::fs::remove_dir_all(&out);
    crate::run(crate::cargo().args(["test", "--workspace", "--locked", "--bench", "*"]).env("AIDOCS_BENCH_POINTS", "2000").env(REPORT_DIR_ENV, &out))?;
    let suites: Vec<String> = collect(&out)?.into_iter().map(|r| r.suite).collect();
    let want = ["embed", "store", "qdrant", "scale", "chunking", "pipeline", "cache", "backup", "crawl"];
    if suites != want {
        bail!("bench smoke run: expected reports {want:?}, got {suites:?} in {}", out.display());
    }
    eprintln!("bench smoke run: {} reports", suites.len());
    Ok(())
}

/// The binaries a single workload measures: `AIDOCS_BENCH_BIN_DIR` when set (binaries
/// already built, e.g. a debug build for a check of the harness), else a fresh release
/// build (the figures of record). Fetches the models first.
fn bins_to_measure(root: &Path, quick: bool) -> Result<PathBuf> {
    http::QUICK.store(quick, std::sync::atomic::Ordering::Relaxed);
    crate::models(root)?;
    Ok(match std::env::var_os("AIDOCS_BENCH_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            build_release()?;
            http::release_dir()
        }
    })
}

fn build_release() -> Result<()> {
    crate::run(crate::cargo().args(["build", "--release", "-p", "aidocs-server", "-p", "aidocs-cli"]))
}

fn all(root: &Path, quick: bool) -> Result<()> {
    let started = Instant::now();
    http::QUICK.store(quick, std::sync::atomic::Ordering::Relaxed);
    // Quick runs write beside the build, never over the measured docs.
    let docs = if quick { crate::target_dir().join("bench-quick") } else { root.join("docs") };
    let date = sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]);
    let (commit, dirty) = commit(root);
    crate::models(root)?;
    http::require_wrk()?;
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    require_redis(&redis)?;
    if !Path::new(crate::PYTHON_DOCS).is_dir() {
        bail!("{} is missing: apt-get install python3.11-doc (the ingest, HTTP and crawl corpus)", crate::PYTHON_DOCS);
    }
    if !quick {
        http::require_serve_corpora()?;
    }
    let python = python_env()?;
    build_release()?;
    let llm = crate::LlmServer::start(root)?;
    let out = crate::target_dir().join("bench-report").join(commit.clone());
    let _ = std::fs::remove_dir_all(&out);
    let mut bench = crate::cargo();
    bench.args(["bench", "--workspace", "--bench", "*"]).env(REPORT_DIR_ENV, &out).env("AIDOCS_BENCH_PYTHON", &python).env("REDIS_URL", &redis);
    if quick {
        bench.args(["--", "--quick"]).env("AIDOCS_BENCH_POINTS", "3000");
    }
    crate::run(&mut bench)?;
    let bins = http::release_dir();
    let work = crate::target_dir().join("bench-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let (ingest, data) = http::ingest(root, &bins, &work)?;
    ingest.write_to(&out)?;
    http::sweep(&bins, &data, &work)?.write_to(&out)?;
    http::start(&bins, &data)?.write_to(&out)?;
    http::serve(root, &bins, &work)?.write_to(&out)?;
    http::hyde(&bins, &data, &llm.url)?.write_to(&out)?;
    http::mcp(&bins, &data)?.write_to(&out)?;
    http::overload(&bins, &data, &work)?.write_to(&out)?;
    http::profile(&bins, &data, &work)?.write_to(&out)?;
    drop(llm);
    let run = Run {
        commit,
        dirty,
        host: sh("hostname", &[]),
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: memory_gib(),
        rustc: sh("rustc", &["--version"]),
        date,
        duration_s: started.elapsed().as_secs_f64(),
        reports: collect(&out)?,
    };
    let dir = docs.join("bench/runs");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}-{}.json", run.commit, run.host));
    std::fs::write(&path, serde_json::to_vec_pretty(&run)?)?;
    eprintln!("wrote {}", path.display());
    render(&docs, &run, &path)
}

/// Every `<suite>.json` in `dir`, in [`ORDER`].
fn collect(dir: &Path) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "json") {
            reports.push(serde_json::from_slice::<Report>(&std::fs::read(&path)?).with_context(|| format!("{} is not a bench report", path.display()))?);
        }
    }
    sort(&mut reports);
    Ok(reports)
}

fn sort(reports: &mut [Report]) {
    let rank = |s: &str| ORDER.iter().position(|o| *o == s).unwrap_or(ORDER.len());
    reports.sort_by(|a, b| rank(&a.suite).cmp(&rank(&b.suite)).then(a.suite.cmp(&b.suite)));
}

/// Figures into `<docs>/bench/` and the write-up into `<docs>/benchmarks.md`.
fn render(docs: &Path, run: &Run, run_path: &Path) -> Result<()> {
    let figures = docs.join("bench");
    std::fs::create_dir_all(&figures)?;
    let rel = run_path.strip_prefix(docs).map(|p| p.display().to_string()).unwrap_or_else(|_| run_path.display().to_string());
    let md = markdown(run, &rel, &mut |name, draw| {
        let path = figures.join(format!("{name}.svg"));
        draw(&path)?;
        Ok(format!("bench/{name}.svg"))
    })?;
    let md = md + &browser_section(&figures.join("browser.json")).unwrap_or_default();
    std::fs::write(docs.join("benchmarks.md"), md)?;
    eprintln!("wrote {} and figures in {}", docs.join("benchmarks.md").display(), figures.display());
    Ok(())
}

/// The search page's time to first results, as the browser test measured it (saved with
/// `AIDOCS_BLESS=1` in `<docs>/bench/browser.json`; not part of the bench run, so it says
/// when it was measured), beside the same requests from a plain HTTP client.
fn browser_section(path: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let median = |k: &str| -> Option<f64> {
        let mut xs: Vec<f64> = v[k].as_array()?.iter().filter_map(|x| x.as_f64()).collect();
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied()
    };
    let (browser, plain) = (median("browser_ms")?, median("plain_ms")?);
    Some(format!(
        "## The search page in a browser\n\n\
         Measured by the browser test (`crates/http/tests/ui.rs`, {} build, {}) on {}, not in the run above: \
         time from navigation to the first results drawn for a shared link (`/?q=...`) whose search the server \
         answers from its cache, so the figure is the page's own cost. The baseline makes the same requests \
         (`/`, its script and style, `GET /v1/libraries`, `GET /v1/facets`, `POST /v1/search`) from a plain HTTP client. Medians of 5.\n\n\
         |  | ms | ms ÷ baseline |\n|---|---|---|\n\
         | the same requests from a plain client (baseline) | {plain:.1} | 1.00 |\n\
         | the page in the browser: load, script, libraries, search, draw | {browser:.0} | {:.1} |\n",

        v["build"].as_str().unwrap_or("?"),
        v["browser"].as_str().unwrap_or("a browser"),
        v["date"].as_str().unwrap_or("?"),
        browser / plain.max(1e-9),
    ))
}

type Draw<'a> = &'a dyn Fn(&Path) -> Result<()>;

/// The write-up of `run`; `figure(name, draw)` stores a figure and returns its link.
fn markdown(run: &Run, run_link: &str, figure: &mut dyn FnMut(&str, Draw) -> Result<String>) -> Result<String> {
    let mut md = format!(
        "# Benchmarks\n\n\
         Generated by `cargo xtask bench` on {} at commit {}{} on `{}`: {}, {} cores, {:.0} GiB, {}. \
         The run took {:.0} min. Every figure on this page comes from that one run. Each table's first row is its baseline, \
         measured in the same run, and its last column is the ratio to that baseline. Raw results (all runs are kept, keyed \
         by commit and host): [{run_link}]({run_link}).\n\n\
         Regenerate with `cargo xtask bench`. It needs wrk, Redis at `REDIS_URL`, python3 with pip and Debian's \
         python3.11-doc and postgresql-doc-15, and takes about {:.0} minutes on this machine. `cargo xtask bench report [RUN.json]` re-renders \
         this page from a saved run. Single suites: `cargo bench --workspace --bench NAME` (embed, query, chunking, cache, \
         backup, crawl), `cargo xtask bench load`, `cargo xtask bench scale`, `cargo xtask bench ingest`, `cargo xtask bench mcp`, `cargo xtask bench start` and `cargo xtask bench serve`. What the numbers mean for configuration: \
         [operators/tuning.md](operators/tuning.md).\n\n",
        run.date,
        run.commit,
        if run.dirty { " (with uncommitted changes)" } else { "" },
        run.host,
        run.cpu,
        run.cores,
        run.memory_gib,
        run.rustc,
        run.duration_s / 60.0,
        run.duration_s / 60.0,
    );
    for r in &run.reports {
        md.push_str(&r.to_markdown(2));
        let samples: Vec<(&str, usize, &[f64])> =
            r.samples.iter().map(|(k, s)| (k.as_str(), s.count.max(s.values.len()), s.values.as_slice())).filter(|(_, _, v)| !v.is_empty()).collect();
        if !samples.is_empty() {
            let unit = r.samples.values().next().map_or("ms", |s| s.unit.as_str());
            let title = format!("{}: latency", r.title);
            let link = figure(&format!("{}-latency", r.suite), &|p| plot::histogram(p, &title, unit, &samples))?;
            md.push_str(&format!("![{title}]({link})\n\n"));
        }
        for l in &r.lines {
            let link = figure(&l.name, &|p| plot::lines(p, &l.title, &l.x, &l.y, &l.series))?;
            md.push_str(&format!("![{}]({link})\n\n", l.title));
        }
    }
    Ok(md)
}

fn latest_run(root: &Path) -> Result<PathBuf> {
    let dir = root.join("docs/bench/runs");
    std::fs::read_dir(&dir)
        .with_context(|| format!("no saved runs in {}: run `cargo xtask bench`", dir.display()))?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .with_context(|| format!("no saved runs in {}", dir.display()))
}

fn require_redis(url: &str) -> Result<()> {
    let hostport = url.trim_start_matches("redis://").split('/').next().unwrap_or("").rsplit('@').next().unwrap_or("").to_owned();
    std::net::TcpStream::connect(&hostport).map(drop).with_context(|| format!("Redis is not reachable at {url} (the cache bench needs it; set REDIS_URL)"))
}

/// A virtualenv under the target dir with onnxruntime, numpy and tokenizers for the
/// embedding baseline; returns its python.
fn python_env() -> Result<PathBuf> {
    let venv = crate::target_dir().join("bench-venv");
    let python = venv.join("bin/python");
    let ready = || Command::new(&python).args(["-c", "import onnxruntime, numpy, tokenizers"]).output().is_ok_and(|o| o.status.success());
    if !ready() {
        crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        crate::run(Command::new(&python).args(["-m", "pip", "install", "-q", "onnxruntime==1.31.1", "numpy", "tokenizers"]))?;
    }
    if !ready() {
        bail!("{} cannot import onnxruntime, numpy and tokenizers", python.display());
    }
    Ok(python)
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd).args(args).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
}

fn commit(root: &Path) -> (String, bool) {
    let c = sh("git", &["-C", &root.display().to_string(), "rev-parse", "--short", "HEAD"]);
    let dirty = !sh("git", &["-C", &root.display().to_string(), "status", "--porcelain", "--untracked-files=no"]).is_empty();
    (if c.is_empty() { "unknown".into() } else { c }, dirty)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned())))
        .unwrap_or_else(|| "unknown CPU".into())
}

fn memory_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("MemTotal:").map(|r| r.trim().trim_end_matches("kB").trim().parse::<f64>().ok())).flatten())
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aidocs_benchkit::{LinePlot, Table};

    fn run() -> Run {
        let mut store = Report::new("store", "Store");
        let mut t = Table::new("dense", &[("p95 ms", 2)]).ratio_of(0);
        t.values("exact", &[20.0]).values("hnsw", &[2.0]);
        store.table(t).sample("exact_ms", "ms", vec![18.0, 20.0, 22.0]).sample("hnsw_ms", "ms", vec![1.5, 2.0, 2.5]);
        let mut http = Report::new("http", "HTTP");
        http.lines.push(LinePlot {
            name: "throughput-vs-concurrency".into(),
            title: "Throughput".into(),
            x: "in flight".into(),
            y: "req/s".into(),
            series: vec![("off".into(), vec![(1.0, 50.0), (2.0, 90.0)]), ("on".into(), vec![(1.0, 900.0), (2.0, 1700.0)])],
        });
        let mut reports = vec![http, store];
        sort(&mut reports);
        Run {
            commit: "abc1234".into(),
            dirty: false,
            host: "ci".into(),
            cpu: "cpu".into(),
            cores: 2,
            memory_gib: 24.0,
            rustc: "rustc 1.95.0".into(),
            date: "2026-11-29T00:00:00Z".into(),
            duration_s: 600.0,
            reports,
        }
    }

    #[test]
    fn markdown_has_every_table_figure_and_baseline_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let mut names = Vec::new();
        let md = markdown(&run(), "bench/runs/abc1234-ci.json", &mut |name, draw| {
            let path = dir.path().join(format!("{name}.svg"));
            draw(&path)?;
            let svg = std::fs::read_to_string(&path)?;
            assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{name} is an SVG");
            names.push(name.to_owned());
            Ok(format!("bench/{name}.svg"))
        })
        .unwrap();
        // ORDER puts store before http.
        assert!(md.find("## Store").unwrap() < md.find("## HTTP").unwrap(), "{md}");
        assert!(md.contains("| exact (baseline) | 20.00 | 1.00 |") && md.contains("| hnsw | 2.00 | 0.10 |"), "{md}");
        assert!(md.contains("at commit abc1234 on `ci`") && md.contains("(bench/runs/abc1234-ci.json)"), "{md}");
        assert_eq!(names, ["store-latency", "throughput-vs-concurrency"]);
        assert!(md.contains("![Store: latency](bench/store-latency.svg)") && md.contains("![Throughput](bench/throughput-vs-concurrency.svg)"));
    }

    #[test]
    fn runs_round_trip_and_collect_reads_reports_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let r = run();
        for rep in &r.reports {
            rep.write_to(dir.path()).unwrap();
        }
        assert_eq!(collect(dir.path()).unwrap(), r.reports);
        let back: Run = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        std::fs::write(dir.path().join("bad.json"), "{}").unwrap();
        let e = collect(dir.path()).unwrap_err();
        assert!(format!("{e:#}").contains("bad.json"), "{e:#}");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(plot::short(0.012345), "0.0123");
        assert_eq!(plot::short(1.5), "1.5");
        assert_eq!(plot::short(20.0), "20");
        assert_eq!(plot::short(19996.9), "19997");
    }

    #[test]
    fn histogram_refuses_empty_samples() {
        let dir = tempfile::tempdir().unwrap();
        assert!(plot::histogram(&dir.path().join("x.svg"), "t", "ms", &[("a", 0, &[])]).is_err());
    }
}
