//! Backups on the engine: the repository and settings from `[backup]`, restore validation by
//! real searches, and the server's backup schedule.

use crate::engine::Engine;
use crate::search::SearchRequest;
use crate::error::Result;
use aidocs_rollout::schedule::Cadence;
use aidocs_backup::{BackupSettings, Backups, RestoreOptions, RestoreValidator};
use async_trait::async_trait;

pub use aidocs_backup::{
    BackupKind, BackupReport, BackupSummary, DrillReport, NativeBackupReport, NativeEntry, NativeRestoreReport, PruneReport, RestoreReport, Retention, VerifyReport,
    is_native_id,
};

/// Restore validation: each query must return at least one hit on the restored collection.
struct QueryValidator<'a> {
    engine: &'a Engine,
    queries: &'a [String],
}

#[async_trait]
impl RestoreValidator for QueryValidator<'_> {
    async fn validate(&self, collection: &str) -> std::result::Result<Vec<String>, String> {
        let mut failures = Vec::new();
        for q in self.queries {
            let mut req = SearchRequest::new(q.clone());
            req.collection = Some(collection.to_owned());
            req.limit = Some(5);
            req.hyde = Some(false);
            req.rerank = Some(false);
            match self.engine.search(req).await {
                Ok(r) if !r.hits.is_empty() => {}
                Ok(_) => failures.push(format!("query `{q}` returned no hits")),
                Err(e) => failures.push(format!("query `{q}` failed: {e}")),
            }
        }
        if failures.is_empty() {
            Ok(if self.queries.is_empty() { Vec::new() } else { vec![format!("{} validation queries returned hits", self.queries.len())] })
        } else {
            Err(failures.join("; "))
        }
    }
}

/// A restore request (CLI and API).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    #[serde(default)]
    pub into: Option<String>,
    #[serde(default)]
    pub switch_alias: Option<String>,
    /// Replaces `backup.validate_queries` for this restore.
    #[serde(default)]
    pub validate_queries: Option<Vec<String>>,
}

/// The backup repository `cfg` names (`backup.dest`). Listing and verifying need nothing
/// else: no model, no store, no data-dir lock, so they work next to a running server.
pub fn repository(cfg: &crate::Config) -> Result<aidocs_backup::Repository> {
    let staging = cfg.data_dir.join("tmp").join("backup-staging");
    Ok(aidocs_backup::Repository::open(&cfg.backup.location(&cfg.data_dir), &staging)?)
}

impl Engine {
    /// The backup service of this engine: create, list, verify, restore, prune and drill
    /// backups of its store in `backup.dest`, and the server's backup schedule.
    pub fn backup(&self) -> BackupService {
        BackupService { engine: self.clone() }
    }
}

/// Backups of an engine's store (`Engine::backup`). Every operation is metered
/// (`aidocs_backups_total`, `aidocs_restores_total`); restores and drills are validated by
/// real searches (`backup.validate_queries`).
#[derive(Clone)]
pub struct BackupService {
    engine: Engine,
}

impl BackupService {
    fn config(&self) -> &crate::Config {
        self.engine.config()
    }

    fn metrics(&self) -> &aidocs_obs::Metrics {
        self.engine.metrics()
    }

    /// The backups of this engine's store, in `backup.dest`.
    fn backups(&self) -> Result<Backups> {
        let cfg = self.config();
        let repo = repository(cfg)?;
        let settings = BackupSettings { batch_points: cfg.backup.batch_points, sample_points: cfg.backup.sample_points };
        Ok(Backups::new(self.engine.store().clone(), repo, settings))
    }

    pub async fn create(&self, collection: Option<&str>, kind: BackupKind) -> Result<BackupReport> {
        let collection = collection.unwrap_or(&self.config().search.default_collection);
        let r = async { Ok(self.backups()?.create(collection, kind).await?) }.await;
        self.metrics().backup(kind.as_str(), r.is_ok());
        r
    }

    /// A native backup: the Qdrant server's own snapshot, copied into `backup.dest`.
    pub async fn create_native(&self, collection: Option<&str>) -> Result<NativeBackupReport> {
        let collection = collection.unwrap_or(&self.config().search.default_collection);
        let r = async { Ok(self.backups()?.create_native(collection).await?) }.await;
        self.metrics().backup("native", r.is_ok());
        r
    }

    pub async fn list_native(&self, collection: Option<&str>) -> Result<Vec<NativeEntry>> {
        Ok(repository(self.config())?.native_entries(collection).await?)
    }

