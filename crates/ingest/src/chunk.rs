//! Section-aware, token-budgeted chunking with overlap.
//!
//! Rules: a chunk never spans two sections; each chunk's token count (as measured by the
//! embedding model's tokenizer, heading prefix included) stays within `max_tokens` unless a
//! single unsplittable piece is larger; code blocks are kept whole unless one alone exceeds
//! the budget (then it is split at line boundaries); prose is split at sentence boundaries
//! (then words); consecutive chunks of a section share up to `overlap_tokens` of prose.
//!
//! A section whose first chunk is longer than 1.5 x `lead_tokens` also gets a **lead**: one
//! short chunk of its first sentences (within `lead_tokens`), placed before its chunks. A
//! short question matches a short text better than a long one (the sentence-embedding model
//! was trained on short texts, and BM25 normalises by length), so the lead lets the heading
//! and opening of a long section compete. A lead is searched like any chunk and belongs to
//! its section; readers of whole sections skip its text (the section's chunks repeat it).

use crate::document::{Block, Section};
use aidocs_core::TokenCounter;
use unicode_segmentation::UnicodeSegmentation;

/// Chunking parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerConfig {
    pub max_tokens: usize,
    pub overlap_tokens: usize,
    /// Budget of a section's lead; 0 = no leads.
    pub lead_tokens: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self { max_tokens: 256, overlap_tokens: 32, lead_tokens: 128 }
    }
}

/// One chunk of one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Index of the section within the document.
    pub section: usize,
    pub heading_path: Vec<String>,
    pub anchor: String,
    pub text: String,
    /// Tokens of `text` (without the heading prefix).
    pub tokens: usize,
    /// The section's lead: its first sentences again, as a short chunk of their own.
    pub lead: bool,
}

impl Chunk {
    /// Text given to the encoders: heading path, then the chunk text.
    pub fn embedding_text(&self, title: &str) -> String {
        let head = if self.heading_path.is_empty() { title.to_owned() } else { self.heading_path.join(" > ") };
        if head.is_empty() { self.text.clone() } else { format!("{head}\n\n{}", self.text) }
    }
}

#[derive(Debug, Clone)]
struct Piece {
    text: String,
    tokens: usize,
    block: usize,
    code: bool,
}

/// The chunker. Holds a token counter for the embedding model.
pub struct Chunker<'a> {
    cfg: ChunkerConfig,
    counter: &'a dyn TokenCounter,
}

impl<'a> Chunker<'a> {
    pub fn new(cfg: ChunkerConfig, counter: &'a dyn TokenCounter) -> Self {
        Self { cfg, counter }
    }

    /// Chunk every section of a document, in order.
    pub fn chunk(&self, title: &str, sections: &[Section]) -> Vec<Chunk> {
        let mut out = Vec::new();
        for (i, s) in sections.iter().enumerate() {
            let head = if s.heading_path.is_empty() { title.to_owned() } else { s.heading_path.join(" > ") };
            let budget = self.cfg.max_tokens.saturating_sub(self.counter.count(&head) + 2).max(self.cfg.max_tokens / 4).max(8);
            let texts = self.chunk_blocks(&s.blocks, budget);
            let lead = self.cfg.lead_tokens;
            if lead > 0 && texts.first().is_some_and(|t| self.counter.count(t) > lead + lead / 2)
                && let Some(text) = self.first_chunk(&s.blocks, lead.min(budget)) {
                    let tokens = self.counter.count(&text);
                    out.push(Chunk { section: i, heading_path: s.heading_path.clone(), anchor: s.anchor.clone(), text, tokens, lead: true });
                }
            for text in texts {
                let tokens = self.counter.count(&text);
                out.push(Chunk { section: i, heading_path: s.heading_path.clone(), anchor: s.anchor.clone(), text, tokens, lead: false });
            }
        }
        out
    }

    fn pieces(&self, blocks: &[Block], budget: usize) -> Vec<Piece> {
        let mut pieces = Vec::new();
        for (bi, block) in blocks.iter().enumerate() {
            self.block_pieces(bi, block, budget, &mut pieces);
        }
        pieces
    }

    /// The first chunk `chunk_blocks` would make, splitting only the blocks it needs: the
    /// pieces up to the first one that no longer fits decide it, so a long section's lead
    /// costs its opening blocks, not a second pass over the whole section.
    fn first_chunk(&self, blocks: &[Block], budget: usize) -> Option<String> {
        let mut pieces = Vec::new();
        let mut seen = 0;
        for (bi, block) in blocks.iter().enumerate() {
            let from = pieces.len();
            self.block_pieces(bi, block, budget, &mut pieces);
            seen += pieces[from..].iter().map(|p| p.tokens).sum::<usize>();
            if seen > budget {
                break;
            }
        }
        self.pack_pieces(pieces, budget).into_iter().next()
    }

    fn block_pieces(&self, bi: usize, block: &Block, budget: usize, pieces: &mut Vec<Piece>) {
        match block {
            Block::Code(code) => self.push_within(pieces, code, bi, true, budget),
            Block::Text(text) => {
                for sentence in text.split_sentence_bounds() {
                    let s = sentence.trim();
                    if !s.is_empty() {
                        self.push_within(pieces, s, bi, false, budget);
                    }
                }
            }
        }
    }

