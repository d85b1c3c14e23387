//! Backup operations over a store and a repository: create, list, verify, restore, prune,
//! drill.

use crate::archive::{ArchiveWriter, read_archive};
use crate::format::{self, BackupKind, CollectionConfig, Manifest, MemberKind, PointHash};
use crate::repo::{CatalogEntry, LocalArchive, Repository};
use crate::{BackupError, Result};
use aidocs_core::{CollectionSpec, Filter, Point, StoreError, VectorStore};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// Extra checks on a restored collection before any alias moves to it (validation queries,
/// say). Contract: `Ok(notes)` when it is fit to serve, `Err(why)` otherwise; it must not
/// write to the collection.
#[async_trait]
pub trait RestoreValidator: Send + Sync {
    async fn validate(&self, collection: &str) -> std::result::Result<Vec<String>, String>;
}

/// No extra checks (counts and sampled vectors are still compared).
pub struct NoValidation;

#[async_trait]
impl RestoreValidator for NoValidation {
    async fn validate(&self, _collection: &str) -> std::result::Result<Vec<String>, String> {
        Ok(Vec::new())
    }
}

/// How backups are made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupSettings {
    /// Points per archive batch (and per store page).
    pub batch_points: usize,
    /// Points whose stored vectors and payload a restore compares with the archive.
    pub sample_points: usize,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self { batch_points: 1000, sample_points: 64 }
    }
}

/// Which backups `prune` keeps. A backup is kept when it is among the newest `keep_last`
/// of its collection or younger than `keep_days`, and then so is every backup its chain
/// needs. With neither set, everything is kept.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Retention {
    pub keep_last: Option<usize>,
    pub keep_days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupReport {
    pub id: String,
    pub kind: BackupKind,
    pub base: Option<String>,
    pub collection: String,
    pub source_collection: String,
    /// Points in the collection.
    pub points: u64,
    /// Point records written (all for a full backup, the changed ones for an incremental).
    pub records: u64,
    pub deleted: u64,
    pub raw_bytes: u64,
    pub archive_bytes: u64,
    pub duration_ms: u64,
    pub points_per_s: f64,
    pub mb_per_s: f64,
    pub location: String,
}

/// One line of `list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupSummary {
    pub id: String,
    pub kind: BackupKind,
    pub base: Option<String>,
    pub collection: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub points: u64,
    pub records: u64,
    pub deleted: u64,
    pub archive_bytes: u64,
}

