//! The canary state machine.
//!
//! A canary sends a growing share of an alias's traffic to a new collection in stages. At
//! each check the canary arm's statistics for the current stage are compared with the
//! stage's thresholds:
//!
//! - fewer than `min_requests` canary requests: **inconclusive** — the stage holds (never
//!   promotes on no data) and says why;
//! - a threshold breached (error rate or p95): one more consecutive breach; at
//!   `rollback_after_breaches` the canary is **rolled back** (traffic returns to stable);
//! - the stage has run its duration with enough data and no breach: the next stage, or,
//!   after the last (100 %), **promotion** (the caller moves the alias to the canary
//!   collection).
//!
//! Stage time only runs while the canary runs: pausing stops the timer, resuming restarts
//! it. Every change bumps `version`, which stores use for compare-and-set.

use crate::routing::{Arm, bucket};
use crate::stats::ArmStats;
use serde::{Deserialize, Serialize};

/// One stage of a canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Share of traffic (by routing-key bucket) on the canary, 1..=100.
    pub percentage: u8,
    /// How long the stage runs (while not paused) before it can advance.
    pub duration_s: u64,
    /// Canary error rate above which a check counts as a breach.
    pub max_error_rate: f64,
    /// Canary p95 latency (ms) above which a check counts as a breach.
    pub max_p95_ms: f64,
    /// Canary requests needed before the stage can be judged at all.
    pub min_requests: u64,
}

/// What to roll out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryPlan {
    /// The alias whose traffic is split.
    pub alias: String,
    /// The collection the alias points at now.
    pub stable: String,
    /// The collection being rolled out.
    pub canary: String,
    pub stages: Vec<StageSpec>,
    /// Consecutive breached checks that roll back.
    #[serde(default = "default_breaches")]
    pub rollback_after_breaches: u32,
}

fn default_breaches() -> u32 {
    2
}

impl CanaryPlan {
    /// Percentages rising, each 1..=100, ending at 100; sane thresholds.
    pub fn validate(&self) -> Result<(), String> {
        if self.stages.is_empty() {
            return Err("a canary needs at least one stage".into());
        }
        if self.stable == self.canary {
            return Err(format!("the canary collection `{}` is already the stable one", self.canary));
        }
        let mut last = 0;
        for (i, s) in self.stages.iter().enumerate() {
            if s.percentage == 0 || s.percentage > 100 || s.percentage <= last {
                return Err(format!("stage {i}: percentage {} must be 1..=100 and above the previous stage's", s.percentage));
            }
            if !(0.0..=1.0).contains(&s.max_error_rate) || s.max_p95_ms <= 0.0 {
                return Err(format!("stage {i}: max_error_rate must be in 0..=1 and max_p95_ms positive"));
            }
            last = s.percentage;
        }
        if last != 100 {
            return Err("the last stage must be at 100 % (it ends in promotion)".into());
        }
        if self.rollback_after_breaches == 0 {
            return Err("rollback_after_breaches must be at least 1".into());
        }
        Ok(())
    }
}

/// Where a canary is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CanaryStatus {
    Running,
    Paused,
    /// The last stage passed; the alias points at the canary collection.
    Promoted,
    RolledBack { reason: String },
}

impl CanaryStatus {
    /// Still splitting traffic (running or paused).
    pub fn is_active(&self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
}

/// What one check decided; the caller acts on `Promote` (switch the alias).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing to do (paused, finished, or the stage is still running within thresholds).
    Continue,
    /// The stage ran its time but cannot be judged: why.
    Hold(String),
    /// A breach that has not yet reached the rollback count.
    Breach(String),
    Advance { to_stage: usize },
    Promote,
    Rollback(String),
}

/// A canary and its progress. Persisted as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    pub id: String,
    pub plan: CanaryPlan,
    pub status: CanaryStatus,
    pub stage: usize,
    /// Stage time accumulated while running before `running_since_ms`.
    pub stage_active_ms: u64,
    /// When the canary last started running; `None` while paused or finished.
    pub running_since_ms: Option<u64>,
    /// Consecutive breached checks in this stage.
    pub breaches: u32,
    /// Why the last check held, if it did.
    pub hold_reason: Option<String>,
    /// Bumped by every change (compare-and-set).
    pub version: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// What happened, oldest first.
    pub events: Vec<String>,
}

