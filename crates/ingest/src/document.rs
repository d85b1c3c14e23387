//! Parsed documents: sections of text and code blocks.

use aidocs_core::DocMetadata;

/// A block inside a section. Code blocks are never split by the chunker unless one alone
/// exceeds the token budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Text(String),
    Code(String),
}

impl Block {
    pub fn text(&self) -> &str {
        match self {
            Block::Text(s) | Block::Code(s) => s,
        }
    }
}

/// A section: everything under one heading until the next heading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// Headings from the top of the document down to this section's own heading.
    pub heading_path: Vec<String>,
    /// Deep-link anchor (HTML id / Markdown slug / reST label); empty if none.
    pub anchor: String,
    pub blocks: Vec<Block>,
}

/// Output of a parser.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedDoc {
    pub title: Option<String>,
    pub sections: Vec<Section>,
    /// Metadata from front matter (Markdown) when present.
    pub meta: DocMetadata,
}

/// Supported input formats (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    Html,
    Markdown,
    Rst,
    Text,
    /// An OpenAPI 3 or Swagger 2 document, JSON or YAML (any other JSON or YAML file parses
    /// to nothing and is skipped).
    OpenApi,
    /// A PDF file: the pages' text cut at the outline's headings, anchored `page=N`.
    Pdf,
}

impl DocFormat {
    /// Format from a file extension; `None` for unsupported files.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "html" | "htm" | "xhtml" => Some(Self::Html),
            "md" | "markdown" | "mdx" => Some(Self::Markdown),
            "rst" | "rest" => Some(Self::Rst),
            "txt" | "text" => Some(Self::Text),
            "json" | "yaml" | "yml" => Some(Self::OpenApi),
            "pdf" => Some(Self::Pdf),
            _ => None,
        }
    }
}

/// A source document ready for chunking.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Stable source id (`file:///abs/path`).
    pub source_id: String,
    /// Path relative to the ingest root, `/`-separated.
    pub path: String,
    /// URL of the document without anchor.
    pub url: String,
    pub title: String,
    pub sections: Vec<Section>,
    pub meta: DocMetadata,
    /// sha256 over the file bytes and the ingest-time metadata.
    pub doc_hash: String,
}

/// Deterministic point id: uuid v5 of source id, chunk index and chunk content hash.
pub fn point_id(source_id: &str, chunk_index: u32, content_hash: &str) -> uuid::Uuid {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a1d_0c5e_2b7f_4e11_9c3a_5d8e_7f60_a1b2);
    uuid::Uuid::new_v5(&NAMESPACE, format!("{source_id}\n{chunk_index}\n{content_hash}").as_bytes())
}

/// Split plain text into paragraphs; one section, or none when there is no text (found by
/// the fuzz suite: an empty file used to give a section without blocks, so it was "written"
/// with no chunks instead of being skipped as empty like every other format).
pub(crate) fn parse_text(text: &str) -> ParsedDoc {
    let blocks: Vec<Block> = split_paragraphs(text).into_iter().map(Block::Text).collect();
    let sections = if blocks.is_empty() { Vec::new() } else { vec![Section { blocks, ..Default::default() }] };
    ParsedDoc { title: None, sections, meta: Default::default() }
}

pub(crate) fn split_paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(collapse_ws)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Collapse runs of whitespace into single spaces and trim.
pub(crate) fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Builds sections while walking a document.
#[derive(Debug, Default)]
pub(crate) struct SectionBuilder {
    sections: Vec<Section>,
    stack: Vec<(usize, String)>,
    current: Section,
    para: String,
}

impl SectionBuilder {
    pub fn text(&mut self, s: &str) {
        self.para.push_str(s);
    }
    pub fn break_para(&mut self) {
        let p = collapse_ws(&self.para);
        self.para.clear();
        if !p.is_empty() {
            self.current.blocks.push(Block::Text(p));
        }
    }
    pub fn code(&mut self, code: &str) {
        self.break_para();
        let code = code.trim_matches('\n').trim_end();
        if !code.trim().is_empty() {
            self.current.blocks.push(Block::Code(code.to_owned()));
        }
    }
    pub fn heading(&mut self, level: usize, text: &str, anchor: String) {
        self.break_para();
        self.finish_section();
        while self.stack.last().is_some_and(|(l, _)| *l >= level) {
            self.stack.pop();
        }
        self.stack.push((level, text.to_owned()));
        self.current = Section {
            heading_path: self.stack.iter().map(|(_, t)| t.clone()).collect(),
            anchor,
            blocks: Vec::new(),
        };
    }
    fn finish_section(&mut self) {
        let s = std::mem::take(&mut self.current);
        if !s.blocks.is_empty() {
            self.sections.push(s);
        }
    }
    pub fn finish(mut self) -> Vec<Section> {
        self.break_para();
        self.finish_section();
        self.sections
    }
}

/// GitHub-style heading slug, made unique within a document by `-1`, `-2`... suffixes.
#[derive(Debug, Default)]
pub(crate) struct Slugger {
    seen: std::collections::HashMap<String, usize>,
}

impl Slugger {
    pub fn slug(&mut self, heading: &str) -> String {
        let base: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = self.seen.entry(base.clone()).or_insert(0);
        let slug = if *n == 0 { base.clone() } else { format!("{base}-{n}") };
        *n += 1;
        slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_words_has_no_sections() {
        for t in ["", "   ", "\n\n\t\n"] {
            assert!(parse_text(t).sections.is_empty(), "{t:?}");
        }
        assert_eq!(parse_text("a\n\nb").sections[0].blocks.len(), 2);
    }

    #[test]
    fn github_slugs_are_unique() {
        let mut s = Slugger::default();
        assert_eq!(s.slug("Hello, World!"), "hello-world");
        assert_eq!(s.slug("Hello, World!"), "hello-world-1");
        assert_eq!(s.slug("API `v2` & co_op"), "api-v2--co_op");
    }

    #[test]
    fn point_ids_are_deterministic() {
        assert_eq!(point_id("file:///a", 0, "h"), point_id("file:///a", 0, "h"));
        assert_ne!(point_id("file:///a", 0, "h"), point_id("file:///a", 1, "h"));
        assert_ne!(point_id("file:///a", 0, "h"), point_id("file:///b", 0, "h"));
    }
}
