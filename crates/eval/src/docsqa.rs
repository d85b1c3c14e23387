//! The docs-QA layout: questions a developer asks of real documentation trees, each answered
//! by one section (`page#anchor`), measured through the whole pipeline: the trees are
//! ingested as an operator would (HTML parsed, cut at sections, both vectors), and every
//! question is searched as a client would.
//!
//! A docs-QA dataset is a directory with
//! - `dataset.json`: `{"name", "trees": [{"name", "package", "root", "dirs"?, "metadata"?}]}`.
//!   Each tree is a directory a Debian package installs (`root`), optionally only some of its
//!   subdirectories (`dirs`), ingested with `metadata` into one collection; a hit's key is
//!   `<tree>/<path under root>#<anchor>`.
//! - `questions.jsonl`: `{"id", "split": "dev"|"test", "kind", "query", "answers": [key, ...],
//!   "filter"?: {"field": "value"}}`; `answers` lists the answering section first, then any
//!   that answer as well.
//!
//! Metrics per question, over the top 10 hits: section hit@1/5/10 (an answering section at or
//! above that rank), MRR@10 (1 / rank of the first answering section), page hit@10 (a hit on
//! an answering page), and how many distinct sections and pages the ten hits hold.

use crate::EvalMode;
use crate::metrics::percentile;
use aidocs::core::DocMetadata;
use aidocs::progress::NoProgress;
use aidocs::{Engine, Error, IngestRequest, Result, SearchRequest};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The site every tree's pages are given, so a hit's URL names its tree and page.
const BASE: &str = "https://docsqa.invalid/";

/// Hits scored per question.
const K: usize = 10;

/// `dataset.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub trees: Vec<Tree>,
}

/// One documentation tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    /// The first part of every key into this tree (`django`).
    pub name: String,
    /// The Debian package that installs it (`python-django-doc`).
    pub package: String,
    /// Where the package puts it.
    pub root: PathBuf,
    /// Only these subdirectories of `root` (all of it when empty).
    #[serde(default)]
    pub dirs: Vec<String>,
    /// Only files with these extensions (`["html"]`: git-doc ships each page's AsciiDoc
    /// source beside it); all the pipeline reads when empty. Such a tree is staged: its
    /// matching files copied to a scratch directory, which is ingested.
    #[serde(default)]
    pub extensions: Vec<String>,
    #[serde(default)]
    pub metadata: DocMetadata,
}

