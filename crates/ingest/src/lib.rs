//! `aidocs-ingest`: from files to chunks.
//!
//! Owns document sources ([`DirSource`]), the parsers (HTML, Markdown, reStructuredText,
//! plain text, OpenAPI specs) that split a document into sections with anchors and heading paths, the
//! section-aware token-budgeted [`Chunker`], metadata, and deterministic point ids.
//!
//! Must not know: how chunks are embedded or stored, HTTP, config files. Token counting
//! comes in through [`aidocs_core::TokenCounter`].

mod chunk;
mod document;
mod html;
mod markdown;
mod openapi;
mod rst;
mod source;

pub use chunk::{Chunk, Chunker, ChunkerConfig};
pub use document::{Block, DocFormat, Document, ParsedDoc, Section, point_id};
pub use source::{DirSource, IngestError, Skipped, SourceFile, sha256_hex};

/// Parse `text` of the given format into sections.
pub fn parse(format: DocFormat, text: &str) -> ParsedDoc {
    match format {
        DocFormat::Html => html::parse(text),
        DocFormat::Markdown => markdown::parse(text),
        DocFormat::Rst => rst::parse(text),
        DocFormat::Text => document::parse_text(text),
        DocFormat::OpenApi => openapi::parse(text),
    }
}
