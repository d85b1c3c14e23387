//! Property-based fuzzing of URL normalisation, link discovery, sitemap and robots.txt
//! parsing (proptest). Invariants: nothing panics; normalisation is idempotent and never
//! keeps credentials, fragments or tracking parameters; discovered links are normalised.

use aidocs_crawl::discover::{html_links, parse_sitemap};
use aidocs_crawl::normalize;
use proptest::prelude::*;
use url::Url;

fn url_text() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![Just("http://"), Just("https://"), Just("HTTP://"), Just("ftp://"), Just("javascript:"), Just("")];
    let host = prop_oneof![Just("docs.example.com"), Just("[::1]"), Just("127.0.0.1:8080"), Just("user:pw@h.example"), Just("xn--bcher-kva.example"), Just("")];
    let path = "(/[a-zA-Z0-9%._~-]{0,6}){0,5}(/index\\.html?)?";
    let query = "(\\?(utm_source=x|a=1|b=%20|fbclid=z)(&(utm_medium=y|c=2))*)?";
    let frag = "(#[a-z]{0,4})?";
    (scheme, host, path, query, frag).prop_map(|(s, h, p, q, f)| format!("{s}{h}{p}{q}{f}"))
}

proptest! {
    #[test]
    fn normalisation_is_idempotent_and_clean(text in url_text()) {
        let Ok(u) = Url::parse(&text) else { return Ok(()) };
        if let Some(n) = normalize(&u) {
            prop_assert_eq!(normalize(&n), Some(n.clone()), "idempotent");
            prop_assert!(n.fragment().is_none());
            prop_assert!(n.username().is_empty() && n.password().is_none());
            prop_assert!(!n.query_pairs().any(|(k, _)| k.starts_with("utm_") || k == "fbclid"));
            prop_assert!(matches!(n.scheme(), "http" | "https"));
        }
    }

    #[test]
    fn link_discovery_returns_normalised_links(links in prop::collection::vec(url_text(), 0..30), junk in "[<>\"' a-z=/]{0,200}") {
        let page = Url::parse("https://docs.example.com/guide/intro.html").unwrap();
        let html: String = links.iter().map(|l| format!("<a href=\"{l}\">x</a>{junk}")).collect::<String>() + "<link rel=canonical href=\"/guide/\">";
        let (found, _canonical) = html_links(&page, &html);
        for l in found {
            prop_assert_eq!(normalize(&l), Some(l.clone()));
        }
    }

    #[test]
    fn sitemaps_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048), urls in prop::collection::vec(url_text(), 0..20), nested in any::<bool>()) {
        let _ = parse_sitemap(&body, 1 << 20);
        let (tag, root) = if nested { ("sitemap", "sitemapindex") } else { ("url", "urlset") };
        let xml = format!(
            "<?xml version=\"1.0\"?><{root} xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{}</{root}>",
            urls.iter().map(|u| format!("<{tag}><loc>{u}</loc></{tag}>")).collect::<String>()
        );
        if let Ok(s) = parse_sitemap(xml.as_bytes(), 1 << 20) {
            prop_assert!(s.pages.len() + s.sitemaps.len() <= urls.len());
        }
    }

    #[test]
    fn robots_txt_never_panics(lines in prop::collection::vec("(User-agent|Disallow|Allow|Crawl-delay|Sitemap|#)?:? ?[ -~]{0,30}", 0..40)) {
        let text = lines.join("\n");
        if let Ok(r) = texting_robots::Robot::new("aidocs", text.as_bytes()) {
            let _ = r.allowed("/guide/intro.html");
        }
    }
}
