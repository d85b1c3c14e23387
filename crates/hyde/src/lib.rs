//! `aidocs-hyde`: HyDE query expansion (Gao et al. 2022, "Precise Zero-Shot Dense Retrieval
//! without Relevance Labels").
//!
//! Owns: the prompt templates per question type ([`QueryKind`]), the expansion step
//! ([`Hyde::expand`]: an LLM writes N hypothetical passages for a query), the combination of
//! the query and passage embeddings ([`combine`]), and [`OpenAiGenerator`], a [`Generator`]
//! over any OpenAI-compatible chat-completions endpoint (OpenAI, llama.cpp's server, vLLM).
//!
//! Must not know: the embedder, the store or HTTP serving; the composition crate embeds the
//! passages and runs the search.

mod openai;

pub use openai::{OpenAiGenerator, OpenAiGeneratorConfig};

use aidocs_core::{CoreError, Generator};
use std::sync::Arc;
use std::time::Duration;

/// Version of the prompt templates below; part of HyDE cache keys. Bump on any edit.
pub const PROMPT_VERSION: u32 = 1;

/// The kind of question, which picks the prompt template (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    General,
    /// Mentions code: identifiers with `()`, `::`, `.`, `_`, backticks, or code keywords.
    Code,
    /// Asks what a function, class, parameter or option is or does.
    ApiReference,
    /// Asks how to do something.
    Tutorial,
}

impl QueryKind {
    /// Classify by surface cues; cheap and deterministic.
    pub fn classify(query: &str) -> Self {
        let q = query.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| q.split(|c: char| !c.is_alphanumeric()).any(|t| t == *w));
        let codey = query.contains('`')
            || query.contains("()")
            || query.contains("::")
            || query.split_whitespace().any(|t| {
                let t = t.trim_matches(|c: char| !c.is_alphanumeric() && c != '_' && c != '.');
                (t.contains('_') || (t.contains('.') && !t.ends_with('.'))) && t.chars().any(char::is_alphabetic)
            })
            || has(&["def", "fn", "impl", "import", "async", "await", "lambda", "struct", "const"]);
        if codey {
            Self::Code
        } else if has(&["function", "method", "class", "parameter", "parameters", "argument", "arguments", "returns", "option", "flag", "attribute", "api", "signature"]) {
            Self::ApiReference
        } else if q.starts_with("how") || has(&["tutorial", "example", "steps", "guide", "setup", "install", "configure"]) {
            Self::Tutorial
        } else {
            Self::General
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::General => "general",
            Self::Code => "code",
            Self::ApiReference => "api_reference",
            Self::Tutorial => "tutorial",
        }
    }

    /// (system, user) prompts for `query`.
    pub fn prompt(self, query: &str) -> (String, String) {
        let system = "You write short passages of technical documentation. Answer with the passage only, \
                      no preamble, no questions back.";
        let user = match self {
            Self::General => format!("Write a documentation passage that answers the question.\nQuestion: {query}\nPassage:"),
            Self::Code => format!(
                "Write a documentation passage with a short code example that answers the question.\nQuestion: {query}\nPassage:"
            ),
            Self::ApiReference => format!(
                "Write the API reference entry (signature, parameters, return value, one sentence of behaviour) that answers the question.\nQuestion: {query}\nReference entry:"
            ),
            Self::Tutorial => {
                format!("Write a tutorial step, with the commands or code to run, that answers the question.\nQuestion: {query}\nTutorial step:")
            }
        };
        (system.to_owned(), user)
    }
}

/// HyDE settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HydeConfig {
    /// Hypothetical passages per query.
    pub n: usize,
    /// Weight of the real query's embedding in the combination (0..=1); the passages share
    /// the rest equally.
    pub query_weight: f32,
    /// Deadline for the whole generation step.
    pub timeout: Duration,
}

/// The result of an expansion.
#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    pub kind: QueryKind,
    pub passages: Vec<String>,
}

