//! The HTML parser on real manuals from Debian's documentation packages: DocBook
//! (`postgresql-doc-15`) and Sphinx (`python3.11-doc`). Every section gets its anchor, and an
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
