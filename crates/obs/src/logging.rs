//! Log setup shared by the binaries: `LOG_FORMAT=json` for JSON lines (pretty otherwise),
//! `LOG_LEVEL` (or `RUST_LOG`) for the filter. Logs go to stderr.

use tracing_subscriber::EnvFilter;

pub fn init_logging(default_level: &str) {
    let filter = std::env::var("LOG_LEVEL")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default_level.to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}
