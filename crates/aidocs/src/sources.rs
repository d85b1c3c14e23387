//! Sources the server keeps fresh (`[[sources]]`: web sites, sitemaps, URL lists and Git
//! repositories): each one's due re-crawls (or pulls), made by one
//! replica through [`crate::scheduler`], and each one's status from the shared run history
//! (last run, pages seen, changed and removed, next run, failures in a row).

use crate::config::{SourceKind, SourceSettings};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ingest::git::{GitIngestRequest, Remote};
use crate::ingest::{WebIngestRequest, WebSource, WebSourceKind};
use crate::progress::NoProgress;
use aidocs_rollout::schedule::{self, Cadence, RunSummary, SlotState};
use serde::{Deserialize, Serialize};

pub use aidocs_rollout::schedule::SlotState as RunState;


impl Engine {
    /// The scheduled sources of this engine's config.
    pub fn sources(&self) -> SourcesService {
        SourcesService { engine: self.clone() }
    }
}

/// The scheduled web sources (`Engine::sources`).
#[derive(Clone)]
pub struct SourcesService {
    engine: Engine,
}

/// The schedule's name of a source (`source:<name>`), shared by every replica.
pub fn task_name(name: &str) -> String {
    format!("source:{name}")
}

/// How a source stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub name: String,
    pub collection: String,
    pub kind: SourceKind,
    pub urls: Vec<String>,
    pub schedule: String,
    /// The credentials configured, named never valued (`SourceAuth::parts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth: Vec<String>,
    /// The next due time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// The newest run, running or finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<SourceRun>,
    /// The newest error of a finished run, when the newest finished run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How many of the newest finished runs failed one after another.
    pub failures_in_a_row: u32,
}

/// One run of a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRun {
    /// When it was due (RFC 3339).
    pub due: String,
    /// `running`, `done` or `failed`.
    pub state: SlotState,
    /// The replica that ran it (or runs it).
    pub holder: String,
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Pages the crawl saw (fetched or answered "not modified").
    pub pages_seen: u64,
    /// Pages (re)written because they were new or changed.
    pub pages_changed: u64,
    /// Pages whose chunks were removed (gone at the source).
    pub pages_removed: u64,
    /// A summary, or the error.
    pub detail: String,
}

/// A run's summary with the counts the status reads back (`pages_seen`, `pages_changed`,
/// `pages_removed`).
fn summary(text: String, seen: u64, changed: u64, removed: u64) -> RunSummary {
    RunSummary { text, counts: [("pages_seen".to_owned(), seen), ("pages_changed".to_owned(), changed), ("pages_removed".to_owned(), removed)].into() }
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).unwrap_or_default()
}

impl SourcesService {
    fn configured(&self) -> &[SourceSettings] {
        &self.engine.config().sources
    }

    /// Crawl one source now (what each due run does): incremental, conditional requests;
    /// for a git source, a fetch of its branch and an ingest of what changed.
    pub async fn crawl(&self, s: &SourceSettings) -> Result<RunSummary> {
        let Some(kind) = WebSourceKind::of(s.kind) else { return self.pull(s).await };
        let source = WebSource {
            kind,
            urls: s.urls.clone(),
            scope: s.scope.clone(),
            include: s.include.clone(),
            exclude: s.exclude.clone(),
            max_pages: s.max_pages,
            max_depth: s.max_depth,
            allow_hosts: s.allow_hosts.clone(),
            metadata: (&s.metadata).into(),
            render: s.render,
        };
        let r = self.engine.ingest().web(WebIngestRequest { collection: s.collection.clone(), source }, &NoProgress).await?;
        let (seen, gone) = match r.web() {
            Some(w) => ((w.crawl.pages_fetched + w.crawl.not_modified) as u64, w.crawl.gone as u64),
            None => (0, 0),
        };
        let changed = r.documents_written as u64;
        let removed = r.documents_deleted as u64;
        Ok(summary(format!("{seen} pages seen, {changed} changed, {removed} removed ({gone} gone at the source) into `{}`", r.collection), seen, changed, removed))
    }