/// Copy the files under `from` whose extension is one of `extensions` to `to`, keeping
/// their relative paths; links are not followed.
fn stage(from: &Path, to: &Path, extensions: &[String]) -> std::io::Result<usize> {
    let mut n = 0;
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for e in std::fs::read_dir(from.join(&rel))? {
            let e = e?;
            let (t, name) = (e.file_type()?, rel.join(e.file_name()));
            if t.is_dir() {
                todo.push(name);
            } else if t.is_file() && name.extension().is_some_and(|x| extensions.iter().any(|w| x.eq_ignore_ascii_case(w.as_str()))) {
                std::fs::create_dir_all(to.join(&name).parent().unwrap_or(to))?;
                std::fs::copy(e.path(), to.join(&name))?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Which half of the questions (closed set): tune on `dev`, report on `test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Dev,
    Test,
}

/// One line of `questions.jsonl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub split: Split,
    /// How the question is put: `paraphrase`, `api`, `error`, `howto`, `filter`.
    pub kind: String,
    pub query: String,
    /// `<tree>/<page>#<anchor>` keys; the first is the section the question was written from.
    pub answers: Vec<String>,
    #[serde(default)]
    pub filter: BTreeMap<String, String>,
}

/// A loaded docs-QA dataset.
#[derive(Debug, Clone)]
pub struct DocsQa {
    pub manifest: Manifest,
    pub questions: Vec<Question>,
}

impl DocsQa {
    /// Whether `dir` holds a docs-QA dataset (rather than a BEIR one).
    pub fn is_layout(dir: &Path) -> bool {
        dir.join("dataset.json").is_file() && dir.join("questions.jsonl").is_file()
    }

    /// Load and check a dataset: every answer names a tree of the manifest and a page and
    /// anchor, ids are unique, every question has an answer.
    pub fn load(dir: &Path) -> Result<Self> {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| Error::InvalidRequest(format!("{}: {e}", dir.join(name).display())));
        let manifest: Manifest = serde_json::from_str(&read("dataset.json")?).map_err(|e| Error::InvalidRequest(format!("dataset.json: {e}")))?;
        let trees: BTreeSet<&str> = manifest.trees.iter().map(|t| t.name.as_str()).collect();
        let mut questions = Vec::new();
        let mut ids = BTreeSet::new();
        for (n, line) in read("questions.jsonl")?.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let q: Question = serde_json::from_str(line).map_err(|e| Error::InvalidRequest(format!("questions.jsonl line {}: {e}", n + 1)))?;
            let bad = |why: String| Error::InvalidRequest(format!("questions.jsonl line {} ({}): {why}", n + 1, q.id));
            if !ids.insert(q.id.clone()) {
                return Err(bad("duplicate id".into()));
            }
            if q.answers.is_empty() || q.query.trim().is_empty() {
                return Err(bad("a question needs a query and an answer".into()));
            }
            for a in &q.answers {
                let (tree, rest) = a.split_once('/').ok_or_else(|| bad(format!("`{a}` is not tree/page#anchor")))?;
                if !trees.contains(tree) || !rest.contains('#') {
                    return Err(bad(format!("`{a}` is not tree/page#anchor with a tree of dataset.json")));
                }
            }
            questions.push(q);
        }
        Ok(Self { manifest, questions })
    }
}

/// Where a hit's URL points, as a dataset key (`<tree>/<page>#<anchor>`).
pub fn key_of(url: &str) -> String {
    url.strip_prefix(BASE).unwrap_or(url).to_owned()
}

fn page_of(key: &str) -> &str {
    key.split_once('#').map_or(key, |(p, _)| p)
}

/// One question's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QuestionMetrics {
    /// 1-based rank of the first answering section in the top 10.
    pub rank: Option<usize>,
    pub page_hit: bool,
    pub distinct_sections: usize,
    pub distinct_pages: usize,
}

/// Score one ranked list of keys against the answers.
pub fn score(ranked: &[String], answers: &[String]) -> QuestionMetrics {
    let top = &ranked[..ranked.len().min(K)];
    let pages: BTreeSet<&str> = answers.iter().map(|a| page_of(a)).collect();
    QuestionMetrics {
        rank: top.iter().position(|k| answers.contains(k)).map(|i| i + 1),
        page_hit: top.iter().any(|k| pages.contains(&page_of(k))),
        distinct_sections: top.iter().collect::<BTreeSet<_>>().len(),
        distinct_pages: top.iter().map(|k| page_of(k)).collect::<BTreeSet<_>>().len(),
    }
}

/// Mean figures over a set of questions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub questions: usize,
    pub section_hit_1: f64,
    pub section_hit_5: f64,
    pub section_hit_10: f64,
    pub mrr_10: f64,
    pub page_hit_10: f64,
    pub distinct_sections_10: f64,
    pub distinct_pages_10: f64,
}

pub fn summarize(per: &[QuestionMetrics]) -> Summary {
    let n = per.len().max(1) as f64;
    let share = |f: &dyn Fn(&QuestionMetrics) -> bool| per.iter().filter(|m| f(m)).count() as f64 / n;
    Summary {
        questions: per.len(),
        section_hit_1: share(&|m| m.rank == Some(1)),
        section_hit_5: share(&|m| m.rank.is_some_and(|r| r <= 5)),
        section_hit_10: share(&|m| m.rank.is_some()),
        mrr_10: per.iter().map(|m| m.rank.map_or(0.0, |r| 1.0 / r as f64)).sum::<f64>() / n,
        page_hit_10: share(&|m| m.page_hit),
        distinct_sections_10: per.iter().map(|m| m.distinct_sections as f64).sum::<f64>() / n,
        distinct_pages_10: per.iter().map(|m| m.distinct_pages as f64).sum::<f64>() / n,
    }
}

