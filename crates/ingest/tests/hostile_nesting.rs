//! Hostile nesting depth: 100,000 levels in every format parse on a small stack and keep
//! the text at the bottom. (Before the HTML walk was iterative, 10,000 nested `<div>`
//! overflowed the stack and aborted the server.)

use aidocs_ingest::{DocFormat, ParsedDoc, parse};

const DEPTH: usize = 100_000;

/// Parse on a thread with a 256 KiB stack: far less than tokio's or the main thread's, so
/// any per-level recursion fails here first.
fn parse_small_stack(format: DocFormat, text: String) -> ParsedDoc {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || parse(format, &text))
        .unwrap()
        .join()
        .expect("parsing must not overflow the stack")
}

fn all_text(d: &ParsedDoc) -> String {
    d.sections.iter().flat_map(|s| s.blocks.iter().map(|b| b.text().to_owned())).collect::<Vec<_>>().join("\n")
}

#[test]
fn html_nested_blocks() {
    let html = format!(
        "<html><body><h1>Deep</h1>{}<h2 id=\"bottom\">Bottom</h2><p>text at the bottom</p>{}</body></html>",
        "<div>".repeat(DEPTH),
        "</div>".repeat(DEPTH)
    );
    let d = parse_small_stack(DocFormat::Html, html);
    assert!(all_text(&d).contains("text at the bottom"));
    let bottom = d.sections.iter().find(|s| s.heading_path.last().map(String::as_str) == Some("Bottom")).expect("the deep heading is a section");
    assert_eq!(bottom.anchor, "bottom");
}

#[test]
fn html_nested_inline_and_unclosed() {
    let html = format!("<body><p>{}inline bottom</p>{}", "<span><em>".repeat(DEPTH / 2), "<section>".repeat(DEPTH));
    let d = parse_small_stack(DocFormat::Html, html);
    assert!(all_text(&d).contains("inline bottom"));
    let headed = format!("<body><h1>{}deep heading</h1><p>body</p>", "<span>".repeat(DEPTH));
    let d = parse_small_stack(DocFormat::Html, headed);
    assert_eq!(d.title.as_deref(), Some("deep heading"));
}

#[test]
fn markdown_nested_quotes_and_lists() {
    let md = format!("# Deep\n\n{}quoted bottom\n\n{}listed bottom\n", "> ".repeat(DEPTH), "- ".repeat(DEPTH));
    let d = parse_small_stack(DocFormat::Markdown, md);
    let text = all_text(&d);
    assert!(text.contains("quoted bottom"), "{}", &text[..text.len().min(200)]);
    assert!(text.contains("listed bottom"));
    let emph = format!("# E\n\n{}emphasis bottom{}\n\n{}link{}\n", "*_".repeat(DEPTH / 2), "_*".repeat(DEPTH / 2), "[".repeat(DEPTH), "]".repeat(DEPTH));
    let d = parse_small_stack(DocFormat::Markdown, emph);
    assert!(all_text(&d).contains("emphasis bottom"));
}

#[test]
fn rst_nested_lists_and_directives() {
    // reST nests by indentation: one line per level, each deeper than the last.
    let mut rst = String::from("Deep\n====\n\n");
    for _ in 0..DEPTH {
        rst.push_str("- - - - - - - - - -\n");
    }
    rst.push_str("\n.. note::\n");
    for i in 0..DEPTH {
        rst.push_str(&" ".repeat(3 + i % 64));
        rst.push_str(".. note::\n");
    }
    rst.push_str("\nrst bottom\n");
    let d = parse_small_stack(DocFormat::Rst, rst);
    assert!(all_text(&d).contains("rst bottom"));
}

/// An OpenAPI document with a value nested 100,000 deep, in JSON and in YAML, and one whose
/// schemas refer to each other in a cycle: the deep ones are refused whole by the parsers'
/// depth limits (no sections, no overflow), the cyclic one lists each schema once.
#[test]
fn openapi_deep_values_and_cyclic_refs() {
    let json = format!(r#"{{"openapi": "3.0.0", "info": {{"title": "Deep"}}, "x-deep": {}1{}}}"#, "[".repeat(DEPTH), "]".repeat(DEPTH));
    assert!(parse_small_stack(DocFormat::OpenApi, json).sections.is_empty());
    let yaml = format!("openapi: 3.0.0\ninfo: {{title: Deep}}\nx-deep: {}1{}\n", "[".repeat(DEPTH), "]".repeat(DEPTH));
    assert!(parse_small_stack(DocFormat::OpenApi, yaml).sections.is_empty());
    let block = format!("openapi: 3.0.0\ninfo:\n  title: Deep\nx-deep:\n{}\n", (0..DEPTH.min(5_000)).map(|i| format!("{}- ", " ".repeat(i * 2))).collect::<Vec<_>>().join("\n"));
    let _ = parse_small_stack(DocFormat::OpenApi, block);
    let cyclic = r##"{"openapi": "3.0.0", "info": {"title": "Cycle"}, "paths": {"/a": {"get": {"operationId": "getA",
        "responses": {"200": {"description": "an A", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}},
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}}}},
        "components": {"schemas": {"A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}, "allOf": [{"$ref": "#/components/schemas/B"}]},
                                   "B": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}}, "allOf": [{"$ref": "#/components/schemas/A"}]}}}}"##;
    let d = parse_small_stack(DocFormat::OpenApi, cyclic.to_owned());
    assert_eq!(d.sections.len(), 3, "{d:?}");
    assert!(all_text(&d).contains("GET /a"));
}
