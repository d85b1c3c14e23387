//! [`DirectorySource`]: the files of a directory tree (or one file) on this machine.

use super::source::{Owns, Source, SourceEvent};
use crate::error::{Error, Result};
use crate::report::{DirectoryDetail, NoteKind, SourceDetail};
use aidocs_core::DocMetadata;
use aidocs_ingest::{DirSource, Skipped};
use std::sync::Arc;
use tokio::sync::mpsc::Sender;

/// Every supported file under a root. Complete: a file gone from the tree has its chunks
/// deleted at the end of the run; a file that became unreadable keeps them.
pub struct DirectorySource {
    dir: DirSource,
    defaults: DocMetadata,
}

impl DirectorySource {
    /// `base_url`, when set, replaces `file://<root>/` in document URLs; `defaults` is the
    /// metadata every document starts from (its own front matter overrides it).
    pub fn new(root: &std::path::Path, base_url: Option<String>, defaults: DocMetadata) -> Result<Self> {
        Ok(Self { dir: DirSource::new(root, base_url)?, defaults })
    }
}

fn task_failed(e: tokio::task::JoinError) -> Error {
    Error::Internal(format!("directory ingest task failed: {e}"))
}

#[async_trait::async_trait]
impl Source for DirectorySource {
    fn owns(&self) -> Owns {
        let dir = self.dir.clone();
        Arc::new(move |s: &str| dir.owns(s))
    }

    fn complete(&self) -> bool {
        true
    }

    fn detail(&self) -> SourceDetail {
        SourceDetail::Directory(DirectoryDetail::default())
    }

    async fn produce(&mut self, events: Sender<SourceEvent>) -> Result<()> {
        // A closed channel means the pipeline stopped (it returns its own error).
        let send = |e| events.send(e);
        if send(SourceEvent::Scanning).await.is_err() {
            return Ok(());
        }
        // A directory walk is blocking I/O (200k entries take a while): off the async workers.
        let files = {
            let dir = self.dir.clone();
            tokio::task::spawn_blocking(move || dir.files()).await.map_err(task_failed)?
        };
        if send(SourceEvent::Listed { total: files.len() }).await.is_err() {
            return Ok(());
        }
        for file in files {
            let loaded = {
                let (dir, file, defaults) = (self.dir.clone(), file.clone(), self.defaults.clone());
                tokio::task::spawn_blocking(move || {
                    let bytes = std::fs::metadata(&file.abs).map_or(0, |m| m.len());
                    dir.load(&file, &defaults).map(|doc| (doc, bytes))
                })
                .await
                .map_err(task_failed)?
            };
            let event = match loaded {
                Ok((doc, bytes)) => SourceEvent::Document { item: file.rel.clone(), doc, bytes },
                // No text left: like a deleted file, its old chunks are removed.
                Err(reason @ Skipped::Empty) => SourceEvent::Skipped { item: file.rel.clone(), kind: NoteKind::Skipped, reason: reason.to_string() },
                Err(reason) => {
                    tracing::warn!(path = %file.abs.display(), %reason, "skipping file");
                    // A file that became unreadable keeps its old chunks: nothing is lost.
                    SourceEvent::Kept { item: file.rel.clone(), source_id: file.source_id(), kind: NoteKind::Skipped, reason: reason.to_string() }
                }
            };
            if send(event).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}
