//! Long admin operations as jobs that outlive the request that started them.
//!
//! Path and web ingest, syncs, blue-green deployments, backups, restores and drills each
//! run on a task of their own: a deadline or a client that hangs up stops *waiting* for the
//! work, never the work itself (a blue-green dropped half-way used to leave its alias
//! "monitored" forever). Every job has an id, a state, progress while it runs, and its result
//! or error when it ends; ingest jobs can be cancelled (an ingest stopped at any await point
//! is what a crash is, which ingest survives: writes upsert before they delete). The registry
//! is in memory and bounded: it keeps every running job and the newest finished ones.

use crate::report::IngestReport;
use crate::error::ErrorCode;
use crate::progress::{FileOutcome, IngestProgress, LogProgress};
use aidocs_rollout::{Document, StateStore, StateStoreExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Finished jobs kept for `GET /v1/admin/jobs` (older ones are forgotten).
pub const FINISHED_KEPT: usize = 200;
/// How often the replica running a job publishes it to the shared state.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// A shared running job not published for this long belongs to a replica that stopped.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// What a job does (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Ingest,
    WebIngest,
    GitIngest,
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
        matches!(self, Self::Ingest | Self::WebIngest | Self::GitIngest | Self::Sync)
    }
}

/// Where a job is (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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
}

/// A job's error: the API's code and message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// What `GET /v1/admin/jobs/{id}` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The shared job state cannot be reached.
    Unavailable(String),
}

fn check_cancellable(id: &str, v: &JobView) -> Result<(), CancelError> {
    if v.state != JobState::Running {
        return Err(CancelError::NotCancellable(
            format!("job `{id}` has already ended ({:?})", v.state).to_lowercase(),
        ));
    }
    if !v.kind.cancellable() {
        return Err(CancelError::NotCancellable(format!(
            "a {:?} job runs to its end once started (stopping it half-way could leave an alias between two collections)",
            v.kind
        )));
    }
    Ok(())
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "aidocs".into())
}

/// The registry of jobs (cheap to clone; clones share it).
#[derive(Clone, Default)]
pub struct Jobs {
    inner: Arc<Mutex<BTreeMap<String, Entry>>>,
    seq: Arc<AtomicU64>,
    /// How long a request waits for its job before it answers 202 with the job instead
    /// (`None`: until the end).
    wait_limit: Option<Duration>,
    /// Where jobs are shared with the other replicas, and this process's name there.
    shared: Option<(Arc<dyn StateStore>, Arc<str>)>,
}

/// A job as the replicas share it: the view, who runs it, when it last said so, and
/// whether another replica asked to cancel it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SharedJob {
    version: u64,
    owner: String,
    /// Unix milliseconds of the owner's last publish.
    heartbeat_ms: i64,
    #[serde(default)]
    cancel_requested: bool,
    view: JobView,
}

impl Document for SharedJob {
    const KIND: &'static str = "job";
    fn id(&self) -> &str {
        &self.view.id
    }
    fn version(&self) -> u64 {
        self.version
    }
}

