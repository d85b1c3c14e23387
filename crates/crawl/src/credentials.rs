//! Credentials of a private documentation site: extra headers, HTTP basic, a bearer token,
//! cookies. They are sent with every request to the source's own origins (scheme, host and
//! port of its start URLs) and to no other: a redirect that would carry them elsewhere is
//! refused, so a secret never reaches a host the operator did not name. Values are marked
//! sensitive and never printed: `Debug` shows header names only.

use crate::CrawlError;
use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderName, HeaderValue};
use url::Url;

/// Headers for a source's own origins.
#[derive(Clone, Default)]
pub struct Credentials {
    origins: Vec<url::Origin>,
    headers: HeaderMap,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origins: Vec<String> = self.origins.iter().map(|o| o.ascii_serialization()).collect();
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("Credentials").field("origins", &origins).field("headers", &names).finish_non_exhaustive()
    }
}

fn sensitive(what: &str, value: &str) -> Result<HeaderValue, CrawlError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| CrawlError::Invalid(format!("{what}: the value is not a valid HTTP header value (control characters or non-ASCII)")))?;
    v.set_sensitive(true);
    Ok(v)
}

impl Credentials {
    /// Credentials for the origins of `urls` (each must be an http(s) URL).
    pub fn for_urls<'a>(urls: impl IntoIterator<Item = &'a str>) -> Result<Self, CrawlError> {
        let mut origins = Vec::new();
        for u in urls {
            let url = Url::parse(u).map_err(|e| CrawlError::Invalid(format!("`{u}` is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(CrawlError::Invalid(format!("`{u}`: credentials go over http(s) only")));
            }
            let origin = url.origin();
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        if origins.is_empty() {
            return Err(CrawlError::Invalid("credentials need at least one URL whose origin they belong to".into()));
        }
        Ok(Self { origins, headers: HeaderMap::new() })
    }

    /// An extra header (`X-Api-Key: ...`). `Authorization` and `Cookie` are set once each.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, CrawlError> {
        let key = HeaderName::from_bytes(name.as_bytes()).map_err(|_| CrawlError::Invalid(format!("header `{name}`: not a valid HTTP header name")))?;
        if matches!(key.as_str(), "host" | "content-length" | "transfer-encoding" | "connection" | "if-none-match" | "if-modified-since") {
            return Err(CrawlError::Invalid(format!("header `{name}`: set by the crawler itself, it cannot be configured")));
        }
        self.set(key, sensitive(&format!("header `{name}`"), value)?)?;
        Ok(self)
    }

    /// HTTP basic authentication.
    pub fn basic(mut self, username: &str, password: &str) -> Result<Self, CrawlError> {
        if username.contains(':') {
            return Err(CrawlError::Invalid("basic: the username cannot contain `:`".into()));
        }
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        self.set(AUTHORIZATION, sensitive("basic", &format!("Basic {token}"))?)?;
        Ok(self)
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Result<Self, CrawlError> {
        if token.trim().is_empty() {
            return Err(CrawlError::Invalid("bearer: the token is empty".into()));
        }
        self.set(AUTHORIZATION, sensitive("bearer", &format!("Bearer {}", token.trim()))?)?;
        Ok(self)
    }

    /// Cookies, sent as one `Cookie` header.
    pub fn cookies<'a>(mut self, cookies: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, CrawlError> {
        let mut pairs = Vec::new();
        for (name, value) in cookies {
            let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if !token(name) {
                return Err(CrawlError::Invalid(format!("cookie `{name}`: not a valid cookie name")));
            }
            if !value.bytes().all(|b| b.is_ascii_graphic() && !b",;\\\"".contains(&b)) {
                return Err(CrawlError::Invalid(format!("cookie `{name}`: the value has characters a cookie cannot carry (space, `;`, `,`, `\"`, `\\`, non-ASCII)")));
            }
            pairs.push(format!("{name}={value}"));
        }
        if !pairs.is_empty() {
            self.set(COOKIE, sensitive("cookies", &pairs.join("; "))?)?;
        }
        Ok(self)
    }

    fn set(&mut self, key: HeaderName, value: HeaderValue) -> Result<(), CrawlError> {
        if self.headers.contains_key(&key) {
            return Err(CrawlError::Invalid(format!("`{key}` is set twice (a header and basic, bearer or cookies)")));
        }
        self.headers.insert(key, value);
        Ok(())
    }

    /// True when no header is configured.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The names of the configured headers (never their values).
    pub fn header_names(&self) -> Vec<String> {
        self.headers.keys().map(|k| k.as_str().to_owned()).collect()
    }

    /// Whether requests to `url` carry the credentials: its origin is one of the source's.
    pub fn owns(&self, url: &Url) -> bool {
        !self.headers.is_empty() && self.origins.contains(&url.origin())
    }

    /// The origins the credentials belong to (`https://docs.example.com`).
    pub fn origins(&self) -> Vec<String> {
        self.origins.iter().map(|o| o.ascii_serialization()).collect()
    }

    /// Each header as `Name: value`, values included: for another client that sends them
    /// to [`Credentials::origins`] only (git's `http.<origin>/.extraHeader`). Never log them.
    pub fn header_lines(&self) -> Vec<String> {
        self.headers.iter().map(|(k, v)| format!("{}: {}", k.as_str(), String::from_utf8_lossy(v.as_bytes()))).collect()
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_origins_get_them() {
        let c = Credentials::for_urls(["https://docs.example.com/guide/"]).unwrap().bearer("s3cret").unwrap();
        assert!(c.owns(&Url::parse("https://docs.example.com/other").unwrap()));
        // Another scheme (plain text), port or host is another origin.
        for other in ["http://docs.example.com/guide/", "https://docs.example.com:8443/", "https://example.com/", "https://docs.example.com.evil.net/"] {
            assert!(!c.owns(&Url::parse(other).unwrap()), "{other}");
        }
    }

    #[test]
    fn values_never_print_and_bad_input_is_named() {
        let c = Credentials::for_urls(["https://d.example/"]).unwrap().basic("ci", "pa55word").unwrap().header("X-Api-Key", "k3y").unwrap().cookies([("session", "c00kie")]).unwrap();
        let shown = format!("{c:?}");
        for secret in ["pa55word", "k3y", "c00kie", "Y2k6cGE1NXdvcmQ"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("x-api-key") && shown.contains("authorization"), "{shown}");
        assert_eq!(c.headers()["authorization"], "Basic Y2k6cGE1NXdvcmQ=");
        assert!(c.headers()["authorization"].is_sensitive());
        let e = Credentials::for_urls(["https://d.example/"]).unwrap().basic("a", "b").unwrap().bearer("t").unwrap_err();
        assert!(e.to_string().contains("authorization"), "{e}");
        let e = Credentials::for_urls(["https://d.example/"]).unwrap().header("Bad Name", "v").unwrap_err();
        assert!(e.to_string().contains("`Bad Name`"), "{e}");
        let e = Credentials::for_urls(["https://d.example/"]).unwrap().header("X-Key", "line\nbreak").unwrap_err();
        assert!(e.to_string().contains("`X-Key`"), "{e}");
        let e = Credentials::for_urls(["https://d.example/"]).unwrap().cookies([("s", "a;b=c")]).unwrap_err();
        assert!(e.to_string().contains("cookie `s`"), "{e}");
        assert!(Credentials::for_urls(["ftp://d.example/"]).is_err());
    }
}