    /// A git source's run: its checkout brought to the branch's tip, then ingested.
    async fn pull(&self, s: &SourceSettings) -> Result<RunSummary> {
        let req = GitIngestRequest {
            name: s.name.clone(),
            collection: s.collection.clone(),
            url: s.urls.first().cloned().unwrap_or_default(),
            branch: s.branch.clone(),
            path: s.path.clone(),
            base_url: s.base_url.clone(),
            metadata: (&s.metadata).into(),
            versions_from_tags: s.versions_from_tags.clone(),
            remote: Remote::Operator,
            credentials: s.auth.as_ref().map(|a| a.credentials(&s.urls)).transpose().map_err(|e| Error::InvalidRequest(format!("source `{}`: auth: {e}", s.name)))?,
        };
        let runs = self.engine.ingest().git_source(req, &NoProgress).await?;
        let (mut seen, mut changed, mut removed) = (0u64, 0u64, 0u64);
        let mut at = Vec::new();
        for g in &runs {
            let r = &g.report;
            seen += (r.documents_written + r.documents_unchanged) as u64;
            changed += r.documents_written as u64;
            removed += r.documents_deleted as u64;
            at.push(format!("{} {}", g.branch, &g.commit[..g.commit.len().min(12)]));
        }
        Ok(summary(format!("{seen} files seen, {changed} changed, {removed} removed at {} into `{}`", at.join(", "), s.collection), seen, changed, removed))
    }

    /// Run every source's schedule until the task is dropped (the server spawns this).
    pub async fn run_schedules(self) {
        let coord = match self.engine.scheduler() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "source schedules disabled: no state to coordinate them");
                return;
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        for s in self.configured().to_vec() {
            let cadence = match Cadence::parse(&s.schedule) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(source = %s.name, error = %e, "source schedule disabled");
                    continue;
                }
            };
            tracing::info!(source = %s.name, collection = %s.collection, schedule = %cadence, "source scheduled");
            let job = crate::scheduler::Scheduled { job: task_name(&s.name), cadence, lease: self.engine.config().rollout.lease() };
            let (me, coord, metrics) = (self.clone(), coord.clone(), self.engine.metrics().clone());
            tasks.spawn(async move {
                let work = || async { me.crawl(&s).await.map_err(|e| e.to_string()) };
                crate::scheduler::run(coord, job, work, move |task, ok| metrics.scheduled_run(task, ok)).await
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Every configured source with its newest run and next due time, from the run history
    /// the replicas share.
    pub async fn status(&self) -> Result<Vec<SourceStatus>> {
        status(self.configured(), &self.engine.scheduler()?).await
    }
}

/// The status of `sources` from the run history in `coord`'s state (no engine needed: the
/// CLI reads it beside a running server).
pub async fn status(sources: &[SourceSettings], coord: &crate::scheduler::Coordinator) -> Result<Vec<SourceStatus>> {
    let now = coord.clock.now_ms();
    let mut out = Vec::new();
    for s in sources {
        let slots = schedule::slots(coord.store.as_ref(), &task_name(&s.name)).await.map_err(crate::rollout_state::rollout_err)?;
        let count = |slot: &schedule::Slot, k: &str| slot.counts.get(k).copied().unwrap_or(0);
        let last_run = slots.first().map(|slot| SourceRun {
            due: rfc3339(slot.due_ms),
            state: slot.state,
            holder: slot.holder.clone(),
            started: rfc3339(slot.started_ms),
            finished: slot.finished_ms.map(rfc3339),
            pages_seen: count(slot, "pages_seen"),
            pages_changed: count(slot, "pages_changed"),
            pages_removed: count(slot, "pages_removed"),
            detail: slot.detail.clone(),
        });
        let failures_in_a_row = schedule::failures_in_a_row(&slots);
        let last_error = slots.iter().find(|s| s.state != SlotState::Running).filter(|s| s.state == SlotState::Failed).map(|s| s.detail.clone());
        out.push(SourceStatus {
            name: s.name.clone(),
            collection: s.collection.clone(),
            kind: s.kind,
            urls: s.urls.clone(),
            schedule: s.schedule.clone(),
            auth: s.auth.as_ref().map(|a| a.parts()).unwrap_or_default(),
            next_run: Cadence::parse(&s.schedule).ok().and_then(|c| c.next_after(now)).map(rfc3339),
            last_run,
            last_error,
            failures_in_a_row,
        });
    }
    Ok(out)
}
