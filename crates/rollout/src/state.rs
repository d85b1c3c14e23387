//! Where canaries, A/B tests and their per-arm statistics live.
//!
//! - [`FileStateStore`]: one process (the embedded setup). Documents in `<kind>.json`,
//!   written atomically (temp file, fsync, rename, directory fsync); statistics in memory,
//!   snapshotted to `stats.json` with every document save, so a restart keeps what was
//!   counted up to the last check.
//! - [`RedisStateStore`]: several replicas. Each document is a JSON string saved by a Lua
//!   compare-and-set on its version; statistics are hashes that every replica increments,
//!   so a check sees the traffic of all of them.

use crate::canary::Canary;
use crate::stats::{ArmStats, BUCKETS, Sample, latency_bucket};
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use fred::prelude::{Builder, ClientLike, Config, HashesInterface, KeysInterface, LuaInterface, Pool, ReconnectPolicy, SetsInterface};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("rollout state I/O at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt rollout state {what}: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("rollout state in Redis unavailable: {0}")]
    Redis(String),
}

/// A persisted rollout object (canary, A/B test): JSON with a `version` field that every
/// change bumps, saved with compare-and-set on it.
pub trait Document: Serialize + DeserializeOwned + Send + Sync {
    /// Its kind, part of keys and file names (`canary`, `ab`).
    const KIND: &'static str;
    fn id(&self) -> &str;
    fn version(&self) -> u64;
}

impl Document for Canary {
    const KIND: &'static str = "canary";
    fn id(&self) -> &str {
        &self.id
    }
    fn version(&self) -> u64 {
        self.version
    }
}

/// Persistence of rollout documents with compare-and-set, and shared per-arm statistics.
///
/// Contract: `save_raw(kind, id, expected, json)` stores `json` only if the stored
/// document's version is `expected` (0: no such document yet) and returns whether it did;
/// of two writers with the same `expected` exactly one wins. `record` adds one sample to
/// (id, group, arm) and `record_click` one click; `stats` returns the sum of everything
/// recorded for it by any process sharing the store. `delete_raw(kind, id)` removes a
/// document (an absent one is not an error). Typed access: [`StateStoreExt`].
#[async_trait]
pub trait StateStore: Send + Sync {
    fn backend(&self) -> &'static str;
    async fn list_raw(&self, kind: &str) -> Result<Vec<String>, RolloutError>;
    async fn get_raw(&self, kind: &str, id: &str) -> Result<Option<String>, RolloutError>;
    async fn save_raw(
        &self,
        kind: &str,
        id: &str,
        expected_version: u64,
        json: String,
    ) -> Result<bool, RolloutError>;
    async fn delete_raw(&self, kind: &str, id: &str) -> Result<(), RolloutError>;
    async fn record(
        &self,
        id: &str,
        group: usize,
        arm: &str,
        sample: Sample,
    ) -> Result<(), RolloutError>;
    async fn record_click(&self, id: &str, group: usize, arm: &str) -> Result<(), RolloutError>;
    async fn stats(&self, id: &str, group: usize, arm: &str) -> Result<ArmStats, RolloutError>;
}

fn corrupt(what: impl Into<String>, e: impl std::fmt::Display) -> RolloutError {
    RolloutError::Corrupt { what: what.into(), detail: e.to_string() }
}

/// Typed documents over any [`StateStore`].
#[allow(async_fn_in_trait)]
pub trait StateStoreExt {
    async fn get<T: Document>(&self, id: &str) -> Result<Option<T>, RolloutError>;
    async fn list<T: Document>(&self) -> Result<Vec<T>, RolloutError>;
    async fn save<T: Document>(&self, doc: &T, expected_version: u64)
    -> Result<bool, RolloutError>;
    async fn delete<T: Document>(&self, id: &str) -> Result<(), RolloutError>;
}

