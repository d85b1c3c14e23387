//! `aidocs deploy blue-green`: zero-downtime re-index of an alias, on a running server (its
//! live traffic is monitored after the switch) or here on the data dir.

use super::target::Target;
use super::{Ctx, RemoteArgs, parse_metadata, read_queries};
use aidocs_http::wire;
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Build a new collection from SOURCE beside the alias's current one, validate it, switch
    /// the alias atomically, watch live traffic, keep the old one for a grace period.
    BlueGreen(BlueGreenArgs),
}

#[derive(clap::Args, Debug)]
pub struct BlueGreenArgs {
    #[arg(long)]
    alias: String,
    #[arg(long)]
    source: PathBuf,
    /// Validation queries, one per line.
    #[arg(long)]
    validate_queries: Option<PathBuf>,
    /// Run it on this server (its live traffic is monitored after the switch); without it,
    /// the deployment runs here on the data dir, with no live traffic to monitor.
    #[command(flatten)]
    remote: RemoteArgs,
    /// Metadata for every document (as for ingest).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[arg(long)]
    min_hits: Option<usize>,
    #[arg(long)]
    min_top_score: Option<f32>,
    #[arg(long)]
    min_overlap: Option<f64>,
    #[arg(long)]
    max_point_change: Option<f64>,
    #[arg(long)]
    monitor_s: Option<u64>,
    #[arg(long)]
    grace_s: Option<u64>,
}

pub async fn run(command: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let Command::BlueGreen(a) = command;
    let target = Target::new(&a.remote, ctx)?;
    let queries = a.validate_queries.as_deref().map(read_queries).transpose()?.unwrap_or_default();
    // This machine's `[rollout.blue_green]` with the flags over it (sent to a server too).
    let mut settings = match target.config() {
        Some(cfg) => cfg.rollout.blue_green.clone(),
        None => ctx.config()?.rollout.blue_green.clone(),
    };
    settings.min_hits = a.min_hits.unwrap_or(settings.min_hits);
    settings.min_top_score = a.min_top_score.unwrap_or(settings.min_top_score);
    settings.min_overlap = a.min_overlap.unwrap_or(settings.min_overlap);
    settings.max_point_change = a.max_point_change.unwrap_or(settings.max_point_change);
    settings.monitor_s = a.monitor_s.unwrap_or(settings.monitor_s);
    settings.grace_s = a.grace_s.unwrap_or(settings.grace_s);
    if target.config().is_some() {
        if settings.monitor_s > 0 {
            eprintln!("note: no server here, so no live traffic to monitor after the switch (use --server to deploy on a running server)");
        }
        settings.monitor_s = 0;
    }
    let source = std::fs::canonicalize(&a.source).with_context(|| format!("source {}", a.source.display()))?;
    let metadata = parse_metadata(&a.set)?;
    let req = aidocs::rollout::BlueGreenRequest {
        alias: a.alias,
        source,
        metadata: wire::Metadata::from(metadata).into(),
        base_url: None,
        validate_queries: queries,
        settings: Some(settings),
    };
    let progress = aidocs::progress::BarProgress::default();
    super::print_json(&target.deploy_blue_green(req, &progress).await?)
}