impl Canary {
    pub fn new(id: impl Into<String>, plan: CanaryPlan, now_ms: u64) -> Result<Self, String> {
        plan.validate()?;
        let first = plan.stages[0].percentage;
        Ok(Self {
            id: id.into(),
            events: vec![format!("{now_ms}: started at {first} % of `{}` on `{}`", plan.alias, plan.canary)],
            plan,
            status: CanaryStatus::Running,
            stage: 0,
            stage_active_ms: 0,
            running_since_ms: Some(now_ms),
            breaches: 0,
            hold_reason: None,
            version: 1,
            created_ms: now_ms,
            updated_ms: now_ms,
        })
    }

    pub fn current(&self) -> &StageSpec {
        &self.plan.stages[self.stage.min(self.plan.stages.len() - 1)]
    }

    /// Stage time so far (pauses excluded).
    pub fn stage_elapsed_ms(&self, now_ms: u64) -> u64 {
        self.stage_active_ms + self.running_since_ms.map_or(0, |s| now_ms.saturating_sub(s))
    }

    /// The side a routing key is on now. Only active canaries split traffic.
    pub fn arm_for(&self, routing_key: &str) -> Arm {
        if self.status.is_active() && bucket(routing_key) < self.current().percentage { Arm::Canary } else { Arm::Stable }
    }

    /// The collection serving `arm`.
    pub fn collection(&self, arm: Arm) -> &str {
        match arm {
            Arm::Stable => &self.plan.stable,
            Arm::Canary => &self.plan.canary,
        }
    }

    fn changed(&mut self, now_ms: u64, event: String) {
        self.version += 1;
        self.updated_ms = now_ms;
        tracing::info!(canary = %self.id, alias = %self.plan.alias, "{event}");
        self.events.push(format!("{now_ms}: {event}"));
    }

    pub fn pause(&mut self, now_ms: u64) -> Result<(), String> {
        if self.status != CanaryStatus::Running {
            return Err(format!("canary `{}` is not running ({:?})", self.id, self.status));
        }
        self.stage_active_ms = self.stage_elapsed_ms(now_ms);
        self.running_since_ms = None;
        self.status = CanaryStatus::Paused;
        self.changed(now_ms, format!("paused in stage {}", self.stage));
        Ok(())
    }

    pub fn resume(&mut self, now_ms: u64) -> Result<(), String> {
        if self.status != CanaryStatus::Paused {
            return Err(format!("canary `{}` is not paused ({:?})", self.id, self.status));
        }
        self.running_since_ms = Some(now_ms);
        self.status = CanaryStatus::Running;
        self.changed(now_ms, format!("resumed in stage {}", self.stage));
        Ok(())
    }

    /// Manual rollback: traffic returns to stable at once.
    pub fn rollback(&mut self, now_ms: u64, reason: &str) -> Result<(), String> {
        if !self.status.is_active() {
            return Err(format!("canary `{}` has already ended ({:?})", self.id, self.status));
        }
        self.finish_rollback(now_ms, format!("manual: {reason}"));
        Ok(())
    }

    fn finish_rollback(&mut self, now_ms: u64, reason: String) {
        self.stage_active_ms = self.stage_elapsed_ms(now_ms);
        self.running_since_ms = None;
        self.status = CanaryStatus::RolledBack { reason: reason.clone() };
        self.changed(now_ms, format!("rolled back: {reason}"));
    }

