//! `aidocs sync`: re-crawl every web source registered for a collection (conditional
//! requests), here on the data dir or on a running server.

use super::{Ctx, RemoteArgs, open_engine};
use super::ingest::print_web_report;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    collection: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let collection = args.collection.unwrap_or_else(|| cfg.search.default_collection.clone());
    if let Some(client) = args.remote.client()? {
        let out = client.post("/v1/admin/sync", &aidocs_http::wire::SyncBody { collection: Some(collection) }).await?;
        for r in out["reports"].as_array().cloned().unwrap_or_default() {
            print_web_report(&serde_json::from_value(r)?, args.json)?;
        }
        return Ok(());
    }
    let engine = open_engine(cfg)?;
    let progress = aidocs::progress::for_terminal();
    for report in engine.sync(&collection, progress.as_ref()).await? {
        print_web_report(&report, args.json)?;
    }
    Ok(())
}
