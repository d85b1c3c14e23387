//! URL normalisation and scope.

use globset::{Glob, GlobSet, GlobSetBuilder};
use url::Url;

/// Query parameters that only track visitors; dropped so one page has one URL.
const TRACKING: &[&str] = &["fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_ga", "_gl", "ref_src", "yclid"];

/// The canonical form of `url`, or `None` for what is never crawled (not http(s), no host,
/// credentials in the URL). Lower-case scheme and host, no default port (the `url` crate),
/// no fragment, no tracking parameters (`utm_*` and [`TRACKING`]), `/index.html` folded into
/// its directory (`/docs/index.html` -> `/docs/`). A trailing slash is kept: `/docs` and
/// `/docs/` resolve relative links differently, so they are different requests (a server
/// redirects one to the other, and the final URL de-duplicates them).
pub fn normalize(url: &Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let mut u = url.clone();
    u.set_fragment(None);
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("utm_") && !TRACKING.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(kept);
    }
    let mut path = u.path().to_owned();
    if path.is_empty() {
        path.push('/');
    }
    for index in ["index.html", "index.htm"] {
        if let Some(dir) = path.strip_suffix(index).filter(|d| d.ends_with('/')) {
            path = dir.to_owned();
        }
    }
    u.set_path(&path);
    Some(u)
}

/// Parse `s` (absolute, or relative to `base`) and normalise it.
pub fn resolve(base: Option<&Url>, s: &str) -> Option<Url> {
    let s = s.trim();
    if s.is_empty() || s.starts_with("javascript:") || s.starts_with("mailto:") || s.starts_with("data:") {
        return None;
    }
    let u = match base {
        Some(b) => b.join(s).ok()?,
        None => Url::parse(s).ok()?,
    };
    normalize(&u)
}

/// Which URLs a crawl may fetch: under a prefix (same scheme, host and port, path below the
/// prefix's path), matching an include glob when any is given, matching no exclude glob.
/// Globs match the URL path (`/docs/**/*.html`).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    prefix: Option<Url>,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

fn globs(patterns: &[String], what: &str) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("{what} pattern `{p}`: {e}"))?);
    }
    b.build().map(Some).map_err(|e| format!("{what} patterns: {e}"))
}

impl Scope {
    pub fn new(prefix: Option<Url>, include: &[String], exclude: &[String]) -> Result<Self, String> {
        Ok(Self { prefix: prefix.and_then(|p| normalize(&p)), include: globs(include, "--include")?, exclude: globs(exclude, "--exclude")? })
    }

    pub fn prefix(&self) -> Option<&Url> {
        self.prefix.as_ref()
    }

    pub fn contains(&self, url: &Url) -> bool {
        if let Some(p) = &self.prefix {
            let same_origin = p.scheme() == url.scheme() && p.host_str() == url.host_str() && p.port_or_known_default() == url.port_or_known_default();
            let base = p.path().trim_end_matches('/');
            let path = url.path();
            let below = path == base || base.is_empty() || path.starts_with(&format!("{base}/"));
            if !same_origin || !below {
                return false;
            }
        }
        let path = url.path();
        self.include.as_ref().is_none_or(|g| g.is_match(path)) && self.exclude.as_ref().is_none_or(|g| !g.is_match(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(&Url::parse(s).unwrap()).map(|u| u.to_string()).unwrap_or_default()
    }

    #[test]
    fn normalisation_folds_equivalent_urls() {
        assert_eq!(n("HTTPS://Docs.Example.COM:443/Guide/?utm_source=x&b=2&fbclid=1#intro"), "https://docs.example.com/Guide/?b=2");
        assert_eq!(n("http://docs.example.com:80/a/index.html"), "http://docs.example.com/a/");
        assert_eq!(n("http://docs.example.com/"), "http://docs.example.com/");
        assert_eq!(n("http://docs.example.com:8080/x/"), "http://docs.example.com:8080/x/");
        assert_eq!(n("http://docs.example.com/x"), "http://docs.example.com/x");
        assert_eq!(n("ftp://docs.example.com/x"), "");
        assert_eq!(n("http://user:pw@docs.example.com/x"), "", "credentials in URLs are never crawled");
        assert_eq!(resolve(Some(&Url::parse("http://h/a/b.html").unwrap()), "../c.html#x").unwrap().as_str(), "http://h/c.html");
        assert!(resolve(None, "javascript:alert(1)").is_none());
    }

    #[test]
    fn scope_is_origin_and_path_prefix_with_globs() {
        let s = Scope::new(Url::parse("http://h:1/docs/").ok(), &[], &["/docs/private/**".into()]).unwrap();
        let ok = |u: &str| s.contains(&normalize(&Url::parse(u).unwrap()).unwrap());
        assert!(ok("http://h:1/docs") && ok("http://h:1/docs/a/b.html"));
        assert!(!ok("http://h:1/docsx/a") && !ok("http://h:2/docs/a") && !ok("https://h:1/docs/a") && !ok("http://other:1/docs/a"));
        assert!(!ok("http://h:1/docs/private/x.html"), "excluded");
        let inc = Scope::new(None, &["**/*.html".into()], &[]).unwrap();
        assert!(inc.contains(&Url::parse("http://x/a/b.html").unwrap()) && !inc.contains(&Url::parse("http://x/a/b.pdf").unwrap()));
        assert!(Scope::new(None, &["[".into()], &[]).unwrap_err().contains("--include pattern `[`"));
    }
}
