//! BEIR-layout datasets: `corpus.jsonl[.gz]`, `queries.jsonl`, `qrels-test.tsv` (or
//! `qrels/test.tsv`). Every malformed line is an error naming the file and line.

use super::metrics::Qrels;
use aidocs::{Error, Result};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One corpus document.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct CorpusDoc {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
}

/// One query.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Query {
    #[serde(rename = "_id")]
    pub id: String,
    pub text: String,
}

/// A loaded dataset: the test queries are those with qrels, in file order.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub corpus: Vec<CorpusDoc>,
    pub queries: Vec<Query>,
    pub qrels: Qrels,
    /// sha256 of the corpus file as read (decompressed), for cache keys and reports.
    pub corpus_sha256: String,
}

fn invalid(path: &Path, line: usize, what: impl std::fmt::Display) -> Error {
    Error::InvalidRequest(format!("{}:{line}: {what}", path.display()))
}

fn first_existing(dir: &Path, names: &[&str]) -> Result<PathBuf> {
    names
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::InvalidRequest(format!("{}: none of {} found (BEIR layout expected)", dir.display(), names.join(", "))))
}

fn read_all(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::InvalidRequest(format!("{}: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::InvalidRequest(format!("{}: not valid gzip: {e}", path.display())))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn jsonl<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (i, line) in BufReader::new(bytes).lines().enumerate() {
        let line = line.map_err(|e| invalid(path, i + 1, e))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| invalid(path, i + 1, e))?);
    }
    Ok(out)
}

impl Dataset {
    /// Load the dataset in `dir`; its name is the directory name.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::InvalidRequest(format!("dataset directory {} does not exist", dir.display())));
        }
        let corpus_path = first_existing(dir, &["corpus.jsonl.gz", "corpus.jsonl"])?;
        let corpus_bytes = read_all(&corpus_path)?;
        let corpus: Vec<CorpusDoc> = jsonl(&corpus_path, &corpus_bytes)?;
        let queries_path = first_existing(dir, &["queries.jsonl", "queries.jsonl.gz"])?;
        let all_queries: Vec<Query> = jsonl(&queries_path, &read_all(&queries_path)?)?;
        let qrels_path = first_existing(dir, &["qrels-test.tsv", "qrels/test.tsv"])?;
        let qrels = parse_qrels(&qrels_path, &String::from_utf8_lossy(&read_all(&qrels_path)?))?;
        let queries: Vec<Query> = all_queries.into_iter().filter(|q| qrels.contains_key(&q.id)).collect();
        if queries.is_empty() {
            return Err(Error::InvalidRequest(format!("{}: no query has qrels", dir.display())));
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dataset".into());
        Ok(Self { name, corpus, queries, qrels, corpus_sha256: aidocs_ingest::sha256_hex(&String::from_utf8_lossy(&corpus_bytes)) })
    }
}

/// `query-id<TAB>corpus-id<TAB>score` lines; a header line starting with `query-id` is skipped.
pub fn parse_qrels(path: &Path, text: &str) -> Result<Qrels> {
    let mut qrels: Qrels = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || (i == 0 && line.starts_with("query-id")) {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [q, d, s] = cols.as_slice() else {
            return Err(invalid(path, i + 1, "expected 3 tab-separated columns: query-id, corpus-id, score"));
        };
        let score: i32 = s.trim().parse().map_err(|_| invalid(path, i + 1, format!("score `{s}` is not an integer")))?;
        qrels.entry(q.to_string()).or_default().insert(d.to_string(), score);
    }
    Ok(qrels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qrels_parse_and_reject() {
        let q = parse_qrels(Path::new("q.tsv"), "query-id\tcorpus-id\tscore\n1\td1\t2\r\n1\td2\t0\n2\td3\t1\n").unwrap();
        assert_eq!(q["1"]["d1"], 2);
        assert_eq!(q["1"]["d2"], 0);
        assert_eq!(q.len(), 2);
        let e = parse_qrels(Path::new("q.tsv"), "1\td1\n").unwrap_err().to_string();
        assert!(e.contains("q.tsv:1") && e.contains("3 tab-separated"), "{e}");
        let e = parse_qrels(Path::new("q.tsv"), "1\td1\tx\n").unwrap_err().to_string();
        assert!(e.contains("score `x`"), "{e}");
    }

    #[test]
    fn loads_a_gzipped_beir_dir() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"_id\": \"d1\", \"title\": \"T\", \"text\": \"one\"}\n{\"_id\": \"d2\", \"text\": \"two\"}\n").unwrap();
        std::fs::write(dir.path().join("corpus.jsonl.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("queries.jsonl"), "{\"_id\": \"q1\", \"text\": \"one?\"}\n{\"_id\": \"q2\", \"text\": \"unjudged\"}\n").unwrap();
        std::fs::write(dir.path().join("qrels-test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t1\n").unwrap();
        let ds = Dataset::load(dir.path()).unwrap();
        assert_eq!(ds.corpus.len(), 2);
        assert_eq!(ds.corpus[1].title, "");
        assert_eq!(ds.queries.len(), 1, "only judged queries are test queries");
        std::fs::write(dir.path().join("queries.jsonl"), "{\"_id\": \"q1\"}\n").unwrap();
        let e = Dataset::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("queries.jsonl:1") && e.contains("text"), "{e}");
    }
}
