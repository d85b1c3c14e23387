//! The parsers on real manuals from Debian's documentation packages, one per generator:
//! DocBook (`postgresql-doc-15`), Sphinx (`python3.11-doc`), AsciiDoc (`git-doc`), MkDocs
//! Material (`mkdocs-literate-nav-doc`), rustdoc and mdBook (`rust-doc`), Javadoc
//! (`junit4-doc`), Doxygen (`libjsoncpp-doc`) and GitHub-flavoured Markdown (`nodejs`'s
//! own docs). Every section gets the anchor the page's own links use, chrome stays out of
//! headings, and an admonition box (Note, Tip, Warning...) stays in the section around it.

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

/// Sphinx with Django's own theme (`python-django-doc`): the page is titled by its heading,
/// not the site's name in the theme's header, and neither that header nor the sidebar's
/// "Last update:" becomes a section.
#[test]
fn django_pages_are_their_content_column() {
    for (html, d) in pages_of("/usr/share/doc/python-django-doc/html", &["topics/db/queries.html", "ref/models/querysets.html", "howto/deployment/checklist.html"], "python-django-doc") {
        let title = d.title.clone().unwrap();
        assert!(!title.contains("documentation"), "the site's name titles the page: {title}");
        for s in &d.sections {
            assert_eq!(s.heading_path[0], title, "every section under the page's own heading");
            assert!(!s.heading_path.last().unwrap().starts_with("Last update"), "{:?}", s.heading_path);
            assert!(!s.anchor.is_empty() && targets(&html, &s.anchor), "{:?} anchored at `{}`", s.heading_path, s.anchor);
        }
    }
    let (_, d) = &pages_of("/usr/share/doc/python-django-doc/html", &["topics/db/queries.html"], "python-django-doc")[0];
    assert_eq!(d.title.as_deref(), Some("Making queries"));
}

const GIT: &str = "/usr/share/doc/git-doc";

