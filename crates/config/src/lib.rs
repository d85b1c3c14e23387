//! `aidocs-config`: the settings of aidocs, one typed tree, layered with figment and
//! resolved once.
//!
//! Owns: the settings sections (one struct per section, named `*Settings`), templates,
//! the raw layers (defaults, template, file, `AIDOCS__*`), [`resolve`] (every environment
//! fallback such as `REDIS_URL` or `QDRANT_URL`, in one place, then per-section validation),
//! redaction for `aidocs config show`, `config migrate` ([`migrate`]), and edits of a
//! config file that keep its comments ([`edit`]: `aidocs sources add | remove`).
//!
//! Must not know: how a setting is used. It converts sections into the leaf crates' own
//! parameter types (store, embed, backup, crawl) and nothing above them: no engine, no HTTP.
//!
//! Layers, lowest first: built-in defaults -> template (`template` key or `CONFIG_TEMPLATE`:
//! `personal-use`, `development`, `production`, `testing`; `minimal-cost` is the old name of
//! `personal-use`) -> config file (`--config`, TOML or JSON by extension) -> environment
//! (`AIDOCS__SECTION__KEY`). Unknown keys are rejected with their path.

use figment::Figment;
use figment::providers::{Env, Format, Json, Serialized, Toml};
use std::path::{Path, PathBuf};

pub mod edit;
mod env;
pub mod migrate;
mod redact;
mod sections;

pub use env::{ENV_FALLBACKS, EnvVars, NoEnv, ProcessEnv, parse_api_keys, resolve};
pub use sections::*;

/// Templates shipped in `config/templates/`, compiled in.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("personal-use", include_str!("../../../config/templates/personal-use.json")),
    ("development", include_str!("../../../config/templates/development.json")),
    ("production", include_str!("../../../config/templates/production.json")),
    ("testing", include_str!("../../../config/templates/testing.json")),
];

/// One line per template (`aidocs config templates`).
pub const TEMPLATE_SUMMARIES: &[(&str, &str)] = &[
    ("personal-use", "one machine on the embedded defaults: in-process model, embedded store, in-process cache, listens on 127.0.0.1 (formerly `minimal-cost`)"),
    ("development", "local development: data in data-dev/, no index optimisation after ingest (fast re-ingest)"),
    ("production", "listens on 0.0.0.0:8000, 1 MiB request bodies, up to 100 results per search, indexes optimised after ingest"),
    ("testing", "automated tests: a random port, small WAL segments, indexes optimised after ingest"),
];

/// Deprecated template names and what they load.
const TEMPLATE_ALIASES: &[(&str, &str)] = crate::migrate::TEMPLATE_RENAMES;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown config template `{0}` (known: personal-use, development, production, testing)")]
    UnknownTemplate(String),
    #[error("config file {0} not found")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// `config migrate` could not read, parse or re-check the file; the message says which.
    #[error("{0}")]
    Migrate(String),
    /// An edit of a config file (`aidocs sources add`) was refused; the message says why.
    #[error("{0}")]
    Edit(String),
    #[error("writing {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Where configuration comes from besides the defaults.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// Config file (TOML, or JSON if it ends in `.json`).
    pub file: Option<PathBuf>,
    /// Template override (else `template` in file/env, else `CONFIG_TEMPLATE`).
    pub template: Option<String>,
    /// Read `AIDOCS__*` and `CONFIG_TEMPLATE` from the environment.
    pub use_env: bool,
}

/// Messages about the load worth logging (deprecations).
pub type Warnings = Vec<String>;

fn file_figment(file: &Path) -> Figment {
    if file.extension().is_some_and(|e| e == "json") {
        Figment::from(Json::file_exact(file))
    } else {
        Figment::from(Toml::file_exact(file))
    }
}

impl Config {
    /// Load and validate configuration from all layers, with the process environment
    /// (when `src.use_env`) for `AIDOCS__*`, `CONFIG_TEMPLATE` and the fallbacks of [`resolve`].
    pub fn load(src: &ConfigSource) -> Result<(Config, Warnings), ConfigError> {
        if src.use_env { Self::load_with(src, &ProcessEnv) } else { Self::load_with(src, &NoEnv) }
    }

