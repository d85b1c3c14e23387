//! `aidocs backup`: create, list, verify, restore, prune and drill backups, here on the data
//! dir or on a running server (`--server`). Listing and verifying read only the backup
//! repository: no model load, no data-dir lock.

use super::target::Target;
use super::{Ctx, print_json, read_queries};
use aidocs::backup::{BackupKind, RestoreRequest, Retention, is_native_id};
use aidocs_http::client::AdminClient;
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
    let target = match args.server {
        Some(url) => {
            if command.dest().is_some() {
                anyhow::bail!("--dest applies to backups made here; a server uses its own backup.dest");
            }
            Target::Remote(AdminClient::new(&url, args.api_key, std::time::Duration::from_secs(6 * 3600))?)
        }
        // Here on the data dir: the local config says where the store and the backups are.
        None => {
            let mut cfg = ctx.config()?;
            if let Some(d) = command.dest() {
                cfg.backup.dest = Some(d.clone());
            }
            Target::local(cfg)
        }
    };
    match command {
        Command::Create { collection, native: true, .. } => print_json(&target.backup_create_native(collection).await?),
        Command::Create { collection, kind, .. } => {
            let kind: BackupKind = kind.parse().map_err(anyhow::Error::msg)?;
            print_json(&target.backup_create(collection, kind).await?)
        }
        Command::List { collection, json, .. } => {
            let list = target.backup_list(collection.as_deref()).await?;
            if json {
                return print_json(&list);
            }
            for b in &list.backups {
                println!("{}\t{}\t{}\t{} points\t{} records\t{} bytes", b.id, b.kind.as_str(), b.created_at.to_rfc3339(), b.points, b.records, b.archive_bytes);
            }
            for b in &list.native {
                println!("{}\tnative\t{}\t{} points\t{}\t{} bytes", b.id, b.created_at.to_rfc3339(), b.points, b.store, b.bytes);
            }
            Ok(())
        }
        Command::Verify { id, .. } if is_native_id(&id) => print_json(&target.backup_verify_native(&id).await?),
        Command::Verify { id, .. } => print_json(&target.backup_verify(&id).await?),
        Command::Restore { id, into, switch_alias, validate_queries, .. } => {
            let validate_queries = validate_queries.as_deref().map(read_queries).transpose()?;
            let req = RestoreRequest { into, switch_alias, validate_queries };
            if is_native_id(&id) {
                print_json(&target.backup_restore_native(&id, req).await?)
            } else {
                print_json(&target.backup_restore(&id, req).await?)
            }
        }
        Command::Prune { keep_last, keep_days, .. } => {
            let policy = (keep_last.is_some() || keep_days.is_some()).then_some(Retention { keep_last, keep_days });
            print_json(&target.backup_prune(policy).await?)
        }
        Command::Drill { collection, .. } => {
            let report = target.backup_drill(collection).await?;
            print_json(&report)?;
            if !report.passed {
                anyhow::bail!("recovery drill failed: the temporary collection `{}` could not be deleted", report.collection);
            }
            Ok(())
        }
    }
}
