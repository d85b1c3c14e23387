//! HTML: main-content extraction, sections at headings with their anchors.

use crate::document::{ParsedDoc, SectionBuilder, collapse_ws};
use ego_tree::NodeRef;
use scraper::{ElementRef, Html, Node, Selector};

/// Containers tried in order for the main content; the first match wins. `div#yui-main` is
/// the content column of Django's documentation theme (its `div.document` also holds the
/// site header, the sidebar and the footer).
const MAIN_SELECTORS: &[&str] = &["main", "[role=main]", "article", "div.body", "div#content", "div#yui-main", "div.document", "div.contents", "body"];
/// Elements dropped with their subtree.
const SKIP_TAGS: &[&str] = &[
    "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "button", "svg", "iframe",
    "template", "head", "select", "input",
];
/// Classes of navigation chrome dropped with their subtree (Sphinx, DocBook, common themes;
/// Doxygen's `◆` permalinks; rustdoc's version and source links and trait tooltips).
const SKIP_CLASSES: &[&str] = &[
    "sphinxsidebar", "related", "headerlink", "navheader", "navfooter", "breadcrumbs", "breadcrumb",
    "sidebar", "navigation", "nav", "toc-sidebar", "skip-link", "copybutton", "permalink", "rightside",
    "out-of-band", "srclink", "notable-traits",
];
/// Classes of admonition boxes (DocBook `div.note` / `div.tip` / `div.warning` with an
/// `h3.title`, Sphinx and MkDocs `.admonition`, Docusaurus `.alert`): a heading inside one
/// titles the box, not a section; it stays text of the section around the box.
const ADMONITION_CLASSES: &[&str] = &[
    "note", "tip", "warning", "caution", "important", "admonition", "hint", "attention", "danger", "error",
    "seealso", "alert", "callout",
];
/// How many enclosing elements are searched for an admonition box around a heading.
const ADMONITION_ANCESTORS: usize = 3;
const BLOCK_TAGS: &[&str] = &[
    "p", "div", "section", "article", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "blockquote", "br",
    "hr", "figure", "figcaption", "caption", "main", "body", "td", "th",
];

pub fn parse(src: &str) -> ParsedDoc {
    parse_with(src, true)
}

