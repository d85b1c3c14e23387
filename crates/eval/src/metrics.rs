//! IR metrics with trec_eval / pytrec_eval definitions (what BEIR reports).
//!
//! - `ndcg_cut_k`: DCG = sum over ranks i = 1..k of `rel_i / log2(i + 1)` (linear gain, the
//!   qrels' graded score); IDCG is the same over the judged documents sorted by score.
//! - `recall_k`: relevant documents (score > 0) in the top k / all relevant documents.
//! - `recip_rank` cut at k (MRR@k): 1 / rank of the first relevant document in the top k.
//!
//! A query's run is its ranked list of document ids; as in BEIR, a result whose id equals
//! the query id is dropped before scoring. Means are over the queries that have qrels.

use std::collections::HashMap;

/// Relevance judgements: query id -> document id -> graded score.
pub type Qrels = HashMap<String, HashMap<String, i32>>;

/// The three per-query metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct QueryMetrics {
    pub ndcg_10: f64,
    pub recall_100: f64,
    pub mrr_10: f64,
}

/// nDCG@k of `ranked` against `judged` (doc -> score).
pub fn ndcg_at(ranked: &[&str], judged: &HashMap<String, i32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| judged.get(*d).copied().unwrap_or(0).max(0) as f64 / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<i32> = judged.values().copied().filter(|s| *s > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, s)| *s as f64 / ((i + 2) as f64).log2()).sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// Recall@k: share of the relevant documents found in the top k.
pub fn recall_at(ranked: &[&str], judged: &HashMap<String, i32>, k: usize) -> f64 {
    let relevant = judged.values().filter(|s| **s > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranked.iter().take(k).filter(|d| judged.get(**d).is_some_and(|s| *s > 0)).count();
    found as f64 / relevant as f64
}

/// Reciprocal rank of the first relevant document within the top k (0 if none).
pub fn mrr_at(ranked: &[&str], judged: &HashMap<String, i32>, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|d| judged.get(*d).is_some_and(|s| *s > 0))
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// All three metrics for one query; drops results equal to the query id first.
pub fn score_query(qid: &str, ranked: &[String], judged: &HashMap<String, i32>) -> QueryMetrics {
    let ranked: Vec<&str> = ranked.iter().map(String::as_str).filter(|d| *d != qid).collect();
    QueryMetrics {
        ndcg_10: ndcg_at(&ranked, judged, 10),
        recall_100: recall_at(&ranked, judged, 100),
        mrr_10: mrr_at(&ranked, judged, 10),
    }
}

/// Mean of per-query metrics.
pub fn mean(per_query: &[QueryMetrics]) -> QueryMetrics {
    let n = per_query.len().max(1) as f64;
    QueryMetrics {
        ndcg_10: per_query.iter().map(|m| m.ndcg_10).sum::<f64>() / n,
        recall_100: per_query.iter().map(|m| m.recall_100).sum::<f64>() / n,
        mrr_10: per_query.iter().map(|m| m.mrr_10).sum::<f64>() / n,
    }
}

/// The `p`-th percentile (0..=100) of `xs` by nearest rank; 0 for an empty slice.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(pairs: &[(&str, i32)]) -> HashMap<String, i32> {
        pairs.iter().map(|(d, s)| (d.to_string(), *s)).collect()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn ndcg_hand_computed() {
        // Relevant: a (2), b (1). Ranking: x, a, y, b.
        // DCG = 2/log2(3) + 1/log2(5) = 1.261859507 + 0.430676558 = 1.692536065
        // IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.630929754 = 2.630929754
        let j = judged(&[("a", 2), ("b", 1), ("z", 0)]);
        close(ndcg_at(&["x", "a", "y", "b"], &j, 10), 1.692536065 / 2.630929754);
        // Perfect ranking = 1; nothing relevant retrieved = 0.
        close(ndcg_at(&["a", "b", "x"], &j, 10), 1.0);
        close(ndcg_at(&["x", "y"], &j, 10), 0.0);
        // Cut at k: b at rank 4 does not count for k = 3.
        close(ndcg_at(&["x", "a", "y", "b"], &j, 3), (2.0 / 3f64.log2()) / 2.630929754);
        // A zero-score judgement is not relevant and not in the ideal ranking.
        close(ndcg_at(&["z", "a", "b"], &j, 10), (2.0 / 3f64.log2() + 1.0 / 2.0) / 2.630929754);
    }

    #[test]
    fn recall_and_mrr_hand_computed() {
        let j = judged(&[("a", 1), ("b", 1), ("c", 1), ("z", 0)]);
        close(recall_at(&["a", "x", "c"], &j, 100), 2.0 / 3.0);
        close(recall_at(&["a", "x", "c"], &j, 2), 1.0 / 3.0);
        close(mrr_at(&["z", "x", "c", "a"], &j, 10), 1.0 / 3.0);
        close(mrr_at(&["x", "y", "a"], &j, 2), 0.0);
    }

    #[test]
    fn query_id_is_dropped_and_means_average() {
        let j = judged(&[("d1", 1)]);
        // "q1" itself is removed, so d1 is at rank 1.
        let m = score_query("q1", &["q1".into(), "d1".into()], &j);
        close(m.ndcg_10, 1.0);
        close(m.mrr_10, 1.0);
        let avg = mean(&[m, QueryMetrics::default()]);
        close(avg.ndcg_10, 0.5);
        close(avg.recall_100, 0.5);
    }

    #[test]
    fn percentile_nearest_rank() {
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        close(percentile(&xs, 50.0), 10.0);
        close(percentile(&xs, 95.0), 19.0);
        close(percentile(&[3.0], 95.0), 3.0);
        close(percentile(&[], 50.0), 0.0);
    }
}
