//! The cache key scheme (version `v1`). Every key starts with `v1:<kind>:`; bump the
//! version when the meaning of a key or the encoding of its value changes.
//!
//! | kind | key | value |
//! |---|---|---|
//! | embedding | `v1:emb:<provider>:<model id>:<dims>:<sha256(text)>` | little-endian f32 × dims |
//! | search | `v1:search:<resolved collection>:<sha256(pipeline version, normalized request)>` | JSON response |
//! | hyde | `v1:hyde:<generator model>:p<prompt version>:n<N>:<sha256(normalized query)>` | JSON list of passages |
//!
//! Search keys name the **resolved** collection, never the alias: after an alias switch the
//! same request hashes to a new key, so stale results are never served; an ingest into a
//! collection deletes `v1:search:<collection>:`.

use sha2::{Digest, Sha256};

pub const VERSION: &str = "v1";

/// What a cache entry holds (closed set); also the unit of TTLs, stats and `cache clear`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKind {
    Embedding,
    Search,
    Hyde,
}

impl CacheKind {
    pub const ALL: [CacheKind; 3] = [Self::Embedding, Self::Search, Self::Hyde];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embedding => "embedding",
            Self::Search => "search",
            Self::Hyde => "hyde",
        }
    }

    /// The prefix every key of this kind starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Embedding => "v1:emb:",
            Self::Search => "v1:search:",
            Self::Hyde => "v1:hyde:",
        }
    }
}

impl std::str::FromStr for CacheKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "embedding" | "embeddings" => Ok(Self::Embedding),
            "search" => Ok(Self::Search),
            "hyde" => Ok(Self::Hyde),
            other => Err(format!("unknown cache kind `{other}` (expected embedding, search or hyde)")),
        }
    }
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Whitespace collapsed and trimmed; case kept (it matters to embeddings and code).
pub fn normalize_query(q: &str) -> String {
    q.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn embedding(provider: &str, model: &str, dims: usize, text: &str) -> String {
    format!("v1:emb:{provider}:{model}:{dims}:{}", sha(text))
}

/// `request` is the canonical JSON of everything that shapes the answer (normalized query,
/// mode, filter, limit, hyde/rerank flags, fusion...); `pipeline` names code and model
/// versions.
pub fn search(collection: &str, pipeline: &str, request: &str) -> String {
    format!("v1:search:{collection}:{}", sha(&format!("{pipeline}\n{request}")))
}

/// Prefix of every search key of `collection`.
pub fn search_prefix(collection: &str) -> String {
    format!("v1:search:{collection}:")
}

pub fn hyde(generator_model: &str, prompt_version: u32, n: usize, query: &str) -> String {
    format!("v1:hyde:{generator_model}:p{prompt_version}:n{n}:{}", sha(&normalize_query(query)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_kind_prefix_and_inputs() {
        let e = embedding("local", "m", 384, "hello");
        assert!(e.starts_with(CacheKind::Embedding.prefix()) && e.contains(":m:384:"));
        assert_ne!(e, embedding("onnx", "m", 384, "hello"), "provider is part of the key");
        let s = search("docs-v2", "p1", "{\"q\":\"x\"}");
        assert!(s.starts_with(&search_prefix("docs-v2")));
        assert_ne!(s, search("docs-v3", "p1", "{\"q\":\"x\"}"), "collection is part of the key");
        assert_ne!(s, search("docs-v2", "p2", "{\"q\":\"x\"}"), "pipeline version is part of the key");
        assert_eq!(hyde("g", 1, 2, "a  b "), hyde("g", 1, 2, "a b"));
        assert_ne!(hyde("g", 1, 2, "a b"), hyde("g", 2, 2, "a b"));
        assert!(hyde("g", 1, 2, "q").starts_with(CacheKind::Hyde.prefix()));
        assert_eq!("embeddings".parse::<CacheKind>().unwrap(), CacheKind::Embedding);
        assert!("x".parse::<CacheKind>().is_err());
    }
}
