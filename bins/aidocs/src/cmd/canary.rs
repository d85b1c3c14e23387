//! `aidocs canary`: canary rollouts on a running server (admin API).

use super::{ServerArgs, read_json};
use aidocs_http::wire;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Start sending a share of ALIAS's traffic to COLLECTION in stages.
    Start {
        #[arg(long)]
        alias: String,
        #[arg(long)]
        collection: String,
        #[arg(long)]
        id: Option<String>,
        /// JSON file: [{"percentage", "duration_s", "max_error_rate", "max_p95_ms", "min_requests"}, ...]
        /// ending at 100 (default 5/25/50/100 %, 30 min each).
        #[arg(long)]
        stages: Option<PathBuf>,
        /// Consecutive breached checks that roll back (default 2).
        #[arg(long)]
        rollback_after_breaches: Option<u32>,
    },
    /// Stage, timing, hold reason and both arms' statistics.
    Status { id: String },
    /// Every canary, active or ended.
    List,
    /// Stop stage progress (traffic stays split; the stage timer stops).
    Pause { id: String },
    Resume { id: String },
    /// Send all traffic back to stable now.
    Rollback {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client(std::time::Duration::from_secs(60))?;
    let out = match args.command {
        Command::Start { alias, collection, id, stages, rollback_after_breaches } => {
            let stages = stages.map(|f| read_json(&f, "a JSON list of stages")).transpose()?;
            client.post("/v1/admin/canaries", &wire::CanaryStart { id, alias, collection, stages, rollback_after_breaches }).await?
        }
        Command::Status { id } => client.get(&format!("/v1/admin/canaries/{id}")).await?,
        Command::List => client.get("/v1/admin/canaries").await?,
        Command::Pause { id } => client.post(&format!("/v1/admin/canaries/{id}/pause"), &()).await?,
        Command::Resume { id } => client.post(&format!("/v1/admin/canaries/{id}/resume"), &()).await?,
        Command::Rollback { id, reason } => client.post(&format!("/v1/admin/canaries/{id}/rollback"), &wire::RollbackBody { reason }).await?,
    };
    super::print_json(&out)
}
