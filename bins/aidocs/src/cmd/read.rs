//! `aidocs libraries`, `aidocs show` and `aidocs resolve`: what a library holds, a section
//! or page read whole, and a library name with a version requirement resolved to what is
//! indexed, on the local data dir.

use super::{Ctx, open_engine, print_json};

#[derive(clap::Args, Debug)]
pub struct LibrariesArgs {
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// `page-url#anchor` or a hit's id: the section; a page URL without an anchor: the page.
    target: String,
    /// The collection (default `search.default_collection`).
    #[arg(long)]
    collection: Option<String>,
    /// Token budget of a page (200 to 100000; default 5000).
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Where to go on from in a page (the cursor the previous answer ended with).
    #[arg(long, default_value_t = 0)]
    cursor: usize,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ResolveArgs {
    /// `NAME`, `NAME@VERSION` or `NAME` with a requirement (`react@^18.2`, `python>=3.10,<3.12`).
    name: String,
    #[arg(long)]
    json: bool,
}

pub async fn libraries(args: LibrariesArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let libs = open_engine(ctx.config()?)?.libraries().await?;
    if args.json {
        return print_json(&libs);
    }
    for l in libs {
        let versions = if l.versions.is_empty() { "-".to_owned() } else { l.versions.join(", ") };
        println!("{}\tversions: {versions}\t{} pages\t{} chunks\t{}", l.name, l.pages, l.chunks, l.sources.join(" "));
    }
    Ok(())
}

pub async fn show(args: ShowArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let engine = open_engine(ctx.config()?)?;
    let collection = args.collection.as_deref();
    // A hit's id has no scheme; a page has one.
    let is_section = args.target.contains('#') || !args.target.contains("://");
    if is_section {
        let s = engine.section(collection, &args.target).await?;
        return if args.json { print_json(&s) } else { Ok(print!("{}", s.render())) };
    }
    let p = engine.page(collection, &args.target, args.cursor, aidocs::read::budget(args.max_tokens)?).await?;
    if args.json { print_json(&p) } else { Ok(print!("{}", p.render())) }
}

pub async fn resolve(args: ResolveArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let r = open_engine(ctx.config()?)?.resolve_library(&args.name, None).await?;
    if args.json {
        return print_json(&r);
    }
    println!("{}", r.note);
    match r.version {
        Some(v) => println!("{}@{v}", r.library),
        None if r.requested.is_some() => anyhow::bail!("no indexed version of `{}` matches {}", r.library, r.requested.unwrap_or_default()),
        None => println!("{}", r.library),
    }
    Ok(())
}
