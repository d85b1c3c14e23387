//! [`QdrantStore`]: a Qdrant server or cluster over gRPC, with qdrant-client's generated
//! clients on one multiplexed tonic channel.
//!
//! Same contract as the embedded store (the conformance suite runs against both):
//! - writes wait for the server to apply them (`wait = true`) before returning;
//! - hybrid queries use the Query API (dense + sparse prefetch, RRF or DBSF fusion); like the
//!   embedded store, the fused candidates are re-sorted by (score desc, id asc) before the
//!   cut, and payloads are loaded for the page only;
//! - an alias switch is one `UpdateCollectionAliases` call holding both the delete and the
//!   create action, so there is never a moment with no alias (qdrant-client's high-level
//!   `create_alias`/`delete_alias` send one action per call, hence the raw client);
//! - the collection's properties (embedding model, dims) live in Qdrant's collection
//!   metadata, so a second aidocs process reads what the first recorded.
//!
//! Transient errors (unavailable, deadline, resource exhausted, aborted) are retried with
//! exponential backoff, honouring the server's `retry-after`; every request aidocs sends is
//! idempotent (upserts carry ids), so a retry never duplicates data.

pub mod convert;
mod snapshots;

pub use crate::params::{CollectionParams, ScalarQuantization, SearchParams};

use aidocs_core::{
    CollectionInfo, CollectionSpec, FieldKind, Filter, FilterField, Point, PointPage, ScoredChunk, SearchMode, StoreError,
    StoreQuery, StoredPoint, VectorStore,
};
use async_trait::async_trait;
use convert::{DENSE, SPARSE};
use qdrant_client::qdrant::{
    self as pb, alias_operations, collections_client::CollectionsClient, points_client::PointsClient,
    points_selector::PointsSelectorOneOf, qdrant_client::QdrantClient, quantization_config, query, snapshots_client::SnapshotsClient,
    vectors_config, with_payload_selector, with_vectors_selector,
};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tonic::codegen::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};


/// Oldest Qdrant server this backend speaks to (Query API with weighted RRF, collection
/// metadata); qdrant-client supports servers one minor version either side of its own.
pub const MIN_SERVER_VERSION: (u64, u64) = (1, 19);

/// Metadata key holding the creation time; the other string keys are the collection's
/// properties.
const CREATED_AT: &str = "aidocs_created_at";

/// Connection and collection settings of a Qdrant backend.
#[derive(Debug, Clone)]
pub struct QdrantStoreConfig {
    /// gRPC endpoint, e.g. `http://qdrant:6334` (`https://` turns TLS on).
    pub url: String,
    /// REST endpoint for snapshot download and upload; default: `url` with port 6333.
    pub rest_url: Option<String>,
    pub api_key: Option<String>,
    /// PEM file of a CA to trust besides the system roots (self-signed clusters).
    pub ca_cert: Option<std::path::PathBuf>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// Points per upsert request.
    pub upsert_batch: usize,
    /// How long `optimize` waits for the server's optimizers to finish.
    pub optimize_wait: Duration,
    pub collection: CollectionParams,
    pub search: SearchParams,
}

impl QdrantStoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            rest_url: None,
            api_key: None,
            ca_cert: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            upsert_batch: 256,
            optimize_wait: Duration::from_secs(600),
            collection: CollectionParams::default(),
            search: SearchParams::default(),
        }
    }
}

/// Retries of transient errors: `attempts` tries in all, backoff doubling from `base` up to
/// `max` (a server's `retry-after` replaces the backoff, capped at `max`).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 4, base: Duration::from_millis(100), max: Duration::from_secs(5) }
    }
}

/// Adds the `api-key` header to every call.
#[derive(Clone)]
pub struct ApiKey(Option<tonic::metadata::AsciiMetadataValue>);

impl tonic::service::Interceptor for ApiKey {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(key) = &self.0 {
            req.metadata_mut().insert("api-key", key.clone());
        }
        Ok(req)
    }
}

type Svc = InterceptedService<Channel, ApiKey>;

/// A Qdrant server or cluster. Cheap to clone.
#[derive(Clone)]
pub struct QdrantStore {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    cfg: QdrantStoreConfig,
    points: PointsClient<Svc>,
    collections: CollectionsClient<Svc>,
    snapshots: SnapshotsClient<Svc>,
    root: QdrantClient<Svc>,
    http: reqwest::Client,
    server_version: Mutex<Option<String>>,
    /// Dims per collection or alias name, for the dimension check before a request.
    dims: Mutex<HashMap<String, (usize, Instant)>>,
}

impl std::fmt::Debug for QdrantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantStore").field("url", &self.inner.cfg.url).finish()
    }
}

const DIMS_TTL: Duration = Duration::from_secs(10);

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// What a failed call means for aidocs; `name` is the collection or alias it was about.
fn status_error(what: &str, name: &str, s: &Status) -> StoreError {
    let store = || "the Qdrant server".to_owned();
    match s.code() {
        Code::NotFound => StoreError::CollectionNotFound(name.to_owned()),
        Code::AlreadyExists => StoreError::CollectionExists(name.to_owned()),
        Code::Unauthenticated | Code::PermissionDenied => StoreError::Unauthorized {
            store: store(),
            detail: format!(
                "{what}: {} (check vector_store.api_key / QDRANT_API_KEY)",
                s.message()
            ),
        },
        Code::Unavailable => StoreError::Unavailable {
            store: store(),
            detail: format!("{what}: {}", s.message()),
        },
        Code::Unknown if s.message().contains("transport error") => StoreError::Unavailable {
            store: store(),
            detail: format!("{what}: {}", s.message()),
        },
        Code::DeadlineExceeded => StoreError::Timeout {
            store: store(),
            what: what.to_owned(),
            detail: s.message().to_owned(),
        },
        code => StoreError::Backend(format!("Qdrant {what} failed ({code:?}): {}", s.message())),
    }
}