    /// One check against the canary arm's statistics for the current stage.
    pub fn evaluate(&mut self, canary: &ArmStats, now_ms: u64) -> Decision {
        if self.status != CanaryStatus::Running {
            return Decision::Continue;
        }
        let stage = self.current().clone();
        let enough = canary.requests >= stage.min_requests;
        if enough {
            let p95 = canary.quantile_ms(0.95).unwrap_or(0.0);
            let breach = if canary.error_rate() > stage.max_error_rate {
                Some(format!("error rate {:.3} > {:.3} over {} requests", canary.error_rate(), stage.max_error_rate, canary.requests))
            } else if p95 > stage.max_p95_ms {
                Some(format!("p95 {p95} ms > {} ms over {} requests", stage.max_p95_ms, canary.requests))
            } else {
                None
            };
            if let Some(why) = breach {
                self.breaches += 1;
                if self.breaches >= self.plan.rollback_after_breaches {
                    let reason = format!("stage {} ({} %): {why}, {} consecutive checks", self.stage, stage.percentage, self.breaches);
                    self.finish_rollback(now_ms, reason.clone());
                    return Decision::Rollback(reason);
                }
                let note = format!("breach {} of {}: {why}", self.breaches, self.plan.rollback_after_breaches);
                self.changed(now_ms, note.clone());
                return Decision::Breach(note);
            }
            if self.breaches > 0 {
                self.breaches = 0;
                self.changed(now_ms, "thresholds met again; breach count reset".into());
            }
        }
        if self.stage_elapsed_ms(now_ms) < stage.duration_s * 1000 {
            return Decision::Continue;
        }
        if !enough {
            let why = format!("inconclusive: {} of {} canary requests needed in stage {}; holding", canary.requests, stage.min_requests, self.stage);
            if self.hold_reason.as_deref() != Some(why.as_str()) {
                self.hold_reason = Some(why.clone());
                self.changed(now_ms, why.clone());
            }
            return Decision::Hold(why);
        }
        self.hold_reason = None;
        if self.stage + 1 >= self.plan.stages.len() {
            self.running_since_ms = None;
            self.status = CanaryStatus::Promoted;
            self.changed(now_ms, format!("promoted: `{}` now serves `{}`", self.plan.canary, self.plan.alias));
            return Decision::Promote;
        }
        self.stage += 1;
        self.stage_active_ms = 0;
        self.running_since_ms = Some(now_ms);
        self.breaches = 0;
        let pct = self.current().percentage;
        self.changed(now_ms, format!("advanced to stage {} ({pct} %)", self.stage));
        Decision::Advance { to_stage: self.stage }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Sample;

    fn stage(pct: u8) -> StageSpec {
        StageSpec { percentage: pct, duration_s: 60, max_error_rate: 0.05, max_p95_ms: 200.0, min_requests: 100 }
    }

    fn plan() -> CanaryPlan {
        CanaryPlan { alias: "docs".into(), stable: "blue".into(), canary: "green".into(), stages: vec![stage(10), stage(50), stage(100)], rollback_after_breaches: 2 }
    }

    fn stats(n: u64, errors: u64, ms: f64) -> ArmStats {
        let mut s = ArmStats::default();
        for i in 0..n {
            s.record(Sample { latency_ms: ms, error: i < errors, zero_results: false });
        }
        s
    }

    #[test]
    fn plans_are_validated() {
        assert!(plan().validate().is_ok());
        let mut p = plan();
        p.stages.pop();
        assert!(p.validate().unwrap_err().contains("100"));
        let mut p = plan();
        p.stages[1].percentage = 5;
        assert!(p.validate().unwrap_err().contains("stage 1"));
        let mut p = plan();
        p.canary = "blue".into();
        assert!(p.validate().is_err());
    }

    #[test]
    fn promotes_through_every_stage_on_good_data() {
        let mut c = Canary::new("c1", plan(), 0).unwrap();
        let good = stats(150, 1, 20.0);
        assert_eq!(c.evaluate(&good, 30_000), Decision::Continue, "stage time not over");
        assert_eq!(c.evaluate(&good, 60_000), Decision::Advance { to_stage: 1 });
        assert_eq!(c.current().percentage, 50);
        assert_eq!(c.evaluate(&good, 120_000), Decision::Advance { to_stage: 2 });
        assert_eq!(c.evaluate(&good, 180_000), Decision::Promote);
        assert_eq!(c.status, CanaryStatus::Promoted);
        assert_eq!(c.arm_for("anyone"), Arm::Stable, "a finished canary splits nothing");
        assert_eq!(c.evaluate(&good, 240_000), Decision::Continue);
    }

    #[test]
    fn holds_without_enough_data_and_never_promotes() {
        let mut c = Canary::new("c1", plan(), 0).unwrap();
        let thin = stats(99, 0, 5.0);
        for t in [60_000, 600_000, 6_000_000] {
            match c.evaluate(&thin, t) {
                Decision::Hold(why) => assert!(why.contains("99 of 100"), "{why}"),
                d => panic!("{d:?}"),
            }
        }
        assert_eq!(c.stage, 0);
        assert!(c.hold_reason.as_deref().unwrap().starts_with("inconclusive"));
        assert_eq!(c.evaluate(&stats(100, 0, 5.0), 6_000_001), Decision::Advance { to_stage: 1 });
    }

    #[test]
    fn rolls_back_after_consecutive_breaches_only() {
        let mut c = Canary::new("c1", plan(), 0).unwrap();
        let bad = stats(200, 30, 10.0);
        assert!(matches!(c.evaluate(&bad, 1_000), Decision::Breach(_)));
        // A good check in between resets the count.
        assert_eq!(c.evaluate(&stats(200, 0, 10.0), 2_000), Decision::Continue);
        assert!(matches!(c.evaluate(&bad, 3_000), Decision::Breach(_)));
        match c.evaluate(&bad, 4_000) {
            Decision::Rollback(why) => assert!(why.contains("error rate 0.150 > 0.050"), "{why}"),
            d => panic!("{d:?}"),
        }
        assert!(matches!(c.status, CanaryStatus::RolledBack { .. }));
        assert_eq!(c.arm_for("anyone"), Arm::Stable);
        // Slow is a breach too.
        let mut c = Canary::new("c2", plan(), 0).unwrap();
        let slow = stats(200, 0, 450.0);
        c.evaluate(&slow, 1);
        assert!(matches!(c.evaluate(&slow, 2), Decision::Rollback(why) if why.contains("p95 500 ms > 200 ms")));
    }

    #[test]
    fn pause_stops_the_stage_timer_and_resume_restarts_it() {
        let mut c = Canary::new("c1", plan(), 0).unwrap();
        let good = stats(150, 0, 20.0);
        c.pause(40_000).unwrap();
        assert_eq!(c.evaluate(&good, 500_000), Decision::Continue, "paused: no progress");
        assert_eq!(c.stage_elapsed_ms(500_000), 40_000);
        assert!(c.pause(500_000).is_err());
        c.resume(500_000).unwrap();
        assert_eq!(c.evaluate(&good, 519_999), Decision::Continue, "19.999 s more: 59.999 s in stage");
        assert_eq!(c.evaluate(&good, 520_000), Decision::Advance { to_stage: 1 });
        let v = c.version;
        c.rollback(521_000, "operator").unwrap();
        assert!(c.version > v);
        assert!(c.rollback(522_000, "again").is_err());
    }

    #[test]
    fn routing_is_sticky_and_grows_with_the_percentage() {
        let mut c = Canary::new("c1", plan(), 0).unwrap();
        let users: Vec<String> = (0..2000).map(|i| format!("user-{i}")).collect();
        let in_canary: Vec<bool> = users.iter().map(|u| c.arm_for(u) == Arm::Canary).collect();
        let share = in_canary.iter().filter(|x| **x).count() as f64 / users.len() as f64;
        assert!((share - 0.10).abs() < 0.03, "{share}");
        c.evaluate(&stats(150, 0, 1.0), 60_000);
        for (u, was) in users.iter().zip(&in_canary) {
            if *was {
                assert_eq!(c.arm_for(u), Arm::Canary, "a canary user stays in the canary as it grows");
            }
        }
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut c = Canary::new("c1", plan(), 5).unwrap();
        c.pause(10).unwrap();
        let back: Canary = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
