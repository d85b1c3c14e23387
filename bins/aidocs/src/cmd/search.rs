//! `aidocs search`: one query against a collection on the local data dir.

use super::{Ctx, open_engine};
use aidocs::SearchRequest;
use aidocs::core::SearchMode;

#[derive(clap::Args, Debug)]
pub struct Args {
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
    /// Search every version; by default a collection holding several is searched at its
    /// newest unless a `version` filter is given.
    #[arg(long)]
    all_versions: bool,
    /// `section` (one result per section, its best chunk) or `none` (every chunk); default
    /// from config (`search.collapse`).
    #[arg(long)]
    collapse: Option<String>,
    /// `page`: each hit's section whole, grouped by page, fitted to --max-tokens (Markdown,
    /// or `grouped` in --json).
    #[arg(long, value_parser = ["page"])]
    group_by: Option<String>,
    /// Token budget of the grouped answer (200 to 100000; default 5000).
    #[arg(long, requires = "group_by")]
    max_tokens: Option<usize>,
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mode = args.mode.map(|m| m.parse::<SearchMode>()).transpose().map_err(anyhow::Error::msg)?;
    let collapse = args.collapse.map(|c| c.parse::<aidocs::core::Collapse>()).transpose().map_err(anyhow::Error::msg)?;
    let filter = aidocs::filters::from_pairs(&args.filter)?;
    let engine = open_engine(ctx.config()?)?;
    let query = args.query;
    let resp = engine
        .search(SearchRequest { query: query.clone(), collection: args.collection, limit: args.limit, mode, filter, hyde: args.hyde, rerank: args.rerank, all_versions: args.all_versions, collapse })
        .await?;
    for (stage, note) in [("hyde", &resp.hyde), ("rerank", &resp.rerank)] {
        if let Some(n) = note.as_ref().filter(|n| n.is_skipped()) {
            eprintln!("note: {stage} {n}");
        }
    }
    if let Some(v) = &resp.default_version {
        eprintln!("note: searched version {v}, the newest of several indexed (--filter version=V or --all-versions for others)");
    }
    let grouped = match args.group_by {
        Some(_) => Some(engine.fit(&resp, aidocs::read::budget(args.max_tokens)?).await?),
        None => None,
    };
    if args.json {
        let mut v = serde_json::to_value(&resp)?;
        v["query"] = serde_json::Value::String(query);
        if let Some(g) = &grouped {
            v["grouped"] = serde_json::to_value(g)?;
        }
        return super::print_json(&v);
    }
    if let Some(g) = grouped {
        print!("{}", g.render());
        return Ok(());
    }
    if resp.hits.is_empty() {
        println!("no results in `{}`", resp.collection);
    }
    for (i, h) in resp.hits.iter().enumerate() {
        println!("{:>2}. [{:.4}] {} — {}", i + 1, h.score, h.title, h.heading_path.join(" > "));
        println!("    {}", h.url);
        println!("    {}", h.snippet);
    }
    Ok(())
}