impl<S: StateStore + ?Sized> StateStoreExt for S {
    async fn get<T: Document>(&self, id: &str) -> Result<Option<T>, RolloutError> {
        self.get_raw(T::KIND, id).await?.map(|j| serde_json::from_str(&j).map_err(|e| corrupt(format!("{} `{id}`", T::KIND), e))).transpose()
    }
    async fn list<T: Document>(&self) -> Result<Vec<T>, RolloutError> {
        self.list_raw(T::KIND).await?.iter().map(|j| serde_json::from_str(j).map_err(|e| corrupt(T::KIND, e))).collect()
    }
    async fn save<T: Document>(&self, doc: &T, expected_version: u64) -> Result<bool, RolloutError> {
        let json = serde_json::to_string(doc).map_err(|e| corrupt(doc.id(), e))?;
        self.save_raw(T::KIND, doc.id(), expected_version, json).await
    }
    async fn delete<T: Document>(&self, id: &str) -> Result<(), RolloutError> {
        self.delete_raw(T::KIND, id).await
    }
}

type StatsKey = (String, usize, String);

/// Documents in JSON files (`<kind>.json`), statistics in memory (snapshotted beside them).
pub struct FileStateStore {
    dir: PathBuf,
    /// kind -> id -> document; serialises read-modify-write of the files.
    docs: Mutex<BTreeMap<String, BTreeMap<String, serde_json::Value>>>,
    stats: Mutex<HashMap<StatsKey, ArmStats>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RolloutError + '_ {
    move |source| RolloutError::Io { path: path.display().to_string(), source }
}

/// Replace `path` with `bytes` durably ([`aidocs_fsio::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RolloutError> {
    aidocs_fsio::write_atomic(path, bytes).map_err(io(path))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StatsEntry {
    id: String,
    group: usize,
    arm: String,
    stats: ArmStats,
}

/// The document kinds a file store keeps (`slot`: the schedule's slots; its tests save one).
const KINDS: [&str; 4] = ["canary", "ab", "deployment_log", "slot"];

impl FileStateStore {
    /// Open (creating) the state in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, RolloutError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let read = |name: &str| -> Result<Option<Vec<u8>>, RolloutError> {
            let p = dir.join(name);
            match std::fs::read(&p) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(&p)(e)),
            }
        };
        let mut docs = BTreeMap::new();
        for kind in KINDS {
            let name = format!("{kind}.json");
            let map = match read(&name)? {
                Some(b) => serde_json::from_slice(&b).map_err(|e| corrupt(dir.join(&name).display().to_string(), e))?,
                None => BTreeMap::new(),
            };
            docs.insert(kind.to_owned(), map);
        }
        let stats = match read("stats.json")? {
            Some(b) => {
                let entries: Vec<StatsEntry> = serde_json::from_slice(&b).map_err(|e| corrupt(dir.join("stats.json").display().to_string(), e))?;
                entries.into_iter().map(|e| ((e.id, e.group, e.arm), e.stats)).collect()
            }
            None => HashMap::new(),
        };
        Ok(Self { dir, docs: Mutex::new(docs), stats: Mutex::new(stats) })
    }

    fn snapshot_stats(&self) -> Result<(), RolloutError> {
        let entries: Vec<StatsEntry> = self
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((id, group, arm), s)| StatsEntry { id: id.clone(), group: *group, arm: arm.clone(), stats: s.clone() })
            .collect();
        let bytes = serde_json::to_vec(&entries).map_err(|e| corrupt("stats", e))?;
        write_atomic(&self.dir.join("stats.json"), &bytes)
    }

    fn with_stats(&self, id: &str, group: usize, arm: &str, f: impl FnOnce(&mut ArmStats)) {
        f(self.stats.lock().unwrap_or_else(|p| p.into_inner()).entry((id.to_owned(), group, arm.to_owned())).or_default());
    }
}

fn doc_version(v: &serde_json::Value) -> u64 {
    v.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0)
}

