//! A Qdrant server for tests: Qdrant's own gRPC services (qdrant-client's generated server
//! traits) and the two REST snapshot routes, answered by an [`EdgeStore`] — the embedded
//! Qdrant engine. No Qdrant server package can be installed here, so this is what the
//! `QdrantStore` tests talk to in CI; `AIDOCS_TEST_QDRANT_URL` points the same tests at a
//! real server.
//!
//! It implements what aidocs sends (named dense + sparse vectors, `must` field filters,
//! prefetch + RRF/DBSF queries, alias batches) and answers anything else with
//! `UNIMPLEMENTED`. It also checks the `api-key` header, reports a chosen version, can fail
//! the next calls with `UNAVAILABLE` (retry tests) and logs every call it served.

use crate::EdgeStore;
use crate::qdrant::convert;
use aidocs_core::{CollectionSpec, Fusion, Point, SearchMode, SparseVector, StoreError, StoreQuery, VectorStore};
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use qdrant_client::qdrant::{
    self as pb, alias_operations, collections_server, points_selector::PointsSelectorOneOf, points_server, qdrant_server,
    query, snapshots_server, vector_input, vectors_config,
};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

/// What the server does besides answering.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Version the health check reports.
    pub version: String,
    /// Calls without this `api-key` header are refused with `UNAUTHENTICATED`.
    pub api_key: Option<String>,
    /// Serve gRPC over TLS with this PEM certificate and key (the URL becomes
    /// `https://localhost:PORT`).
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self { version: "1.20.0".into(), api_key: None, tls: None }
    }
}

#[derive(Default)]
struct Shared {
    /// Method names served, in order (`update_aliases` with its action count).
    calls: Mutex<Vec<String>>,
    /// The next this-many calls fail with `UNAVAILABLE`.
    fail_next: Mutex<usize>,
    /// Snapshots per collection: (name, bytes).
    snapshots: Mutex<BTreeMap<String, Vec<(String, Vec<u8>)>>>,
}

#[derive(Clone)]
struct Svc {
    store: EdgeStore,
    opts: Arc<ServerOptions>,
    shared: Arc<Shared>,
}

/// A running test server; stops when dropped.
pub struct QdrantTestServer {
    pub grpc_url: String,
    pub rest_url: String,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for QdrantTestServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl QdrantTestServer {
    /// Serve `store` on two free 127.0.0.1 ports (gRPC and REST).
    pub async fn start(store: EdgeStore, opts: ServerOptions) -> std::io::Result<Self> {
        let svc = Svc { store, opts: Arc::new(opts), shared: Arc::default() };
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let (grpc_addr, rest_addr): (SocketAddr, SocketAddr) = (grpc.local_addr()?, rest.local_addr()?);
        let mut builder = tonic::transport::Server::builder();
        let grpc_url = match &svc.opts.tls {
            Some((cert, key)) => {
                let tls = tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(cert, key));
                builder = builder.tls_config(tls).map_err(std::io::Error::other)?;
                format!("https://localhost:{}", grpc_addr.port())
            }
            None => format!("http://{grpc_addr}"),
        };
        let router = builder
            .add_service(collections_server::CollectionsServer::new(svc.clone()).max_decoding_message_size(256 << 20))
            .add_service(points_server::PointsServer::new(svc.clone()).max_decoding_message_size(256 << 20))
            .add_service(snapshots_server::SnapshotsServer::new(svc.clone()))
            .add_service(qdrant_server::QdrantServer::new(svc.clone()));
        let incoming = tonic::transport::server::TcpIncoming::from(grpc);
        let grpc_task = tokio::spawn(async move {
            let _ = router.serve_with_incoming(incoming).await;
        });
        let app = axum::Router::new()
            .route("/collections/{collection}/snapshots/{name}", axum::routing::get(download))
            .route("/collections/{collection}/snapshots/upload", axum::routing::post(upload))
            .layer(axum::extract::DefaultBodyLimit::max(512 << 20))
            .with_state(svc.clone());
        let rest_task = tokio::spawn(async move {
            let _ = axum::serve(rest, app).await;
        });
        Ok(Self {
            grpc_url,
            rest_url: format!("http://{rest_addr}"),
            shared: svc.shared,
            tasks: vec![grpc_task, rest_task],
        })
    }