fn transient(s: &Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted)
        || (s.code() == Code::Unknown && s.message().contains("transport error"))
}

fn retry_after(s: &Status) -> Option<Duration> {
    let v = s.metadata().get("retry-after")?.to_str().ok()?;
    v.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).map(Duration::from_secs_f64)
}

/// `major.minor` of a version string like `1.19.2` or `v1.20.0-dev`.
fn parse_version(v: &str) -> Option<(u64, u64)> {
    let mut it = v.trim_start_matches('v').split(['.', '-']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn rest_url_of(grpc: &str) -> String {
    match url::Url::parse(grpc) {
        Ok(mut u) if u.port() == Some(6334) || u.port().is_none() => {
            let _ = u.set_port(Some(6333));
            u.as_str().trim_end_matches('/').to_owned()
        }
        _ => grpc.trim_end_matches('/').to_owned(),
    }
}

impl QdrantStore {
    /// Connect and check the server: reachable, API key accepted, version supported.
    pub async fn connect(cfg: QdrantStoreConfig) -> Result<Self, StoreError> {
        let store = Self::new(cfg)?;
        store.check_server().await?;
        Ok(store)
    }

    /// Build the client without any I/O (the channel connects on first use); call
    /// [`VectorStore::check`] before serving. Must run inside a tokio runtime.
    pub fn new(cfg: QdrantStoreConfig) -> Result<Self, StoreError> {
        let bad_url = |e: &dyn std::fmt::Display| StoreError::Backend(format!("invalid Qdrant URL `{}`: {e}", cfg.url));
        let mut endpoint = Endpoint::from_shared(cfg.url.clone())
            .map_err(|e| bad_url(&e))?
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if cfg.url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &cfg.ca_cert {
                let pem = std::fs::read(ca).map_err(|source| StoreError::Io { path: ca.display().to_string(), source })?;
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| bad_url(&e))?;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::Backend("the Qdrant backend must be opened inside a tokio runtime".into()));
        }
        let channel = endpoint.connect_lazy();
        let key = match &cfg.api_key {
            Some(k) if !k.is_empty() => {
                Some(k.parse().map_err(|_| StoreError::Backend("the Qdrant API key has characters a header cannot carry".into()))?)
            }
            _ => None,
        };
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let svc = || InterceptedService::new(channel.clone(), ApiKey(key.clone()));
        let max = 256 * 1024 * 1024;
        let inner = Inner {
            points: PointsClient::new(svc()).max_decoding_message_size(max).max_encoding_message_size(max),
            collections: CollectionsClient::new(svc()).max_decoding_message_size(max),
            snapshots: SnapshotsClient::new(svc()),
            root: QdrantClient::new(svc()),
            http: reqwest::Client::builder().connect_timeout(cfg.connect_timeout).build().map_err(backend)?,
            server_version: Mutex::new(None),
            dims: Mutex::new(HashMap::new()),
            cfg,
        };
        Ok(Self { inner: std::sync::Arc::new(inner) })
    }

    /// Health check: reachable, API key accepted, version supported. Returns the version.
    async fn check_server(&self) -> Result<String, StoreError> {
        let url = &self.inner.cfg.url;
        let reply = self
            .inner
            .call("health check", "", |c| async move { c.root.clone().health_check(pb::HealthCheckRequest {}).await })
            .await
            .map_err(|e| StoreError::Backend(format!("cannot reach Qdrant at {url}: {e}")))?;
        match parse_version(&reply.version) {
            Some((major, minor)) if major == MIN_SERVER_VERSION.0 && minor >= MIN_SERVER_VERSION.1 => {}
            _ => {
                return Err(StoreError::Backend(format!(
                    "Qdrant at {url} is version {}; aidocs needs a 1.x server >= {}.{}",
                    reply.version, MIN_SERVER_VERSION.0, MIN_SERVER_VERSION.1
                )));
            }
        }
        // A real Qdrant answers its health check without credentials: ask for something that
        // needs them, so a missing or wrong key is found here rather than at the first search.
        self.aliases().await?;
        *self.inner.server_version.lock().unwrap() = Some(reply.version.clone());
        Ok(reply.version)
    }

    /// The server's version, as its last health check reported it.
    pub fn server_version(&self) -> Option<String> {
        self.inner.server_version.lock().unwrap().clone()
    }

    pub fn config(&self) -> &QdrantStoreConfig {
        &self.inner.cfg
    }

    /// Qdrant's own "collection exists" answer, which is also true for an alias name on a
    /// real server: use [`Self::kind_of`] to tell the two apart.
    async fn exists(&self, name: &str) -> Result<bool, StoreError> {
        let req = pb::CollectionExistsRequest { collection_name: name.to_owned() };
        let r = self.inner.call("collection exists", name, |c| {
            let req = req.clone();
            async move { c.collections.clone().collection_exists(req).await }
        });
        Ok(r.await?.result.is_some_and(|r| r.exists))
    }

    /// What `name` is on the server. Aliases are asked first, because a real Qdrant's
    /// "collection exists" answers true for an alias name as well.
    async fn kind_of(&self, name: &str) -> Result<NameKind, StoreError> {
        if let Some((_, target)) = self.aliases().await?.into_iter().find(|(a, _)| a == name) {
            return Ok(NameKind::Alias(target));
        }
        Ok(if self.exists(name).await? { NameKind::Collection } else { NameKind::Missing })
    }

    /// `name` as a collection aidocs made: `CollectionNotFound` for an alias or nothing,
    /// `Foreign` for a collection without aidocs' named vectors.
    async fn own_collection(&self, name: &str) -> Result<(), StoreError> {
        if self.kind_of(name).await? != NameKind::Collection {
            return Err(StoreError::CollectionNotFound(name.to_owned()));
        }
        if !made_by_aidocs(&self.info_raw(name).await?) {
            return Err(StoreError::Foreign(name.to_owned()));
        }
        Ok(())
    }

    async fn aliases(&self) -> Result<Vec<(String, String)>, StoreError> {
        let r = self.inner.call("list aliases", "", |c| async move { c.collections.clone().list_aliases(pb::ListAliasesRequest {}).await });
        Ok(r.await?.aliases.into_iter().map(|a| (a.alias_name, a.collection_name)).collect())
    }

    async fn info_raw(&self, name: &str) -> Result<pb::CollectionInfo, StoreError> {
        let req = pb::GetCollectionInfoRequest { collection_name: name.to_owned() };
        let r = self.inner.call("collection info", name, |c| {
            let req = req.clone();
            async move { c.collections.clone().get(req).await }
        });
        r.await?.result.ok_or_else(|| backend(format!("Qdrant sent no info for `{name}`")))
    }

    /// Dims of the dense vector of `name` (collection or alias), cached for a few seconds.
    async fn dims(&self, name: &str, refresh: bool) -> Result<usize, StoreError> {
        if !refresh
            && let Some((d, at)) = self.inner.dims.lock().unwrap().get(name).copied()
            && at.elapsed() < DIMS_TTL
        {
            return Ok(d);
        }
        let collection = self.resolve(name).await?;
        let d = dense_dims(&self.info_raw(&collection).await?)?;
        self.inner.dims.lock().unwrap().insert(name.to_owned(), (d, Instant::now()));
        Ok(d)
    }

    /// Check a vector length against the collection, re-reading the dims once before failing
    /// (an alias may have moved to a collection of another size).
    async fn check_dims(&self, name: &str, got: usize) -> Result<(), StoreError> {
        let mut expected = self.dims(name, false).await?;
        if expected != got {
            expected = self.dims(name, true).await?;
        }
        if expected == got { Ok(()) } else { Err(StoreError::DimensionMismatch { expected, got }) }
    }

    fn dense_params(&self) -> Option<pb::SearchParams> {
        let s = self.inner.cfg.search;
        let quantized = self.inner.cfg.collection.quantization.is_some();
        Some(pb::SearchParams {
            hnsw_ef: s.hnsw_ef,
            exact: s.exact.then_some(true),
            quantization: quantized.then_some(pb::QuantizationSearchParams {
                ignore: Some(false),
                rescore: Some(s.rescore),
                oversampling: Some(s.oversampling),
            }),
            ..Default::default()
        })
    }

    async fn get_points(&self, collection: &str, ids: &[uuid::Uuid], vectors: bool) -> Result<Vec<pb::RetrievedPoint>, StoreError> {
        let req = pb::GetPoints {
            collection_name: collection.to_owned(),
            ids: ids.iter().copied().map(convert::to_id).collect(),
            with_payload: Some(with_payload(true)),
            with_vectors: Some(with_vectors(vectors)),
            ..Default::default()
        };
        let r = self.inner.call("get points", collection, |c| {
            let req = req.clone();
            async move { c.points.clone().get(req).await }
        });
        Ok(r.await?.result)
    }

    /// Every point of `collection` that `base` (filter, payload selector) selects, 1,000 per
    /// page, handed to `each` in id order; vectors never travel.
    async fn scroll_all(
        &self,
        collection: &str,
        base: pb::ScrollPoints,
        mut each: impl FnMut(pb::RetrievedPoint) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut offset = None;
        loop {
            let r = self
                .scroll_raw(pb::ScrollPoints {
                    collection_name: collection.to_owned(),
                    offset,
                    limit: Some(1000),
                    with_vectors: Some(with_vectors(false)),
                    ..base.clone()
                })
                .await?;
            for p in r.result {
                each(p)?;
            }
            match r.next_page_offset {
                Some(n) => offset = Some(n),
                None => return Ok(()),
            }
        }
    }

    async fn scroll_raw(&self, req: pb::ScrollPoints) -> Result<pb::ScrollResponse, StoreError> {
        let name = req.collection_name.clone();
        self.inner
            .call("scroll", &name, |c| {
                let req = req.clone();
                async move { c.points.clone().scroll(req).await }
            })
            .await
    }
}

