//! On-demand CPU profiling of the running process, safe to use in production.
//!
//! [`Profiler::run`] samples every thread's stack `frequency` times a second (SIGPROF, via
//! `pprof`) for a bounded duration and returns a [`Profile`]: collapsed stacks (the
//! "folded" text that `inferno`, `flamegraph.pl` and speedscope read) or an SVG flame
//! graph. Safety rules, enforced here rather than by callers:
//!
//! - one profile at a time per process: a second [`Profiler::run`] while one runs gets
//!   [`ProfileError::Busy`] at once (the signal handler is process-global);
//! - duration and frequency are bounded ([`ProfileRequest::check`]); sampling stops when the
//!   duration ends even if the caller went away, so an abandoned request cannot leave the
//!   process sampled;
//! - the sampling thread sleeps on tokio's blocking pool, never on an async worker.
//!
//! Samples that land inside libc, libgcc, pthread or the vDSO are dropped (unwinding there
//! from a signal handler is what can deadlock), as TiKV and Databend configure `pprof`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Longest profile any caller may ask for; a deployment may lower it (server config).
pub const MAX_SECONDS: u64 = 300;
/// Highest sampling frequency accepted, in Hz.
pub const MAX_FREQUENCY: u32 = 1000;
/// Default sampling frequency: 99 Hz, off the beat of periodic work (as `perf` users do).
pub const DEFAULT_FREQUENCY: u32 = 99;

/// What to profile: how long and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileRequest {
    pub seconds: u64,
    pub frequency: u32,
}

impl ProfileRequest {
    /// Refuse a duration outside `1..=max_seconds` or a frequency outside
    /// `1..=`[`MAX_FREQUENCY`], naming the bound.
    pub fn check(&self, max_seconds: u64) -> Result<(), ProfileError> {
        let max_seconds = max_seconds.min(MAX_SECONDS);
        if self.seconds == 0 || self.seconds > max_seconds {
            return Err(ProfileError::Invalid(format!(
                "seconds must be 1 to {max_seconds}, got {}",
                self.seconds
            )));
        }
        if self.frequency == 0 || self.frequency > MAX_FREQUENCY {
            return Err(ProfileError::Invalid(format!(
                "frequency must be 1 to {MAX_FREQUENCY} Hz, got {}",
                self.frequency
            )));
        }
        Ok(())
    }
}

/// Why a profile could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("a CPU profile is already running in this process; retry when it ends")]
    Busy,
    #[error("invalid profile request: {0}")]
    Invalid(String),
    #[error("the profiler failed: {0}")]
    Failed(String),
}

/// A finished profile: collapsed stacks with their sample counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `thread;outermost;...;innermost count` lines, sorted.
    pub folded: Vec<String>,
    /// Samples taken in all.
    pub samples: u64,
    pub seconds: u64,
    pub frequency: u32,
}

impl Profile {
    /// The collapsed-stack text, one stack per line.
    pub fn folded_text(&self) -> String {
        let mut s = String::with_capacity(self.folded.iter().map(|l| l.len() + 1).sum());
        for l in &self.folded {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// An SVG flame graph of the stacks (an empty graph that says so when nothing was
    /// sampled, e.g. an idle process).
    pub fn flamegraph_svg(&self) -> Result<Vec<u8>, ProfileError> {
        let mut opts = pprof::flamegraph::Options::default();
        opts.title = format!(
            "aidocs CPU profile: {} s at {} Hz, {} samples",
            self.seconds, self.frequency, self.samples
        );
        let mut out = Vec::new();
        if self.folded.is_empty() {
            // inferno refuses an empty input: one zero-width frame says "nothing sampled".
            pprof::flamegraph::from_lines(
                &mut opts,
                ["no samples (idle process) 1"].into_iter(),
                &mut out,
            )
        } else {
            pprof::flamegraph::from_lines(
                &mut opts,
                self.folded.iter().map(String::as_str),
                &mut out,
            )
        }
        .map_err(|e| ProfileError::Failed(format!("drawing the flame graph: {e}")))?;
        Ok(out)
    }
}

/// Set while a profile is being taken: the SIGPROF handler is one per process, so the
/// flag is too.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// A handle on the process's one profiler (every handle shares it): one run at a time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Profiler;

/// Clears the running flag when the sampling ends, however it ends.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

impl Profiler {
    pub fn new() -> Self {
        Self
    }

    /// Whether a profile is being taken now (by any handle).
    pub fn is_running(&self) -> bool {
        RUNNING.load(Ordering::Acquire)
    }

    /// Sample the process for `req.seconds` and return what was seen. The request must have
    /// passed [`ProfileRequest::check`]; a run already in progress gives
    /// [`ProfileError::Busy`] without waiting.
    pub async fn run(&self, req: ProfileRequest) -> Result<Profile, ProfileError> {
        req.check(MAX_SECONDS)?;
        if RUNNING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(ProfileError::Busy);
        }
        let guard = Running;
        // The blocking task owns the flag: a dropped request still ends sampling on time.
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            sample(req)
        })
        .await
        .map_err(|e| ProfileError::Failed(format!("profiling task: {e}")))?
    }
}

