//! Index and search settings shared by both backends: how a collection's dense index is
//! built (HNSW, quantization, optimizer thresholds) and how each dense search walks it. The
//! embedded store ignores the cluster fields (`shard_number`, `replication_factor`,
//! `write_consistency_factor`); the Qdrant backend sends them all.

/// How collections are created: vector storage, HNSW, quantization, optimizer, cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionParams {
    pub on_disk_vectors: bool,
    pub hnsw_m: u64,
    pub hnsw_ef_construct: u64,
    /// Below this many KB of vectors a segment is searched exactly.
    pub full_scan_threshold: u64,
    /// int8 scalar quantization; `None` = off.
    pub quantization: Option<ScalarQuantization>,
    /// KB of vectors above which a segment gets its HNSW index (and quantized vectors).
    pub indexing_threshold: Option<u64>,
    pub default_segment_number: Option<u64>,
    pub shard_number: Option<u32>,
    pub replication_factor: Option<u32>,
    pub write_consistency_factor: Option<u32>,
}

impl Default for CollectionParams {
    fn default() -> Self {
        Self {
            on_disk_vectors: false,
            hnsw_m: 16,
            hnsw_ef_construct: 100,
            full_scan_threshold: 10_000,
            quantization: Some(ScalarQuantization::default()),
            indexing_threshold: None,
            default_segment_number: None,
            shard_number: None,
            replication_factor: None,
            write_consistency_factor: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalarQuantization {
    pub quantile: f32,
    pub always_ram: bool,
}

impl Default for ScalarQuantization {
    fn default() -> Self {
        Self { quantile: 0.99, always_ram: true }
    }
}

/// Query-time settings of each dense search (or dense prefetch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchParams {
    pub hnsw_ef: Option<u64>,
    /// Re-score quantized candidates with the original vectors.
    pub rescore: bool,
    pub oversampling: f64,
    /// Skip the index: score every vector (a quality audit or a baseline, never fast).
    pub exact: bool,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self { hnsw_ef: Some(128), rescore: true, oversampling: 2.0, exact: false }
    }
}