/// AsciiDoc (git-doc): a man page's sections sit under its title, the NAME line opens the
/// DESCRIPTION (it is no section of its own), and every section has the id
/// git's own links use; the user manual (DocBook XSL) anchors sections by the `<a name>` in
/// their headings.
#[test]
fn asciidoc_man_pages_head_their_sections_with_the_page() {
    for rel in ["git-stash.html", "git-rebase.html", "gitignore.html"] {
        let html = read(GIT, rel);
        let d = page(GIT, rel);
        let title = d.title.clone().unwrap_or_default();
        assert!(title.ends_with("Manual Page") && title.starts_with(rel.trim_end_matches(".html")), "{rel}: {title}");
        assert!(d.sections.iter().all(|s| s.heading_path.last().is_some_and(|h| h != "NAME")), "{rel}: NAME is no section");
        let desc = d.sections.iter().find(|s| s.anchor == "_description").unwrap_or_else(|| panic!("{rel}: a DESCRIPTION"));
        let line = desc.blocks[0].text();
        let name = rel.trim_end_matches(".html");
        assert!(line.starts_with(&format!("{name} - ")) && html.contains(&line[name.len() + 3..]), "{rel}: the NAME line opens the DESCRIPTION: {line:?}");
        for s in &d.sections {
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

/// Whether `anchor` is the target of an id (or an `<a name>`) on the page, HTML-escaped as
/// the page writes it (`id="&lt;init&gt;()"`).
fn targets(html: &str, anchor: &str) -> bool {
    let escaped = anchor.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    [anchor, escaped.as_str()].iter().any(|a| html.contains(&format!("id=\"{a}\"")) || html.contains(&format!("name=\"{a}\"")))
}

fn pages_of(root: &str, rels: &[&str], package: &str) -> Vec<(String, aidocs_ingest::ParsedDoc)> {
    rels.iter()
        .map(|rel| {
            let path = Path::new(root).join(rel);
            let html = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (apt-get install {package})", path.display()));
            let d = aidocs_ingest::parse(aidocs_ingest::DocFormat::Html, &html);
            (html, d)
        })
        .collect()
}

/// MkDocs with the Material theme: sections under the page's `h1`, each at the id Material
/// gives its heading, the permalink `¶` out of the text.
#[test]
fn mkdocs_material_sections_have_their_anchors() {
    for (html, d) in pages_of("/usr/share/doc/mkdocs-literate-nav-doc/html", &["reference.html", "index.html"], "mkdocs-literate-nav-doc") {
        assert!(d.sections.len() > 3, "{:?}", d.title);
        let title = d.title.clone().unwrap();
        for s in &d.sections {
            assert_eq!(s.heading_path[0], title);
            assert!(targets(&html, &s.anchor), "{:?} anchored at `{}`", s.heading_path, s.anchor);
            assert!(!s.heading_path.last().unwrap().contains('¶'));
        }
    }
    let (_, d) = &pages_of("/usr/share/doc/mkdocs-literate-nav-doc/html", &["reference.html"], "mkdocs-literate-nav-doc")[0];
    let s = d.sections.iter().find(|s| s.anchor == "implicit_index").expect("a config option by its id");
    assert_eq!(s.heading_path, ["Reference", "MkDocs plugin", "Config", "implicit_index"]);
}

/// rustdoc (the standard library) and mdBook (the Rust book): an item's methods are sections
/// at rustdoc's `method.NAME` ids, under the page's `h1`; version numbers, `source` links,
/// the copy button and the notable-traits tooltip stay out of headings and anchors.
#[test]
fn rustdoc_and_mdbook_sections_have_their_anchors() {
    let root = "/usr/share/doc/rust-doc/html";
    let pages = pages_of(root, &["std/vec/struct.Vec.html", "book/ch08-01-vectors.html"], "rust-doc");
    let (html, vec) = &pages[0];
    assert_eq!(vec.title.as_deref(), Some("Struct std::vec::Vec"));
    assert_eq!(vec.sections[0].anchor, "main-content", "the page's own section: rustdoc's content section, not the copy button");
    let push = vec.sections.iter().find(|s| s.anchor == "method.push").expect("Vec::push by rustdoc's id");
    assert_eq!(push.heading_path.last().unwrap(), "pub fn push(&mut self, value: T)");
    assert_eq!(&push.heading_path[..2], ["Struct std::vec::Vec", "Implementations"]);
    let mut methods = 0;
    for s in &vec.sections {
        let heading = s.heading_path.last().unwrap();
        assert!(!heading.contains("Notable traits") && !heading.contains("source") && !heading.contains('ⓘ'), "chrome in a heading: {heading}");
        if s.heading_path.len() > 1 {
            assert!(targets(html, &s.anchor), "{:?} anchored at `{}`", s.heading_path, s.anchor);
        }
        methods += usize::from(s.anchor.starts_with("method."));
    }
    assert!(methods > 50, "{methods} method sections");
    let (html, book) = &pages[1];
    assert!(book.sections.len() >= 6);
    for s in &book.sections {
        assert!(targets(html, &s.anchor), "{:?} anchored at `{}`", s.heading_path, s.anchor);
    }
    assert!(book.sections.iter().any(|s| s.anchor == "reading-elements-of-vectors"));
}

/// Javadoc (JUnit 4's API): every member is a section anchored at the `<a id>` Javadoc puts
/// before its block (`assertEquals(double,double,double)`), so links to an overload land on
/// it; the summaries are sections at their ids too.
#[test]
fn javadoc_members_are_sections_at_their_ids() {
    let pages = pages_of("/usr/share/doc/junit4/api/org/junit", &["Assert.html", "Assume.html"], "junit4-doc");
    for (html, d) in &pages {
        let members: Vec<_> = d.sections.iter().filter(|s| s.heading_path.get(1).is_some_and(|h| h.ends_with("Detail"))).collect();
        assert!(members.len() > 5, "{:?}", d.title);
        for s in members.iter().copied().chain(d.sections.iter().filter(|s| s.heading_path.get(1).is_some_and(|h| h.ends_with("Summary")))) {
            assert!(!s.anchor.is_empty() && targets(html, &s.anchor), "{:?} anchored at `{}`", s.heading_path, s.anchor);
        }
    }
    let (_, assert) = &pages[0];
    let s = assert.sections.iter().find(|s| s.anchor == "assertEquals(double,double,double)").expect("an overload by its own id");
    assert_eq!(s.heading_path, ["Class Assert", "Method Detail", "assertEquals"]);
    assert!(s.blocks.iter().any(|b| b.text().contains("delta")), "{s:?}");
}

/// Doxygen (JsonCpp): the class page is titled by Doxygen's header (not an `h1`), and every
/// member is a section at the `<a id>` before its title, which the page's own `◆`
/// permalinks point at; the `◆` stays out of the heading.
#[test]
fn doxygen_members_are_sections_at_their_ids() {
    let (html, d) = &pages_of("/usr/share/doc/libjsoncpp-doc", &["class_json_1_1_value.html"], "libjsoncpp-doc")[0];
    assert_eq!(d.title.as_deref(), Some("Json::Value Class Reference"));
    assert!(d.sections.len() > 100);
    for s in d.sections.iter().skip(1) {
        assert_eq!(s.heading_path[0], "Json::Value Class Reference");
        assert!(!s.heading_path.last().unwrap().contains('◆'));
        assert!(!s.anchor.is_empty() && targets(html, &s.anchor), "{:?} anchored at `{}`", s.heading_path, s.anchor);
    }
    let members: Vec<_> = d.sections.iter().filter(|s| html.contains(&format!("href=\"#{}\">&#9670;", s.anchor))).collect();
    assert!(members.len() > 80, "{} members reached by their permalinks", members.len());
    assert!(d.sections.iter().any(|s| s.heading_path.last().is_some_and(|h| h.starts_with("isMember()"))));
}

/// GitHub-flavoured Markdown (Node.js's BUILDING.md and README.md): every link of the
/// table of contents reaches a section by the slug GitHub gives its heading, except a
/// heading with no text of its own (its subsections carry it), which is no section.
#[test]
fn github_markdown_sections_take_githubs_slugs() {
    for rel in ["BUILDING.md", "README.md"] {
        let path = Path::new("/usr/share/doc/nodejs").join(rel);
        let md = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (apt-get install nodejs)", path.display()));
        let d = aidocs_ingest::parse(aidocs_ingest::DocFormat::Markdown, &md);
        let anchors: std::collections::HashSet<&str> = d.sections.iter().map(|s| s.anchor.as_str()).collect();
        // Headings whose next line with text is another heading (or a comment): no body.
        let lines: Vec<&str> = md.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("<!--")).collect();
        let bare: Vec<String> = lines.windows(2).filter(|w| w[0].starts_with('#') && w[1].starts_with('#')).map(|w| w[0].trim_start_matches('#').trim().to_lowercase()).collect();
        let links: Vec<&str> = md.split("](#").skip(1).map(|p| &p[..p.find(')').unwrap()]).collect();
        assert!(links.len() > 15, "{rel}: {} in-page links", links.len());
        for link in links {
            let bare_heading = bare.iter().any(|h| h.replace(|c: char| !c.is_alphanumeric() && c != ' ' && c != '-', "").replace(' ', "-") == link);
            assert!(anchors.contains(link) || bare_heading, "{rel}: the table of contents links to #{link}, which is no section");
        }
    }
}
