//! [`Metrics`]: every instrument aidocs records, on one OpenTelemetry meter provider whose
//! reader is the Prometheus exporter; [`Metrics::encode`] renders the text exposition
//! format for `GET /metrics`.
//!
//! Names are final Prometheus names (the exporter adds no unit or `_total` suffixes), so
//! the catalogue in `docs/metrics.md`, the alert rules and the dashboard all use exactly
//! the strings written here. Every label takes values from a closed set (a route template,
//! a search mode, a cache kind, an outcome), except `collection`, which operators name.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use std::sync::{Arc, Mutex};

/// Buckets (seconds) for request-level latencies: 1 ms .. 30 s.
const REQUEST_BUCKETS: [f64; 16] = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Buckets (seconds) for one pipeline stage: 0.1 ms .. 10 s.
const STAGE_BUCKETS: [f64; 16] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A metrics error: the exporter could not be built or the exposition not rendered.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(String);

/// What a stage or request ended with; the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
    /// Answered from the cache.
    Cached,
    /// Skipped on purpose (circuit open, not configured) or degraded to a fallback.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Cached => "cached",
            Self::Skipped => "skipped",
        }
    }
}

/// A pipeline stage with its own latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Query embedding (dense encoder), `embedding_latency_seconds`.
    Embedding,
    /// The store's hybrid query (prefetch + fusion), `query_api_prefetch_seconds`.
    StoreQuery,
    /// HyDE passage generation, `hyde_generation_time_seconds`.
    HydeGeneration,
    /// Cross-encoder or remote reranking, `rerank_latency_seconds`.
    Rerank,
}

