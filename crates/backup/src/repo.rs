//! Where archives live: a local directory or an object store, both through `object_store`
//! (its local-filesystem store publishes by rename, so a reader never sees half a file).

use crate::archive::ArchiveDigest;
use crate::format::Manifest;
use crate::{BackupError, Result};
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// The catalog entry `<id>.json`: the manifest and the archive file's size and digest.
/// Written after the archive; its presence is what makes a backup exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub manifest: Manifest,
    pub archive: ArchiveDigest,
}

/// An archive ready to read: a local file (the destination's own file for a local
/// directory, else a downloaded copy removed on drop).
#[derive(Debug)]
pub struct LocalArchive {
    pub path: PathBuf,
    _temp: Option<tempfile::TempPath>,
}

/// A backup destination.
#[derive(Clone)]
pub struct Repository {
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    location: String,
    staging: PathBuf,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository").field("location", &self.location).finish()
    }
}

/// Backup ids are generated as `<collection>-<utc timestamp>-<kind>-<4 hex>`; anything that
/// is not a plain name is refused before it reaches a path.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty() && id.len() <= 200 && !id.starts_with('.') && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok { Ok(()) } else { Err(BackupError::Invalid(format!("`{id}` is not a backup id"))) }
}

impl Repository {
    /// Open `location`: a directory path (created when missing), `file:///dir`, or an object
    /// store URL (`s3://bucket/prefix`, `gs://...`, `az://...`; credentials from the usual
    /// environment variables, e.g. `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`). `staging` is a local
    /// directory for archives being written or downloaded.
    pub fn open(location: &str, staging: &Path) -> Result<Self> {
        let dest = |detail: String| BackupError::Destination { location: location.to_owned(), detail };
        let local = match location.strip_prefix("file://") {
            Some(p) => Some(PathBuf::from(p)),
            None if !location.contains("://") => Some(PathBuf::from(location)),
            None => None,
        };
        let (store, prefix): (Arc<dyn ObjectStore>, ObjPath) = match local {
            Some(dir) => {
                std::fs::create_dir_all(&dir).map_err(|e| dest(format!("cannot create directory: {e}")))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(|e| dest(e.to_string()))?;
                (Arc::new(fs.with_automatic_cleanup(true).with_fsync(true)), ObjPath::default())
            }
            None => {
                let url = url_parse(location).map_err(dest)?;
                let env = std::env::vars().map(|(k, v)| (k.to_ascii_lowercase(), v));
                let (store, prefix) = object_store::parse_url_opts(&url, env).map_err(|e| dest(e.to_string()))?;
                (Arc::from(store), prefix)
            }
        };
        std::fs::create_dir_all(staging).map_err(|e| BackupError::io(staging, e))?;
        Ok(Self { store, prefix, location: location.to_owned(), staging: staging.to_owned() })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn staging(&self) -> &Path {
        &self.staging
    }

    fn path(&self, name: &str) -> ObjPath {
        self.prefix.clone().join(name)
    }

    fn dest_err(&self, e: impl std::fmt::Display) -> BackupError {
        BackupError::Destination { location: self.location.clone(), detail: e.to_string() }
    }

    /// File names under the prefix.
    async fn names(&self) -> Result<Vec<String>> {
        self.store
            .list(Some(&self.prefix))
            .map_ok(|m| m.location.filename().unwrap_or_default().to_owned())
            .try_collect()
            .await
            .map_err(|e| self.dest_err(e))
    }

    /// Every complete backup, oldest first.
    pub async fn list(&self) -> Result<Vec<CatalogEntry>> {
        let mut out = Vec::new();
        for id in self.names_with(".json").await? {
            if check_id(&id).is_err() {
                continue;
            }
            match self.entry(&id).await {
                Ok(e) => out.push(e),
                Err(e) => tracing::warn!(backup = id, error = %e, "skipping an unreadable catalog entry"),
            }
        }
        out.sort_by(|a, b| (a.manifest.created_at, &a.manifest.id).cmp(&(b.manifest.created_at, &b.manifest.id)));
        Ok(out)
    }

    /// Archives with no catalog entry, with the time each was last written: left by an
    /// interrupted publish, or a publish still in progress (the archive goes up first, its
    /// catalog entry last).
    pub async fn orphans(&self) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        let metas: Vec<object_store::ObjectMeta> = self.store.list(Some(&self.prefix)).try_collect().await.map_err(|e| self.dest_err(e))?;
        let names: std::collections::HashSet<String> = metas.iter().filter_map(|m| m.location.filename().map(str::to_owned)).collect();
        Ok(metas
            .iter()
            .filter_map(|m| Some((m.location.filename()?.strip_suffix(".tar")?.to_owned(), m.last_modified)))
            .filter(|(id, _)| !names.contains(&format!("{id}.json")))
            .collect())
    }

