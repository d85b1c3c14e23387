//! Finding URLs: links and the canonical URL of an HTML page, sitemaps and sitemap indexes
//! (gzip too), content-type detection.

use crate::urls::resolve;
use url::Url;

/// What a fetched body is, from its content type (and, for generic types, its path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageFormat {
    Html,
    Markdown,
    Rst,
    Text,
}

pub fn detect_format(content_type: Option<&str>, url: &Url) -> Option<PageFormat> {
    let mime = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let ext = url.path().rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match mime.as_str() {
        "text/html" | "application/xhtml+xml" => Some(PageFormat::Html),
        "text/markdown" | "text/x-markdown" => Some(PageFormat::Markdown),
        "text/x-rst" | "text/prs.fallenstein.rst" => Some(PageFormat::Rst),
        "text/plain" | "" => match ext.as_str() {
            "md" | "markdown" => Some(PageFormat::Markdown),
            "rst" => Some(PageFormat::Rst),
            "txt" => Some(PageFormat::Text),
            _ if mime.is_empty() => None,
            _ => Some(PageFormat::Text),
        },
        _ => None,
    }
}

/// Links (`<a href>`) and the canonical URL (`<link rel=canonical>`) of an HTML page, resolved
/// against `<base href>` or the page URL and normalised.
pub fn html_links(page: &Url, html: &str) -> (Vec<Url>, Option<Url>) {
    let doc = scraper::Html::parse_document(html);
    let sel = |s: &str| scraper::Selector::parse(s).expect("static selector");
    let base = doc.select(&sel("base[href]")).next().and_then(|b| b.value().attr("href")).and_then(|h| page.join(h).ok()).unwrap_or_else(|| page.clone());
    let mut links = Vec::new();
    for a in doc.select(&sel("a[href]")) {
        let rel = a.value().attr("rel").unwrap_or("");
        if rel.split_whitespace().any(|r| r.eq_ignore_ascii_case("nofollow")) {
            continue;
        }
        if let Some(u) = a.value().attr("href").and_then(|h| resolve(Some(&base), h)) {
            links.push(u);
        }
    }
    let canonical = doc
        .select(&sel("link[rel][href]"))
        .find(|l| l.value().attr("rel").is_some_and(|r| r.split_whitespace().any(|x| x.eq_ignore_ascii_case("canonical"))))
        .and_then(|l| l.value().attr("href"))
        .and_then(|h| resolve(Some(&base), h));
    (links, canonical)
}

/// A parsed sitemap: page URLs (`<urlset>`) or further sitemaps (`<sitemapindex>`).
#[derive(Debug, Default, PartialEq)]
pub struct Sitemap {
    pub pages: Vec<Url>,
    pub sitemaps: Vec<Url>,
}

/// Parse a sitemap body (plain or gzip, detected by its magic bytes), at most `max_bytes`
/// after decompression.
pub fn parse_sitemap(body: &[u8], max_bytes: u64) -> Result<Sitemap, String> {
    let xml = if body.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body).take(max_bytes + 1).read_to_end(&mut out).map_err(|e| format!("gzip: {e}"))?;
        if out.len() as u64 > max_bytes {
            return Err(format!("sitemap inflates past {max_bytes} bytes"));
        }
        out
    } else {
        body.to_vec()
    };
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    reader.config_mut().trim_text(true);
    let mut out = Sitemap::default();
    let mut stack: Vec<String> = Vec::new();
    // Text of the current <loc>, gathered across text and entity-reference events.
    let mut loc = String::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Start(e)) => {
                stack.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                loc.clear();
            }
            Ok(quick_xml::events::Event::End(_)) => {
                if stack.last().is_some_and(|s| s == "loc") {
                    let parent = stack.len().checked_sub(2).and_then(|i| stack.get(i)).map(String::as_str);
                    if let Some(u) = resolve(None, &loc) {
                        match parent {
                            Some("sitemap") => out.sitemaps.push(u),
                            _ => out.pages.push(u),
                        }
                    }
                    loc.clear();
                }
                stack.pop();
            }
            Ok(quick_xml::events::Event::Text(t)) if stack.last().is_some_and(|s| s == "loc") => {
                loc.push_str(&t.xml10_content().map_err(|e| format!("sitemap text: {e}"))?);
            }
            Ok(quick_xml::events::Event::GeneralRef(r)) if stack.last().is_some_and(|s| s == "loc") => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match &*r as &[u8] {
                        b"amp" => Some('&'),
                        b"lt" => Some('<'),
                        b"gt" => Some('>'),
                        b"quot" => Some('"'),
                        b"apos" => Some('\''),
                        _ => None,
                    },
                };
                loc.extend(c);
            }
            Ok(quick_xml::events::Event::Eof) => break,
            Err(e) => return Err(format!("sitemap XML at byte {}: {e}", reader.buffer_position())),
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_canonical_and_formats() {
        let page = Url::parse("http://h/docs/a/page.html").unwrap();
        let html = r#"<html><head><link rel="canonical" href="/docs/a/page.html#top"></head><body>
            <a href="b.html#sec">b</a> <a href="../c/">c</a> <a href="mailto:x@y">m</a>
            <a rel="nofollow" href="/login">l</a> <a href="http://other/x?utm_source=1">o</a><p>unclosed <b>tags"#;
        let (links, canonical) = html_links(&page, html);
        let got: Vec<&str> = links.iter().map(Url::as_str).collect();
        assert_eq!(got, ["http://h/docs/a/b.html", "http://h/docs/c/", "http://other/x"]);
        assert_eq!(canonical.unwrap().as_str(), "http://h/docs/a/page.html");
        assert_eq!(detect_format(Some("text/html; charset=utf-8"), &page), Some(PageFormat::Html));
        assert_eq!(detect_format(Some("text/plain"), &Url::parse("http://h/x.md").unwrap()), Some(PageFormat::Markdown));
        assert_eq!(detect_format(Some("application/pdf"), &page), None);
        assert_eq!(detect_format(Some("image/png"), &Url::parse("http://h/x.html").unwrap()), None, "the header wins over the extension");
    }

    #[test]
    fn sitemaps_plain_gzip_and_index() {
        let xml = br#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <url><loc>http://h/a.html?x=1&amp;y=2</loc><lastmod>2026-01-01</lastmod></url><url><loc> http://h/b.html#x </loc></url></urlset>"#;
        let s = parse_sitemap(xml, 1 << 20).unwrap();
        assert_eq!(s.pages.iter().map(Url::as_str).collect::<Vec<_>>(), ["http://h/a.html?x=1&y=2", "http://h/b.html"]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, br#"<sitemapindex><sitemap><loc>http://h/s2.xml</loc></sitemap></sitemapindex>"#).unwrap();
        let s = parse_sitemap(&gz.finish().unwrap(), 1 << 20).unwrap();
        assert_eq!(s.sitemaps.iter().map(Url::as_str).collect::<Vec<_>>(), ["http://h/s2.xml"]);
        assert!(parse_sitemap(b"<urlset><url><loc>x</url>", 1 << 20).is_err() || parse_sitemap(b"<urlset><url><loc>x</url>", 1 << 20).unwrap().pages.is_empty());
    }
}
