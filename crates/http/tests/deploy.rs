//! The Prometheus alert rules (`deploy/prometheus/alerts.yml`) and the Grafana dashboard
//! (`deploy/grafana/aidocs.json`) use only metric names a real `/metrics` scrape has, and
//! every metric in the scrape is in the catalogue (`docs/metrics.md`).

#[path = "../../aidocs/tests/common/mod.rs"]
mod common;

use aidocs::core::{CoreError, Generator, Reranker};
use aidocs::progress::NoProgress;
use aidocs::{Engine, IngestRequest};
use aidocs_hyde::{Hyde, HydeConfig};
use axum::body::Body;
use http_body_util::BodyExt;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// Names Prometheus itself provides for every target.
const BUILTIN: &[&str] = &["up"];

/// Operators and aggregations (which may be followed by `by (...)` instead of `(`).
const KEYWORDS: &[&str] = &[
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "sum", "min", "max", "avg",
    "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
];

/// Metric names in a PromQL expression: identifiers outside label matchers `{}`, ranges
/// `[]`, strings and grouping clauses, not followed by `(` (functions, aggregations).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let b: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let (mut i, mut braces, mut brackets) = (0, 0, 0);
    let skip_group = |mut j: usize| -> usize {
        while j < b.len() && b[j].is_whitespace() {
            j += 1;
        }
        if j < b.len() && b[j] == '(' {
            while j < b.len() && b[j] != ')' {
                j += 1;
            }
            j += 1;
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        match c {
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => brackets += 1,
            ']' => brackets -= 1,
            '"' | '\'' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += usize::from(b[i] == '\\') + 1;
                }
            }
            _ if c.is_ascii_digit() => {
                while i + 1 < b.len() && (b[i + 1].is_ascii_alphanumeric() || b[i + 1] == '.') {
                    i += 1;
                }
            }
            _ if (c.is_ascii_alphabetic() || c == '_' || c == ':') && braces == 0 && brackets == 0 => {
                let start = i;
                while i + 1 < b.len() && (b[i + 1].is_ascii_alphanumeric() || b[i + 1] == '_' || b[i + 1] == ':') {
                    i += 1;
                }
                let ident: String = b[start..=i].iter().collect();
                let mut j = i + 1;
                while j < b.len() && b[j] == ' ' {
                    j += 1;
                }
                if matches!(ident.as_str(), "by" | "without" | "on" | "ignoring" | "group_left" | "group_right") {
                    i = skip_group(i + 1);
                    continue;
                }
                if !(KEYWORDS.contains(&ident.as_str()) || (j < b.len() && b[j] == '(')) {
                    names.insert(ident);
                }
            }
            _ => {}
        }
        i += 1;
    }
    names
}

#[test]
fn the_promql_scanner_finds_metrics_and_nothing_else() {
    let e = r#"histogram_quantile(0.95, sum by (le, mode) (rate(search_latency_seconds_bucket{mode="x",a=~"5.."}[5m]))) > 0.05
        and on (job) max without (instance) (up) == 1 or sum(rate(http_requests_total[1h] offset 1d)) / 1e6"#;
    let names: Vec<_> = metric_names(e).into_iter().collect();
    assert_eq!(names, ["http_requests_total", "search_latency_seconds_bucket", "up"]);
}

/// Every `expr:` of the rules file (single-line or `|` block).
fn rule_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else { continue };
        let rest = rest.trim();
        if rest == "|" || rest == ">" {
            let indent = line.len() - line.trim_start().len();
            let block: Vec<&str> = lines[n + 1..].iter().take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent).copied().collect();
            out.push(block.join("\n"));
        } else {
            out.push(rest.to_owned());
        }
    }
    out
}

