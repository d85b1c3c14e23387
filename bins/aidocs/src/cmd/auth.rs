//! `aidocs auth`: API key helpers. Needs no config.

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print the sha256 to put in `[[auth.keys]] sha256` for KEY.
    HashKey { key: String },
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::HashKey { key } => {
            if key.len() < 16 {
                anyhow::bail!("API keys must be at least 16 characters (got {})", key.len());
            }
            println!("{}", aidocs_http::hash_key(&key));
        }
    }
    Ok(())
}