    /// Every call served so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// Fail the next `n` calls with `UNAVAILABLE` (a restarting node, say).
    pub fn fail_next(&self, n: usize) {
        *self.shared.fail_next.lock().unwrap() = n;
    }
}

fn status(e: StoreError) -> Status {
    match e {
        StoreError::CollectionNotFound(n) => Status::not_found(format!("Not found: Collection `{n}` doesn't exist!")),
        StoreError::AliasNotFound(n) => Status::not_found(format!("Not found: Alias `{n}` doesn't exist!")),
        StoreError::CollectionExists(n) => Status::already_exists(format!("Collection `{n}` already exists!")),
        e @ (StoreError::InvalidName { .. } | StoreError::DimensionMismatch { .. }) => Status::invalid_argument(e.to_string()),
        e => Status::internal(e.to_string()),
    }
}

impl Svc {
    /// Check the API key, apply injected faults and log the call.
    fn enter<T>(&self, method: &str, req: &Request<T>) -> Result<(), Status> {
        self.gate(method, req.metadata().get("api-key").and_then(|v| v.to_str().ok()))
    }

    fn gate(&self, method: &str, key: Option<&str>) -> Result<(), Status> {
        if let Some(want) = &self.opts.api_key
            && key != Some(want.as_str())
        {
            return Err(Status::unauthenticated("Must provide an API key or an Authorization bearer token"));
        }
        {
            let mut fail = self.shared.fail_next.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(Status::unavailable("test server: injected failure"));
            }
        }
        self.shared.calls.lock().unwrap().push(method.to_owned());
        Ok(())
    }
}

fn ok_points() -> Response<pb::PointsOperationResponse> {
    Response::new(pb::PointsOperationResponse {
        result: Some(pb::UpdateResult { operation_id: Some(0), status: pb::UpdateStatus::Completed as i32 }),
        ..Default::default()
    })
}

fn ok_collection() -> Response<pb::CollectionOperationResponse> {
    Response::new(pb::CollectionOperationResponse { result: true, ..Default::default() })
}

/// Whether a request wants payloads. An include list gets the whole payload here (a
/// superset of what Qdrant returns; readers take the fields they asked for).
fn wants(sel: &Option<pb::WithPayloadSelector>) -> bool {
    matches!(
        sel.as_ref().and_then(|s| s.selector_options.as_ref()),
        Some(pb::with_payload_selector::SelectorOptions::Enable(true) | pb::with_payload_selector::SelectorOptions::Include(_))
    )
}

fn wants_vectors(sel: &Option<pb::WithVectorsSelector>) -> bool {
    matches!(sel.as_ref().and_then(|s| s.selector_options.as_ref()), Some(pb::with_vectors_selector::SelectorOptions::Enable(true)))
}

fn retrieved(p: Point, payload: bool, vectors: bool) -> Result<pb::RetrievedPoint, Status> {
    Ok(pb::RetrievedPoint {
        id: Some(convert::to_id(p.id)),
        payload: if payload { convert::to_payload(&p.payload).map_err(status)? } else { HashMap::new() },
        vectors: vectors.then(|| convert::to_vectors_output(p.dense, &p.sparse)),
        ..Default::default()
    })
}

