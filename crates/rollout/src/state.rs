//! Where canaries and their per-arm statistics live.
//!
//! - [`FileStateStore`]: one process (the embedded setup). Canaries in `canaries.json`,
//!   written atomically (temp file, fsync, rename, directory fsync); statistics in memory,
//!   snapshotted to `canary-stats.json` with every state save, so a restart keeps what was
//!   counted up to the last check.
//! - [`RedisStateStore`]: several replicas. Each canary is a JSON string saved by a Lua
//!   compare-and-set on its version; statistics are hashes that every replica increments,
//!   so a check sees the traffic of all of them.

use crate::canary::Canary;
use crate::routing::Arm;
use crate::stats::{ArmStats, BUCKETS, Sample, latency_bucket};
use async_trait::async_trait;
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

/// Persistence of canaries with compare-and-set, and shared per-arm statistics.
///
/// Contract: `save(c, expected)` stores `c` only if the stored version is `expected` (0: no
/// such canary yet) and returns whether it did; of two writers with the same `expected`
/// exactly one wins. `record` adds one sample to (canary, stage, arm); `stats` returns the
/// sum of every sample recorded for it, by any process sharing the store.
#[async_trait]
pub trait StateStore: Send + Sync {
    fn backend(&self) -> &'static str;
    async fn list(&self) -> Result<Vec<Canary>, RolloutError>;
    async fn get(&self, id: &str) -> Result<Option<Canary>, RolloutError>;
    async fn save(&self, canary: &Canary, expected_version: u64) -> Result<bool, RolloutError>;
    async fn record(&self, id: &str, stage: usize, arm: Arm, sample: Sample) -> Result<(), RolloutError>;
    async fn stats(&self, id: &str, stage: usize, arm: Arm) -> Result<ArmStats, RolloutError>;
}

type StatsKey = (String, usize, Arm);

/// Canaries in a JSON file, statistics in memory (snapshotted beside it).
pub struct FileStateStore {
    dir: PathBuf,
    /// Serialises read-modify-write of the state file.
    canaries: Mutex<BTreeMap<String, Canary>>,
    stats: Mutex<HashMap<StatsKey, ArmStats>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RolloutError + '_ {
    move |source| RolloutError::Io { path: path.display().to_string(), source }
}

/// Write `bytes` to `path` atomically: temp file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RolloutError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StatsEntry {
    id: String,
    stage: usize,
    arm: Arm,
    stats: ArmStats,
}

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
        let canaries = match read("canaries.json")? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| RolloutError::Corrupt { what: dir.join("canaries.json").display().to_string(), detail: e.to_string() })?,
            None => BTreeMap::new(),
        };
        let stats = match read("canary-stats.json")? {
            Some(b) => {
                let entries: Vec<StatsEntry> =
                    serde_json::from_slice(&b).map_err(|e| RolloutError::Corrupt { what: dir.join("canary-stats.json").display().to_string(), detail: e.to_string() })?;
                entries.into_iter().map(|e| ((e.id, e.stage, e.arm), e.stats)).collect()
            }
            None => HashMap::new(),
        };
        Ok(Self { dir, canaries: Mutex::new(canaries), stats: Mutex::new(stats) })
    }

    fn snapshot_stats(&self) -> Result<(), RolloutError> {
        let entries: Vec<StatsEntry> = self
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((id, stage, arm), s)| StatsEntry { id: id.clone(), stage: *stage, arm: *arm, stats: s.clone() })
            .collect();
        let bytes = serde_json::to_vec(&entries).map_err(|e| RolloutError::Corrupt { what: "stats".into(), detail: e.to_string() })?;
        write_atomic(&self.dir.join("canary-stats.json"), &bytes)
    }
}

