//! `aidocs-benchkit`: what the benchmarks share, so `cargo xtask bench` can collect them.
//!
//! Owns the [`Report`] every bench writes: tables whose first row is the baseline measured
//! in the same run (each table can add a ratio column against it), plus raw latency
//! samples for the histograms. With `AIDOCS_BENCH_REPORT=<dir>` a bench writes
//! `<dir>/<suite>.json` (atomically); it always prints its tables as Markdown. Also:
//! nearest-rank percentiles, and embedding-like synthetic vectors (topic centroids plus
//! noise, not uniform on the sphere) for the store-level benches.
//!
//! Must not know: any aidocs crate. It is a dev-dependency of benches and a dependency of
//! the xtask, never of a shipped binary.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Environment variable naming the directory reports are written to.
pub const REPORT_DIR_ENV: &str = "AIDOCS_BENCH_REPORT";

/// One bench suite's results.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// File stem and key, e.g. `store`.
    pub suite: String,
    pub title: String,
    /// What was measured and how (one paragraph each).
    pub notes: Vec<String>,
    pub tables: Vec<Table>,
    /// Raw samples (e.g. per-request latencies in ms) for histograms, by name.
    pub samples: BTreeMap<String, Sample>,
    /// Curves to plot (e.g. throughput against concurrency).
    #[serde(default)]
    pub lines: Vec<LinePlot>,
}

/// One line chart: named series of (x, y) points.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LinePlot {
    /// File stem of the figure.
    pub name: String,
    pub title: String,
    pub x: String,
    pub y: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// A latency sample as stored: at most [`SAMPLE_CAP`] evenly spaced quantiles of what was
/// measured (the histogram's shape without megabytes of JSON per run), and the count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    pub unit: String,
    /// Measurements taken (`values` may hold fewer).
    #[serde(default)]
    pub count: usize,
    pub values: Vec<f64>,
}

/// Values kept per stored sample.
pub const SAMPLE_CAP: usize = 2000;

impl Sample {
    /// Keep `cap` evenly spaced order statistics (min and max included) when there are more.
    pub fn new(unit: &str, mut values: Vec<f64>, cap: usize) -> Self {
        let count = values.len();
        values.sort_by(f64::total_cmp);
        if count > cap && cap >= 2 {
            values = (0..cap).map(|i| values[i * (count - 1) / (cap - 1)]).collect();
        }
        Self { unit: unit.into(), count, values }
    }
}

/// A table whose first row is the baseline.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<Column>,
    /// Adds a column `row[c] / baseline[c]` for this column index.
    pub ratio_of: Option<usize>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Column {
    pub name: String,
    /// Decimal places when printed.
    pub decimals: u8,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub label: String,
    /// One per column; `None` prints as a dash (not applicable).
    pub cells: Vec<Option<f64>>,
}

impl Report {
    pub fn new(suite: &str, title: &str) -> Self {
        Self { suite: suite.into(), title: title.into(), ..Default::default() }
    }

    pub fn note(&mut self, text: impl Into<String>) -> &mut Self {
        self.notes.push(text.into());
        self
    }

    pub fn table(&mut self, table: Table) -> &mut Self {
        self.tables.push(table);
        self
    }

    pub fn sample(&mut self, name: &str, unit: &str, values: Vec<f64>) -> &mut Self {
        self.samples.insert(name.into(), Sample::new(unit, values, SAMPLE_CAP));
        self
    }

    /// Print the Markdown to stdout and, when `AIDOCS_BENCH_REPORT` is set, write the JSON
    /// report there. Returns the path written.
    pub fn finish(&self) -> std::io::Result<Option<PathBuf>> {
        println!("{}", self.to_markdown(3));
        match std::env::var_os(REPORT_DIR_ENV) {
            Some(dir) => self.write_to(Path::new(&dir)).map(Some),
            None => Ok(None),
        }
    }

    /// Write `<dir>/<suite>.json` atomically (temporary file, then rename).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.json", self.suite));
        let tmp = dir.join(format!(".{}.json.tmp", self.suite));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Title as a heading of `level`, notes, then each table with its title in bold.
    pub fn to_markdown(&self, level: usize) -> String {
        let mut out = format!("{} {}\n\n", "#".repeat(level), self.title);
        for n in &self.notes {
            let _ = writeln!(out, "{n}\n");
        }
        for t in &self.tables {
            out.push_str(&t.to_markdown());
            out.push('\n');
        }
        out
    }
}

