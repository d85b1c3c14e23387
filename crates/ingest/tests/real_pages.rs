//! The HTML parser on real manuals from Debian's documentation packages: DocBook
//! (`postgresql-doc-15`), Sphinx (`python3.11-doc`) and AsciiDoc (`git-doc`). Every section gets its anchor, and an
//! admonition box (Note, Tip, Warning...) stays in the section around it.

use std::path::Path;

const POSTGRES: &str = "/usr/share/doc/postgresql-doc-15/html";
const PYTHON: &str = "/usr/share/doc/python3.11/html";

fn read(root: &str, rel: &str) -> String {
    let path = Path::new(root).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (apt-get install postgresql-doc-15 python3.11-doc)", path.display()))
}

fn page(root: &str, rel: &str) -> aidocs_ingest::ParsedDoc {
    aidocs_ingest::parse(aidocs_ingest::DocFormat::Html, &read(root, rel))
}

#[test]
fn docbook_sections_have_their_anchors_and_admonitions_are_not_sections() {
    // Chapter pages: every section has an id of its own; a reference page's synopsis has
    // none in the HTML, so no link can reach it.
    for (rel, unanchored) in [("routine-vacuuming.html", 0), ("indexes-types.html", 0), ("backup-dump.html", 0), ("runtime-config-wal.html", 0), ("sql-select.html", 1)] {
        let html = read(POSTGRES, rel);
        let d = page(POSTGRES, rel);
        assert!(d.sections.len() > 2, "{rel}: {} sections", d.sections.len());
        for s in &d.sections {
            let heading = s.heading_path.last().cloned().unwrap_or_default();
            assert!(!["Note", "Tip", "Warning", "Caution", "Important"].contains(&heading.as_str()), "{rel}: an admonition became a section");
            if !s.anchor.is_empty() {
                // The anchor is an element id on the page (a working link), not an index term's.
                assert!(html.contains(&format!("id=\"{}\"", s.anchor)), "{rel}: `{}` is no id on the page", s.anchor);
                assert!(!html.contains(&format!("id=\"{}\" class=\"indexterm\"", s.anchor)), "{rel}: `{heading}` took an index term's id");
            }
        }
        let missing: Vec<_> = d.sections.iter().filter(|s| s.anchor.is_empty()).map(|s| s.heading_path.clone()).collect();
        assert_eq!(missing.len(), unanchored, "{rel}: sections without an anchor: {missing:?}");
    }
    // The tip of "Recovering Disk Space" is text of that section.
    let d = page(POSTGRES, "routine-vacuuming.html");
    let s = d.sections.iter().find(|s| s.anchor == "VACUUM-FOR-SPACE-RECOVERY").expect("the section by its DocBook id");
    assert!(s.blocks.iter().any(|b| b.text() == "Tip"), "the box's title stays as a paragraph");
}

#[test]
fn sphinx_sections_have_their_anchors() {
    for rel in ["tutorial/controlflow.html", "library/asyncio-task.html", "tutorial/venv.html"] {
        let d = page(PYTHON, rel);
        assert!(d.sections.len() > 2, "{rel}");
        for s in &d.sections {
            assert!(!s.anchor.is_empty(), "{rel}: section {:?} has no anchor", s.heading_path);
        }
    }
}

const GIT: &str = "/usr/share/doc/git-doc";

/// AsciiDoc (git-doc): a man page's sections sit under its title, the one-line purpose is
/// the first section, and every section has the id git's own links use; the user manual
/// (DocBook XSL) anchors sections by the `<a name>` in their headings.
#[test]
fn asciidoc_man_pages_head_their_sections_with_the_page() {
    for rel in ["git-stash.html", "git-rebase.html", "gitignore.html"] {
        let html = read(GIT, rel);
        let d = page(GIT, rel);
        let title = d.title.clone().unwrap_or_default();
        assert!(title.ends_with("Manual Page") && title.starts_with(rel.trim_end_matches(".html")), "{rel}: {title}");
        assert!(d.sections[0].blocks.iter().any(|b| b.text().contains(" - ")), "{rel}: the NAME line: {:?}", d.sections[0]);
        for s in d.sections.iter().skip(1) {
            assert_eq!(s.heading_path[0], title, "{rel}: every section under the page");
            assert!(html.contains(&format!("id=\"{}\"", s.anchor)), "{rel}: {:?} anchored at `{}`", s.heading_path, s.anchor);
        }
    }
    let d = page(GIT, "user-manual.html");
    let bisect = d.sections.iter().find(|s| s.anchor == "using-bisect").expect("the bisect section by its <a name>");
    assert!(bisect.heading_path.last().unwrap().contains("bisect"), "{:?}", bisect.heading_path);
}

const GITEA: &str = "/usr/share/gocode/src/github.com/go-openapi/spec/fixtures/bugs/1614/gitea.json";

