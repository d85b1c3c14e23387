//! `aidocs config`: show the resolved configuration (secrets redacted), validate it, list
//! the templates, migrate an old file. `templates` and `migrate` need no valid config.

use super::Ctx;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print the resolved configuration (file, template, AIDOCS__*, environment fallbacks such
    /// as REDIS_URL or QDRANT_URL) as JSON, with secrets redacted.
    Show,
    /// Check the configuration and exit 0 if it is valid.
    Validate,
    /// List the config templates, one line each.
    Templates,
    /// Rewrite a config file written for an older aidocs in place (renamed keys, the
    /// `minimal-cost` template), keeping FILE.bak, and print what changed.
    Migrate { file: PathBuf },
}

pub fn run(command: Command, ctx: &Ctx) -> anyhow::Result<()> {
    match command {
        Command::Show => super::print_json(&ctx.config()?.redacted())?,
        Command::Validate => {
            let cfg = ctx.config()?;
            println!("configuration is valid (template: {})", cfg.template.as_deref().unwrap_or("none"));
        }
        Command::Templates => {
            for (name, summary) in aidocs::config::TEMPLATE_SUMMARIES {
                println!("{name:<13} {summary}");
            }
        }
        Command::Migrate { file } => {
            let r = aidocs::config_migrate::migrate_file(&file)?;
            if r.changes.is_empty() {
                println!("{} is current; nothing to change", file.display());
                return Ok(());
            }
            for c in &r.changes {
                println!("{c}");
            }
            print!("{}", r.diff);
            if let Some(b) = &r.backup {
                println!("rewrote {} (the original is at {})", file.display(), b.display());
            }
        }
    }
    Ok(())
}
