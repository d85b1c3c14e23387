//! `aidocs-server`: load config, open the engine, serve the HTTP API, drain on SIGINT/SIGTERM.

use aidocs::{Config, ConfigSource, Engine};
use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "aidocs-server", version, about = "aidocs documentation search server")]
struct Args {
    /// Config file (TOML or JSON).
    #[arg(long, env = "AIDOCS_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides config `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen address (overrides config `server.bind`).
    #[arg(long)]
    bind: Option<String>,
    /// Config template (personal-use, development, production, testing).
    #[arg(long)]
    template: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    aidocs::obs::logging::init_logging("info,qdrant_edge=error");
    let args = Args::parse();
    let (mut cfg, warnings) =
        Config::load(&ConfigSource { file: args.config, template: args.template, use_env: true })?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(b) = args.bind {
        cfg.server.bind = b;
    }
    cfg.validate()?;
    let bind = cfg.server.bind.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(cfg)).await??;
    let listener = tokio::net::TcpListener::bind(&bind).await.with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(addr = %listener.local_addr()?, "aidocs-server listening");
    // Peer addresses feed the per-client rate limit.
    let app = aidocs::api::router(engine).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    tracing::info!("aidocs-server stopped");
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: draining in-flight requests");
}
