//! Reading documentation the way a coding agent does: search answers grouped by page with
//! the chunks of one section merged in reading order and the whole answer fitted to a token
//! budget (counted with the model's tokenizer; what was cut is said), whole sections and
//! pages by link or id, the libraries a server holds with their versions, and a library
//! name with a version requirement resolved to what is indexed, never substituted silently.
//!
//! Must not know: HTTP or MCP (they render these types), how the store indexes payloads.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::search::SearchResponse;
use aidocs_core::{ChunkPayload, DocMetadata, Filter, FilterField, FilterValue, StoredPoint};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The default budget of a grouped answer or a page, in the model's tokens.
pub const DEFAULT_MAX_TOKENS: usize = 5_000;
/// The budgets a caller may ask for.
pub const MAX_TOKENS_RANGE: std::ops::RangeInclusive<usize> = 200..=100_000;

/// The budget to use: `asked`, checked against [`MAX_TOKENS_RANGE`], or the default.
pub fn budget(asked: Option<usize>) -> Result<usize> {
    match asked {
        None => Ok(DEFAULT_MAX_TOKENS),
        Some(n) if MAX_TOKENS_RANGE.contains(&n) => Ok(n),
        Some(n) => Err(Error::InvalidRequest(format!("`max_tokens` {n} is outside {}..={}", MAX_TOKENS_RANGE.start(), MAX_TOKENS_RANGE.end()))),
    }
}

/// One section as read: its chunks merged in reading order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionText {
    /// Point id of the section's first chunk (pass it to `section`).
    pub id: String,
    /// Deep link: the page URL plus `#anchor` when the section has one.
    pub url: String,
    pub heading_path: Vec<String>,
    pub text: String,
    /// Best search score among its chunks (search answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The text was cut to fit the budget.
    #[serde(default)]
    pub truncated: bool,
}

/// The sections of one page in a search answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageHits {
    pub title: String,
    /// The page, without an anchor.
    pub url: String,
    /// The collection (library) it lives in.
    pub library: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the page was last updated, as its source says (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    pub sections: Vec<SectionText>,
}

/// A search answer sized for a context window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub pages: Vec<PageHits>,
    /// Tokens of the rendered answer ([`Fitted::render`]), by the model's tokenizer.
    pub tokens: usize,
    pub max_tokens: usize,
    /// Sections left out whole because the budget was spent.
    pub omitted_sections: usize,
    /// Sections whose text was cut.
    pub truncated_sections: usize,
}

impl Fitted {
    /// Markdown for an agent: one block per page, one per section, then a line saying what
    /// was cut.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in &self.pages {
            out.push_str(&page_header(p));
            for s in &p.sections {
                out.push_str(&section_block(s));
            }
        }
        out.push_str(&self.footer());
        out
    }

    fn footer(&self) -> String {
        footer(self.pages.is_empty(), self.omitted_sections, self.truncated_sections, self.max_tokens)
    }
}

fn page_header(p: &PageHits) -> String {
    let mut meta = format!("library: {}", p.library);
    if let Some(v) = &p.version {
        meta.push_str(&format!(", version: {v}"));
    }
    if let Some(u) = &p.updated {
        meta.push_str(&format!(", updated: {u}"));
    }
    format!("# {}\n<{}> ({meta})\n\n", p.title, p.url)
}

fn section_block(s: &SectionText) -> String {
    let heading = if s.heading_path.is_empty() { "(top of page)".to_owned() } else { s.heading_path.join(" > ") };
    let cut = if s.truncated { "\n[... section cut to fit max_tokens; read it whole with get_section]" } else { "" };
    format!("## {heading}\n<{}> id: {}\n\n{}{cut}\n\n", s.url, s.id, s.text.trim())
}

fn footer(empty: bool, omitted: usize, truncated: usize, max_tokens: usize) -> String {
    if empty && omitted == 0 {
        return "No results.\n".to_owned();
    }
    if omitted == 0 && truncated == 0 {
        return String::new();
    }
    format!("[{omitted} more sections left out and {truncated} cut to stay within {max_tokens} tokens]\n")
}

/// A section read whole, with its neighbours on the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionView {
    pub library: String,
    pub title: String,
    /// The page, without an anchor.
    pub page_url: String,
    pub section: SectionText,
    pub metadata: DocMetadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Neighbour>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Neighbour>,
}

/// The title and link of a neighbouring section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    pub heading_path: Vec<String>,
    pub url: String,
    pub id: String,
}