    pub async fn entry(&self, id: &str) -> Result<CatalogEntry> {
        check_id(id)?;
        let got = match self.store.get(&self.path(&format!("{id}.json"))).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Err(BackupError::NotFound(id.to_owned())),
            Err(e) => return Err(self.dest_err(e)),
        };
        let bytes = got.bytes().await.map_err(|e| self.dest_err(e))?;
        let entry: CatalogEntry = serde_json::from_slice(&bytes)
            .map_err(|e| BackupError::Corrupt { backup: id.to_owned(), member: Some(format!("{id}.json (catalog entry)")), detail: e.to_string() })?;
        if entry.manifest.id != id {
            return Err(BackupError::Corrupt { backup: id.to_owned(), member: Some(format!("{id}.json (catalog entry)")), detail: format!("names backup `{}`", entry.manifest.id) });
        }
        Ok(entry)
    }

    /// Upload a finished archive, then its catalog entry (the commit point).
    pub async fn publish(&self, archive: &Path, entry: &CatalogEntry) -> Result<()> {
        let id = &entry.manifest.id;
        self.put_file(&format!("{id}.tar"), archive).await?;
        let json = serde_json::to_vec_pretty(entry).expect("catalog entries serialise");
        self.put_bytes(&format!("{id}.json"), json).await
    }

    /// Stream a local file to `name` (multipart: large files never sit in memory).
    pub(crate) async fn put_file(&self, name: &str, file: &Path) -> Result<()> {
        let upload = self.store.put_multipart(&self.path(name)).await.map_err(|e| self.dest_err(e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
        let mut f = tokio::fs::File::open(file).await.map_err(|e| BackupError::io(file, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).await.map_err(|e| BackupError::io(file, e))?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await.map_err(|e| self.dest_err(e))?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(|e| self.dest_err(e))?;
        Ok(())
    }

    pub(crate) async fn put_bytes(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.store.put(&self.path(name), PutPayload::from(bytes)).await.map_err(|e| self.dest_err(e))?;
        Ok(())
    }

    /// The bytes of `name`, `None` when it does not exist.
    pub(crate) async fn get_bytes(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.store.get(&self.path(name)).await {
            Ok(g) => Ok(Some(g.bytes().await.map_err(|e| self.dest_err(e))?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.dest_err(e)),
        }
    }

    /// File names under the prefix ending in `suffix`, the suffix cut off.
    pub(crate) async fn names_with(&self, suffix: &str) -> Result<Vec<String>> {
        Ok(self.names().await?.into_iter().filter_map(|n| n.strip_suffix(suffix).map(str::to_owned)).collect())
    }

    /// The archive of `id` as a local file.
    pub async fn fetch(&self, id: &str) -> Result<LocalArchive> {
        check_id(id)?;
        self.get_file(id, &format!("{id}.tar")).await
    }

    /// `name` (a file of backup `id`) as a local file.
    pub(crate) async fn get_file(&self, id: &str, name: &str) -> Result<LocalArchive> {
        let got = match self.store.get(&self.path(name)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BackupError::Corrupt { backup: id.to_owned(), member: None, detail: format!("{name} is missing") });
            }
            Err(e) => return Err(self.dest_err(e)),
        };
        match got.payload {
            GetResultPayload::File(_, path) => Ok(LocalArchive { path, _temp: None }),
            GetResultPayload::Stream(mut stream) => {
                let temp = tempfile::Builder::new().prefix(".download-").tempfile_in(&self.staging).map_err(|e| BackupError::io(&self.staging, e))?;
                let (file, path) = temp.into_parts();
                let mut file = tokio::fs::File::from_std(file);
                while let Some(chunk) = stream.try_next().await.map_err(|e| self.dest_err(e))? {
                    tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await.map_err(|e| BackupError::io(&path, e))?;
                }
                tokio::io::AsyncWriteExt::flush(&mut file).await.map_err(|e| BackupError::io(&path, e))?;
                Ok(LocalArchive { path: path.to_path_buf(), _temp: Some(path) })
            }
        }
    }

    /// Remove a backup: the catalog entry first (so it stops existing), then the archive.
    pub async fn remove(&self, id: &str) -> Result<()> {
        check_id(id)?;
        self.delete_names(&[format!("{id}.json"), format!("{id}.tar")]).await
    }

    /// Delete these files, in order; missing ones are fine.
    pub(crate) async fn delete_names(&self, names: &[String]) -> Result<()> {
        for name in names {
            match self.store.delete(&self.path(name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.dest_err(e)),
            }
        }
        Ok(())
    }
}

fn url_parse(s: &str) -> std::result::Result<url::Url, String> {
    url::Url::parse(s).map_err(|e| format!("not a URL: {e}"))
}