fn invalid(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

fn nearest_of(q: Option<pb::Query>) -> Result<pb::VectorInput, Status> {
    match q.and_then(|q| q.variant) {
        Some(query::Variant::Nearest(v)) => Ok(v),
        other => Err(Status::unimplemented(format!("test server: query {other:?}"))),
    }
}

fn store_query(req: pb::QueryPoints) -> Result<StoreQuery, Status> {
    let filter = convert::from_filter(req.filter).map_err(invalid)?;
    let limit = req.limit.unwrap_or(10) as usize;
    let mut q = StoreQuery { mode: SearchMode::Dense, dense: None, sparse: None, filter, limit, prefetch_limit: limit, fusion: Fusion::default() };
    let mut take = |v: pb::VectorInput| match v.variant {
        Some(vector_input::Variant::Dense(d)) => q.dense = Some(d.data),
        Some(vector_input::Variant::Sparse(s)) => q.sparse = Some(SparseVector { indices: s.indices, values: s.values }),
        _ => {}
    };
    if req.prefetch.is_empty() {
        take(nearest_of(req.query)?);
        let mode = if q.dense.is_some() { SearchMode::Dense } else { SearchMode::Sparse };
        q.mode = mode;
        return Ok(q);
    }
    let [dense, sparse] = <[pb::PrefetchQuery; 2]>::try_from(req.prefetch).map_err(|_| invalid("test server: two prefetches expected"))?;
    let per = dense.limit.unwrap_or(10) as usize;
    take(nearest_of(dense.query)?);
    take(nearest_of(sparse.query)?);
    q.mode = SearchMode::Hybrid;
    q.prefetch_limit = per;
    // Qdrant fuses exactly `per` candidates from each prefetch; the embedded engine widens
    // its prefetches to the limit, so the fused page asked for may not exceed `per`.
    q.limit = q.limit.min(per);
    q.fusion = match req.query.and_then(|q| q.variant) {
        Some(query::Variant::Rrf(r)) => {
            let (dense_weight, sparse_weight) = match r.weights.as_slice() {
                [] => (1.0, 1.0),
                [d, s] => (*d, *s),
                w => return Err(invalid(format!("RRF weights {w:?}"))),
            };
            Fusion::Rrf { k: r.k.unwrap_or(2) as usize, dense_weight, sparse_weight }
        }
        Some(query::Variant::Fusion(f)) if f == pb::Fusion::Dbsf as i32 => Fusion::Dbsf,
        Some(query::Variant::Fusion(f)) if f == pb::Fusion::Rrf as i32 => Fusion::Rrf { k: 2, dense_weight: 1.0, sparse_weight: 1.0 },
        other => return Err(Status::unimplemented(format!("test server: fusion {other:?}"))),
    };
    Ok(q)
}

macro_rules! service {
    ($trait:path { $($real:tt)* } unsupported { $($name:ident: $req:ident => $resp:ident;)* }) => {
        #[tonic::async_trait]
        impl $trait for Svc {
            $($real)*
            $(
                async fn $name(&self, _: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    Err(Status::unimplemented(concat!("test server: ", stringify!($name))))
                }
            )*
        }
    };
}

service!(qdrant_server::Qdrant {
    async fn health_check(&self, req: Request<pb::HealthCheckRequest>) -> Result<Response<pb::HealthCheckReply>, Status> {
        self.enter("health_check", &req)?;
        Ok(Response::new(pb::HealthCheckReply { title: "qdrant - vector search engine (aidocs test server)".into(), version: self.opts.version.clone(), commit: None }))
    }
} unsupported {});

service!(collections_server::Collections {
    async fn get(&self, req: Request<pb::GetCollectionInfoRequest>) -> Result<Response<pb::GetCollectionInfoResponse>, Status> {
        self.enter("get", &req)?;
        let info = self.store.collection_info(&req.into_inner().collection_name).await.map_err(status)?;
        let dense = pb::VectorParams { size: info.dims as u64, distance: pb::Distance::Cosine as i32, ..Default::default() };
        let metadata = info
            .properties
            .into_iter()
            .filter(|(k, _)| k != "disk_bytes" && k != "wal_bytes")
            .map(|(k, v)| (k, pb::Value::from(v)))
            .collect();
        let config = pb::CollectionConfig {
            params: Some(pb::CollectionParams {
                shard_number: 1,
                vectors_config: Some(pb::VectorsConfig {
                    config: Some(vectors_config::Config::ParamsMap(pb::VectorParamsMap { map: HashMap::from([(convert::DENSE.into(), dense)]) })),
                }),
                sparse_vectors_config: Some(pb::SparseVectorConfig {
                    map: HashMap::from([(convert::SPARSE.into(), pb::SparseVectorParams { modifier: Some(pb::Modifier::Idf as i32), index: None })]),
                }),
                ..Default::default()
            }),
            metadata,
            ..Default::default()
        };
        Ok(Response::new(pb::GetCollectionInfoResponse {
            result: Some(pb::CollectionInfo {
                status: pb::CollectionStatus::Green as i32,
                segments_count: info.segments as u64,
                config: Some(config),
                points_count: Some(info.points as u64),
                indexed_vectors_count: Some(info.indexed_vectors as u64),
                ..Default::default()
            }),
            time: 0.0,
        }))
    }

    async fn list(&self, req: Request<pb::ListCollectionsRequest>) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        self.enter("list", &req)?;
        let all = self.store.list_collections().await.map_err(status)?;
        let collections = all.into_iter().map(|c| pb::CollectionDescription { name: c.name }).collect();
        Ok(Response::new(pb::ListCollectionsResponse { collections, time: 0.0 }))
    }

    async fn create(&self, req: Request<pb::CreateCollection>) -> Result<Response<pb::CollectionOperationResponse>, Status> {
        self.enter("create", &req)?;
        let req = req.into_inner();
        let dims = match req.vectors_config.and_then(|v| v.config) {
            Some(vectors_config::Config::ParamsMap(m)) => m.map.get(convert::DENSE).map(|p| p.size as usize),
            _ => None,
        }
        .ok_or_else(|| invalid("test server: a named `dense` vector is expected"))?;
        let properties = req.metadata.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.clone()))).collect();
        self.store.create_collection(&CollectionSpec { name: req.collection_name, dims, properties }).await.map_err(status)?;
        Ok(ok_collection())
    }

    async fn delete(&self, req: Request<pb::DeleteCollection>) -> Result<Response<pb::CollectionOperationResponse>, Status> {
        self.enter("delete_collection", &req)?;
        self.store.delete_collection(&req.into_inner().collection_name).await.map_err(status)?;
        Ok(ok_collection())
    }

    async fn update_aliases(&self, req: Request<pb::ChangeAliases>) -> Result<Response<pb::CollectionOperationResponse>, Status> {
        let n = req.get_ref().actions.len();
        self.enter(&format!("update_aliases[{n}]"), &req)?;
        // Applied as one change: a delete followed by a create of the same alias is a switch.
        let mut actions = req.into_inner().actions.into_iter().filter_map(|a| a.action).peekable();
        while let Some(action) = actions.next() {
            match action {
                alias_operations::Action::DeleteAlias(d) => {
                    let switch = matches!(actions.peek(), Some(alias_operations::Action::CreateAlias(c)) if c.alias_name == d.alias_name);
                    if !switch {
                        self.store.delete_alias(&d.alias_name).await.map_err(status)?;
                    }
                }
                alias_operations::Action::CreateAlias(c) => {
                    self.store.set_alias(&c.alias_name, &c.collection_name).await.map_err(status)?
                }
                alias_operations::Action::RenameAlias(_) => return Err(Status::unimplemented("test server: rename alias")),
            }
        }
        Ok(ok_collection())
    }

    async fn list_collection_aliases(&self, req: Request<pb::ListCollectionAliasesRequest>) -> Result<Response<pb::ListAliasesResponse>, Status> {
        self.enter("list_collection_aliases", &req)?;
        let name = req.into_inner().collection_name;
        let aliases = self.store.list_aliases().await.map_err(status)?;
        let aliases = aliases
            .into_iter()
            .filter(|(_, c)| *c == name)
            .map(|(alias_name, collection_name)| pb::AliasDescription { alias_name, collection_name })
            .collect();
        Ok(Response::new(pb::ListAliasesResponse { aliases, time: 0.0 }))
    }

    async fn list_aliases(&self, req: Request<pb::ListAliasesRequest>) -> Result<Response<pb::ListAliasesResponse>, Status> {
        self.enter("list_aliases", &req)?;
        let aliases = self.store.list_aliases().await.map_err(status)?;
        let aliases = aliases.into_iter().map(|(alias_name, collection_name)| pb::AliasDescription { alias_name, collection_name }).collect();
        Ok(Response::new(pb::ListAliasesResponse { aliases, time: 0.0 }))
    }

    async fn collection_exists(&self, req: Request<pb::CollectionExistsRequest>) -> Result<Response<pb::CollectionExistsResponse>, Status> {
        self.enter("collection_exists", &req)?;
        let name = req.into_inner().collection_name;
        // As a real Qdrant answers: true for a collection and for an alias name.
        let exists = self.store.list_collections().await.map_err(status)?.iter().any(|c| c.name == name)
            || self.store.list_aliases().await.map_err(status)?.iter().any(|(a, _)| *a == name);
        Ok(Response::new(pb::CollectionExistsResponse { result: Some(pb::CollectionExists { exists }), time: 0.0 }))
    }
} unsupported {
    update: UpdateCollection => CollectionOperationResponse;
    collection_cluster_info: CollectionClusterInfoRequest => CollectionClusterInfoResponse;
    update_collection_cluster_setup: UpdateCollectionClusterSetupRequest => UpdateCollectionClusterSetupResponse;
    create_shard_key: CreateShardKeyRequest => CreateShardKeyResponse;
    delete_shard_key: DeleteShardKeyRequest => DeleteShardKeyResponse;
    list_shard_keys: ListShardKeysRequest => ListShardKeysResponse;
});