/// `fold_name`: a man page's NAME line goes into its DESCRIPTION ([`man_page_name`]); when
/// the parse makes no DESCRIPTION section, the page is read again without, so the line
/// keeps its own section and is never lost.
fn parse_with(src: &str, fold_name: bool) -> ParsedDoc {
    let doc = Html::parse_document(src);
    let title = Selector::parse("title")
        .ok()
        .and_then(|s| doc.select(&s).next())
        .map(|t| collapse_ws(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    let root = MAIN_SELECTORS
        .iter()
        .filter_map(|s| Selector::parse(s).ok())
        .find_map(|s| doc.select(&s).next())
        .unwrap_or_else(|| doc.root_element());
    let mut b = SectionBuilder::default();
    let mut name_line = None;
    match page_heading(&doc, root) {
        Some(Outside::Block(block)) => match man_page_name(block).filter(|_| fold_name) {
            Some(name) => {
                b.heading(1, &name.title, name.anchor);
                name_line = Some(name.line);
            }
            None => walk(*block, &mut b),
        },
        Some(Outside::Heading(h)) => {
            let mut text = String::new();
            visible_text(*h, &mut text);
            b.heading(1, collapse_ws(&text).trim(), anchor_of(h));
        }
        None => {}
    }
    walk(*root, &mut b);
    let mut sections = b.finish();
    if let Some(line) = name_line {
        match sections.iter_mut().find(|s| s.heading_path.last().is_some_and(|h| h == "DESCRIPTION")) {
            Some(d) => d.blocks.insert(0, crate::document::Block::Text(line)),
            None => return parse_with(src, false),
        }
    }
    // The first top-level heading names the page better than <title>, which often carries
    // the site name too.
    let title = sections.iter().find_map(|s| s.heading_path.first().cloned()).or(title);
    ParsedDoc { title, sections, meta: Default::default() }
}

/// The page's own heading when it lies outside the main container.
enum Outside<'a> {
    /// The heading's block (AsciiDoc's `div#header`: the `h1` and the NAME line of a man
    /// page), read before the container.
    Block(ElementRef<'a>),
    /// The heading alone (its block holds the container too).
    Heading(ElementRef<'a>),
}

/// When the main container has no `h1` but the page does, outside any skipped chrome:
/// AsciiDoc man pages (git's) put `<h1>git-stash(1) Manual Page</h1>` and the one-line
/// purpose in `div#header`, the sections in `div#content`; Doxygen puts `Json::Value Class
/// Reference` in `div.headertitle > div.title` above `div.contents`. Without it every
/// section would be titled by its own heading alone (`OPTIONS`) and the page named after
/// its first section.
fn page_heading<'a>(doc: &'a Html, root: ElementRef<'a>) -> Option<Outside<'a>> {
    let h1 = Selector::parse("h1").ok()?;
    if root.select(&h1).next().is_some() {
        return None;
    }
    let doxygen = Selector::parse("div.headertitle > div.title").ok()?;
    if let Some(title) = doc.select(&doxygen).find(|t| !root.descendants().any(|d| d.id() == t.id())) {
        return Some(Outside::Heading(title));
    }
    let h = doc.select(&h1).find(|h| !h.ancestors().filter_map(ElementRef::wrap).any(|a| skipped(&a)))?;
    let parent = h.parent().and_then(ElementRef::wrap)?;
    let holds_root = parent.descendants().any(|d| d.id() == root.id());
    Some(if holds_root || matches!(parent.value().name(), "body" | "html") { Outside::Heading(h) } else { Outside::Block(parent) })
}

/// An AsciiDoc man page's header: `h1` `git-clean(1) Manual Page`, then `h2` NAME and one
/// line `git-clean - Remove untracked files from the working tree`.
struct ManPageName {
    title: String,
    anchor: String,
    line: String,
}

/// The NAME line of a man page, to open its DESCRIPTION section instead of being a
/// one-line section of its own. As its own section it outranked
/// the DESCRIPTION on the very words it summarises and linked to the top of the page; the
/// two say what the command does, and the DESCRIPTION is where a reader goes on reading.
/// `None` when the header is not laid out that way (it is then read as it stands).
fn man_page_name(block: ElementRef) -> Option<ManPageName> {
    let h2 = Selector::parse("h2").ok()?;
    let text_of = |e: ElementRef| {
        let mut t = String::new();
        visible_text(*e, &mut t);
        collapse_ws(&t).trim().to_owned()
    };
    let h1 = block.select(&Selector::parse("h1").ok()?).next()?;
    let name = block.select(&h2).find(|h| text_of(*h) == "NAME")?;
    let line = text_of(name.next_siblings().find_map(ElementRef::wrap)?);
    let (_, purpose) = line.split_once(" - ")?;
    if purpose.trim().is_empty() {
        return None;
    }
    Some(ManPageName { title: text_of(h1), anchor: anchor_of(h1), line })
}

fn heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn skipped(el: &ElementRef) -> bool {
    let v = el.value();
    SKIP_TAGS.contains(&v.name()) || v.classes().any(|c| SKIP_CLASSES.contains(&c)) || v.attr("aria-hidden") == Some("true")
}

/// Visible text of an element, without skipped chrome (e.g. Sphinx's `¶` header links).
/// Iterative: a page may nest elements arbitrarily deep.
fn visible_text(node: NodeRef<Node>, out: &mut String) {
    let mut stack: Vec<NodeRef<Node>> = node.children().rev().collect();
    while let Some(child) = stack.pop() {
        match child.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(_) => {
                if let Some(el) = ElementRef::wrap(child)
                    && !skipped(&el)
                {
                    stack.extend(child.children().rev());
                }
            }
            _ => {}
        }
    }
}

/// One step of the document walk: a node to visit, or what to emit when an element's
/// subtree is done.
enum Step<'a> {
    Visit(NodeRef<'a, Node>),
    /// End of a block element: close the paragraph.
    Break,
    /// End of an unknown inline element: a word boundary.
    Space,
}

/// Walk the content in document order, feeding the builder. Iterative with an explicit
/// stack (never one native frame per DOM level), so hostile nesting depth cannot overflow
/// the thread's stack.
fn walk(root: NodeRef<Node>, b: &mut SectionBuilder) {
    let mut stack: Vec<Step> = root.children().rev().map(Step::Visit).collect();
    while let Some(step) = stack.pop() {
        let child = match step {
            Step::Visit(n) => n,
            Step::Break => {
                b.break_para();
                continue;
            }
            Step::Space => {
                b.text(" ");
                continue;
            }
        };
        match child.value() {
            Node::Text(t) => b.text(t),
            Node::Element(e) => {
                let Some(el) = ElementRef::wrap(child) else { continue };
                if skipped(&el) {
                    continue;
                }
                let name = e.name();
                if let Some(level) = heading_level(name) {
                    let mut text = String::new();
                    visible_text(child, &mut text);
                    let text = collapse_ws(&text).trim_end_matches('¶').trim().to_owned();
                    if text.is_empty() {
                        continue;
                    }
                    if in_admonition(el) {
                        // The box's title ("Tip", "Warning"): a paragraph of the section.
                        b.break_para();
                        b.text(&text);
                        b.break_para();
                    } else {
                        b.heading(level, &text, anchor_of(el));
                    }
                } else if name == "pre" {
                    b.code(&el.text().collect::<String>());
                } else if BLOCK_TAGS.contains(&name) {
                    b.break_para();
                    stack.push(Step::Break);
                    stack.extend(child.children().rev().map(Step::Visit));
                } else if matches!(name, "code" | "span" | "a" | "em" | "strong") {
                    stack.extend(child.children().rev().map(Step::Visit));
                } else {
                    b.text(" ");
                    stack.push(Step::Space);
                    stack.extend(child.children().rev().map(Step::Visit));
                }
            }
            _ => {}
        }
    }
}

/// Whether heading `h` titles an admonition box (see [`ADMONITION_CLASSES`]).
fn in_admonition(h: ElementRef) -> bool {
    h.ancestors()
        .take(ADMONITION_ANCESTORS)
        .filter_map(ElementRef::wrap)
        .any(|a| a.value().classes().any(|c| ADMONITION_CLASSES.contains(&c)))
}

/// Whether an element is an index-term target (DocBook `a.indexterm`): an id for the
/// index, never a section's anchor.
fn index_term(el: &ElementRef) -> bool {
    el.value().classes().any(|c| c == "indexterm")
}

/// How many enclosing elements are searched for a heading's section id: enough for
/// DocBook's `div.sect1 > div.titlepage > div > div > h2`, bounded so a heading at the
/// bottom of a hostile nest costs no more than a shallow one.
const ANCHOR_ANCESTORS: usize = 8;

/// The target an empty `<a id>` / `<a name>` just before `el` sets (no link, no text): how
/// Doxygen (`<a id="a0cf..."></a><h2 class="memtitle">`) and Javadoc (`<a id="assertTrue(boolean)">`
/// before the `ul.blockList` that holds the `h4`) anchor what follows.
fn target_before(el: ElementRef) -> Option<String> {
    let prev = el.prev_siblings().find_map(|n| match n.value() {
        Node::Element(_) => ElementRef::wrap(n),
        Node::Text(t) if t.trim().is_empty() => None,
        Node::Comment(_) => None,
        // Text between them: the anchor is not right before this element.
        _ => Some(el),
    })?;
    let v = prev.value();
    if prev.id() == el.id() || v.name() != "a" || v.attr("href").is_some() || !prev.text().all(|t| t.trim().is_empty()) || index_term(&prev) {
        return None;
    }
    v.id().or_else(|| v.attr("name")).map(str::to_owned)
}

/// The section anchor of a heading: its own id, an id/name on an element inside it (not an
/// index term), an empty target anchor right before it, or the id of (or the empty target
/// anchor right before) the nearest enclosing element whose first heading is this one
/// (Sphinx `<section id>`, DocBook `<div class="sect1" id>`, Javadoc's `ul.blockList`).
fn anchor_of(h: ElementRef) -> String {
    if let Some(id) = h.value().id() {
        return id.to_owned();
    }
    // Depth first, in document order, never into skipped chrome (rustdoc's copy button):
    // one visit per element, however deep the heading's content nests.
    let mut stack: Vec<NodeRef<Node>> = h.children().rev().collect();
    while let Some(node) = stack.pop() {
        let Some(d) = ElementRef::wrap(node) else { continue };
        if skipped(&d) {
            continue;
        }
        if !index_term(&d)
            && let Some(id) = d.value().id().or_else(|| if d.value().name() == "a" { d.value().attr("name") } else { None })
        {
            return id.to_owned();
        }
        stack.extend(node.children().rev());
    }
    if let Some(id) = target_before(h) {
        return id;
    }
    let mut cur = h.parent();
    for _ in 0..ANCHOR_ANCESTORS {
        let Some(node) = cur else { break };
        let Some(el) = ElementRef::wrap(node) else { break };
        let first_heading = el
            .descendants()
            .filter_map(ElementRef::wrap)
            .find(|d| heading_level(d.value().name()).is_some());
        if first_heading.map(|f| f.id()) != Some(h.id()) {
            break;
        }
        if let Some(id) = el.value().id() {
            return id.to_owned();
        }
        if let Some(id) = target_before(el) {
            return id;
        }
        cur = node.parent();
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Block;

    #[test]
    fn sphinx_sections_anchors_and_code() {
        let html = r##"<html><head><title>asyncio — Python 3.11.14 documentation</title></head><body>
        <div class="related"><a href="x">Index</a></div>
        <div class="sphinxsidebar">Sidebar junk</div>
        <div class="body" role="main">
          <section id="asyncio"><h1>asyncio<a class="headerlink" href="#asyncio">¶</a></h1>
            <p>Intro text.</p>
            <section id="running"><h2>Running <code>tasks</code><a class="headerlink" href="#running">¶</a></h2>
              <p>Use <code>asyncio.run()</code> to run.</p>
              <div class="highlight"><pre>import asyncio

asyncio.run(main())</pre></div>
            </section>
          </section>
        </div>
        <footer>Copyright</footer><script>var x = 1;</script></body></html>"##;
        let d = parse(html);
        assert_eq!(d.title.as_deref(), Some("asyncio"));
        assert_eq!(d.sections.len(), 2);
        assert_eq!(d.sections[0].anchor, "asyncio");
        assert_eq!(d.sections[1].anchor, "running");
        assert_eq!(d.sections[1].heading_path, vec!["asyncio", "Running tasks"]);
        assert_eq!(d.sections[1].blocks[0], Block::Text("Use asyncio.run() to run.".into()));
        assert_eq!(d.sections[1].blocks[1], Block::Code("import asyncio\n\nasyncio.run(main())".into()));
        let all: String = d.sections.iter().flat_map(|s| s.blocks.iter().map(|b| b.text().to_owned())).collect();
        assert!(!all.contains("Sidebar") && !all.contains("Copyright") && !all.contains("var x") && !all.contains('¶'));
    }

    #[test]
    fn docbook_div_ids_and_heading_ids() {
        let html = r#"<body><div class="sect1" id="SQL-SELECT"><div class="titlepage"><div><div>
            <h2 class="title">SELECT</h2></div></div></div><p>Retrieves rows.</p>
            <h3 id="own">Own id</h3><p>More.</p></div></body>"#;
        let d = parse(html);
        assert_eq!(d.sections[0].anchor, "SQL-SELECT");
        assert_eq!(d.sections[1].anchor, "own");
        assert_eq!(d.sections[1].heading_path, vec!["SELECT", "Own id"]);
    }

    #[test]
    fn admonitions_belong_to_their_section_and_index_terms_are_no_anchors() {
        // DocBook (PostgreSQL): a tip box with its own h3 inside a sect2.
        let html = r#"<body><div class="sect2" id="VACUUM-FOR-SPACE-RECOVERY"><div class="titlepage"><div><div>
            <h3 class="title">Recovering Disk Space</h3></div></div></div>
            <p><a id="id-1.6.12.10.5.2" class="indexterm"></a>Dead rows take space.</p>
            <div class="tip"><h3 class="title">Tip</h3><p>Plain VACUUM may not return space.</p></div>
            <p>After the tip.</p>
            <h3 class="title"><a id="id-9" class="indexterm"></a>Indexed heading</h3><p>x</p></div></body>"#;
        let d = parse(html);
        let headings: Vec<_> = d.sections.iter().map(|s| s.heading_path.last().cloned().unwrap_or_default()).collect();
        assert_eq!(headings, ["Recovering Disk Space", "Indexed heading"], "no section titled Tip");
        assert_eq!(d.sections[0].anchor, "VACUUM-FOR-SPACE-RECOVERY");
        let text: Vec<&str> = d.sections[0].blocks.iter().map(|b| b.text()).collect();
        assert_eq!(text, ["Dead rows take space.", "Tip", "Plain VACUUM may not return space.", "After the tip."]);
        assert_eq!(d.sections[1].anchor, "", "an index term's id is not a section anchor");
        // Sphinx / MkDocs boxes with a heading inside stay in their section too.
        let d = parse(r#"<main><h2 id="a">A</h2><div class="admonition warning"><h4>Careful</h4><p>Mind it.</p></div></main>"#);
        assert_eq!(d.sections.len(), 1);
        assert!(d.sections[0].blocks.iter().any(|b| b.text() == "Careful"));
    }

    #[test]
    fn a_page_heading_outside_the_content_heads_its_sections() {
        // AsciiDoc man page layout (git-doc).
        let html = r#"<html><head><title>git-stash(1)</title></head><body>
            <div id="header"><h1>git-stash(1) Manual Page</h1><h2>NAME</h2>
            <div class="sectionbody"><p>git-stash - Stash the changes in a dirty working directory away</p></div></div>
            <div id="content"><div class="sect1"><h2 id="_description">DESCRIPTION</h2><div class="sectionbody"><p>Use git stash when you want to record the current state.</p></div></div>
            <div class="sect1"><h2 id="_options">OPTIONS</h2><div class="sectionbody"><p>-u, --include-untracked</p></div></div></div>
            <div id="footer">Last updated</div></body></html>"#;
        let d = parse(html);
        // The NAME line opens the DESCRIPTION; it is no section of its own.
        let page = "git-stash(1) Manual Page";
        assert_eq!(d.title.as_deref(), Some(page));
        let paths: Vec<Vec<String>> = d.sections.iter().map(|s| s.heading_path.clone()).collect();
        assert_eq!(paths, [vec![page.to_owned(), "DESCRIPTION".into()], vec![page.to_owned(), "OPTIONS".into()]]);
        let texts: Vec<&str> = d.sections[0].blocks.iter().map(|b| b.text()).collect();
        assert_eq!(texts, ["git-stash - Stash the changes in a dirty working directory away", "Use git stash when you want to record the current state."]);
        assert_eq!((d.sections[0].anchor.as_str(), d.sections[1].anchor.as_str()), ("_description", "_options"));
        // A NAME that is not `name - purpose`, or a page without a DESCRIPTION: read as it stands.
        // Nor when the DESCRIPTION heading is in something the parser drops: the line stays.
        let hidden = html.replace(r#"<div class="sect1"><h2 id="_description">DESCRIPTION</h2>"#, r#"<div class="sect1"><nav><h2>DESCRIPTION</h2></nav><h2 id="_discussion">DISCUSSION</h2>"#);
        for odd in [html.replace("git-stash - Stash", "Stash"), html.replace(">DESCRIPTION<", ">DISCUSSION<"), hidden] {
            let d = parse(&odd);
            let first = d.sections[1].heading_path[1].clone();
            assert_eq!(d.title.as_deref(), Some("git-stash(1) Manual Page"));
            let paths: Vec<Vec<String>> = d.sections.iter().map(|s| s.heading_path.clone()).collect();
            assert_eq!(paths, [vec![page.to_owned(), "NAME".into()], vec![page.to_owned(), first], vec![page.to_owned(), "OPTIONS".into()]]);
            assert!(d.sections[0].blocks.iter().any(|b| b.text().contains("Stash the changes")));
            assert!(d.sections[1].blocks.iter().all(|b| !b.text().contains("Stash the changes")));
        }
        // A site banner's h1 in a skipped <header> is not the page's heading.
        let d = parse(r#"<body><header><h1>Site</h1></header><main><h2 id="a">A</h2><p>x</p></main></body>"#);
        assert_eq!(d.sections[0].heading_path, ["A"]);
        // An h1 beside the container in <body>: the heading alone, not the body twice.
        let d = parse(r#"<body><h1 id="t">Title</h1><div id="content"><h2 id="b">B</h2><p>y</p></div></body>"#);
        let paths: Vec<Vec<String>> = d.sections.iter().map(|s| s.heading_path.clone()).collect();
        assert_eq!(paths, [vec!["Title".to_owned(), "B".into()]]);
        assert_eq!(d.sections[0].blocks.len(), 1);
    }

    #[test]
    fn malformed_html_still_parses() {
        // Mismatched end tag, unclosed inline and block elements, no </html>.
        let d = parse("<html><body><h1>Broken</h3><p>unclosed <b>bold <div>text</body>");
        assert_eq!(d.sections.len(), 1);
        assert!(d.sections[0].blocks.iter().any(|b| b.text().contains("unclosed bold")));
    }
}