impl Table {
    /// `columns`: (name, decimals). The first row added is the baseline.
    pub fn new(title: &str, columns: &[(&str, u8)]) -> Self {
        Self {
            title: title.into(),
            columns: columns.iter().map(|(n, d)| Column { name: (*n).into(), decimals: *d }).collect(),
            ratio_of: None,
            rows: Vec::new(),
        }
    }

    /// Add a ratio column: each row's value in column `column` over the baseline's.
    pub fn ratio_of(mut self, column: usize) -> Self {
        assert!(column < self.columns.len(), "ratio column {column} out of range");
        self.ratio_of = Some(column);
        self
    }

    /// Add a row; panics when the cell count differs from the column count (a bench bug).
    pub fn row(&mut self, label: impl Into<String>, cells: &[Option<f64>]) -> &mut Self {
        let label = label.into();
        assert_eq!(cells.len(), self.columns.len(), "row `{label}` of table `{}`", self.title);
        self.rows.push(Row { label, cells: cells.to_vec() });
        self
    }

    /// `row` with every cell present.
    pub fn values(&mut self, label: impl Into<String>, cells: &[f64]) -> &mut Self {
        let cells: Vec<Option<f64>> = cells.iter().copied().map(Some).collect();
        self.row(label, &cells)
    }

    /// `row[c] / baseline[c]`, when both exist and the baseline is not zero.
    pub fn ratio(&self, row: usize, column: usize) -> Option<f64> {
        let base = self.rows.first()?.cells.get(column).copied().flatten()?;
        let v = self.rows.get(row)?.cells.get(column).copied().flatten()?;
        (base != 0.0).then(|| v / base)
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        if !self.title.is_empty() {
            let _ = writeln!(out, "**{}**\n", self.title);
        }
        let ratio_name = self.ratio_of.map(|c| format!("{} ÷ baseline", self.columns[c].name));
        let header: Vec<&str> =
            std::iter::once("").chain(self.columns.iter().map(|c| c.name.as_str())).chain(ratio_name.as_deref()).collect();
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
        for (i, r) in self.rows.iter().enumerate() {
            let mut cells: Vec<String> = vec![if i == 0 { format!("{} (baseline)", r.label) } else { r.label.clone() }];
            cells.extend(r.cells.iter().zip(&self.columns).map(|(v, c)| fmt_num(*v, c.decimals)));
            if let Some(c) = self.ratio_of {
                // Small ratios keep three significant digits (0.000712, not 0.00).
                let r = self.ratio(i, c);
                let decimals = r.filter(|r| r.abs() < 0.1 && *r != 0.0).map_or(2, |r| (2.0 - r.abs().log10().floor()) as u8);
                cells.push(fmt_num(r, decimals));
            }
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }
}

/// A number with `decimals` places and thousands separators; `None` as a dash.
pub fn fmt_num(v: Option<f64>, decimals: u8) -> String {
    let Some(v) = v else { return "—".into() };
    if !v.is_finite() {
        return "—".into();
    }
    let s = format!("{:.*}", decimals as usize, v.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if v < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') { "-" } else { "" };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Nearest-rank percentile `p` (0-100) of `values` (any order); `NaN` when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (p / 100.0 * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Milliseconds each of `n` calls of `f(i)` took.
pub fn time_ms(n: usize, mut f: impl FnMut(usize)) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

/// Points per benchmark from `AIDOCS_BENCH_POINTS`, default `default`.
pub fn bench_points(default: usize) -> usize {
    std::env::var("AIDOCS_BENCH_POINTS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

pub fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

pub fn random_unit(rng: &mut StdRng, dims: usize) -> Vec<f32> {
    unit((0..dims).map(|_| rng.random::<f32>() - 0.5).collect())
}

/// Embedding-like vectors: sentence embeddings cluster by topic, they are not uniform on
/// the sphere. A sample is a random topic centroid plus uniform noise of width `noise`.
pub struct Topics {
    centroids: Vec<Vec<f32>>,
    noise: f32,
}

impl Topics {
    pub fn new(rng: &mut StdRng, topics: usize, dims: usize) -> Self {
        Self { centroids: (0..topics).map(|_| random_unit(rng, dims)).collect(), noise: 0.08 }
    }

    pub fn sample(&self, rng: &mut StdRng) -> Vec<f32> {
        let c = &self.centroids[rng.random_range(0..self.centroids.len())];
        unit(c.iter().map(|x| x + self.noise * (rng.random::<f32>() - 0.5)).collect())
    }
}

/// A sparse vector of up to `terms` distinct indices below `vocab`, weights in 0.2..2.
pub fn sparse_terms(rng: &mut StdRng, terms: usize, vocab: u32) -> (Vec<u32>, Vec<f32>) {
    let mut idx: Vec<u32> = (0..terms).map(|_| rng.random_range(0..vocab)).collect();
    idx.sort_unstable();
    idx.dedup();
    let values = idx.iter().map(|_| rng.random_range(0.2..2.0)).collect();
    (idx, values)
}

pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The ~60-token sentences of documentation prose every embedding bench uses (the Rust
/// engines and the onnxruntime-python baseline get the same text).
pub fn embed_sentences(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "Section {i}: the asynchronous runtime schedules tasks cooperatively, so a task that blocks the \
                 thread for a long time, for example by reading a large file synchronously or running a tight \
                 computation loop, delays every other task on that worker until it yields back to the scheduler."
            )
        })
        .collect()
}

/// The single query every embedding bench times.
pub const EMBED_QUERY: &str = "how do I create a virtual environment";

/// Top-`k` ids of `query` among `vectors` by dot product (cosine for unit vectors), exact:
/// the brute-force baseline and the ground truth for recall.
pub fn exact_top_k(vectors: &[Vec<f32>], query: &[f32], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> =
        vectors.iter().enumerate().map(|(i, v)| (v.iter().zip(query).map(|(a, b)| a * b).sum(), i)).collect();
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(k);
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Bytes of the files under `dir`, recursively (a store's size on disk).
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Share of `truth` found in `got`.
pub fn recall(truth: &[usize], got: &[usize]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    truth.iter().filter(|t| got.contains(t)).count() as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn table_markdown_has_baseline_and_ratio() {
        let mut t = Table::new("latency", &[("p50 ms", 2), ("p95 ms", 2)]).ratio_of(1);
        t.values("exact", &[10.0, 20.0]).row("hnsw", &[Some(1.0), Some(5.0)]).row("n/a", &[None, None]).values("hit", &[0.01, 0.0142]);
        let md = t.to_markdown();
        assert!(md.contains("|  | p50 ms | p95 ms | p95 ms ÷ baseline |"), "{md}");
        assert!(md.contains("| exact (baseline) | 10.00 | 20.00 | 1.00 |"), "{md}");
        assert!(md.contains("| hnsw | 1.00 | 5.00 | 0.25 |"), "{md}");
        assert!(md.contains("| n/a | — | — | — |"), "{md}");
        assert!(md.contains("| hit | 0.01 | 0.01 | 0.000710 |"), "{md}");
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(fmt_num(Some(1234567.891), 1), "1,234,567.9");
        assert_eq!(fmt_num(Some(-1234.0), 0), "-1,234");
        assert_eq!(fmt_num(Some(0.5), 0), "0");
        assert_eq!(fmt_num(Some(999.0), 0), "999");
        assert_eq!(fmt_num(None, 2), "—");
    }

    #[test]
    fn report_round_trips_through_json_atomically() {
        let dir = std::env::temp_dir().join(format!("benchkit-{}", std::process::id()));
        let mut r = Report::new("store", "Store");
        r.note("n").sample("lat", "ms", vec![1.0, 2.0]);
        let mut t = Table::new("t", &[("a", 0)]);
        t.values("x", &[1.0]);
        r.table(t);
        let path = r.write_to(&dir).unwrap();
        let back: Report = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, r);
        assert!(!dir.join(".store.json.tmp").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn samples_keep_evenly_spaced_order_statistics() {
        let s = Sample::new("ms", (0..10_001).rev().map(f64::from).collect(), 101);
        assert_eq!((s.count, s.values.len()), (10_001, 101));
        assert_eq!((s.values[0], s.values[50], s.values[100]), (0.0, 5000.0, 10_000.0));
        let small = Sample::new("ms", vec![3.0, 1.0], 101);
        assert_eq!((small.count, small.values), (2, vec![1.0, 3.0]));
    }

    #[test]
    fn exact_top_k_orders_by_score_then_index() {
        let v = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.6, 0.8], vec![1.0, 0.0]];
        assert_eq!(exact_top_k(&v, &[1.0, 0.0], 3), vec![0, 3, 2]);
        assert_eq!(recall(&[0, 3, 2], &[3, 9, 0]), 2.0 / 3.0);
    }
}
