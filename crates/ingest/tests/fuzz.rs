//! Property-based fuzzing of the parsers and the chunker (proptest: random markup soup,
//! deep nesting, hostile characters). Invariants: nothing panics, chunks respect their
//! token budget, chunk order follows section order. `cargo xtask fuzz` runs many more cases
//! (`PROPTEST_CASES`); a failure is shrunk and kept in `proptest-regressions/` as a
//! regression case.

use aidocs_core::TokenCounter;
use aidocs_ingest::{Chunker, ChunkerConfig, DocFormat, parse};
use proptest::prelude::*;

/// Words as tokens: a stand-in for the model's tokenizer with the same contract.
struct Words;

impl TokenCounter for Words {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

/// Pieces of HTML, Markdown and reST that interact: tags (closed, unclosed, mismatched),
/// headings, code, entities, adornments, list and quote markers, front matter, and odd
/// characters.
fn soup() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("<div>"), Just("</div>"), Just("<section id=\"s\">"), Just("</section>"), Just("<h1>"), Just("</h1>"),
        Just("<h2 id=\"a b\">"), Just("</h2>"), Just("<h3>"), Just("<p>"), Just("</p>"), Just("<pre>"), Just("</pre>"),
        Just("<code>"), Just("<script>"), Just("</script>"), Just("<nav>"), Just("<a name=x>"), Just("</a>"),
        Just("<table><tr><td>"), Just("<!--"), Just("-->"), Just("<![CDATA["), Just("&amp;"), Just("&#x0;"), Just("&#1114112;"),
        Just("# "), Just("## "), Just("\n"), Just("\n\n"), Just("```"), Just("~~~"), Just("> "), Just("- "), Just("1. "),
        Just("[x](y)"), Just("*"), Just("_"), Just("`"), Just("---\n"), Just("title: t\n"), Just("===="), Just("----"),
        Just(".. code-block:: python\n"), Just(".. _label:\n"), Just("   "), Just("\t"), Just("::\n"), Just("¶"),
        Just("\u{200b}"), Just("\u{feff}"), Just("\r"), Just("\0"), Just("é"), Just("𝔘"),
        "[a-zA-Z ]{1,12}".prop_map(|s| Box::leak(s.into_boxed_str()) as &str),
    ];
    prop::collection::vec(pieces, 0..200).prop_map(|v| v.concat())
}

fn formats() -> impl Strategy<Value = DocFormat> {
    prop_oneof![Just(DocFormat::Html), Just(DocFormat::Markdown), Just(DocFormat::Rst), Just(DocFormat::Text), Just(DocFormat::OpenApi)]
}

/// The formats whose text survives any nesting (an OpenAPI document nested past the JSON
/// and YAML parsers' depth limits is refused whole: hostile_nesting.rs).
fn prose_formats() -> impl Strategy<Value = DocFormat> {
    prop_oneof![Just(DocFormat::Html), Just(DocFormat::Markdown), Just(DocFormat::Rst), Just(DocFormat::Text)]
}

proptest! {
    #[test]
    fn parsers_and_chunker_hold_their_invariants(text in soup(), format in formats(), max_tokens in 16usize..64) {
        let doc = parse(format, &text);
        for s in &doc.sections {
            prop_assert!(!s.blocks.is_empty(), "empty sections are dropped");
        }
        let counter = Words;
        let chunker = Chunker::new(ChunkerConfig { max_tokens, overlap_tokens: max_tokens / 4, lead_tokens: max_tokens / 4 }, &counter);
        let chunks = chunker.chunk(doc.title.as_deref().unwrap_or(""), &doc.sections);
        let mut last = 0;
        for c in &chunks {
            prop_assert!(c.section >= last, "chunks follow section order");
            last = c.section;
            prop_assert!(c.section < doc.sections.len());
            prop_assert!(!c.text.trim().is_empty());
        }
        // A lead is short and opens its section: the section's own chunks follow it.
        for w in chunks.windows(2) {
            if w[0].lead {
                prop_assert!(!w[1].lead && w[1].section == w[0].section, "a lead without its section's chunks after it");
                prop_assert!(w[0].tokens <= max_tokens / 4, "lead over its budget: {:?}", w[0].text);
            }
        }
        prop_assert!(chunks.last().is_none_or(|c| !c.lead));
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>(), format in formats()) {
        let _ = parse(format, &text);
    }

}

proptest! {
    // Each case parses up to 20,000 levels: a few dozen cases cover the depths; the
    // 100,000-level tests in hostile_nesting.rs cover the extreme.
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn nesting_of_any_depth_parses(depth in 1usize..20_000, format in prose_formats()) {
        let text = match format {
            DocFormat::Html => format!("<h1>T</h1>{}x{}", "<div><span>".repeat(depth), "</span></div>".repeat(depth)),
            DocFormat::Markdown => format!("# T\n\n{}x\n", "> - ".repeat(depth)),
            DocFormat::Rst | DocFormat::Text => format!("T\n=\n\n{}x\n", "- ".repeat(depth)),
            DocFormat::OpenApi | DocFormat::Pdf => unreachable!("not a prose format"),
        };
        let doc = parse(format, &text);
        prop_assert!(doc.sections.iter().flat_map(|s| &s.blocks).any(|b| b.text().contains('x')));
    }
}