impl Inner {
    /// One call with retries of transient errors; other errors mapped by [`status_error`].
    async fn call<'a, T, F, Fut>(&'a self, what: &str, name: &str, f: F) -> Result<T, StoreError>
    where
        F: Fn(&'a Inner) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let policy = self.cfg.retry;
        let mut delay = policy.base;
        let mut attempt = 1;
        loop {
            match f(self).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) if transient(&s) && attempt < policy.attempts.max(1) => {
                    let wait = retry_after(&s).unwrap_or(delay).min(policy.max);
                    tracing::warn!(what, attempt, code = ?s.code(), message = s.message(), wait_ms = wait.as_millis() as u64, "Qdrant call failed; retrying");
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(policy.max);
                    attempt += 1;
                }
                Err(s) => return Err(status_error(what, name, &s)),
            }
        }
    }
}

fn with_payload(on: bool) -> pb::WithPayloadSelector {
    pb::WithPayloadSelector { selector_options: Some(with_payload_selector::SelectorOptions::Enable(on)) }
}

fn with_vectors(on: bool) -> pb::WithVectorsSelector {
    pb::WithVectorsSelector { selector_options: Some(with_vectors_selector::SelectorOptions::Enable(on)) }
}

/// What a name is on the server (Qdrant keeps collections and aliases in one namespace).
#[derive(Debug, PartialEq, Eq)]
enum NameKind {
    Collection,
    Alias(String),
    Missing,
}

