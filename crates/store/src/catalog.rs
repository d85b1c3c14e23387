//! The catalog: collection names -> shard directories, and aliases -> collections.
//! Persisted as `catalog.json`, replaced atomically (write temp, fsync, rename, fsync dir).

use aidocs_core::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CATALOG_FILE: &str = "catalog.json";
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
    pub fn load(root: &Path) -> Result<Self, StoreError> {
        let path = root.join(CATALOG_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let cat: Catalog = serde_json::from_slice(&bytes).map_err(|e| StoreError::Catalog {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?;
                if cat.format_version != FORMAT_VERSION {
                    return Err(StoreError::Catalog {
                        path: path.display().to_string(),
                        detail: format!("unsupported format_version {}", cat.format_version),
                    });
                }
                Ok(cat)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(StoreError::Io { path: path.display().to_string(), source }),
        }
    }

    /// Atomically replace the catalog file with this catalog.
    pub fn save(&self, root: &Path) -> Result<(), StoreError> {
        let path = root.join(CATALOG_FILE);
        let tmp: PathBuf = root.join(format!("{CATALOG_FILE}.tmp"));
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| StoreError::Io { path: p, source }
        };
        let bytes = serde_json::to_vec_pretty(self).expect("catalog serialises");
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(root).map_err(io(root))
    }

    /// Collection behind `name` (an alias or a collection name).
    pub fn resolve(&self, name: &str) -> Option<&str> {
        if let Some(target) = self.aliases.get(name) {
            return Some(target.as_str());
        }
        self.collections.get_key_value(name).map(|(k, _)| k.as_str())
    }
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
