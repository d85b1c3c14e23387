//! The rollout state an engine carries: the state store (a file or Redis), the clock, the
//! active canaries, A/B tests and blue-green watches that routing needs in memory, and the
//! request and record types of rollouts. The operations on them are in `rollout`.

use crate::config::{BlueGreenSettings, Config, RolloutStateBackend};
use crate::error::{Error, Result};
use crate::report::IngestReport;
pub use aidocs_rollout::Sample;
use aidocs_rollout::ab::{AbStatus, AbTest};
pub use aidocs_rollout::ab::Variant;
use aidocs_rollout::canary::Canary;
pub use aidocs_rollout::canary::StageSpec;
use aidocs_rollout::{FileStateStore, RedisStateStore, RolloutError, StateStore, SystemWallClock, WallClock};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The engine's rollout machinery: state store, clock, and what routing needs in memory.
pub struct Rollouts {
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) clock: Arc<dyn WallClock>,
    /// Active canaries by alias, refreshed by every check and every local change.
    pub(crate) active: RwLock<HashMap<String, Canary>>,
    /// Running A/B tests by alias, refreshed the same way.
    pub(crate) active_ab: RwLock<HashMap<String, AbTest>>,
    /// Recent A/B answers by query id, so feedback can be credited to the variant.
    pub(crate) answers: moka::sync::Cache<String, Routed>,
    /// Aliases whose live traffic a blue-green deployment is watching: alias -> deployment id.
    pub(crate) monitors: RwLock<HashMap<String, String>>,
    /// `deployments.json`: where blue-green history and the cleanup schedule lived before
    /// they moved into the state store (read when the store has none).
    pub(crate) deployments_file: PathBuf,
    pub(crate) deployments_lock: tokio::sync::Mutex<()>,
    /// This process's name in scheduled-work slots.
    pub(crate) holder: String,
}

impl std::fmt::Debug for Rollouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rollouts").field("store", &self.store.backend()).finish_non_exhaustive()
    }
}

pub(crate) fn rollout_err(e: RolloutError) -> Error {
    match e {
        RolloutError::Redis(m) => Error::Unavailable(format!("rollout state: {m}")),
        other => Error::Internal(other.to_string()),
    }
}

impl Rollouts {
    /// State in Redis or in `<data_dir>/rollout/` per `rollout.state`.
    pub fn open(cfg: &Config) -> Result<Self> {
        let dir = cfg.data_dir.join("rollout");
        let redis_url = match cfg.rollout.state {
            RolloutStateBackend::File => None,
            RolloutStateBackend::Redis => cfg.cache.effective_url(),
            RolloutStateBackend::Auto => (cfg.cache.kind == crate::config::CacheBackend::Redis).then(|| cfg.cache.effective_url()).flatten(),
        };
        let store: Arc<dyn StateStore> = match redis_url {
            Some(url) => Arc::new(RedisStateStore::new(&url, &cfg.cache.namespace, Duration::from_secs(2)).map_err(rollout_err)?),
            None => Arc::new(FileStateStore::open(&dir).map_err(rollout_err)?),
        };
        Ok(Self::with_store(store, dir.join("deployments.json")))
    }

    pub fn with_store(store: Arc<dyn StateStore>, deployments_file: PathBuf) -> Self {
        Self {
            store,
            clock: Arc::new(SystemWallClock),
            active: RwLock::default(),
            active_ab: RwLock::default(),
            answers: moka::sync::Cache::builder().max_capacity(200_000).time_to_live(Duration::from_secs(3600)).build(),
            monitors: RwLock::default(),
            deployments_file,
            deployments_lock: tokio::sync::Mutex::new(()),
            holder: format!("{}-{}", crate::jobs::hostname(), uuid::Uuid::new_v4().simple()),
        }
    }

    /// Use `clock` for every rollout decision (tests drive time with it).
    pub fn with_clock(mut self, clock: Arc<dyn WallClock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// Scheduled work coordinated through this state (with the other replicas, in Redis).
    pub fn coordinator(&self) -> crate::scheduler::Coordinator {
        crate::scheduler::Coordinator { store: self.store.clone(), clock: self.clock.clone(), holder: self.holder.clone() }
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub(crate) fn remember_ab(&self, t: &AbTest) {
        let mut active = self.active_ab.write().unwrap_or_else(|p| p.into_inner());
        if t.status == AbStatus::Running {
            active.insert(t.alias.clone(), t.clone());
        } else if active.get(&t.alias).is_some_and(|a| a.id == t.id) {
            active.remove(&t.alias);
        }
    }

    pub(crate) fn remember(&self, c: &Canary) {
        let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
        if c.status.is_active() {
            active.insert(c.plan.alias.clone(), c.clone());
        } else if active.get(&c.plan.alias).is_some_and(|a| a.id == c.id) {
            active.remove(&c.plan.alias);
        }
    }
}

/// Where one search went, for recording its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    /// The canary, A/B test or blue-green deployment whose statistics get the sample.
    pub rollout_id: String,
    /// Canary stage (0 for A/B tests and deployments).
    pub stage: usize,
    /// `stable` / `canary`, or the A/B variant id.
    pub arm: String,
    /// The collection to search.
    pub collection: String,
    /// The A/B variant's search settings, when an A/B test routed it.
    pub variant: Option<Variant>,
    pub kind: RolloutKind,
}

/// What routed a search (closed set; the `kind` label of rollout metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutKind {
    Canary,
    Ab,
    /// A blue-green deployment watching the alias after its switch.
    Deployment,
}

