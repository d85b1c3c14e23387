//! `aidocs collections`: list, inspect and delete collections on the local data dir.

use super::{Ctx, open_engine};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
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

pub async fn run(command: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let engine = open_engine(ctx.config()?)?;
    match command {
        Command::List { json } => {
            let list = engine.collections().list().await?;
            let aliases = engine.store().list_aliases().await?;
            if json {
                return super::print_json(&serde_json::json!({"collections": list, "aliases": aliases}));
            }
            for c in list {
                println!("{}\t{} points\t{} dims\taliases: {}", c.name, c.points, c.dims, c.aliases.join(","));
            }
        }
        Command::Info { name } => super::print_json(&engine.collections().get(&name).await?)?,
        Command::Delete { name } => {
            engine.collections().delete(&name).await?;
            println!("deleted collection `{name}`");
        }
    }
    Ok(())
}