    /// One piece of `text`, or, when it exceeds the budget, its runs of lines (code) or of
    /// words (prose) within it.
    fn push_within(&self, pieces: &mut Vec<Piece>, text: &str, bi: usize, code: bool, budget: usize) {
        let tokens = self.counter.count(text);
        if tokens <= budget {
            pieces.push(Piece { text: text.to_owned(), tokens, block: bi, code });
            return;
        }
        let parts = if code { self.split_lines(text, budget) } else { self.split_words(text, budget) };
        for part in parts {
            let tokens = self.counter.count(&part);
            pieces.push(Piece { text: part, tokens, block: bi, code });
        }
    }

    /// Greedy split into runs of lines within budget (an over-long line is split by words).
    fn split_lines(&self, code: &str, budget: usize) -> Vec<String> {
        self.pack(code.lines().map(str::to_owned), budget, "\n")
    }

    fn split_words(&self, text: &str, budget: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut cur_tokens = 0;
        for w in text.split_whitespace() {
            let t = self.counter.count(w).max(1);
            if cur_tokens + t > budget && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                cur_tokens = 0;
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(w);
            cur_tokens += t;
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    fn pack(&self, items: impl Iterator<Item = String>, budget: usize, sep: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut cur_tokens = 0;
        for item in items {
            let t = self.counter.count(&item);
            if t > budget {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    cur_tokens = 0;
                }
                out.extend(self.split_words(&item, budget));
                continue;
            }
            if cur_tokens + t > budget && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                cur_tokens = 0;
            }
            if !cur.is_empty() {
                cur.push_str(sep);
            }
            cur.push_str(&item);
            cur_tokens += t + 1;
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    fn chunk_blocks(&self, blocks: &[Block], budget: usize) -> Vec<String> {
        self.pack_pieces(self.pieces(blocks, budget), budget)
    }

    fn pack_pieces(&self, pieces: Vec<Piece>, budget: usize) -> Vec<String> {
        let mut chunks: Vec<Vec<Piece>> = Vec::new();
        let mut cur: Vec<Piece> = Vec::new();
        let mut cur_tokens = 0;
        for p in pieces {
            if cur_tokens + p.tokens > budget && !cur.is_empty() {
                // Overlap: trailing prose pieces of the finished chunk, within the overlap budget.
                let mut carry: Vec<Piece> = Vec::new();
                let mut carried = 0;
                for q in cur.iter().rev() {
                    if q.code || carried + q.tokens > self.cfg.overlap_tokens || carried + q.tokens + p.tokens > budget {
                        break;
                    }
                    carried += q.tokens;
                    carry.insert(0, q.clone());
                }
                chunks.push(std::mem::take(&mut cur));
                // Overlap alone never makes a chunk: only carry when new content follows.
                cur = carry;
                cur_tokens = carried;
            }
            cur_tokens += p.tokens;
            cur.push(p);
        }
        if !cur.is_empty() {
            chunks.push(cur);
        }
        chunks.into_iter().map(|c| join(&c)).collect()
    }
}

fn join(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            out.push_str(match (pieces[i - 1].block == p.block, p.code) {
                (true, true) => "\n", // parts of one split code block
                (true, false) => " ",  // sentences of one paragraph
                (false, _) => "\n\n",
            });
        }
        out.push_str(&p.text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per whitespace-separated word.
    struct Words;
    impl TokenCounter for Words {
        fn count(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    fn section(blocks: Vec<Block>) -> Section {
        Section { heading_path: vec!["Guide".into()], anchor: "guide".into(), blocks }
    }

    #[test]
    fn small_section_is_one_chunk() {
        let c = Chunker::new(ChunkerConfig { max_tokens: 50, overlap_tokens: 5, lead_tokens: 0 }, &Words);
        let chunks = c.chunk("T", &[section(vec![Block::Text("One. Two.".into()), Block::Code("x = 1\ny = 2".into())])]);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, "One. Two.\n\nx = 1\ny = 2");
        assert_eq!(chunks[0].anchor, "guide");
        assert_eq!(chunks[0].embedding_text("T"), "Guide\n\nOne. Two.\n\nx = 1\ny = 2");
    }

    #[test]
    fn respects_budget_with_overlap_and_keeps_code_whole() {
        let prose: String = (0..30).map(|i| format!("Sentence number {i} here. ")).collect();
        let code = (0..5).map(|i| format!("let v{i} = {i};")).collect::<Vec<_>>().join("\n");
        let cfg = ChunkerConfig { max_tokens: 30, overlap_tokens: 8, lead_tokens: 0 };
        let c = Chunker::new(cfg, &Words);
        let chunks = c.chunk("T", &[section(vec![Block::Text(prose), Block::Code(code.clone())])]);
        assert!(chunks.len() > 3);
        for ch in &chunks {
            assert!(Words.count(&ch.embedding_text("T")) <= 30, "over budget: {}", ch.text);
        }
        // Code block appears whole in exactly one chunk.
        assert_eq!(chunks.iter().filter(|c| c.text.contains(&code)).count(), 1);
        // Overlap: the last sentence of chunk 0 starts chunk 1.
        // Overlap: chunk 1 starts with the trailing sentences of chunk 0 (at most 8 tokens).
        let first_of_next = format!("{}.", chunks[1].text.split(". ").next().unwrap());
        let last_of_prev = chunks[0].text.rsplit(". ").next().unwrap();
        assert!(chunks[0].text.contains(&first_of_next), "{:?} / {:?}", chunks[0].text, chunks[1].text);
        assert!(chunks[1].text.contains(last_of_prev));
        let shared = chunks[0].text.len() - chunks[0].text.find(&first_of_next).unwrap();
        assert!(Words.count(&chunks[0].text[chunks[0].text.len() - shared..]) <= 8);
    }

    #[test]
    fn oversized_code_block_is_split_at_lines() {
        let code = (0..40).map(|i| format!("line {i} of code")).collect::<Vec<_>>().join("\n");
        let c = Chunker::new(ChunkerConfig { max_tokens: 30, overlap_tokens: 0, lead_tokens: 0 }, &Words);
        let chunks = c.chunk("T", &[section(vec![Block::Code(code.clone())])]);
        assert!(chunks.len() >= 6);
        let rejoined = chunks.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("\n");
        assert_eq!(rejoined, code, "no line lost or reordered");
        assert!(chunks.iter().all(|c| !c.text.starts_with('\n')));
    }

    #[test]
    fn sections_never_share_a_chunk() {
        let c = Chunker::new(ChunkerConfig::default(), &Words);
        let mut s2 = section(vec![Block::Text("Second.".into())]);
        s2.anchor = "two".into();
        let chunks = c.chunk("T", &[section(vec![Block::Text("First.".into())]), s2]);
        assert_eq!(chunks.iter().map(|c| (c.section, c.anchor.as_str())).collect::<Vec<_>>(), [(0, "guide"), (1, "two")]);
    }

    #[test]
    fn a_long_section_gets_a_lead_of_its_first_sentences_and_a_short_one_none() {
        let c = Chunker::new(ChunkerConfig { max_tokens: 40, overlap_tokens: 0, lead_tokens: 8 }, &Words);
        let long: String = (0..20).map(|i| format!("Sentence {i} is here. ")).collect();
        let mut short = section(vec![Block::Text("Only four words here.".into())]);
        short.anchor = "short".into();
        let chunks = c.chunk("T", &[section(vec![Block::Text(long.clone())]), short.clone()]);
        let leads: Vec<&Chunk> = chunks.iter().filter(|c| c.lead).collect();
        assert_eq!(leads.len(), 1, "only the section longer than 1.5 x 8 tokens: {chunks:?}");
        assert!(chunks[0].lead, "the lead comes first, before its section's chunks");
        assert_eq!((chunks[0].section, chunks[0].anchor.as_str()), (0, "guide"));
        assert_eq!(chunks[0].text, "Sentence 0 is here. Sentence 1 is here.");
        assert!(chunks[0].tokens <= 8);
        // The section's own chunks are the same as without leads, and still hold all of it.
        let plain = Chunker::new(ChunkerConfig { lead_tokens: 0, ..c.cfg }, &Words).chunk("T", &[section(vec![Block::Text(long)]), short]);
        let rest: Vec<&str> = chunks.iter().filter(|c| !c.lead).map(|c| c.text.as_str()).collect();
        assert_eq!(rest, plain.iter().map(|c| c.text.as_str()).collect::<Vec<_>>());
        assert!(plain.iter().all(|c| !c.lead));
    }

    #[test]
    fn the_lead_is_the_first_chunk_of_the_whole_section_whatever_its_blocks() {
        let c = Chunker::new(ChunkerConfig { max_tokens: 40, overlap_tokens: 4, lead_tokens: 12 }, &Words);
        // Paragraphs and code of every size around the budget: short ones that all fit,
        // one that ends exactly at it, code longer than it, a sentence longer than it.
        let para = |n: usize| Block::Text((0..n).map(|i| format!("Word{i} here now. ")).collect());
        let code = |n: usize| Block::Code((0..n).map(|i| format!("let x{i} = 1;")).collect::<Vec<_>>().join("\n"));
        let cases: Vec<Vec<Block>> = vec![
            vec![para(1), para(1), para(1), para(1), para(1)],
            vec![para(4), para(4)],
            vec![code(5), para(3)],
            vec![para(1), code(20), para(10)],
            vec![Block::Text((0..30).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")), para(2)],
            vec![para(2), Block::Text(String::new()), para(9)],
        ];
        for blocks in cases {
            let whole = c.chunk_blocks(&blocks, 12).into_iter().next();
            assert_eq!(c.first_chunk(&blocks, 12), whole, "{blocks:?}");
            // And the section holds far more than the lead: the lead did not read it all.
            let mut long = blocks.clone();
            long.extend((0..50).map(|_| para(5)));
            assert_eq!(c.first_chunk(&long, 12), c.chunk_blocks(&long, 12).into_iter().next());
        }
    }
}
