//! Warm-up at start, so the first search after a start costs about what the next ones do:
//! a few embeddings (the model's weights paged in, the runtime's first-run allocations) and
//! a few hybrid store queries per collection (segments, vector index and sparse index paged
//! in from disk), straight through the uncached embedder and the store: no cache entry, no
//! search metric. `aidocs-server` and `aidocs mcp` run it at start when `server.warm_up` is
//! on. Owns the warm-up; its state ([`crate::engine::WarmState`]) lives on the engine, and
//! readiness reads it (`warming` until it is done). Must not know HTTP.

use crate::engine::{Engine, WarmReport, WarmState, ms};
use aidocs_core::{Filter, SearchMode, StoreQuery};
use std::time::{Duration, Instant};

/// Texts the warm-up embeds and searches with: short and long, so the runtime has seen
/// batches of several shapes.
const TEXTS: [&str; 3] = [
    "install",
    "how do I configure the server and where does it keep its data",
    "error: connection refused when the client connects to the database over TLS after an upgrade; which setting changed and how do I read the log",
];

/// Collections warmed at most, aliased ones first: the warm-up stays short however many
/// collections a store holds.
pub const MAX_COLLECTIONS: usize = 16;

/// How long the warm-up at start may take: past it, it is given up and readiness stops
/// waiting for it (a remote embedder or store that hangs must not keep a replica out of
/// service).
pub const LIMIT: Duration = Duration::from_secs(60);

impl Engine {
    /// Warm the embedder and the store (see the module doc), for at most [`LIMIT`]. Never
    /// fails: what cannot be warmed is reported and logged, and the first search pays for it
    /// as it would have.
    pub async fn warm_up(&self) -> WarmReport {
        self.warm_up_within(LIMIT).await
    }

    /// [`Engine::warm_up`] given up after `limit` (the report then says `timed_out`).
    pub async fn warm_up_within(&self, limit: Duration) -> WarmReport {
        self.set_warm_state(WarmState::Running);
        let report = match tokio::time::timeout(limit, self.warm()).await {
            Ok(report) => report,
            Err(_) => {
                tracing::warn!(limit_ms = limit.as_millis() as u64, "the warm-up at start did not finish in time; serving without it");
                WarmReport { timed_out: true, ..WarmReport::default() }
            }
        };
        tracing::info!(
            embed_ms = report.embed_ms,
            store_ms = report.store_ms,
            collections = report.collections.len(),
            skipped = report.skipped.len(),
            "warmed up"
        );
        self.set_warm_state(WarmState::Done(report.clone()));
        report
    }

    async fn warm(&self) -> WarmReport {
        let mut report = WarmReport::default();
        let texts: Vec<String> = TEXTS.iter().map(|t| (*t).to_owned()).collect();
        let t = Instant::now();
        // One call per text: a search embeds one query at a time.
        let mut dense = Vec::new();
        for text in &texts {
            match self.uncached_embedder.embed(std::slice::from_ref(text)).await {
                Ok(mut v) if !v.is_empty() => dense.push(Some(v.remove(0))),
                Ok(_) => dense.push(None),
                Err(e) => {
                    report.embed_error = Some(e.to_string());
                    dense.push(None);
                }
            }
        }
        report.embed_ms = ms(t);
        let t = Instant::now();
        let dims = self.uncached_embedder.dims();
        for (name, stored_dims) in self.collections_to_warm().await {
            let mut failed = None;
            for (text, vector) in texts.iter().zip(&dense) {
                // Another model's collection is warmed through its sparse index only.
                let vector = vector.as_ref().filter(|_| stored_dims == dims);
                let q = StoreQuery {
                    mode: if vector.is_some() { SearchMode::Hybrid } else { SearchMode::Sparse },
                    dense: vector.cloned(),
                    sparse: Some(self.sparse.encode_query(text)),
                    filter: Filter::default(),
                    limit: 10,
                    prefetch_limit: self.cfg.search.prefetch_limit,
                    fusion: self.cfg.search.fusion,
                };
                if let Err(e) = self.store.query(&name, &q).await {
                    failed = Some(e.to_string());
                    break;
                }
            }
            match failed {
                None => report.collections.push(name),
                Some(e) => report.skipped.push(format!("{name}: {e}")),
            }
        }
        report.store_ms = ms(t);
        report
    }

    /// Alias targets first (what searches name), then the other collections by name, at most
    /// [`MAX_COLLECTIONS`], each with the dimensions of its dense vectors.
    async fn collections_to_warm(&self) -> Vec<(String, aidocs_core::Dims)> {
        let Ok(all) = self.store.list_collections().await else { return Vec::new() };
        let mut names: Vec<String> = Vec::new();
        for (_, target) in self.store.list_aliases().await.unwrap_or_default() {
            if !names.contains(&target) {
                names.push(target);
            }
        }
        let mut rest: Vec<String> = all.iter().map(|c| c.name.clone()).filter(|n| !names.contains(n)).collect();
        rest.sort();
        names.extend(rest);
        names
            .into_iter()
            .filter_map(|n| all.iter().find(|c| c.name == n).map(|c| (n, c.dims)))
            .take(MAX_COLLECTIONS)
            .collect()
    }
}
