//! Memory-adaptive batching under a real cgroup memory limit: `aidocs ingest` with large
//! fixed batches is killed by the kernel's OOM killer under a limit that the same ingest
//! with adaptive batching completes under, writing every chunk.
//!
//! The limit is calibrated in the test from two unconstrained runs (batch 1 and batch 64,
//! peak RSS from `wait4`), so it holds on any machine with a writable cgroup memory
//! controller (v1 or v2; the test machines run as root).

use std::path::{Path, PathBuf};
use std::process::Command;

fn model_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "model missing: run `cargo xtask models`"
    );
    dir
}

/// A memory cgroup of our own, removed on drop.
struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    fn create(name: &str) -> Self {
        let v2_root = Path::new("/sys/fs/cgroup");
        if v2_root.join("cgroup.controllers").is_file() {
            // Let children of the root use the memory controller.
            let _ = std::fs::write(v2_root.join("cgroup.subtree_control"), "+memory");
            let dir = v2_root.join(name);
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
                panic!(
                    "this test needs a writable cgroup v2 hierarchy (root): {}: {e}",
                    dir.display()
                )
            });
            return Self { dir, v2: true };
        }
        let dir = v2_root.join("memory").join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
            panic!(
                "this test needs a writable cgroup memory controller (root): {}: {e}",
                dir.display()
            )
        });
        Self { dir, v2: false }
    }

    fn limit(&self, bytes: u64) {
        let write = |f: &str, v: String| {
            std::fs::write(self.dir.join(f), v).unwrap_or_else(|e| panic!("setting {f}: {e}"))
        };
        if self.v2 {
            write("memory.max", bytes.to_string());
            let _ = std::fs::write(self.dir.join("memory.swap.max"), "0");
        } else {
            write("memory.limit_in_bytes", bytes.to_string());
            // With swap accounting, memory+swap gets the same limit (no swapping out of it).
            let _ = std::fs::write(
                self.dir.join("memory.memsw.limit_in_bytes"),
                bytes.to_string(),
            );
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// How a run ended: exit code or killing signal, peak RSS in bytes, stdout.
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    peak_rss: u64,
    stdout: String,
    stderr: String,
}

/// `aidocs ingest corpus` into a fresh data dir with `batch` and `adaptive`, inside
/// `cgroup` when given.
fn ingest(
    corpus: &Path,
    data: &Path,
    batch: usize,
    adaptive: bool,
    cgroup: Option<&Cgroup>,
) -> Run {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut cmd = match cgroup {
        // The shell joins the cgroup, then becomes aidocs: all its memory is charged there.
        Some(cg) => {
            let mut c = Command::new("sh");
            c.args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
                .arg(&cg.dir)
                .arg(env!("CARGO_BIN_EXE_aidocs"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_aidocs")),
    };
    let mut child = cmd
        .arg("--data-dir")
        .arg(data)
        .arg("ingest")
        .arg(corpus)
        .args(["--collection", "docs", "--json"])
        .env("AIDOCS__EMBEDDING__MODEL_DIR", model_dir())
        .env("AIDOCS__EMBEDDING__PROVIDER", "local")
        .env("AIDOCS__EMBEDDING__BATCH_SIZE", batch.to_string())
        .env("AIDOCS__EMBEDDING__ADAPTIVE_BATCHING", adaptive.to_string())
        .env("AIDOCS__INGEST__BATCH_SIZE", "64")
        .env_remove("CONFIG_TEMPLATE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    out.read_to_string(&mut stdout).unwrap();
    // wait4: this child's own peak RSS (the test process has other children).
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, which `child` has not reaped.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    std::mem::forget(child);
    let st = std::process::ExitStatus::from_raw(status);
    Run {
        code: st.code(),
        signal: st.signal(),
        peak_rss: usage.ru_maxrss as u64 * 1024,
        stdout,
        stderr: err_reader.join().unwrap(),
    }
}

/// Documentation whose sections are long enough that every chunk has ~256 tokens.
fn write_corpus(dir: &Path) {
    const WORDS: &[&str] = &[
        "allocator",
        "buffer",
        "cluster",
        "daemon",
        "encoder",
        "fragment",
        "gateway",
        "handler",
        "iterator",
        "journal",
        "kernel",
        "lattice",
        "manifest",
        "namespace",
        "operator",
        "pipeline",
        "quorum",
        "replica",
        "scheduler",
        "throttle",
        "upstream",
        "vector",
        "watchdog",
        "yield",
        "zone",
        "snapshot",
        "segment",
        "checkpoint",
        "partition",
        "tokenizer",
        "benchmark",
        "latency",
        "throughput",
        "migration",
    ];
    std::fs::create_dir_all(dir).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for f in 0..6 {
        let mut text = format!("# Guide {f}\n\n");
        for s in 0..6 {
            text.push_str(&format!("## Topic {f}.{s}\n\n"));
            for w in 0..420 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(WORDS[(x >> 33) as usize % WORDS.len()]);
                text.push_str(if w % 17 == 16 { ". " } else { " " });
            }
            text.push_str("\n\n");
        }
        std::fs::write(dir.join(format!("guide{f}.md")), text).unwrap();
    }
}

fn chunks_written(run: &Run) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("ingest --json: {e}: {}\n{}", run.stdout, run.stderr));
    v["chunks_written"].as_u64().unwrap()
}

#[test]
fn adaptive_batching_completes_under_a_memory_limit_that_kills_fixed_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    write_corpus(&corpus);

    // Calibrate: the same ingest one sentence at a time, and 64 at a time, unconstrained.
    let small = ingest(&corpus, &tmp.path().join("d1"), 1, false, None);
    assert_eq!(small.code, Some(0), "{}", small.stderr);
    let large = ingest(&corpus, &tmp.path().join("d64"), 64, false, None);
    assert_eq!(large.code, Some(0), "{}", large.stderr);
    let chunks = chunks_written(&large);
    assert_eq!(chunks_written(&small), chunks);
    assert!(
        chunks >= 64,
        "the corpus must fill a whole batch of 64: {chunks} chunks"
    );
    let spread = large.peak_rss.saturating_sub(small.peak_rss);
    assert!(
        spread > 256 << 20,
        "batches of 64 long sequences should need far more memory than batches of 1: peaks {} MiB and {} MiB",
        small.peak_rss >> 20,
        large.peak_rss >> 20
    );
    // A limit a third of the way from the small run's peak to the large run's.
    let limit = small.peak_rss + spread / 3;
    let cg = Cgroup::create(&format!("aidocs-test-{}", std::process::id()));
    cg.limit(limit);

    let killed = ingest(&corpus, &tmp.path().join("fixed"), 64, false, Some(&cg));
    assert_eq!(
        killed.signal,
        Some(libc::SIGKILL),
        "fixed batches of 64 under {} MiB should be killed by the OOM killer (exit {:?}): {}",
        limit >> 20,
        killed.code,
        killed.stderr
    );

    let adaptive = ingest(&corpus, &tmp.path().join("adaptive"), 64, true, Some(&cg));
    assert_eq!(
        adaptive.code,
        Some(0),
        "adaptive batching under {} MiB must complete: signal {:?}\n{}",
        limit >> 20,
        adaptive.signal,
        adaptive.stderr
    );
    assert_eq!(chunks_written(&adaptive), chunks, "every chunk written");
    assert!(
        adaptive.peak_rss <= limit,
        "peak {} MiB within the {} MiB limit",
        adaptive.peak_rss >> 20,
        limit >> 20
    );
    eprintln!(
        "peaks: batch 1 {} MiB, batch 64 {} MiB, limit {} MiB, adaptive under the limit {} MiB",
        small.peak_rss >> 20,
        large.peak_rss >> 20,
        limit >> 20,
        adaptive.peak_rss >> 20
    );
}
