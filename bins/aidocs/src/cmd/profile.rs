//! `aidocs profile`: take a CPU profile of a running `aidocs-server` (admin scope) and write
//! it as an SVG flame graph or as collapsed stacks.

use anyhow::Context;
use std::path::PathBuf;

/// Output format of the profile (closed set; the server's `format` parameter).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An SVG flame graph (open it in a browser).
    Flamegraph,
    /// Collapsed stacks, one `thread;frame;...;frame count` line per stack (inferno,
    /// flamegraph.pl and speedscope read it).
    Folded,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Self::Flamegraph => "flamegraph",
            Self::Folded => "folded",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds to sample (the server bounds it: `server.profile_max_seconds`, default 60).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Samples per second per thread.
    #[arg(long, default_value_t = 99)]
    frequency: u32,
    #[arg(long, value_enum, default_value_t = Format::Flamegraph)]
    format: Format,
    /// Where to write it (default: aidocs-profile.svg or aidocs-profile.folded; `-` for
    /// standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Base URL of aidocs-server.
    #[arg(long, env = "AIDOCS_SERVER", default_value = "http://127.0.0.1:8000")]
    server: String,
    /// An API key with the admin scope (when auth is on).
    #[arg(long, env = "AIDOCS_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // The request lasts the profile plus the time to draw it.
    let timeout = std::time::Duration::from_secs(args.seconds.saturating_add(60));
    let client = aidocs_http::client::AdminClient::new(&args.server, args.api_key, timeout)?;
    let path = format!(
        "/v1/admin/profile?seconds={}&frequency={}&format={}",
        args.seconds,
        args.frequency,
        args.format.as_str()
    );
    eprintln!(
        "profiling {} for {} s at {} Hz ...",
        args.server, args.seconds, args.frequency
    );
    let bytes = client.get_bytes(&path).await?;
    let output = args.output.unwrap_or_else(|| match args.format {
        Format::Flamegraph => "aidocs-profile.svg".into(),
        Format::Folded => "aidocs-profile.folded".into(),
    });
    if output.as_os_str() == "-" {
        use std::io::Write;
        std::io::stdout().write_all(&bytes)?;
    } else {
        std::fs::write(&output, &bytes).with_context(|| format!("writing {}", output.display()))?;
        eprintln!("wrote {} ({} bytes)", output.display(), bytes.len());
    }
    Ok(())
}
