//! BM25 sparse vectors, document side only: Qdrant applies IDF (`Modifier::Idf`) at query time.
//!
//! Tokenizer (documented contract, changing it requires re-indexing):
//! 1. Unicode word segmentation (UAX #29, `unicode-segmentation`), lowercased;
//!    identifiers keep `_` (`snake_case` stays one token) and are also split on `_`, `.`, `::`.
//! 2. English stop words removed (the Lucene/Anserini list of 33 words).
//! 3. Snowball English (Porter2) stemming.
//! 4. Token id = FNV-1a 32-bit hash of the stemmed token.
//!
//! Document weight of term t: `tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`.
//! Query weight: 1 per distinct term, so the score is `sum idf(t) * w(t, d)`, i.e. BM25.

use aidocs_core::{SparseEncoder, SparseVector};
use rust_stemmers::{Algorithm, Stemmer};
use std::collections::BTreeMap;
use unicode_segmentation::UnicodeSegmentation;

/// BM25 parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bm25Config {
    pub k1: f32,
    pub b: f32,
    /// Average document length in tokens (a corpus statistic fixed at index time).
    pub avg_doc_len: f32,
}

impl Default for Bm25Config {
    fn default() -> Self {
        Self { k1: 1.2, b: 0.75, avg_doc_len: 128.0 }
    }
}

/// Lucene's English stop-word set (as used by Anserini's BM25 baselines).
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// The BM25 encoder. Stateless apart from its parameters.
pub struct Bm25Encoder {
    cfg: Bm25Config,
    stemmer: Stemmer,
}

impl std::fmt::Debug for Bm25Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bm25Encoder").field("cfg", &self.cfg).finish()
    }
}

impl Default for Bm25Encoder {
    fn default() -> Self {
        Self::new(Bm25Config::default())
    }
}

fn fnv1a(s: &str) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

impl Bm25Encoder {
    pub fn new(cfg: Bm25Config) -> Self {
        Self { cfg, stemmer: Stemmer::create(Algorithm::English) }
    }

    pub fn config(&self) -> Bm25Config {
        self.cfg
    }

    /// The analysed tokens of `text` (after lowercasing, stop words and stemming).
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let lower = text.to_lowercase();
        let mut push = |w: &str| {
            if w.is_empty() || STOP_WORDS.contains(&w) {
                return;
            }
            out.push(self.stemmer.stem(w).into_owned());
        };
        for word in lower.unicode_words() {
            let parts: Vec<&str> = word
                .split(['_', '.', ':'])
                .filter(|p| !p.is_empty())
                .collect();
            if parts.len() > 1 {
                // Keep the compound identifier and its parts.
                push(word);
                for p in parts {
                    push(p);
                }
            } else {
                push(word);
            }
        }
        out
    }

    fn term_freqs(&self, text: &str) -> (BTreeMap<u32, f32>, usize) {
        let tokens = self.tokens(text);
        let mut tf: BTreeMap<u32, f32> = BTreeMap::new();
        for t in &tokens {
            *tf.entry(fnv1a(t)).or_default() += 1.0;
        }
        (tf, tokens.len())
    }
}

impl SparseEncoder for Bm25Encoder {
    fn encode_doc(&self, text: &str) -> SparseVector {
        let (tf, dl) = self.term_freqs(text);
        let Bm25Config { k1, b, avg_doc_len } = self.cfg;
        let norm = k1 * (1.0 - b + b * dl as f32 / avg_doc_len.max(1.0));
        let (indices, values) = tf
            .into_iter()
            .map(|(i, f)| (i, f * (k1 + 1.0) / (f + norm)))
            .unzip();
        SparseVector { indices, values }
    }

    fn encode_query(&self, text: &str) -> SparseVector {
        let (tf, _) = self.term_freqs(text);
        let (indices, values) = tf.into_keys().map(|i| (i, 1.0)).unzip();
        SparseVector { indices, values }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_lowercases_stems_and_drops_stop_words() {
        let enc = Bm25Encoder::default();
        assert_eq!(enc.tokens("The Running of the Dogs"), vec!["run", "dog"]);
        assert_eq!(enc.tokens("call os.path_join now"), vec!["call", "os.path_join", "os", "path", "join", "now"]);
    }

    #[test]
    fn doc_vector_is_sorted_unique_positive_and_saturates() {
        let enc = Bm25Encoder::default();
        let v = enc.encode_doc("cache cache cache cache miss");
        assert!(v.indices.windows(2).all(|w| w[0] < w[1]));
        assert!(v.values.iter().all(|&x| x > 0.0));
        let cache = v.indices.iter().position(|&i| i == fnv1a("cach")).unwrap();
        let miss = v.indices.iter().position(|&i| i == fnv1a("miss")).unwrap();
        assert!(v.values[cache] > v.values[miss]);
        assert!(v.values[cache] < 1.2 + 1.0, "tf saturates below k1 + 1");
    }

    #[test]
    fn longer_documents_get_lower_weights() {
        let enc = Bm25Encoder::default();
        let short = enc.encode_doc("tokio runtime");
        let long = enc.encode_doc(&format!("tokio runtime {}", "filler words here ".repeat(100)));
        let id = fnv1a("tokio");
        let w = |v: &SparseVector| v.values[v.indices.iter().position(|&i| i == id).unwrap()];
        assert!(w(&short) > w(&long));
    }

    #[test]
    fn query_weights_are_one_per_distinct_term() {
        let enc = Bm25Encoder::default();
        let q = enc.encode_query("async async runtime");
        assert_eq!(q.values, vec![1.0, 1.0]);
        assert!(enc.encode_query("the of and").is_empty());
    }
}
