//! The environment: where [`resolve`] reads the fallbacks of settings the layers leave unset,
//! and the one function that applies them.

use crate::{ApiKey, Config, ConfigError, Scope};
use std::collections::BTreeMap;

/// The environment the fallbacks of [`resolve`] read: the process ([`ProcessEnv`]), nothing
/// ([`NoEnv`]), or a map (tests, `config show --env-file` style callers).
///
/// Contract: `var` returns the variable's value, `None` when it is unset; callers treat an
/// empty value as unset.
pub trait EnvVars {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvVars for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// No environment at all (`ConfigSource::use_env = false`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl EnvVars for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

impl EnvVars for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Every environment variable [`resolve`] reads, with the setting it fills. The one place
/// aidocs reads its environment besides `AIDOCS__*` and `CONFIG_TEMPLATE`.
pub const ENV_FALLBACKS: &[(&str, &str)] = &[
    ("API_RATE_LIMIT", "server.rate_limit_per_minute, when 0"),
    ("ENABLE_REQUEST_TRACING", "telemetry.request_tracing = true, when 1/true/yes"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint, when empty"),
    ("QDRANT_URL", "vector_store.url, when empty"),
    ("QDRANT_API_KEY", "vector_store.api_key, when unset"),
    ("AIDOCS_BACKUP_DEST", "backup.dest, when unset"),
    ("AIDOCS_API_KEYS", "added to auth.keys (name:scope[+scope]:sha256,...)"),
    ("REDIS_URL", "cache.url, when empty"),
    ("DRAGONFLY_URL", "cache.url, when empty and REDIS_URL is unset"),
    ("OPENAI_API_KEY", "embedding.openai.api_key and hyde.api_key, when empty"),
    ("OPENAI_BASE_URL", "embedding.openai.base_url (replaces the configured value)"),
    ("ORT_DYLIB_PATH", "embedding.onnx_runtime_lib (replaces the configured value)"),
];

/// Raw settings (defaults, template, file, `AIDOCS__*`) -> resolved settings: applies every
/// environment fallback of [`ENV_FALLBACKS`] from `env`, then validates each section. Runs
/// once, in [`Config::load`]; no other part of aidocs reads the environment for settings.
pub fn resolve(mut cfg: Config, env: &dyn EnvVars) -> Result<Config, ConfigError> {
    let var = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
    if cfg.server.rate_limit_per_minute == 0
        && let Some(v) = var("API_RATE_LIMIT")
    {
        cfg.server.rate_limit_per_minute =
            v.trim().parse().map_err(|_| ConfigError::Invalid(format!("API_RATE_LIMIT `{v}` is not a number of requests per minute")))?;
    }
    if var("ENABLE_REQUEST_TRACING").is_some_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True" | "yes")) {
        cfg.telemetry.request_tracing = true;
    }
    if cfg.telemetry.otlp_endpoint.is_empty() {
        cfg.telemetry.otlp_endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    }
    if cfg.vector_store.url.is_empty() {
        cfg.vector_store.url = var("QDRANT_URL").unwrap_or_default();
    }
    if cfg.vector_store.api_key.is_none() {
        cfg.vector_store.api_key = var("QDRANT_API_KEY");
    }
    if cfg.backup.dest.is_none() {
        cfg.backup.dest = var("AIDOCS_BACKUP_DEST");
    }
    // API keys from a secret: `AIDOCS_API_KEYS=name:scope[+scope]:sha256,...`.
    if let Some(v) = var("AIDOCS_API_KEYS") {
        cfg.auth.keys.extend(parse_api_keys(&v)?);
    }
    if cfg.cache.url.is_empty() {
        cfg.cache.url = var("REDIS_URL").or_else(|| var("DRAGONFLY_URL")).unwrap_or_default();
    }
    if let Some(key) = var("OPENAI_API_KEY") {
        if cfg.embedding.openai.api_key.is_empty() {
            cfg.embedding.openai.api_key = key.clone();
        }
        if cfg.hyde.api_key.is_empty() {
            cfg.hyde.api_key = key;
        }
    }
    if let Some(url) = var("OPENAI_BASE_URL") {
        cfg.embedding.openai.base_url = url;
    }
    if let Some(lib) = var("ORT_DYLIB_PATH") {
        cfg.embedding.onnx_runtime_lib = lib.into();
    }
    // `auto` becomes the engine it stands for, once, so every part and every report sees
    // the same choice.
    cfg.embedding.provider = cfg.embedding.engine();
    for (i, source) in cfg.sources.iter_mut().enumerate() {
        let at = format!("sources[{i}] (`{}`)", source.name);
        for (field, value) in source.auth.iter_mut().flat_map(|a| a.values_mut()) {
            *value = expand_refs(value, &var).map_err(|name| {
                ConfigError::Invalid(format!("{at}: auth.{field} refers to ${{{name}}}, which is not set in the environment"))
            })?;
        }
    }
    cfg.validate()?;
    Ok(cfg)
}

/// `value` with each `${NAME}` (NAME: letters, digits and `_`, not starting with a digit)
/// replaced by the variable's value; `Err(NAME)` when one is unset or empty. Anything else,
/// a lone `$` included, is kept as written.
fn expand_refs(value: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let name_end = after.find('}');
        let name = name_end.map(|e| &after[..e]).filter(|n| {
            let mut b = n.bytes();
            b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        });
        match (name, name_end) {
            (Some(name), Some(end)) => {
                out.push_str(&var(name).ok_or_else(|| name.to_owned())?);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Parse `AIDOCS_API_KEYS`: comma-separated `name:scope[+scope]:sha256` entries (the digest
/// from `aidocs auth hash-key KEY`; never the key itself).
pub fn parse_api_keys(v: &str) -> Result<Vec<ApiKey>, ConfigError> {
    let bad = |entry: &str, why: &str| {
        ConfigError::Invalid(format!("AIDOCS_API_KEYS entry `{}`: {why} (expected name:scope[+scope]:sha256)", entry.split(':').next().unwrap_or("")))
    };
    v.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let mut parts = entry.splitn(3, ':');
            let (Some(name), Some(scopes), Some(sha)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad(entry, "three fields needed"));
            };
            let scopes = scopes
                .split('+')
                .map(|s| match s.trim() {
                    "search" => Ok(Scope::Search),
                    "admin" => Ok(Scope::Admin),
                    other => Err(bad(entry, &format!("unknown scope `{other}` (search, admin)"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sha = sha.trim().to_ascii_lowercase();
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(entry, "the digest must be 64 hex characters"));
            }
            Ok(ApiKey { name: name.trim().to_owned(), sha256: sha, scopes })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::expand_refs;

    #[test]
    fn references_are_expanded_and_a_missing_one_is_named() {
        let var = |n: &str| (n == "TOKEN").then(|| "s3cret".to_owned());
        assert_eq!(expand_refs("${TOKEN}", &var).unwrap(), "s3cret");
        assert_eq!(expand_refs("Key ${TOKEN}!", &var).unwrap(), "Key s3cret!");
        assert_eq!(expand_refs("no refs, $5 and ${ not a ref", &var).unwrap(), "no refs, $5 and ${ not a ref");
        assert_eq!(expand_refs("${1X}", &var).unwrap(), "${1X}");
        assert_eq!(expand_refs("${MISSING}", &var).unwrap_err(), "MISSING");
    }
}