#[async_trait]
impl StateStore for FileStateStore {
    fn backend(&self) -> &'static str {
        "file"
    }

    async fn list(&self) -> Result<Vec<Canary>, RolloutError> {
        Ok(self.canaries.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect())
    }

    async fn get(&self, id: &str) -> Result<Option<Canary>, RolloutError> {
        Ok(self.canaries.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned())
    }

    async fn save(&self, canary: &Canary, expected_version: u64) -> Result<bool, RolloutError> {
        {
            let mut all = self.canaries.lock().unwrap_or_else(|p| p.into_inner());
            let stored = all.get(&canary.id).map_or(0, |c| c.version);
            if stored != expected_version {
                return Ok(false);
            }
            let mut next = all.clone();
            next.insert(canary.id.clone(), canary.clone());
            let bytes = serde_json::to_vec_pretty(&next).map_err(|e| RolloutError::Corrupt { what: "canaries".into(), detail: e.to_string() })?;
            // Written before the in-memory state changes: a failed write changes nothing.
            write_atomic(&self.dir.join("canaries.json"), &bytes)?;
            *all = next;
        }
        self.snapshot_stats()?;
        Ok(true)
    }

    async fn record(&self, id: &str, stage: usize, arm: Arm, sample: Sample) -> Result<(), RolloutError> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).entry((id.to_owned(), stage, arm)).or_default().record(sample);
        Ok(())
    }

    async fn stats(&self, id: &str, stage: usize, arm: Arm) -> Result<ArmStats, RolloutError> {
        Ok(self.stats.lock().unwrap_or_else(|p| p.into_inner()).get(&(id.to_owned(), stage, arm)).cloned().unwrap_or_default())
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

    fn canary_key(&self, id: &str) -> String {
        format!("{}rollout:canary:{id}", self.namespace)
    }

    fn index_key(&self) -> String {
        format!("{}rollout:canaries", self.namespace)
    }

    fn stats_key(&self, id: &str, stage: usize, arm: Arm) -> String {
        format!("{}rollout:stats:{id}:{stage}:{}", self.namespace, arm.as_str())
    }

    fn decode(&self, id: &str, json: &str) -> Result<Canary, RolloutError> {
        serde_json::from_str(json).map_err(|e| RolloutError::Corrupt { what: self.canary_key(id), detail: e.to_string() })
    }
}

#[async_trait]
impl StateStore for RedisStateStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn list(&self) -> Result<Vec<Canary>, RolloutError> {
        let ids: Vec<String> = self.pool.smembers(self.index_key()).await.map_err(redis_err)?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(c) = self.get(&id).await? {
                out.push(c);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn get(&self, id: &str) -> Result<Option<Canary>, RolloutError> {
        let json: Option<String> = self.pool.get(self.canary_key(id)).await.map_err(redis_err)?;
        json.map(|j| self.decode(id, &j)).transpose()
    }

    async fn save(&self, canary: &Canary, expected_version: u64) -> Result<bool, RolloutError> {
        let json = serde_json::to_string(canary).map_err(|e| RolloutError::Corrupt { what: canary.id.clone(), detail: e.to_string() })?;
        let keys = vec![self.canary_key(&canary.id), self.index_key()];
        let args = vec![expected_version.to_string(), json, canary.id.clone()];
        let won: i64 = self.pool.next().eval(CAS, keys, args).await.map_err(redis_err)?;
        Ok(won == 1)
    }

    async fn record(&self, id: &str, stage: usize, arm: Arm, sample: Sample) -> Result<(), RolloutError> {
        let key = self.stats_key(id, stage, arm);
        let pipe = self.pool.next().pipeline();
        let fields = [("requests", true), ("errors", sample.error), ("zero_results", sample.zero_results && !sample.error)];
        for (field, yes) in fields {
            if yes {
                let _: () = pipe.hincrby(&key, field, 1).await.map_err(redis_err)?;
            }
        }
        let _: () = pipe.hincrby(&key, format!("b{}", latency_bucket(sample.latency_ms)), 1).await.map_err(redis_err)?;
        let _: Vec<fred::prelude::Value> = pipe.all().await.map_err(redis_err)?;
        Ok(())
    }

    async fn stats(&self, id: &str, stage: usize, arm: Arm) -> Result<ArmStats, RolloutError> {
        let h: HashMap<String, u64> = self.pool.hgetall(self.stats_key(id, stage, arm)).await.map_err(redis_err)?;
        let get = |k: &str| h.get(k).copied().unwrap_or(0);
        Ok(ArmStats {
            requests: get("requests"),
            errors: get("errors"),
            zero_results: get("zero_results"),
            latency: (0..BUCKETS).map(|i| get(&format!("b{i}"))).collect(),
        })
    }
}
