//! Moving a collection between stores (embedded -> Qdrant, Qdrant -> embedded, two data
//! dirs): batched copy of every point (vectors and payload), resumable from the last batch
//! after an interruption (a checkpoint written after each durable batch), then a count and
//! a bit-exact sample check, then optionally an atomic alias switch on the target.

use crate::error::{Error, Result};
use aidocs_backup::format::point_hash;
use aidocs_core::{CollectionSpec, Filter, StoreError, VectorStore};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

pub use crate::engine::open_store;

#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Collection or alias in the source store.
    pub collection: String,
    /// Name in the target store (default: the source collection's name).
    pub into: Option<String>,
    /// Point this alias at the copy once it verified.
    pub alias: Option<String>,
    pub batch_points: usize,
    pub sample_points: usize,
    /// Where the checkpoint lives (one file per target collection).
    pub checkpoint_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MigrateReport {
    pub source_collection: String,
    pub target_collection: String,
    pub points: u64,
    /// Points copied by this run (less than `points` when it resumed).
    pub copied_this_run: u64,
    pub resumed: bool,
    pub sampled: usize,
    pub alias: Option<String>,
    pub took_ms: f64,
}

/// Progress saved after every durable batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Checkpoint {
    source: String,
    target: String,
    /// Where the next page starts (`None` and `done`: everything copied).
    next: Option<uuid::Uuid>,
    copied: u64,
    done: bool,
}

fn write_atomic(path: &std::path::Path, value: &impl Serialize) -> Result<()> {
    let io = |e: std::io::Error| Error::Internal(format!("writing {}: {e}", path.display()));
    let dir = path.parent().expect("checkpoint path has a parent");
    std::fs::create_dir_all(dir).map_err(io)?;
    aidocs_fsio::write_atomic_with(path, |f| {
        serde_json::to_writer(f, value).map_err(std::io::Error::other)
    })
    .map_err(io)
}

/// Copy `opts.collection` from `from` to `to`.
pub async fn migrate(from: &dyn VectorStore, to: &dyn VectorStore, opts: &MigrateOptions) -> Result<MigrateReport> {
    let started = Instant::now();
    let source = from.resolve(&opts.collection).await?;
    let info = from.collection_info(&source).await?;
    let target = opts.into.clone().unwrap_or_else(|| source.clone());
    let checkpoint_path = opts.checkpoint_dir.join(format!("{target}.json"));
    let saved: Option<Checkpoint> = match std::fs::read(&checkpoint_path) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| Error::Internal(format!("checkpoint {} is corrupt: {e}", checkpoint_path.display())))?),
        Err(_) => None,
    };
    let resumed = saved.is_some();
    let mut cp = match saved {
        Some(cp) if cp.source == source && cp.target == target => cp,
        Some(cp) => {
            return Err(Error::Conflict(format!(
                "a migration of `{}` into `{}` is unfinished ({}); finish it or remove the checkpoint",
                cp.source,
                cp.target,
                checkpoint_path.display()
            )));
        }
        None => Checkpoint { source: source.clone(), target: target.clone(), ..Default::default() },
    };
    match to.collection_info(&target).await {
        Ok(t) => {
            if !resumed {
                return Err(Error::Store(StoreError::CollectionExists(target)));
            }
            if t.dims != info.dims || t.properties.get(crate::engine::MODEL_PROPERTY) != info.properties.get(crate::engine::MODEL_PROPERTY) {
                return Err(Error::Conflict(format!("target `{target}` exists with another vector config; it is not the copy being resumed")));
            }
        }
        Err(StoreError::CollectionNotFound(_)) => {
            // The checkpoint first: a crash right after the create resumes instead of
            // finding an unexplained target.
            write_atomic(&checkpoint_path, &cp)?;
            to.create_collection(&CollectionSpec { name: target.clone(), dims: info.dims, properties: info.properties.clone() }).await?;
        }
        Err(e) => return Err(e.into()),
    }
    let mut copied_this_run = 0u64;
    while !cp.done {
        let page = from.scroll_points(&source, cp.next, opts.batch_points.max(1)).await?;
        let n = page.points.len() as u64;
        to.upsert(&target, page.points).await?;
        copied_this_run += n;
        cp.copied += n;
        cp.next = page.next;
        cp.done = page.next.is_none();
        // The batch is durable (acknowledged upsert); only then does the checkpoint move on.
        write_atomic(&checkpoint_path, &cp)?;
    }

    // Verify: counts, then a sample spread over the id space, bit for bit.
    let (a, b) = (from.count(&source, &Filter::default()).await?, to.count(&target, &Filter::default()).await?);
    if a != b {
        return Err(Error::ValidationFailed(format!("source `{source}` holds {a} points, target `{target}` {b} (was the source written during the migration? run it again)")));
    }
    let mut sample = Vec::new();
    let step = (a / opts.sample_points.max(1)).max(1);
    let mut from_id = None;
    let mut seen = 0usize;
    while sample.len() < opts.sample_points {
        let page = from.scroll_points(&source, from_id, 1000).await?;
        for p in &page.points {
            if seen.is_multiple_of(step) && sample.len() < opts.sample_points {
                sample.push(p.id);
            }
            seen += 1;
        }
        match page.next {
            Some(n) => from_id = Some(n),
            None => break,
        }
    }
    let (left, right) = (from.retrieve(&source, &sample).await?, to.retrieve(&target, &sample).await?);
    if left.len() != right.len() || left.iter().zip(&right).any(|(l, r)| l.id != r.id || point_hash(l) != point_hash(r)) {
        return Err(Error::ValidationFailed(format!("sampled points differ between `{source}` and `{target}`")));
    }
    if let Some(alias) = &opts.alias {
        to.set_alias(alias, &target).await?;
    }
    let _ = std::fs::remove_file(&checkpoint_path);
    Ok(MigrateReport {
        source_collection: source,
        target_collection: target,
        points: b as u64,
        copied_this_run,
        resumed,
        sampled: sample.len(),
        alias: opts.alias.clone(),
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}