/// One row: a mode (and fusion) over the chosen questions, with a summary per kind.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub label: String,
    pub fusion: String,
    pub all: Summary,
    pub by_kind: BTreeMap<String, Summary>,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// The rows of one set of questions under one setting.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// `dev`, `test` or `all`.
    pub split: String,
    /// `section` or `none`.
    pub collapse: String,
    pub rows: Vec<Row>,
}

/// A docs-QA report: one index, a [`Run`] per (split, collapse) asked for.
#[derive(Debug, Clone, Serialize)]
pub struct DocsQaReport {
    pub dataset: String,
    pub trees: Vec<String>,
    pub pages: usize,
    pub chunks: usize,
    pub embedding_model: String,
    pub index_s: f64,
    pub runs: Vec<Run>,
}

impl DocsQaReport {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "**{}**: {} pages / {} chunks of {}; model `{}`; index built in {:.0} s\n\n",
            self.dataset,
            self.pages,
            self.chunks,
            self.trees.join(", "),
            self.embedding_model,
            self.index_s
        );
        for run in &self.runs {
            s.push_str(&run.markdown());
            s.push('\n');
        }
        s
    }
}

impl Run {
    pub fn markdown(&self) -> String {
        let mut s = format!("*{} half, collapse {}*: {} questions\n\n", self.split, self.collapse, self.rows.first().map_or(0, |r| r.all.questions));
        s.push_str("| mode | fusion | section hit@1 | hit@5 | hit@10 | MRR@10 | page hit@10 | distinct sections@10 | distinct pages@10 | p50 ms | p95 ms |\n");
        s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.rows {
            let a = &r.all;
            s.push_str(&format!(
                "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                r.label, r.fusion, a.section_hit_1, a.section_hit_5, a.section_hit_10, a.mrr_10, a.page_hit_10, a.distinct_sections_10, a.distinct_pages_10, r.p50_ms, r.p95_ms
            ));
        }
        if let Some(r) = self.rows.iter().find(|r| r.label == "hybrid") {
            s.push_str("\nHybrid by kind of question:\n\n| kind | questions | section hit@1 | hit@10 | MRR@10 | page hit@10 |\n|---|---:|---:|---:|---:|---:|\n");
            for (kind, k) in &r.by_kind {
                s.push_str(&format!("| {kind} | {} | {:.3} | {:.3} | {:.3} | {:.3} |\n", k.questions, k.section_hit_1, k.section_hit_10, k.mrr_10, k.page_hit_10));
            }
        }
        s
    }
}

/// Which questions a run asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Only(Split),
    All,
}

impl std::str::FromStr for Selection {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "dev" => Ok(Self::Only(Split::Dev)),
            "test" => Ok(Self::Only(Split::Test)),
            "all" => Ok(Self::All),
            other => Err(format!("unknown split `{other}` (expected dev, test or all)")),
        }
    }
}

impl Selection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Only(Split::Dev) => "dev",
            Self::Only(Split::Test) => "test",
            Self::All => "all",
        }
    }
}

