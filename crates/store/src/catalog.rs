//! The catalog: collection names -> shard directories, and aliases -> collections.
//! Persisted as `catalog.json`, replaced atomically (write temp, fsync, rename, fsync dir);
//! the generation it replaces is kept as `catalog.json.prev`.
//!
//! A catalog that is missing while shard directories exist is never read as "empty": that
//! would make every collection an orphan. Opening refuses, and says how to repair.

use aidocs_core::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const CATALOG_FILE: &str = "catalog.json";
/// The generation before the current one, kept by every [`Catalog::save`].
pub const PREVIOUS_FILE: &str = "catalog.json.prev";
/// Shard directories live under `<data_dir>/collections/`.
pub const COLLECTIONS_DIR: &str = "collections";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CollectionEntry {
    /// Directory under `collections/`.
    pub dir: String,
    pub dims: usize,
    pub created_at: String,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Catalog {
    pub format_version: u32,
    pub collections: BTreeMap<String, CollectionEntry>,
    pub aliases: BTreeMap<String, String>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self { format_version: FORMAT_VERSION, collections: BTreeMap::new(), aliases: BTreeMap::new() }
    }
}

impl Catalog {
    /// The catalog of the store at `root`. Absent on a fresh store: empty. Absent or
    /// unreadable while `collections/` holds shard directories: an error that names them and
    /// the repair, never an empty catalog (which would orphan every collection).
    pub fn load(root: &Path) -> Result<Self, StoreError> {
        let path = root.join(CATALOG_FILE);
        match Self::read(&path) {
            Ok(Some(cat)) => Ok(cat),
            Ok(None) => {
                let dirs = shard_dirs(root);
                if dirs.is_empty() {
                    return Ok(Self::default());
                }
                Err(StoreError::Catalog {
                    path: path.display().to_string(),
                    detail: format!(
                        "it is missing, but {} holds {} collection director{} ({}); refusing to open rather than treat them as orphans. {}",
                        root.join(COLLECTIONS_DIR).display(),
                        dirs.len(),
                        if dirs.len() == 1 { "y" } else { "ies" },
                        dirs.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                        repair_hint(root),
                    ),
                })
            }
            Err(StoreError::Catalog { path, detail }) => Err(StoreError::Catalog { path, detail: format!("{detail}. {}", repair_hint(root)) }),
            Err(e) => Err(e),
        }
    }

    /// Read one catalog file: `None` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<Self>, StoreError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let cat: Catalog = serde_json::from_slice(&bytes)
                    .map_err(|e| StoreError::Catalog { path: path.display().to_string(), detail: e.to_string() })?;
                if cat.format_version != FORMAT_VERSION {
                    return Err(StoreError::Catalog {
                        path: path.display().to_string(),
                        detail: format!("unsupported format_version {}", cat.format_version),
                    });
                }
                Ok(Some(cat))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path: path.display().to_string(), source }),
        }
    }

    /// Atomically replace the catalog file with this catalog.
    pub fn save(&self, root: &Path) -> Result<(), StoreError> {
        let path = root.join(CATALOG_FILE);
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| StoreError::Io { path: p, source }
        };
        let bytes = serde_json::to_vec_pretty(self).expect("catalog serialises");
        // Keep the generation being replaced: copied, synced, then renamed into place, so
        // `catalog.json.prev` is always a whole catalog.
        if path.exists() {
            let prev_tmp = root.join(format!("{PREVIOUS_FILE}.tmp"));
            std::fs::copy(&path, &prev_tmp).map_err(io(&prev_tmp))?;
            std::fs::File::open(&prev_tmp).and_then(|f| f.sync_all()).map_err(io(&prev_tmp))?;
            std::fs::rename(&prev_tmp, root.join(PREVIOUS_FILE)).map_err(io(root))?;
        }
        aidocs_fsio::write_atomic(&path, &bytes).map_err(io(&path))
    }

    /// Collection behind `name` (an alias or a collection name).
    pub fn resolve(&self, name: &str) -> Option<&str> {
        if let Some(target) = self.aliases.get(name) {
            return Some(target.as_str());
        }
        self.collections.get_key_value(name).map(|(k, _)| k.as_str())
    }
}

/// Shard directory names under `<root>/collections/`, sorted.
pub fn shard_dirs(root: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(root.join(COLLECTIONS_DIR)) else { return Vec::new() };
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn repair_hint(root: &Path) -> String {
    if root.join(PREVIOUS_FILE).is_file() {
        format!(
            "The previous catalog generation is at {}: `aidocs repair --data-dir {}` restores it",
            root.join(PREVIOUS_FILE).display(),
            root.display()
        )
    } else {
        format!("No previous catalog generation exists; restore {} from a backup of the data dir", root.join(CATALOG_FILE).display())
    }
}

pub use aidocs_fsio::sync_dir;
