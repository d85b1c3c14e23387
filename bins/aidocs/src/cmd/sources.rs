//! `aidocs sources list`: the web sources kept fresh on a schedule (`[[sources]]`), each
//! with its newest run, next run and failures in a row; from the shared run history of the
//! local config's state, or from a running server (`--server`).

use super::{Ctx, RemoteArgs};
use aidocs_http::wire;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Every scheduled source with its newest run (pages seen, changed, removed), next run
    /// and last error.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

pub async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let Command::List { json, remote } = cmd;
    let sources: Vec<wire::SourceView> = match remote.client()? {
        Some(client) => client.get_as::<wire::Sources>("/v1/admin/sources").await?.sources,
        None => {
            let cfg = ctx.config()?;
            let coord = aidocs::rollout_state::Rollouts::open(&cfg)?.coordinator();
            aidocs::sources::status(&cfg.sources, &coord).await?.into_iter().map(Into::into).collect()
        }
    };
    if json {
        return super::print_json(&wire::Sources { sources });
    }
    if sources.is_empty() {
        println!("no scheduled sources (add [[sources]] to the config)");
    }
    for s in &sources {
        println!("{} -> {} ({}, {})", s.name, s.collection, s.schedule, s.urls.join(" "));
        match &s.last_run {
            Some(r) => println!(
                "    last run: {} due {} by {}: {} pages seen, {} changed, {} removed",
                r.state, r.due, r.holder, r.pages_seen, r.pages_changed, r.pages_removed
            ),
            None => println!("    last run: none yet"),
        }
        if let Some(e) = &s.last_error {
            println!("    last error ({} failed in a row): {e}", s.failures_in_a_row);
        }
        if let Some(n) = &s.next_run {
            println!("    next run: {n}");
        }
    }
    Ok(())
}
