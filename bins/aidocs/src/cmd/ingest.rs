//! `aidocs ingest`: a directory or file, a documentation site crawled from a URL, a
//! sitemap (`--sitemap`), a list of URLs (`--urls`), or a Git repository (`--git`, at a ref
//! or every tag as a version), into a collection (incremental).

use super::{CrawlBounds, Ctx, open_engine, parse_metadata, read_lines};
use aidocs::report::SourceDetail;
use aidocs::ingest::{WebSource, WebSourceKind};
use aidocs::{IngestReport, IngestRequest};
use anyhow::{Context, bail};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A directory, a file, or an http(s) URL to crawl from.
    target: Option<String>,
    /// Sitemap or sitemap index URLs (repeatable).
    #[arg(long)]
    sitemap: Vec<String>,
    /// A file of URLs, one per line: exactly these pages.
    #[arg(long)]
    urls: Option<PathBuf>,
    /// A Git repository (https://, ssh://, git@host:path, file:// or a path): its Markdown,
    /// reST, HTML, PDF and API-spec files.
    #[arg(long, value_name = "URL")]
    git: Option<String>,
    /// Git: the branch or tag to ingest (default: the remote's default branch).
    #[arg(long = "ref", value_name = "REF", requires = "git")]
    git_ref: Option<String>,
    /// Git: the directory of the repository to ingest (default: all of it).
    #[arg(long = "path", value_name = "DIR", requires = "git")]
    git_path: Option<String>,
    /// Git: ingest each tag matching this glob (`v*`) as its own version (`v2.3.0` is
    /// version 2.3.0), side by side; the newest 20.
    #[arg(long, value_name = "GLOB", requires = "git", conflicts_with = "git_ref")]
    versions_from_tags: Option<String>,
    #[command(flatten)]
    bounds: CrawlBounds,
    /// Target collection or alias (created when absent).
    #[arg(long)]
    collection: Option<String>,
    /// The library to index into: the same as --collection.
    #[arg(long, conflicts_with = "collection")]
    library: Option<String>,
    /// The documentation's version, stored with every chunk (the same as --set version=V):
    /// several versions live side by side in one library.
    #[arg(long)]
    version: Option<String>,
    /// Metadata for every document: language, framework, doc_type, version, difficulty_level.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Base URL replacing file:// links (e.g. https://docs.python.org/3.11).
    #[arg(long)]
    base_url: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What to ingest: a local path, web pages, or a Git repository.
enum Input {
    Path(PathBuf),
    Web(WebSourceKind, Vec<String>),
    Git(String),
}