service!(points_server::Points {
    async fn upsert(&self, req: Request<pb::UpsertPoints>) -> Result<Response<pb::PointsOperationResponse>, Status> {
        self.enter("upsert", &req)?;
        let req = req.into_inner();
        let mut points = Vec::with_capacity(req.points.len());
        for p in req.points {
            let id = convert::from_id(p.id.as_ref()).map_err(status)?;
            let (dense, sparse) = convert::from_point_vectors(p.vectors).map_err(status)?;
            points.push(Point { id, dense, sparse, payload: convert::from_payload(p.payload).map_err(status)? });
        }
        self.store.upsert(&req.collection_name, points).await.map_err(status)?;
        Ok(ok_points())
    }

    async fn delete(&self, req: Request<pb::DeletePoints>) -> Result<Response<pb::PointsOperationResponse>, Status> {
        self.enter("delete_points", &req)?;
        let req = req.into_inner();
        let Some(PointsSelectorOneOf::Points(list)) = req.points.and_then(|p| p.points_selector_one_of) else {
            return Err(Status::unimplemented("test server: delete by filter"));
        };
        let ids = list.ids.iter().map(|i| convert::from_id(Some(i))).collect::<Result<Vec<_>, _>>().map_err(status)?;
        self.store.delete(&req.collection_name, ids).await.map_err(status)?;
        Ok(ok_points())
    }

    async fn get(&self, req: Request<pb::GetPoints>) -> Result<Response<pb::GetResponse>, Status> {
        self.enter("get_points", &req)?;
        let req = req.into_inner();
        let ids = req.ids.iter().map(|i| convert::from_id(Some(i))).collect::<Result<Vec<_>, _>>().map_err(status)?;
        let (payload, vectors) = (wants(&req.with_payload), wants_vectors(&req.with_vectors));
        // Qdrant does not promise the asked order; answer in reverse to keep clients honest.
        let mut points = self.store.retrieve(&req.collection_name, &ids).await.map_err(status)?;
        points.reverse();
        let result = points.into_iter().map(|p| retrieved(p, payload, vectors)).collect::<Result<_, _>>()?;
        Ok(Response::new(pb::GetResponse { result, ..Default::default() }))
    }

    async fn scroll(&self, req: Request<pb::ScrollPoints>) -> Result<Response<pb::ScrollResponse>, Status> {
        self.enter("scroll", &req)?;
        let req = req.into_inner();
        let (payload, vectors) = (wants(&req.with_payload), wants_vectors(&req.with_vectors));
        let from = req.offset.as_ref().map(|o| convert::from_id(Some(o))).transpose().map_err(status)?;
        let limit = req.limit.unwrap_or(10) as usize;
        let filter = convert::from_filter(req.filter).map_err(invalid)?;
        let (points, next) = if filter.is_empty() {
            let page = self.store.scroll_points(&req.collection_name, from, limit).await.map_err(status)?;
            (page.points, page.next)
        } else {
            // Filtered scrolls page over the matching ids.
            let mut ids: Vec<uuid::Uuid> = self.store.scroll(&req.collection_name, &filter).await.map_err(status)?.into_iter().map(|p| p.id).collect();
            ids.sort();
            ids.retain(|id| from.is_none_or(|f| *id >= f));
            let next = ids.get(limit).copied();
            ids.truncate(limit);
            (self.store.retrieve(&req.collection_name, &ids).await.map_err(status)?, next)
        };
        let result = points.into_iter().map(|p| retrieved(p, payload, vectors)).collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ScrollResponse { next_page_offset: next.map(convert::to_id), result, ..Default::default() }))
    }

    async fn facet(&self, req: Request<pb::FacetCounts>) -> Result<Response<pb::FacetResponse>, Status> {
        self.enter("facet", &req)?;
        let req = req.into_inner();
        if req.filter.is_some() {
            return Err(Status::unimplemented("test server: facet with a filter"));
        }
        let field: aidocs_core::FilterField = req.key.parse().map_err(|e: String| Status::invalid_argument(e))?;
        let limit = req.limit.unwrap_or(10) as usize;
        let hits = self.store.facet(&req.collection_name, field, limit).await.map_err(status)?;
        let hits = hits
            .into_iter()
            .map(|(v, count)| pb::FacetHit { value: Some(pb::FacetValue { variant: Some(pb::facet_value::Variant::StringValue(v)) }), count: count as u64 })
            .collect();
        Ok(Response::new(pb::FacetResponse { hits, ..Default::default() }))
    }

    async fn count(&self, req: Request<pb::CountPoints>) -> Result<Response<pb::CountResponse>, Status> {
        self.enter("count", &req)?;
        let req = req.into_inner();
        let filter = convert::from_filter(req.filter).map_err(invalid)?;
        let count = self.store.count(&req.collection_name, &filter).await.map_err(status)? as u64;
        Ok(Response::new(pb::CountResponse { result: Some(pb::CountResult { count }), ..Default::default() }))
    }

    async fn query(&self, req: Request<pb::QueryPoints>) -> Result<Response<pb::QueryResponse>, Status> {
        self.enter("query", &req)?;
        let req = req.into_inner();
        let collection = req.collection_name.clone();
        let with_payload = wants(&req.with_payload);
        let q = store_query(req)?;
        let hits = self.store.query(&collection, &q).await.map_err(status)?;
        let result = hits
            .into_iter()
            .map(|h| {
                Ok(pb::ScoredPoint {
                    id: Some(convert::to_id(h.id)),
                    payload: if with_payload { convert::to_payload(&h.payload).map_err(status)? } else { HashMap::new() },
                    score: h.score,
                    ..Default::default()
                })
            })
            .collect::<Result<_, Status>>()?;
        Ok(Response::new(pb::QueryResponse { result, ..Default::default() }))
    }

    async fn create_field_index(&self, req: Request<pb::CreateFieldIndexCollection>) -> Result<Response<pb::PointsOperationResponse>, Status> {
        // The embedded engine indexes every filter field when a collection is created.
        self.enter("create_field_index", &req)?;
        Ok(ok_points())
    }
} unsupported {
    update_vectors: UpdatePointVectors => PointsOperationResponse;
    delete_vectors: DeletePointVectors => PointsOperationResponse;
    set_payload: SetPayloadPoints => PointsOperationResponse;
    overwrite_payload: SetPayloadPoints => PointsOperationResponse;
    delete_payload: DeletePayloadPoints => PointsOperationResponse;
    clear_payload: ClearPayloadPoints => PointsOperationResponse;
    delete_field_index: DeleteFieldIndexCollection => PointsOperationResponse;
    create_vector_name: CreateVectorNameRequest => PointsOperationResponse;
    delete_vector_name: DeleteVectorNameRequest => PointsOperationResponse;
    search: SearchPoints => SearchResponse;
    search_batch: SearchBatchPoints => SearchBatchResponse;
    search_groups: SearchPointGroups => SearchGroupsResponse;
    recommend: RecommendPoints => RecommendResponse;
    recommend_batch: RecommendBatchPoints => RecommendBatchResponse;
    recommend_groups: RecommendPointGroups => RecommendGroupsResponse;
    discover: DiscoverPoints => DiscoverResponse;
    discover_batch: DiscoverBatchPoints => DiscoverBatchResponse;
    update_batch: UpdateBatchPoints => UpdateBatchResponse;
    query_batch: QueryBatchPoints => QueryBatchResponse;
    query_groups: QueryPointGroups => QueryGroupsResponse;
    search_matrix_pairs: SearchMatrixPoints => SearchMatrixPairsResponse;
    search_matrix_offsets: SearchMatrixPoints => SearchMatrixOffsetsResponse;
});

