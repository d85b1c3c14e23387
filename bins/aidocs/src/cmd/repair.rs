//! `aidocs repair`: bring back a data dir the server refuses to open.

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Delete the collection directories that no catalog entry references.
    #[arg(long)]
    remove_orphans: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let r = aidocs::repair::repair(&ctx.config()?.data_dir, args.remove_orphans)?;
    if args.json {
        return super::print_json(&r);
    }
    if r.restored_previous {
        println!("restored the previous catalog generation (catalog.json.prev)");
    }
    println!("collections: {}", if r.collections.is_empty() { "none".into() } else { r.collections.join(", ") });
    for o in &r.orphans {
        let done = if r.removed.contains(o) { "removed" } else { "kept; --remove-orphans deletes it" };
        println!("not in the catalog: collections/{o} ({done})");
    }
    Ok(())
}
