//! Directory source: finds supported files under a root and loads them as [`Document`]s.

use crate::document::{DocFormat, Document};
use aidocs_core::DocMetadata;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Errors that stop an ingest run (per-file problems are [`Skipped`] instead).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("ingest path {path} does not exist or is not readable: {detail}")]
    BadRoot { path: String, detail: String },
}

/// Why a file was skipped. The run continues; the reason is reported with the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skipped {
    #[error("not valid UTF-8 text")]
    NotUtf8,
    #[error("no text content")]
    Empty,
    #[error("read failed: {0}")]
    Io(String),
    /// A file of a structured format that does not hold what it should (a `.json` or
    /// `.yaml` that is no OpenAPI document, or not JSON or YAML at all). Like an unreadable
    /// file, it keeps whatever it had indexed before.
    #[error("{0}")]
    Invalid(String),
}

/// A supported file found under the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub abs: PathBuf,
    /// `/`-separated path relative to the root.
    pub rel: String,
    pub format: DocFormat,
}

impl SourceFile {
    /// Stable id of the document this file holds.
    pub fn source_id(&self) -> String {
        file_url(&self.abs)
    }
}

/// All supported files (HTML, Markdown, reST, text, API specs, PDF) under a directory, or one file.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
    is_file: bool,
    base_url: Option<String>,
}

/// Directories never ingested: doc-build assets and dependency trees.
pub const SKIP_DIRS: &[&str] = &["_sources", "_static", "_images", "_downloads", "node_modules", "target", "__pycache__"];

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

