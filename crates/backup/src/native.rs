//! Native backups: the store backend's own snapshots (a Qdrant server's collection
//! snapshots), kept in the same repository as the portable archives. The fastest way back
//! to the same engine; the portable format remains the one that crosses backends.
//!
//! Files: `<id>.snapshot` (the server's snapshot, byte for byte) and `<id>.native` (a JSON
//! [`NativeEntry`] with its size and sha256), written last: a native backup exists once its
//! entry does. Restore checks size and sha256 before the server sees the file, recovers it
//! into a new collection, checks the point count and runs the validator, and only then
//! moves an alias.

use crate::ops::{Backups, RestoreOptions, RestoreValidator};
use crate::repo::check_id;
use crate::{BackupError, Result};
use aidocs_core::{NativeSnapshots, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// The catalog entry of a native backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeEntry {
    pub id: String,
    pub collection: String,
    /// The collection the alias (or name) resolved to when the snapshot was taken.
    pub source: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub points: u64,
    pub dims: usize,
    pub properties: BTreeMap<String, String>,
    /// The store that made it (`qdrant 1.20.0 at http://...`).
    pub store: String,
    pub snapshot: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeBackupReport {
    pub id: String,
    pub collection: String,
    pub points: u64,
    pub bytes: u64,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeRestoreReport {
    pub id: String,
    pub collection: String,
    pub points: u64,
    pub checks: Vec<String>,
    pub alias: Option<String>,
    pub elapsed_ms: u64,
}

/// Whether `id` names a native backup (their ids are `<collection>-<ts>-native-<hex>`;
/// portable ones say `full` or `incremental` there).
pub fn is_native_id(id: &str) -> bool {
    id.contains("-native-")
}

fn sha256_file(path: &Path) -> Result<(u64, String)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| BackupError::io(path, e))?;
    let (mut sha, mut buf, mut n) = (Sha256::new(), vec![0u8; 1 << 20], 0u64);
    loop {
        let k = f.read(&mut buf).map_err(|e| BackupError::io(path, e))?;
        if k == 0 {
            break;
        }
        sha.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(sha.finalize())))
}

impl Backups {
    fn native(&self) -> Result<&dyn NativeSnapshots> {
        self.store().native_snapshots().ok_or_else(|| {
            BackupError::Invalid(format!(
                "native backups need a store with its own snapshots (vector_store.kind = \"qdrant\"); the `{}` store takes portable backups",
                self.store().backend()
            ))
        })
    }

    /// Snapshot `collection` on the server, copy the snapshot into the repository, then
    /// delete it on the server (the repository holds it now).
    pub async fn create_native(&self, collection: &str) -> Result<NativeBackupReport> {
        let started = Instant::now();
        let native = self.native()?;
        let source = self.store().resolve(collection).await?;
        let info = self.store().collection_info(&source).await?;
        let store = self.store().check().await?;
        let snap = native.create_snapshot(&source).await?;
        let created_at = chrono::Utc::now();
        let id = format!("{collection}-{}-native-{:04x}", created_at.format("%Y%m%dT%H%M%S%3fZ"), rand::random::<u16>());
        let staging = tempfile::Builder::new().prefix(".native-").tempdir_in(self.repository().staging()).map_err(|e| BackupError::io(self.repository().staging(), e))?;
        let local = staging.path().join("snapshot");
        let result = async {
            native.download_snapshot(&source, &snap, &local).await?;
            let (bytes, sha256) = tokio::task::spawn_blocking({
                let local = local.clone();
                move || sha256_file(&local)
            })
            .await
            .map_err(|e| BackupError::Invalid(format!("hashing failed: {e}")))??;
            let entry = NativeEntry {
                id: id.clone(),
                collection: collection.to_owned(),
                source: source.clone(),
                created_at,
                points: info.points as u64,
                dims: info.dims,
                properties: info.properties.iter().filter(|(k, _)| !matches!(k.as_str(), "status" | "server_version")).map(|(k, v)| (k.clone(), v.clone())).collect(),
                store,
                snapshot: snap.name.clone(),
                bytes,
                sha256,
            };
            self.repository().put_file(&format!("{id}.snapshot"), &local).await?;
            self.repository().put_bytes(&format!("{id}.native"), serde_json::to_vec_pretty(&entry).expect("entries serialise")).await?;
            Ok::<_, BackupError>(entry)
        }
        .await;
        if let Err(e) = native.delete_snapshot(&source, &snap.name).await {
            tracing::warn!(snapshot = %snap.name, error = %e, "could not delete the server-side snapshot");
        }
        let entry = result?;
        tracing::info!(backup = %entry.id, collection, bytes = entry.bytes, "native backup created");
        Ok(NativeBackupReport { id: entry.id, collection: collection.to_owned(), points: entry.points, bytes: entry.bytes, elapsed_ms: started.elapsed().as_millis() as u64 })
    }

