//! PDF documents as sections: the text of each page (through `lopdf`), cut at the entries of
//! the document's outline (its bookmarks), so a section has the outline's heading path
//! (`2 ASN.1 structure handling > ASN.1 syntax`) and a page anchor (`page=5`, which every PDF
//! viewer opens at that page: `libtasn1.pdf#page=5`). A section that runs over several pages
//! becomes one section per page, each anchored at its own page, so a hit links to the page
//! that holds it. Without an outline, each page is a section of its own (`Page 12`).
//!
//! Hostile input is bounded: at most [`MAX_PAGES`] pages are read, each page's decompressed
//! content is capped by `lopdf` ([`lopdf::DEFAULT_MAX_DECOMPRESSED_SIZE`]), and a panic inside
//! the parser on a malformed file becomes an error naming the file as unreadable.

use crate::document::{Block, ParsedDoc, Section, collapse_ws};

/// Pages read from one PDF at most; the rest of a longer file is left out (and said so).
pub const MAX_PAGES: u32 = 5_000;

/// Text before a page's first heading at most this long (bytes) is taken for a running
/// header and kept with the heading.
const RUNNING_HEADER: usize = 80;

/// A PDF that could not be read, with the reason (shown as the file's skip reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("not a readable PDF: {0}")]
    Unreadable(String),
    #[error("a PDF without extractable text (scanned pages or images only)")]
    NoText,
}

/// Parse a PDF file's bytes.
pub fn parse(bytes: &[u8]) -> Result<ParsedDoc, PdfError> {
    // lopdf is a large parser facing arbitrary files: a panic on a malformed one must skip
    // the file, not take the ingest run (or the server) down.
    match std::panic::catch_unwind(|| parse_inner(bytes)) {
        Ok(r) => r,
        Err(panic) => {
            let why = panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
            Err(PdfError::Unreadable(format!("the PDF parser failed on it ({why})")))
        }
    }
}

fn parse_inner(bytes: &[u8]) -> Result<ParsedDoc, PdfError> {
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| PdfError::Unreadable(e.to_string()))?;
    let pages: Vec<u32> = doc.get_pages().keys().copied().take(MAX_PAGES as usize).collect();
    if pages.is_empty() {
        return Err(PdfError::Unreadable("no pages".into()));
    }
    let texts: Vec<String> = pages.iter().map(|n| doc.extract_text(&[*n]).map(|t| clean(&t)).unwrap_or_default()).collect();
    if texts.iter().all(|t| t.is_empty()) {
        return Err(PdfError::NoText);
    }
    let title = info_title(&doc);
    let outline: Vec<Entry> = doc
        .get_toc()
        .map(|toc| toc.toc)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.page >= 1 && e.page <= pages.len())
        .map(|e| Entry { level: e.level.max(1), title: collapse_ws(&clean(&e.title)), page: e.page })
        .filter(|e| !e.title.is_empty())
        .collect();
    let outline = in_page_order(outline);
    let sections = if outline.is_empty() { by_page(&texts) } else { by_outline(&texts, &outline) };
    let title = title.or_else(|| outline.first().map(|e| e.title.clone()));
    Ok(ParsedDoc { title, sections, meta: Default::default() })
}

/// An outline entry: depth (1 = top), heading, 1-based page.
#[derive(Debug, Clone)]
struct Entry {
    level: usize,
    title: String,
    page: usize,
}

/// The outline without entries that point before the one above them (an outline out of page
/// order cannot cut the text; the entries in order still do).
fn in_page_order(outline: Vec<Entry>) -> Vec<Entry> {
    let mut last = 0;
    outline
        .into_iter()
        .filter(|e| {
            let keep = e.page >= last;
            if keep {
                last = e.page;
            }
            keep
        })
        .collect()
}

/// The `Title` of the document's Info dictionary, when it has a non-empty one.
fn info_title(doc: &lopdf::Document) -> Option<String> {
    let info = doc.trailer.get_deref(b"Info", doc).ok()?.as_dict().ok()?;
    let title = lopdf::decode_text_string(info.get_deref(b"Title", doc).ok()?).ok()?;
    let title = collapse_ws(&title);
    (!title.is_empty()).then_some(title)
}

/// Typographic ligatures spelled out (so `ﬁle` matches `file`), soft hyphens dropped, words
/// broken at a line end (`manip- ulation`) joined, whitespace collapsed.
fn clean(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{FB00}' => s.push_str("ff"),
            '\u{FB01}' => s.push_str("fi"),
            '\u{FB02}' => s.push_str("fl"),
            '\u{FB03}' => s.push_str("ffi"),
            '\u{FB04}' => s.push_str("ffl"),
            '\u{FB05}' | '\u{FB06}' => s.push_str("st"),
            '\u{00AD}' | '\u{0000}' => {}
            c => s.push(c),
        }
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        // `manip-` + `ulation`: a letter before the hyphen and a lower-case letter after.
        let broken = w.len() > 2
            && w.ends_with('-')
            && w[..w.len() - 1].chars().last().is_some_and(char::is_alphabetic)
            && words.get(i + 1).and_then(|n| n.chars().next()).is_some_and(char::is_lowercase);
        if !out.is_empty() {
            out.push(' ');
        }
        if broken {
            out.push_str(&w[..w.len() - 1]);
            out.push_str(words[i + 1]);
            i += 2;
        } else {
            out.push_str(w);
            i += 1;
        }
    }
    out
}

/// One section per page with text, `Page N`.
fn by_page(texts: &[String]) -> Vec<Section> {
    texts
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.is_empty())
        .map(|(i, t)| Section { heading_path: vec![format!("Page {}", i + 1)], anchor: page_anchor(i + 1), blocks: vec![Block::Text(t.clone())] })
        .collect()
}