    /// [`Config::load`] with `env` as the environment of `CONFIG_TEMPLATE` and of the
    /// fallbacks ([`resolve`]). `AIDOCS__*` keys are read from the process when `src.use_env`.
    pub fn load_with(src: &ConfigSource, env: &dyn EnvVars) -> Result<(Config, Warnings), ConfigError> {
        let mut warnings = Vec::new();
        if let Some(f) = &src.file
            && !f.is_file() {
                return Err(ConfigError::MissingFile(f.clone()));
            }
        // Upper layers alone, to find the template name.
        let mut upper = Figment::new();
        if let Some(f) = &src.file {
            upper = upper.merge(file_figment(f));
        }
        if src.use_env {
            upper = upper.merge(Env::prefixed("AIDOCS__").split("__"));
        }
        let template = src
            .template
            .clone()
            .or_else(|| upper.extract_inner::<String>("template").ok())
            .or_else(|| env.var("CONFIG_TEMPLATE").filter(|t| !t.is_empty()));
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let mut resolved_template = None;
        if let Some(name) = template {
            let canonical = match TEMPLATE_ALIASES.iter().find(|(old, _)| *old == name) {
                Some((old, new)) => {
                    warnings.push(format!("config template `{old}` is deprecated; it now loads `{new}`"));
                    *new
                }
                None => name.as_str(),
            };
            let (_, text) = TEMPLATES
                .iter()
                .find(|(n, _)| *n == canonical)
                .ok_or_else(|| ConfigError::UnknownTemplate(name.clone()))?;
            fig = fig.merge(Json::string(text));
            resolved_template = Some(canonical.to_owned());
        }
        // Keys an older aidocs wrote: say how to update the file rather than "unknown field".
        let old: Vec<&str> = crate::migrate::CHANGES.iter().map(|(k, _)| *k).filter(|k| upper.find_value(k).is_ok()).collect();
        if !old.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "the config uses keys of an older aidocs ({}); run `aidocs config migrate FILE` to update it",
                old.join(", ")
            )));
        }
        fig = fig.merge(upper);
        let mut cfg: Config = fig.extract().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.template = resolved_template;
        let cfg = resolve(cfg, env)?;
        Ok((cfg, warnings))
    }

    /// A server about to listen on `server.bind`: refused on a non-loopback address with no
    /// API keys, unless `server.allow_unauthenticated` says so explicitly.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        let addr: std::net::SocketAddr = self
            .server
            .bind
            .parse()
            .map_err(|_| ConfigError::Invalid(format!("server.bind `{}` is not an address like 127.0.0.1:8000", self.server.bind)))?;
        if addr.ip().is_loopback() || !self.auth.keys.is_empty() || self.server.allow_unauthenticated {
            return Ok(());
        }
        Err(ConfigError::Invalid(format!(
            "server.bind {addr} is reachable from other machines but no API keys are configured, so anyone could search and administer this server. \
             Configure keys ([[auth.keys]] or AIDOCS_API_KEYS=name:admin:SHA256; `aidocs auth hash-key KEY`), bind to 127.0.0.1, \
             or set server.allow_unauthenticated = true (AIDOCS__SERVER__ALLOW_UNAUTHENTICATED=true) if a proxy in front authenticates"
        )))
    }

    /// Semantic checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.search.max_limit == 0 || self.search.default_limit == 0 || self.search.default_limit > self.search.max_limit {
            return bad("search.default_limit must be between 1 and search.max_limit");
        }
        if !(0.0..=1.0).contains(&self.search.section_weight) {
            return Err(ConfigError::Invalid(format!("search.section_weight must be between 0 and 1 (got {})", self.search.section_weight)));
        }
        if self.chunking.max_tokens < 16 {
            return bad("chunking.max_tokens must be at least 16");
        }
        if self.chunking.overlap_tokens >= self.chunking.max_tokens {
            return bad("chunking.overlap_tokens must be smaller than chunking.max_tokens");
        }
        if self.chunking.lead_tokens >= self.chunking.max_tokens {
            return bad("chunking.lead_tokens must be smaller than chunking.max_tokens (0 turns section leads off)");
        }
        if self.embedding.batch_size == 0 || self.ingest.batch_size == 0 {
            return bad("embedding.batch_size and ingest.batch_size must be positive");
        }
        if !(0.0..=1.0).contains(&self.hyde.query_weight) {
            return bad("hyde.query_weight must be between 0 and 1");
        }
        if self.hyde.n == 0 || self.hyde.n > 16 {
            return bad("hyde.n must be between 1 and 16");
        }
        if self.server.max_concurrent_requests == 0 || self.server.request_timeout_ms == 0 || self.server.admin_timeout_ms == 0 {
            return bad("server.max_concurrent_requests, server.request_timeout_ms and server.admin_timeout_ms must be positive");
        }
        if !(self.breaker.error_rate > 0.0 && self.breaker.error_rate <= 1.0) || self.breaker.window_s == 0 {
            return bad("breaker.error_rate must be in (0, 1] and breaker.window_s positive");
        }
        if let Some(expr) = &self.backup.schedule {
            aidocs_rollout::schedule::Cadence::parse(expr).map_err(|e| ConfigError::Invalid(format!("backup.schedule: {e}")))?;
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let at = format!("sources[{i}] (`{}`)", s.name);
            if s.name.is_empty() || !s.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || s.name.len() > 64 {
                return bad(&format!("{at}: `name` must be 1 to 64 letters, digits, `-`, `_` or `.`"));
            }
            if !names.insert(s.name.as_str()) {
                return bad(&format!("{at}: another source has this name"));
            }
            if s.collection.trim().is_empty() {
                return bad(&format!("{at}: `collection` is empty"));
            }
            if s.kind == SourceKind::Git {
                let url = s.urls.first().map(String::as_str).unwrap_or("");
                let remote = ["https://", "http://", "ssh://", "git://", "file://", "/"].iter().any(|p| url.starts_with(p)) || (url.contains('@') && url.contains(':'));
                if s.urls.len() != 1 || !remote || url.starts_with('-') {
                    return bad(&format!("{at}: a git source takes one repository URL in `urls` (https://, ssh://, git@host:path, file:// or an absolute path)"));
                }
                let web_only = [("scope", s.scope.is_some()), ("include", !s.include.is_empty()), ("exclude", !s.exclude.is_empty()), ("max_pages", s.max_pages.is_some()), ("max_depth", s.max_depth.is_some()), ("allow_hosts", !s.allow_hosts.is_empty()), ("render", !s.render.is_none())];
                if let Some((key, _)) = web_only.iter().find(|(_, set)| *set) {
                    return bad(&format!("{at}: `{key}` is for web sources; a git source takes `branch`, `path`, `base_url`, `versions_from_tags` and `auth`"));
                }
                if s.branch.as_deref().is_some_and(|b| b.is_empty() || b.starts_with('-') || b.contains("..") || b.chars().any(|c| c.is_whitespace() || c.is_control())) {
                    return bad(&format!("{at}: `branch` is not a branch name"));
                }
                if s.versions_from_tags.as_deref().is_some_and(|g| g.is_empty() || g.starts_with('-') || g.chars().any(|c| c.is_whitespace() || c.is_control())) {
                    return bad(&format!("{at}: `versions_from_tags` is not a tag pattern (e.g. \"v*\")"));
                }
                if s.versions_from_tags.is_some() && s.branch.is_some() {
                    return bad(&format!("{at}: give `branch` or `versions_from_tags`, not both"));
                }
                if s.path.as_deref().is_some_and(|p| p.starts_with('/') || p.split('/').any(|c| c == "..")) {
                    return bad(&format!("{at}: `path` must be a directory inside the repository (relative, no `..`)"));
                }
            } else {
                if s.urls.is_empty() || s.urls.iter().any(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
                    return bad(&format!("{at}: `urls` must list at least one http(s) URL"));
                }
                if s.branch.is_some() || s.path.is_some() || s.base_url.is_some() || s.versions_from_tags.is_some() {
                    return bad(&format!("{at}: `branch`, `path`, `base_url` and `versions_from_tags` are for git sources (kind = \"git\")"));
                }
            }
            aidocs_rollout::schedule::Cadence::parse(&s.schedule).map_err(|e| ConfigError::Invalid(format!("{at}: schedule: {e}")))?;
            if !s.render.is_none() && s.auth.is_some() {
                return bad(&format!("{at}: `render` does not send credentials (the browser would load the private pages without them); use one or the other"));
            }
            if let Some(auth) = &s.auth {
                if auth.parts().is_empty() {
                    return bad(&format!("{at}: [sources.auth] is empty; give headers, basic, bearer or cookies, or remove it"));
                }
                auth.credentials(&s.urls).map_err(|e| ConfigError::Invalid(format!("{at}: auth: {e}")))?;
            }
        }
        if self.embedding.provider == EmbeddingProvider::Openai {
            let o = &self.embedding.openai;
            if o.model.trim().is_empty() || o.dims == 0 || o.max_batch == 0 {
                return bad("embedding.openai needs model, dims (the vector size the model returns) and max_batch > 0");
            }
            if o.dimensions > 0 && o.dimensions as usize != o.dims {
                return bad("embedding.openai.dimensions asks the API for vectors of that size, so embedding.openai.dims must equal it");
            }
        }
        if self.vector_store.kind == StoreKind::Qdrant {
            let v = &self.vector_store;
            if v.url.trim().is_empty() {
                return bad("vector_store.kind = \"qdrant\" needs vector_store.url (or QDRANT_URL), e.g. http://qdrant:6334");
            }
            if !(v.url.starts_with("http://") || v.url.starts_with("https://")) {
                return bad("vector_store.url must start with http:// or https:// (the gRPC port, 6334 by default)");
            }
            if v.timeout_ms == 0 || v.connect_timeout_ms == 0 || !(v.collection.quantile > 0.5 && v.collection.quantile <= 1.0) || v.search.oversampling < 1.0 {
                return bad("vector_store: timeouts must be positive, collection.quantile in (0.5, 1] and search.oversampling >= 1");
            }
        }
        if self.crawl.concurrency == 0 || self.crawl.per_host_concurrency == 0 || self.crawl.max_pages == 0 {
            return bad("crawl.concurrency, crawl.per_host_concurrency and crawl.max_pages must be positive");
        }
        if self.crawl.remove_after_misses == 0 {
            return bad("crawl.remove_after_misses must be at least 1");
        }
        if self.backup.batch_points == 0 || self.backup.batch_points > 100_000 {
            return bad("backup.batch_points must be between 1 and 100000");
        }
        if self.rollout.check_interval_s == 0 {
            return bad("rollout.check_interval_s must be positive");
        }
        if !(1..=3600).contains(&self.rollout.lease_s) {
            return bad("rollout.lease_s must be between 1 and 3600 seconds");
        }
        if self.rollout.state == RolloutStateBackend::Redis && self.cache.effective_url().is_none() {
            return bad("rollout.state = \"redis\" needs cache.url (or REDIS_URL / DRAGONFLY_URL)");
        }
        if self.search.max_filter_values == 0 {
            return bad("search.max_filter_values must be positive");
        }
        if self.search.max_collections == 0 {
            return bad("search.max_collections must be positive");
        }
        if let Some(k) = self.auth.keys.iter().find(|k| k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit())) {
            return bad(&format!("auth.keys `{}`: sha256 must be 64 hex characters (aidocs auth hash-key KEY)", k.name));
        }
        if self.rerank.top_k == 0 {
            return bad("rerank.top_k must be positive");
        }
        if self.rerank.engine == RerankEngine::Http && self.rerank.url.is_empty() {
            return bad("rerank.engine = \"http\" needs rerank.url");
        }
        if self.cache.kind == CacheBackend::Redis && self.cache.effective_url().is_none() {
            return bad("cache.kind = \"redis\" needs cache.url (or REDIS_URL / DRAGONFLY_URL)");
        }
        if let Some(r) = self.ingest.allowed_roots.iter().find(|r| !r.is_absolute()) {
            return bad(&format!("ingest.allowed_roots: `{}` must be an absolute path", r.display()));
        }
        if self.ingest.max_git_checkout_mb == 0 {
            return bad("ingest.max_git_checkout_mb must be positive");
        }
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return bad(&format!("server.bind `{}` is not an address like 127.0.0.1:8000", self.server.bind));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn load_file(text: &str, ext: &str) -> Result<(Config, Warnings), ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(format!("c.{ext}"));
        std::fs::write(&f, text).unwrap();
        Config::load(&ConfigSource { file: Some(f), ..Default::default() })
    }

    #[test]
    fn a_public_bind_needs_keys_or_an_explicit_opt_out() {
        let mut cfg = Config::default();
        cfg.check_exposure().expect("loopback without keys is fine");
        cfg.server.bind = "[::1]:8000".into();
        cfg.check_exposure().expect("IPv6 loopback too");
        for bind in ["0.0.0.0:8000", "[::]:8000", "10.1.2.3:8000"] {
            cfg.server.bind = bind.into();
            let err = cfg.check_exposure().unwrap_err().to_string();
            assert!(err.contains("no API keys") && err.contains("allow_unauthenticated"), "{err}");
        }
        cfg.server.allow_unauthenticated = true;
        cfg.check_exposure().unwrap();
        cfg.server.allow_unauthenticated = false;
        cfg.auth.keys = parse_api_keys(&format!("ops:admin:{}", "A".repeat(64))).unwrap();
        cfg.check_exposure().unwrap();
        // The production template binds 0.0.0.0: without keys it must not serve.
        let (prod, _) = Config::load(&ConfigSource { template: Some("production".into()), ..Default::default() }).unwrap();
        assert!(prod.check_exposure().is_err());
    }

    #[test]
    fn api_keys_from_the_environment_form() {
        let sha = "ab".repeat(32);
        let keys = parse_api_keys(&format!(" ops:admin:{sha}, app:search:{} ,both:search+admin:{sha}", sha.to_uppercase())).unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!((keys[0].name.as_str(), keys[0].scopes.as_slice()), ("ops", &[Scope::Admin][..]));
        assert_eq!(keys[1].sha256, sha, "digests are lowercased");
        assert_eq!(keys[2].scopes, vec![Scope::Search, Scope::Admin]);
        for bad in ["ops:admin", "ops:root:{sha}", "ops:admin:xyz", &format!("ops:admin:{}", "g".repeat(64))] {
            let bad = bad.replace("{sha}", &sha);
            let err = parse_api_keys(&bad).unwrap_err().to_string();
            assert!(err.contains("AIDOCS_API_KEYS entry `ops`"), "{err}");
        }
    }

    #[test]
    fn allowed_roots_must_be_absolute() {
        let mut cfg = Config::default();
        cfg.ingest.allowed_roots = vec![PathBuf::from("docs")];
        assert!(cfg.validate().unwrap_err().to_string().contains("allowed_roots"));
        cfg.ingest.allowed_roots = vec![PathBuf::from("/srv/docs")];
        cfg.validate().unwrap();
    }

    #[test]
    fn defaults_are_valid() {
        let (cfg, w) = Config::load(&ConfigSource::default()).unwrap();
        assert_eq!(cfg, resolved_defaults());
        assert!(w.is_empty());
    }

    #[test]
    fn index_settings_reach_both_backends_with_their_quantization_defaults() {
        let mut cfg = Config::default();
        assert_eq!(cfg.vector_store.to_edge(Path::new("/d")).collection.quantization, None, "embedded: unset = none");
        assert!(cfg.vector_store.to_qdrant().collection.quantization.is_some(), "Qdrant: unset = int8");
        cfg.vector_store.collection.quantization = Some(QuantizationKind::Int8);
        cfg.vector_store.collection.hnsw_m = 32;
        cfg.vector_store.search.hnsw_ef = Some(64);
        cfg.vector_store.search.exact = true;
        let e = cfg.vector_store.to_edge(Path::new("/d"));
        assert_eq!(e.collection.quantization.map(|q| q.quantile), Some(0.99));
        assert_eq!((e.collection.hnsw_m, e.search.hnsw_ef, e.search.exact), (32, Some(64), true));
        cfg.vector_store.collection.quantization = Some(QuantizationKind::None);
        assert_eq!(cfg.vector_store.to_qdrant().collection.quantization, None);
    }

    #[test]
    fn shipped_default_toml_matches_the_built_in_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        let (cfg, _) = Config::load(&ConfigSource { file: Some(path), ..Default::default() }).unwrap();
        assert_eq!(cfg, resolved_defaults(), "config/default.toml must document the real defaults");
    }

    /// The built-in defaults as loading resolves them (`auto` becomes an engine).
    fn resolved_defaults() -> Config {
        let mut cfg = Config::default();
        cfg.embedding.provider = cfg.embedding.engine();
        cfg
    }

    #[test]
    fn ingest_overlaps_only_where_the_embedder_leaves_a_core_free() {
        let mut cfg = Config::default();
        let (on, off, auto) = (IngestOverlap::On, IngestOverlap::Off, IngestOverlap::Auto);
        let case = |cfg: &Config, provider, threads, overlap, cores| {
            let mut e = cfg.embedding.clone();
            e.provider = provider;
            e.threads = threads;
            let mut i = cfg.ingest.clone();
            i.overlap = overlap;
            i.overlaps(&e, cores)
        };
        // ONNX Runtime's default of one thread per core, and candle, take every core.
        assert!(!case(&cfg, EmbeddingProvider::Onnx, 0, auto, 2));
        assert!(!case(&cfg, EmbeddingProvider::Onnx, 2, auto, 2));
        assert!(!case(&cfg, EmbeddingProvider::Local, 0, auto, 8));
        assert!(case(&cfg, EmbeddingProvider::Onnx, 3, auto, 4));
        assert!(case(&cfg, EmbeddingProvider::Openai, 0, auto, 1));
        assert!(case(&cfg, EmbeddingProvider::Local, 0, on, 2));
        assert!(!case(&cfg, EmbeddingProvider::Openai, 0, off, 8));
        // `auto` of the provider is the engine it stands for.
        cfg.embedding.onnx_model_dir = "/nonexistent".into();
        assert!(!case(&cfg, EmbeddingProvider::Auto, 1, auto, 4), "auto without the ONNX files is candle");
        let (parsed, _) = load_file("[ingest]\noverlap = \"off\"\n", "toml").unwrap();
        assert_eq!(parsed.ingest.overlap, IngestOverlap::Off);
        let err = load_file("[ingest]\noverlap = \"sometimes\"\n", "toml").unwrap_err().to_string();
        assert!(err.contains("overlap") || err.contains("sometimes"), "{err}");
    }

    #[test]
    fn every_template_loads() {
        for (name, _) in TEMPLATES {
            let (cfg, _) = Config::load(&ConfigSource { template: Some(name.to_string()), ..Default::default() }).unwrap();
            assert_eq!(cfg.template.as_deref(), Some(*name));
        }
    }

    #[test]
    fn minimal_cost_loads_personal_use_with_deprecation_warning() {
        let (cfg, w) = load_file("template = \"minimal-cost\"\n", "toml").unwrap();
        let (personal, _) = Config::load(&ConfigSource { template: Some("personal-use".into()), ..Default::default() }).unwrap();
        assert_eq!(cfg, personal);
        assert!(w[0].contains("deprecated"), "{w:?}");
    }

    #[test]
    fn file_overrides_template_and_unknown_keys_are_named() {
        let (cfg, _) = load_file("template = \"production\"\n[search]\ndefault_limit = 7\n", "toml").unwrap();
        assert_eq!(cfg.search.default_limit, 7);
        assert_eq!(cfg.server.bind, "0.0.0.0:8000", "from the production template");
        let err = load_file("[search]\ndefault_limt = 7\n", "toml").unwrap_err().to_string();
        assert!(err.contains("default_limt"), "{err}");
        let err = load_file("{\"serverr\": {}}", "json").unwrap_err().to_string();
        assert!(err.contains("serverr"), "{err}");
        let err = load_file("template = \"tiny\"\n", "toml").unwrap_err().to_string();
        assert!(err.contains("unknown config template `tiny`"), "{err}");
        let err = load_file("[search]\ndefault_limit = 0\n", "toml").unwrap_err().to_string();
        assert!(err.contains("search.default_limit"), "{err}");
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// `auto` resolves to ONNX Runtime only when its model and its runtime are both on
    /// disk, to candle otherwise; `ORT_DYLIB_PATH` names the runtime; a provider named
    /// explicitly is kept whatever is on disk.
    #[test]
    fn auto_engine_is_onnx_only_when_model_and_runtime_are_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        assert_eq!(cfg.embedding.provider, EmbeddingProvider::Auto);
        cfg.embedding.onnx_model_dir = dir.path().join("int8");
        cfg.embedding.onnx_runtime_lib = dir.path().join("ort/libonnxruntime.so");
        assert_eq!(resolve(cfg.clone(), &NoEnv).unwrap().embedding.provider, EmbeddingProvider::Local, "neither is there");
        std::fs::create_dir_all(dir.path().join("int8")).unwrap();
        std::fs::write(dir.path().join("int8/model.onnx"), b"onnx").unwrap();
        assert_eq!(resolve(cfg.clone(), &NoEnv).unwrap().embedding.provider, EmbeddingProvider::Local, "no runtime");
        let lib = dir.path().join("elsewhere.so");
        std::fs::write(&lib, b"elf").unwrap();
        let found = resolve(cfg.clone(), &env(&[("ORT_DYLIB_PATH", lib.to_str().unwrap())])).unwrap();
        assert_eq!((found.embedding.provider, found.embedding.onnx_runtime_lib.as_path()), (EmbeddingProvider::Onnx, lib.as_path()));
        cfg.embedding.provider = EmbeddingProvider::Local;
        assert_eq!(resolve(cfg, &env(&[("ORT_DYLIB_PATH", lib.to_str().unwrap())])).unwrap().embedding.provider, EmbeddingProvider::Local, "an explicit choice stays");
    }

    #[test]
    fn resolve_applies_every_fallback_from_the_given_environment_only() {
        let e = env(&[
            ("API_RATE_LIMIT", "90"),
            ("ENABLE_REQUEST_TRACING", "yes"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318"),
            ("QDRANT_URL", "http://qdrant:6334"),
            ("QDRANT_API_KEY", "qk"),
            ("AIDOCS_BACKUP_DEST", "/backups"),
            ("AIDOCS_API_KEYS", &format!("ops:admin:{}", "a".repeat(64))),
            ("DRAGONFLY_URL", "redis://dragonfly:6379"),
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", "http://llm:8080/v1"),
        ]);
        let cfg = resolve(Config::default(), &e).unwrap();
        assert_eq!(cfg.server.rate_limit_per_minute, 90);
        assert!(cfg.telemetry.request_tracing);
        assert_eq!(cfg.telemetry.otlp_endpoint, "http://otel:4318");
        assert_eq!((cfg.vector_store.url.as_str(), cfg.vector_store.api_key.as_deref()), ("http://qdrant:6334", Some("qk")));
        assert_eq!(cfg.backup.dest.as_deref(), Some("/backups"));
        assert_eq!(cfg.auth.keys.len(), 1);
        assert_eq!(cfg.cache.effective_url().as_deref(), Some("redis://dragonfly:6379"), "DRAGONFLY_URL when REDIS_URL is unset");
        assert_eq!((cfg.embedding.openai.api_key.as_str(), cfg.hyde.api_key.as_str()), ("sk-test", "sk-test"));
        assert_eq!(cfg.embedding.openai.to_embedder_config().base_url, "http://llm:8080/v1");
        // REDIS_URL wins over DRAGONFLY_URL; configured values win over fallbacks.
        let mut configured = Config::default();
        configured.cache.url = "redis://configured:6379".into();
        configured.hyde.api_key = "own".into();
        configured.server.rate_limit_per_minute = 5;
        let both = env(&[("REDIS_URL", "redis://r:6379"), ("DRAGONFLY_URL", "redis://d:6379"), ("OPENAI_API_KEY", "sk"), ("API_RATE_LIMIT", "90")]);
        assert_eq!(resolve(Config::default(), &both).unwrap().cache.url, "redis://r:6379");
        let kept = resolve(configured, &both).unwrap();
        assert_eq!((kept.cache.url.as_str(), kept.hyde.api_key.as_str(), kept.server.rate_limit_per_minute), ("redis://configured:6379", "own", 5));
        // No environment: nothing filled; a bad value names its variable.
        let none = resolve(Config::default(), &NoEnv).unwrap();
        assert!(none.cache.url.is_empty() && none.vector_store.url.is_empty() && none.embedding.openai.api_key.is_empty());
        let err = resolve(Config::default(), &env(&[("API_RATE_LIMIT", "lots")])).unwrap_err().to_string();
        assert!(err.contains("API_RATE_LIMIT `lots`"), "{err}");
        // Every variable resolve reads is listed, and the list names no variable it ignores.
        let src = include_str!("env.rs");
        let body = &src[src.find("pub fn resolve(").unwrap()..src.find("/// Parse `AIDOCS_API_KEYS`").unwrap()];
        for (name, _) in ENV_FALLBACKS {
            assert!(body.contains(&format!("\"{name}\"")), "{name} is listed but not read");
        }
    }

    /// `[sources.auth]`: values from `${ENV}` references, checked at load with errors that
    /// name the source and the part, and never shown by `redacted` or `Debug`.
    #[test]
    fn source_credentials_resolve_from_the_environment_and_never_show() {
        let file = |auth: &str| {
            let text = format!("[[sources]]\nname = \"intranet\"\ncollection = \"docs\"\nurls = [\"https://docs.corp.example/\"]\nschedule = \"every 6h\"\n[sources.auth]\n{auth}\n");
            figment::Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(&text)).extract::<Config>().unwrap()
        };
        let e = env(&[("DOCS_TOKEN", "tok-7f3a"), ("DOCS_PW", "pw-91c2"), ("DOCS_KEY", "key-55e0")]);
        let cfg = resolve(file("bearer = \"${DOCS_TOKEN}\"\nheaders = { \"X-Api-Key\" = \"k:${DOCS_KEY}\" }\ncookies = { session = \"${DOCS_PW}\" }"), &e).unwrap();
        let auth = cfg.sources[0].auth.as_ref().unwrap();
        assert_eq!(auth.bearer.as_deref(), Some("tok-7f3a"));
        assert_eq!(auth.headers["X-Api-Key"], "k:key-55e0");
        assert_eq!(auth.parts(), ["bearer", "header:X-Api-Key", "cookie:session"]);
        let creds = auth.credentials(&cfg.sources[0].urls).unwrap();
        assert!(creds.owns(&url::Url::parse("https://docs.corp.example/a/b.html").unwrap()));
        assert!(!creds.owns(&url::Url::parse("https://cdn.example/a.js").unwrap()));
        let shown = format!("{} {cfg:?} {creds:?}", serde_json::to_string(&cfg.redacted()).unwrap());
        for secret in ["tok-7f3a", "pw-91c2", "key-55e0"] {
            assert!(!shown.contains(secret), "{secret} shown: {shown}");
        }
        assert_eq!(cfg.redacted()["sources"][0]["auth"]["headers"]["X-Api-Key"], "<redacted>", "names stay, values go");
        assert_eq!(cfg.redacted()["auth"]["keys"], serde_json::json!([]), "the API keys section is not a source's auth");
        // Mistakes are named: an unset variable, two Authorization schemes, a bad header, nothing.
        let err = |auth: &str| resolve(file(auth), &e).unwrap_err().to_string();
        let m = err("bearer = \"${NOT_SET}\"");
        assert!(m.contains("sources[0] (`intranet`)") && m.contains("auth.bearer") && m.contains("${NOT_SET}"), "{m}");
        let m = err("bearer = \"t\"\nbasic = { username = \"u\", password = \"${DOCS_PW}\" }");
        assert!(m.contains("authorization") && m.contains("set twice") && !m.contains("pw-91c2"), "{m}");
        let m = err("headers = { \"Bad Header\" = \"v\" }");
        assert!(m.contains("`Bad Header`"), "{m}");
        let m = err("");
        assert!(m.contains("[sources.auth] is empty"), "{m}");
    }

    #[test]
    fn render_is_read_per_source_and_refused_where_it_cannot_apply() {
        let load = |extra: &str| {
            let text = format!("[[sources]]\nname = \"app\"\ncollection = \"docs\"\nurls = [\"https://app.example/\"]\nschedule = \"every 6h\"\n{extra}");
            figment::Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(&text)).extract::<Config>()
        };
        let cfg = resolve(load("render = \"chromium\"").unwrap(), &env(&[])).unwrap();
        assert_eq!(cfg.sources[0].render, aidocs_crawl::Render::Chromium);
        assert_eq!(cfg.crawl.renderer().driver, std::path::PathBuf::from("chromedriver"));
        assert!(load("render = \"firefox\"").unwrap_err().to_string().contains("firefox"));
        let m = resolve(load("render = \"chromium\"\n[sources.auth]\nbearer = \"t\"").unwrap(), &env(&[])).unwrap_err().to_string();
        assert!(m.contains("`render` does not send credentials"), "{m}");
        let git = "render = \"chromium\"\nkind = \"git\"".replace("https://app.example/", "x");
        let m = resolve(load(&git).unwrap(), &env(&[])).map(|_| ()).unwrap_err().to_string();
        assert!(m.contains("`render` is for web sources"), "{m}");
    }

    #[test]
    fn versions_from_tags_is_for_git_sources_without_a_branch() {
        let load = |extra: &str| {
            let text = format!("[[sources]]\nname = \"lib\"\ncollection = \"docs\"\nurls = [\"https://git.example/lib.git\"]\nschedule = \"every 6h\"\n{extra}");
            let raw = figment::Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(&text)).extract::<Config>().unwrap();
            resolve(raw, &env(&[])).map(|c| c.sources[0].versions_from_tags.clone()).map_err(|e| e.to_string())
        };
        assert_eq!(load("kind = \"git\"\nversions_from_tags = \"v*\"").unwrap().as_deref(), Some("v*"));
        assert!(load("versions_from_tags = \"v*\"").unwrap_err().contains("are for git sources"));
        assert!(load("kind = \"git\"\nbranch = \"main\"\nversions_from_tags = \"v*\"").unwrap_err().contains("not both"));
        assert!(load("kind = \"git\"\nversions_from_tags = \"--upload-pack=x\"").unwrap_err().contains("not a tag pattern"));
    }

    #[test]
    fn section_leads_are_on_by_default_and_must_fit_in_a_chunk() {
        let load = |text: &str| {
            let raw = figment::Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)).extract::<Config>().unwrap();
            resolve(raw, &env(&[])).map(|c| c.chunking.lead_tokens).map_err(|e| e.to_string())
        };
        assert_eq!(load(""), Ok(128));
        assert_eq!(load("[chunking]\nlead_tokens = 0"), Ok(0), "0 turns leads off");
        let m = load("[chunking]\nmax_tokens = 100\nlead_tokens = 100").unwrap_err();
        assert!(m.contains("chunking.lead_tokens must be smaller than chunking.max_tokens"), "{m}");
    }

    #[test]
    fn a_private_git_source_takes_credentials_over_https_only() {
        let load = |url: &str| {
            let text = format!("[[sources]]\nname = \"lib\"\ncollection = \"docs\"\nkind = \"git\"\nurls = [\"{url}\"]\nschedule = \"every 6h\"\n[sources.auth]\nbearer = \"tok\"\n");
            let raw = figment::Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(&text)).extract::<Config>().unwrap();
            resolve(raw, &env(&[])).map(|c| c.sources[0].auth.as_ref().map(|a| a.parts())).map_err(|e| e.to_string())
        };
        assert_eq!(load("https://git.corp.example/lib.git").unwrap(), Some(vec!["bearer".to_owned()]));
        let m = load("ssh://git@git.corp.example/lib.git").unwrap_err();
        assert!(m.contains("auth") && m.contains("http(s) only"), "{m}");
    }

    #[test]
    fn redacted_hides_every_secret_and_keeps_the_rest() {
        let mut cfg = Config::default();
        cfg.embedding.openai.api_key = "sk-embed".into();
        cfg.hyde.api_key = "sk-hyde".into();
        cfg.rerank.api_key = "sk-rerank".into();
        cfg.vector_store.api_key = Some("qdrant-secret".into());
        cfg.cache.url = "redis://user:hunter2@cache:6379/0".into();
        cfg.auth.keys = parse_api_keys(&format!("ops:admin:{}", "b".repeat(64))).unwrap();
        let shown = serde_json::to_string(&cfg.redacted()).unwrap();
        for secret in ["sk-embed", "sk-hyde", "sk-rerank", "qdrant-secret", "hunter2", &"b".repeat(64)] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        let v = cfg.redacted();
        assert_eq!(v["cache"]["url"], "redis://user:%3Credacted%3E@cache:6379/0");
        assert_eq!(v["hyde"]["api_key"], "<redacted>");
        assert_eq!(v["auth"]["keys"][0]["name"], "ops", "names are not secrets");
        assert_eq!(v["search"]["default_limit"], cfg.search.default_limit, "other values are shown as resolved");
        assert_eq!(Config::default().redacted()["hyde"]["api_key"], "", "an unset secret stays visibly unset");
    }
}