    /// Native backups (of `collection` when given), oldest first.
    pub async fn list_native(&self, collection: Option<&str>) -> Result<Vec<NativeEntry>> {
        self.repository().native_entries(collection).await
    }

    pub async fn native_entry(&self, id: &str) -> Result<NativeEntry> {
        self.repository().native_entry(id).await
    }

    /// Check the snapshot file's size and sha256 against its entry; returns the local copy.
    pub async fn verify_native(&self, id: &str) -> Result<(NativeEntry, crate::repo::LocalArchive)> {
        self.repository().verify_native(id).await
    }

    /// Verify, recover into a new collection (`recovery_<ts>` by default), check the point
    /// count and run the validator, then move `switch_alias`. A failed check deletes the
    /// new collection.
    pub async fn restore_native(&self, id: &str, opts: &RestoreOptions, validator: &dyn RestoreValidator) -> Result<NativeRestoreReport> {
        let started = Instant::now();
        let native = self.native()?;
        let (entry, local) = self.verify_native(id).await?;
        let mut checks = vec![format!("snapshot {} bytes, sha256 verified", entry.bytes)];
        let target = opts.into.clone().unwrap_or_else(|| format!("recovery_{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%3f")));
        match self.store().collection_info(&target).await {
            Ok(_) => return Err(BackupError::Store(StoreError::CollectionExists(target))),
            Err(StoreError::CollectionNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let checked = async {
            native.recover_snapshot(&target, &local.path).await?;
            let info = self.store().collection_info(&target).await?;
            if info.points as u64 != entry.points || info.dims != entry.dims {
                return Err(BackupError::Validation(format!(
                    "`{target}` holds {} points of {} dims; the backup has {} of {}",
                    info.points, info.dims, entry.points, entry.dims
                )));
            }
            checks.push(format!("{} points, {} dims", info.points, info.dims));
            checks.extend(validator.validate(&target).await.map_err(BackupError::Validation)?);
            // The switch is part of the restore: when it fails, nothing is left behind.
            if let Some(alias) = &opts.switch_alias {
                self.store().set_alias(alias, &target).await?;
                checks.push(format!("alias `{alias}` now points at `{target}`"));
            }
            Ok(())
        }
        .await;
        if let Err(e) = checked {
            match self.store().delete_collection(&target).await {
                Ok(()) | Err(StoreError::CollectionNotFound(_)) => {}
                Err(cleanup) => tracing::error!(collection = %target, error = %cleanup, "could not delete the failed restore target"),
            }
            return Err(e);
        }
        Ok(NativeRestoreReport {
            id: id.to_owned(),
            collection: target,
            points: entry.points,
            checks,
            alias: opts.switch_alias.clone(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Delete a native backup: its entry first, then the snapshot file.
    pub async fn remove_native(&self, id: &str) -> Result<()> {
        check_id(id)?;
        self.repository().delete_names(&[format!("{id}.native"), format!("{id}.snapshot")]).await
    }
}

impl crate::Repository {
    /// Native backups (of `collection` when given), oldest first.
    pub async fn native_entries(&self, collection: Option<&str>) -> Result<Vec<NativeEntry>> {
        let mut out = Vec::new();
        for id in self.names_with(".native").await? {
            if check_id(&id).is_err() {
                continue;
            }
            match self.native_entry(&id).await {
                Ok(e) if collection.is_none_or(|c| e.collection == c) => out.push(e),
                Ok(_) => {}
                Err(e) => tracing::warn!(backup = %id, error = %e, "skipping an unreadable native entry"),
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    pub async fn native_entry(&self, id: &str) -> Result<NativeEntry> {
        check_id(id)?;
        let bytes = self.get_bytes(&format!("{id}.native")).await?.ok_or_else(|| BackupError::NotFound(id.to_owned()))?;
        let corrupt = |detail: String| BackupError::Corrupt { backup: id.to_owned(), member: Some(format!("{id}.native")), detail };
        let entry: NativeEntry = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if entry.id != id {
            return Err(corrupt(format!("names backup `{}`", entry.id)));
        }
        Ok(entry)
    }

    /// Check the snapshot file's size and sha256 against its entry; returns the local copy.
    pub async fn verify_native(&self, id: &str) -> Result<(NativeEntry, crate::repo::LocalArchive)> {
        let entry = self.native_entry(id).await?;
        let local = self.get_file(id, &format!("{id}.snapshot")).await?;
        let path = local.path.clone();
        let (bytes, sha) = tokio::task::spawn_blocking(move || sha256_file(&path)).await.map_err(|e| BackupError::Invalid(e.to_string()))??;
        let corrupt = |detail: String| BackupError::Corrupt { backup: id.to_owned(), member: Some(format!("{id}.snapshot")), detail };
        if bytes != entry.bytes {
            return Err(corrupt(format!("{bytes} bytes, the entry says {}", entry.bytes)));
        }
        if sha != entry.sha256 {
            return Err(corrupt(format!("sha256 {sha} does not match the entry's {}", entry.sha256)));
        }
        Ok((entry, local))
    }
}