#[async_trait]
impl StateStore for FileStateStore {
    fn backend(&self) -> &'static str {
        "file"
    }

    async fn list_raw(&self, kind: &str) -> Result<Vec<String>, RolloutError> {
        let docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
        Ok(docs.get(kind).map(|m| m.values().map(|v| v.to_string()).collect()).unwrap_or_default())
    }

    async fn get_raw(&self, kind: &str, id: &str) -> Result<Option<String>, RolloutError> {
        let docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
        Ok(docs.get(kind).and_then(|m| m.get(id)).map(|v| v.to_string()))
    }

    async fn save_raw(&self, kind: &str, id: &str, expected_version: u64, json: String) -> Result<bool, RolloutError> {
        if !KINDS.contains(&kind) {
            return Err(corrupt(kind, "unknown document kind"));
        }
        let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| corrupt(id, e))?;
        {
            let mut docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
            let map = docs.entry(kind.to_owned()).or_default();
            if map.get(id).map_or(0, doc_version) != expected_version {
                return Ok(false);
            }
            let mut next = map.clone();
            next.insert(id.to_owned(), value);
            let bytes = serde_json::to_vec_pretty(&next).map_err(|e| corrupt(kind, e))?;
            // Written before the in-memory state changes: a failed write changes nothing.
            write_atomic(&self.dir.join(format!("{kind}.json")), &bytes)?;
            *map = next;
        }
        self.snapshot_stats()?;
        Ok(true)
    }

    async fn delete_raw(&self, kind: &str, id: &str) -> Result<(), RolloutError> {
        let mut docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(map) = docs.get_mut(kind).filter(|m| m.contains_key(id)) else {
            return Ok(());
        };
        let mut next = map.clone();
        next.remove(id);
        let bytes = serde_json::to_vec_pretty(&next).map_err(|e| corrupt(kind, e))?;
        write_atomic(&self.dir.join(format!("{kind}.json")), &bytes)?;
        *map = next;
        Ok(())
    }

    async fn record(
        &self,
        id: &str,
        group: usize,
        arm: &str,
        sample: Sample,
    ) -> Result<(), RolloutError> {
        self.with_stats(id, group, arm, |s| s.record(sample));
        Ok(())
    }

    async fn record_click(&self, id: &str, group: usize, arm: &str) -> Result<(), RolloutError> {
        self.with_stats(id, group, arm, |s| s.clicks += 1);
        Ok(())
    }

    async fn stats(&self, id: &str, group: usize, arm: &str) -> Result<ArmStats, RolloutError> {
        Ok(self.stats.lock().unwrap_or_else(|p| p.into_inner()).get(&(id.to_owned(), group, arm.to_owned())).cloned().unwrap_or_default())
    }
}

/// Canaries and statistics in Redis (or Valkey, DragonflyDB), shared by replicas.
pub struct RedisStateStore {
    pool: Pool,
    namespace: String,
}

/// Compare-and-set of a canary's JSON on its `version` field.
const CAS: &str = r#"
local cur = redis.call('GET', KEYS[1])
local v = 0
if cur then v = cjson.decode(cur)['version'] end
if v == tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[3])
  return 1
end
return 0
"#;

fn redis_err(e: fred::error::Error) -> RolloutError {
    RolloutError::Redis(e.to_string())
}

impl RedisStateStore {
    /// A pool for `url` that connects in the background (needs a tokio runtime); keys are
    /// prefixed with `namespace`. Commands fail while Redis is unreachable.
    pub fn new(url: &str, namespace: &str, timeout: Duration) -> Result<Self, RolloutError> {
        let config = Config::from_url(url).map_err(redis_err)?;
        let pool = Builder::from_config(config)
            .with_config(|c| c.fail_fast = true)
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
            })
            .with_performance_config(|p| p.default_command_timeout = timeout)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .build_pool(2)
            .map_err(redis_err)?;
        drop(pool.connect());
        Ok(Self { pool, namespace: namespace.to_owned() })
    }

    /// [`Self::new`], then wait for the connection at most `timeout`.
    pub async fn connect(url: &str, namespace: &str, timeout: Duration) -> Result<Self, RolloutError> {
        let s = Self::new(url, namespace, timeout)?;
        tokio::time::timeout(timeout, s.pool.wait_for_connect())
            .await
            .map_err(|_| RolloutError::Redis(format!("no connection within {} ms", timeout.as_millis())))?
            .map_err(redis_err)?;
        Ok(s)
    }

    fn doc_key(&self, kind: &str, id: &str) -> String {
        format!("{}rollout:{kind}:{id}", self.namespace)
    }

    fn index_key(&self, kind: &str) -> String {
        format!("{}rollout:{kind}:index", self.namespace)
    }

    fn stats_key(&self, id: &str, group: usize, arm: &str) -> String {
        format!("{}rollout:stats:{id}:{group}:{arm}", self.namespace)
    }
}

