//! `aidocs-ingest`: from files to chunks.
//!
//! Owns document sources ([`DirSource`]), the parsers (HTML, Markdown, reStructuredText,
//! plain text, OpenAPI specs, PDF) that split a document into sections with anchors and heading paths, the
//! section-aware token-budgeted [`Chunker`], metadata, and deterministic point ids.
//!
//! Must not know: how chunks are embedded or stored, HTTP, config files. Token counting
//! comes in through [`aidocs_core::TokenCounter`].

mod chunk;
mod document;
mod html;
mod markdown;
mod openapi;
mod pdf;
mod rst;
mod source;

pub use chunk::{Chunk, Chunker, ChunkerConfig};
pub use document::{Block, DocFormat, Document, ParsedDoc, Section, point_id};
pub use pdf::{MAX_PAGES as PDF_MAX_PAGES, PdfError};
pub use source::{DirSource, IngestError, PARSER_VERSION, Skipped, SourceFile, content_hash, sha256_hex};

/// Parse `text` of the given format into sections. A PDF is binary: read it with
/// [`parse_bytes`] (here its text is taken as the file's bytes).
pub fn parse(format: DocFormat, text: &str) -> ParsedDoc {
    match format {
        DocFormat::Html => html::parse(text),
        DocFormat::Markdown => markdown::parse(text),
        DocFormat::Rst => rst::parse(text),
        DocFormat::Text => document::parse_text(text),
        DocFormat::OpenApi => openapi::parse(text),
        DocFormat::Pdf => pdf::parse(text.as_bytes()).unwrap_or_default(),
    }
}

/// Parse a file's bytes: text formats must be UTF-8, a PDF is read as it is. A file that
/// gives no sections is [`Skipped::Empty`], or [`Skipped::Invalid`] with the reason where
/// the format can say what is wrong (an API spec that is none, a corrupt PDF), which keeps
/// what the file had indexed before.
pub fn parse_bytes(format: DocFormat, bytes: &[u8]) -> Result<ParsedDoc, Skipped> {
    if format == DocFormat::Pdf {
        return pdf::parse(bytes).map_err(|e| Skipped::Invalid(e.to_string()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Skipped::NotUtf8)?;
    let parsed = parse(format, text);
    if parsed.sections.is_empty() {
        if format == DocFormat::OpenApi {
            return Err(Skipped::Invalid(openapi::problem(text)));
        }
        return Err(Skipped::Empty);
    }
    Ok(parsed)
}
