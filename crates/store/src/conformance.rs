//! The `VectorStore` conformance suite. Every backend runs it (EdgeStore always; the Qdrant
//! server backend when one is reachable). Each check panics with a message on violation.
//!
//! Use: `conformance::run_all(&store, "prefix").await` on an empty store.

use aidocs_core::{
    ChunkPayload, CollectionSpec, DocMetadata, Filter, FilterField, FilterValue, Fusion, Point, SearchMode,
    SparseVector, StoreError, StoreQuery, VectorStore,
};
use std::collections::BTreeMap;

const DIMS: usize = 4;

fn unit(v: [f32; DIMS]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// A synthetic point: dense direction `dense`, sparse terms `terms`, language `lang`.
pub fn point(n: u128, dense: [f32; DIMS], terms: &[(u32, f32)], lang: &str) -> Point {
    Point {
        id: uuid::Uuid::from_u128(n),
        dense: unit(dense),
        sparse: SparseVector { indices: terms.iter().map(|t| t.0).collect(), values: terms.iter().map(|t| t.1).collect() },
        payload: ChunkPayload {
            source: format!("test://doc{n}"),
            path: format!("doc{n}.md"),
            url: format!("file:///doc{n}.md#s{n}"),
            title: format!("Doc {n}"),
            anchor: format!("s{n}"),
            heading_path: vec![format!("Doc {n}")],
            text: format!("text of {n}"),
            chunk_index: 0,
            lead: false,
            content_hash: format!("h{n}"),
            doc_hash: format!("d{n}"),
            meta: DocMetadata {
                language: Some(lang.into()),
                difficulty_level: Some((n % 5) as i64 + 1),
                last_updated: Some(format!("2026-0{}-01T00:00:00Z", (n % 9) + 1)),
                ..Default::default()
            },
        },
    }
}

fn query(mode: SearchMode, dense: [f32; DIMS], terms: &[(u32, f32)], limit: usize) -> StoreQuery {
    StoreQuery {
        mode,
        dense: Some(unit(dense)),
        sparse: Some(SparseVector { indices: terms.iter().map(|t| t.0).collect(), values: terms.iter().map(|t| t.1).collect() }),
        filter: Filter::default(),
        limit,
        prefetch_limit: 50,
        fusion: Fusion::default(),
    }
}

fn spec(name: &str) -> CollectionSpec {
    CollectionSpec { name: name.into(), dims: DIMS, properties: BTreeMap::from([("embedding_model".into(), "test".into())]) }
}

fn ids(hits: &[aidocs_core::ScoredChunk]) -> Vec<u128> {
    hits.iter().map(|h| h.id.as_u128()).collect()
}

/// Run every check. `prefix` namespaces the collections the suite creates.
pub async fn run_all(store: &dyn VectorStore, prefix: &str) {
    collections_lifecycle(store, prefix).await;
    writes_reads_and_queries(store, prefix).await;
    filters(store, prefix).await;
    aliases(store, prefix).await;
    full_scan(store, prefix).await;
}

pub async fn collections_lifecycle(store: &dyn VectorStore, prefix: &str) {
    let name = format!("{prefix}_life");
    store.create_collection(&spec(&name)).await.expect("create");
    assert!(matches!(store.create_collection(&spec(&name)).await, Err(StoreError::CollectionExists(_))), "duplicate create must fail");
    assert!(matches!(store.create_collection(&spec("bad name!")).await, Err(StoreError::InvalidName { .. })));
    let info = store.collection_info(&name).await.expect("info");
    assert_eq!((info.name.as_str(), info.dims, info.points), (name.as_str(), DIMS, 0));
    assert_eq!(info.properties.get("embedding_model").map(String::as_str), Some("test"));
    assert!(store.list_collections().await.unwrap().iter().any(|c| c.name == name));
    store.delete_collection(&name).await.expect("delete");
    assert!(matches!(store.collection_info(&name).await, Err(StoreError::CollectionNotFound(_))));
    assert!(matches!(store.delete_collection(&name).await, Err(StoreError::CollectionNotFound(_))));
    assert!(matches!(store.count("nope_missing", &Filter::default()).await, Err(StoreError::CollectionNotFound(_))));
}

pub async fn writes_reads_and_queries(store: &dyn VectorStore, prefix: &str) {
    let name = format!("{prefix}_rw");
    store.create_collection(&spec(&name)).await.unwrap();
    let pts = vec![
        point(1, [1.0, 0.0, 0.0, 0.0], &[(10, 1.0)], "python"),
        point(2, [0.9, 0.1, 0.0, 0.0], &[(11, 1.0)], "python"),
        point(3, [0.0, 1.0, 0.0, 0.0], &[(10, 0.5), (12, 1.0)], "rust"),
        point(4, [0.0, 0.0, 1.0, 0.0], &[(13, 1.0)], "rust"),
        point(5, [0.0, 0.0, 0.0, 1.0], &[], "go"),
    ];
    store.upsert(&name, pts.clone()).await.unwrap();
    assert_eq!(store.count(&name, &Filter::default()).await.unwrap(), 5);
    // Upsert of an existing id replaces it.
    let mut changed = pts[4].clone();
    changed.payload.title = "Changed".into();
    store.upsert(&name, vec![changed]).await.unwrap();
    assert_eq!(store.count(&name, &Filter::default()).await.unwrap(), 5);
    let all = store.scroll(&name, &Filter::default()).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all.iter().find(|p| p.id.as_u128() == 5).unwrap().payload.title, "Changed");
    assert_eq!(all.iter().find(|p| p.id.as_u128() == 1).unwrap().payload, pts[0].payload, "payload round-trips");

    let dense = store.query(&name, &query(SearchMode::Dense, [1.0, 0.05, 0.0, 0.0], &[], 3)).await.unwrap();
    assert_eq!(ids(&dense)[..2], [1, 2], "dense: nearest first");
    assert!(dense.len() <= 3 && dense.windows(2).all(|w| w[0].score >= w[1].score));
    let sparse = store.query(&name, &query(SearchMode::Sparse, [1.0, 0.0, 0.0, 0.0], &[(12, 1.0)], 10)).await.unwrap();
    assert_eq!(ids(&sparse), [3], "sparse: only points sharing a term");
    let hybrid = store.query(&name, &query(SearchMode::Hybrid, [0.0, 1.0, 0.0, 0.0], &[(12, 1.0)], 2)).await.unwrap();
    assert_eq!(hybrid.len(), 2);
    assert_eq!(hybrid[0].id.as_u128(), 3, "hybrid: first in both lists wins");
    assert_eq!(hybrid[0].payload, pts[2].payload);
    // Deterministic order on repeat (ties broken by id).
    for _ in 0..5 {
        let again = store.query(&name, &query(SearchMode::Hybrid, [0.0, 1.0, 0.0, 0.0], &[(12, 1.0)], 2)).await.unwrap();
        assert_eq!(ids(&again), ids(&hybrid));
    }
    // One candidate per prefetch: point 5 is dense rank 1, point 4 sparse rank 1, so their
    // RRF scores are equal and the smaller id must win, every time.
    let mut tie_q = query(SearchMode::Hybrid, [0.0, 0.0, 0.0, 1.0], &[(13, 1.0)], 1);
    tie_q.prefetch_limit = 1;
    for _ in 0..5 {
        assert_eq!(ids(&store.query(&name, &tie_q).await.unwrap()), [4], "equal RRF scores are ordered by id");
    }
    // Weighted RRF breaks that tie towards the heavier list.
    tie_q.fusion = Fusion::Rrf { k: 60, dense_weight: 2.0, sparse_weight: 1.0 };
    assert_eq!(ids(&store.query(&name, &tie_q).await.unwrap()), [5], "dense-weighted RRF prefers the dense winner");
    tie_q.fusion = Fusion::Rrf { k: 60, dense_weight: 1.0, sparse_weight: 2.0 };
    assert_eq!(ids(&store.query(&name, &tie_q).await.unwrap()), [4], "sparse-weighted RRF prefers the sparse winner");
    // DBSF fuses scores, not ranks: the point first in both lists still wins.
    let mut dbsf = query(SearchMode::Hybrid, [0.0, 1.0, 0.0, 0.0], &[(12, 1.0)], 2);
    dbsf.fusion = Fusion::Dbsf;
    assert_eq!(store.query(&name, &dbsf).await.unwrap()[0].id.as_u128(), 3, "dbsf: first in both lists wins");

    // Wrong dimensions are rejected.
    let mut bad = query(SearchMode::Dense, [1.0, 0.0, 0.0, 0.0], &[], 3);
    bad.dense = Some(vec![1.0; DIMS + 1]);
    assert!(matches!(store.query(&name, &bad).await, Err(StoreError::DimensionMismatch { .. })));
    let mut badp = point(9, [1.0, 0.0, 0.0, 0.0], &[], "x");
    badp.dense.push(0.0);
    assert!(matches!(store.upsert(&name, vec![badp]).await, Err(StoreError::DimensionMismatch { .. })));

    store.delete(&name, vec![uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(999)]).await.unwrap();
    assert_eq!(store.count(&name, &Filter::default()).await.unwrap(), 4);
    store.optimize(&name).await.unwrap();
    assert_eq!(store.count(&name, &Filter::default()).await.unwrap(), 4);
    store.delete_collection(&name).await.unwrap();
}