fn dashboard_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, v) in o {
                match v {
                    serde_json::Value::String(s) if k == "expr" => out.push(s.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

struct Passages;

#[async_trait::async_trait]
impl Generator for Passages {
    fn model_id(&self) -> &str {
        "passages"
    }
    async fn generate(&self, _system: &str, _user: &str, n: usize) -> Result<Vec<String>, CoreError> {
        Ok(vec!["Install the server with cargo and run it.".to_owned(); n])
    }
}

struct ByLength;

#[async_trait::async_trait]
impl Reranker for ByLength {
    fn model_id(&self) -> &str {
        "by-length"
    }
    async fn rerank(&self, _query: &str, passages: &[String]) -> Result<Vec<f32>, CoreError> {
        Ok(passages.iter().map(|p| p.len() as f32).collect())
    }
}

/// A scrape after every kind of work: ingest, searches with HyDE and rerank through a
/// memory cache, an error.
async fn full_scrape() -> String {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write_tree(&docs, &[("a.md", "# Install\n\nInstall the server with cargo.\n"), ("b.md", "# Configure\n\nSet the bind address.\n")]);
    let mut cfg = common::config(&dir.path().join("data"));
    cfg.cache.kind = aidocs::config::CacheBackend::Memory;
    cfg.embedding.usd_per_million_tokens = 0.02;
    let engine = Engine::open(cfg)
        .unwrap()
        .with_hyde(Hyde::new(Arc::new(Passages), HydeConfig { n: 2, query_weight: 0.5, timeout: Duration::from_secs(5) }))
        .with_reranker(Arc::new(ByLength));
    engine.ingest().directory(IngestRequest { path: docs, collection: "docs".into(), metadata: Default::default(), base_url: None }, &NoProgress).await.unwrap();
    // A canary on an alias, so rollout metrics have real routed traffic.
    engine.ingest().directory(IngestRequest { path: dir.path().join("docs"), collection: "docs_b".into(), metadata: Default::default(), base_url: None }, &NoProgress).await.unwrap();
    engine.store().set_alias("live", "docs").await.unwrap();
    let start = serde_json::json!({"alias": "live", "collection": "docs_b"});
    engine.rollout().canary_start(serde_json::from_value(start).unwrap()).await.unwrap();
    let app = aidocs_http::router(engine);
    for body in [r#"{"query": "install", "collection": "live"}"#, r#"{"query": "install", "hyde": true, "rerank": true}"#, r#"{"query": "install", "hyde": true, "rerank": true}"#, r#"{"query": ""}"#, r#"{"query": "zzzz", "mode": "sparse"}"#] {
        let req = axum::http::Request::post("/v1/search").header("content-type", "application/json").body(Body::from(body)).unwrap();
        app.clone().oneshot(req).await.unwrap();
    }
    let resp = app.oneshot(axum::http::Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_dashboard_use_only_scraped_metrics_and_the_catalogue_lists_them_all() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let scrape = full_scrape().await;
    let scraped: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect();

    let rules = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).unwrap();
    let mut exprs = rule_exprs(&rules);
    assert!(exprs.len() >= 6, "{exprs:?}");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("deploy/grafana/aidocs.json")).unwrap()).unwrap();
    let before = exprs.len();
    dashboard_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() > before + 10, "dashboard expressions found");
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let missing: Vec<_> = used.iter().filter(|n| !scraped.contains(*n) && !BUILTIN.contains(&n.as_str())).collect();
    assert!(missing.is_empty(), "used in deploy/ but not in a real scrape: {missing:?}\nscraped: {scraped:?}");

    // The catalogue names every family the scrape has (histograms by their base name).
    let catalogue = std::fs::read_to_string(root.join("docs/metrics.md")).unwrap();
    let families: BTreeSet<String> = scrape.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap().to_owned()).collect();
    assert!(families.len() >= 25, "{families:?}");
    let undocumented: Vec<_> = families.iter().filter(|f| !catalogue.contains(&format!("`{f}`"))).collect();
    assert!(undocumented.is_empty(), "in /metrics but not in docs/metrics.md: {undocumented:?}");
}

/// The config the Kubernetes manifests ship (`deploy/kubernetes/configmap.yaml`) loads as
/// an aidocs config, and the Deployment passes the path it is mounted at.
#[test]
fn kubernetes_configmap_is_a_valid_aidocs_config() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest = std::fs::read_to_string(root.join("deploy/kubernetes/configmap.yaml")).unwrap();
    let body: String = manifest
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("aidocs.toml: |"))
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert!(body.contains("[server]"), "{body}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aidocs.toml");
    std::fs::write(&file, &body).unwrap();
    let (cfg, warnings) = aidocs::Config::load(&aidocs::ConfigSource { file: Some(file), template: None, use_env: false }).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!((cfg.server.bind.as_str(), cfg.data_dir.to_str()), ("0.0.0.0:8000", Some("/var/lib/aidocs/data")));
    assert_eq!(cfg.backup.schedule.as_deref(), Some("30 2 * * *"));
    let deployment = std::fs::read_to_string(root.join("deploy/kubernetes/deployment.yaml")).unwrap();
    assert!(deployment.contains(r#"args: ["--config", "/etc/aidocs/aidocs.toml"]"#) && deployment.contains("mountPath: /etc/aidocs"));
    assert!(deployment.contains("mountPath: /var/lib/aidocs/data"), "the data dir is the volume");
    // The grace period covers the drain deadline plus the preStop pause.
    assert!(deployment.contains("terminationGracePeriodSeconds: 35") && cfg.server.shutdown_timeout_ms + 5_000 <= 35_000);
    // A public bind: without keys the server would refuse, so keys come from a Secret.
    assert!(cfg.check_exposure().is_err(), "the shipped config alone has no keys");
}

/// Every shipped production deployment requires API keys (from a Secret or the environment),
/// and nothing shipped opts out of auth on a public address.
#[test]
fn every_shipped_production_config_requires_api_keys() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    for d in ["deploy/kubernetes/deployment.yaml", "deploy/kubernetes/scale/deployment.yaml"] {
        let text = read(d);
        let env = text.split("- name: AIDOCS_API_KEYS").nth(1).unwrap_or_else(|| panic!("{d} passes no AIDOCS_API_KEYS"));
        let next: String = env.lines().take(5).collect::<Vec<_>>().join("\n");
        assert!(next.contains("secretKeyRef:") && !next.contains("optional: true"), "{d}: keys from a required Secret: {next}");
    }
    let compose = read("deploy/docker-compose.yml");
    assert!(compose.contains("AIDOCS_API_KEYS: ${AIDOCS_API_KEYS:?"), "the production compose stack refuses to start without keys");
    for f in ["deploy/docker-compose.yml", "deploy/docker-compose.scale.yml", "deploy/kubernetes/configmap.yaml", "deploy/kubernetes/scale/configmap.yaml", "deploy/Dockerfile"] {
        assert!(!read(f).to_lowercase().contains("allow_unauthenticated"), "{f} must not opt out of auth");
    }
    // The one opt-out: the personal-use stack, published on the host's loopback only.
    let personal = read("deploy/docker-compose.personal-use.yml");
    assert!(personal.contains("ALLOW_UNAUTHENTICATED") && personal.contains("\"127.0.0.1:8000:8000\""));
    // The keys' form is the one the server parses.
    let sha = "0".repeat(64);
    assert_eq!(aidocs::config::parse_api_keys(&format!("ops:admin:{sha}")).unwrap().len(), 1);
}
