//! `aidocs mcp`: the MCP server on stdio, for a coding agent that starts it as a child
//! process (Claude Code, Cursor, VS Code, Codex). Serves the data dir of the local config
//! (read-only unless `--allow-write`), or with `--server URL` the tools of a running server
//! through its API (the write tools with `--allow-write` and an admin key). Logs go to stderr: stdout is the protocol.

use super::{Ctx, RemoteArgs, open_engine};
use aidocs::jobs::Jobs;
use aidocs_http::mcp::{DocsServer, Writes};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// List and allow the tools that change the index (ingest_docs, job_status,
    /// sync_library, remove_docs).
    #[arg(long)]
    allow_write: bool,
    /// Serve the tools from a running aidocs-server (its /v1 API, with `--api-key` /
    /// `AIDOCS_API_KEY`) instead of the local data dir.
    #[command(flatten)]
    remote: RemoteArgs,
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let writes = if args.allow_write { Writes::Allowed } else { Writes::Denied };
    if let Some(client) = args.remote.client()? {
        let tools = if args.allow_write { "read and write tools (the key needs the admin scope to write)" } else { "read tools" };
        eprintln!("aidocs mcp: serving on stdio, {tools} from {}", args.remote.server.as_deref().unwrap_or_default());
        return Ok(DocsServer::remote(client, writes).serve_stdio().await?);
    }
    let engine = open_engine(ctx.config()?)?;
    // Warmed while the client initializes, so the agent's first search is not the slow one.
    if engine.config().server.warm_up {
        tokio::spawn({
            let engine = engine.clone();
            async move { engine.warm_up().await }
        });
    }
    let server = DocsServer::new(engine, Jobs::default(), writes);
    eprintln!("aidocs mcp: serving on stdio, {}", if args.allow_write { "read and write tools" } else { "read tools only" });
    Ok(server.serve_stdio().await?)
}