impl SharedJob {
    /// The view a reader gets: a running job whose owner went silent is shown as failed.
    fn reader_view(self, now_ms: i64) -> JobView {
        let mut v = self.view;
        if v.state == JobState::Running
            && now_ms - self.heartbeat_ms > STALE_AFTER.as_millis() as i64
        {
            v.state = JobState::Failed;
            v.cancellable = false;
            v.error = Some(JobError {
                code: ErrorCode::Unavailable.as_str_and_status().0.to_owned(),
                message: format!(
                    "the server running this job ({}) stopped publishing it; it may have been restarted",
                    self.owner
                ),
            });
        }
        v
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A failure of the shared job state (Redis unreachable): the caller answers 503.
#[derive(Debug, thiserror::Error)]
#[error("shared job state unavailable: {0}")]
pub struct SharedJobsError(String);

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

    /// Share jobs with the other replicas through `store` (the rollout state in Redis).
    pub fn shared(mut self, store: Arc<dyn StateStore>) -> Self {
        let me = format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple());
        self.shared = Some((store, me.into()));
        self
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
            let mut task = task;
            jobs.publish(&job_id).await;
            let joined = loop {
                tokio::select! {
                    r = &mut task => break r,
                    () = tokio::time::sleep(PUBLISH_EVERY), if jobs.shared.is_some() => jobs.publish(&job_id).await,
                }
            };
            let outcome = match joined {
                Ok(o) => o,
                Err(e) if e.is_cancelled() => Err((ErrorCode::Conflict, "the job was cancelled".to_owned())),
                Err(e) => {
                    tracing::error!(job = %job_id, error = %e, "job panicked");
                    Err((ErrorCode::Internal, "internal error; see the server log".to_owned()))
                }
            };
            jobs.finish(&job_id, &outcome);
            jobs.publish(&job_id).await;
            jobs.prune_shared().await;
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
                    e.error = Some(JobError {
                        code: code.as_str_and_status().0.to_owned(),
                        message: message.clone(),
                    });
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

    /// A job this process runs or ran (no shared lookup).
    pub fn local(&self, id: &str) -> Option<JobView> {
        self.inner.lock().unwrap().get(id).map(|e| e.view(id))
    }

    /// A job of this process or, when jobs are shared, of any replica.
    pub async fn get(&self, id: &str) -> Result<Option<JobView>, SharedJobsError> {
        if let Some(v) = self.local(id) {
            return Ok(Some(v));
        }
        let Some((store, _)) = &self.shared else {
            return Ok(None);
        };
        let doc: Option<SharedJob> = store
            .get(id)
            .await
            .map_err(|e| SharedJobsError(e.to_string()))?;
        Ok(doc.map(|d| d.reader_view(now_ms())))
    }

    /// Every job kept (this process's and, when shared, every replica's), newest first.
    pub async fn list(&self) -> Result<Vec<JobView>, SharedJobsError> {
        let mut v: Vec<(u64, JobView)> = {
            let jobs = self.inner.lock().unwrap();
            jobs.iter().map(|(k, e)| (e.seq, e.view(k))).collect()
        };
        v.sort_by(|a, b| b.0.cmp(&a.0));
        let mut out: Vec<JobView> = v.into_iter().map(|(_, j)| j).collect();
        if let Some((store, _)) = &self.shared {
            let docs: Vec<SharedJob> = store
                .list()
                .await
                .map_err(|e| SharedJobsError(e.to_string()))?;
            let now = now_ms();
            let known: std::collections::HashSet<String> =
                out.iter().map(|j| j.id.clone()).collect();
            out.extend(
                docs.into_iter()
                    .filter(|d| !known.contains(&d.view.id))
                    .map(|d| d.reader_view(now)),
            );
            // RFC 3339 UTC times of one format sort as text.
            out.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        }
        Ok(out)
    }

    /// Cancel a running job of a cancellable kind, here or (shared jobs) on the replica that
    /// runs it.
    pub async fn cancel(&self, id: &str) -> Result<JobView, CancelError> {
        let local = self.cancel_local(id);
        match (&local, &self.shared) {
            (Ok(_), _) => {
                self.publish(id).await;
                local
            }
            (Err(CancelError::NotFound), Some((store, _))) => {
                self.cancel_shared(store.as_ref(), id).await
            }
            _ => local,
        }
    }

    /// Ask the replica running `id` to cancel it: recorded in the shared document, carried
    /// out at its next publish.
    async fn cancel_shared(
        &self,
        store: &dyn StateStore,
        id: &str,
    ) -> Result<JobView, CancelError> {
        let unavailable = |e: aidocs_rollout::RolloutError| CancelError::Unavailable(e.to_string());
        for _ in 0..5 {
            let Some(doc) = store.get::<SharedJob>(id).await.map_err(unavailable)? else {
                return Err(CancelError::NotFound);
            };
            let version = doc.version;
            let mut view = doc.clone().reader_view(now_ms());
            check_cancellable(id, &view)?;
            view.state = JobState::Cancelled;
            view.cancellable = false;
            let next = SharedJob {
                version: version + 1,
                cancel_requested: true,
                view: view.clone(),
                ..doc
            };
            if store.save(&next, version).await.map_err(unavailable)? {
                tracing::info!(job = %id, owner = %next.owner, "cancel of a job on another replica requested");
                return Ok(view);
            }
        }
        Err(CancelError::Unavailable(format!(
            "job `{id}` kept changing; retry the cancel"
        )))
    }

    /// Publish a local job's current view to the shared state (no-op when not shared),
    /// carrying out a cancel another replica recorded there.
    async fn publish(&self, id: &str) {
        let Some((store, me)) = &self.shared else {
            return;
        };
        for _ in 0..3 {
            let current: Option<SharedJob> = match store.get(id).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "cannot publish the job to the shared state");
                    return;
                }
            };
            let (version, cancel_requested) = current
                .as_ref()
                .map_or((0, false), |c| (c.version, c.cancel_requested));
            if cancel_requested && self.local(id).is_some_and(|v| v.state == JobState::Running) {
                tracing::info!(job = %id, "cancel requested through another replica");
                let _ = self.cancel_local(id);
            }
            let Some(view) = self.local(id) else { return };
            let doc = SharedJob {
                version: version + 1,
                owner: me.to_string(),
                heartbeat_ms: now_ms(),
                cancel_requested,
                view,
            };
            match store.save(&doc, version).await {
                Ok(true) => return,
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "cannot publish the job to the shared state");
                    return;
                }
            }
        }
    }

    /// Forget the oldest finished shared jobs past [`FINISHED_KEPT`], and running ones whose
    /// owner has been silent for a day.
    async fn prune_shared(&self) {
        let Some((store, _)) = &self.shared else {
            return;
        };
        let docs: Vec<SharedJob> = match store.list().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot prune shared jobs");
                return;
            }
        };
        let now = now_ms();
        let mut finished: Vec<&SharedJob> = docs
            .iter()
            .filter(|d| d.view.state != JobState::Running)
            .collect();
        finished.sort_by(|a, b| b.view.started_at.cmp(&a.view.started_at));
        let abandoned = docs
            .iter()
            .filter(|d| d.view.state == JobState::Running && now - d.heartbeat_ms > 86_400_000);
        for d in finished.into_iter().skip(FINISHED_KEPT).chain(abandoned) {
            if let Err(e) = store.delete::<SharedJob>(&d.view.id).await {
                tracing::warn!(job = %d.view.id, error = %e, "cannot prune a shared job");
            }
        }
    }

    fn cancel_local(&self, id: &str) -> Result<JobView, CancelError> {
        let mut jobs = self.inner.lock().unwrap();
        let e = jobs.get_mut(id).ok_or(CancelError::NotFound)?;
        check_cancellable(id, &e.view(id))?;
        if let Some(a) = e.abort.take() {
            a.abort();
        }
        e.state = JobState::Cancelled;
        tracing::info!(job = %id, "job cancelled");
        Ok(e.view(id))
    }
}
