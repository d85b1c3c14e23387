//! `aidocs`: the admin CLI over a data dir. Parses arguments and calls the `aidocs` crate.

use aidocs::core::{DocMetadata, Fusion, SearchMode};
use aidocs::eval::{EvalMode, EvalOptions, EvalProgress};
use aidocs::{Config, ConfigSource, Engine, IngestRequest, SearchRequest};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod cmd;

#[derive(Parser, Debug)]
#[command(name = "aidocs", version, about = "aidocs: hybrid documentation search (admin CLI)")]
struct Cli {
    /// Config file (TOML or JSON).
    #[arg(long, global = true, env = "AIDOCS_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides config `data_dir`).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Config template (personal-use, development, production, testing).
    #[arg(long, global = true)]
    template: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ingest a directory or file of HTML / Markdown / reST / text (incremental).
    /// Ingest a directory or file, or crawl a documentation site (a URL), a sitemap
    /// (--sitemap) or a list of URLs (--urls).
    Ingest {
        /// A directory, a file, or an http(s) URL to crawl from.
        target: Option<String>,
        /// Sitemap or sitemap index URLs (repeatable).
        #[arg(long)]
        sitemap: Vec<String>,
        /// A file of URLs, one per line: exactly these pages.
        #[arg(long)]
        urls: Option<PathBuf>,
        /// Only URLs under this prefix (default: the start page's directory).
        #[arg(long)]
        scope: Option<String>,
        /// Globs on the URL path a page must match (repeatable).
        #[arg(long)]
        include: Vec<String>,
        /// Globs on the URL path that exclude a page (repeatable).
        #[arg(long)]
        exclude: Vec<String>,
        #[arg(long)]
        max_pages: Option<usize>,
        #[arg(long)]
        max_depth: Option<usize>,
        /// Allow this host to resolve to a private/loopback address (an intranet docs site).
        #[arg(long = "allow-host")]
        allow_host: Vec<String>,
        /// Target collection or alias (created when absent).
        #[arg(long)]
        collection: Option<String>,
        /// Metadata for every document: language, framework, doc_type, version, difficulty_level.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Base URL replacing file:// links (e.g. https://docs.python.org/3.11).
        #[arg(long)]
        base_url: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy a collection into another store (a data dir or a config file naming one):
    /// batched, resumable after an interruption, verified, optionally switching an alias.
    Migrate {
        /// The source: a data dir, or a config file (TOML/JSON) whose store to read.
        #[arg(long)]
        from: PathBuf,
        /// The target: a data dir, or a config file.
        #[arg(long)]
        to: PathBuf,
        /// Collection or alias in the source.
        #[arg(long)]
        collection: String,
        /// Name in the target (default: the source collection's name).
        #[arg(long)]
        into: Option<String>,
        /// Point this alias (in the target) at the copy once it verified.
        #[arg(long)]
        alias: Option<String>,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Re-crawl every web source registered for a collection (conditional requests).
    Sync {
        #[arg(long)]
        collection: Option<String>,
        #[arg(long)]
        json: bool,
        /// Run it on this server (admin API) instead of on the local data dir.
        #[arg(long, env = "AIDOCS_SERVER")]
        server: Option<String>,
        #[arg(long, env = "AIDOCS_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
    },
    /// Search a collection.
    Search {
        query: String,
        #[arg(long)]
        collection: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        /// hybrid, dense or sparse.
        #[arg(long)]
        mode: Option<String>,
        /// key=value (repeat a key for any-of), key>=value, key<=value.
        #[arg(long = "filter", value_name = "FILTER")]
        filter: Vec<String>,
        /// HyDE query expansion (`--hyde`, `--hyde false`); default from config.
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        hyde: Option<bool>,
        /// Rerank the fused candidates (`--rerank`, `--rerank false`); default from config.
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        rerank: Option<bool>,
        #[arg(long)]
        json: bool,
    },
    /// Measure retrieval quality on a BEIR-layout dataset (corpus.jsonl[.gz], queries.jsonl,
    /// qrels-test.tsv). Runs in a scratch data dir unless --data-dir is given.
    Eval {
        /// Dataset directory.
        #[arg(long)]
        dataset: PathBuf,
        /// Comma-separated: sparse, dense, hybrid, hyde, rerank.
        #[arg(long, default_value = "sparse,dense,hybrid", value_delimiter = ',')]
        modes: Vec<String>,
        /// Extra hybrid rows with this fusion (rrf:K, rrf:K:DENSE_W:SPARSE_W, dbsf); repeatable.
        #[arg(long = "fusion", value_name = "FUSION")]
        fusions: Vec<String>,
        /// Only the first N test queries.
        #[arg(long)]
        max_queries: Option<usize>,
        /// Write per-query rankings (JSONL) here.
        #[arg(long)]
        dump: Option<PathBuf>,
        /// Write the Markdown table here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Corpus embedding cache (default: ~/.cache/aidocs/eval).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// BM25 title weighting: count each title this many times.
        #[arg(long, default_value_t = 1)]
        title_weight: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inspect or clear the cache (meaningful for a shared Redis cache; an in-process cache
    /// lives in the server, see `GET/DELETE /v1/admin/cache`).
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// API key helpers.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// List, inspect and delete collections.
    Collections {
        #[command(subcommand)]
        command: CollectionsCommand,
    },
    /// Show or validate the effective configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Zero-downtime re-index of an alias.
    Deploy {
        #[command(subcommand)]
        command: DeployCommand,
    },
    /// Canary rollouts on a running server (admin API).
    /// Take a CPU profile of a running aidocs-server (admin scope): an SVG flame graph or
    /// collapsed stacks, bounded in duration, one at a time per server.
    Profile(cmd::profile::Args),
    Canary {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: CanaryCommand,
    },
    /// Backups of collections: create, list, verify, restore, prune, drill. Runs here on the
    /// data dir, or on a running server with --server.
    Backup {
        /// Run it on this server (admin API) instead of on the local data dir.
        #[arg(long, env = "AIDOCS_SERVER", global = true)]
        server: Option<String>,
        #[arg(long, env = "AIDOCS_API_KEY", hide_env_values = true, global = true)]
        api_key: Option<String>,
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Repair a data dir the server refuses to open: restore the previous catalog generation
    /// when `catalog.json` is missing or corrupt, list collection directories no catalog entry
    /// references, and delete them only with --remove-orphans. Takes the data-dir lock: stop
    /// the server first.
    Repair {
        /// Delete the collection directories that no catalog entry references.
        #[arg(long)]
        remove_orphans: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A/B tests of search configurations on a running server (admin API).
    Ab {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: AbCommand,
    },
}

#[derive(Subcommand, Debug)]
enum BackupCommand {
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

impl BackupCommand {
    fn dest(&self) -> Option<&String> {
        match self {
            Self::Create { dest, .. } | Self::List { dest, .. } | Self::Verify { dest, .. } | Self::Restore { dest, .. } | Self::Prune { dest, .. } | Self::Drill { dest, .. } => dest.as_ref(),
        }
    }
}

fn print_web_report(r: &aidocs::web::WebIngestReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let c = &r.crawl;
    println!(
        "crawled into `{}`: {} pages fetched, {} not modified, {} queued, {} skipped ({} by robots.txt), {} blocked, {} failed, {:.1} MB; {} written, {} unchanged, {} deleted, {} chunks written ({:.1} s)",
        r.collection, c.pages_fetched, c.not_modified, c.queued, c.skipped, c.robots_disallowed, c.blocked, c.failed, c.bytes as f64 / 1e6,
        r.documents_written, r.documents_unchanged, r.documents_deleted, r.chunks_written, r.took_ms / 1000.0
    );
    for n in &r.blocked {
        eprintln!("blocked {}: {}", n.url, n.reason);
    }
    for n in &r.failed {
        eprintln!("failed {}: {}", n.url, n.reason);
    }
    Ok(())
}

fn read_queries(file: &std::path::Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(file)
        .with_context(|| format!("reading validation queries {}", file.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

#[derive(Subcommand, Debug)]
enum AbCommand {
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

/// Where the running server is.
#[derive(clap::Args, Debug, Clone)]
struct ServerArgs {
    /// Base URL of aidocs-server.
    #[arg(long, env = "AIDOCS_SERVER", default_value = "http://127.0.0.1:8000")]
    server: String,
    /// An API key with the admin scope (when auth is on).
    #[arg(long, env = "AIDOCS_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

impl ServerArgs {
    fn client(&self, timeout: std::time::Duration) -> anyhow::Result<aidocs::client::AdminClient> {
        Ok(aidocs::client::AdminClient::new(&self.server, self.api_key.clone(), timeout)?)
    }
}

#[derive(Subcommand, Debug)]
enum DeployCommand {
    /// Build a new collection from SOURCE beside the alias's current one, validate it, switch
    /// the alias atomically, watch live traffic, keep the old one for a grace period.
    BlueGreen {
        #[arg(long)]
        alias: String,
        #[arg(long)]
        source: PathBuf,
        /// Validation queries, one per line.
        #[arg(long)]
        validate_queries: Option<PathBuf>,
        /// Run it on this server (its live traffic is monitored after the switch); without
        /// it, the deployment runs here on the data dir, with no live traffic to monitor.
        #[arg(long, env = "AIDOCS_SERVER")]
        server: Option<String>,
        #[arg(long, env = "AIDOCS_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Metadata for every document (as for ingest).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        min_hits: Option<usize>,
        #[arg(long)]
        min_top_score: Option<f32>,
        #[arg(long)]
        min_overlap: Option<f64>,
        #[arg(long)]
        max_point_change: Option<f64>,
        #[arg(long)]
        monitor_s: Option<u64>,
        #[arg(long)]
        grace_s: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum CanaryCommand {
    /// Start sending a share of ALIAS's traffic to COLLECTION in stages.
    Start {
        #[arg(long)]
        alias: String,
        #[arg(long)]
        collection: String,
        #[arg(long)]
        id: Option<String>,
        /// JSON file: [{"percentage", "duration_s", "max_error_rate", "max_p95_ms", "min_requests"}, ...]
        /// ending at 100 (default 5/25/50/100 %, 30 min each).
        #[arg(long)]
        stages: Option<PathBuf>,
        /// Consecutive breached checks that roll back (default 2).
        #[arg(long)]
        rollback_after_breaches: Option<u32>,
    },
    /// Stage, timing, hold reason and both arms' statistics.
    Status { id: String },
    /// Every canary, active or ended.
    List,
    /// Stop stage progress (traffic stays split; the stage timer stops).
    Pause { id: String },
    Resume { id: String },
    /// Send all traffic back to stable now.
    Rollback {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum CollectionsCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    Info {
        name: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum AuthCommand {
    /// Print the sha256 to put in `[[auth.keys]] sha256` for KEY.
    HashKey { key: String },
}

#[derive(Subcommand, Debug)]
enum CacheCommand {
    /// Counters and health of the configured cache.
    Stats,
    /// Remove cached entries: one kind (embedding, search, hyde) or all.
    Clear {
        #[arg(long)]
        kind: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print the effective configuration as JSON.
    Show,
    /// Check the configuration and exit 0 if it is valid.
    Validate,
    /// List the config templates, one line each.
    Templates,
    /// Rewrite a config file written for an older aidocs in place (renamed keys, the
    /// `minimal-cost` template), keeping FILE.bak, and print what changed.
    Migrate { file: PathBuf },
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let (mut cfg, warnings) = Config::load(&ConfigSource {
        file: cli.config.clone(),
        template: cli.template.clone(),
        use_env: true,
    })?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if let Some(d) = &cli.data_dir {
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

/// Metadata as the API's `metadata` object (only the keys that are set).
fn metadata_json(m: &DocMetadata) -> serde_json::Value {
    let mut v = serde_json::Map::new();
    for (k, val) in [("language", &m.language), ("framework", &m.framework), ("doc_type", &m.doc_type), ("version", &m.version)] {
        if let Some(x) = val {
            v.insert(k.into(), x.clone().into());
        }
    }
    if let Some(d) = m.difficulty_level {
        v.insert("difficulty_level".into(), d.into());
    }
    serde_json::Value::Object(v)
}

fn parse_metadata(pairs: &[String]) -> anyhow::Result<DocMetadata> {
    let mut m = DocMetadata::default();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else { bail!("--set `{pair}` must look like key=value") };
        let v = v.trim().to_owned();
        match k.trim() {
            "language" => m.language = Some(v),
            "framework" => m.framework = Some(v),
            "doc_type" => m.doc_type = Some(v),
            "version" => m.version = Some(v),
            "difficulty_level" => {
                m.difficulty_level = Some(v.parse().with_context(|| format!("--set difficulty_level: `{v}` is not an integer"))?)
            }
            other => bail!("--set: unknown metadata key `{other}` (known: language, framework, doc_type, version, difficulty_level)"),
        }
    }
    Ok(m)
}

fn default_eval_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("aidocs/eval")
}

/// Eval progress as one indicatif bar per stage (hidden when stderr is not a terminal).
#[derive(Default)]
struct BarEvalProgress {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl EvalProgress for BarEvalProgress {
    fn stage(&self, what: &str, total: usize) {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} {elapsed}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(what.to_owned());
        if let Some(old) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).replace(bar) {
            old.finish();
        }
    }
    fn inc(&self, n: usize) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            b.inc(n as u64);
        }
    }
}

fn open_engine(cfg: Config) -> anyhow::Result<Engine> {
    let engine = Engine::open(cfg)?;
    // A Qdrant server must be reachable, accept the API key and be a supported version.
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(engine.store().check()))
        .context("checking the vector store")?;
    Ok(engine)
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
    // Commands that talk only to a server need no local config.
    let cli = match cli.command {
        Command::Profile(args) => return cmd::profile::run(args).await,
        _ => cli,
    };
    let cfg = load_config(&cli)?;
    match cli.command {
        Command::Profile(_) => unreachable!("handled above"),
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            println!("{}", serde_json::to_string_pretty(&cfg)?);
        }
        Command::Config { command: ConfigCommand::Templates } => {
            for (name, summary) in aidocs::config::TEMPLATE_SUMMARIES {
                println!("{name:<13} {summary}");
            }
        }
        Command::Config { command: ConfigCommand::Migrate { file } } => {
            let r = aidocs::config_migrate::migrate_file(&file)?;
            if r.changes.is_empty() {
                println!("{} is current; nothing to change", file.display());
            } else {
                for c in &r.changes {
                    println!("{c}");
                }
                print!("{}", r.diff);
                if let Some(b) = &r.backup {
                    println!("rewrote {} (the original is at {})", file.display(), b.display());
                }
            }
        }
        Command::Config { command: ConfigCommand::Validate } => {
            println!("configuration is valid (template: {})", cfg.template.as_deref().unwrap_or("none"));
        }
        Command::Ingest { target, sitemap, urls, scope, include, exclude, max_pages, max_depth, allow_host, collection, set, base_url, json } => {
            let metadata = parse_metadata(&set)?;
            let collection = collection.unwrap_or_else(|| cfg.search.default_collection.clone());
            let is_url = target.as_deref().is_some_and(|t| t.starts_with("http://") || t.starts_with("https://"));
            let web = match (target, sitemap.is_empty(), urls) {
                (Some(path), true, None) if !is_url => Err(PathBuf::from(path)),
                (Some(t), true, None) => Ok((aidocs::web::WebSourceKind::Site, vec![t])),
                (None, false, None) => Ok((aidocs::web::WebSourceKind::Sitemap, sitemap)),
                (None, true, Some(file)) => {
                    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                    let list: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect();
                    if list.is_empty() {
                        bail!("{} lists no URLs", file.display());
                    }
                    Ok((aidocs::web::WebSourceKind::Urls, list))
                }
                (None, true, None) => bail!("give a directory, a file or a URL to ingest (or --sitemap URL / --urls FILE)"),
                _ => bail!("give one of: a path or URL, --sitemap, --urls"),
            };
            let engine = open_engine(cfg)?;
            let progress = aidocs::progress::for_terminal();
            match web {
                Err(path) => {
                    let report = engine.ingest(IngestRequest { path, collection, metadata, base_url }, progress.as_ref()).await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    } else {
                        println!(
                            "ingested into `{}`: {} files, {} written, {} unchanged, {} deleted, {} chunks written, {} points deleted, {} skipped ({:.1} s)",
                            report.collection, report.files_seen, report.documents_written, report.documents_unchanged,
                            report.documents_deleted, report.chunks_written, report.points_deleted, report.skipped.len(),
                            report.took_ms / 1000.0
                        );
                        for s in &report.skipped {
                            eprintln!("skipped {}: {}", s.path, s.reason);
                        }
                    }
                }
                Ok((kind, list)) => {
                    let source = aidocs::web::WebSource {
                        kind,
                        urls: list,
                        scope,
                        include,
                        exclude,
                        max_pages,
                        max_depth,
                        allow_hosts: allow_host,
                        metadata,
                    };
                    let report = engine.ingest_web(aidocs::web::WebIngestRequest { collection, source }, progress.as_ref()).await?;
                    print_web_report(&report, json)?;
                }
            }
        }
        Command::Migrate { from, to, collection, into, alias, batch } => {
            let store_config = |p: &std::path::Path| -> anyhow::Result<aidocs::Config> {
                if p.is_file() {
                    let (cfg, _) = aidocs::Config::load(&ConfigSource { file: Some(p.to_path_buf()), template: None, use_env: false })?;
                    Ok(cfg)
                } else {
                    let mut cfg = aidocs::Config::default();
                    cfg.data_dir = p.to_path_buf();
                    Ok(cfg)
                }
            };
            let (from_cfg, to_cfg) = (store_config(&from)?, store_config(&to)?);
            let place = |c: &Config| match c.vector_store.kind {
                aidocs::config::StoreKind::Embedded => format!("the embedded store at {}", c.data_dir.display()),
                aidocs::config::StoreKind::Qdrant => format!("the Qdrant server at {}", c.vector_store.url),
            };
            if place(&from_cfg) == place(&to_cfg) {
                bail!("--from and --to name the same store ({}); use `deploy blue-green` or a backup to copy within one store", place(&from_cfg));
            }
            let open = |c: &Config| -> anyhow::Result<std::sync::Arc<dyn aidocs::core::VectorStore>> {
                let store = aidocs::migrate::open_store(c).with_context(|| format!("opening {}", place(c)))?;
                tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(store.check())).with_context(|| format!("checking {}", place(c)))?;
                Ok(store)
            };
            let (source, target) = (open(&from_cfg)?, open(&to_cfg)?);
            let opts = aidocs::migrate::MigrateOptions {
                collection,
                into,
                alias,
                batch_points: batch.max(1),
                sample_points: 64,
                checkpoint_dir: to_cfg.data_dir.join("migrate"),
            };
            let report = aidocs::migrate::migrate(source.as_ref(), target.as_ref(), &opts).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Sync { collection, json, server, api_key } => {
            let collection = collection.unwrap_or_else(|| cfg.search.default_collection.clone());
            if let Some(url) = server {
                let client = aidocs::client::AdminClient::new(&url, api_key, std::time::Duration::from_secs(6 * 3600))?;
                let out = client.post("/v1/admin/sync", &serde_json::json!({"collection": collection})).await?;
                for r in out["reports"].as_array().cloned().unwrap_or_default() {
                    print_web_report(&serde_json::from_value(r)?, json)?;
                }
                return Ok(());
            }
            let engine = open_engine(cfg)?;
            let progress = aidocs::progress::for_terminal();
            for report in engine.sync(&collection, progress.as_ref()).await? {
                print_web_report(&report, json)?;
            }
        }
        Command::Search { query, collection, limit, mode, filter, hyde, rerank, json } => {
            let mode = mode.map(|m| m.parse::<SearchMode>()).transpose().map_err(anyhow::Error::msg)?;
            let filter = aidocs::filters::from_pairs(&filter)?;
            let engine = open_engine(cfg)?;
            let resp = engine.search(SearchRequest { query: query.clone(), collection, limit, mode, filter, hyde, rerank }).await?;
            for (stage, note) in [("hyde", &resp.hyde), ("rerank", &resp.rerank)] {
                if let Some(n) = note.as_ref().filter(|n| n.is_skipped()) {
                    eprintln!("note: {stage} {n}");
                }
            }
            if json {
                let mut v = serde_json::to_value(&resp)?;
                v["query"] = serde_json::Value::String(query);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if resp.hits.is_empty() {
                println!("no results in `{}`", resp.collection);
            } else {
                for (i, h) in resp.hits.iter().enumerate() {
                    println!("{:>2}. [{:.4}] {} — {}", i + 1, h.score, h.title, h.heading_path.join(" > "));
                    println!("    {}", h.url);
                    println!("    {}", h.snippet);
                }
            }
        }
        Command::Eval { dataset, modes, fusions, max_queries, dump, out, cache_dir, title_weight, json } => {
            let modes = modes.iter().map(|m| m.trim().parse::<EvalMode>()).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
            let fusions = fusions.iter().map(|f| f.parse::<Fusion>()).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
            if !dataset.is_dir() {
                bail!("--dataset {}: not a directory", dataset.display());
            }
            let scratch = tempfile::tempdir()?;
            let mut cfg = cfg;
            if cli.data_dir.is_none() {
                cfg.data_dir = scratch.path().to_path_buf();
            }
            cfg.ingest.optimize = true;
            let cache_dir = cache_dir.unwrap_or_else(default_eval_cache);
            let engine = open_engine(cfg)?;
            let opts = EvalOptions { dataset, modes, fusions, max_queries, dump, cache_dir, title_weight: title_weight.max(1) };
            let report = aidocs::eval::run(&engine, &opts, &BarEvalProgress::default()).await?;
            let table = report.markdown();
            if let Some(out) = out {
                std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{table}");
            }
        }
        Command::Auth { command: AuthCommand::HashKey { key } } => {
            if key.len() < 16 {
                bail!("API keys must be at least 16 characters (got {})", key.len());
            }
            println!("{}", aidocs::api::hash_key(&key));
        }
        Command::Cache { command } => {
            // The cache alone: no model load and no data-dir lock, so this works next to a
            // running server (the shared Redis cache is the one worth administering here).
            let Some(cache) = aidocs::engine::build_cache(&cfg)? else {
                println!("no cache configured (cache.kind = none)");
                return Ok(());
            };
            match command {
                CacheCommand::Stats => {
                    let probe = cache.get("v1:probe").await;
                    let mut stats = serde_json::to_value(cache.stats())?;
                    stats["reachable"] = serde_json::Value::Bool(probe.is_ok());
                    if let Err(e) = probe {
                        stats["error"] = serde_json::Value::String(e.to_string());
                    }
                    println!("{}", serde_json::to_string_pretty(&stats)?);
                }
                CacheCommand::Clear { kind } => {
                    let kind = kind.map(|k| k.parse::<aidocs::cache::CacheKind>()).transpose().map_err(anyhow::Error::msg)?;
                    let n = aidocs::cache::clear(cache.as_ref(), kind).await.map_err(|e| anyhow::anyhow!("cache clear failed: {e}"))?;
                    println!("removed {n} cached entries ({})", kind.map_or("all kinds", |k| k.as_str()));
                }
            }
        }
        Command::Deploy { command: DeployCommand::BlueGreen { alias, source, validate_queries, server, api_key, set, min_hits, min_top_score, min_overlap, max_point_change, monitor_s, grace_s } } => {
            let queries = validate_queries.as_deref().map(read_queries).transpose()?.unwrap_or_default();
            let mut settings = cfg.rollout.blue_green.clone();
            settings.min_hits = min_hits.unwrap_or(settings.min_hits);
            settings.min_top_score = min_top_score.unwrap_or(settings.min_top_score);
            settings.min_overlap = min_overlap.unwrap_or(settings.min_overlap);
            settings.max_point_change = max_point_change.unwrap_or(settings.max_point_change);
            settings.monitor_s = monitor_s.unwrap_or(settings.monitor_s);
            settings.grace_s = grace_s.unwrap_or(settings.grace_s);
            let source = std::fs::canonicalize(&source).with_context(|| format!("source {}", source.display()))?;
            let metadata = parse_metadata(&set)?;
            let report = match server {
                Some(url) => {
                    let client = aidocs::client::AdminClient::new(&url, api_key, std::time::Duration::from_secs(6 * 3600))?;
                    let body = serde_json::json!({
                        "alias": alias, "source": source, "validate_queries": queries, "settings": settings,
                        "metadata": metadata_json(&metadata),
                    });
                    client.post("/v1/admin/deploy/blue-green", &body).await?
                }
                None => {
                    if settings.monitor_s > 0 {
                        eprintln!("note: no server here, so no live traffic to monitor after the switch (use --server to deploy on a running server)");
                    }
                    settings.monitor_s = 0;
                    let engine = open_engine(cfg)?;
                    let req = aidocs::rollout::BlueGreenRequest {
                        alias,
                        source,
                        metadata: serde_json::from_value(metadata_json(&metadata))?,
                        base_url: None,
                        validate_queries: queries,
                        settings: Some(settings),
                    };
                    let progress = aidocs::progress::BarProgress::default();
                    serde_json::to_value(engine.deploy_blue_green(req, &progress).await?)?
                }
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Canary { server, command } => {
            let client = server.client(std::time::Duration::from_secs(60))?;
            let out = match command {
                CanaryCommand::Start { alias, collection, id, stages, rollback_after_breaches } => {
                    let stages: Option<serde_json::Value> = match stages {
                        Some(f) => Some(serde_json::from_str(&std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?).with_context(|| format!("{} is not a JSON list of stages", f.display()))?),
                        None => None,
                    };
                    let mut body = serde_json::json!({"alias": alias, "collection": collection});
                    if let Some(id) = id {
                        body["id"] = id.into();
                    }
                    if let Some(s) = stages {
                        body["stages"] = s;
                    }
                    if let Some(n) = rollback_after_breaches {
                        body["rollback_after_breaches"] = n.into();
                    }
                    client.post("/v1/admin/canaries", &body).await?
                }
                CanaryCommand::Status { id } => client.get(&format!("/v1/admin/canaries/{id}")).await?,
                CanaryCommand::List => client.get("/v1/admin/canaries").await?,
                CanaryCommand::Pause { id } => client.post(&format!("/v1/admin/canaries/{id}/pause"), &serde_json::json!({})).await?,
                CanaryCommand::Resume { id } => client.post(&format!("/v1/admin/canaries/{id}/resume"), &serde_json::json!({})).await?,
                CanaryCommand::Rollback { id, reason } => client.post(&format!("/v1/admin/canaries/{id}/rollback"), &serde_json::json!({"reason": reason})).await?,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Backup { server, api_key, command } => {
            if let Some(url) = server {
                if command.dest().is_some() {
                    bail!("--dest applies to backups made here; a server uses its own backup.dest");
                }
                let client = aidocs::client::AdminClient::new(&url, api_key, std::time::Duration::from_secs(6 * 3600))?;
                let out = match command {
                    BackupCommand::Create { collection, native: true, .. } => {
                        client.post("/v1/admin/backups", &serde_json::json!({"collection": collection, "native": true})).await?
                    }
                    BackupCommand::Create { collection, kind, .. } => {
                        let kind: aidocs::backup::BackupKind = kind.parse().map_err(anyhow::Error::msg)?;
                        client.post("/v1/admin/backups", &serde_json::json!({"collection": collection, "type": kind})).await?
                    }
                    BackupCommand::List { collection, .. } => match collection {
                        Some(c) => client.get(&format!("/v1/admin/backups?collection={c}")).await?,
                        None => client.get("/v1/admin/backups").await?,
                    },
                    BackupCommand::Verify { id, .. } => client.post(&format!("/v1/admin/backups/{id}/verify"), &serde_json::json!({})).await?,
                    BackupCommand::Restore { id, into, switch_alias, validate_queries, .. } => {
                        let queries = validate_queries.as_deref().map(read_queries).transpose()?;
                        let body = serde_json::json!({"into": into, "switch_alias": switch_alias, "validate_queries": queries});
                        client.post(&format!("/v1/admin/backups/{id}/restore"), &body).await?
                    }
                    BackupCommand::Prune { keep_last, keep_days, .. } => {
                        client.post("/v1/admin/backups/prune", &serde_json::json!({"keep_last": keep_last, "keep_days": keep_days})).await?
                    }
                    BackupCommand::Drill { collection, .. } => client.post("/v1/admin/backups/drill", &serde_json::json!({"collection": collection})).await?,
                };
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            let mut cfg = cfg;
            if let Some(d) = command.dest() {
                cfg.backup.dest = Some(d.clone());
            }
            // Listing and verifying read only the repository: no model, no data-dir lock.
            match &command {
                BackupCommand::List { collection, json, .. } => {
                    let repo = aidocs::backup::repository(&cfg)?;
                    let list = repo.summaries(collection.as_deref()).await.map_err(aidocs::Error::from)?;
                    let native = repo.native_entries(collection.as_deref()).await.map_err(aidocs::Error::from)?;
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"backups": list, "native": native}))?);
                    } else {
                        for b in &list {
                            println!("{}\t{}\t{}\t{} points\t{} records\t{} bytes", b.id, b.kind.as_str(), b.created_at.to_rfc3339(), b.points, b.records, b.archive_bytes);
                        }
                        for b in &native {
                            println!("{}\tnative\t{}\t{} points\t{}\t{} bytes", b.id, b.created_at.to_rfc3339(), b.points, b.store, b.bytes);
                        }
                    }
                    return Ok(());
                }
                BackupCommand::Verify { id, .. } => {
                    let repo = aidocs::backup::repository(&cfg)?;
                    let report = if aidocs::backup::is_native_id(id) {
                        serde_json::to_value(repo.verify_native(id).await.map_err(aidocs::Error::from)?.0)?
                    } else {
                        serde_json::to_value(repo.verify(id).await.map_err(aidocs::Error::from)?)?
                    };
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    return Ok(());
                }
                _ => {}
            }
            let engine = open_engine(cfg)?;
            let out = match command {
                BackupCommand::Create { collection, native: true, .. } => serde_json::to_value(engine.backup_create_native(collection.as_deref()).await?)?,
                BackupCommand::Create { collection, kind, .. } => {
                    let kind: aidocs::backup::BackupKind = kind.parse().map_err(anyhow::Error::msg)?;
                    serde_json::to_value(engine.backup_create(collection.as_deref(), kind).await?)?
                }
                BackupCommand::List { .. } | BackupCommand::Verify { .. } => unreachable!("answered above without the engine"),
                BackupCommand::Restore { id, into, switch_alias, validate_queries, .. } => {
                    let validate_queries = validate_queries.as_deref().map(read_queries).transpose()?;
                    let req = aidocs::backup::RestoreRequest { into, switch_alias, validate_queries };
                    if aidocs::backup::is_native_id(&id) {
                        serde_json::to_value(engine.backup_restore_native(&id, req).await?)?
                    } else {
                        serde_json::to_value(engine.backup_restore(&id, req).await?)?
                    }
                }
                BackupCommand::Prune { keep_last, keep_days, .. } => {
                    let policy = (keep_last.is_some() || keep_days.is_some()).then_some(aidocs::backup::Retention { keep_last, keep_days });
                    serde_json::to_value(engine.backup_prune(policy).await?)?
                }
                BackupCommand::Drill { collection, .. } => {
                    let report = engine.backup_drill(collection.as_deref()).await?;
                    if !report.passed {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                        bail!("recovery drill failed: the temporary collection `{}` could not be deleted", report.collection);
                    }
                    serde_json::to_value(report)?
                }
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Ab { server, command } => {
            let client = server.client(std::time::Duration::from_secs(60))?;
            let out = match command {
                AbCommand::Create { alias, id, variants } => {
                    let text = std::fs::read_to_string(&variants).with_context(|| format!("reading {}", variants.display()))?;
                    let variants: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not a JSON list of variants", variants.display()))?;
                    let mut body = serde_json::json!({"alias": alias, "variants": variants});
                    if let Some(id) = id {
                        body["id"] = id.into();
                    }
                    client.post("/v1/admin/ab", &body).await?
                }
                AbCommand::Status { id } => client.get(&format!("/v1/admin/ab/{id}")).await?,
                AbCommand::List => client.get("/v1/admin/ab").await?,
                AbCommand::Stop { id } => client.post(&format!("/v1/admin/ab/{id}/stop"), &serde_json::json!({})).await?,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Repair { remove_orphans, json } => {
            let r = aidocs::repair::repair(&cfg.data_dir, remove_orphans)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                if r.restored_previous {
                    println!("restored the previous catalog generation (catalog.json.prev)");
                }
                println!("collections: {}", if r.collections.is_empty() { "none".into() } else { r.collections.join(", ") });
                for o in &r.orphans {
                    let done = if r.removed.contains(o) { "removed" } else { "kept; --remove-orphans deletes it" };
                    println!("not in the catalog: collections/{o} ({done})");
                }
            }
        }
        Command::Collections { command } => {
            let engine = open_engine(cfg)?;
            match command {
                CollectionsCommand::List { json } => {
                    let list = engine.collections().await?;
                    let aliases = engine.store().list_aliases().await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"collections": list, "aliases": aliases}))?);
                    } else {
                        for c in list {
                            println!("{}\t{} points\t{} dims\taliases: {}", c.name, c.points, c.dims, c.aliases.join(","));
                        }
                    }
                }
                CollectionsCommand::Info { name } => {
                    println!("{}", serde_json::to_string_pretty(&engine.collection(&name).await?)?);
                }
                CollectionsCommand::Delete { name } => {
                    engine.delete_collection(&name).await?;
                    println!("deleted collection `{name}`");
                }
            }
        }
    }
    Ok(())
}
