//! `aidocs cache`: inspect or clear the configured cache (meaningful for a shared Redis
//! cache; an in-process cache lives in the server, see `GET/DELETE /v1/admin/cache`).

use super::Ctx;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Counters and health of the configured cache.
    Stats,
    /// Remove cached entries: one kind (embedding, search, hyde) or all.
    Clear {
        #[arg(long)]
        kind: Option<String>,
    },
}

pub async fn run(command: Command, ctx: &Ctx) -> anyhow::Result<()> {
    // The cache alone: no model load and no data-dir lock, so this works next to a running
    // server (the shared Redis cache is the one worth administering here).
    let Some(cache) = aidocs::engine::build_cache(&ctx.config()?)? else {
        println!("no cache configured (cache.kind = none)");
        return Ok(());
    };
    match command {
        Command::Stats => {
            let probe = cache.get("v1:probe").await;
            let mut stats = serde_json::to_value(cache.stats())?;
            stats["reachable"] = serde_json::Value::Bool(probe.is_ok());
            if let Err(e) = probe {
                stats["error"] = serde_json::Value::String(e.to_string());
            }
            super::print_json(&stats)
        }
        Command::Clear { kind } => {
            let kind = kind.map(|k| k.parse::<aidocs::cache::CacheKind>()).transpose().map_err(anyhow::Error::msg)?;
            let n = aidocs::cache::clear(cache.as_ref(), kind).await.map_err(|e| anyhow::anyhow!("cache clear failed: {e}"))?;
            println!("removed {n} cached entries ({})", kind.map_or("all kinds", |k| k.as_str()));
            Ok(())
        }
    }
}
