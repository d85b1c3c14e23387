//! Fault injection for tests (feature `testkit`): [`FaultyStore`] wraps any store and, on
//! demand, fails queries on one collection, fails upserts after a number of successful
//! ones, or slows full scans (a large collection, in effect); it counts `optimize` calls. [`qdrant_server`]: a Qdrant
//! gRPC + REST stand-in over the embedded engine, for the `QdrantStore` tests that need fault
//! injection or its call log. [`qdrant_process`]: the real Qdrant server binary, one node or a
//! cluster, for everything else.

use aidocs_core::{CollectionInfo, CollectionSpec, Filter, Point, PointPage, ScoredChunk, StoreError, StoreQuery, StoredPoint, VectorStore};
use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The faults to inject; change them at any time.
#[derive(Debug, Default)]
pub struct Faults {
    /// Queries on this collection fail.
    pub fail_queries_on: Mutex<Option<String>>,
    /// Upserts succeed this many times, then fail (`None`: never fail).
    pub upserts_before_failure: Mutex<Option<usize>>,
    /// Every `scroll_points` call waits this long first.
    pub scroll_delay: Mutex<Duration>,
    upserts: AtomicUsize,
    optimizes: AtomicUsize,
}

impl Faults {
    pub fn fail_queries_on(&self, collection: Option<&str>) {
        *self.fail_queries_on.lock().unwrap() = collection.map(str::to_owned);
    }

    pub fn fail_upserts_after(&self, n: Option<usize>) {
        self.upserts.store(0, Ordering::SeqCst);
        *self.upserts_before_failure.lock().unwrap() = n;
    }

    pub fn slow_scans(&self, delay: Duration) {
        *self.scroll_delay.lock().unwrap() = delay;
    }

    /// `optimize` calls passed through so far.
    pub fn optimize_calls(&self) -> usize {
        self.optimizes.load(Ordering::SeqCst)
    }
}

pub struct FaultyStore {
    inner: Arc<dyn VectorStore>,
    pub faults: Faults,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn VectorStore>) -> Self {
        Self { inner, faults: Faults::default() }
    }
}

fn injected(what: &str) -> StoreError {
    StoreError::Backend(format!("injected fault: {what}"))
}

#[async_trait]
impl VectorStore for FaultyStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn check(&self) -> Result<String, StoreError> {
        self.inner.check().await
    }
    fn native_snapshots(&self) -> Option<&dyn aidocs_core::NativeSnapshots> {
        self.inner.native_snapshots()
    }
    async fn create_collection(&self, spec: &CollectionSpec) -> Result<(), StoreError> {
        self.inner.create_collection(spec).await
    }
    async fn delete_collection(&self, name: &str) -> Result<(), StoreError> {
        self.inner.delete_collection(name).await
    }
    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        self.inner.list_collections().await
    }
    async fn collection_info(&self, name: &str) -> Result<CollectionInfo, StoreError> {
        self.inner.collection_info(name).await
    }
    async fn resolve(&self, name: &str) -> Result<String, StoreError> {
        self.inner.resolve(name).await
    }
    async fn set_alias(&self, alias: &str, collection: &str) -> Result<(), StoreError> {
        self.inner.set_alias(alias, collection).await
    }
    async fn delete_alias(&self, alias: &str) -> Result<(), StoreError> {
        self.inner.delete_alias(alias).await
    }
    async fn list_aliases(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.list_aliases().await
    }
    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<(), StoreError> {
        let limit = *self.faults.upserts_before_failure.lock().unwrap();
        if let Some(n) = limit
            && self.faults.upserts.fetch_add(1, Ordering::SeqCst) >= n {
                return Err(injected("upsert"));
            }
        self.inner.upsert(collection, points).await
    }
    async fn delete(&self, collection: &str, ids: Vec<uuid::Uuid>) -> Result<(), StoreError> {
        self.inner.delete(collection, ids).await
    }
    async fn scroll(&self, collection: &str, filter: &Filter) -> Result<Vec<StoredPoint>, StoreError> {
        self.inner.scroll(collection, filter).await
    }
    async fn scroll_points(&self, collection: &str, from: Option<uuid::Uuid>, limit: usize) -> Result<PointPage, StoreError> {
        let delay = *self.faults.scroll_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.inner.scroll_points(collection, from, limit).await
    }
    async fn retrieve(&self, collection: &str, ids: &[uuid::Uuid]) -> Result<Vec<Point>, StoreError> {
        self.inner.retrieve(collection, ids).await
    }
    async fn count(&self, collection: &str, filter: &Filter) -> Result<usize, StoreError> {
        self.inner.count(collection, filter).await
    }
    async fn query(&self, collection: &str, query: &StoreQuery) -> Result<Vec<ScoredChunk>, StoreError> {
        if self.faults.fail_queries_on.lock().unwrap().as_deref() == Some(collection) {
            return Err(injected("query"));
        }
        self.inner.query(collection, query).await
    }
    async fn optimize(&self, collection: &str) -> Result<(), StoreError> {
        self.faults.optimizes.fetch_add(1, Ordering::SeqCst);
        self.inner.optimize(collection).await
    }
}

/// Every point of `collection` with vectors, in id order (pages through `scroll_points`).
pub async fn all_points(store: &dyn VectorStore, collection: &str) -> Result<Vec<Point>, StoreError> {
    let mut out = Vec::new();
    let mut from = None;
    loop {
        let page = store.scroll_points(collection, from, 500).await?;
        out.extend(page.points);
        match page.next {
            Some(n) => from = Some(n),
            None => return Ok(out),
        }
    }
}

pub mod qdrant_process;
pub mod qdrant_server;