impl RolloutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Canary => "canary",
            Self::Ab => "ab",
            Self::Deployment => "deployment",
        }
    }
}

/// `POST /v1/admin/ab`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbCreate {
    #[serde(default)]
    pub id: Option<String>,
    pub alias: String,
    pub variants: Vec<Variant>,
}

/// `POST /v1/admin/canaries`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryStart {
    /// Defaults to `<alias>-<collection>-<time>`.
    #[serde(default)]
    pub id: Option<String>,
    pub alias: String,
    /// The collection to roll out.
    pub collection: String,
    /// Defaults to 5 / 25 / 50 / 100 %, 30 min each, 5 % errors, p95 200 ms, 100 requests.
    #[serde(default)]
    pub stages: Option<Vec<StageSpec>>,
    #[serde(default)]
    pub rollback_after_breaches: Option<u32>,
}

/// The stages used when a canary names none.
pub fn default_stages() -> Vec<StageSpec> {
    [5, 25, 50, 100]
        .into_iter()
        .map(|p| StageSpec { percentage: p, duration_s: 1800, max_error_rate: 0.05, max_p95_ms: 200.0, min_requests: 100 })
        .collect()
}

/// A blue-green deployment request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueGreenRequest {
    pub alias: String,
    /// The documentation tree to build green from.
    pub source: PathBuf,
    #[serde(default)]
    pub metadata: crate::config::MetadataSettings,
    #[serde(default)]
    pub base_url: Option<String>,
    /// Queries green must answer well before the switch.
    #[serde(default)]
    pub validate_queries: Vec<String>,
    /// Overrides of `[rollout.blue_green]`.
    #[serde(default)]
    pub settings: Option<BlueGreenSettings>,
}

/// What a blue-green deployment did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub alias: String,
    /// The collection the alias pointed at before (none on a first deployment).
    pub blue: Option<String>,
    pub green: String,
    pub status: DeploymentStatus,
    pub points: usize,
    pub validation: Vec<String>,
    pub started_ms: u64,
    pub finished_ms: u64,
    pub events: Vec<String>,
    #[serde(default)]
    pub ingest: Option<IngestReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// Green serves the alias; blue is scheduled for deletion.
    Switched,
    /// Green failed validation; it was deleted and blue still serves.
    Failed,
    /// Green served, breached the thresholds, and the alias went back to blue.
    RolledBack,
}

/// A collection to delete once due (unless an alias points at it by then).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleanup {
    pub collection: String,
    pub due_ms: u64,
    pub reason: String,
}

/// Blue-green history and the cleanup schedule: one versioned document in the rollout
/// state store (`deployment_log`), so replicas sharing Redis share it. Before it lived
/// there it was `<data_dir>/rollout/deployments.json`, still read when the store has none.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DeploymentsFile {
    #[serde(default)]
    pub(crate) version: u64,
    pub(crate) deployments: Vec<Deployment>,
    pub(crate) cleanups: Vec<Cleanup>,
}

impl aidocs_rollout::Document for DeploymentsFile {
    const KIND: &'static str = "deployment_log";
    fn id(&self) -> &str {
        "all"
    }
    fn version(&self) -> u64 {
        self.version
    }
}

/// One arm's figures in a canary's current stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryArm {
    pub requests: u64,
    pub error_rate: f64,
    pub zero_result_rate: f64,
    pub p95_ms: Option<f64>,
}

/// A canary with both arms' figures in its current stage (`GET /v1/admin/canaries/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct CanaryReport {
    #[serde(flatten)]
    pub canary: Canary,
    pub stage_percentage: u8,
    pub stage_elapsed_s: u64,
    /// `stable` and `canary`.
    pub arms: std::collections::BTreeMap<String, CanaryArm>,
}

/// One variant's figures in an A/B test, and against the control.
#[derive(Debug, Clone, Serialize)]
pub struct AbVariantReport {
    pub id: String,
    pub weight: f64,
    pub requests: u64,
    pub mean_latency_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub error_rate: f64,
    pub zero_result_rate: f64,
    pub clicks: u64,
    pub click_through_rate: f64,
    /// Absent for the control itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_control: Option<AbComparison>,
}

/// A variant against the control: Welch's t-test on latency, two-proportion z-tests on
/// the rates.
#[derive(Debug, Clone, Serialize)]
pub struct AbComparison {
    pub latency: aidocs_rollout::ab::Comparison,
    pub error_rate: aidocs_rollout::ab::Comparison,
    pub zero_result_rate: aidocs_rollout::ab::Comparison,
    pub click_through_rate: aidocs_rollout::ab::Comparison,
}

/// An A/B test with its figures (`GET /v1/admin/ab/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct AbReport {
    pub id: String,
    pub alias: String,
    pub status: AbStatus,
    /// The first variant's id.
    pub control: String,
    pub variants: Vec<AbVariantReport>,
    pub test: AbTest,
}

/// What is rolling out (`GET /deployment/status`).
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentReport {
    /// `file` or `redis`.
    pub state_backend: &'static str,
    /// Active canaries with their arms.
    pub canaries: Vec<CanaryReport>,
    /// The ten most recent blue-green deployments, newest first.
    pub deployments: Vec<Deployment>,
    /// Old collections waiting for their grace period to end.
    pub cleanups: Vec<Cleanup>,
    /// Running A/B tests by id.
    pub ab_tests: Vec<String>,
    /// Aliases whose live traffic a blue-green deployment watches: alias -> deployment id.
    pub monitoring: HashMap<String, String>,
}