impl SectionView {
    pub fn render(&self) -> String {
        let mut out = format!("# {}\n<{}> (library: {})\n\n", self.title, self.page_url, self.library);
        out.push_str(&section_block(&self.section));
        for (label, n) in [("previous", &self.previous), ("next", &self.next)] {
            if let Some(n) = n {
                out.push_str(&format!("{label}: {} <{}> id: {}\n", n.heading_path.join(" > "), n.url, n.id));
            }
        }
        out
    }
}

/// A page, or one stretch of it, in reading order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageView {
    pub library: String,
    pub title: String,
    pub url: String,
    pub metadata: DocMetadata,
    pub sections: Vec<SectionText>,
    /// Pass it back as `cursor` to read on; `None` at the end of the page.
    pub next_cursor: Option<usize>,
    pub tokens: usize,
}

impl PageView {
    pub fn render(&self) -> String {
        let mut out = format!("# {}\n<{}> (library: {})\n\n", self.title, self.url, self.library);
        for s in &self.sections {
            out.push_str(&section_block(s));
        }
        if let Some(c) = self.next_cursor {
            out.push_str(&format!("[the page goes on: read on with cursor {c}]\n"));
        }
        out
    }
}

/// A library: a collection (or an alias and the collection it points at) and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Library {
    pub name: String,
    /// Aliases that point at this collection.
    pub aliases: Vec<String>,
    /// Distinct `version` values, oldest first by version order.
    pub versions: Vec<String>,
    pub pages: usize,
    pub chunks: usize,
    /// Where its documents came from: URL origins and directory roots, at most 20.
    pub sources: Vec<String>,
    /// The newest `last_updated` of its pages (RFC 3339), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// When a crawl of its web sources last finished (RFC 3339): `aidocs sync` or an
    /// ingest of a URL. None for a library built from directories only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced: Option<String>,
}

/// What a collection holds of each facet field: every value with its chunk count, over the
/// whole collection (from the payload indexes; no chunk is read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facets {
    /// The collection counted (an alias resolved).
    pub collection: String,
    /// Each of [`FACET_FIELDS`] with its values, most chunks first (ties by value), at most
    /// [`MAX_FACET_VALUES`] each; a field no chunk sets has none.
    pub fields: Vec<(FilterField, Vec<(String, usize)>)>,
}

/// The fields a search page offers as facets: the closed, keyword ones a chunk may carry.
pub const FACET_FIELDS: [FilterField; 4] = [FilterField::Language, FilterField::Framework, FilterField::DocType, FilterField::Version];

/// The most values reported for one facet field.
pub const MAX_FACET_VALUES: usize = 100;

/// What `resolve_library` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// The library (collection) the name maps to.
    pub library: String,
    /// The concrete indexed version that satisfies the request: the newest that does.
    /// `None` when none does (then `available` lists what is indexed) or when the library
    /// has no versions.
    pub version: Option<String>,
    /// The versions indexed.
    pub available: Vec<String>,
    /// What was asked for, as parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// A sentence for the reader: what matched, or why nothing did.
    pub note: String,
}

/// Merge chunks (any order) into sections in reading order: chunks of one section (same
/// anchor and heading path) that follow each other on the page become one text. Each
/// section comes with the ids of its chunks. A section's lead (its first sentences again)
/// adds its id but not its text, unless none of its section's chunks is there.
fn sections_of(mut chunks: Vec<(String, ChunkPayload)>) -> Vec<(SectionText, Vec<String>)> {
    chunks.sort_by_key(|(_, p)| p.chunk_index);
    let mut out: Vec<(SectionText, Vec<String>)> = Vec::new();
    // The text of the lead that opened each section in `out`, if one did.
    let mut leads: Vec<Option<String>> = Vec::new();
    let mut last: Option<(String, Vec<String>, u32)> = None;
    for (id, p) in chunks {
        let same = last.as_ref().is_some_and(|(a, h, i)| *a == p.anchor && *h == p.heading_path && p.chunk_index == i + 1);
        last = Some((p.anchor.clone(), p.heading_path.clone(), p.chunk_index));
        if let (true, Some((s, ids))) = (same, out.last_mut()) {
            if !p.lead {
                if !s.text.is_empty() {
                    s.text.push_str("\n\n");
                }
                s.text.push_str(&p.text);
            }
            ids.push(id);
            continue;
        }
        let text = if p.lead { String::new() } else { p.text.clone() };
        leads.push(p.lead.then(|| p.text.clone()));
        out.push((SectionText { id: id.clone(), url: p.url.clone(), heading_path: p.heading_path.clone(), text, score: None, truncated: false }, vec![id]));
    }
    for ((s, _), lead) in out.iter_mut().zip(leads) {
        if s.text.is_empty() && let Some(lead) = lead {
            s.text = lead;
        }
    }
    out
}