/// The test server's snapshot file: the collection's dims, properties and points as JSON
/// (opaque to clients, as Qdrant's tar snapshots are).
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotFile {
    dims: usize,
    properties: BTreeMap<String, String>,
    points: Vec<SnapPoint>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SnapPoint {
    id: uuid::Uuid,
    dense: Vec<f32>,
    sparse: SparseVector,
    payload: aidocs_core::ChunkPayload,
}

impl Svc {
    async fn snapshot_bytes(&self, collection: &str) -> Result<Vec<u8>, StoreError> {
        let info = self.store.collection_info(collection).await?;
        let points = super::all_points(&self.store, collection)
            .await?
            .into_iter()
            .map(|p| SnapPoint { id: p.id, dense: p.dense, sparse: p.sparse, payload: p.payload })
            .collect();
        let properties = info.properties.into_iter().filter(|(k, _)| k != "disk_bytes" && k != "wal_bytes").collect();
        serde_json::to_vec(&SnapshotFile { dims: info.dims, properties, points }).map_err(|e| StoreError::Backend(e.to_string()))
    }

    async fn recover(&self, collection: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let file: SnapshotFile = serde_json::from_slice(bytes).map_err(|e| StoreError::Backend(format!("not a snapshot: {e}")))?;
        if self.store.list_collections().await?.iter().any(|c| c.name == collection) {
            self.store.delete_collection(collection).await?;
        }
        self.store.create_collection(&CollectionSpec { name: collection.to_owned(), dims: file.dims, properties: file.properties }).await?;
        let points = file.points.into_iter().map(|p| Point { id: p.id, dense: p.dense, sparse: p.sparse, payload: p.payload }).collect();
        self.store.upsert(collection, points).await
    }
}

service!(snapshots_server::Snapshots {
    async fn create(&self, req: Request<pb::CreateSnapshotRequest>) -> Result<Response<pb::CreateSnapshotResponse>, Status> {
        self.enter("create_snapshot", &req)?;
        let collection = req.into_inner().collection_name;
        let bytes = self.snapshot_bytes(&collection).await.map_err(status)?;
        let now = chrono::Utc::now();
        let name = format!("{collection}-{}.snapshot", now.format("%Y-%m-%d-%H-%M-%S%.6f"));
        let size = bytes.len() as i64;
        self.shared.snapshots.lock().unwrap().entry(collection).or_default().push((name.clone(), bytes));
        let ts = prost_types::Timestamp { seconds: now.timestamp(), nanos: now.timestamp_subsec_nanos() as i32 };
        Ok(Response::new(pb::CreateSnapshotResponse {
            snapshot_description: Some(pb::SnapshotDescription { name, creation_time: Some(ts), size, checksum: None }),
            time: 0.0,
        }))
    }

    async fn list(&self, req: Request<pb::ListSnapshotsRequest>) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        self.enter("list_snapshots", &req)?;
        let collection = req.into_inner().collection_name;
        let snapshot_descriptions = self.shared.snapshots.lock().unwrap().get(&collection).map(|v| {
            v.iter().map(|(name, b)| pb::SnapshotDescription { name: name.clone(), size: b.len() as i64, ..Default::default() }).collect()
        });
        Ok(Response::new(pb::ListSnapshotsResponse { snapshot_descriptions: snapshot_descriptions.unwrap_or_default(), time: 0.0 }))
    }

    async fn delete(&self, req: Request<pb::DeleteSnapshotRequest>) -> Result<Response<pb::DeleteSnapshotResponse>, Status> {
        self.enter("delete_snapshot", &req)?;
        let req = req.into_inner();
        let mut all = self.shared.snapshots.lock().unwrap();
        let list = all.entry(req.collection_name).or_default();
        let before = list.len();
        list.retain(|(n, _)| *n != req.snapshot_name);
        if list.len() == before {
            return Err(Status::not_found(format!("Snapshot {} not found", req.snapshot_name)));
        }
        Ok(Response::new(pb::DeleteSnapshotResponse { time: 0.0 }))
    }
} unsupported {
    create_full: CreateFullSnapshotRequest => CreateSnapshotResponse;
    list_full: ListFullSnapshotsRequest => ListSnapshotsResponse;
    delete_full: DeleteFullSnapshotRequest => DeleteSnapshotResponse;
});