pub async fn filters(store: &dyn VectorStore, prefix: &str) {
    let name = format!("{prefix}_filter");
    store.create_collection(&spec(&name)).await.unwrap();
    let pts: Vec<Point> = (1..=30)
        .map(|i| point(i, [1.0, i as f32 / 30.0, 0.0, 0.0], &[(7, 1.0)], ["python", "rust", "go"][(i % 3) as usize]))
        .collect();
    store.upsert(&name, pts).await.unwrap();
    for mode in [SearchMode::Dense, SearchMode::Sparse, SearchMode::Hybrid] {
        let mut q = query(mode, [1.0, 0.5, 0.0, 0.0], &[(7, 1.0)], 20);
        q.filter = Filter::default().and(FilterField::Language, FilterValue::Keyword("rust".into()));
        let hits = store.query(&name, &q).await.unwrap();
        assert_eq!(hits.len(), 10, "{mode:?}: all 10 rust points");
        assert!(hits.iter().all(|h| h.payload.meta.language.as_deref() == Some("rust")), "{mode:?} filter leaked");
    }
    let any = Filter::default().and(FilterField::Language, FilterValue::AnyKeyword(vec!["go".into(), "rust".into()]));
    assert_eq!(store.count(&name, &any).await.unwrap(), 20);
    let lvl = Filter::default().and(FilterField::DifficultyLevel, FilterValue::IntRange { gte: Some(4), lte: None });
    assert_eq!(store.count(&name, &lvl).await.unwrap(), 12);
    let date = Filter::default().and(
        FilterField::LastUpdated,
        FilterValue::DateRange { gte: Some("2026-08-01T00:00:00Z".into()), lte: None },
    );
    assert_eq!(store.count(&name, &date).await.unwrap(), 6);
    let both = any.clone().and(FilterField::DifficultyLevel, FilterValue::Integer(1));
    assert!(store.scroll(&name, &both).await.unwrap().iter().all(|p| p.payload.meta.difficulty_level == Some(1)
        && p.payload.meta.language.as_deref() != Some("python")));
    store.delete_collection(&name).await.unwrap();
}

