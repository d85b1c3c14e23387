//! `aidocs eval`: retrieval quality on a BEIR-layout dataset (corpus.jsonl[.gz],
//! queries.jsonl, qrels-test.tsv) or a docs-QA dataset (dataset.json, questions.jsonl: real
//! documentation trees and questions answered by a section), in a scratch data dir unless
//! `--data-dir` is given.

use super::{Ctx, open_engine};
use aidocs::core::Fusion;
use aidocs_eval::{EvalMode, EvalOptions, EvalProgress};
use anyhow::{Context, bail};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset directory.
    #[arg(long)]
    dataset: PathBuf,
    /// Comma-separated: sparse, dense, hybrid, hyde, rerank.
    #[arg(long, default_value = "sparse,dense,hybrid", value_delimiter = ',')]
    modes: Vec<String>,
    /// Extra hybrid rows with this fusion (rrf:K, rrf:K:DENSE_W:SPARSE_W, dbsf); repeatable.
    #[arg(long = "fusion", value_name = "FUSION")]
    fusions: Vec<String>,
    /// Only the first N test queries.
    #[arg(long)]
    max_queries: Option<usize>,
    /// Write per-query rankings (JSON Lines) here: BEIR ids and scores; for a docs-QA set,
    /// each question with its answers, the rank of the first answering section and the hits.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// Write the Markdown table here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Corpus embedding cache (default: ~/.cache/aidocs/eval).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// BM25 title weighting: count each title this many times.
    #[arg(long, default_value_t = 1)]
    title_weight: usize,
    /// Docs-QA datasets: the questions asked, `dev` (tune on it), `test` (report on it) or
    /// `all`; comma-separated for several, each reported on one index.
    #[arg(long, default_value = "test", value_delimiter = ',')]
    split: Vec<String>,
    /// `section` or `none`, comma-separated for both; default from config (`search.collapse`).
    #[arg(long, value_delimiter = ',')]
    collapse: Vec<String>,
    /// Docs-QA datasets: index into this collection and keep it; a later run with the same
    /// `--data-dir` reuses it (unchanged pages are skipped), to compare search settings
    /// quickly. Default: a scratch collection, removed afterwards.
    #[arg(long)]
    keep_collection: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn default_eval_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("aidocs/eval")
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let modes = args.modes.iter().map(|m| m.trim().parse::<EvalMode>()).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    let fusions = args.fusions.iter().map(|f| f.parse::<Fusion>()).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    if !args.dataset.is_dir() {
        bail!("--dataset {}: not a directory", args.dataset.display());
    }
    let mut cfg = ctx.config()?;
    let scratch = tempfile::tempdir()?;
    if ctx.global.data_dir.is_none() {
        cfg.data_dir = scratch.path().to_path_buf();
    }
    cfg.ingest.optimize = true;
    let cache_dir = args.cache_dir.unwrap_or_else(default_eval_cache);
    let engine = open_engine(cfg)?;
    let splits = args.split.iter().map(|s| s.trim().parse::<aidocs_eval::docsqa::Selection>()).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    let mut collapses = args.collapse.iter().map(|c| c.trim().parse::<aidocs::core::Collapse>().map(Some)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    if collapses.is_empty() {
        collapses.push(None);
    }
    let opts = EvalOptions { dataset: args.dataset, modes, fusions, max_queries: args.max_queries, dump: args.dump, cache_dir, title_weight: args.title_weight.max(1), keep_collection: args.keep_collection };
    if aidocs_eval::docsqa::DocsQa::is_layout(&opts.dataset) {
        let ds = aidocs_eval::docsqa::DocsQa::load(&opts.dataset)?;
        let report = aidocs_eval::docsqa::run(&engine, &ds, &opts, &splits, &collapses, &BarEvalProgress::default()).await?;
        return emit(&report, report.markdown(), args.out, args.json);
    }
    let report = aidocs_eval::run(&engine, &opts, &BarEvalProgress::default()).await?;
    emit(&report, report.markdown(), args.out, args.json)
}

/// A report as its Markdown table (also to `out`), or as JSON.
fn emit(report: &impl serde::Serialize, table: String, out: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    if let Some(out) = out {
        std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
    }
    if json {
        return super::print_json(report);
    }
    println!("{table}");
    Ok(())
}

/// Eval progress as one indicatif bar per stage (hidden when stderr is not a terminal).
#[derive(Default)]
struct BarEvalProgress {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl EvalProgress for BarEvalProgress {
    fn stage(&self, what: &str, total: usize) {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} {elapsed}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(what.to_owned());
        if let Some(old) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).replace(bar) {
            old.finish();
        }
    }
    fn inc(&self, n: usize) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            b.inc(n as u64);
        }
    }
}