impl Args {
    fn input(&self) -> anyhow::Result<Input> {
        if let Some(url) = &self.git {
            if self.target.is_some() || !self.sitemap.is_empty() || self.urls.is_some() {
                bail!("give one of: a path or URL, --sitemap, --urls, --git");
            }
            if url.is_empty() || url.starts_with('-') {
                bail!("--git `{url}` is not a repository URL");
            }
            // A plain path is the repository on this machine.
            let url = if url.starts_with('/') { format!("file://{url}") } else { url.clone() };
            return Ok(Input::Git(url));
        }
        let is_url = self.target.as_deref().is_some_and(|t| t.starts_with("http://") || t.starts_with("https://"));
        Ok(match (&self.target, self.sitemap.is_empty(), &self.urls) {
            (Some(path), true, None) if !is_url => Input::Path(PathBuf::from(path)),
            (Some(t), true, None) => Input::Web(WebSourceKind::Site, vec![t.clone()]),
            (None, false, None) => Input::Web(WebSourceKind::Sitemap, self.sitemap.clone()),
            (None, true, Some(file)) => {
                let list = read_lines(file).with_context(|| format!("reading {}", file.display()))?;
                if list.is_empty() {
                    bail!("{} lists no URLs", file.display());
                }
                Input::Web(WebSourceKind::Urls, list)
            }
            (None, true, None) => bail!("give a directory, a file or a URL to ingest (or --sitemap URL / --urls FILE)"),
            _ => bail!("give one of: a path or URL, --sitemap, --urls"),
        })
    }
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let mut metadata = parse_metadata(&args.set)?;
    if let Some(v) = args.version.clone() {
        metadata.version = Some(v);
    }
    let input = args.input()?;
    let collection = args.collection.clone().or_else(|| args.library.clone()).unwrap_or_else(|| cfg.search.default_collection.clone());
    // The command exits after this one run: the model is unloaded before its final optimize.
    let ingest = open_engine(cfg)?.ingest().releasing(aidocs::core::Release::Model);
    let progress = aidocs::progress::for_terminal();
    let report = match input {
        Input::Path(_) | Input::Git(_) if !args.bounds.render.is_none() => bail!("--render is for web sources (a URL, --sitemap or --urls), not a path or a repository"),
        Input::Git(url) => {
            // One checkout per repository URL under <data_dir>/sources/ (kept for the next run).
            let name = aidocs::ingest::git::checkout_name("cli", &url);
            let req = aidocs::ingest::git::GitIngestRequest {
                name,
                collection,
                url,
                branch: args.git_ref.clone(),
                path: args.git_path.clone(),
                base_url: args.base_url.clone(),
                metadata,
                versions_from_tags: args.versions_from_tags.clone(),
                remote: aidocs::ingest::git::Remote::Operator,
                credentials: None,
            };
            let runs = ingest.git_source(req, progress.as_ref()).await?;
            if args.json {
                return super::print_json(&runs);
            }
            for g in &runs {
                println!("{} at {}:", g.branch, &g.commit[..g.commit.len().min(12)]);
                print_report(&g.report, false)?;
            }
            return Ok(());
        }
        Input::Path(path) => ingest.directory(IngestRequest { path, collection, metadata, base_url: args.base_url }, progress.as_ref()).await?,
        Input::Web(kind, urls) => {
            let source = WebSource {
                kind,
                urls,
                scope: args.bounds.scope,
                include: args.bounds.include,
                exclude: args.bounds.exclude,
                max_pages: args.bounds.max_pages,
                max_depth: args.bounds.max_depth,
                allow_hosts: args.bounds.allow_host,
                metadata,
                render: args.bounds.render,
            };
            ingest.web(aidocs::ingest::WebIngestRequest { collection, source }, progress.as_ref()).await?
        }
    };
    print_report(&report, args.json)
}

/// An ingest report: one summary line (files skipped, pages blocked or failed on stderr),
/// or JSON.
pub fn print_report(r: &IngestReport, json: bool) -> anyhow::Result<()> {
    if json {
        return super::print_json(r);
    }
    match &r.detail {
        SourceDetail::Directory(d) => {
            println!(
                "ingested into `{}`: {} files, {} written, {} unchanged, {} deleted, {} chunks written, {} points deleted, {} skipped ({:.1} s)",
                r.collection, d.files_seen, r.documents_written, r.documents_unchanged,
                r.documents_deleted, r.chunks_written, r.points_deleted, d.skipped.len(),
                r.took_ms / 1000.0
            );
            if r.chunks_written > 0 {
                let t = &r.stages;
                println!(
                    "time by stage: chunking {:.1} s, embedding {:.1} s, writing {:.1} s, optimizing {:.1} s (stages overlap)",
                    t.chunk_ms / 1000.0, t.embed_ms / 1000.0, t.write_ms / 1000.0, t.optimize_ms / 1000.0
                );
            }
            for s in &d.skipped {
                eprintln!("skipped {}: {}", s.path, s.reason);
            }
        }
        SourceDetail::Web(w) => {
            let c = &w.crawl;
            // Said only when the source is rendered (a plain crawl has no browser to report).
            let rendered = if c.rendered + c.render_blocked > 0 {
                format!(", {} rendered ({} browser requests blocked)", c.rendered, c.render_blocked)
            } else {
                String::new()
            };
            println!(
                "crawled into `{}`: {} pages fetched{rendered}, {} not modified, {} queued, {} skipped ({} by robots.txt), {} blocked, {} failed, {:.1} MB; {} written, {} unchanged, {} deleted, {} chunks written ({:.1} s)",
                r.collection, c.pages_fetched, c.not_modified, c.queued, c.skipped, c.robots_disallowed, c.blocked, c.failed, c.bytes as f64 / 1e6,
                r.documents_written, r.documents_unchanged, r.documents_deleted, r.chunks_written, r.took_ms / 1000.0
            );
            for n in &w.blocked {
                eprintln!("blocked {}: {}", n.url, n.reason);
            }
            for n in &w.failed {
                eprintln!("failed {}: {}", n.url, n.reason);
            }
        }
    }
    Ok(())
}