/// Whether a collection has the named vectors aidocs creates (`dense` and `sparse`); any
/// other collection on a shared server belongs to someone else.
fn made_by_aidocs(info: &pb::CollectionInfo) -> bool {
    let params = info.config.as_ref().and_then(|c| c.params.as_ref());
    let dense = matches!(
        params.and_then(|p| p.vectors_config.as_ref()).and_then(|v| v.config.as_ref()),
        Some(vectors_config::Config::ParamsMap(m)) if m.map.contains_key(DENSE)
    );
    let sparse = params.and_then(|p| p.sparse_vectors_config.as_ref()).is_some_and(|s| s.map.contains_key(SPARSE));
    dense && sparse
}

fn dense_dims(info: &pb::CollectionInfo) -> Result<usize, StoreError> {
    let vc = info.config.as_ref().and_then(|c| c.params.as_ref()).and_then(|p| p.vectors_config.as_ref());
    match vc.and_then(|v| v.config.as_ref()) {
        Some(vectors_config::Config::ParamsMap(m)) => {
            m.map.get(DENSE).map(|p| p.size as usize).ok_or_else(|| backend("collection has no `dense` vector (not made by aidocs?)"))
        }
        _ => Err(backend("collection has no named vectors (not made by aidocs?)")),
    }
}

fn field_type(kind: FieldKind) -> pb::FieldType {
    match kind {
        FieldKind::Keyword => pb::FieldType::Keyword,
        FieldKind::Integer => pb::FieldType::Integer,
        FieldKind::Datetime => pb::FieldType::Datetime,
    }
}

/// The `CreateCollection` request for `spec` under `params`. Memory placement is sent both
/// as the deprecated flags (`on_disk`, `always_ram`; what 1.19 servers read) and as `memory`
/// (which newer servers prefer when both are set).
#[allow(deprecated)]
pub fn create_request(spec: &CollectionSpec, params: &CollectionParams) -> pb::CreateCollection {
    let dense = pb::VectorParams {
        size: spec.dims as u64,
        distance: pb::Distance::Cosine as i32,
        on_disk: Some(params.on_disk_vectors),
        memory: params.on_disk_vectors.then_some(pb::Memory::Cold as i32),
        ..Default::default()
    };
    let sparse = pb::SparseVectorParams { modifier: Some(pb::Modifier::Idf as i32), index: None };
    let mut metadata: HashMap<String, pb::Value> = spec.properties.iter().map(|(k, v)| (k.clone(), pb::Value::from(v.clone()))).collect();
    metadata.insert(CREATED_AT.into(), pb::Value::from(chrono::Utc::now().to_rfc3339()));
    pb::CreateCollection {
        collection_name: spec.name.clone(),
        vectors_config: Some(pb::VectorsConfig {
            config: Some(vectors_config::Config::ParamsMap(pb::VectorParamsMap { map: HashMap::from([(DENSE.into(), dense)]) })),
        }),
        sparse_vectors_config: Some(pb::SparseVectorConfig { map: HashMap::from([(SPARSE.into(), sparse)]) }),
        hnsw_config: Some(pb::HnswConfigDiff {
            m: Some(params.hnsw_m),
            ef_construct: Some(params.hnsw_ef_construct),
            full_scan_threshold: Some(params.full_scan_threshold),
            ..Default::default()
        }),
        quantization_config: params.quantization.map(|q| pb::QuantizationConfig {
            quantization: Some(quantization_config::Quantization::Scalar(pb::ScalarQuantization {
                r#type: pb::QuantizationType::Int8 as i32,
                quantile: Some(q.quantile),
                always_ram: Some(q.always_ram),
                memory: q.always_ram.then_some(pb::Memory::Pinned as i32),
            })),
        }),
        optimizers_config: Some(pb::OptimizersConfigDiff {
            indexing_threshold: params.indexing_threshold,
            default_segment_number: params.default_segment_number,
            ..Default::default()
        }),
        shard_number: params.shard_number,
        replication_factor: params.replication_factor,
        write_consistency_factor: params.write_consistency_factor,
        on_disk_payload: Some(true),
        metadata,
        ..Default::default()
    }
}

/// The alias actions that point `alias` at `collection`: the delete (when the alias exists)
/// and the create, to be sent in one request.
pub fn switch_actions(alias: &str, collection: &str, exists: bool) -> Vec<pb::AliasOperations> {
    let op = |a| pb::AliasOperations { action: Some(a) };
    let mut actions = Vec::with_capacity(2);
    if exists {
        actions.push(op(alias_operations::Action::DeleteAlias(pb::DeleteAlias { alias_name: alias.to_owned() })));
    }
    actions.push(op(alias_operations::Action::CreateAlias(pb::CreateAlias {
        collection_name: collection.to_owned(),
        alias_name: alias.to_owned(),
    })));
    actions
}