/// Query expansion over a [`Generator`].
#[derive(Clone)]
pub struct Hyde {
    generator: Arc<dyn Generator>,
    cfg: HydeConfig,
}

impl std::fmt::Debug for Hyde {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hyde").field("model", &self.generator.model_id()).field("cfg", &self.cfg).finish()
    }
}

impl Hyde {
    pub fn new(generator: Arc<dyn Generator>, cfg: HydeConfig) -> Self {
        Self { generator, cfg }
    }

    pub fn config(&self) -> &HydeConfig {
        &self.cfg
    }

    pub fn generator(&self) -> &Arc<dyn Generator> {
        &self.generator
    }

    /// Ask the generator for `n` hypothetical passages within the timeout. Errors (including
    /// the timeout and an all-empty answer) are for the caller to turn into a fallback.
    pub async fn expand(&self, query: &str) -> Result<Expansion, CoreError> {
        let kind = QueryKind::classify(query);
        let (system, user) = kind.prompt(query);
        let ms = self.cfg.timeout.as_millis() as u64;
        let passages = tokio::time::timeout(self.cfg.timeout, self.generator.generate(&system, &user, self.cfg.n.max(1)))
            .await
            .map_err(|_| CoreError::Timeout { what: "HyDE generation", ms })??;
        let passages: Vec<String> = passages.into_iter().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect();
        if passages.is_empty() {
            return Err(CoreError::Generation("generator returned only empty passages".into()));
        }
        Ok(Expansion { kind, passages })
    }
}

/// `normalize(w * query + (1 - w) * mean(passages))`. With no passages, the query vector.
/// All vectors must have the same length.
pub fn combine(query: &[f32], passages: &[Vec<f32>], query_weight: f32) -> Vec<f32> {
    if passages.is_empty() {
        return query.to_vec();
    }
    let w = query_weight.clamp(0.0, 1.0);
    let pw = (1.0 - w) / passages.len() as f32;
    let mut v: Vec<f32> = query.iter().map(|x| x * w).collect();
    for p in passages {
        for (a, b) in v.iter_mut().zip(p) {
            *a += pw * b;
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_cues() {
        assert_eq!(QueryKind::classify("what does os.path.join return"), QueryKind::Code);
        assert_eq!(QueryKind::classify("call `collect()` on an iterator"), QueryKind::Code);
        assert_eq!(QueryKind::classify("which parameters does the open function take"), QueryKind::ApiReference);
        assert_eq!(QueryKind::classify("how do I create a virtual environment"), QueryKind::Tutorial);
        assert_eq!(QueryKind::classify("vitamin D and bone density"), QueryKind::General);
        assert_eq!(QueryKind::classify("Sentences end with a period."), QueryKind::General);
    }

    #[test]
    fn prompts_carry_the_query() {
        for kind in [QueryKind::General, QueryKind::Code, QueryKind::ApiReference, QueryKind::Tutorial] {
            let (_, user) = kind.prompt("QUERY-X");
            assert!(user.contains("QUERY-X"), "{kind:?}");
        }
    }

    #[test]
    fn combine_weights_and_normalizes() {
        let q = vec![1.0, 0.0];
        let p = vec![vec![0.0, 1.0], vec![0.0, 1.0]];
        let v = combine(&q, &p, 0.5);
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!((v[0] - s).abs() < 1e-6 && (v[1] - s).abs() < 1e-6, "{v:?}");
        assert_eq!(combine(&q, &p, 1.0), vec![1.0, 0.0]);
        assert_eq!(combine(&q, &[], 0.3), q);
        // Weight 0: passages only, averaged.
        let v = combine(&q, &[vec![0.0, 1.0], vec![0.0, -1.0], vec![1.0, 0.0]], 0.0);
        assert!((v[0] - 1.0).abs() < 1e-6 && v[1].abs() < 1e-6, "{v:?}");
    }
}
