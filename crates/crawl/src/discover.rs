//! Finding URLs: links and the canonical URL of an HTML page, links of a Markdown page and
//! of an `llms.txt` (the Markdown index of a site's pages for language models,
//! <https://llmstxt.org>), sitemaps and sitemap indexes (gzip too), content-type detection.

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
    /// A JSON or YAML body: an OpenAPI / Swagger spec when it is one.
    OpenApi,
    /// A PDF file (`application/pdf`, or a `.pdf` served as bytes): binary, kept whole in
    /// [`crate::Page::raw`].
    Pdf,
}

/// Whether `url` names an `llms.txt` or `llms-full.txt` (Markdown, whatever its type says).
pub fn is_llms_txt(url: &Url) -> bool {
    let name = url.path().rsplit('/').next().unwrap_or("");
    name.eq_ignore_ascii_case("llms.txt") || name.eq_ignore_ascii_case("llms-full.txt")
}

pub fn detect_format(content_type: Option<&str>, url: &Url) -> Option<PageFormat> {
    let mime = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let ext = url.path().rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    if is_llms_txt(url) && matches!(mime.as_str(), "text/plain" | "text/markdown" | "text/x-markdown" | "") {
        return Some(PageFormat::Markdown);
    }
    match mime.as_str() {
        "text/html" | "application/xhtml+xml" => Some(PageFormat::Html),
        "text/markdown" | "text/x-markdown" => Some(PageFormat::Markdown),
        "text/x-rst" | "text/prs.fallenstein.rst" => Some(PageFormat::Rst),
        "application/json" | "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" | "application/vnd.oai.openapi" | "application/vnd.oai.openapi+json" => Some(PageFormat::OpenApi),
        "application/pdf" | "application/x-pdf" => Some(PageFormat::Pdf),
        "application/octet-stream" | "binary/octet-stream" | "" if ext == "pdf" => Some(PageFormat::Pdf),
        "text/plain" | "application/octet-stream" | "" if matches!(ext.as_str(), "json" | "yaml" | "yml") => Some(PageFormat::OpenApi),
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

/// The link targets of a Markdown text, in order: inline links `[text](url "title")` and
/// autolinks `<https://...>`, resolved against `base` and normalised; images
/// (`![alt](src)`) and links inside code are not links. This is what an `llms.txt` is made
/// of (`- [Guide](https://example.com/guide.md): notes`), and what a site serving Markdown
/// links with.
pub fn markdown_links(base: &Url, text: &str) -> Vec<Url> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || line.starts_with("    ") || line.starts_with('\t') {
            continue;
        }
        let b = line.as_bytes();
        let mut i = 0;
        let mut in_code = false;
        while i < b.len() {
            match b[i] {
                b'`' => in_code = !in_code,
                b'<' if !in_code => {
                    if let Some(end) = line[i + 1..].find('>') {
                        let inner = &line[i + 1..i + 1 + end];
                        if (inner.starts_with("http://") || inner.starts_with("https://")) && !inner.contains(char::is_whitespace) {
                            out.extend(resolve(Some(base), inner));
                            i += end + 1;
                        }
                    }
                }
                b']' if !in_code && b.get(i + 1) == Some(&b'(') => {
                    // An image's `]` has `![` before its text: skip those.
                    let open = line[..i].rfind('[');
                    let image = open.is_some_and(|o| o > 0 && b[o - 1] == b'!');
                    if let Some(end) = line[i + 2..].find(')') {
                        let target = line[i + 2..i + 2 + end].split_whitespace().next().unwrap_or("");
                        let target = target.trim_start_matches('<').trim_end_matches('>');
                        if !image && open.is_some() {
                            out.extend(resolve(Some(base), target));
                        }
                        i += end + 2;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// What a URL list turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlList {
    Sitemap,
    LlmsTxt,
}

/// A sitemap (XML, plain or gzip) or an `llms.txt` (Markdown links), told apart by the body:
/// XML starts with `<`. The llms.txt's links resolve against `url`, where it was served.
pub fn parse_url_list(url: &Url, body: &[u8], max_bytes: u64) -> Result<(Sitemap, UrlList), String> {
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if body.starts_with(&[0x1f, 0x8b]) || first == Some(&b'<') {
        return parse_sitemap(body, max_bytes).map(|s| (s, UrlList::Sitemap));
    }
    let pages = markdown_links(url, &String::from_utf8_lossy(text));
    if pages.is_empty() {
        return Err("neither a sitemap (XML) nor an llms.txt (Markdown links): no URL in it".into());
    }
    Ok((Sitemap { pages, sitemaps: Vec::new() }, UrlList::LlmsTxt))
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
        assert_eq!(detect_format(Some("application/zip"), &page), None);
    }

    #[test]
    fn pdfs_by_type_or_by_name_when_served_as_bytes() {
        let pdf = Url::parse("http://h/docs/manual.pdf").unwrap();
        let page = Url::parse("http://h/docs/page.html").unwrap();
        assert_eq!(detect_format(Some("application/pdf"), &page), Some(PageFormat::Pdf), "the type names it, whatever the name");
        assert_eq!(detect_format(Some("application/octet-stream"), &pdf), Some(PageFormat::Pdf));
        assert_eq!(detect_format(None, &pdf), Some(PageFormat::Pdf));
        assert_eq!(detect_format(Some("application/octet-stream"), &page), None, "bytes without a PDF name are not read");
        assert_eq!(detect_format(Some("text/html"), &pdf), Some(PageFormat::Html), "the header wins over the extension");
        assert_eq!(detect_format(Some("image/png"), &Url::parse("http://h/x.html").unwrap()), None, "the header wins over the extension");
    }

    #[test]
    fn llms_txt_and_markdown_links() {
        let base = Url::parse("https://docs.example/llms.txt").unwrap();
        let text = "# Example\n\n> Docs for agents: see [the spec](https://llmstxt.org/).\n\n## Docs\n\n\
            - [Quick start](https://docs.example/start.md): install and first query\n\
            - [API](/api/reference.html \"the reference\")\n\
            - [Relative](guide/config.md#tuning)\n\
            ![logo](https://docs.example/logo.png) and `[not](a-link)` and <https://docs.example/auto>\n\n\
            ```\n[in](code-fence.md)\n```\n\n    [indented](code.md)\n[broken](\n";
        let got: Vec<String> = markdown_links(&base, text).iter().map(Url::to_string).collect();
        assert_eq!(
            got,
            [
                "https://llmstxt.org/",
                "https://docs.example/start.md",
                "https://docs.example/api/reference.html",
                "https://docs.example/guide/config.md",
                "https://docs.example/auto",
            ]
        );
        assert!(is_llms_txt(&base) && is_llms_txt(&Url::parse("https://d.example/v2/LLMS-FULL.TXT").unwrap()));
        assert_eq!(detect_format(Some("text/plain; charset=utf-8"), &base), Some(PageFormat::Markdown), "llms.txt is Markdown");
        assert_eq!(detect_format(Some("text/html"), &base), Some(PageFormat::Html), "unless served as something else");
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
