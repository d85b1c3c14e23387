//! `aidocs mcp`: the MCP server on stdio, for a coding agent that starts it as a child
//! process (Claude Code, Cursor, VS Code, Codex). Serves the data dir of the local config;
//! read-only unless `--allow-write`. Logs go to stderr: stdout is the protocol.

use super::{Ctx, open_engine};
use aidocs::jobs::Jobs;
use aidocs_http::mcp::{DocsServer, Writes};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// List and allow the tools that change the index (ingest_docs, job_status,
    /// sync_library, remove_docs).
    #[arg(long)]
    allow_write: bool,
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let engine = open_engine(ctx.config()?)?;
    let writes = if args.allow_write { Writes::Allowed } else { Writes::Denied };
    let server = DocsServer::new(engine, Jobs::default(), writes);
    eprintln!("aidocs mcp: serving on stdio, {}", if args.allow_write { "read and write tools" } else { "read tools only" });
    Ok(server.serve_stdio().await?)
}