/// The page URL of a chunk: its deep link without the fragment.
fn page_url(p: &ChunkPayload) -> String {
    p.url.split('#').next().unwrap_or_default().to_owned()
}

/// The most versions of one library that reads list.
const MAX_VERSIONS: usize = 10_000;

/// The paths under an ingest root that a page link may end with, longest first:
/// `https://host/py/3.11/a.html` gives `py/3.11/a.html`, `3.11/a.html` and `a.html`.
fn path_suffixes(page: &str) -> Vec<String> {
    let rest = match page.split_once("://") {
        Some((_, after)) => after.split_once('/').map(|(_, p)| p).unwrap_or_default(),
        None => page,
    };
    let rest = rest.trim_start_matches('/');
    let mut out = Vec::new();
    let mut at = rest;
    while !at.is_empty() && out.len() < 32 {
        out.push(at.to_owned());
        at = at.split_once('/').map(|(_, tail)| tail).unwrap_or_default();
    }
    out
}

/// The first `max` tokens of `text` (by `count`), cut on a word boundary.
fn cut_to(text: &str, max: usize, count: &dyn Fn(&str) -> usize) -> String {
    if count(text) <= max {
        return text.to_owned();
    }
    let words: Vec<&str> = text.split_inclusive(char::is_whitespace).collect();
    // Binary search on the number of words that fit.
    let (mut lo, mut hi) = (0usize, words.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if count(&words[..mid].concat()) <= max { lo = mid } else { hi = mid - 1 }
    }
    words[..lo].concat().trim_end().to_owned()
}

/// Order versions: numeric parts compared as numbers (`3.9` < `3.11`), the rest as text.
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.trim_start_matches(['v', 'V'])
        .split(['.', '-', '+'])
        .map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            (digits.parse().unwrap_or(0), p[digits.len()..].to_owned())
        })
        .collect()
}

/// Whether `version` satisfies `req`: an exact version (`3.11` also matches `3.11.4`), a
/// semver range (`^18.2`, `~1.4`, `18.x`) or comparison list (`>=3.10,<3.12`, PEP 440 and
/// npm alike; `==3.11.*`).
pub fn satisfies(version: &str, req: &str) -> bool {
    let req = req.trim();
    if req.is_empty() || req == "*" || req == "latest" {
        return true;
    }
    req.split([',', ' ']).filter(|c| !c.is_empty()).all(|c| one_constraint(version, c))
}

fn nums(v: &str) -> Vec<u64> {
    v.trim_start_matches(['v', 'V', '='])
        .split('.')
        .map_while(|p| {
            let d: String = p.chars().take_while(char::is_ascii_digit).collect();
            d.parse().ok()
        })
        .collect()
}

fn cmp_nums(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    (0..n).map(|i| a.get(i).copied().unwrap_or(0).cmp(&b.get(i).copied().unwrap_or(0))).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
}

/// `version` starts with the components of `prefix` (`3.11.4` under `3.11`).
fn under(version: &[u64], prefix: &[u64]) -> bool {
    !prefix.is_empty() && version.len() >= prefix.len() && version[..prefix.len()] == *prefix
}

fn one_constraint(version: &str, c: &str) -> bool {
    use std::cmp::Ordering::*;
    let v = nums(version);
    if v.is_empty() {
        return version == c;
    }
    let (op, rest) = ["===", "==", ">=", "<=", "!=", "~=", ">", "<", "^", "~", "="]
        .iter()
        .find_map(|op| c.strip_prefix(op).map(|r| (*op, r.trim())))
        .unwrap_or(("", c));
    let wildcard = rest.ends_with(".*") || rest.ends_with(".x") || rest.ends_with(".X");
    let r = nums(rest.trim_end_matches(".*").trim_end_matches(".x").trim_end_matches(".X"));
    if r.is_empty() {
        return false;
    }
    match op {
        "" | "=" | "==" | "===" => under(&v, &r) || (!wildcard && cmp_nums(&v, &r) == Equal),
        "!=" => !(under(&v, &r) || cmp_nums(&v, &r) == Equal),
        ">=" => cmp_nums(&v, &r) != Less,
        ">" => cmp_nums(&v, &r) == Greater,
        "<=" => cmp_nums(&v, &r) != Greater || under(&v, &r),
        "<" => cmp_nums(&v, &r) == Less && !under(&v, &r),
        // ^1.2.3: same first non-zero component, at least 1.2.3.
        "^" => {
            let lead = r.iter().position(|&x| x != 0).unwrap_or(r.len() - 1);
            cmp_nums(&v, &r) != Less && v.len() > lead && v[..=lead] == r[..=lead]
        }
        // ~1.2.3 (npm): >= 1.2.3, same 1.2; ~=1.2 (PEP 440): >= 1.2, same 1.
        "~" => cmp_nums(&v, &r) != Less && under(&v, &r[..r.len().min(2).max(1)]),
        "~=" => cmp_nums(&v, &r) != Less && under(&v, &r[..r.len().saturating_sub(1).max(1)]),
        _ => false,
    }
}