impl DirSource {
    /// `base_url`, when set, replaces `file://<root>/` in document URLs (e.g. the docs site).
    pub fn new(root: impl AsRef<Path>, base_url: Option<String>) -> Result<Self, IngestError> {
        let root = root.as_ref();
        let canon = root.canonicalize().map_err(|e| IngestError::BadRoot { path: root.display().to_string(), detail: e.to_string() })?;
        let is_file = canon.is_file();
        Ok(Self { root: canon, is_file, base_url: base_url.map(|u| u.trim_end_matches('/').to_owned()) })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every source id of this source starts with this prefix (a directory's ends with `/`;
    /// a file's is its whole id). Use [`DirSource::owns`] to test membership.
    pub fn source_prefix(&self) -> String {
        if self.is_file { file_url(&self.root) } else { format!("{}/", file_url(&self.root)) }
    }

    /// Whether `source_id` is a document of this source: under the directory, or exactly the
    /// file. A file root is never a prefix match, so ingesting `page.htm` leaves
    /// `page.html`'s chunks alone.
    pub fn owns(&self, source_id: &str) -> bool {
        let prefix = self.source_prefix();
        if self.is_file { source_id == prefix } else { source_id.starts_with(&prefix) }
    }

    /// Supported files, sorted by relative path. Hidden files and directories are skipped, and
    /// so are build-asset directories ([`SKIP_DIRS`]: Sphinx `_sources` would duplicate every
    /// page as text).
    pub fn files(&self) -> Vec<SourceFile> {
        let mut out = Vec::new();
        let walker = walkdir::WalkDir::new(&self.root).follow_links(false).sort_by_file_name().into_iter();
        let keep = |e: &walkdir::DirEntry| {
            let name = e.file_name().to_string_lossy();
            e.depth() == 0 || !(name.starts_with('.') || (e.file_type().is_dir() && SKIP_DIRS.contains(&name.as_ref())))
        };
        for entry in walker.filter_entry(keep) {
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.path();
            let Some(format) = path.extension().and_then(|e| e.to_str()).and_then(DocFormat::from_extension) else {
                continue;
            };
            let rel = if self.is_file {
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            } else {
                path.strip_prefix(&self.root).unwrap_or(path).components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
            };
            out.push(SourceFile { abs: path.to_path_buf(), rel, format });
        }
        out
    }

    /// Read and parse one file. `defaults` are run-level metadata; front matter overrides them.
    pub fn load(&self, file: &SourceFile, defaults: &DocMetadata) -> Result<Document, Skipped> {
        let bytes = std::fs::read(&file.abs).map_err(|e| Skipped::Io(e.to_string()))?;
        let parsed = crate::parse_bytes(file.format, &bytes)?;
        let mut meta = defaults.overlay(&parsed.meta);
        // The content hash covers bytes and metadata but not the mtime: touching a file
        // without changing it rewrites nothing.
        let doc_hash = content_hash(&bytes, &meta);
        if meta.last_updated.is_none() {
            meta.last_updated = std::fs::metadata(&file.abs)
                .and_then(|m| m.modified())
                .ok()
                .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        let url = match &self.base_url {
            Some(base) => format!("{base}/{}", file.rel),
            None => file_url(&file.abs),
        };
        let title = parsed.title.clone().unwrap_or_else(|| {
            file.abs.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| file.rel.clone())
        });
        Ok(Document {
            source_id: file.source_id(),
            path: file.rel.clone(),
            url,
            title,
            sections: parsed.sections,
            meta,
            doc_hash,
        })
    }
}

/// Version of what parsing and chunking make of a document. It is part of every content
/// hash, so raising it makes the next ingest of a tree rewrite every document instead of
/// skipping the unchanged ones: raise it with any change to a parser or the chunker that
/// changes their output. 2: anchors for Doxygen and Javadoc members, Doxygen page titles,
/// rustdoc's in-heading chrome, Django's content column. 3: section leads. 4: a man page's
/// NAME line in its page heading.
pub const PARSER_VERSION: u32 = 4;

/// A document's content hash: sha256 hex of its bytes as read, its metadata and
/// [`PARSER_VERSION`] (a changed version or tag, or a parser that reads it differently,
/// rewrites the document; an unchanged one writes nothing).
pub fn content_hash(bytes: &[u8], meta: &DocMetadata) -> String {
    versioned_hash(bytes, meta, PARSER_VERSION)
}

fn versioned_hash(bytes: &[u8], meta: &DocMetadata, parser: u32) -> String {
    let mut h = Sha256::new();
    h.update(parser.to_le_bytes());
    h.update(bytes);
    h.update(b"\0");
    h.update(serde_json::to_vec(meta).unwrap_or_default());
    hex::encode(h.finalize())
}

/// sha256 hex of a string.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_supported_files_and_skips_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub/.hidden")).unwrap();
        std::fs::create_dir_all(dir.path().join("_sources")).unwrap();
        std::fs::write(dir.path().join("_sources/a.rst.txt"), "A\n=\n").unwrap();
        std::fs::write(dir.path().join("a.md"), "# A\n\ntext").unwrap();
        std::fs::write(dir.path().join("sub/b.html"), "<h1 id=x>B</h1><p>b</p>").unwrap();
        std::fs::write(dir.path().join("sub/.hidden/c.md"), "# C").unwrap();
        std::fs::write(dir.path().join("image.png"), [0u8, 1, 2]).unwrap();
        std::fs::write(dir.path().join("latin1.txt"), [b'c', b'a', b'f', 0xe9]).unwrap();
        let src = DirSource::new(dir.path(), None).unwrap();
        let files = src.files();
        let rels: Vec<_> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, ["a.md", "latin1.txt", "sub/b.html"]);
        let meta = DocMetadata { language: Some("en".into()), ..Default::default() };
        let doc = src.load(&files[2], &meta).unwrap();
        assert_eq!(doc.title, "B");
        assert_eq!(doc.sections[0].anchor, "x");
        assert!(doc.source_id.starts_with(&src.source_prefix()));
        assert!(doc.meta.last_updated.is_some());
        assert_eq!(src.load(&files[1], &meta).unwrap_err(), Skipped::NotUtf8);
        assert!(matches!(DirSource::new(dir.path().join("missing"), None), Err(IngestError::BadRoot { .. })));
    }

    #[test]
    fn doc_hash_tracks_content_and_metadata_not_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.md");
        std::fs::write(&p, "# A\n\ntext").unwrap();
        let src = DirSource::new(dir.path(), Some("https://docs.example/".into())).unwrap();
        let f = &src.files()[0];
        let h1 = src.load(f, &DocMetadata::default()).unwrap();
        assert_eq!(h1.url, "https://docs.example/a.md");
        std::fs::write(&p, "# A\n\ntext").unwrap();
        assert_eq!(src.load(f, &DocMetadata::default()).unwrap().doc_hash, h1.doc_hash);
        let v2 = DocMetadata { version: Some("2".into()), ..Default::default() };
        assert_ne!(src.load(f, &v2).unwrap().doc_hash, h1.doc_hash);
        std::fs::write(&p, "# A\n\nchanged").unwrap();
        assert_ne!(src.load(f, &DocMetadata::default()).unwrap().doc_hash, h1.doc_hash);
        // Another parser version reads the same bytes anew.
        let meta = DocMetadata::default();
        assert_eq!(super::content_hash(b"x", &meta), super::versioned_hash(b"x", &meta, super::PARSER_VERSION));
        assert_ne!(super::versioned_hash(b"x", &meta, super::PARSER_VERSION), super::versioned_hash(b"x", &meta, super::PARSER_VERSION + 1));
    }
}