/// Real API specs: the Gitea API (Swagger 2, JSON; Debian's golang-github-go-openapi-spec-dev
/// ships it) and aidocs' own (OpenAPI 3.1, `docs/openapi.json`). Every operation is a section
/// anchored at its `operationId` under its tag, with its parameters and responses; every
/// named schema is one too.
#[test]
fn openapi_specs_have_a_section_per_operation() {
    let text = std::fs::read_to_string(GITEA).unwrap_or_else(|e| panic!("{GITEA}: {e} (apt-get install golang-github-go-openapi-spec-dev)"));
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    let operations: usize = spec["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().keys().filter(|k| *k != "parameters").count()).sum();
    let d = aidocs_ingest::parse(aidocs_ingest::DocFormat::OpenApi, &text);
    assert_eq!(d.title.as_deref(), Some("Gitea API."));
    let ops: Vec<&aidocs_ingest::Section> = d.sections.iter().filter(|s| s.heading_path.len() == 3 && s.heading_path[1] != "Schemas").collect();
    assert_eq!(ops.len(), operations, "one section per operation");
    assert_eq!(d.sections.iter().filter(|s| s.heading_path.get(1).map(String::as_str) == Some("Schemas")).count(), spec["definitions"].as_object().unwrap().len());
    let del = ops.iter().find(|s| s.anchor == "adminDeleteUserPublicKey").expect("anchored at the operationId");
    assert_eq!(del.heading_path, ["Gitea API.", "admin", "DELETE /admin/users/{username}/keys/{id}"]);
    let text = del.blocks.iter().map(|b| b.text()).collect::<Vec<_>>().join("\n");
    assert!(text.contains("Delete a user's public key") && text.contains("- username (path, string, required)") && text.contains("- 204:"), "{text}");
    // The swagger 2 body parameter becomes the body's fields.
    let create = ops.iter().find(|s| s.anchor == "adminCreateUser").unwrap();
    let text = create.blocks.iter().map(|b| b.text()).collect::<Vec<_>>().join("\n");
    assert!(text.contains("Body: CreateUserOption") && text.contains("- email (string (email), required)"), "{text}");

    let ours = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")).unwrap();
    let d = aidocs_ingest::parse(aidocs_ingest::DocFormat::OpenApi, &ours);
    let sources = d.sections.iter().find(|s| s.heading_path.last().is_some_and(|h| h == "GET /v1/admin/sources")).expect("our own spec's sources route");
    assert!(!sources.anchor.is_empty());
    assert!(sources.blocks.iter().any(|b| b.text().contains("returns Sources")), "{sources:?}");
}

const TASN1_PDF: &str = "/usr/share/doc/libtasn1-doc/libtasn1.pdf";
const MIME_PDF: &str = "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf";

fn pdf(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (apt-get install libtasn1-doc shared-mime-info)"))
}

fn section_text(s: &aidocs_ingest::Section) -> String {
    s.blocks.iter().map(|b| b.text()).collect::<Vec<_>>().join("\n")
}

/// Real PDFs from Debian (a GNU Texinfo manual and a DocBook spec): sections follow the
/// outline with its heading path, every section is anchored at the page that holds it, and
/// ligatures no longer split words.
#[test]
fn pdf_sections_follow_the_outline_with_page_anchors() {
    use aidocs_ingest::{DocFormat, parse_bytes};
    let d = parse_bytes(DocFormat::Pdf, &pdf(TASN1_PDF)).unwrap();
    assert!(d.sections.len() >= 30, "{} sections", d.sections.len());
    for s in &d.sections {
        let page: u32 = s.anchor.strip_prefix("page=").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("anchor {:?}", s.anchor));
        assert!((1..=36).contains(&page));
    }
    let decoding = d.sections.iter().find(|s| s.heading_path == ["3 Utilities", "Invoking asn1Decoding"]).expect("an outline entry's section");
    assert_eq!(decoding.anchor, "page=10");
    assert!(section_text(decoding).contains("asn1Decoding generates an ASN.1 structure"), "{decoding:?}");
    // The text before a heading on the same page belongs to the section above it.
    let syntax = d.sections.iter().find(|s| s.heading_path == ["2 ASN.1 structure handling", "ASN.1 syntax"]).unwrap();
    assert_eq!(syntax.anchor, "page=5");
    assert!(section_text(syntax).starts_with("ASN.1 syntax The parser is case sensitive"), "{}", section_text(syntax));
    // A section over two pages is two sections, one per page.
    let der: Vec<&str> = d.sections.iter().filter(|s| s.heading_path.last().is_some_and(|h| h == "DER functions")).map(|s| s.anchor.as_str()).collect();
    assert_eq!(der, ["page=18", "page=19", "page=20", "page=21", "page=22", "page=23", "page=24", "page=25"]);

    let d = parse_bytes(DocFormat::Pdf, &pdf(MIME_PDF)).unwrap();
    let glob = d.sections.iter().find(|s| s.heading_path.last().is_some_and(|h| h == "2.4. The glob files")).unwrap();
    assert_eq!((glob.heading_path[0].as_str(), glob.anchor.as_str()), ("2. Unified system", "page=7"));
    let all: String = d.sections.iter().map(section_text).collect();
    assert!(all.contains("specification") && !all.contains('\u{FB01}'), "ligatures spelled out");
}

/// A damaged PDF is named as unreadable (never a panic), whatever the damage.
#[test]
fn damaged_pdfs_are_named_not_panics() {
    use aidocs_ingest::{DocFormat, Skipped, parse_bytes};
    let bytes = pdf(TASN1_PDF);
    for cut in [0, 8, 1000, bytes.len() / 3, bytes.len() - 2000] {
        match parse_bytes(DocFormat::Pdf, &bytes[..cut]) {
            Err(Skipped::Invalid(why)) => assert!(why.contains("PDF"), "{why}"),
            Ok(d) => assert!(!d.sections.is_empty(), "a cut at {cut} that still reads must have text"),
            Err(other) => panic!("cut at {cut}: {other:?}"),
        }
    }
    // Bytes flipped in the middle of the file.
    let mut flipped = bytes.clone();
    for b in flipped.iter_mut().skip(bytes.len() / 2).step_by(97).take(500) {
        *b = !*b;
    }
    let _ = parse_bytes(DocFormat::Pdf, &flipped);
    assert!(matches!(parse_bytes(DocFormat::Pdf, b"%PDF-1.7\n%%EOF"), Err(Skipped::Invalid(_))));
}