    /// Restore a native backup: checked by size and sha256, recovered on the server into a
    /// new collection, count-checked and validated before any alias moves.
    pub async fn restore_native(&self, id: &str, req: RestoreRequest) -> Result<NativeRestoreReport> {
        let queries = req.validate_queries.unwrap_or_else(|| self.config().backup.validate_queries.clone());
        let validator = QueryValidator { engine: &self.engine, queries: &queries };
        let opts = RestoreOptions { into: req.into, switch_alias: req.switch_alias };
        let r = async { Ok(self.backups()?.restore_native(id, &opts, &validator).await?) }.await;
        self.metrics().restore("restore", r.is_ok());
        r
    }

    pub async fn list(&self, collection: Option<&str>) -> Result<Vec<BackupSummary>> {
        Ok(self.backups()?.list(collection).await?)
    }

    /// Check a native backup's snapshot file against its entry (size, sha256).
    pub async fn verify_native(&self, id: &str) -> Result<NativeEntry> {
        Ok(repository(self.config())?.verify_native(id).await?.0)
    }

    pub async fn verify(&self, id: &str) -> Result<VerifyReport> {
        Ok(self.backups()?.verify(id).await?)
    }

    pub async fn restore(&self, id: &str, req: RestoreRequest) -> Result<RestoreReport> {
        let queries = req.validate_queries.unwrap_or_else(|| self.config().backup.validate_queries.clone());
        let validator = QueryValidator { engine: &self.engine, queries: &queries };
        let opts = RestoreOptions { into: req.into, switch_alias: req.switch_alias };
        let r = async { Ok(self.backups()?.restore(id, &opts, &validator).await?) }.await;
        self.metrics().restore("restore", r.is_ok());
        r
    }

    pub async fn prune(&self, policy: Option<Retention>) -> Result<PruneReport> {
        Ok(self.backups()?.prune(policy.unwrap_or_else(|| self.config().backup.retention())).await?)
    }

    pub async fn drill(&self, collection: Option<&str>) -> Result<DrillReport> {
        let queries = self.config().backup.validate_queries.clone();
        let validator = QueryValidator { engine: &self.engine, queries: &queries };
        let r: Result<DrillReport> = async { Ok(self.backups()?.drill(collection, &validator).await?) }.await;
        self.metrics().restore("drill", r.as_ref().is_ok_and(|d| d.passed));
        r
    }

    /// One scheduled run: back up each configured collection (an incremental falls back to
    /// full when there is no base yet), then apply retention.
    pub async fn scheduled(&self) -> Result<Vec<BackupReport>> {
        let cfg = self.config();
        let collections = if cfg.backup.collections.is_empty() { vec![cfg.search.default_collection.clone()] } else { cfg.backup.collections.clone() };
        let backups = self.backups()?;
        let mut reports = Vec::new();
        for c in &collections {
            let kind = match cfg.backup.kind {
                BackupKind::Incremental if backups.latest(c).await?.is_some() => BackupKind::Incremental,
                _ => BackupKind::Full,
            };
            let r = backups.create(c, kind).await;
            self.metrics().backup(kind.as_str(), r.is_ok());
            reports.push(r?);
        }
        let pruned = backups.prune(cfg.backup.retention()).await?;
        if !pruned.deleted.is_empty() {
            tracing::info!(deleted = ?pruned.deleted, "retention removed old backups");
        }
        Ok(reports)
    }

    /// The server's backup loop (`backup.schedule`); returns at once when none is set. With
    /// several replicas sharing their rollout state (Redis), each due backup is made by one
    /// of them ([`crate::scheduler`]).
    pub async fn run_schedule(self) {
        let Some(expr) = self.config().backup.schedule.clone() else { return };
        let cadence = match Cadence::parse(&expr) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "backup schedule disabled");
                return;
            }
        };
        let job = crate::scheduler::Scheduled { job: "backup".into(), cadence, lease: self.engine.config().rollout.lease() };
        let coord = match self.engine.scheduler() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "backup schedule disabled: no state to coordinate it");
                return;
            }
        };
        let metrics = self.metrics().clone();
        let work = || async {
            let reports = self.scheduled().await.map_err(|e| e.to_string())?;
            let text = reports.iter().map(|r| format!("{} ({}, {} points)", r.id, r.kind.as_str(), r.points)).collect::<Vec<_>>().join(", ");
            let counts = [("backups".to_owned(), reports.len() as u64), ("points".to_owned(), reports.iter().map(|r| r.points as u64).sum())].into();
            Ok(aidocs_rollout::schedule::RunSummary { text, counts })
        };
        crate::scheduler::run(coord, job, work, move |job, ok| metrics.scheduled_run(job, ok)).await
    }
}