/// `react@18` -> (`react`, Some(`18`)); `python>=3.10,<3.12` -> (`python`, Some(`>=3.10,<3.12`)).
pub fn split_name(spec: &str) -> (String, Option<String>) {
    let spec = spec.trim();
    if let Some((n, v)) = spec.split_once('@') {
        return (n.trim().to_owned(), Some(v.trim().to_owned()).filter(|v| !v.is_empty()));
    }
    match spec.find(['>', '<', '=', '^', '~', '!']) {
        Some(i) if i > 0 => (spec[..i].trim().to_owned(), Some(spec[i..].trim().to_owned())),
        _ => (spec.to_owned(), None),
    }
}

impl Engine {
    /// Group a search answer by page (pages in the order of their best hit, sections by
    /// their best hit), give each section that holds a hit whole (all its chunks merged in
    /// reading order, full texts from the store, not snippets), and fit it to `max_tokens`
    /// as rendered:
    /// pages and sections in rank order until the budget is spent; the section that does
    /// not fit whole is cut (at least the top result's start is always given) and the rest
    /// are counted as left out.
    pub async fn fit(&self, resp: &SearchResponse, max_tokens: usize) -> Result<Fitted> {
        let store = self.store();
        let score: HashMap<String, f32> = resp.hits.iter().map(|h| (h.id.clone(), h.score)).collect();
        // Pages (collection, source id) in the order of their best hit; a search across
        // collections names each hit's collection.
        let mut order: Vec<(String, String)> = Vec::new();
        let mut by_collection: Vec<(String, Vec<uuid::Uuid>)> = Vec::new();
        for h in &resp.hits {
            let c = h.collection.clone().unwrap_or_else(|| resp.collection.clone());
            let Ok(id) = h.id.parse::<uuid::Uuid>() else { continue };
            match by_collection.iter_mut().find(|(n, _)| *n == c) {
                Some((_, ids)) => ids.push(id),
                None => by_collection.push((c, vec![id])),
            }
        }
        let mut source_of: HashMap<String, (String, String)> = HashMap::new();
        for (c, ids) in &by_collection {
            for p in store.retrieve(c, ids).await? {
                source_of.insert(p.id.to_string(), (c.clone(), p.payload.source));
            }
        }
        for h in &resp.hits {
            if let Some(key) = source_of.get(&h.id)
                && !order.contains(key)
            {
                order.push(key.clone());
            }
        }
        // Each page's sections that hold a hit, whole (every chunk of the section, not only
        // the chunks that matched), in reading order.
        let mut by_page: HashMap<(String, String), Vec<(String, ChunkPayload)>> = HashMap::new();
        for (c, source) in &order {
            let doc = store.scroll(c, &Filter::default().and(FilterField::Source, FilterValue::Keyword(source.clone()))).await?;
            by_page.insert((c.clone(), source.clone()), doc.into_iter().map(|p| (p.id.to_string(), p.payload)).collect());
        }
        let count = |t: &str| self.counter.count(t);
        let mut fitted = Fitted { pages: Vec::new(), tokens: 0, max_tokens, omitted_sections: 0, truncated_sections: 0 };
        // Reserve room for the footer.
        let reserve = count(&footer(false, 9999, 9999, max_tokens));
        let mut used = 0usize;
        let mut spent = false;
        for key in order {
            let chunks = by_page.remove(&key).unwrap_or_default();
            let Some(first) = chunks.first().map(|c| c.1.clone()) else { continue };
            let mut sections: Vec<SectionText> = sections_of(chunks)
                .into_iter()
                .filter_map(|(mut s, ids)| {
                    s.score = ids.iter().filter_map(|id| score.get(id).copied()).reduce(f32::max);
                    s.score.map(|_| s)
                })
                .collect();
            // Best section first: the top result leads the answer.
            sections.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal));
            let mut page = PageHits {
                title: first.title.clone(),
                url: page_url(&first),
                library: key.0.clone(),
                version: first.meta.version.clone(),
                updated: first.meta.last_updated.clone(),
                sections: Vec::new(),
            };
            let header = count(&page_header(&page));
            for mut s in sections {
                if spent {
                    fitted.omitted_sections += 1;
                    continue;
                }
                let head = if page.sections.is_empty() { header } else { 0 };
                let block = count(&section_block(&s));
                if used + head + block + reserve <= max_tokens {
                    used += head + block;
                    page.sections.push(s);
                    continue;
                }
                // Cut this one to what is left, if a useful part fits.
                let empty = SectionText { text: String::new(), truncated: true, ..s.clone() };
                let frame = head + count(&section_block(&empty));
                let room = max_tokens.saturating_sub(used + frame + reserve);
                if room >= 32 || (fitted.pages.is_empty() && page.sections.is_empty() && room > 0) {
                    s.text = cut_to(&s.text, room, &count);
                    s.truncated = true;
                    used += frame + count(&s.text);
                    page.sections.push(s);
                    fitted.truncated_sections += 1;
                } else {
                    fitted.omitted_sections += 1;
                }
                spent = true;
            }
            if !page.sections.is_empty() {
                fitted.pages.push(page);
            }
        }
        // The measure of record: the rendered text, cut further if token merging at block
        // joins made it longer than the sum of its blocks.
        fitted.tokens = count(&fitted.render());
        while fitted.tokens > max_tokens {
            let Some(last) = fitted.pages.last_mut().and_then(|p| p.sections.last_mut()) else { break };
            let over = fitted.tokens - max_tokens;
            let now = count(&last.text);
            if !last.truncated {
                last.truncated = true;
                fitted.truncated_sections += 1;
            }
            last.text = cut_to(&last.text.clone(), now.saturating_sub(over + 8), &count);
            fitted.tokens = count(&fitted.render());
            if now == 0 {
                break;
            }
        }
        Ok(fitted)
    }

    /// The chunks of the document whose chunk has id `id`, or whose page (or section) is
    /// `url` (`https://...page.html#anchor`).
    async fn document_of(&self, collection: &str, url_or_id: &str) -> Result<(Vec<StoredPoint>, Option<String>)> {
        let store = self.store();
        let source_filter = |source: &str| Filter::default().and(FilterField::Source, FilterValue::Keyword(source.to_owned()));
        if let Ok(id) = url_or_id.parse::<uuid::Uuid>() {
            let p = store.retrieve(collection, &[id]).await?.pop().ok_or_else(|| Error::NotFound(format!("no chunk with id `{url_or_id}` in `{collection}`")))?;
            let doc = store.scroll(collection, &source_filter(&p.payload.source)).await?;
            return Ok((doc, Some(id.to_string())));
        }
        let (page, anchor) = match url_or_id.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (url_or_id, None),
        };
        // A crawled page's source id is its URL.
        let mut doc = store.scroll(collection, &source_filter(page)).await?;
        if doc.is_empty() {
            // A file's source id is its path on disk; its chunks carry the page URL, which
            // ends with the file's path under its root: ask for the path (an indexed field).
            let paths = path_suffixes(page);
            if !paths.is_empty() {
                let near = store.scroll(collection, &Filter::default().and(FilterField::Path, FilterValue::AnyKeyword(paths))).await?;
                let source = near.iter().find(|p| page_url(&p.payload) == page).map(|p| p.payload.source.clone());
                doc = match source {
                    Some(s) => near.into_iter().filter(|p| p.payload.source == s).collect(),
                    None => Vec::new(),
                };
            }
        }
        if doc.is_empty() {
            return Err(Error::NotFound(format!("no page `{page}` in `{collection}`; search for it, or list libraries to pick another collection")));
        }
        let id = match anchor {
            Some(a) => Some(
                doc.iter()
                    .filter(|p| p.payload.anchor == a)
                    .min_by_key(|p| p.payload.chunk_index)
                    .map(|p| p.id.to_string())
                    .ok_or_else(|| Error::NotFound(format!("page `{page}` has no section `#{a}`")))?,
            ),
            None => None,
        };
        Ok((doc, id))
    }

    /// A section whole (by a chunk id from a search answer, or by `page#anchor`), with the
    /// titles and links of the sections before and after it.
    pub async fn section(&self, collection: Option<&str>, url_or_id: &str) -> Result<SectionView> {
        let collection = self.resolve_read(collection).await?;
        let (doc, id) = self.document_of(&collection, url_or_id).await?;
        let Some(id) = id else {
            return Err(Error::InvalidRequest(format!("`{url_or_id}` names a page, not a section: add `#anchor`, or read the whole page")));
        };
        let first = doc[0].payload.clone();
        let sections = sections_of(doc.into_iter().map(|p| (p.id.to_string(), p.payload)).collect());
        let at = sections.iter().position(|(_, ids)| ids.contains(&id)).expect("the chunk belongs to one of its document's sections");
        let neighbour = |i: usize| sections.get(i).map(|(s, _)| Neighbour { heading_path: s.heading_path.clone(), url: s.url.clone(), id: s.id.clone() });
        Ok(SectionView {
            library: collection,
            title: first.title.clone(),
            page_url: page_url(&first),
            section: sections[at].0.clone(),
            metadata: first.meta.clone(),
            previous: at.checked_sub(1).and_then(neighbour),
            next: neighbour(at + 1),
        })
    }

    /// A whole page in reading order, from section `cursor` (0 first), as many sections as
    /// fit `max_tokens`; `next_cursor` reads on. A section longer than the budget on its own
    /// is given cut (and marked so).
    pub async fn page(&self, collection: Option<&str>, url: &str, cursor: usize, max_tokens: usize) -> Result<PageView> {
        let collection = self.resolve_read(collection).await?;
        let (doc, _) = self.document_of(&collection, url.split('#').next().unwrap_or(url)).await?;
        let first = doc[0].payload.clone();
        let sections = sections_of(doc.into_iter().map(|p| (p.id.to_string(), p.payload)).collect());
        if cursor > sections.len() {
            return Err(Error::InvalidRequest(format!("`cursor` {cursor} is past the end of the page ({} sections)", sections.len())));
        }
        let count = |t: &str| self.counter.count(t);
        let mut view = PageView { library: collection, title: first.title.clone(), url: page_url(&first), metadata: first.meta.clone(), sections: Vec::new(), next_cursor: None, tokens: 0 };
        let reserve = count("[the page goes on: read on with cursor 99999]\n");
        let mut used = count(&view.render());
        let total = sections.len();
        for (i, (mut s, _)) in sections.into_iter().enumerate().skip(cursor) {
            let block = count(&section_block(&s));
            if used + block + reserve <= max_tokens {
                used += block;
                view.sections.push(s);
                continue;
            }
            if view.sections.is_empty() {
                let frame = count(&section_block(&SectionText { text: String::new(), truncated: true, ..s.clone() }));
                s.text = cut_to(&s.text, max_tokens.saturating_sub(used + frame + reserve), &count);
                s.truncated = true;
                view.sections.push(s);
                view.next_cursor = Some(i + 1).filter(|&c| c < total);
            } else {
                view.next_cursor = Some(i);
            }
            break;
        }
        view.tokens = count(&view.render());
        Ok(view)
    }

    /// The `version` values a collection (or alias) holds, in version order (cached 30 s,
    /// dropped when the collection changes here).
    pub async fn versions(&self, collection: &str) -> Result<Arc<Vec<String>>> {
        let c = self.store().resolve(collection).await?;
        self.versions_of(c).await
    }

    /// [`Self::versions`] of a collection by its own name (an alias already resolved).
    pub(crate) async fn versions_of(&self, c: String) -> Result<Arc<Vec<String>>> {
        Ok(self.version_facts(c).await?.versions.clone())
    }

    /// The versions and the number of libraries (`framework` values) of a collection, from
    /// the payload indexes (no chunk is read); briefly cached.
    async fn version_facts(&self, c: String) -> Result<Arc<crate::engine::VersionFacts>> {
        if let Some(v) = self.versions.get(&c) {
            return Ok(v);
        }
        let mut versions: Vec<String> = self.store().facet(&c, FilterField::Version, MAX_VERSIONS).await?.into_iter().map(|(v, _)| v).collect();
        versions.sort_by_key(|v| version_key(v));
        let frameworks = if versions.len() > 1 { self.store().facet(&c, FilterField::Framework, 2).await?.len() } else { 0 };
        let facts = Arc::new(crate::engine::VersionFacts { versions: Arc::new(versions), frameworks });
        self.versions.insert(c, facts.clone());
        Ok(facts)
    }

    /// The version a search of `collection` defaults to when none is asked for: the newest,
    /// when the collection holds several side by side; `None` with one version or none (all
    /// of it is that version), and `None` when it holds several libraries (`framework`
    /// values): their version numbers are not comparable, so every version is searched.
    pub async fn default_version(&self, collection: &str) -> Result<Option<String>> {
        let c = self.store().resolve(collection).await?;
        self.default_version_of(c).await
    }

    /// [`Self::default_version`] of a collection by its own name (an alias already resolved).
    pub(crate) async fn default_version_of(&self, c: String) -> Result<Option<String>> {
        let facts = self.version_facts(c).await?;
        Ok(if facts.versions.len() > 1 && facts.frameworks <= 1 { facts.versions.last().cloned() } else { None })
    }

    /// The collection a read names (an alias resolved), or the default collection.
    async fn resolve_read(&self, collection: Option<&str>) -> Result<String> {
        let name = collection.unwrap_or(&self.config().search.default_collection);
        Ok(self.store().resolve(name).await?)
    }

    /// Every library this server holds: each collection with its aliases, versions, page
    /// and chunk counts, sources and newest update. Reads four payload fields of each chunk
    /// (its [`aidocs_core::Outline`]), never its text or vectors.
    pub async fn libraries(&self) -> Result<Vec<Library>> {
        let store = self.store();
        let aliases = store.list_aliases().await.unwrap_or_default();
        let mut out = Vec::new();
        for c in store.list_collections().await? {
            let o = store.outline(&c.name).await?;
            let sources: BTreeSet<String> = o.documents.iter().map(|(source, path)| source_root(source, path)).collect();
            let mut versions: Vec<String> = o.versions.into_iter().collect();
            versions.sort_by_key(|v| version_key(v));
            let last_synced = self.ingest().last_crawled(&c.name)?;
            out.push(Library {
                aliases: aliases.iter().filter(|(_, target)| **target == c.name).map(|(a, _)| a.clone()).collect(),
                name: c.name,
                versions,
                pages: o.documents.len(),
                chunks: o.chunks,
                sources: sources.into_iter().take(20).collect(),
                last_updated: o.last_updated,
                last_synced,
            });
        }
        Ok(out)
    }

    /// Every value of each facet field in `collection` (an alias, or the default collection
    /// when `None`) with its chunk count over the whole collection.
    pub async fn facets(&self, collection: Option<&str>) -> Result<Facets> {
        let c = self.resolve_read(collection).await?;
        let mut fields = Vec::with_capacity(FACET_FIELDS.len());
        for f in FACET_FIELDS {
            fields.push((f, self.store().facet(&c, f, MAX_FACET_VALUES).await?));
        }
        Ok(Facets { collection: c, fields })
    }

    /// Map `name` (a collection, an alias, or a name with `@version` or a requirement such
    /// as `react@^18.2`, `python>=3.10,<3.12`) to a library and the newest indexed version
    /// that satisfies the requirement. When none does, `version` is `None` and the note says
    /// so and lists what is indexed: never another version in its place.
    pub async fn resolve_library(&self, name: &str, version: Option<&str>) -> Result<Resolution> {
        let (base, from_name) = split_name(name);
        let requested = version.map(str::to_owned).or(from_name);
        let libraries = self.libraries().await?;
        let lower = base.to_lowercase();
        let lib = libraries
            .iter()
            .find(|l| l.name.to_lowercase() == lower || l.aliases.iter().any(|a| a.to_lowercase() == lower))
            .or_else(|| libraries.iter().find(|l| l.name.to_lowercase().contains(&lower) || l.aliases.iter().any(|a| a.to_lowercase().contains(&lower))))
            .ok_or_else(|| {
                let names: Vec<String> = libraries.iter().map(|l| l.name.clone()).collect();
                Error::NotFound(format!("no library matches `{base}`; this server holds: {}", if names.is_empty() { "none".to_owned() } else { names.join(", ") }))
            })?;
        let available = lib.versions.clone();
        let (version, note) = match &requested {
            None => {
                let newest = available.last().cloned();
                let note = match &newest {
                    Some(v) => format!("`{}`: no version asked, the newest indexed is {v} (indexed: {})", lib.name, available.join(", ")),
                    None => format!("`{}` has no versions recorded", lib.name),
                };
                (newest, note)
            }
            Some(req) => match available.iter().rev().find(|v| satisfies(v, req)) {
                Some(v) => (Some(v.clone()), format!("`{}` {req} resolves to indexed version {v}", lib.name)),
                None => (
                    None,
                    format!(
                        "`{}` has no indexed version matching {req}; indexed: {}",
                        lib.name,
                        if available.is_empty() { "none (no versions recorded)".to_owned() } else { available.join(", ") }
                    ),
                ),
            },
        };
        Ok(Resolution { library: lib.name.clone(), version, available, requested, note })
    }
}