/// Ingest the trees into a fresh collection; for each selection of questions (`splits`) and
/// each collapse setting (`collapses`; `None` is `search.collapse`), ask them in each row's
/// mode and score them. The collection is removed afterwards.
pub async fn run(engine: &Engine, ds: &DocsQa, opts: &crate::EvalOptions, splits: &[Selection], collapses: &[Option<aidocs::core::Collapse>], progress: &dyn crate::EvalProgress) -> Result<DocsQaReport> {
    let scratch_name = format!("docsqa-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let collection = opts.keep_collection.clone().unwrap_or(scratch_name);
    let t = Instant::now();
    let mut roots = Vec::new();
    for tree in &ds.manifest.trees {
        if tree.dirs.is_empty() {
            roots.push((tree, tree.root.clone(), String::new()));
        }
        for d in &tree.dirs {
            roots.push((tree, tree.root.join(d), format!("{d}/")));
        }
    }
    progress.stage("ingesting trees", roots.len());
    let mut pages = 0;
    let scratch = tempfile::tempdir().map_err(|e| Error::Internal(format!("scratch dir: {e}")))?;
    // A kept collection is staged at the same place each run, so its pages keep their ids.
    let staging = match &opts.keep_collection {
        Some(name) => engine.config().data_dir.join("docsqa-staging").join(name),
        None => scratch.path().to_path_buf(),
    };
    let mut dump = crate::Dump::create(opts.dump.as_deref())?;
    let result = async {
        for (i, (tree, path, sub)) in roots.iter().enumerate() {
            if !path.is_dir() {
                return Err(Error::InvalidRequest(format!("{}: missing; install the Debian package {}", path.display(), tree.package)));
            }
            let path = if tree.extensions.is_empty() {
                path.clone()
            } else {
                let staged = staging.join(i.to_string());
                let _ = std::fs::remove_dir_all(&staged);
                stage(path, &staged, &tree.extensions).map_err(|e| Error::Internal(format!("staging {}: {e}", path.display())))?;
                staged
            };
            let req = IngestRequest { path, collection: collection.clone(), metadata: tree.metadata.clone(), base_url: Some(format!("{BASE}{}/{sub}", tree.name)) };
            let report = engine.ingest().directory(req, &NoProgress).await?;
            pages += report.documents_written;
            progress.inc(1);
        }
        engine.collections().optimize(&collection).await?;
        let chunks = engine.collections().get(&collection).await?.points;
        let index_s = t.elapsed().as_secs_f64();
        let mut runs = Vec::new();
        for (split, collapse) in splits.iter().flat_map(|s| collapses.iter().map(move |c| (*s, *c))) {
            let questions: Vec<&Question> = ds
                .questions
                .iter()
                .filter(|q| match split {
                    Selection::All => true,
                    Selection::Only(s) => q.split == s,
                })
                .take(opts.max_queries.unwrap_or(usize::MAX))
                .collect();
            let collapse_label = collapse.unwrap_or(engine.config().search.collapse).as_str().to_owned();
            let rows = ask(engine, &collection, &questions, opts, collapse, (&mut dump, split.as_str(), &collapse_label), progress).await?;
            runs.push(Run { split: split.as_str().to_owned(), collapse: collapse_label, rows });
        }
        Ok((runs, chunks, index_s))
    }
    .await;
    // A scratch collection is removed after a failed run too.
    if opts.keep_collection.is_none() {
        let _ = engine.collections().delete(&collection).await;
    }
    let (runs, chunks, index_s) = result?;
    dump.finish()?;
    Ok(DocsQaReport {
        dataset: ds.manifest.name.clone(),
        trees: ds.manifest.trees.iter().map(|t| format!("{} ({})", t.name, t.package)).collect(),
        pages,
        chunks,
        embedding_model: engine.embedder().model_id().to_owned(),
        index_s,
        runs,
    })
}

/// Every row (mode, fusion) of one selection of questions. With a dump, one JSON line per
/// question and row: the question, its answers, the rank of the first answering section
/// (`null`: not in the top ten) and the ranked hits (key, score, heading path).
async fn ask(
    engine: &Engine,
    collection: &str,
    questions: &[&Question],
    opts: &crate::EvalOptions,
    collapse: Option<aidocs::core::Collapse>,
    (dump, split, collapse_label): (&mut crate::Dump, &str, &str),
    progress: &dyn crate::EvalProgress,
) -> Result<Vec<Row>> {
    let mut rows: Vec<(EvalMode, Option<aidocs::core::Fusion>)> = opts.modes.iter().map(|m| (*m, None)).collect();
    rows.extend(opts.fusions.iter().map(|f| (EvalMode::Hybrid, Some(*f))));
    let mut out = Vec::new();
    for (mode, fusion) in rows {
        let (eng, fusion_label) = crate::row_engine(engine, mode, fusion);
        progress.stage(&format!("{} {}", mode.as_str(), fusion_label), questions.len());
        let mut per = Vec::with_capacity(questions.len());
        let mut by_kind: BTreeMap<String, Vec<QuestionMetrics>> = BTreeMap::new();
        let mut took = Vec::new();
        for q in questions {
            let mut req = SearchRequest::new(q.query.clone());
            req.collection = Some(collection.to_owned());
            req.limit = Some(K);
            req.collapse = collapse;
            crate::set_mode(&mut req, mode);
            let pairs: Vec<String> = q.filter.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req.filter = aidocs::filters::from_pairs(&pairs)?;
            let resp = eng.search(req).await?;
            took.push(resp.took_ms);
            let ranked: Vec<String> = resp.hits.iter().map(|h| key_of(&h.url)).collect();
            let m = score(&ranked, &q.answers);
            if dump.is_on() {
                let hits: Vec<serde_json::Value> = resp
                    .hits
                    .iter()
                    .zip(&ranked)
                    .map(|(h, key)| serde_json::json!({"key": key, "score": h.score, "heading_path": h.heading_path}))
                    .collect();
                dump.line(&serde_json::json!({
                    "split": split, "collapse": collapse_label, "mode": mode.as_str(), "fusion": fusion_label,
                    "id": q.id, "kind": q.kind, "query": q.query, "answers": q.answers, "rank": m.rank, "hits": hits,
                }))?;
            }
            per.push(m);
            by_kind.entry(q.kind.clone()).or_default().push(m);
            progress.inc(1);
        }
        out.push(Row {
            label: mode.as_str().to_owned(),
            fusion: fusion_label,
            all: summarize(&per),
            by_kind: by_kind.iter().map(|(k, v)| (k.clone(), summarize(v))).collect(),
            p50_ms: percentile(&took, 50.0),
            p95_ms: percentile(&took, 95.0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_question_is_scored_by_its_first_answering_section() {
        let answers = keys(&["git/git-stash.html#_options", "git/git-stash.html#_examples"]);
        let ranked = keys(&["git/git-stash.html#_description", "git/git-worktree.html#_commands", "git/git-stash.html#_examples", "git/git-stash.html#_description"]);
        let m = score(&ranked, &answers);
        assert_eq!(m, QuestionMetrics { rank: Some(3), page_hit: true, distinct_sections: 3, distinct_pages: 2 });
        let miss = score(&keys(&["git/git-log.html#_options"]), &answers);
        assert_eq!((miss.rank, miss.page_hit), (None, false));
        let s = summarize(&[m, miss]);
        assert_eq!((s.section_hit_1, s.section_hit_5, s.section_hit_10, s.page_hit_10), (0.0, 0.5, 0.5, 0.5));
        assert!((s.mrr_10 - 1.0 / 6.0).abs() < 1e-9);
        // Only the top ten count.
        let mut long = keys(&["x/a.html#1"; 10]);
        long.push("git/git-stash.html#_options".into());
        assert_eq!(score(&long, &answers).rank, None);
    }

    #[test]
    fn the_shipped_dataset_loads_and_its_halves_are_balanced() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docsqa");
        let ds = DocsQa::load(&dir).unwrap();
        let dev = ds.questions.iter().filter(|q| q.split == Split::Dev).count();
        let test = ds.questions.len() - dev;
        assert!(ds.questions.len() >= 150, "{} questions", ds.questions.len());
        assert!(dev.abs_diff(test) <= ds.questions.len() / 10, "dev {dev}, test {test}");
        assert!(ds.questions.iter().any(|q| !q.filter.is_empty()), "some questions need a filter");
        assert_eq!(key_of("https://docsqa.invalid/git/git-stash.html#_options"), "git/git-stash.html#_options");
    }
}
