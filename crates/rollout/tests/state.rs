//! Both state stores against the same contract: the file store on a temp dir, the Redis
//! store on a real Redis (`REDIS_URL`, default 127.0.0.1:6379).

use aidocs_rollout::canary::{Canary, CanaryPlan, Decision, StageSpec};
use aidocs_rollout::{AbTest, FileStateStore, RedisStateStore, Sample, StateStore, StateStoreExt, Variant};
use std::sync::Arc;
use std::time::Duration;

fn plan() -> CanaryPlan {
    let stage = |p| StageSpec { percentage: p, duration_s: 10, max_error_rate: 0.05, max_p95_ms: 100.0, min_requests: 5 };
    CanaryPlan { alias: "docs".into(), stable: "blue".into(), canary: "green".into(), stages: vec![stage(20), stage(100)], rollback_after_breaches: 2 }
}

async fn conformance(store: Arc<dyn StateStore>, id: &str) {
    assert!(store.get::<Canary>(id).await.unwrap().is_none());
    let c = Canary::new(id, plan(), 1_000).unwrap();
    assert!(!store.save(&c, 7).await.unwrap(), "a new canary needs expected version 0");
    assert!(store.save(&c, 0).await.unwrap());
    assert!(!store.save(&c, 0).await.unwrap(), "it exists now");
    assert_eq!(store.get::<Canary>(id).await.unwrap().as_ref(), Some(&c));
    assert!(store.list::<Canary>().await.unwrap().iter().any(|x| x.id == id));

    for i in 0..10 {
        let s = Sample { latency_ms: 3.0 + i as f64, error: i == 0, zero_results: i == 1 };
        store.record(id, 0, "canary", s).await.unwrap();
    }
    store.record(id, 0, "stable", Sample { latency_ms: 1.0, error: false, zero_results: false }).await.unwrap();
    let s = store.stats(id, 0, "canary").await.unwrap();
    assert_eq!((s.requests, s.errors, s.zero_results), (10, 1, 1));
    assert_eq!(s.quantile_ms(0.5), Some(10.0));
    assert_eq!(store.stats(id, 0, "stable").await.unwrap().requests, 1);
    assert_eq!(store.stats(id, 1, "canary").await.unwrap().requests, 0);

    // Two replicas evaluate the same version and both decide to advance: exactly one save
    // wins; the loser reloads and sees the new stage.
    let (mut a, mut b) = (store.get::<Canary>(id).await.unwrap().unwrap(), store.get::<Canary>(id).await.unwrap().unwrap());
    let v = a.version;
    let stats = store.stats(id, 0, "canary").await.unwrap();
    let mut good = stats.clone();
    good.errors = 0;
    assert_eq!(a.evaluate(&good, 11_000), Decision::Advance { to_stage: 1 });
    assert_eq!(b.evaluate(&good, 11_000), Decision::Advance { to_stage: 1 });
    let (ra, rb) = tokio::join!(store.save(&a, v), store.save(&b, v));
    assert!(ra.unwrap() ^ rb.unwrap(), "exactly one replica wins the compare-and-set");
    assert_eq!(store.get::<Canary>(id).await.unwrap().unwrap().stage, 1);

    // Clicks and A/B tests share the store.
    store.record_click(id, 0, "canary").await.unwrap();
    assert_eq!(store.stats(id, 0, "canary").await.unwrap().clicks, 1);
    let v = |id: &str| Variant { id: id.into(), weight: 0.5, collection: None, mode: None, hyde: None, rerank: None, fusion: None };
    let t = AbTest::new(format!("ab-{id}"), "docs", vec![v("a"), v("b")], 5).unwrap();
    assert!(store.save(&t, 0).await.unwrap());
    assert_eq!(store.list::<AbTest>().await.unwrap(), vec![t.clone()]);
    assert!(
        store
            .list::<Canary>()
            .await
            .unwrap()
            .iter()
            .all(|c| c.id == id),
        "kinds are separate"
    );

    // Delete removes a document and its listing; deleting it again is no error.
    store.delete::<AbTest>(&t.id).await.unwrap();
    assert!(store.get::<AbTest>(&t.id).await.unwrap().is_none());
    assert!(store.list::<AbTest>().await.unwrap().is_empty());
    store.delete::<AbTest>(&t.id).await.unwrap();
    assert!(
        store.get::<Canary>(id).await.unwrap().is_some(),
        "other documents stay"
    );
}

#[tokio::test]
async fn file_store_conforms_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStateStore::open(dir.path()).unwrap());
    conformance(store.clone(), "c-file").await;
    let saved = store.get::<Canary>("c-file").await.unwrap().unwrap();
    drop(store);
    let reopened = FileStateStore::open(dir.path()).unwrap();
    assert_eq!(reopened.get::<Canary>("c-file").await.unwrap(), Some(saved), "state survives");
    assert_eq!(reopened.stats("c-file", 0, "canary").await.unwrap().requests, 10, "statistics up to the last save survive");
    // A corrupt state file is an error naming it, never an empty state.
    std::fs::write(dir.path().join("canary.json"), b"{not json").unwrap();
    let err = FileStateStore::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("canary.json"), "{err}");
}

#[tokio::test]
async fn redis_store_conforms() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let ns = format!("aidocs-test:{}:{nanos}:", std::process::id());
    let store = Arc::new(RedisStateStore::connect(&url, &ns, Duration::from_secs(2)).await.expect("a Redis server (REDIS_URL; .ci/run starts one)"));
    conformance(store.clone(), "c-redis").await;
    // A second connection (another replica) sees the same state and statistics.
    let other = RedisStateStore::connect(&url, &ns, Duration::from_secs(2)).await.unwrap();
    assert_eq!(other.get::<Canary>("c-redis").await.unwrap().unwrap().stage, 1);
    assert_eq!(other.stats("c-redis", 0, "canary").await.unwrap().requests, 10);
}
