//! `aidocs backup`: create, list, verify, restore, prune and drill backups, here on the data
//! dir or on a running server (`--server`). Listing and verifying read only the backup
//! repository: no model load, no data-dir lock.

use super::{Ctx, open_engine, read_queries};
use aidocs::backup::{BackupKind, RestoreRequest, Retention, is_native_id};
use aidocs_http::client::AdminClient;
use aidocs_http::wire;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run it on this server (admin API) instead of on the local data dir.
    #[arg(long, env = "AIDOCS_SERVER", global = true)]
    server: Option<String>,
    #[arg(long, env = "AIDOCS_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Back up a collection (or alias) into `backup.dest` (`--dest` overrides it).
    Create {
        /// Collection or alias (default `search.default_collection`).
        #[arg(long)]
        collection: Option<String>,
        /// full or incremental (changes since the newest backup of the collection).
        #[arg(long = "type", default_value = "full")]
        kind: String,
        /// Keep the Qdrant server's own snapshot (fastest restore into Qdrant) instead of
        /// the portable archive. Needs `vector_store.kind = "qdrant"`.
        #[arg(long, conflicts_with = "kind")]
        native: bool,
        #[arg(long)]
        dest: Option<String>,
    },
    /// List complete backups, oldest first.
    List {
        #[arg(long)]
        collection: Option<String>,
        #[arg(long)]
        dest: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check a backup and every backup it builds on (names, sizes, sha256, records).
    Verify {
        id: String,
        #[arg(long)]
        dest: Option<String>,
    },
    /// Verify, restore into a new collection, validate, then optionally switch an alias.
    Restore {
        id: String,
        /// Target collection (default `recovery_<timestamp>`); must not exist.
        #[arg(long)]
        into: Option<String>,
        /// Point this alias at the restored collection once it validated.
        #[arg(long)]
        switch_alias: Option<String>,
        /// Validation queries, one per line (default `backup.validate_queries`).
        #[arg(long)]
        validate_queries: Option<PathBuf>,
        #[arg(long)]
        dest: Option<String>,
    },
    /// Delete backups outside the retention policy (never a base a kept incremental needs).
    Prune {
        #[arg(long)]
        keep_last: Option<usize>,
        #[arg(long)]
        keep_days: Option<u32>,
        #[arg(long)]
        dest: Option<String>,
    },
    /// Recovery drill: restore the newest backup into a temporary collection, check it,
    /// delete it, report.
    Drill {
        #[arg(long)]
        collection: Option<String>,
        #[arg(long)]
        dest: Option<String>,
    },
}