fn page_anchor(page: usize) -> String {
    format!("page={page}")
}

/// Where on its page each outline entry starts: the byte offset of its heading in the page's
/// text (searched after the previous entry's start on the same page), or the page's start
/// when the heading is not found there as written. `outline` is in page order.
fn starts(texts: &[String], outline: &[Entry]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(outline.len());
    // Where the previous heading was found (searches on its page go on from there).
    let mut found: Option<(usize, usize)> = None;
    for e in outline {
        let page = e.page - 1;
        let first_on_page = !matches!(found, Some((p, _)) if p == page);
        let from = if first_on_page { 0 } else { found.map_or(0, |(_, off)| off) };
        let text = &texts[page];
        let at = text[from..].find(&e.title).map(|i| from + i).unwrap_or(from);
        found = Some((page, at));
        // What comes before the first heading of a page, when that little, is the page's
        // running header (`Chapter 4: Function reference 22 4.4`), not the end of the
        // section above.
        let start = if first_on_page && at <= RUNNING_HEADER { 0 } else { at };
        out.push((page, start));
    }
    out
}

/// Sections cut at the outline's entries, one per page they cover; the text before the first
/// entry (cover, copyright, contents) is a section titled by nothing but its page.
fn by_outline(texts: &[String], outline: &[Entry]) -> Vec<Section> {
    let starts = starts(texts, outline);
    let mut sections = Vec::new();
    let mut push = |path: &[String], page: usize, text: &str| {
        let text = text.trim();
        if !text.is_empty() {
            let heading_path = if path.is_empty() { vec![format!("Page {}", page + 1)] } else { path.to_vec() };
            sections.push(Section { heading_path, anchor: page_anchor(page + 1), blocks: vec![Block::Text(text.to_owned())] });
        }
    };
    // Text from (page a, offset x) up to (page b, offset y), page by page.
    let mut span = |path: &[String], (pa, xa): (usize, usize), (pb, xb): (usize, usize)| {
        for p in pa..=pb.min(texts.len() - 1) {
            let t = &texts[p];
            let lo = if p == pa { xa.min(t.len()) } else { 0 };
            let hi = if p == pb { xb.min(t.len()) } else { t.len() };
            if lo < hi {
                push(path, p, &t[lo..hi]);
            }
        }
    };
    span(&[], (0, 0), starts[0]);
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (i, e) in outline.iter().enumerate() {
        while stack.last().is_some_and(|(l, _)| *l >= e.level) {
            stack.pop();
        }
        stack.push((e.level, e.title.clone()));
        let path: Vec<String> = stack.iter().map(|(_, t)| t.clone()).collect();
        let end = starts.get(i + 1).copied().unwrap_or((texts.len() - 1, usize::MAX));
        span(&path, starts[i], end);
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_spells_out_ligatures_and_joins_broken_words() {
        assert_eq!(clean("the \u{FB01}le  manip- ulation of Non- Free"), "the file manipulation of Non- Free");
        assert_eq!(clean("a -- b"), "a -- b");
    }

    fn entry(level: usize, title: &str, page: usize) -> Entry {
        Entry { level, title: title.into(), page }
    }

    #[test]
    fn outline_cuts_pages_at_headings_and_anchors_each_page() {
        let header = "Chapter 1 page 3 ".repeat(6);
        let texts = vec!["Cover page".to_owned(), "1 Intro hello 1.1 Sub one".to_owned(), format!("{header}more of sub 2 Next last")];
        let outline = vec![entry(1, "1 Intro", 2), entry(2, "1.1 Sub", 2), entry(1, "2 Next", 3)];
        let s = by_outline(&texts, &outline);
        let got: Vec<(String, &str, String)> = s.iter().map(|s| (s.heading_path.join(" > "), s.anchor.as_str(), s.blocks[0].text().to_owned())).collect();
        assert_eq!(
            got,
            [
                ("Page 1".to_owned(), "page=1", "Cover page".to_owned()),
                ("1 Intro".to_owned(), "page=2", "1 Intro hello".to_owned()),
                ("1 Intro > 1.1 Sub".to_owned(), "page=2", "1.1 Sub one".to_owned()),
                ("1 Intro > 1.1 Sub".to_owned(), "page=3", format!("{header}more of sub").trim().to_owned()),
                ("2 Next".to_owned(), "page=3", "2 Next last".to_owned()),
            ]
        );
    }

    #[test]
    fn a_heading_not_found_on_its_page_starts_at_the_page_and_disorder_is_dropped() {
        let texts = vec!["alpha".to_owned(), "beta".to_owned()];
        let outline = in_page_order(vec![entry(1, "Missing", 2), entry(1, "Back", 1)]);
        assert_eq!(outline.len(), 1);
        let s = by_outline(&texts, &outline);
        assert_eq!((s[0].anchor.as_str(), s[0].blocks[0].text()), ("page=1", "alpha"));
        assert_eq!(s[1].heading_path, ["Missing"]);
        assert_eq!((s[1].anchor.as_str(), s[1].blocks[0].text()), ("page=2", "beta"));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn garbage_and_truncated_files_are_unreadable_not_panics() {
        assert!(matches!(parse(b"not a pdf at all"), Err(PdfError::Unreadable(_))));
        assert!(matches!(parse(b"%PDF-1.4\n1 0 obj << /Type /Catalog"), Err(PdfError::Unreadable(_))));
        assert!(matches!(parse(&[]), Err(PdfError::Unreadable(_))));
    }
}
