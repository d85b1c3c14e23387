//! `aidocs ab`: A/B tests of search configurations on a running server (admin API).

use super::{ServerArgs, read_json};
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
    /// Split ALIAS's traffic between variants.
    Create {
        #[arg(long)]
        alias: String,
        #[arg(long)]
        id: Option<String>,
        /// JSON file: [{"id", "weight", "collection"?, "mode"?, "hyde"?, "rerank"?, "fusion"?}, ...],
        /// weights summing to 1; the first is the control.
        #[arg(long)]
        variants: PathBuf,
    },
    /// Per-variant metrics and significance against the control.
    Status { id: String },
    List,
    Stop { id: String },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client(std::time::Duration::from_secs(60))?;
    let out = match args.command {
        Command::Create { alias, id, variants } => {
            let variants = read_json(&variants, "a JSON list of variants")?;
            client.post("/v1/admin/ab", &aidocs_http::wire::AbCreate { id, alias, variants }).await?
        }
        Command::Status { id } => client.get(&format!("/v1/admin/ab/{id}")).await?,
        Command::List => client.get("/v1/admin/ab").await?,
        Command::Stop { id } => client.post(&format!("/v1/admin/ab/{id}/stop"), &()).await?,
    };
    super::print_json(&out)
}
