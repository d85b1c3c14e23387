//! `aidocs-rollout`: the decisions of zero-downtime operations.
//!
//! Owns sticky traffic routing ([`routing`]: MD5 bucket of a routing key), per-arm request
//! statistics that merge across replicas ([`stats`]), the canary state machine with staged
//! traffic, holds on thin data and automatic rollback ([`canary`]), A/B tests with weighted
//! sticky variants and significance tests ([`ab`]), and where that state lives ([`state`]: a JSON file written atomically, or Redis with compare-and-set so two
//! replicas never both act), and scheduled work done once per due time by one of the
//! processes sharing that state ([`schedule`]: cadences, slots held under fenced leases).
//!
//! Must not know: HTTP, the search engine, the vector store. Callers route with
//! [`canary::Canary::arm_for`], report each real request with a [`stats::Sample`], call
//! [`canary::Canary::evaluate`] on a schedule and carry out what it decides (switching an
//! alias is theirs to do).

pub mod ab;
pub mod canary;
pub mod routing;
pub mod schedule;
pub mod state;
pub mod stats;

pub use canary::{Canary, CanaryPlan, CanaryStatus, Decision, StageSpec};
pub use routing::{Arm, bucket};
pub use ab::{AbStatus, AbTest, Variant};
pub use state::{Document, FileStateStore, RedisStateStore, RolloutError, StateStore, StateStoreExt};
pub use stats::{ArmStats, Sample};

/// Milliseconds since the Unix epoch: rollout state is persisted, so its times are wall
/// times, not `Instant`s.
pub trait WallClock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}
