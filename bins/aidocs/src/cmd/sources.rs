//! `aidocs sources list | add | remove`: the web sources kept fresh on a schedule
//! (`[[sources]]`). `list` shows each with its newest run, next run and failures in a row,
//! from the shared run history of the local config's state or from a running server
//! (`--server`); `add` and `remove` edit the config file (`--config`), keeping its comments,
//! and refuse an edit that would not load.

use super::{CrawlBounds, Ctx, RemoteArgs};
use aidocs::config::{SourceKind, SourceSettings};
use aidocs_http::wire;
use std::path::Path;

/// The config file `add` and `remove` edit: `--config`, required.
fn config_file<'a>(ctx: &'a Ctx, verb: &str) -> anyhow::Result<&'a Path> {
    ctx.global.config.as_deref().ok_or_else(|| anyhow::anyhow!("aidocs sources {verb} edits a config file: pass --config FILE (the one aidocs-server reads)"))
}

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
    /// Add a source to the config file (`--config`, created when missing). The server runs
    /// it from its next start. Credentials are added by hand as `[sources.auth]` with
    /// `${ENV}` references (docs/configuration.md), never on the command line.
    Add(AddArgs),
    /// Remove a source from the config file (`--config`). Its pages stay in its collection.
    Remove { name: String },
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("cadence").required(true).args(["every", "cron"])))]
pub struct AddArgs {
    /// Unique name (letters, digits, `-`, `_`, `.`).
    name: String,
    /// Start pages (`--kind site`), sitemaps (`sitemap`), the pages themselves (`urls`), or
    /// one Git repository (`git`).
    #[arg(required = true)]
    urls: Vec<String>,
    #[arg(long)]
    collection: String,
    #[arg(long, value_enum, default_value = "site")]
    kind: Kind,
    /// Re-crawl every period: `30m`, `6h`, `1d`, ...
    #[arg(long)]
    every: Option<String>,
    /// Or on a cron expression (UTC), e.g. "0 3 * * *".
    #[arg(long)]
    cron: Option<String>,
    #[command(flatten)]
    bounds: CrawlBounds,
    /// Git: the branch (default: the remote's default branch).
    #[arg(long)]
    branch: Option<String>,
    /// Git: the directory of the repository to ingest.
    #[arg(long)]
    path: Option<String>,
    /// Git: where the files are on the web (`<base-url>/<file>`).
    #[arg(long)]
    base_url: Option<String>,
    /// Git: ingest each tag matching this glob (`v*`) as its own version, side by side.
    #[arg(long, conflicts_with = "branch")]
    versions_from_tags: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Kind {
    Site,
    Sitemap,
    Urls,
    Git,
}

impl AddArgs {
    /// Raw arguments -> the config entry.
    fn entry(self) -> SourceSettings {
        let schedule = match (self.every, self.cron) {
            (Some(every), _) => format!("every {}", every.trim()),
            (None, cron) => cron.unwrap_or_default(),
        };
        SourceSettings {
            name: self.name,
            collection: self.collection,
            kind: match self.kind {
                Kind::Site => SourceKind::Site,
                Kind::Sitemap => SourceKind::Sitemap,
                Kind::Urls => SourceKind::Urls,
                Kind::Git => SourceKind::Git,
            },
            urls: self.urls,
            schedule,
            scope: self.bounds.scope,
            include: self.bounds.include,
            exclude: self.bounds.exclude,
            max_pages: self.bounds.max_pages,
            max_depth: self.bounds.max_depth,
            allow_hosts: self.bounds.allow_host,
            metadata: Default::default(),
            render: self.bounds.render,
            auth: None,
            branch: self.branch,
            path: self.path,
            base_url: self.base_url,
            versions_from_tags: self.versions_from_tags,
        }
    }
}

pub async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let (json, remote) = match cmd {
        Command::List { json, remote } => (json, remote),
        Command::Add(args) => {
            let file = config_file(ctx, "add")?;
            let entry = args.entry();
            let name = entry.name.clone();
            let cfg = aidocs::config::edit::add_source(file, &entry)?;
            let s = cfg.sources.iter().find(|s| s.name == name).expect("just added");
            println!("added source `{name}` ({}, {}) to {}; aidocs-server runs it from its next start", s.schedule, s.urls.join(" "), file.display());
            return Ok(());
        }
        Command::Remove { name } => {
            let file = config_file(ctx, "remove")?;
            aidocs::config::edit::remove_source(file, &name)?;
            println!("removed source `{name}` from {}; its pages stay in their collection", file.display());
            return Ok(());
        }
    };
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
        if !s.auth.is_empty() {
            println!("    credentials: {}", s.auth.join(", "));
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
