//! Log and trace setup shared by the binaries.
//!
//! - `LOG_FORMAT=json` for JSON lines (pretty otherwise), `LOG_LEVEL` (or `RUST_LOG`) for the
//!   filter. Logs go to stderr.
//! - With request tracing on, every span's close is logged with its busy and idle time, so
//!   per-stage spans (`search.embed`, `search.store_query`, ...) show up in the log under
//!   the request's `request_id`.
//! - With an OTLP endpoint, spans are also exported over OTLP/HTTP (protobuf) to
//!   `<endpoint>/v1/traces` by a batch processor on its own thread.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How to set up logs and traces.
#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    /// Filter when neither `LOG_LEVEL` nor `RUST_LOG` is set, e.g. `info,qdrant_edge=error`.
    pub default_level: String,
    /// Log span closes with timings (per-stage spans).
    pub request_tracing: bool,
    /// OTLP/HTTP collector base URL (`http://collector:4318`); empty: no export.
    pub otlp_endpoint: String,
    /// `service.name` of exported spans.
    pub service_name: String,
}

/// A trace setup error (the OTLP exporter could not be built).
#[derive(Debug, thiserror::Error)]
#[error("tracing: {0}")]
pub struct TracingError(String);

/// Keeps the trace exporter alive; dropping it flushes pending spans and stops the exporter.
#[derive(Debug, Default)]
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Export every finished span now.
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// The OTLP/HTTP span exporter for `endpoint` behind a batch processor, and its provider.
pub fn otlp_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, TracingError> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    // The HTTP client is built without a TLS provider of its own; the process uses ring.
    // Already installed (by another component) is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .map_err(|e| TracingError(format!("OTLP exporter for {endpoint}: {e}")))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name.to_owned()).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// A `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("aidocs"))
}

/// Install the global subscriber. Idempotent: a second call (tests) keeps the first.
pub fn init(settings: &LogSettings) -> Result<TelemetryGuard, TracingError> {
    let filter = std::env::var("LOG_LEVEL").ok().or_else(|| std::env::var("RUST_LOG").ok()).unwrap_or_else(|| settings.default_level.clone());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(&settings.default_level));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let span_events = if settings.request_tracing { FmtSpan::CLOSE } else { FmtSpan::NONE };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_span_events(span_events);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = if json { fmt.json().flatten_event(true).boxed() } else { fmt.boxed() };
    let mut guard = TelemetryGuard::default();
    let otel = if settings.otlp_endpoint.is_empty() {
        None
    } else {
        let provider = otlp_provider(&settings.otlp_endpoint, &settings.service_name)?;
        let layer = otel_layer(&provider);
        guard.provider = Some(provider);
        Some(layer)
    };
    let _ = tracing_subscriber::registry().with(fmt).with(otel).with(filter).try_init();
    Ok(guard)
}

/// Logs only, with `default_level` (for tools that take no config).
pub fn init_logging(default_level: &str) {
    let guard = init(&LogSettings { default_level: default_level.to_owned(), ..Default::default() });
    // Without an endpoint there is no exporter to keep alive.
    drop(guard);
}
