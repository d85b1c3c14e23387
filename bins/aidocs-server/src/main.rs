//! `aidocs-server`: load config, open the engine, serve the HTTP API (`aidocs_http::router`),
//! warm the model and the store, start the backup schedule and rollout checks, drain on
//! SIGINT/SIGTERM.
//!
//! Must not know: routes, search, ingest or settings rules; those live in the library crates.

use aidocs::{Config, ConfigSource, Engine};
use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (cfg, warnings) =
        Config::load(&ConfigSource { file: args.config.clone(), template: args.template.clone(), use_env: true })?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if cfg.server.worker_threads > 0 {
        runtime.worker_threads(cfg.server.worker_threads);
    }
    runtime.enable_all().build()?.block_on(serve(args, cfg, warnings))
}

async fn serve(args: Args, mut cfg: Config, warnings: Vec<String>) -> anyhow::Result<()> {
    // After the config: it says whether to trace stages and where to export spans.
    let telemetry = aidocs::obs::logging::init(&aidocs::obs::logging::LogSettings {
        default_level: "info,qdrant_edge=error".into(),
        request_tracing: cfg.telemetry.request_tracing,
        otlp_endpoint: cfg.telemetry.otlp_endpoint.clone(),
        service_name: "aidocs-server".into(),
    })?;
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
    // No keys on a public address: refuse, unless the operator said so explicitly.
    cfg.check_exposure()?;
    if cfg.auth.keys.is_empty() {
        tracing::warn!(bind = %cfg.server.bind, "no API keys configured: every route is open to whoever can reach this address");
    }
    let bind = cfg.server.bind.clone();
    let drain = Duration::from_millis(cfg.server.shutdown_timeout_ms);
    let engine = tokio::task::spawn_blocking(move || Engine::open(cfg)).await??;
    // A Qdrant server must be reachable, accept the API key and be a supported version.
    let store = engine.store().check().await.context("checking the vector store")?;
    tracing::info!(%store, "vector store ready");
    // Canary checks and scheduled cleanups run beside the server.
    tokio::spawn(engine.rollout().run_rollout_checks());
    // Scheduled backups (`backup.schedule`), when configured.
    tokio::spawn(engine.backup().run_schedule());
    // Web sources kept fresh on their schedules (`[[sources]]`).
    tokio::spawn(engine.sources().run_schedules());
    let listener = tokio::net::TcpListener::bind(&bind).await.with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(addr = %listener.local_addr()?, "aidocs-server listening");
    // The model and the store are warmed beside the first requests; readiness says
    // `warming` until it is done, so a balancer sends traffic to a warm replica.
    if engine.config().server.warm_up {
        tokio::spawn({
            let engine = engine.clone();
            async move { engine.warm_up().await }
        });
    }
    // Peer addresses feed the per-client rate limit.
    let app = aidocs_http::router(engine).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let (signalled, on_signal) = tokio::sync::oneshot::channel();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async {
        shutdown().await;
        let _ = signalled.send(());
    });
    // Draining is bounded: past `server.shutdown_timeout_ms` the process exits anyway.
    let deadline = async {
        if on_signal.await.is_ok() {
            tokio::time::sleep(drain).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = serve => r?,
        _ = deadline => tracing::warn!(drain_ms = drain.as_millis() as u64, "drain deadline passed; exiting with requests still in flight"),
    }
    tracing::info!("aidocs-server stopped");
    drop(telemetry);
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
