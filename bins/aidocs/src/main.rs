//! `aidocs`: the admin CLI. Parses arguments and dispatches to one module per command
//! (`cmd/`); each command loads config only if it needs it and calls the `aidocs` crate (or,
//! with `--server`, a running server through `aidocs_http::client`).
//!
//! Must not know: how any command works; that is its module's business.

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser, Debug)]
#[command(name = "aidocs", version, about = "aidocs: hybrid documentation search (admin CLI)")]
struct Cli {
    #[command(flatten)]
    global: cmd::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ingest a directory or file, or crawl a documentation site (a URL), a sitemap
    /// (--sitemap) or a list of URLs (--urls).
    Ingest(cmd::ingest::Args),
    /// Copy a collection into another store (a data dir or a config file naming one):
    /// batched, resumable after an interruption, verified, optionally switching an alias.
    Migrate(cmd::migrate::Args),
    /// Re-crawl every web source registered for a collection (conditional requests).
    Sync(cmd::sync::Args),
    /// The web sources the server keeps fresh on a schedule (`[[sources]]`).
    Sources {
        #[command(subcommand)]
        command: cmd::sources::Command,
    },
    /// Search a collection.
    Search(cmd::search::Args),
    /// The MCP server on stdio, for coding agents (Claude Code, Cursor, VS Code, Codex):
    /// search_docs, get_section, get_page, list_libraries, resolve_library; write tools
    /// with --allow-write.
    Mcp(cmd::mcp::Args),
    /// Every library (collection) with its versions, page and chunk counts and sources.
    Libraries(cmd::read::LibrariesArgs),
    /// Read a section (`URL#ANCHOR` or a hit's id) or a page (`URL`) whole.
    Show(cmd::read::ShowArgs),
    /// Resolve `NAME[@VERSION]` to a library and the indexed version that satisfies it.
    Resolve(cmd::read::ResolveArgs),
    /// Measure retrieval quality on a BEIR-layout dataset (corpus.jsonl[.gz], queries.jsonl,
    /// qrels-test.tsv). Runs in a scratch data dir unless --data-dir is given.
    Eval(cmd::eval::Args),
    /// Inspect or clear the cache (meaningful for a shared Redis cache; an in-process cache
    /// lives in the server, see `GET/DELETE /v1/admin/cache`).
    Cache {
        #[command(subcommand)]
        command: cmd::cache::Command,
    },
    /// API key helpers.
    Auth {
        #[command(subcommand)]
        command: cmd::auth::Command,
    },
    /// List, inspect and delete collections.
    Collections {
        #[command(subcommand)]
        command: cmd::collections::Command,
    },
    /// Show (secrets redacted) or validate the resolved configuration, list templates,
    /// migrate an old config file.
    Config {
        #[command(subcommand)]
        command: cmd::config::Command,
    },
    /// Zero-downtime re-index of an alias.
    Deploy {
        #[command(subcommand)]
        command: cmd::deploy::Command,
    },
    /// Take a CPU profile of a running aidocs-server (admin scope): an SVG flame graph or
    /// collapsed stacks, bounded in duration, one at a time per server.
    Profile(cmd::profile::Args),
    /// Canary rollouts on a running server (admin API).
    Canary(cmd::canary::Args),
    /// Backups of collections: create, list, verify, restore, prune, drill. Runs here on the
    /// data dir, or on a running server with --server.
    Backup(cmd::backup::Args),
    /// Repair a data dir the server refuses to open: restore the previous catalog generation
    /// when `catalog.json` is missing or corrupt, list collection directories no catalog entry
    /// references, and delete them only with --remove-orphans. Takes the data-dir lock: stop
    /// the server first.
    Repair(cmd::repair::Args),
    /// A/B tests of search configurations on a running server (admin API).
    Ab(cmd::ab::Args),
}

#[tokio::main]
async fn main() {
    aidocs::obs::logging::init_logging("warn,aidocs=info,qdrant_edge=error");
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = cmd::Ctx { global: cli.global };
    match cli.command {
        Command::Ingest(a) => cmd::ingest::run(a, &ctx).await,
        Command::Migrate(a) => cmd::migrate::run(a).await,
        Command::Sync(a) => cmd::sync::run(a, &ctx).await,
        Command::Sources { command } => cmd::sources::run(command, &ctx).await,
        Command::Search(a) => cmd::search::run(a, &ctx).await,
        Command::Mcp(a) => cmd::mcp::run(a, &ctx).await,
        Command::Libraries(a) => cmd::read::libraries(a, &ctx).await,
        Command::Show(a) => cmd::read::show(a, &ctx).await,
        Command::Resolve(a) => cmd::read::resolve(a, &ctx).await,
        Command::Eval(a) => cmd::eval::run(a, &ctx).await,
        Command::Cache { command } => cmd::cache::run(command, &ctx).await,
        Command::Auth { command } => cmd::auth::run(command),
        Command::Collections { command } => cmd::collections::run(command, &ctx).await,
        Command::Config { command } => cmd::config::run(command, &ctx),
        Command::Deploy { command } => cmd::deploy::run(command, &ctx).await,
        Command::Profile(a) => cmd::profile::run(a).await,
        Command::Canary(a) => cmd::canary::run(a).await,
        Command::Backup(a) => cmd::backup::run(a, &ctx).await,
        Command::Repair(a) => cmd::repair::run(a, &ctx),
        Command::Ab(a) => cmd::ab::run(a).await,
    }
}
