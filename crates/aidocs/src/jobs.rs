//! Long admin operations as jobs that outlive the request that started them.
//!
//! Path and web ingest, syncs, blue-green deployments, backups, restores and drills each
//! run on a task of their own: a deadline or a client that hangs up stops *waiting* for the
//! work, never the work itself (a blue-green dropped half-way used to leave its alias
//! "monitored" forever). Every job has an id, a state, progress while it runs, and its result
//! or error when it ends; ingest jobs can be cancelled (an ingest stopped at any await point
//! is what a crash is, which ingest survives: writes upsert before they delete). The registry
//! is in memory and bounded: it keeps every running job and the newest finished ones.

use crate::engine::IngestReport;
use crate::error::ErrorCode;
use crate::progress::{FileOutcome, IngestProgress, LogProgress};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Finished jobs kept for `GET /v1/admin/jobs` (older ones are forgotten).
pub const FINISHED_KEPT: usize = 200;

/// What a job does (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Ingest,
    WebIngest,
    Sync,
    BlueGreen,
    BackupCreate,
    BackupRestore,
    BackupDrill,
}

impl JobKind {
    /// Whether stopping it half-way is safe. Ingest and sync are (crash-safe by design); a
    /// blue-green deployment or a restore stopped half-way could leave an alias between two
    /// collections, so they run to the end.
    pub fn cancellable(self) -> bool {
        matches!(self, Self::Ingest | Self::WebIngest | Self::Sync)
    }
}

/// Where a job is (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// Counters a running job reports.
#[derive(Default)]
pub struct JobProgress {
    files_total: AtomicUsize,
    files_done: AtomicUsize,
    discovered: AtomicUsize,
    log: Option<LogProgress>,
}

/// A snapshot of [`JobProgress`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProgressView {
    pub files_total: usize,
    pub files_done: usize,
    pub urls_discovered: usize,
}

impl JobProgress {
    fn view(&self) -> ProgressView {
        ProgressView {
            files_total: self.files_total.load(Ordering::Relaxed),
            files_done: self.files_done.load(Ordering::Relaxed),
            urls_discovered: self.discovered.load(Ordering::Relaxed),
        }
    }
}

impl IngestProgress for JobProgress {
    fn start(&self, total_files: usize) {
        self.files_total.store(total_files, Ordering::Relaxed);
        if let Some(l) = &self.log {
            l.start(total_files);
        }
    }
    fn discovered(&self, total: usize) {
        self.discovered.store(total, Ordering::Relaxed);
    }
    fn file_done(&self, path: &str, outcome: FileOutcome) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        if let Some(l) = &self.log {
            l.file_done(path, outcome);
        }
    }
    fn finish(&self, report: &IngestReport) {
        if let Some(l) = &self.log {
            l.finish(report);
        }
    }
    fn finish_web(&self, report: &crate::web::WebIngestReport) {
        if let Some(l) = &self.log {
            l.finish_web(report);
        }
    }
}

/// A job's error: the API's code and message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JobError {
    pub code: &'static str,
    pub message: String,
}

/// What `GET /v1/admin/jobs/{id}` answers.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    pub kind: JobKind,
    pub state: JobState,
    pub cancellable: bool,
    /// The collection or alias it works on, when it has one.
    pub target: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub progress: ProgressView,
    /// The operation's own report (the body its synchronous route answers with).
    pub result: Option<serde_json::Value>,
    pub error: Option<JobError>,
}

struct Entry {
    seq: u64,
    kind: JobKind,
    target: Option<String>,
    started_at: String,
    finished_at: Option<String>,
    state: JobState,
    progress: Arc<JobProgress>,
    result: Option<serde_json::Value>,
    error: Option<JobError>,
    abort: Option<tokio::task::AbortHandle>,
}

impl Entry {
    fn view(&self, id: &str) -> JobView {
        JobView {
            id: id.to_owned(),
            kind: self.kind,
            state: self.state,
            cancellable: self.kind.cancellable() && self.state == JobState::Running,
            target: self.target.clone(),
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            progress: self.progress.view(),
            result: self.result.clone(),
            error: self.error.clone(),
        }
    }
}

/// The outcome a waiting request receives.
pub type JobOutcome = Result<serde_json::Value, (ErrorCode, String)>;

/// Why a cancel was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelError {
    NotFound,
    /// Finished already, or a kind that runs to the end.
    NotCancellable(String),
}