fn rest_gate(svc: &Svc, method: &str, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
    svc.gate(method, headers.get("api-key").and_then(|v| v.to_str().ok())).map_err(|s| (StatusCode::UNAUTHORIZED, s.message().to_owned()))
}

async fn download(
    State(svc): State<Svc>,
    UrlPath((collection, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Vec<u8>, (StatusCode, String)> {
    rest_gate(&svc, "download_snapshot", &headers)?;
    let all = svc.shared.snapshots.lock().unwrap();
    let found = all.get(&collection).and_then(|v| v.iter().find(|(n, _)| *n == name)).map(|(_, b)| b.clone());
    found.ok_or((StatusCode::NOT_FOUND, format!("Snapshot {name} not found")))
}

async fn upload(
    State(svc): State<Svc>,
    UrlPath(collection): UrlPath<String>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<&'static str, (StatusCode, String)> {
    rest_gate(&svc, "upload_snapshot", &headers)?;
    let bad = |e: &dyn std::fmt::Display| (StatusCode::BAD_REQUEST, e.to_string());
    while let Some(field) = form.next_field().await.map_err(|e| bad(&e))? {
        if field.name() == Some("snapshot") {
            let bytes = field.bytes().await.map_err(|e| bad(&e))?;
            svc.recover(&collection, &bytes).await.map_err(|e| bad(&e))?;
            return Ok(r#"{"result":true,"status":"ok"}"#);
        }
    }
    Err((StatusCode::BAD_REQUEST, "multipart field `snapshot` missing".into()))
}