impl Command {
    fn dest(&self) -> Option<&String> {
        match self {
            Self::Create { dest, .. } | Self::List { dest, .. } | Self::Verify { dest, .. } | Self::Restore { dest, .. } | Self::Prune { dest, .. } | Self::Drill { dest, .. } => dest.as_ref(),
        }
    }
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let command = args.command;
    if let Some(url) = args.server {
        if command.dest().is_some() {
            anyhow::bail!("--dest applies to backups made here; a server uses its own backup.dest");
        }
        let client = AdminClient::new(&url, args.api_key, std::time::Duration::from_secs(6 * 3600))?;
        return super::print_json(&remote(&client, command).await?);
    }
    // Here on the data dir: the local config says where the store and the backups are.
    let mut cfg = ctx.config()?;
    if let Some(d) = command.dest() {
        cfg.backup.dest = Some(d.clone());
    }
    match &command {
        Command::List { collection, json, .. } => {
            let repo = aidocs::backup::repository(&cfg)?;
            let list = repo.summaries(collection.as_deref()).await.map_err(aidocs::Error::from)?;
            let native = repo.native_entries(collection.as_deref()).await.map_err(aidocs::Error::from)?;
            if *json {
                return super::print_json(&serde_json::json!({"backups": list, "native": native}));
            }
            for b in &list {
                println!("{}\t{}\t{}\t{} points\t{} records\t{} bytes", b.id, b.kind.as_str(), b.created_at.to_rfc3339(), b.points, b.records, b.archive_bytes);
            }
            for b in &native {
                println!("{}\tnative\t{}\t{} points\t{}\t{} bytes", b.id, b.created_at.to_rfc3339(), b.points, b.store, b.bytes);
            }
            return Ok(());
        }
        Command::Verify { id, .. } => {
            let repo = aidocs::backup::repository(&cfg)?;
            return if is_native_id(id) {
                super::print_json(&repo.verify_native(id).await.map_err(aidocs::Error::from)?.0)
            } else {
                super::print_json(&repo.verify(id).await.map_err(aidocs::Error::from)?)
            };
        }
        _ => {}
    }
    let engine = open_engine(cfg)?;
    let out = match command {
        Command::Create { collection, native: true, .. } => serde_json::to_value(engine.backup().create_native(collection.as_deref()).await?)?,
        Command::Create { collection, kind, .. } => {
            let kind: BackupKind = kind.parse().map_err(anyhow::Error::msg)?;
            serde_json::to_value(engine.backup().create(collection.as_deref(), kind).await?)?
        }
        Command::List { .. } | Command::Verify { .. } => unreachable!("answered above without the engine"),
        Command::Restore { id, into, switch_alias, validate_queries, .. } => {
            let validate_queries = validate_queries.as_deref().map(read_queries).transpose()?;
            let req = RestoreRequest { into, switch_alias, validate_queries };
            if is_native_id(&id) {
                serde_json::to_value(engine.backup().restore_native(&id, req).await?)?
            } else {
                serde_json::to_value(engine.backup().restore(&id, req).await?)?
            }
        }
        Command::Prune { keep_last, keep_days, .. } => {
            let policy = (keep_last.is_some() || keep_days.is_some()).then_some(Retention { keep_last, keep_days });
            serde_json::to_value(engine.backup().prune(policy).await?)?
        }
        Command::Drill { collection, .. } => {
            let report = engine.backup().drill(collection.as_deref()).await?;
            if !report.passed {
                super::print_json(&report)?;
                anyhow::bail!("recovery drill failed: the temporary collection `{}` could not be deleted", report.collection);
            }
            serde_json::to_value(report)?
        }
    };
    super::print_json(&out)
}

/// The same command on a running server, through its admin API.
async fn remote(client: &AdminClient, command: Command) -> anyhow::Result<serde_json::Value> {
    Ok(match command {
        Command::Create { collection, native: true, .. } => client.post("/v1/admin/backups", &wire::BackupCreateBody { collection, kind: None, native: true }).await?,
        Command::Create { collection, kind, .. } => {
            let kind = match kind.parse().map_err(anyhow::Error::msg)? {
                BackupKind::Full => wire::BackupType::Full,
                BackupKind::Incremental => wire::BackupType::Incremental,
            };
            client.post("/v1/admin/backups", &wire::BackupCreateBody { collection, kind: Some(kind), native: false }).await?
        }
        Command::List { collection: Some(c), .. } => client.get(&format!("/v1/admin/backups?collection={c}")).await?,
        Command::List { collection: None, .. } => client.get("/v1/admin/backups").await?,
        Command::Verify { id, .. } => client.post(&format!("/v1/admin/backups/{id}/verify"), &()).await?,
        Command::Restore { id, into, switch_alias, validate_queries, .. } => {
            let validate_queries = validate_queries.as_deref().map(read_queries).transpose()?;
            client.post(&format!("/v1/admin/backups/{id}/restore"), &wire::RestoreBody { into, switch_alias, validate_queries }).await?
        }
        Command::Prune { keep_last, keep_days, .. } => client.post("/v1/admin/backups/prune", &wire::PruneBody { keep_last, keep_days }).await?,
        Command::Drill { collection, .. } => client.post("/v1/admin/backups/drill", &wire::DrillBody { collection }).await?,
    })
}
