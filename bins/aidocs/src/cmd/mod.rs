//! One module per command, each with its arguments (`#[derive(Args)]` or a subcommand enum)
//! and its `run`. What several commands share lives here: the global arguments and the
//! [`Ctx`] that loads config only for the commands that need it, the engine opener, the
//! server arguments of remote commands and small argument parsers.

pub mod ab;
pub mod auth;
pub mod backup;
pub mod cache;
pub mod canary;
pub mod collections;
pub mod config;
pub mod deploy;
pub mod eval;
pub mod ingest;
pub mod mcp;
pub mod migrate;
pub mod profile;
pub mod read;
pub mod repair;
pub mod search;
pub mod sources;
pub mod sync;
pub mod target;

use aidocs::core::DocMetadata;
use aidocs::{Config, ConfigSource, Engine};
use aidocs_http::client::AdminClient;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Arguments every command accepts; only commands that need config read them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Config file (TOML or JSON).
    #[arg(long, global = true, env = "AIDOCS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides config `data_dir`).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Config template (personal-use, development, production, testing).
    #[arg(long, global = true)]
    pub template: Option<String>,
}

/// What a command runs with. Config is loaded on demand ([`Ctx::config`]), so commands that
/// need none (`auth hash-key`, `config migrate`, `profile`) work without a valid config.
pub struct Ctx {
    pub global: GlobalArgs,
}

impl Ctx {
    /// The resolved config (file, template, `AIDOCS__*`, environment fallbacks), with
    /// `--data-dir` applied; deprecation warnings go to stderr.
    pub fn config(&self) -> anyhow::Result<Config> {
        let g = &self.global;
        let (mut cfg, warnings) = Config::load(&ConfigSource { file: g.config.clone(), template: g.template.clone(), use_env: true })?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        if let Some(d) = &g.data_dir {
            cfg.data_dir = d.clone();
        }
        Ok(cfg)
    }
}

/// Open the engine on `cfg` and check its store: a Qdrant server must be reachable, accept
/// the API key and be a supported version.
pub fn open_engine(cfg: Config) -> anyhow::Result<Engine> {
    let engine = Engine::open(cfg)?;
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(engine.store().check()))
        .context("checking the vector store")?;
    Ok(engine)
}

/// Where the running server is (commands that only talk to a server).
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of aidocs-server.
    #[arg(long, env = "AIDOCS_SERVER", default_value = "http://127.0.0.1:8000")]
    pub server: String,
    /// An API key with the admin scope (when auth is on).
    #[arg(long, env = "AIDOCS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl ServerArgs {
    pub fn client(&self, timeout: std::time::Duration) -> anyhow::Result<AdminClient> {
        Ok(AdminClient::new(&self.server, self.api_key.clone(), timeout)?)
    }
}

/// Where a crawl may go and how far (`aidocs ingest URL`, `aidocs sources add`).
#[derive(clap::Args, Debug, Clone)]
pub struct CrawlBounds {
    /// Only URLs under this prefix (default: the start page's directory).
    #[arg(long)]
    pub scope: Option<String>,
    /// Globs on the URL path a page must match (repeatable).
    #[arg(long)]
    pub include: Vec<String>,
    /// Globs on the URL path that exclude a page (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    #[arg(long)]
    pub max_pages: Option<usize>,
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// Allow this host to resolve to a private/loopback address (an intranet docs site).
    #[arg(long = "allow-host")]
    pub allow_host: Vec<String>,
    /// `chromium`: load each HTML page in headless Chromium and index what its scripts built
    /// (a JavaScript site; needs chromium and chromium-driver).
    #[arg(long, default_value = "none", value_name = "none|chromium")]
    pub render: aidocs::ingest::Render,
}

/// A server to run on instead of the local data dir (commands that can do either).
#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArgs {
    /// Run it on this server (admin API) instead of on the local data dir.
    #[arg(long, env = "AIDOCS_SERVER")]
    pub server: Option<String>,
    #[arg(long, env = "AIDOCS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl RemoteArgs {
    /// A client for long admin jobs when `--server` is given.
    pub fn client(&self) -> anyhow::Result<Option<AdminClient>> {
        self.server
            .as_deref()
            .map(|url| AdminClient::new(url, self.api_key.clone(), std::time::Duration::from_secs(6 * 3600)).map_err(Into::into))
            .transpose()
    }
}

/// `--set KEY=VALUE` pairs as document metadata.
pub fn parse_metadata(pairs: &[String]) -> anyhow::Result<DocMetadata> {
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

/// Validation queries, one per line (`#` comments and blank lines skipped).
pub fn read_queries(file: &Path) -> anyhow::Result<Vec<String>> {
    Ok(read_lines(file).with_context(|| format!("reading validation queries {}", file.display()))?)
}

/// The non-empty, non-comment lines of a file.
pub fn read_lines(file: &Path) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(file)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// A JSON file the user named, as `T`, with an error that says which file and what it
/// should hold.
pub fn read_json<T: serde::de::DeserializeOwned>(file: &Path, what: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not {what}", file.display()))
}

/// Print a value as pretty JSON on stdout.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