/// Where a chunk's document came from: a URL's origin, or a file's directory.
fn source_root(source: &str, rel: &str) -> String {
    match url::Url::parse(source) {
        Ok(u) if u.scheme() == "file" => {
            let path = u.path();
            let rel = rel.trim_start_matches('/');
            path.strip_suffix(rel).unwrap_or(path).trim_end_matches('/').to_owned()
        }
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => source.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_requirements() {
        for (v, req, ok) in [
            ("3.11", "3.11", true),
            ("3.11.4", "3.11", true),
            ("3.12", "3.11", false),
            ("3.1", "3.11", false),
            ("3.11", ">=3.10,<3.12", true),
            ("3.12", ">=3.10,<3.12", false),
            ("3.9", ">=3.10,<3.12", false),
            ("18.3.1", "^18.2", true),
            ("19.0.0", "^18.2", false),
            ("18.1.0", "^18.2", false),
            ("0.2.5", "^0.2.3", true),
            ("0.3.0", "^0.2.3", false),
            ("1.4.9", "~1.4.2", true),
            ("1.5.0", "~1.4.2", false),
            ("3.11.2", "==3.11.*", true),
            ("3.12.0", "==3.11.*", false),
            ("2.5", "~=2.2", true),
            ("3.0", "~=2.2", false),
            ("18.2.0", "18.x", true),
            ("3.12", "!=3.11", true),
            ("anything", "*", true),
        ] {
            assert_eq!(satisfies(v, req), ok, "{v} {req}");
        }
    }

    #[test]
    fn names_and_requirements_split() {
        assert_eq!(split_name("react@18"), ("react".into(), Some("18".into())));
        assert_eq!(split_name("python>=3.10,<3.12"), ("python".into(), Some(">=3.10,<3.12".into())));
        assert_eq!(split_name("django"), ("django".into(), None));
        assert_eq!(split_name("@scope"), ("".into(), Some("scope".into())));
    }

    #[test]
    fn page_links_give_their_path_suffixes() {
        assert_eq!(path_suffixes("https://docs.example/py/3.11/a.html"), ["py/3.11/a.html", "3.11/a.html", "a.html"]);
        assert_eq!(path_suffixes("file:///srv/docs/a.html"), ["srv/docs/a.html", "docs/a.html", "a.html"]);
        assert_eq!(path_suffixes("https://docs.example"), Vec::<String>::new(), "a bare host names no file");
        assert_eq!(path_suffixes("guide/intro.md"), ["guide/intro.md", "intro.md"]);
    }

    #[test]
    fn versions_sort_numerically() {
        let mut v = vec!["3.9", "3.11", "3.10", "2.7"];
        v.sort_by_key(|x| version_key(x));
        assert_eq!(v, ["2.7", "3.9", "3.10", "3.11"]);
    }

    fn chunk(i: u32, anchor: &str, text: &str) -> (String, ChunkPayload) {
        (
            format!("id{i}"),
            ChunkPayload {
                source: "file:///d/p.md".into(),
                path: "p.md".into(),
                url: format!("file:///d/p.md#{anchor}"),
                title: "P".into(),
                anchor: anchor.into(),
                heading_path: vec![anchor.into()],
                text: text.into(),
                chunk_index: i,
                lead: false,
                content_hash: String::new(),
                doc_hash: String::new(),
                meta: DocMetadata::default(),
            },
        )
    }

    #[test]
    fn adjacent_chunks_of_a_section_merge_in_reading_order() {
        let s = sections_of(vec![chunk(2, "b", "B1"), chunk(0, "a", "A1"), chunk(1, "a", "A2"), chunk(3, "b", "B2")]);
        let texts: Vec<(&str, &str, usize)> = s.iter().map(|(s, ids)| (s.id.as_str(), s.text.as_str(), ids.len())).collect();
        assert_eq!(texts, [("id0", "A1\n\nA2", 2), ("id2", "B1\n\nB2", 2)]);
        // Not adjacent (a gap between): two sections.
        assert_eq!(sections_of(vec![chunk(0, "a", "x"), chunk(2, "a", "y")]).len(), 2);
    }

    #[test]
    fn a_lead_belongs_to_its_section_without_repeating_its_text() {
        let lead = |i, a, t| {
            let (id, mut p) = chunk(i, a, t);
            p.lead = true;
            (id, p)
        };
        let s = sections_of(vec![chunk(1, "a", "A1 A2"), lead(0, "a", "A1"), chunk(2, "a", "A3"), lead(3, "b", "B1")]);
        let texts: Vec<(&str, &str, Vec<&str>)> = s.iter().map(|(s, ids)| (s.id.as_str(), s.text.as_str(), ids.iter().map(String::as_str).collect())).collect();
        // Section b's chunks are not among these: its lead stands in for it.
        assert_eq!(texts, [("id0", "A1 A2\n\nA3", vec!["id0", "id1", "id2"]), ("id3", "B1", vec!["id3"])]);
    }

    #[test]
    fn cutting_respects_the_count_and_word_boundaries() {
        let count = |t: &str| t.split_whitespace().count();
        assert_eq!(cut_to("one two three four", 2, &count), "one two");
        assert_eq!(cut_to("one two", 5, &count), "one two");
        assert_eq!(cut_to("one", 0, &count), "");
    }
}