pub async fn aliases(store: &dyn VectorStore, prefix: &str) {
    let (blue, green, alias) = (format!("{prefix}_blue"), format!("{prefix}_green"), format!("{prefix}_live"));
    store.create_collection(&spec(&blue)).await.unwrap();
    store.create_collection(&spec(&green)).await.unwrap();
    store.upsert(&blue, vec![point(1, [1.0, 0.0, 0.0, 0.0], &[], "python")]).await.unwrap();
    store.upsert(&green, vec![point(2, [1.0, 0.0, 0.0, 0.0], &[], "python"), point(3, [0.0, 1.0, 0.0, 0.0], &[], "x")]).await.unwrap();
    assert!(matches!(store.set_alias(&alias, "missing_coll").await, Err(StoreError::CollectionNotFound(_))));
    store.set_alias(&alias, &blue).await.unwrap();
    assert_eq!(store.resolve(&alias).await.unwrap(), blue);
    assert_eq!(store.resolve(&blue).await.unwrap(), blue);
    assert_eq!(store.count(&alias, &Filter::default()).await.unwrap(), 1);
    store.set_alias(&alias, &green).await.unwrap();
    assert_eq!(store.count(&alias, &Filter::default()).await.unwrap(), 2, "alias switched");
    let hits = store.query(&alias, &query(SearchMode::Dense, [1.0, 0.0, 0.0, 0.0], &[], 1)).await.unwrap();
    assert_eq!(ids(&hits), [2]);
    assert!(store.list_aliases().await.unwrap().contains(&(alias.clone(), green.clone())));
    assert_eq!(store.collection_info(&green).await.unwrap().aliases, vec![alias.clone()]);
    assert!(matches!(store.set_alias(&blue, &green).await, Err(StoreError::CollectionExists(_))), "alias may not shadow a collection");
    assert!(matches!(store.set_alias(&format!("{prefix}_other"), &alias).await, Err(StoreError::CollectionNotFound(_))), "an alias of an alias");
    assert!(matches!(store.create_collection(&spec(&alias)).await, Err(StoreError::CollectionExists(_))), "a collection may not shadow an alias");
    // Deleting by the alias' name deletes nothing: not the alias, not the collection behind it.
    assert!(matches!(store.delete_collection(&alias).await, Err(StoreError::CollectionNotFound(_))));
    assert_eq!(store.count(&green, &Filter::default()).await.unwrap(), 2);
    assert_eq!(store.resolve(&alias).await.unwrap(), green);
    store.delete_alias(&alias).await.unwrap();
    assert!(matches!(store.resolve(&alias).await, Err(StoreError::CollectionNotFound(_))));
    assert!(matches!(store.delete_alias(&alias).await, Err(StoreError::AliasNotFound(_))));
    store.delete_collection(&blue).await.unwrap();
    store.delete_collection(&green).await.unwrap();
}