fn fusion_query(f: aidocs_core::Fusion) -> pb::Query {
    let variant = match f {
        aidocs_core::Fusion::Rrf { k, dense_weight, sparse_weight } => query::Variant::Rrf(pb::Rrf {
            k: Some(k as u32),
            weights: if dense_weight != 1.0 || sparse_weight != 1.0 { vec![dense_weight, sparse_weight] } else { vec![] },
        }),
        aidocs_core::Fusion::Dbsf => query::Variant::Fusion(pb::Fusion::Dbsf as i32),
    };
    pb::Query { variant: Some(variant) }
}

fn nearest(v: pb::VectorInput) -> pb::Query {
    pb::Query { variant: Some(query::Variant::Nearest(v)) }
}

#[async_trait]
impl VectorStore for QdrantStore {
    fn backend(&self) -> &'static str {
        "qdrant"
    }

    fn native_snapshots(&self) -> Option<&dyn aidocs_core::NativeSnapshots> {
        Some(self)
    }

    async fn check(&self) -> Result<String, StoreError> {
        Ok(format!("qdrant {} at {}", self.check_server().await?, self.inner.cfg.url))
    }

    async fn create_collection(&self, spec: &CollectionSpec) -> Result<(), StoreError> {
        crate::edge::validate_name(&spec.name)?;
        if self.exists(&spec.name).await? || self.aliases().await?.iter().any(|(a, _)| *a == spec.name) {
            return Err(StoreError::CollectionExists(spec.name.clone()));
        }
        let req = create_request(spec, &self.inner.cfg.collection);
        self.inner
            .call("create collection", &spec.name, |c| {
                let req = req.clone();
                async move { c.collections.clone().create(req).await }
            })
            .await?;
        // Payload indexes for every filter field, built in the background (wait = false).
        for field in FilterField::ALL {
            let req = pb::CreateFieldIndexCollection {
                collection_name: spec.name.clone(),
                wait: Some(false),
                field_name: field.as_str().to_owned(),
                field_type: Some(field_type(field.kind()) as i32),
                ..Default::default()
            };
            self.inner
                .call("create payload index", &spec.name, |c| {
                    let req = req.clone();
                    async move { c.points.clone().create_field_index(req).await }
                })
                .await?;
        }
        Ok(())
    }

    async fn delete_collection(&self, name: &str) -> Result<(), StoreError> {
        // Never an alias (Qdrant would delete the collection behind it) nor a collection
        // aidocs did not make (a shared server's other tenants).
        self.own_collection(name).await?;
        // Qdrant drops the collection's aliases with it.
        let req = pb::DeleteCollection { collection_name: name.to_owned(), ..Default::default() };
        self.inner
            .call("delete collection", name, |c| {
                let req = req.clone();
                async move { c.collections.clone().delete(req).await }
            })
            .await?;
        self.inner.dims.lock().unwrap().clear();
        Ok(())
    }

    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        let r = self.inner.call("list collections", "", |c| async move { c.collections.clone().list(pb::ListCollectionsRequest {}).await });
        let mut names: Vec<String> = r.await?.collections.into_iter().map(|c| c.name).collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            match self.collection_info(&n).await {
                Ok(i) => out.push(i),
                // Deleted between the list and the info.
                Err(StoreError::CollectionNotFound(_)) => {}
                // A shared server's other collections are not aidocs' to list.
                Err(StoreError::Foreign(n)) => tracing::debug!(collection = %n, "skipping a collection aidocs did not create"),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn collection_info(&self, name: &str) -> Result<CollectionInfo, StoreError> {
        let collection = self.resolve(name).await?;
        let info = self.info_raw(&collection).await?;
        if !made_by_aidocs(&info) {
            return Err(StoreError::Foreign(collection));
        }
        let dims = dense_dims(&info)?;
        let mut properties = BTreeMap::new();
        let mut created_at = info
            .created_at
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
            .map(|d| d.to_rfc3339())
            .unwrap_or_default();
        for (k, v) in info.config.as_ref().map(|c| c.metadata.clone()).unwrap_or_default() {
            let Some(s) = v.as_str().map(|s| s.to_owned()) else { continue };
            if k == CREATED_AT {
                created_at = s;
            } else {
                properties.insert(k, s);
            }
        }
        properties.insert("status".into(), format!("{:?}", pb::CollectionStatus::try_from(info.status).unwrap_or_default()).to_lowercase());
        if let Some(v) = self.server_version() {
            properties.insert("server_version".into(), v);
        }
        let mut aliases: Vec<String> = self.aliases().await?.into_iter().filter(|(_, c)| *c == collection).map(|(a, _)| a).collect();
        aliases.sort();
        Ok(CollectionInfo {
            name: collection,
            dims,
            points: info.points_count.unwrap_or(0) as usize,
            indexed_vectors: info.indexed_vectors_count.unwrap_or(0) as usize,
            segments: info.segments_count as usize,
            aliases,
            created_at,
            properties,
        })
    }

    async fn resolve(&self, name: &str) -> Result<String, StoreError> {
        match self.kind_of(name).await? {
            NameKind::Collection => Ok(name.to_owned()),
            NameKind::Alias(target) => Ok(target),
            NameKind::Missing => Err(StoreError::CollectionNotFound(name.to_owned())),
        }
    }

    async fn set_alias(&self, alias: &str, collection: &str) -> Result<(), StoreError> {
        crate::edge::validate_name(alias)?;
        self.own_collection(collection).await?;
        let exists = match self.kind_of(alias).await? {
            NameKind::Collection => return Err(StoreError::CollectionExists(alias.to_owned())),
            NameKind::Alias(_) => true,
            NameKind::Missing => false,
        };
        let req = pb::ChangeAliases { actions: switch_actions(alias, collection, exists), timeout: None };
        self.inner
            .call("update aliases", alias, |c| {
                let req = req.clone();
                async move { c.collections.clone().update_aliases(req).await }
            })
            .await?;
        self.inner.dims.lock().unwrap().remove(alias);
        Ok(())
    }

    async fn delete_alias(&self, alias: &str) -> Result<(), StoreError> {
        if !self.aliases().await?.iter().any(|(a, _)| a == alias) {
            return Err(StoreError::AliasNotFound(alias.to_owned()));
        }
        let op = alias_operations::Action::DeleteAlias(pb::DeleteAlias { alias_name: alias.to_owned() });
        let req = pb::ChangeAliases { actions: vec![pb::AliasOperations { action: Some(op) }], timeout: None };
        self.inner
            .call("update aliases", alias, |c| {
                let req = req.clone();
                async move { c.collections.clone().update_aliases(req).await }
            })
            .await
            .map_err(|e| match e {
                StoreError::CollectionNotFound(a) => StoreError::AliasNotFound(a),
                e => e,
            })?;
        self.inner.dims.lock().unwrap().remove(alias);
        Ok(())
    }

    async fn list_aliases(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut a = self.aliases().await?;
        a.sort();
        Ok(a)
    }

    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<(), StoreError> {
        let Some(first) = points.first() else { return Ok(()) };
        self.check_dims(collection, first.dense.len()).await?;
        let expected = first.dense.len();
        if let Some(p) = points.iter().find(|p| p.dense.len() != expected) {
            return Err(StoreError::DimensionMismatch { expected, got: p.dense.len() });
        }
        let batch = self.inner.cfg.upsert_batch.max(1);
        let mut points = points.into_iter().peekable();
        while points.peek().is_some() {
            let chunk = points.by_ref().take(batch).map(convert::to_point).collect::<Result<Vec<_>, _>>()?;
            let req = pb::UpsertPoints { collection_name: collection.to_owned(), wait: Some(true), points: chunk, ..Default::default() };
            self.inner
                .call("upsert", collection, |c| {
                    let req = req.clone();
                    async move { c.points.clone().upsert(req).await }
                })
                .await?;
        }
        Ok(())
    }

    async fn delete(&self, collection: &str, ids: Vec<uuid::Uuid>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let selector = PointsSelectorOneOf::Points(pb::PointsIdsList { ids: ids.into_iter().map(convert::to_id).collect() });
        let req = pb::DeletePoints {
            collection_name: collection.to_owned(),
            wait: Some(true),
            points: Some(pb::PointsSelector { points_selector_one_of: Some(selector) }),
            ..Default::default()
        };
        self.inner
            .call("delete points", collection, |c| {
                let req = req.clone();
                async move { c.points.clone().delete(req).await }
            })
            .await?;
        Ok(())
    }

    async fn scroll(
        &self,
        collection: &str,
        filter: &Filter,
    ) -> Result<Vec<StoredPoint>, StoreError> {
        let base = pb::ScrollPoints {
            filter: convert::to_filter(filter)?,
            with_payload: Some(with_payload(true)),
            ..Default::default()
        };
        let mut out = Vec::new();
        self.scroll_all(collection, base, |p| {
            out.push(StoredPoint {
                id: convert::from_id(p.id.as_ref())?,
                payload: convert::from_payload(p.payload)?,
            });
            Ok(())
        })
        .await?;
        Ok(out)
    }

    async fn scroll_sources(&self, collection: &str, keep: aidocs_core::SourceFilter) -> Result<Vec<aidocs_core::SourceEntry>, StoreError> {
        // Only the two payload fields an incremental ingest compares travel.
        let fields = pb::WithPayloadSelector {
            selector_options: Some(with_payload_selector::SelectorOptions::Include(pb::PayloadIncludeSelector {
                fields: vec!["source".into(), "doc_hash".into()],
            })),
        };
        let mut out = Vec::new();
        self.scroll_all(
            collection,
            pb::ScrollPoints {
                with_payload: Some(fields),
                ..Default::default()
            },
            |p| {
                let text = |k: &str| match p.payload.get(k).and_then(|v| v.kind.as_ref()) {
                    Some(pb::value::Kind::StringValue(s)) => s.clone(),
                    _ => String::new(),
                };
                let source = text("source");
                if keep(&source) {
                    out.push(aidocs_core::SourceEntry { id: convert::from_id(p.id.as_ref())?, doc_hash: text("doc_hash"), source });
                }
                Ok(())
            },
        )
        .await?;
        Ok(out)
    }

    async fn facet(&self, collection: &str, field: FilterField, limit: usize) -> Result<Vec<(String, usize)>, StoreError> {
        let req = pb::FacetCounts {
            collection_name: collection.to_owned(),
            key: field.as_str().to_owned(),
            limit: Some(limit.max(1) as u64),
            exact: Some(true),
            ..Default::default()
        };
        let r = self
            .inner
            .call("facet", collection, |c| {
                let req = req.clone();
                async move { c.points.clone().facet(req).await }
            })
            .await?;
        let counts = r.hits.into_iter().filter_map(|h| match h.value.and_then(|v| v.variant) {
            Some(pb::facet_value::Variant::StringValue(s)) => Some((s, h.count as usize)),
            _ => None,
        });
        Ok(aidocs_core::top_values(counts, limit))
    }

    async fn outline(&self, collection: &str) -> Result<aidocs_core::Outline, StoreError> {
        // Only the four payload fields an outline reads travel.
        let fields = pb::WithPayloadSelector {
            selector_options: Some(with_payload_selector::SelectorOptions::Include(pb::PayloadIncludeSelector {
                fields: aidocs_core::Outline::FIELDS.iter().map(|f| (*f).to_owned()).collect(),
            })),
        };
        let mut out = aidocs_core::Outline::default();
        self.scroll_all(collection, pb::ScrollPoints { with_payload: Some(fields), ..Default::default() }, |p| {
            let text = |k: &str| match p.payload.get(k).and_then(|v| v.kind.as_ref()) {
                Some(pb::value::Kind::StringValue(s)) => Some(s.clone()),
                _ => None,
            };
            out.add(text("source").unwrap_or_default(), text("path").unwrap_or_default(), text("version"), text("last_updated"));
            Ok(())
        })
        .await?;
        Ok(out)
    }

    async fn scroll_points(&self, collection: &str, from: Option<uuid::Uuid>, limit: usize) -> Result<PointPage, StoreError> {
        let r = self
            .scroll_raw(pb::ScrollPoints {
                collection_name: collection.to_owned(),
                offset: from.map(convert::to_id),
                limit: Some(limit.clamp(1, u32::MAX as usize) as u32),
                with_payload: Some(with_payload(true)),
                with_vectors: Some(with_vectors(true)),
                ..Default::default()
            })
            .await?;
        let points = r.result.into_iter().map(point_of).collect::<Result<Vec<_>, _>>()?;
        let next = r.next_page_offset.as_ref().map(|n| convert::from_id(Some(n))).transpose()?;
        Ok(PointPage { points, next })
    }

    async fn retrieve(&self, collection: &str, ids: &[uuid::Uuid]) -> Result<Vec<Point>, StoreError> {
        let mut found: HashMap<uuid::Uuid, Point> =
            self.get_points(collection, ids, true).await?.into_iter().map(|p| point_of(p).map(|p| (p.id, p))).collect::<Result<_, _>>()?;
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    async fn count(&self, collection: &str, filter: &Filter) -> Result<usize, StoreError> {
        let req = pb::CountPoints {
            collection_name: collection.to_owned(),
            filter: convert::to_filter(filter)?,
            exact: Some(true),
            ..Default::default()
        };
        let r = self.inner.call("count", collection, |c| {
            let req = req.clone();
            async move { c.points.clone().count(req).await }
        });
        Ok(r.await?.result.map(|r| r.count as usize).unwrap_or(0))
    }

    async fn query(&self, collection: &str, q: &StoreQuery) -> Result<Vec<ScoredChunk>, StoreError> {
        let filter = convert::to_filter(&q.filter)?;
        if let Some(v) = &q.dense {
            self.check_dims(collection, v.len()).await?;
        }
        let need = |present: bool, what: &str| {
            if present { Ok(()) } else { Err(backend(format!("{} query needs a {what} vector", q.mode.as_str()))) }
        };
        let dense = || (nearest(convert::dense_input(q.dense.as_deref().unwrap_or_default())), DENSE, self.dense_params());
        let sparse = || (nearest(convert::sparse_input(q.sparse.as_ref().unwrap_or(&Default::default()))), SPARSE, None);
        let mut req = pb::QueryPoints {
            collection_name: collection.to_owned(),
            filter,
            with_payload: Some(with_payload(false)),
            with_vectors: Some(with_vectors(false)),
            ..Default::default()
        };
        match q.mode {
            SearchMode::Dense | SearchMode::Sparse => {
                let (query, using, params) = if q.mode == SearchMode::Dense {
                    need(q.dense.is_some(), "dense")?;
                    dense()
                } else {
                    need(q.sparse.is_some(), "sparse")?;
                    sparse()
                };
                req.query = Some(query);
                req.using = Some(using.into());
                req.params = params;
                req.limit = Some(q.limit as u64);
            }
            SearchMode::Hybrid => {
                need(q.dense.is_some(), "dense")?;
                need(q.sparse.is_some(), "sparse")?;
                let per = q.prefetch_limit.max(q.limit) as u64;
                // The request's filter stays on the root: Qdrant merges a root filter into
                // every prefetch, so repeating it here would check each condition twice.
                req.prefetch = [dense(), sparse()]
                    .into_iter()
                    .map(|(query, using, params)| pb::PrefetchQuery {
                        query: Some(query),
                        using: Some(using.into()),
                        filter: None,
                        params,
                        limit: Some(per),
                        ..Default::default()
                    })
                    .collect();
                req.query = Some(fusion_query(q.fusion));
                req.limit = Some(2 * per);
            }
        }
        let r = self.inner.call("query", collection, |c| {
            let req = req.clone();
            async move { c.points.clone().query(req).await }
        });
        let mut scored = r.await?.result.into_iter().map(|p| Ok((convert::from_id(p.id.as_ref())?, p.score))).collect::<Result<Vec<_>, StoreError>>()?;
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(q.limit);
        if scored.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<uuid::Uuid> = scored.iter().map(|s| s.0).collect();
        let mut payloads: HashMap<uuid::Uuid, _> = self
            .get_points(collection, &ids, false)
            .await?
            .into_iter()
            .map(|p| Ok((convert::from_id(p.id.as_ref())?, p.payload)))
            .collect::<Result<_, StoreError>>()?;
        scored
            .into_iter()
            .filter_map(|(id, score)| payloads.remove(&id).map(|p| (id, score, p)))
            .map(|(id, score, p)| Ok(ScoredChunk { id, score, payload: convert::from_payload(p)? }))
            .collect()
    }

    /// Waits until the server's optimizers are done with the collection (status green), at
    /// most `optimize_wait`; Qdrant builds indexes on its own.
    async fn optimize(&self, collection: &str) -> Result<(), StoreError> {
        let name = self.resolve(collection).await?;
        let deadline = Instant::now() + self.inner.cfg.optimize_wait;
        loop {
            let info = self.info_raw(&name).await?;
            if info.status == pb::CollectionStatus::Green as i32 {
                return Ok(());
            }
            if info.status == pb::CollectionStatus::Red as i32 {
                return Err(backend(format!("Qdrant reports collection `{name}` as red (optimization failed)")));
            }
            if Instant::now() >= deadline {
                tracing::warn!(collection = %name, "Qdrant is still optimizing; continuing without waiting");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn point_of(p: pb::RetrievedPoint) -> Result<Point, StoreError> {
    let id = convert::from_id(p.id.as_ref())?;
    let (dense, sparse) = convert::from_vectors_output(id, p.vectors)?;
    Ok(Point { id, dense, sparse, payload: convert::from_payload(p.payload)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("1.19.2"), Some((1, 19)));
        assert_eq!(parse_version("v1.20.0-dev"), Some((1, 20)));
        assert_eq!(parse_version("dev"), None);
    }

    #[test]
    fn rest_url_defaults_to_port_6333() {
        assert_eq!(rest_url_of("http://qdrant:6334"), "http://qdrant:6333");
        assert_eq!(rest_url_of("https://cluster.example.com"), "https://cluster.example.com:6333");
        assert_eq!(rest_url_of("http://127.0.0.1:7000"), "http://127.0.0.1:7000");
    }

    #[test]
    #[allow(deprecated)]
    fn create_request_carries_the_whole_collection_config() {
        let spec = CollectionSpec { name: "docs".into(), dims: 384, properties: BTreeMap::from([("embedding_model".into(), "m".into())]) };
        let params = CollectionParams {
            on_disk_vectors: true,
            shard_number: Some(3),
            replication_factor: Some(2),
            write_consistency_factor: Some(2),
            indexing_threshold: Some(20_000),
            ..Default::default()
        };
        let r = create_request(&spec, &params);
        let Some(vectors_config::Config::ParamsMap(m)) = r.vectors_config.unwrap().config else { panic!("named vectors") };
        assert_eq!((m.map[DENSE].size, m.map[DENSE].distance, m.map[DENSE].on_disk), (384, pb::Distance::Cosine as i32, Some(true)));
        assert_eq!(r.sparse_vectors_config.unwrap().map[SPARSE].modifier, Some(pb::Modifier::Idf as i32));
        let hnsw = r.hnsw_config.unwrap();
        assert_eq!((hnsw.m, hnsw.ef_construct, hnsw.full_scan_threshold), (Some(16), Some(100), Some(10_000)));
        let Some(quantization_config::Quantization::Scalar(sq)) = r.quantization_config.unwrap().quantization else { panic!("int8") };
        assert_eq!((sq.r#type, sq.quantile, sq.always_ram), (pb::QuantizationType::Int8 as i32, Some(0.99), Some(true)));
        assert_eq!((r.shard_number, r.replication_factor, r.write_consistency_factor), (Some(3), Some(2), Some(2)));
        assert_eq!(r.optimizers_config.unwrap().indexing_threshold, Some(20_000));
        assert_eq!(r.metadata["embedding_model"].as_str().map(String::as_str), Some("m"));
        assert!(r.metadata.contains_key(CREATED_AT));
    }

    #[test]
    fn an_alias_switch_is_one_request_with_delete_then_create() {
        let a = switch_actions("docs", "docs_v2", true);
        assert!(matches!(&a[..], [
            pb::AliasOperations { action: Some(alias_operations::Action::DeleteAlias(d)) },
            pb::AliasOperations { action: Some(alias_operations::Action::CreateAlias(c)) },
        ] if d.alias_name == "docs" && c.alias_name == "docs" && c.collection_name == "docs_v2"));
        assert_eq!(switch_actions("docs", "docs_v1", false).len(), 1);
    }

    #[test]
    fn weighted_rrf_sends_weights_and_plain_rrf_does_not() {
        let q = fusion_query(aidocs_core::Fusion::Rrf { k: 20, dense_weight: 2.0, sparse_weight: 1.0 });
        assert!(matches!(q.variant, Some(query::Variant::Rrf(pb::Rrf { k: Some(20), ref weights })) if *weights == vec![2.0, 1.0]));
        let q = fusion_query(aidocs_core::Fusion::default());
        assert!(matches!(q.variant, Some(query::Variant::Rrf(pb::Rrf { k: Some(20), ref weights })) if weights.is_empty()));
        assert!(matches!(fusion_query(aidocs_core::Fusion::Dbsf).variant, Some(query::Variant::Fusion(f)) if f == pb::Fusion::Dbsf as i32));
    }

    #[test]
    fn transient_statuses_are_retried_and_retry_after_is_read() {
        assert!(transient(&Status::unavailable("down")));
        assert!(!transient(&Status::invalid_argument("bad")));
        let mut s = Status::resource_exhausted("slow down");
        s.metadata_mut().insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&s), Some(Duration::from_secs(2)));
    }
}