/// Values one scrape reads from live state (cache counters, store sizes, breakers).
///
/// A source is a closure registered with [`Metrics::add_source`]; it is called on every
/// scrape and must be cheap and non-blocking (read atomics, a snapshot).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    /// `(kind, hits, misses)` per cache kind: embedding, search, hyde.
    pub cache_kinds: Vec<(&'static str, u64, u64)>,
    /// `(tier, hits, misses, errors)` per cache tier: memory, redis.
    pub cache_tiers: Vec<(String, u64, u64, u64)>,
    /// `(dependency, state)` per circuit breaker; state 0 closed, 1 half-open, 2 open.
    pub breakers: Vec<(&'static str, u8, u64)>,
}

type Source = Box<dyn Fn(&mut Snapshot) + Send + Sync>;

/// Every instrument. Cheap to clone (instruments are handles); one per engine, so
/// independent engines in one process (tests, embedders) never mix their counts.
#[derive(Clone)]
pub struct Metrics {
    registry: prometheus::Registry,
    provider: SdkMeterProvider,
    http_requests: Counter<u64>,
    http_latency: Histogram<f64>,
    http_shed: Counter<u64>,
    search_latency: Histogram<f64>,
    search_requests: Counter<u64>,
    search_errors: Counter<u64>,
    search_zero_results: Counter<u64>,
    stage: [Histogram<f64>; 4],
    hyde_queries: Counter<u64>,
    rerank_requests: Counter<u64>,
    ingest_documents: Counter<u64>,
    ingest_chunks: Counter<u64>,
    ingest_bytes: Counter<u64>,
    embedding_tokens: Counter<u64>,
    embedding_cost: Counter<f64>,
    store_points: Gauge<u64>,
    rollout_requests: Counter<u64>,
    rollout_latency: Histogram<f64>,
    canary_events: Counter<u64>,
    deployments: Counter<u64>,
    backups: Counter<u64>,
    restores: Counter<u64>,
    scheduled_runs: Counter<u64>,
    mcp_calls: Counter<u64>,
    mcp_latency: Histogram<f64>,
    sources: Arc<Mutex<Vec<Source>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every instrument; `version` becomes `aidocs_build_info`.
    pub fn new(version: &str) -> Result<Self, MetricsError> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_units()
            .without_counter_suffixes()
            .scope_info_enabled(false)
            .without_target_info()
            .build()
            .map_err(|e| MetricsError(e.to_string()))?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter("aidocs");
        let sources: Arc<Mutex<Vec<Source>>> = Arc::default();
        let m = Self {
            http_requests: counter(&meter, "http_requests_total", "HTTP requests by route template, method and status code."),
            http_latency: histogram(&meter, "http_request_duration_seconds", "HTTP request latency by route template and method.", &REQUEST_BUCKETS),
            http_shed: counter(&meter, "http_requests_shed_total", "API requests answered 503 at once because max_concurrent_requests were in flight."),
            search_latency: histogram(&meter, "search_latency_seconds", "End-to-end search latency by mode and outcome.", &REQUEST_BUCKETS),
            search_requests: counter(&meter, "search_requests_total", "Searches by mode and outcome (ok, cached, error)."),
            search_errors: counter(&meter, "search_errors_total", "Failed searches by error code."),
            search_zero_results: counter(&meter, "search_zero_results_total", "Successful searches that returned no hits, by mode."),
            stage: [
                histogram(&meter, "embedding_latency_seconds", "Query embedding latency.", &STAGE_BUCKETS),
                histogram(&meter, "query_api_prefetch_seconds", "Store query latency (prefetch and fusion) by mode.", &STAGE_BUCKETS),
                histogram(&meter, "hyde_generation_time_seconds", "HyDE passage generation latency by outcome.", &STAGE_BUCKETS),
                histogram(&meter, "rerank_latency_seconds", "Reranking latency by outcome.", &STAGE_BUCKETS),
            ],
            hyde_queries: counter(&meter, "hyde_queries_total", "HyDE expansions by outcome (ok, cached, error, skipped)."),
            rerank_requests: counter(&meter, "rerank_requests_total", "Rerank passes by outcome (ok, error, skipped)."),
            ingest_documents: counter(&meter, "ingest_documents_total", "Ingested documents by outcome (written, unchanged, deleted, skipped, failed)."),
            ingest_chunks: counter(&meter, "ingest_chunks_total", "Chunks written by ingest."),
            ingest_bytes: counter(&meter, "ingest_bytes_total", "Bytes of source files read by ingest."),
            embedding_tokens: counter(&meter, "embedding_tokens_total", "Tokens the embedding model was sent (cache hits excluded), by provider and model."),
            embedding_cost: meter
                .f64_counter("embedding_cost_usd_total")
                .with_description("Estimated embedding cost in US dollars from the configured price per million tokens.")
                .build(),
            store_points: meter.u64_gauge("store_points").with_description("Points per collection, read at scrape time.").build(),
            rollout_requests: counter(&meter, "rollout_requests_total", "Searches routed by a rollout, by kind (canary, ab, deployment), arm or variant, and outcome (ok, zero_results, error)."),
            rollout_latency: histogram(&meter, "rollout_latency_seconds", "Latency of searches routed by a rollout, by kind and arm or variant.", &REQUEST_BUCKETS),
            canary_events: counter(&meter, "canary_events_total", "Canary state changes by event (promoted, rolled_back_automatic, rolled_back_manual)."),
            deployments: counter(&meter, "deployments_total", "Blue-green deployments by outcome (switched, failed, rolled_back)."),
            backups: counter(&meter, "backups_total", "Backups by kind (full, incremental) and outcome (ok, failed)."),
            restores: counter(&meter, "restores_total", "Restores by kind (restore, drill) and outcome (ok, failed)."),
            scheduled_runs: counter(&meter, "scheduled_runs_total", "Scheduled runs this process made, by task (backup, source:<name>, cleanup) and outcome (ok, failed)."),
            mcp_calls: counter(&meter, "mcp_tool_calls_total", "MCP tool calls by tool and outcome (ok, error: a tool result with isError)."),
            mcp_latency: histogram(&meter, "mcp_tool_duration_seconds", "MCP tool call latency by tool.", &REQUEST_BUCKETS),
            sources: sources.clone(),
            registry,
            provider,
        };
        let build = meter.u64_gauge("aidocs_build_info").with_description("Always 1; the labels carry the build.").build();
        build.record(1, &[KeyValue::new("version", version.to_owned())]);
        // Event counters start at 0, so alert rules see a series before the first event.
        for event in ["promoted", "rolled_back_automatic", "rolled_back_manual"] {
            m.canary_events.add(0, &[KeyValue::new("event", event)]);
        }
        m.http_shed.add(0, &[]);
        for outcome in ["switched", "failed", "rolled_back"] {
            m.deployments.add(0, &[KeyValue::new("outcome", outcome)]);
        }
        for outcome in ["ok", "failed"] {
            for kind in ["full", "incremental"] {
                m.backups.add(0, &[KeyValue::new("kind", kind), KeyValue::new("outcome", outcome)]);
            }
            for kind in ["restore", "drill"] {
                m.restores.add(0, &[KeyValue::new("kind", kind), KeyValue::new("outcome", outcome)]);
            }
            m.scheduled_runs.add(0, &[KeyValue::new("task", "backup"), KeyValue::new("outcome", outcome)]);
        }
        m.register_observers(&meter);
        Ok(m)
    }

    /// Observable instruments fed by the registered sources, read once per scrape.
    fn register_observers(&self, meter: &Meter) {
        let snap = |sources: &Arc<Mutex<Vec<Source>>>| {
            let mut s = Snapshot::default();
            for f in sources.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                f(&mut s);
            }
            s
        };
        let src = self.sources.clone();
        let _ = meter
            .u64_observable_counter("cache_hits_total")
            .with_description("Cache hits by kind (embedding, search, hyde).")
            .with_callback(move |o| {
                for (kind, hits, _) in snap(&src).cache_kinds {
                    o.observe(hits, &[KeyValue::new("kind", kind)]);
                }
            })
            .build();
        let src = self.sources.clone();
        let _ = meter
            .u64_observable_counter("cache_misses_total")
            .with_description("Cache misses by kind (embedding, search, hyde).")
            .with_callback(move |o| {
                for (kind, _, misses) in snap(&src).cache_kinds {
                    o.observe(misses, &[KeyValue::new("kind", kind)]);
                }
            })
            .build();
        let src = self.sources.clone();
        let _ = meter
            .f64_observable_gauge("cache_hit_ratio")
            .with_description("Hits / (hits + misses) since start, by kind; absent before the first lookup.")
            .with_callback(move |o| {
                for (kind, hits, misses) in snap(&src).cache_kinds {
                    if hits + misses > 0 {
                        o.observe(hits as f64 / (hits + misses) as f64, &[KeyValue::new("kind", kind)]);
                    }
                }
            })
            .build();
        let src = self.sources.clone();
        let _ = meter
            .u64_observable_counter("cache_tier_requests_total")
            .with_description("Lookups per cache tier (memory, redis) by outcome (hit, miss, error).")
            .with_callback(move |o| {
                for (tier, hits, misses, errors) in snap(&src).cache_tiers {
                    for (outcome, v) in [("hit", hits), ("miss", misses), ("error", errors)] {
                        o.observe(v, &[KeyValue::new("tier", tier.clone()), KeyValue::new("outcome", outcome)]);
                    }
                }
            })
            .build();
        let src = self.sources.clone();
        let _ = meter
            .u64_observable_gauge("circuit_breaker_state")
            .with_description("Circuit breaker state by dependency: 0 closed, 1 half-open, 2 open.")
            .with_callback(move |o| {
                for (dep, state, _) in snap(&src).breakers {
                    o.observe(u64::from(state), &[KeyValue::new("dependency", dep)]);
                }
            })
            .build();
        let src = self.sources.clone();
        let _ = meter
            .u64_observable_counter("circuit_breaker_rejections_total")
            .with_description("Calls refused without trying because the circuit was open, by dependency.")
            .with_callback(move |o| {
                for (dep, _, rejected) in snap(&src).breakers {
                    o.observe(rejected, &[KeyValue::new("dependency", dep)]);
                }
            })
            .build();
    }

    /// Add a source of scrape-time values (see [`Snapshot`]).
    pub fn add_source(&self, f: impl Fn(&mut Snapshot) + Send + Sync + 'static) {
        self.sources.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(f));
    }

    /// The Prometheus text exposition of every instrument.
    pub fn encode(&self) -> Result<String, MetricsError> {
        use prometheus::Encoder as _;
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out).map_err(|e| MetricsError(e.to_string()))?;
        String::from_utf8(out).map_err(|e| MetricsError(e.to_string()))
    }

    /// One HTTP request: `route` is the matched template (`/v1/collections/{name}`), never
    /// the raw path.
    pub fn http_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let route = KeyValue::new("route", route.to_owned());
        let method = KeyValue::new("method", method.to_owned());
        self.http_latency.record(seconds, &[route.clone(), method.clone()]);
        self.http_requests.add(1, &[route, method, KeyValue::new("status", i64::from(status))]);
    }

    /// One finished search. `error_code` is the API error code when `outcome` is `Error`.
    pub fn search(&self, mode: &'static str, outcome: Outcome, seconds: f64, hits: usize, error_code: Option<&'static str>) {
        let attrs = [KeyValue::new("mode", mode), KeyValue::new("outcome", outcome.as_str())];
        self.search_latency.record(seconds, &attrs);
        self.search_requests.add(1, &attrs);
        if let Some(code) = error_code {
            self.search_errors.add(1, &[KeyValue::new("code", code)]);
        } else if hits == 0 {
            self.search_zero_results.add(1, &[KeyValue::new("mode", mode)]);
        }
    }

    /// One MCP tool call: `tool` is one of the server's tool names (a closed set), `ok`
    /// false when the result was an error.
    pub fn mcp_tool(&self, tool: &'static str, ok: bool, seconds: f64) {
        let outcome = if ok { "ok" } else { "error" };
        self.mcp_calls.add(1, &[KeyValue::new("tool", tool), KeyValue::new("outcome", outcome)]);
        self.mcp_latency.record(seconds, &[KeyValue::new("tool", tool)]);
    }

    /// One pipeline stage's latency. `label` is the mode for the store query and the
    /// outcome for HyDE and rerank; ignored for embedding.
    pub fn stage(&self, stage: Stage, seconds: f64, label: &'static str) {
        let h = &self.stage[stage as usize];
        match stage {
            Stage::Embedding => h.record(seconds, &[]),
            Stage::StoreQuery => h.record(seconds, &[KeyValue::new("mode", label)]),
            Stage::HydeGeneration | Stage::Rerank => h.record(seconds, &[KeyValue::new("outcome", label)]),
        }
    }

    pub fn hyde_query(&self, outcome: Outcome) {
        self.hyde_queries.add(1, &[KeyValue::new("outcome", outcome.as_str())]);
    }

    pub fn rerank(&self, outcome: Outcome) {
        self.rerank_requests.add(1, &[KeyValue::new("outcome", outcome.as_str())]);
    }

    /// `n` documents with an ingest `outcome` (written, unchanged, deleted, skipped, failed).
    pub fn ingest_documents(&self, outcome: &'static str, n: u64) {
        if n > 0 {
            self.ingest_documents.add(n, &[KeyValue::new("outcome", outcome)]);
        }
    }

    pub fn ingest_volume(&self, chunks: u64, bytes: u64) {
        self.ingest_chunks.add(chunks, &[]);
        self.ingest_bytes.add(bytes, &[]);
    }

    /// Tokens sent to the embedding model and their estimated cost.
    pub fn embedding_tokens(&self, provider: &'static str, model: &str, tokens: u64, usd_per_million: f64) {
        let attrs = [KeyValue::new("provider", provider), KeyValue::new("model", model.to_owned())];
        self.embedding_tokens.add(tokens, &attrs);
        if usd_per_million > 0.0 {
            self.embedding_cost.add(tokens as f64 * usd_per_million / 1e6, &attrs);
        }
    }

    /// One API request shed at the concurrency limit (before any other layer saw it).
    pub fn http_shed(&self) {
        self.http_shed.add(1, &[]);
    }

    /// One search routed by a rollout: `kind` canary / ab / deployment, `arm` the arm or
    /// variant id, `outcome` ok / zero_results / error.
    pub fn rollout_request(&self, kind: &'static str, arm: &str, outcome: &'static str, seconds: f64) {
        let (kind, arm) = (KeyValue::new("kind", kind), KeyValue::new("arm", arm.to_owned()));
        self.rollout_latency.record(seconds, &[kind.clone(), arm.clone()]);
        self.rollout_requests.add(1, &[kind, arm, KeyValue::new("outcome", outcome)]);
    }

    /// A canary `event`: promoted, rolled_back_automatic, rolled_back_manual.
    pub fn canary_event(&self, event: &'static str) {
        self.canary_events.add(1, &[KeyValue::new("event", event)]);
    }

    /// A finished backup: `kind` full or incremental, `ok` or not.
    pub fn backup(&self, kind: &'static str, ok: bool) {
        self.backups.add(1, &[KeyValue::new("kind", kind), KeyValue::new("outcome", if ok { "ok" } else { "failed" })]);
    }

    /// A scheduled run this process made and recorded: `task` (`backup`, `source:<name>`;
    /// not `job`, which Prometheus keeps for the scrape target), `ok` or not.
    pub fn scheduled_run(&self, task: &str, ok: bool) {
        self.scheduled_runs.add(1, &[KeyValue::new("task", task.to_owned()), KeyValue::new("outcome", if ok { "ok" } else { "failed" })]);
    }

    /// A finished restore: `kind` restore or drill, `ok` or not.
    pub fn restore(&self, kind: &'static str, ok: bool) {
        self.restores.add(1, &[KeyValue::new("kind", kind), KeyValue::new("outcome", if ok { "ok" } else { "failed" })]);
    }

    /// A finished blue-green deployment: switched, failed, rolled_back.
    pub fn deployment(&self, outcome: &'static str) {
        self.deployments.add(1, &[KeyValue::new("outcome", outcome)]);
    }

    /// The current size of `collection` (call before [`Metrics::encode`]).
    pub fn store_points(&self, collection: &str, points: u64) {
        self.store_points.record(points, &[KeyValue::new("collection", collection.to_owned())]);
    }

    /// Stop the meter provider (flushes nothing: the Prometheus reader is pull-based).
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }
}