impl From<&CatalogEntry> for BackupSummary {
    fn from(e: &CatalogEntry) -> Self {
        let m = &e.manifest;
        Self {
            id: m.id.clone(),
            kind: m.kind,
            base: m.base.clone(),
            collection: m.collection.clone(),
            created_at: m.created_at,
            points: m.points,
            records: m.records,
            deleted: m.deleted,
            archive_bytes: e.archive.bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub id: String,
    /// The archives checked, full backup first.
    pub chain: Vec<String>,
    pub points: u64,
    pub archive_bytes: u64,
    pub ok: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreOptions {
    /// Target collection (default `recovery_<utc timestamp>`); must not exist.
    pub into: Option<String>,
    /// Point this alias at the restored collection once it validated.
    pub switch_alias: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreReport {
    pub id: String,
    pub chain: Vec<String>,
    pub collection: String,
    pub points: u64,
    pub sampled: usize,
    pub checks: Vec<String>,
    pub alias: Option<String>,
    pub verify_ms: u64,
    pub restore_ms: u64,
    pub points_per_s: f64,
    pub mb_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneReport {
    pub kept: Vec<String>,
    pub deleted: Vec<String>,
    /// Archives without a catalog entry (interrupted publishes) that were removed.
    pub orphans_removed: Vec<String>,
    /// Archives without a catalog entry younger than the grace period: maybe a publish in
    /// progress, so kept.
    #[serde(default)]
    pub orphans_kept: Vec<String>,
    /// Staging files older than a day (left by killed backups or downloads) removed.
    pub stale_staging_removed: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillReport {
    pub backup: String,
    pub collection: String,
    pub restore: RestoreReport,
    pub total_ms: u64,
    pub cleaned_up: bool,
    pub passed: bool,
}

/// Backups of collections in `store`, kept in `repo`.
#[derive(Clone)]
pub struct Backups {
    store: Arc<dyn VectorStore>,
    repo: Repository,
    settings: BackupSettings,
    orphan_grace: std::time::Duration,
}

/// How old an archive without a catalog entry must be before `prune` removes it: a backup
/// being published (archive uploaded, catalog entry not yet) must never be taken for debris.
pub const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn ms(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

fn per_s(n: f64, t_ms: u64) -> f64 {
    n / (t_ms.max(1) as f64 / 1000.0)
}

fn join_err(e: tokio::task::JoinError) -> BackupError {
    BackupError::Invalid(format!("backup worker failed: {e}"))
}

impl Backups {
    pub fn new(store: Arc<dyn VectorStore>, repo: Repository, settings: BackupSettings) -> Self {
        Self { store, repo, settings, orphan_grace: ORPHAN_GRACE }
    }

    /// Another grace period for archives without a catalog entry (default [`ORPHAN_GRACE`]).
    pub fn with_orphan_grace(mut self, grace: std::time::Duration) -> Self {
        self.orphan_grace = grace;
        self
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    pub fn store(&self) -> &Arc<dyn VectorStore> {
        &self.store
    }

    /// Backups (of `collection` when given), oldest first.
    pub async fn list(&self, collection: Option<&str>) -> Result<Vec<BackupSummary>> {
        self.repo.summaries(collection).await
    }

    /// The newest backup of `collection`.
    pub async fn latest(&self, collection: &str) -> Result<Option<CatalogEntry>> {
        Ok(self.repo.list().await?.into_iter().rev().find(|e| e.manifest.collection == collection))
    }

    /// Back up `collection` (a name or an alias). An incremental stores what changed since the
    /// newest backup of the same collection and fails when there is none.
    pub async fn create(&self, collection: &str, kind: BackupKind) -> Result<BackupReport> {
        let started = Instant::now();
        let source = self.store.resolve(collection).await?;
        let info = self.store.collection_info(&source).await?;
        let config = CollectionConfig { dims: info.dims, properties: info.properties.clone() };
        let base = match kind {
            BackupKind::Full => None,
            BackupKind::Incremental => {
                let Some(head) = self.latest(collection).await? else {
                    return Err(BackupError::Invalid(format!("no backup of `{collection}` to build an incremental on; take a full backup first")));
                };
                if head.manifest.config.dims != config.dims || head.manifest.config.properties.get("embedding_model") != config.properties.get("embedding_model") {
                    return Err(BackupError::Invalid(format!(
                        "`{collection}` changed vector config since backup {} (dims {} -> {}); take a full backup",
                        head.manifest.id, head.manifest.config.dims, config.dims
                    )));
                }
                let index = self.read_index(&head).await?;
                Some((head.manifest.id.clone(), index))
            }
        };
        let created_at = now();
        let id = format!("{collection}-{}-{}-{:04x}", created_at.format("%Y%m%dT%H%M%S%3fZ"), kind.as_str(), rand::random::<u16>());
        crate::repo::check_id(&id)?;
        let temp = tempfile::Builder::new().prefix(&format!(".{id}-")).suffix(".tar.partial").tempfile_in(self.repo.staging()).map_err(|e| BackupError::io(self.repo.staging(), e))?;
        let temp_path = temp.into_temp_path();

        // Pages flow from the store to a blocking writer thread through a bounded channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Point>>(4);
        let path = temp_path.to_path_buf();
        let manifest = Manifest {
            format: format::FORMAT.into(),
            format_version: format::FORMAT_VERSION,
            aidocs_version: env!("CARGO_PKG_VERSION").into(),
            id: id.clone(),
            kind,
            base: base.as_ref().map(|b| b.0.clone()),
            collection: collection.to_owned(),
            source_collection: source.clone(),
            created_at,
            config,
            points: 0,
            records: 0,
            deleted: 0,
            raw_bytes: 0,
            members: BTreeMap::new(),
        };
        let writer = tokio::task::spawn_blocking(move || -> Result<_> {
            let io = |e| BackupError::io(&path, e);
            let mut w = ArchiveWriter::create(&path, created_at).map_err(io)?;
            let mut index = BTreeMap::new();
            let base_index = base.as_ref().map(|b| &b.1);
            while let Some(page) = rx.blocking_recv() {
                w.add_batch(&page, &mut index, base_index).map_err(io)?;
            }
            let deleted: Option<Vec<uuid::Uuid>> = base_index.map(|b| b.keys().filter(|id| !index.contains_key(*id)).copied().collect());
            let mut manifest = manifest;
            manifest.points = index.len() as u64;
            w.finish(manifest, deleted.as_deref(), &index).map_err(io)
        });
        let mut from = None;
        let read = async {
            loop {
                let page = self.store.scroll_points(&source, from, self.settings.batch_points).await?;
                let next = page.next;
                if tx.send(page.points).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
                match next {
                    Some(n) => from = Some(n),
                    None => break,
                }
            }
            drop(tx);
            Ok::<_, BackupError>(())
        };
        let read_result = read.await;
        let (manifest, digest) = writer.await.map_err(join_err)??;
        read_result?;
        let entry = CatalogEntry { manifest, archive: digest };
        self.repo.publish(&temp_path, &entry).await?;
        drop(temp_path);
        let duration_ms = ms(started);
        let m = &entry.manifest;
        tracing::info!(backup = %m.id, kind = m.kind.as_str(), points = m.points, records = m.records, bytes = entry.archive.bytes, duration_ms, "backup created");
        Ok(BackupReport {
            id: m.id.clone(),
            kind: m.kind,
            base: m.base.clone(),
            collection: m.collection.clone(),
            source_collection: m.source_collection.clone(),
            points: m.points,
            records: m.records,
            deleted: m.deleted,
            raw_bytes: m.raw_bytes,
            archive_bytes: entry.archive.bytes,
            duration_ms,
            points_per_s: per_s(m.records as f64, duration_ms),
            mb_per_s: per_s(m.raw_bytes as f64 / 1e6, duration_ms),
            location: self.repo.location().to_owned(),
        })
    }

    /// The index member of a backup (verifying the archive on the way).
    async fn read_index(&self, entry: &CatalogEntry) -> Result<BTreeMap<uuid::Uuid, PointHash>> {
        let local = self.repo.fetch(&entry.manifest.id).await?;
        let id = entry.manifest.id.clone();
        let digest = entry.archive.clone();
        tokio::task::spawn_blocking(move || {
            let mut index = None;
            read_archive(&local.path, &id, Some(&digest), |m| {
                if m.kind == MemberKind::Index {
                    index = Some(format::decode_index(m.data)?);
                }
                Ok(())
            })?;
            index.ok_or_else(|| BackupError::Corrupt { backup: id, member: Some(format::INDEX.into()), detail: "missing".into() })
        })
        .await
        .map_err(join_err)?
    }

    /// Check a backup and every backup it builds on ([`Repository::verify`]).
    pub async fn verify(&self, id: &str) -> Result<VerifyReport> {
        self.repo.verify(id).await
    }

    /// Restore `id` (replaying its chain) into a new collection: verify every archive first,
    /// write nothing until all pass, then load, compare the point count and a sample of
    /// stored points bit for bit, run `validator`, and only then switch the alias if asked.
    /// A failure after the collection was created deletes it again.
    pub async fn restore(&self, id: &str, opts: &RestoreOptions, validator: &dyn RestoreValidator) -> Result<RestoreReport> {
        let started = Instant::now();
        let (chain, locals, head_index) = self.repo.verify_chain(id).await?;
        let verify_ms = ms(started);
        let head = chain.last().expect("a chain holds its head").manifest.clone();
        let target = opts.into.clone().unwrap_or_else(|| format!("recovery_{}", now().format("%Y%m%dT%H%M%S%3f")));
        match self.store.collection_info(&target).await {
            Ok(_) => return Err(BackupError::Store(StoreError::CollectionExists(target))),
            Err(StoreError::CollectionNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.store.create_collection(&CollectionSpec { name: target.clone(), dims: head.config.dims, properties: head.config.properties.clone() }).await?;
        let loaded = Instant::now();
        // Every failure from here on, the alias switch included, deletes the new collection.
        let outcome = async {
            let (sampled, mut checks) = self.load_and_check(&chain, &locals, &head_index, &target, validator).await?;
            let restore_ms = ms(loaded);
            if let Some(alias) = &opts.switch_alias {
                self.store.set_alias(alias, &target).await?;
                checks.push(format!("alias `{alias}` now points at `{target}`"));
            }
            Ok::<_, BackupError>((sampled, checks, restore_ms))
        }
        .await;
        match outcome {
            Ok((sampled, checks, restore_ms)) => {
                let raw: u64 = chain.iter().map(|e| e.manifest.raw_bytes).sum();
                let records: u64 = chain.iter().map(|e| e.manifest.records).sum();
                tracing::info!(backup = id, collection = %target, points = head.points, restore_ms, "backup restored");
                Ok(RestoreReport {
                    id: id.to_owned(),
                    chain: chain.iter().map(|e| e.manifest.id.clone()).collect(),
                    collection: target,
                    points: head.points,
                    sampled,
                    checks,
                    alias: opts.switch_alias.clone(),
                    verify_ms,
                    restore_ms,
                    points_per_s: per_s(records as f64, restore_ms),
                    mb_per_s: per_s(raw as f64 / 1e6, restore_ms),
                })
            }
            Err(e) => {
                if let Err(cleanup) = self.store.delete_collection(&target).await {
                    tracing::error!(collection = %target, error = %cleanup, "could not delete the failed restore target");
                }
                Err(e)
            }
        }
    }

    async fn load_and_check(
        &self,
        chain: &[CatalogEntry],
        locals: &[LocalArchive],
        head_index: &BTreeMap<uuid::Uuid, PointHash>,
        target: &str,
        validator: &dyn RestoreValidator,
    ) -> Result<(usize, Vec<String>)> {
        let head = &chain.last().expect("a chain holds its head").manifest;
        // Sample ids spread over the head's index, chosen before loading.
        let step = (head_index.len() / self.settings.sample_points.max(1)).max(1);
        let sample: BTreeSet<uuid::Uuid> = head_index.keys().step_by(step).take(self.settings.sample_points).copied().collect();
        let mut expected: HashMap<uuid::Uuid, Point> = HashMap::new();
        for (entry, local) in chain.iter().zip(locals) {
            enum Msg {
                Points(Vec<Point>),
                Deleted(Vec<uuid::Uuid>),
            }
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(4);
            let path = local.path.clone();
            let e2 = entry.clone();
            let reader = tokio::task::spawn_blocking(move || {
                read_archive(&path, &e2.manifest.id, Some(&e2.archive), |m| {
                    let msg = match m.kind {
                        MemberKind::Batch => Msg::Points(format::decode_batch(&format::decompress(m.data, format::MAX_BATCH_BYTES)?)?.into_iter().map(|(p, _)| p).collect()),
                        MemberKind::Deleted => Msg::Deleted(format::decode_ids(m.data)?),
                        _ => return Ok(()),
                    };
                    tx.blocking_send(msg).map_err(|_| "restore stopped".to_owned())
                })
            });
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Points(points) => {
                        for p in points.iter().filter(|p| sample.contains(&p.id)) {
                            expected.insert(p.id, p.clone());
                        }
                        self.store.upsert(target, points).await?;
                    }
                    Msg::Deleted(ids) => {
                        for id in &ids {
                            expected.remove(id);
                        }
                        self.store.delete(target, ids).await?;
                    }
                }
            }
            reader.await.map_err(join_err)??;
        }
        let mut checks = Vec::new();
        let count = self.store.count(target, &Filter::default()).await? as u64;
        if count != head.points {
            return Err(BackupError::Validation(format!("`{target}` holds {count} points; the backup recorded {}", head.points)));
        }
        checks.push(format!("point count {count} matches the backup"));
        let ids: Vec<uuid::Uuid> = sample.iter().copied().collect();
        let stored = self.store.retrieve(target, &ids).await?;
        if stored.len() != ids.len() {
            return Err(BackupError::Validation(format!("{} of {} sampled points are missing from `{target}`", ids.len() - stored.len(), ids.len())));
        }
        for p in &stored {
            let want = expected.get(&p.id).ok_or_else(|| BackupError::Validation(format!("sampled point {} was not in the archives", p.id)))?;
            if format::point_hash(p) != format::point_hash(want) {
                return Err(BackupError::Validation(format!("point {} differs from the archive after restore (vectors or payload)", p.id)));
            }
        }
        checks.push(format!("{} sampled points identical to the archive (vectors bit-exact, payloads equal)", stored.len()));
        let notes = validator.validate(target).await.map_err(BackupError::Validation)?;
        checks.extend(notes);
        Ok((stored.len(), checks))
    }

    /// Delete backups outside `policy` (never one a kept incremental depends on) and archives
    /// left without a catalog entry.
    pub async fn prune(&self, policy: Retention) -> Result<PruneReport> {
        let all = self.repo.list().await?;
        let keep = retained(&all, policy, now());
        let mut report =
            PruneReport { kept: Vec::new(), deleted: Vec::new(), orphans_removed: Vec::new(), orphans_kept: Vec::new(), stale_staging_removed: 0 };
        for e in &all {
            if keep.contains(&e.manifest.id) {
                report.kept.push(e.manifest.id.clone());
            } else {
                self.repo.remove(&e.manifest.id).await?;
                report.deleted.push(e.manifest.id.clone());
            }
        }
        let grace = chrono::Duration::from_std(self.orphan_grace).unwrap_or(chrono::Duration::MAX);
        for (orphan, written) in self.repo.orphans().await? {
            if now().signed_duration_since(written) < grace {
                report.orphans_kept.push(orphan);
                continue;
            }
            // A catalog entry published since the listing makes it a backup after all.
            if self.repo.get_bytes(&format!("{orphan}.json")).await?.is_some() {
                continue;
            }
            self.repo.delete_names(&[format!("{orphan}.tar")]).await?;
            report.orphans_removed.push(orphan);
        }
        let day = std::time::Duration::from_secs(86_400);
        if let Ok(dir) = std::fs::read_dir(self.repo.staging()) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let ours = name.ends_with(".tar.partial") || name.starts_with(".download-");
                let old = e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age > day));
                if ours && old && std::fs::remove_file(e.path()).is_ok() {
                    report.stale_staging_removed += 1;
                }
            }
        }
        Ok(report)
    }

    /// The recovery drill: restore the newest backup (of `collection` when given) into a
    /// temporary collection, run every check, delete it, and report.
    pub async fn drill(&self, collection: Option<&str>, validator: &dyn RestoreValidator) -> Result<DrillReport> {
        let started = Instant::now();
        let all = self.repo.list().await?;
        let Some(latest) = all.iter().rev().find(|e| collection.is_none_or(|c| e.manifest.collection == c)) else {
            return Err(BackupError::NotFound(format!("any backup{}", collection.map(|c| format!(" of `{c}`")).unwrap_or_default())));
        };
        let target = format!("drill_{}", now().format("%Y%m%dT%H%M%S%3f"));
        let restore = self.restore(&latest.manifest.id, &RestoreOptions { into: Some(target.clone()), switch_alias: None }, validator).await?;
        let cleaned_up = self.store.delete_collection(&target).await.is_ok();
        Ok(DrillReport { backup: latest.manifest.id.clone(), collection: target, restore, total_ms: ms(started), cleaned_up, passed: cleaned_up })
    }
}

/// Full structural check of one archive against its catalog entry.
/// Returns the archive's index (id -> content hash of every point at backup time).
fn verify_archive(path: &std::path::Path, entry: &CatalogEntry) -> Result<BTreeMap<uuid::Uuid, PointHash>> {
    let id = &entry.manifest.id;
    let mut records: BTreeMap<uuid::Uuid, PointHash> = BTreeMap::new();
    let mut index = None;
    let inner = read_archive(path, id, Some(&entry.archive), |m| {
        match m.kind {
            MemberKind::Batch => {
                for (p, h) in format::decode_batch(&format::decompress(m.data, format::MAX_BATCH_BYTES)?)? {
                    if p.dense.len() != entry.manifest.config.dims {
                        return Err(format!("point {} has {} dims; the collection has {}", p.id, p.dense.len(), entry.manifest.config.dims));
                    }
                    records.insert(p.id, h);
                }
            }
            MemberKind::Index => index = Some(format::decode_index(m.data)?),
            MemberKind::Deleted => {
                format::decode_ids(m.data)?;
            }
            MemberKind::Manifest => {}
        }
        Ok(())
    })?;
    let corrupt = |member: &str, detail: String| BackupError::Corrupt { backup: id.clone(), member: Some(member.into()), detail };
    if inner != entry.manifest {
        return Err(corrupt(format::MANIFEST, "differs from the catalog entry's copy".into()));
    }
    let index = index.ok_or_else(|| corrupt(format::INDEX, "missing".into()))?;
    if index.len() as u64 != inner.points || records.len() as u64 != inner.records {
        return Err(corrupt(format::INDEX, format!("{} indexed points and {} records; the manifest says {} and {}", index.len(), records.len(), inner.points, inner.records)));
    }
    if let Some((pid, _)) = records.iter().find(|(pid, h)| index.get(*pid) != Some(*h)) {
        return Err(corrupt(format::INDEX, format!("point {pid} does not match its index entry")));
    }
    Ok(index)
}

/// The ids `policy` keeps, closed over incremental bases.
pub(crate) fn retained(all: &[CatalogEntry], policy: Retention, at: chrono::DateTime<chrono::Utc>) -> BTreeSet<String> {
    let mut keep = BTreeSet::new();
    if policy.keep_last.is_none() && policy.keep_days.is_none() {
        return all.iter().map(|e| e.manifest.id.clone()).collect();
    }
    let mut by_collection: BTreeMap<&str, Vec<&CatalogEntry>> = BTreeMap::new();
    for e in all {
        by_collection.entry(&e.manifest.collection).or_default().push(e);
    }
    for list in by_collection.values() {
        for (i, e) in list.iter().rev().enumerate() {
            let recent = policy.keep_last.is_some_and(|n| i < n);
            let young = policy.keep_days.is_some_and(|d| at - e.manifest.created_at < chrono::Duration::days(d as i64));
            if recent || young {
                keep.insert(e.manifest.id.clone());
            }
        }
    }
    let bases: HashMap<&str, Option<&str>> = all.iter().map(|e| (e.manifest.id.as_str(), e.manifest.base.as_deref())).collect();
    for id in keep.clone() {
        let mut at = bases.get(id.as_str()).copied().flatten();
        while let Some(b) = at {
            if !keep.insert(b.to_owned()) {
                break;
            }
            at = bases.get(b).copied().flatten();
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ArchiveDigest;

    fn entry(id: &str, collection: &str, base: Option<&str>, days_ago: i64) -> CatalogEntry {
        CatalogEntry {
            manifest: Manifest {
                format: format::FORMAT.into(),
                format_version: 1,
                aidocs_version: "t".into(),
                id: id.into(),
                kind: if base.is_some() { BackupKind::Incremental } else { BackupKind::Full },
                base: base.map(str::to_owned),
                collection: collection.into(),
                source_collection: collection.into(),
                created_at: chrono::Utc::now() - chrono::Duration::days(days_ago),
                config: CollectionConfig { dims: 4, properties: BTreeMap::new() },
                points: 0,
                records: 0,
                deleted: 0,
                raw_bytes: 0,
                members: BTreeMap::new(),
            },
            archive: ArchiveDigest { bytes: 0, sha256: String::new() },
        }
    }

    #[test]
    fn retention_keeps_the_chains_of_kept_incrementals() {
        // f1 <- i1 <- i2 (old chain), f2 <- i3 (new chain), g1 another collection.
        let all = vec![
            entry("f1", "docs", None, 30),
            entry("i1", "docs", Some("f1"), 20),
            entry("i2", "docs", Some("i1"), 10),
            entry("f2", "docs", None, 5),
            entry("i3", "docs", Some("f2"), 1),
            entry("g1", "other", None, 40),
        ];
        let now = chrono::Utc::now();
        let keep = |p| retained(&all, p, now).into_iter().collect::<Vec<_>>();
        assert_eq!(keep(Retention { keep_last: Some(1), keep_days: None }), ["f2", "g1", "i3"]);
        // Keeping i2 (the 3rd newest) drags its whole chain along.
        assert_eq!(keep(Retention { keep_last: Some(3), keep_days: None }), ["f1", "f2", "g1", "i1", "i2", "i3"]);
        assert_eq!(keep(Retention { keep_last: None, keep_days: Some(7) }), ["f2", "i3"]);
        assert_eq!(keep(Retention::default()).len(), 6, "no policy keeps everything");
    }
}

/// What needs only the repository (no store): listing and verifying, so they work next to
/// a running server that owns the store.
impl Repository {
    /// Backups (of `collection` when given), oldest first.
    pub async fn summaries(&self, collection: Option<&str>) -> Result<Vec<BackupSummary>> {
        Ok(self.list().await?.iter().filter(|e| collection.is_none_or(|c| e.manifest.collection == c)).map(BackupSummary::from).collect())
    }

    /// The chain `id` needs, full backup first.
    pub(crate) async fn chain(&self, id: &str) -> Result<Vec<CatalogEntry>> {
        let all: HashMap<String, CatalogEntry> = self.list().await?.into_iter().map(|e| (e.manifest.id.clone(), e)).collect();
        let mut chain = Vec::new();
        let mut at = Some(id.to_owned());
        while let Some(cur) = at {
            let entry = match all.get(&cur) {
                Some(e) => e.clone(),
                None if chain.is_empty() => self.entry(&cur).await?,
                None => return Err(BackupError::Corrupt { backup: id.to_owned(), member: None, detail: format!("its chain needs backup `{cur}`, which is missing") }),
            };
            if chain.len() > 10_000 || chain.iter().any(|e: &CatalogEntry| e.manifest.id == entry.manifest.id) {
                return Err(BackupError::Corrupt { backup: id.to_owned(), member: None, detail: "its chain of bases loops".into() });
            }
            at = entry.manifest.base.clone();
            chain.push(entry);
        }
        chain.reverse();
        Ok(chain)
    }

    /// Check every archive of the chain: names, sizes, sha256 of each member and of the
    /// file, record structure, and that each archive's records agree with its index.
    /// Returns the chain, the local archives and the head's index.
    pub(crate) async fn verify_chain(&self, id: &str) -> Result<(Vec<CatalogEntry>, Vec<LocalArchive>, BTreeMap<uuid::Uuid, PointHash>)> {
        let chain = self.chain(id).await?;
        let mut locals = Vec::new();
        let mut head_index = BTreeMap::new();
        for entry in &chain {
            let local = self.fetch(&entry.manifest.id).await?;
            let path = local.path.clone();
            let entry2 = entry.clone();
            head_index = tokio::task::spawn_blocking(move || verify_archive(&path, &entry2)).await.map_err(join_err)??;
            locals.push(local);
        }
        Ok((chain, locals, head_index))
    }

    pub async fn verify(&self, id: &str) -> Result<VerifyReport> {
        let (chain, _, _) = self.verify_chain(id).await?;
        let head = chain.last().expect("a chain holds its head");
        Ok(VerifyReport {
            id: id.to_owned(),
            chain: chain.iter().map(|e| e.manifest.id.clone()).collect(),
            points: head.manifest.points,
            archive_bytes: chain.iter().map(|e| e.archive.bytes).sum(),
            ok: true,
        })
    }

}
