//! `aidocs migrate`: copy a collection into another store (a data dir or a config file
//! naming one): batched, resumable after an interruption, verified, optionally switching an
//! alias.

use aidocs::config::StoreKind;
use aidocs::{Config, ConfigSource};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The source: a data dir, or a config file (TOML/JSON) whose store to read.
    #[arg(long)]
    from: PathBuf,
    /// The target: a data dir, or a config file.
    #[arg(long)]
    to: PathBuf,
    /// Collection or alias in the source.
    #[arg(long)]
    collection: String,
    /// Name in the target (default: the source collection's name).
    #[arg(long)]
    into: Option<String>,
    /// Point this alias (in the target) at the copy once it verified.
    #[arg(long)]
    alias: Option<String>,
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

/// A config file's store, or the embedded store in a data dir.
fn store_config(p: &Path) -> anyhow::Result<Config> {
    if p.is_file() {
        let (cfg, _) = Config::load(&ConfigSource { file: Some(p.to_path_buf()), template: None, use_env: false })?;
        return Ok(cfg);
    }
    let mut cfg = Config::default();
    cfg.data_dir = p.to_path_buf();
    Ok(cfg)
}

fn place(c: &Config) -> String {
    match c.vector_store.kind {
        StoreKind::Embedded => format!("the embedded store at {}", c.data_dir.display()),
        StoreKind::Qdrant => format!("the Qdrant server at {}", c.vector_store.url),
    }
}

fn open(c: &Config) -> anyhow::Result<Arc<dyn aidocs::core::VectorStore>> {
    let store = aidocs::migrate::open_store(c).with_context(|| format!("opening {}", place(c)))?;
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(store.check())).with_context(|| format!("checking {}", place(c)))?;
    Ok(store)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (from_cfg, to_cfg) = (store_config(&args.from)?, store_config(&args.to)?);
    if place(&from_cfg) == place(&to_cfg) {
        bail!("--from and --to name the same store ({}); use `deploy blue-green` or a backup to copy within one store", place(&from_cfg));
    }
    let (source, target) = (open(&from_cfg)?, open(&to_cfg)?);
    let opts = aidocs::migrate::MigrateOptions {
        collection: args.collection,
        into: args.into,
        alias: args.alias,
        batch_points: args.batch.max(1),
        sample_points: 64,
        checkpoint_dir: to_cfg.data_dir.join("migrate"),
    };
    super::print_json(&aidocs::migrate::migrate(source.as_ref(), target.as_ref(), &opts).await?)
}