/// The registry of jobs (cheap to clone; clones share it).
#[derive(Clone, Default)]
pub struct Jobs {
    inner: Arc<Mutex<BTreeMap<String, Entry>>>,
    seq: Arc<AtomicU64>,
    /// How long a request waits for its job before it answers 202 with the job instead
    /// (`None`: until the end).
    wait_limit: Option<Duration>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Jobs {
    /// A registry whose requests wait at most `limit` for their job (set it under the admin
    /// deadline, so a long operation answers 202 with its job rather than 504).
    pub fn with_wait_limit(limit: Duration) -> Self {
        Self { wait_limit: Some(limit), ..Self::default() }
    }

    pub fn wait_limit(&self) -> Option<Duration> {
        self.wait_limit
    }

    /// Start `work` as a job. It runs to its end on its own task whatever happens to the
    /// caller; the receiver gets its outcome (drop it to stop waiting).
    pub fn spawn<F, Fut>(&self, kind: JobKind, target: Option<String>, work: F) -> (String, tokio::sync::oneshot::Receiver<JobOutcome>)
    where
        F: FnOnce(Arc<JobProgress>) -> Fut,
        Fut: Future<Output = JobOutcome> + Send + 'static,
    {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let id = format!("job-{}", uuid::Uuid::new_v4().simple());
        let progress = Arc::new(JobProgress { log: Some(LogProgress::new(Duration::from_secs(5))), ..Default::default() });
        let task = tokio::spawn(work(progress.clone()));
        let entry = Entry {
            seq,
            kind,
            target,
            started_at: now(),
            finished_at: None,
            state: JobState::Running,
            progress,
            result: None,
            error: None,
            abort: Some(task.abort_handle()),
        };
        self.inner.lock().unwrap().insert(id.clone(), entry);
        tracing::info!(job = %id, kind = ?kind, "job started");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (jobs, job_id) = (self.clone(), id.clone());
        tokio::spawn(async move {
            let outcome = match task.await {
                Ok(o) => o,
                Err(e) if e.is_cancelled() => Err((ErrorCode::Conflict, "the job was cancelled".to_owned())),
                Err(e) => {
                    tracing::error!(job = %job_id, error = %e, "job panicked");
                    Err((ErrorCode::Internal, "internal error; see the server log".to_owned()))
                }
            };
            jobs.finish(&job_id, &outcome);
            let _ = tx.send(outcome);
        });
        (id, rx)
    }

    fn finish(&self, id: &str, outcome: &JobOutcome) {
        let mut jobs = self.inner.lock().unwrap();
        if let Some(e) = jobs.get_mut(id) {
            e.finished_at = Some(now());
            e.abort = None;
            match outcome {
                Ok(v) => {
                    e.state = JobState::Succeeded;
                    e.result = Some(v.clone());
                }
                Err((code, message)) => {
                    if e.state != JobState::Cancelled {
                        e.state = JobState::Failed;
                    }
                    e.error = Some(JobError { code: code.as_str_and_status().0, message: message.clone() });
                }
            }
            tracing::info!(job = %id, state = ?e.state, "job finished");
        }
        // Forget the oldest finished jobs past the bound; running ones are always kept.
        let mut finished: Vec<(u64, String)> = jobs.iter().filter(|(_, e)| e.state != JobState::Running).map(|(k, e)| (e.seq, k.clone())).collect();
        if finished.len() > FINISHED_KEPT {
            finished.sort();
            for (_, k) in finished.iter().take(finished.len() - FINISHED_KEPT) {
                jobs.remove(k);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<JobView> {
        self.inner.lock().unwrap().get(id).map(|e| e.view(id))
    }

    /// Every job kept, newest first.
    pub fn list(&self) -> Vec<JobView> {
        let jobs = self.inner.lock().unwrap();
        let mut v: Vec<(u64, JobView)> = jobs.iter().map(|(k, e)| (e.seq, e.view(k))).collect();
        v.sort_by(|a, b| b.0.cmp(&a.0));
        v.into_iter().map(|(_, j)| j).collect()
    }

    /// Cancel a running job of a cancellable kind.
    pub fn cancel(&self, id: &str) -> Result<JobView, CancelError> {
        let mut jobs = self.inner.lock().unwrap();
        let e = jobs.get_mut(id).ok_or(CancelError::NotFound)?;
        if e.state != JobState::Running {
            return Err(CancelError::NotCancellable(format!("job `{id}` has already ended ({:?})", e.state).to_lowercase()));
        }
        if !e.kind.cancellable() {
            return Err(CancelError::NotCancellable(format!(
                "a {:?} job runs to its end once started (stopping it half-way could leave an alias between two collections)",
                e.kind
            )));
        }
        if let Some(a) = e.abort.take() {
            a.abort();
        }
        e.state = JobState::Cancelled;
        tracing::info!(job = %id, "job cancelled");
        Ok(e.view(id))
    }
}