#[async_trait]
impl StateStore for RedisStateStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn list_raw(&self, kind: &str) -> Result<Vec<String>, RolloutError> {
        let mut ids: Vec<String> = self.pool.smembers(self.index_key(kind)).await.map_err(redis_err)?;
        ids.sort();
        let mut out = Vec::new();
        for id in ids {
            if let Some(j) = self.get_raw(kind, &id).await? {
                out.push(j);
            }
        }
        Ok(out)
    }

    async fn get_raw(&self, kind: &str, id: &str) -> Result<Option<String>, RolloutError> {
        self.pool.get(self.doc_key(kind, id)).await.map_err(redis_err)
    }

    async fn save_raw(&self, kind: &str, id: &str, expected_version: u64, json: String) -> Result<bool, RolloutError> {
        let keys = vec![self.doc_key(kind, id), self.index_key(kind)];
        let args = vec![expected_version.to_string(), json, id.to_owned()];
        let won: i64 = self.pool.next().eval(CAS, keys, args).await.map_err(redis_err)?;
        Ok(won == 1)
    }

    async fn delete_raw(&self, kind: &str, id: &str) -> Result<(), RolloutError> {
        let _: i64 = self
            .pool
            .del(self.doc_key(kind, id))
            .await
            .map_err(redis_err)?;
        let _: i64 = self
            .pool
            .srem(self.index_key(kind), id)
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn record(
        &self,
        id: &str,
        group: usize,
        arm: &str,
        sample: Sample,
    ) -> Result<(), RolloutError> {
        let key = self.stats_key(id, group, arm);
        let pipe = self.pool.next().pipeline();
        let fields = [("requests", true), ("errors", sample.error), ("zero_results", sample.zero_results && !sample.error)];
        for (field, yes) in fields {
            if yes {
                let _: () = pipe.hincrby(&key, field, 1).await.map_err(redis_err)?;
            }
        }
        let _: () = pipe.hincrby(&key, format!("b{}", latency_bucket(sample.latency_ms)), 1).await.map_err(redis_err)?;
        let _: () = pipe.hincrbyfloat(&key, "latency_sum_ms", sample.latency_ms).await.map_err(redis_err)?;
        let _: () = pipe.hincrbyfloat(&key, "latency_sum_sq_ms", sample.latency_ms * sample.latency_ms).await.map_err(redis_err)?;
        let _: Vec<fred::prelude::Value> = pipe.all().await.map_err(redis_err)?;
        Ok(())
    }

    async fn record_click(&self, id: &str, group: usize, arm: &str) -> Result<(), RolloutError> {
        let _: i64 = self.pool.hincrby(self.stats_key(id, group, arm), "clicks", 1).await.map_err(redis_err)?;
        Ok(())
    }

    async fn stats(&self, id: &str, group: usize, arm: &str) -> Result<ArmStats, RolloutError> {
        let h: HashMap<String, String> = self.pool.hgetall(self.stats_key(id, group, arm)).await.map_err(redis_err)?;
        let int = |k: &str| h.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let float = |k: &str| h.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        Ok(ArmStats {
            requests: int("requests"),
            errors: int("errors"),
            zero_results: int("zero_results"),
            latency: (0..BUCKETS).map(|i| int(&format!("b{i}"))).collect(),
            latency_sum_ms: float("latency_sum_ms"),
            latency_sum_sq_ms: float("latency_sum_sq_ms"),
            clicks: int("clicks"),
        })
    }
}
