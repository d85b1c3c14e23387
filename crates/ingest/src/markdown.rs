//! Markdown (CommonMark + tables): sections at headings, anchors as GitHub slugs, optional
//! YAML-style front matter (`key: value` lines) for title and metadata.

use crate::document::{ParsedDoc, SectionBuilder, Slugger, collapse_ws};
use aidocs_core::DocMetadata;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

pub fn parse(src: &str) -> ParsedDoc {
    let (front, body) = split_front_matter(src);
    let mut meta = DocMetadata::default();
    let mut title = None;
    for (k, v) in &front {
        match k.as_str() {
            "title" => title = Some(v.clone()),
            "language" => meta.language = Some(v.clone()),
            "framework" => meta.framework = Some(v.clone()),
            "doc_type" => meta.doc_type = Some(v.clone()),
            "version" => meta.version = Some(v.clone()),
            "difficulty_level" => meta.difficulty_level = v.parse().ok(),
            _ => {}
        }
    }
    let mut b = SectionBuilder::default();
    let mut slugger = Slugger::default();
    let mut heading: Option<(usize, Option<String>, String)> = None;
    let mut code: Option<String> = None;
    let opts = Options::ENABLE_TABLES | Options::ENABLE_HEADING_ATTRIBUTES | Options::ENABLE_STRIKETHROUGH;
    for ev in Parser::new_ext(body, opts) {
        match ev {
            Event::Start(Tag::Heading { level, id, .. }) => {
                heading = Some((level_num(level), id.map(|s| s.to_string()), String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, id, text)) = heading.take() {
                    let text = collapse_ws(&text);
                    let anchor = id.unwrap_or_else(|| slugger.slug(&text));
                    b.heading(level, &text, anchor);
                }
            }
            Event::Start(Tag::CodeBlock(_)) => code = Some(String::new()),
            Event::End(TagEnd::CodeBlock) => {
                if let Some(c) = code.take() {
                    b.code(&c);
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.2.push_str(&t);
                } else if let Some(c) = code.as_mut() {
                    c.push_str(&t);
                } else {
                    b.text(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(h) = heading.as_mut() {
                    h.2.push(' ');
                } else {
                    b.text(" ");
                }
            }
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::TableCell | TagEnd::TableRow | TagEnd::BlockQuote(_)) => {
                b.break_para()
            }
            Event::End(TagEnd::TableHead) => b.break_para(),
            _ => {}
        }
    }
    let sections = b.finish();
    let title = title.or_else(|| sections.iter().find_map(|s| s.heading_path.first().cloned()));
    ParsedDoc { title, sections, meta }
}

fn level_num(l: HeadingLevel) -> usize {
    l as usize
}

/// Split `---\nkey: value\n---\n` front matter from the body.
fn split_front_matter(src: &str) -> (Vec<(String, String)>, &str) {
    let Some(rest) = src.strip_prefix("---\n").or_else(|| src.strip_prefix("---\r\n")) else {
        return (Vec::new(), src);
    };
    let Some(end) = rest.find("\n---") else { return (Vec::new(), src) };
    let body_start = rest[end + 4..].find('\n').map(|i| end + 4 + i + 1).unwrap_or(rest.len());
    let pairs = rest[..end]
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned()))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .collect();
    (pairs, &rest[body_start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Block;

    #[test]
    fn sections_slugs_code_and_front_matter() {
        let md = "---\ntitle: Guide\nlanguage: rust\ndifficulty_level: 2\n---\n# Getting Started\n\nIntro *text*.\n\n## Install the `CLI`\n\nRun this:\n\n```sh\ncargo install aidocs\n\ncargo run\n```\n\n## Install the `CLI`\n\nAgain.\n";
        let d = parse(md);
        assert_eq!(d.title.as_deref(), Some("Guide"));
        assert_eq!(d.meta.language.as_deref(), Some("rust"));
        assert_eq!(d.meta.difficulty_level, Some(2));
        assert_eq!(d.sections.len(), 3);
        assert_eq!(d.sections[0].anchor, "getting-started");
        assert_eq!(d.sections[1].anchor, "install-the-cli");
        assert_eq!(d.sections[2].anchor, "install-the-cli-1");
        assert_eq!(d.sections[1].heading_path, vec!["Getting Started", "Install the CLI"]);
        assert_eq!(d.sections[1].blocks, vec![Block::Text("Run this:".into()), Block::Code("cargo install aidocs\n\ncargo run".into())]);
    }
}