fn counter(meter: &Meter, name: &'static str, help: &'static str) -> Counter<u64> {
    meter.u64_counter(name).with_description(help).build()
}

fn histogram(meter: &Meter, name: &'static str, help: &'static str, buckets: &[f64]) -> Histogram<f64> {
    meter.f64_histogram(name).with_description(help).with_unit("s").with_boundaries(buckets.to_vec()).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, line_start: &str) -> Option<f64> {
        text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
    }

    #[test]
    fn names_are_final_and_values_add_up() {
        let m = Metrics::new("1.2.3").unwrap();
        m.search("hybrid", Outcome::Ok, 0.004, 3, None);
        m.search("hybrid", Outcome::Ok, 0.006, 0, None);
        m.search("dense", Outcome::Error, 0.001, 0, Some("invalid_request"));
        m.stage(Stage::StoreQuery, 0.002, "hybrid");
        m.http_request("/v1/search", "POST", 200, 0.01);
        let text = m.encode().unwrap();
        assert_eq!(sample(&text, r#"search_requests_total{mode="hybrid",outcome="ok"}"#), Some(2.0), "{text}");
        assert_eq!(sample(&text, r#"search_errors_total{code="invalid_request"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"search_zero_results_total{mode="hybrid"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"search_latency_seconds_count{mode="hybrid",outcome="ok"}"#), Some(2.0));
        assert_eq!(sample(&text, r#"search_latency_seconds_bucket{mode="hybrid",outcome="ok",le="0.005"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"query_api_prefetch_seconds_count{mode="hybrid"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"http_requests_total{method="POST",route="/v1/search",status="200"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"aidocs_build_info{version="1.2.3"}"#), Some(1.0));
        assert!(!text.contains("otel_scope"), "no scope labels: {text}");
    }

    #[test]
    fn sources_feed_observable_instruments_at_scrape_time() {
        let m = Metrics::new("0").unwrap();
        let hits = Arc::new(std::sync::atomic::AtomicU64::new(3));
        let h = hits.clone();
        m.add_source(move |s| s.cache_kinds.push(("search", h.load(std::sync::atomic::Ordering::Relaxed), 1)));
        let text = m.encode().unwrap();
        assert_eq!(sample(&text, r#"cache_hits_total{kind="search"}"#), Some(3.0), "{text}");
        assert_eq!(sample(&text, r#"cache_hit_ratio{kind="search"}"#), Some(0.75));
        hits.store(9, std::sync::atomic::Ordering::Relaxed);
        let text = m.encode().unwrap();
        assert_eq!(sample(&text, r#"cache_hits_total{kind="search"}"#), Some(9.0));
        assert_eq!(sample(&text, r#"cache_hit_ratio{kind="search"}"#), Some(0.9));
    }
}
