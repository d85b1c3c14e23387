//! Helpers shared by the composition crate's integration tests.
#![allow(dead_code)]

use aidocs::{Config, Engine};
use std::path::{Path, PathBuf};

pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("AIDOCS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"));
    assert!(dir.join("model.safetensors").is_file(), "model missing at {}: run `cargo xtask models`", dir.display());
    dir
}

pub const PYTHON_DOCS: &str = "/usr/share/doc/python3.11/html";

/// The Debian `python3.11-doc` tree (installed by `.ci/run`).
pub fn python_docs() -> PathBuf {
    let p = PathBuf::from(PYTHON_DOCS);
    assert!(
        p.join("tutorial/venv.html").is_file(),
        "real-docs tests need Debian's python3.11-doc: apt-get install python3.11-doc (.ci/run does this)"
    );
    p
}

pub fn config(data_dir: &Path) -> Config {
    let (mut cfg, _) = Config::load(&aidocs::ConfigSource { template: Some("testing".into()), ..Default::default() }).unwrap();
    cfg.data_dir = data_dir.to_path_buf();
    cfg.embedding.model_dir = model_dir();
    cfg
}

pub fn engine(data_dir: &Path) -> Engine {
    Engine::open(config(data_dir)).expect("engine opens")
}

/// Copy some pages of a doc tree (keeping relative paths) into `dest`.
pub fn copy_pages(src: &Path, pages: &[&str], dest: &Path) {
    for p in pages {
        let to = dest.join(p);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(p), to).unwrap();
    }
}
