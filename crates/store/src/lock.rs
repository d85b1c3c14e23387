//! Exclusive data-dir lock: one process per data dir.

use aidocs_core::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

/// Holds an OS-level exclusive lock on `<data_dir>/LOCK` for its lifetime. The lock is
/// released by the OS when the process dies, so a crash never leaves a stale lock.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("LOCK");
        let io = |source| StoreError::Io { path: path.display().to_string(), source };
        let mut file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(StoreError::Locked {
                    path: dir.display().to_string(),
                    detail: format!("held by {}", holder.trim()),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        write!(file, "pid {}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}