fn sample(req: ProfileRequest) -> Result<Profile, ProfileError> {
    let frequency =
        i32::try_from(req.frequency).map_err(|_| ProfileError::Invalid("frequency".into()))?;
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(frequency)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| ProfileError::Failed(e.to_string()))?;
    std::thread::sleep(Duration::from_secs(req.seconds));
    let report = guard
        .report()
        .build()
        .map_err(|e| ProfileError::Failed(e.to_string()))?;
    drop(guard);
    let mut samples = 0u64;
    let mut folded: Vec<String> = report
        .data
        .iter()
        .map(|(frames, count)| {
            samples += u64::try_from(*count).unwrap_or(0);
            let mut line = frames.thread_name_or_id().replace([';', ' '], "_");
            for frame in frames.frames.iter().rev() {
                for symbol in frame.iter().rev() {
                    // `;` separates frames and ` ` ends the stack in the folded format.
                    let _ = write!(line, ";{}", symbol.to_string().replace([';', ' '], "_"));
                }
            }
            let _ = write!(line, " {count}");
            line
        })
        .collect();
    folded.sort_unstable();
    Ok(Profile {
        folded,
        samples,
        seconds: req.seconds,
        frequency: req.frequency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn requests_are_bounded() {
        let ok = ProfileRequest {
            seconds: 5,
            frequency: 99,
        };
        assert!(ok.check(60).is_ok());
        for bad in [
            ProfileRequest { seconds: 0, ..ok },
            ProfileRequest { seconds: 61, ..ok },
            ProfileRequest { frequency: 0, ..ok },
            ProfileRequest {
                frequency: 5000,
                ..ok
            },
        ] {
            let e = bad.check(60).unwrap_err().to_string();
            assert!(e.contains("must be 1 to"), "{e}");
        }
        // The server's bound cannot exceed the crate's.
        assert!(
            ProfileRequest {
                seconds: MAX_SECONDS + 1,
                ..ok
            }
            .check(u64::MAX)
            .is_err()
        );
    }

    fn busy_work(stop: &AtomicBool) -> u64 {
        let mut x = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for i in 0..10_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        x
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn samples_a_busy_thread_and_refuses_a_second_run() {
        let p = Profiler::new();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("busy-worker".into())
                .spawn(move || busy_work(&stop))
                .unwrap()
        };
        let first = tokio::spawn({
            async move {
                p.run(ProfileRequest {
                    seconds: 1,
                    frequency: 199,
                })
                .await
            }
        });
        // Wait until the first run holds the profiler, then ask again.
        while !p.is_running() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(matches!(
            p.run(ProfileRequest {
                seconds: 1,
                frequency: 99
            })
            .await,
            Err(ProfileError::Busy)
        ));
        let profile = first.await.unwrap().unwrap();
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        assert!(!p.is_running(), "the flag is released when sampling ends");
        assert!(
            profile.samples > 20,
            "a busy thread for 1 s at 199 Hz gives samples, got {}",
            profile.samples
        );
        assert!(
            profile
                .folded
                .iter()
                .any(|l| l.starts_with("busy-worker;") && l.contains("busy_work")),
            "{:#?}",
            &profile.folded[..profile.folded.len().min(5)]
        );
        let counted: u64 = profile
            .folded
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(counted, profile.samples);
        let svg = String::from_utf8(profile.flamegraph_svg().unwrap()).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("busy_work"),
            "flame graph names the hot function"
        );
        // Free again: a new run starts.
        let idle = p
            .run(ProfileRequest {
                seconds: 1,
                frequency: 99,
            })
            .await
            .unwrap();
        assert!(
            String::from_utf8(idle.flamegraph_svg().unwrap())
                .unwrap()
                .contains("<svg")
        );
    }
}
