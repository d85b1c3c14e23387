//! Temporary clone directories under a sources directory: each Git clone goes to a fresh
//! `.clone-<id>` directory that holds an OS lock on itself while the clone runs, and what a
//! killed run left (a clone directory whose lock no process holds) is swept away. Owns only
//! the directories and their locks; must not know about Git, ingest or the engine (both the
//! engine's start and the Git source call it).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const CLONE_PREFIX: &str = ".clone-";

/// A new, empty `.clone-<id>` directory under `parent`, and the open handle that holds its
/// lock (an OS lock on the directory itself, released when the handle drops or the process
/// dies). Made, then locked, then checked to be the same directory still: a sweep that took
/// it in between costs a retry, never a clone in a directory nobody holds.
pub fn fresh_clone_dir(parent: &Path) -> Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::MetadataExt;
    let internal = |p: &Path, e: std::io::Error| Error::Internal(format!("{}: {e}", p.display()));
    for _ in 0..8 {
        let dir = parent.join(format!("{CLONE_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).map_err(|e| internal(&dir, e))?;
        let handle = std::fs::File::open(&dir).map_err(|e| internal(&dir, e))?;
        if handle.try_lock().is_err() {
            continue;
        }
        let held = handle.metadata().map_err(|e| internal(&dir, e))?;
        if std::fs::metadata(&dir).is_ok_and(|m| m.ino() == held.ino() && m.dev() == held.dev()) {
            return Ok((dir, handle));
        }
    }
    Err(Error::Internal(format!("{}: no clone directory could be held", parent.display())))
}

/// Remove what killed runs left under a sources directory: `.clone-<id>` directories whose
/// lock no process holds (a clone in progress, in this process or another sharing the
/// directory, holds its lock and is passed by). Returns how many were removed; a directory
/// that cannot be read or removed is logged and left.
pub fn sweep_stale_clones(parent: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(CLONE_PREFIX) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let Ok(handle) = std::fs::File::open(&path) else { continue };
        if handle.try_lock().is_err() {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                removed += 1;
                tracing::warn!(path = %path.display(), "removed a clone a stopped run left behind");
            }
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not remove a clone a stopped run left behind"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::{fresh_clone_dir, sweep_stale_clones};

    /// A clone a killed run left (no process holds its lock) is removed; a clone in
    /// progress (its lock held) and a checkout are not.
    #[test]
    fn sweeps_only_clones_that_no_run_holds() {
        let parent = tempfile::tempdir().unwrap();
        let left = parent.path().join(".clone-0123abcd");
        std::fs::create_dir_all(left.join(".git/objects")).unwrap();
        std::fs::write(left.join(".git/objects/pack"), vec![0u8; 4096]).unwrap();
        let checkout = parent.path().join("cli-file-repo");
        std::fs::create_dir_all(&checkout).unwrap();
        let (busy, held) = fresh_clone_dir(parent.path()).unwrap();
        std::fs::write(busy.join("half"), b"git is writing").unwrap();

        assert_eq!(sweep_stale_clones(parent.path()), 1);
        assert!(!left.exists(), "the abandoned clone is removed");
        assert!(busy.join("half").is_file(), "a clone in progress is left alone");
        assert!(checkout.is_dir());

        drop(held);
        assert_eq!(sweep_stale_clones(parent.path()), 1, "once its run is gone, it goes too");
        assert!(!busy.exists());
        assert_eq!(sweep_stale_clones(&parent.path().join("missing")), 0);
    }
}
