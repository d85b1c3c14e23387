//! reStructuredText: section titles (underline, optionally overline), `.. _label:` targets as
//! anchors (else the docutils id of the title), literal blocks (`::`) and code directives as
//! code, other directives' bodies as text, comments dropped.

use crate::document::{ParsedDoc, SectionBuilder, collapse_ws};

const ADORNMENT: &str = "=-~^\"'`#*+:._";

fn adornment_char(line: &str) -> Option<char> {
    let t = line.trim_end();
    let c = t.chars().next()?;
    (t.len() >= 3 && ADORNMENT.contains(c) && t.chars().all(|x| x == c)).then_some(c)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// docutils-style id: lowercase, runs of non-alphanumerics become one `-`.
fn docutils_id(text: &str) -> String {
    let mut out = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

pub fn parse(src: &str) -> ParsedDoc {
    let lines: Vec<&str> = src.lines().collect();
    let mut b = SectionBuilder::default();
    let mut styles: Vec<(char, bool)> = Vec::new();
    let mut label: Option<String> = None;
    let mut i = 0;
    let mut literal_next = false;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        // Title with overline: ===\nTitle\n===
        if let (Some(c), Some(next), Some(under)) = (adornment_char(line), lines.get(i + 1), lines.get(i + 2))
            && !next.trim().is_empty() && adornment_char(under) == Some(c) {
                title(&mut b, &mut styles, &mut label, (c, true), next.trim());
                i += 3;
                continue;
            }
        // Title with underline.
        if !t.is_empty() && indent(line) == 0 && adornment_char(line).is_none()
            && let Some(c) = lines.get(i + 1).and_then(|u| adornment_char(u))
                && lines[i + 1].trim_end().chars().count() >= t.chars().count().min(3) {
                    title(&mut b, &mut styles, &mut label, (c, false), t);
                    i += 2;
                    continue;
                }
        if t.is_empty() {
            b.break_para();
            i += 1;
            continue;
        }
        if let Some(rest) = t.strip_prefix(".. ") {
            b.break_para();
            if let Some(name) = rest.strip_prefix('_').and_then(|r| r.strip_suffix(':')) {
                label = Some(name.to_owned());
                i += 1;
                continue;
            }
            let directive = rest.split("::").next().unwrap_or("").trim();
            let is_directive = rest.contains("::");
            let (block, next) = indented_block(&lines, i + 1, indent(line));
            if is_directive && matches!(directive, "code-block" | "code" | "sourcecode" | "literalinclude" | "doctest") {
                // Directive options (`:linenos:`) precede the body.
                let body: Vec<&str> = block
                    .iter()
                    .map(String::as_str)
                    .skip_while(|l| l.trim_start().starts_with(':') || l.trim().is_empty())
                    .collect();
                b.code(&body.join("\n"));
            } else if is_directive && !matches!(directive, "toctree" | "image" | "figure" | "raw" | "include" | "meta") {
                let arg = rest.split_once("::").map(|x| x.1.trim()).unwrap_or("");
                b.text(arg);
                b.text(" ");
                for l in block.iter().filter(|l| !l.trim_start().starts_with(':')) {
                    if l.trim().is_empty() {
                        b.break_para();
                    } else {
                        b.text(l);
                        b.text(" ");
                    }
                }
                b.break_para();
            }
            // else: a comment or a non-text directive; dropped.
            i = next;
            continue;
        }
        if literal_next && indent(line) > 0 {
            let (block, next) = indented_block(&lines, i, 0);
            b.code(&block.join("\n"));
            literal_next = false;
            i = next;
            continue;
        }
        literal_next = false;
        if t.ends_with("::") {
            let keep = t.trim_end_matches("::");
            b.text(if keep.is_empty() { "" } else { keep });
            if !keep.is_empty() && !keep.ends_with(' ') {
                b.text(":");
            }
            b.break_para();
            literal_next = true;
            i += 1;
            continue;
        }
        b.text(t);
        b.text(" ");
        i += 1;
    }
    let sections = b.finish();
    let title = sections.iter().find_map(|s| s.heading_path.first().cloned());
    ParsedDoc { title, sections, meta: Default::default() }
}

fn title(b: &mut SectionBuilder, styles: &mut Vec<(char, bool)>, label: &mut Option<String>, style: (char, bool), text: &str) {
    let level = match styles.iter().position(|s| *s == style) {
        Some(p) => p + 1,
        None => {
            styles.push(style);
            styles.len()
        }
    };
    let text = collapse_ws(text);
    let anchor = label.take().unwrap_or_else(|| docutils_id(&text));
    b.heading(level, &text, anchor);
}

/// Lines after `start` indented more than `base` (blank lines included), dedented.
fn indented_block(lines: &[&str], start: usize, base: usize) -> (Vec<String>, usize) {
    let mut end = start;
    while end < lines.len() && (lines[end].trim().is_empty() || indent(lines[end]) > base) {
        end += 1;
    }
    while end > start && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    let body = &lines[start..end];
    let min = body.iter().filter(|l| !l.trim().is_empty()).map(|l| indent(l)).min().unwrap_or(0);
    let out = body.iter().map(|l| if l.len() >= min { l[min..].to_owned() } else { String::new() }).collect();
    (out, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Block;

    #[test]
    fn titles_labels_literals_and_directives() {
        let src = "=======\nLogging\n=======\n\nIntro para\ncontinues.\n\n.. _basic-tutorial:\n\nBasic Tutorial\n--------------\n\nExample::\n\n    import logging\n    logging.warning('x')\n\n.. code-block:: python\n   :linenos:\n\n   print(1)\n\n.. note::\n\n   Be careful.\n\n.. a comment\n   that continues\n\nAdvanced Use\n------------\n\nText.\n";
        let d = parse(src);
        assert_eq!(d.title.as_deref(), Some("Logging"));
        let anchors: Vec<_> = d.sections.iter().map(|s| s.anchor.as_str()).collect();
        assert_eq!(anchors, ["logging", "basic-tutorial", "advanced-use"]);
        assert_eq!(d.sections[0].blocks, vec![Block::Text("Intro para continues.".into())]);
        let tut = &d.sections[1];
        assert_eq!(tut.heading_path, vec!["Logging", "Basic Tutorial"]);
        assert_eq!(tut.blocks[0], Block::Text("Example:".into()));
        assert_eq!(tut.blocks[1], Block::Code("import logging\nlogging.warning('x')".into()));
        assert_eq!(tut.blocks[2], Block::Code("print(1)".into()));
        assert!(tut.blocks.iter().any(|b| b.text().contains("Be careful.")));
        assert!(!tut.blocks.iter().any(|b| b.text().contains("comment")));
    }

}
