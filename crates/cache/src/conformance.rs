//! The [`Cache`] conformance suite. Every implementation runs it; each check panics with a
//! message on violation. Use a fresh key `prefix` per run (shared servers).

use aidocs_core::Cache;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// Run every check.
pub async fn run_all(cache: &dyn Cache, prefix: &str) {
    get_set_and_binary_values(cache, prefix).await;
    mget_with_misses_and_mset(cache, prefix).await;
    large_values(cache, prefix).await;
    ttl_expiry(cache, prefix).await;
    prefix_delete(cache, prefix).await;
    stats_count(cache, prefix).await;
}

pub async fn get_set_and_binary_values(cache: &dyn Cache, p: &str) {
    let k = format!("{p}:bin");
    assert_eq!(cache.get(&k).await.unwrap(), None, "absent key is a miss");
    let all_bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    cache.set(&k, all_bytes.clone(), LONG).await.unwrap();
    assert_eq!(cache.get(&k).await.unwrap(), Some(all_bytes), "binary-safe values");
    cache.set(&k, b"replaced".to_vec(), LONG).await.unwrap();
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some(&b"replaced"[..]), "set replaces");
    cache.set(&format!("{p}:empty"), Vec::new(), LONG).await.unwrap();
    assert_eq!(cache.get(&format!("{p}:empty")).await.unwrap(), Some(Vec::new()), "empty value is a hit, not a miss");
}

pub async fn mget_with_misses_and_mset(cache: &dyn Cache, p: &str) {
    let keys: Vec<String> = (0..5).map(|i| format!("{p}:m{i}")).collect();
    cache.mset(vec![(keys[1].clone(), b"one".to_vec()), (keys[3].clone(), b"three".to_vec())], LONG).await.unwrap();
    let got = cache.mget(&keys).await.unwrap();
    assert_eq!(got.len(), 5, "one slot per key");
    assert_eq!(got, vec![None, Some(b"one".to_vec()), None, Some(b"three".to_vec()), None], "in key order");
    assert!(cache.mget(&[]).await.unwrap().is_empty());
    cache.mset(Vec::new(), LONG).await.unwrap();
}

pub async fn large_values(cache: &dyn Cache, p: &str) {
    // 2 MiB, compressible, and 256 KiB of noise.
    let text = "hybrid search over documentation ".repeat(2 * 1024 * 1024 / 33).into_bytes();
    cache.set(&format!("{p}:large"), text.clone(), LONG).await.unwrap();
    assert_eq!(cache.get(&format!("{p}:large")).await.unwrap(), Some(text), "large values round-trip");
    let noise: Vec<u8> = (0..256 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    cache.set(&format!("{p}:noise"), noise.clone(), LONG).await.unwrap();
    assert_eq!(cache.get(&format!("{p}:noise")).await.unwrap(), Some(noise));
}

pub async fn ttl_expiry(cache: &dyn Cache, p: &str) {
    let k = format!("{p}:ttl");
    cache.set(&k, b"short".to_vec(), Duration::from_millis(300)).await.unwrap();
    cache.mset(vec![(format!("{p}:ttl2"), b"short".to_vec())], Duration::from_millis(300)).await.unwrap();
    cache.set(&format!("{p}:keep"), b"long".to_vec(), LONG).await.unwrap();
    assert!(cache.get(&k).await.unwrap().is_some(), "alive before its TTL");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(cache.get(&k).await.unwrap(), None, "expired after its TTL (set)");
    assert_eq!(cache.get(&format!("{p}:ttl2")).await.unwrap(), None, "expired after its TTL (mset)");
    assert!(cache.get(&format!("{p}:keep")).await.unwrap().is_some(), "other entries keep their own TTL");
}

pub async fn prefix_delete(cache: &dyn Cache, p: &str) {
    for i in 0..30 {
        cache.set(&format!("{p}:del:a:{i}"), vec![i as u8], LONG).await.unwrap();
    }
    cache.set(&format!("{p}:del:b:0"), b"stay".to_vec(), LONG).await.unwrap();
    cache.set(&format!("{p}:del:a*literal"), b"glob chars are literal".to_vec(), LONG).await.unwrap();
    assert_eq!(cache.delete_prefix(&format!("{p}:del:a:")).await.unwrap(), 30, "returns the number removed");
    assert_eq!(cache.get(&format!("{p}:del:a:7")).await.unwrap(), None);
    assert!(cache.get(&format!("{p}:del:b:0")).await.unwrap().is_some(), "other prefixes untouched");
    assert!(cache.get(&format!("{p}:del:a*literal")).await.unwrap().is_some(), "`:a:` does not match `a*`");
    assert_eq!(cache.delete_prefix(&format!("{p}:del:a*")).await.unwrap(), 1, "a `*` in the prefix is literal");
    assert_eq!(cache.delete_prefix(&format!("{p}:nothing:")).await.unwrap(), 0);
}

pub async fn stats_count(cache: &dyn Cache, p: &str) {
    let before = cache.stats();
    cache.set(&format!("{p}:s"), b"x".to_vec(), LONG).await.unwrap();
    cache.get(&format!("{p}:s")).await.unwrap();
    cache.get(&format!("{p}:s-missing")).await.unwrap();
    let after = cache.stats();
    assert!(after.hits > before.hits, "hits counted: {before:?} -> {after:?}");
    assert!(after.misses > before.misses, "misses counted: {before:?} -> {after:?}");
    assert_eq!(after.health, "ok");
}
