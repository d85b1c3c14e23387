//! `aidocs sync`: re-crawl every web source registered for a collection (conditional
//! requests), here on the data dir or on a running server.

use super::target::Target;
use super::{Ctx, RemoteArgs};
use super::ingest::print_report;

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
    let target = Target::new(&args.remote, ctx)?;
    let progress = aidocs::progress::for_terminal();
    for report in target.sync(args.collection, progress.as_ref()).await? {
        print_report(&report, args.json)?;
    }
    Ok(())
}