/// `scroll_points` pages through every point once, in id order, with vectors bit-exact;
/// `retrieve` returns the asked ids in order and leaves out missing ones.
pub async fn full_scan(store: &dyn VectorStore, prefix: &str) {
    let name = format!("{prefix}_scan");
    store.create_collection(&spec(&name)).await.unwrap();
    // Ids inserted out of order; one point without sparse terms.
    let pts: Vec<Point> = [7u128, 3, 11, 1, 5, 9, 2]
        .iter()
        .map(|&n| {
            let terms: Vec<(u32, f32)> = if n == 5 { vec![] } else { vec![(n as u32, 0.25 * n as f32), (100 + n as u32, 1.5)] };
            point(n, [n as f32, 1.0, (n % 3) as f32, 0.5], &terms, "python")
        })
        .collect();
    store.upsert(&name, pts.clone()).await.unwrap();
    let mut seen = Vec::new();
    let mut from = None;
    loop {
        let page = store.scroll_points(&name, from, 3).await.unwrap();
        assert!(page.points.len() <= 3, "a page holds at most `limit` points");
        seen.extend(page.points);
        match page.next {
            Some(n) => from = Some(n),
            None => break,
        }
    }
    let got: Vec<u128> = seen.iter().map(|p| p.id.as_u128()).collect();
    assert_eq!(got, [1, 2, 3, 5, 7, 9, 11], "every point once, ascending id");
    for p in &seen {
        let want = pts.iter().find(|w| w.id == p.id).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p.dense), bits(&want.dense), "dense vector of {} round-trips bit-exact", p.id);
        assert_eq!(p.sparse.indices, want.sparse.indices, "sparse indices of {}", p.id);
        assert_eq!(bits(&p.sparse.values), bits(&want.sparse.values), "sparse values of {}", p.id);
        assert_eq!(p.payload, want.payload, "payload of {}", p.id);
    }
    let ids = [uuid::Uuid::from_u128(9), uuid::Uuid::from_u128(404), uuid::Uuid::from_u128(1)];
    let back = store.retrieve(&name, &ids).await.unwrap();
    assert_eq!(back.iter().map(|p| p.id.as_u128()).collect::<Vec<_>>(), [9, 1], "asked order, missing left out");
    assert_eq!(back[1], pts[3]);
    assert!(matches!(store.scroll_points("nope_missing", None, 10).await, Err(StoreError::CollectionNotFound(_))));
    // Ids, sources and document hashes of the kept sources only.
    let keep: aidocs_core::SourceFilter = std::sync::Arc::new(|s: &str| s == "test://doc7" || s == "test://doc2");
    let mut entries = store.scroll_sources(&name, keep).await.unwrap();
    entries.sort_by_key(|e| e.id);
    assert_eq!(
        entries,
        [2u128, 7].map(|n| aidocs_core::SourceEntry { id: uuid::Uuid::from_u128(n), source: format!("test://doc{n}"), doc_hash: format!("d{n}") }),
    );
    let all = store.scroll_sources(&name, std::sync::Arc::new(|_: &str| true)).await.unwrap();
    assert_eq!(all.len(), 7);
    // The outline reads four fields and counts each document once.
    let mut two = point(12, [1.0, 2.0, 3.0, 4.0], &[(12, 1.0)], "python");
    two.payload.source = "test://doc7".into();
    two.payload.path = "doc7.md".into();
    two.payload.meta.version = Some("3.12".into());
    two.payload.meta.last_updated = Some("2027-01-01T00:00:00Z".into());
    let mut three = point(13, [1.0, 2.0, 3.0, 4.0], &[(13, 1.0)], "python");
    three.payload.meta.version = Some("3.9".into());
    store.upsert(&name, vec![two, three]).await.unwrap();
    let o = store.outline(&name).await.unwrap();
    assert_eq!(o.chunks, 9, "every chunk counted");
    assert_eq!(o.documents.len(), 8, "two chunks of test://doc7 are one document");
    assert_eq!(o.documents.get("test://doc13").map(String::as_str), Some("doc13.md"), "each document with its path");
    assert_eq!(o.versions.iter().map(String::as_str).collect::<Vec<_>>(), ["3.12", "3.9"], "distinct versions; the unversioned add none");
    assert_eq!(o.last_updated.as_deref(), Some("2027-01-01T00:00:00Z"), "the newest update");
    assert!(matches!(store.outline("nope_missing").await, Err(StoreError::CollectionNotFound(_))));
    // Facets: distinct keyword values with their counts, most frequent first.
    let versions = store.facet(&name, FilterField::Version, 10).await.unwrap();
    assert_eq!(versions, [("3.12".to_owned(), 1), ("3.9".to_owned(), 1)], "each version once, ties by value");
    let langs = store.facet(&name, FilterField::Language, 10).await.unwrap();
    assert_eq!(langs, [("python".to_owned(), 9)]);
    let sources = store.facet(&name, FilterField::Source, 1).await.unwrap();
    assert_eq!(sources, [("test://doc7".to_owned(), 2)], "the most frequent, cut at `limit`");
    store.delete_collection(&name).await.unwrap();
}
