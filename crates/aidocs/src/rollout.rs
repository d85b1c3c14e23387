//! Zero-downtime operations on the engine: canary rollouts (traffic split by routing key,
//! checked on a schedule, promoted by an alias switch or rolled back) and blue-green
//! deployments (build green beside blue, validate, switch the alias atomically, watch live
//! traffic and switch back on a breach, delete blue after a grace period).
//!
//! The decisions live in `aidocs-rollout`; this module carries them out against the store
//! and feeds them real requests (the API calls [`RolloutService::route`] and
//! [`RolloutService::record_routed`] for every search).

use crate::config::BlueGreenSettings;
use crate::engine::Engine;
use crate::search::SearchRequest;
use crate::ingest::IngestRequest;
use crate::report::IngestReport;
use crate::error::{Error, Result};
use crate::progress::IngestProgress;
use aidocs_core::{CollectionSpec, DocMetadata, StoreError};
use aidocs_rollout::canary::{Canary, CanaryPlan, Decision};
use aidocs_rollout::ab::{self, AbStatus, AbTest};
use aidocs_rollout::{Arm, StateStoreExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use crate::rollout_state::*;
use crate::rollout_state::rollout_err;

/// The slot job of the scheduled deletion of `collection`.
fn cleanup_job(collection: &str) -> String {
    format!("cleanup:{collection}")
}
impl Engine {
    /// The rollout service of this engine: routing of searches on aliases under a rollout,
    /// canaries, A/B tests and blue-green deployments, and their scheduled checks.
    pub fn rollout(&self) -> RolloutService {
        RolloutService { engine: self.clone() }
    }
}

/// Zero-downtime operations on an engine's aliases (`Engine::rollout`).
#[derive(Clone)]
pub struct RolloutService {
    engine: Engine,
}

impl RolloutService {
    fn rollouts(&self) -> Result<&Arc<Rollouts>> {
        self.engine.rollout_state().ok_or_else(|| Error::Unavailable("rollouts need a state store: open the engine with Engine::open".into()))
    }

    /// Where a search on `alias` by `routing_key` goes: the canary or stable collection of
    /// an active canary, or green while a blue-green deployment watches the alias. `None`:
    /// no rollout concerns this alias.
    pub fn route(&self, alias: &str, routing_key: &str) -> Option<Routed> {
        let r = self.engine.rollout_state()?;
        if let Some(c) = r.active.read().unwrap_or_else(|p| p.into_inner()).get(alias) {
            let arm = c.arm_for(routing_key);
            return Some(Routed { rollout_id: c.id.clone(), stage: c.stage, arm: arm.as_str().into(), collection: c.collection(arm).to_owned(), variant: None, kind: RolloutKind::Canary });
        }
        if let Some(t) = r.active_ab.read().unwrap_or_else(|p| p.into_inner()).get(alias) {
            let v = &t.variants[t.assign(routing_key)];
            let collection = v.collection.clone().unwrap_or_else(|| alias.to_owned());
            return Some(Routed { rollout_id: t.id.clone(), stage: 0, arm: v.id.clone(), collection, variant: Some(v.clone()), kind: RolloutKind::Ab });
        }
        let id = r.monitors.read().unwrap_or_else(|p| p.into_inner()).get(alias).cloned()?;
        Some(Routed { rollout_id: id, stage: 0, arm: Arm::Canary.as_str().into(), collection: alias.to_owned(), variant: None, kind: RolloutKind::Deployment })
    }

    /// Remember an A/B answer under its query id, for `POST /v1/feedback`.
    pub fn remember_answer(&self, query_id: &str, routed: &Routed) {
        if let (Some(r), Some(_)) = (self.engine.rollout_state(), &routed.variant) {
            r.answers.insert(query_id.to_owned(), routed.clone());
        }
    }

    /// A click on a hit of answer `query_id`: credited to its A/B variant.
    pub async fn record_click(&self, query_id: &str) -> Result<Routed> {
        let r = self.rollouts()?;
        let routed = r.answers.get(query_id).ok_or_else(|| Error::NotFound(format!("no recent A/B answer with query_id `{query_id}` (unknown, older than an hour, or not in an A/B test)")))?;
        r.store.record_click(&routed.rollout_id, routed.stage, &routed.arm).await.map_err(rollout_err)?;
        Ok(routed)
    }

    /// Start an A/B test on `alias`: variants' collections must exist (their mode and fusion
    /// are typed, so they parsed with the request).
    pub async fn ab_create(&self, req: AbCreate) -> Result<AbTest> {
        let r = self.rollouts()?;
        self.engine.store().resolve(&req.alias).await?;
        for v in &req.variants {
            if let Some(c) = &v.collection {
                self.engine.store().collection_info(c).await?;
            }
        }
        if r.active_ab.read().unwrap_or_else(|p| p.into_inner()).contains_key(&req.alias) {
            return Err(Error::Conflict(format!("alias `{}` already has a running A/B test", req.alias)));
        }
        let now = r.now();
        let id = req.id.unwrap_or_else(|| format!("ab-{}-{now}", req.alias));
        let t = AbTest::new(id, req.alias, req.variants, now).map_err(Error::InvalidRequest)?;
        if !r.store.save(&t, 0).await.map_err(rollout_err)? {
            return Err(Error::Conflict(format!("A/B test `{}` already exists", t.id)));
        }
        r.remember_ab(&t);
        Ok(t)
    }

    pub async fn ab_tests(&self) -> Result<Vec<AbTest>> {
        self.rollouts()?.store.list::<AbTest>().await.map_err(rollout_err)
    }

    pub async fn ab_stop(&self, id: &str) -> Result<AbTest> {
        let r = self.rollouts()?;
        for _ in 0..8 {
            let mut t = r.store.get::<AbTest>(id).await.map_err(rollout_err)?.ok_or_else(|| Error::NotFound(format!("no A/B test `{id}`")))?;
            let v = t.version;
            t.stop(r.now()).map_err(Error::Conflict)?;
            if r.store.save(&t, v).await.map_err(rollout_err)? {
                r.remember_ab(&t);
                return Ok(t);
            }
        }
        Err(Error::Conflict(format!("A/B test `{id}` kept changing under this request; retry")))
    }

    /// Per-variant metrics and each variant against the first (the control): Welch's
    /// t-test on latency, two-proportion z-tests on error, zero-result and click rates.
    pub async fn ab_status(&self, id: &str) -> Result<AbReport> {
        let r = self.rollouts()?;
        let t = r.store.get::<AbTest>(id).await.map_err(rollout_err)?.ok_or_else(|| Error::NotFound(format!("no A/B test `{id}`")))?;
        let mut stats = Vec::new();
        for v in &t.variants {
            stats.push(r.store.stats(&t.id, 0, &v.id).await.map_err(rollout_err)?);
        }
        let control = &stats[0];
        let answered = |s: &aidocs_rollout::ArmStats| s.requests - s.errors;
        let variants = t
            .variants
            .iter()
            .zip(&stats)
            .enumerate()
            .map(|(i, (v, s))| AbVariantReport {
                id: v.id.clone(),
                weight: v.weight,
                requests: s.requests,
                mean_latency_ms: s.mean_latency_ms(),
                p95_ms: s.quantile_ms(0.95),
                error_rate: s.error_rate(),
                zero_result_rate: s.zero_result_rate(),
                clicks: s.clicks,
                click_through_rate: s.click_through_rate(),
                vs_control: (i > 0).then(|| AbComparison {
                    latency: ab::welch(control, s),
                    error_rate: ab::two_proportion(control.errors, control.requests, s.errors, s.requests),
                    zero_result_rate: ab::two_proportion(control.zero_results, answered(control), s.zero_results, answered(s)),
                    click_through_rate: ab::two_proportion(control.clicks, answered(control), s.clicks, answered(s)),
                }),
            })
            .collect();
        Ok(AbReport { id: t.id.clone(), alias: t.alias.clone(), status: t.status.clone(), control: t.variants[0].id.clone(), variants, test: t })
    }

    /// Count one real request's outcome for its rollout. Failures to record are logged.
    pub async fn record_routed(&self, routed: &Routed, sample: Sample) {
        let outcome = if sample.error {
            "error"
        } else if sample.zero_results {
            "zero_results"
        } else {
            "ok"
        };
        self.engine.metrics().rollout_request(routed.kind.as_str(), &routed.arm, outcome, sample.latency_ms / 1e3);
        if let Some(r) = self.engine.rollout_state()
            && let Err(e) = r.store.record(&routed.rollout_id, routed.stage, &routed.arm, sample).await {
                tracing::warn!(error = %e, rollout = %routed.rollout_id, "rollout sample not recorded");
            }
    }

    /// Start a canary of `collection` on `alias`; the alias's current target is stable.
    pub async fn canary_start(&self, req: CanaryStart) -> Result<Canary> {
        let r = self.rollouts()?;
        let stable = match self.engine.store().resolve(&req.alias).await {
            Ok(c) if c != req.alias => c,
            Ok(_) => return Err(Error::InvalidRequest(format!("`{}` is a collection, not an alias: a canary splits an alias's traffic", req.alias))),
            Err(StoreError::CollectionNotFound(_)) => return Err(Error::InvalidRequest(format!("alias `{}` does not exist", req.alias))),
            Err(e) => return Err(e.into()),
        };
        self.engine.store().collection_info(&req.collection).await?;
        if r.active.read().unwrap_or_else(|p| p.into_inner()).contains_key(&req.alias) {
            return Err(Error::Conflict(format!("alias `{}` already has an active canary", req.alias)));
        }
        let now = r.now();
        let id = req.id.unwrap_or_else(|| format!("{}-{}-{now}", req.alias, req.collection));
        let plan = CanaryPlan {
            alias: req.alias,
            stable,
            canary: req.collection,
            stages: req.stages.unwrap_or_else(default_stages),
            rollback_after_breaches: req.rollback_after_breaches.unwrap_or(2),
        };
        let canary = Canary::new(id, plan, now).map_err(Error::InvalidRequest)?;
        if !r.store.save(&canary, 0).await.map_err(rollout_err)? {
            return Err(Error::Conflict(format!("canary `{}` already exists", canary.id)));
        }
        r.remember(&canary);
        Ok(canary)
    }

    pub async fn canary(&self, id: &str) -> Result<Canary> {
        let r = self.rollouts()?;
        r.store.get::<Canary>(id).await.map_err(rollout_err)?.ok_or_else(|| Error::NotFound(format!("no canary `{id}`")))
    }

    pub async fn canaries(&self) -> Result<Vec<Canary>> {
        self.rollouts()?.store.list::<Canary>().await.map_err(rollout_err)
    }

    /// A canary with the statistics of both arms in its current stage.
    pub async fn canary_status(&self, id: &str) -> Result<CanaryReport> {
        let r = self.rollouts()?;
        let c = self.canary(id).await?;
        let mut arms = std::collections::BTreeMap::new();
        for arm in [Arm::Stable, Arm::Canary] {
            let s = r.store.stats(&c.id, c.stage, arm.as_str()).await.map_err(rollout_err)?;
            arms.insert(arm.as_str().to_owned(), CanaryArm { requests: s.requests, error_rate: s.error_rate(), zero_result_rate: s.zero_result_rate(), p95_ms: s.quantile_ms(0.95) });
        }
        let now = r.now();
        Ok(CanaryReport { stage_percentage: c.current().percentage, stage_elapsed_s: c.stage_elapsed_ms(now) / 1000, arms, canary: c })
    }

    /// Apply `change` with compare-and-set, retrying when another replica got there first.
    async fn canary_change(&self, id: &str, change: impl Fn(&mut Canary, u64) -> std::result::Result<(), String>) -> Result<Canary> {
        let r = self.rollouts()?;
        for _ in 0..8 {
            let mut c = self.canary(id).await?;
            let v = c.version;
            change(&mut c, r.now()).map_err(Error::Conflict)?;
            if r.store.save(&c, v).await.map_err(rollout_err)? {
                r.remember(&c);
                return Ok(c);
            }
        }
        Err(Error::Conflict(format!("canary `{id}` kept changing under this request; retry")))
    }

    pub async fn canary_pause(&self, id: &str) -> Result<Canary> {
        self.canary_change(id, |c, now| c.pause(now)).await
    }

    pub async fn canary_resume(&self, id: &str) -> Result<Canary> {
        self.canary_change(id, |c, now| c.resume(now)).await
    }

    pub async fn canary_rollback(&self, id: &str, reason: &str) -> Result<Canary> {
        let c = self.canary_change(id, |c, now| c.rollback(now, reason)).await?;
        self.engine.metrics().canary_event("rolled_back_manual");
        Ok(c)
    }

    /// One check of every active canary (and of due cleanups): evaluate with the canary
    /// arm's statistics, save with compare-and-set (a replica that loses the race does
    /// nothing), switch the alias on promotion. Returns each canary's decision.
    pub async fn rollout_tick(&self) -> Result<Vec<(String, Decision)>> {
        let r = self.rollouts()?;
        let mut out = Vec::new();
        let all = r.store.list::<Canary>().await.map_err(rollout_err)?;
        let mut active = HashMap::new();
        for mut c in all {
            if !c.status.is_active() {
                continue;
            }
            let v = c.version;
            let stats = r.store.stats(&c.id, c.stage, Arm::Canary.as_str()).await.map_err(rollout_err)?;
            let decision = c.evaluate(&stats, r.now());
            if c.version != v && !r.store.save(&c, v).await.map_err(rollout_err)? {
                // Another replica checked this canary first; its decision stands.
                if let Some(fresh) = r.store.get::<Canary>(&c.id).await.map_err(rollout_err)?
                    && fresh.status.is_active() {
                        active.insert(fresh.plan.alias.clone(), fresh);
                    }
                continue;
            }
            if matches!(decision, Decision::Rollback(_)) {
                self.engine.metrics().canary_event("rolled_back_automatic");
            }
            if decision == Decision::Promote {
                self.engine.metrics().canary_event("promoted");
                self.engine.store().set_alias(&c.plan.alias, &c.plan.canary).await?;
                tracing::info!(canary = %c.id, alias = %c.plan.alias, collection = %c.plan.canary, "canary promoted; alias switched");
            }
            if c.status.is_active() {
                active.insert(c.plan.alias.clone(), c.clone());
            }
            out.push((c.id.clone(), decision));
        }
        *r.active.write().unwrap_or_else(|p| p.into_inner()) = active;
        let running: HashMap<String, AbTest> =
            r.store.list::<AbTest>().await.map_err(rollout_err)?.into_iter().filter(|t| t.status == AbStatus::Running).map(|t| (t.alias.clone(), t)).collect();
        *r.active_ab.write().unwrap_or_else(|p| p.into_inner()) = running;
        self.run_due_cleanups().await?;
        Ok(out)
    }

    /// Check canaries and cleanups every `rollout.check_interval_s` until the process ends.
    pub async fn run_rollout_checks(self) {
        let every = Duration::from_secs(self.engine.config().rollout.check_interval_s.max(1));
        loop {
            if let Err(e) = self.rollout_tick().await {
                tracing::warn!(error = %e, "rollout check failed; retrying next interval");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// `GET /deployment/status`: active canaries with their arms, recent deployments and
    /// pending cleanups.
    pub async fn deployment_status(&self) -> Result<DeploymentReport> {
        let r = self.rollouts()?;
        let mut canaries = Vec::new();
        for c in r.store.list::<Canary>().await.map_err(rollout_err)? {
            if c.status.is_active() {
                canaries.push(self.canary_status(&c.id).await?);
            }
        }
        let file = self.read_deployments().await?;
        Ok(DeploymentReport {
            state_backend: r.store.backend(),
            canaries,
            deployments: file.deployments.iter().rev().take(10).cloned().collect(),
            cleanups: file.cleanups,
            ab_tests: r.active_ab.read().unwrap_or_else(|p| p.into_inner()).values().map(|t| t.id.clone()).collect(),
            monitoring: r.monitors.read().unwrap_or_else(|p| p.into_inner()).clone(),
        })
    }

    async fn read_deployments(&self) -> Result<DeploymentsFile> {
        let r = self.rollouts()?;
        if let Some(d) = r.store.get::<DeploymentsFile>("all").await.map_err(rollout_err)? {
            return Ok(d);
        }
        // A data dir from before the log moved into the state store.
        match tokio::fs::read(&r.deployments_file).await {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Internal(format!("corrupt {}: {e}", r.deployments_file.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DeploymentsFile::default()),
            Err(e) => Err(Error::Internal(format!("{}: {e}", r.deployments_file.display()))),
        }
    }

    /// Read, change and save the deployment log with compare-and-set (replicas sharing the
    /// state store may write at once: the loser reads again and reapplies `f`).
    async fn update_deployments(&self, f: impl Fn(&mut DeploymentsFile)) -> Result<()> {
        let r = self.rollouts()?;
        let _one_writer = r.deployments_lock.lock().await;
        for _ in 0..16 {
            let mut file = self.read_deployments().await?;
            let expected = file.version;
            f(&mut file);
            file.version = expected + 1;
            if r.store.save(&file, expected).await.map_err(rollout_err)? {
                return Ok(());
            }
        }
        Err(Error::Conflict("the deployment log kept changing under concurrent writers; retry".into()))
    }

    /// Delete every scheduled collection that is due and no alias points at. With replicas
    /// sharing the rollout state, each cleanup is claimed as a slot (`cleanup:<collection>`
    /// at its due time, `rollout.lease_s`), so one replica deletes it and the others leave it
    /// alone; a failed delete lets its lease lapse, and a later check (here or on another
    /// replica) takes it over and tries again. A won slot whose cleanup is no longer listed
    /// was run by another replica between our read of the list and our claim: it is
    /// finished without running again.
    async fn run_due_cleanups(&self) -> Result<()> {
        use aidocs_rollout::schedule::{self, Claim};
        let r = self.rollouts()?;
        let now = r.now();
        let file = self.read_deployments().await?;
        let due: Vec<Cleanup> = file.cleanups.iter().filter(|c| c.due_ms <= now).cloned().collect();
        if due.is_empty() {
            return Ok(());
        }
        let coord = r.coordinator();
        let (store, clock) = (coord.store.as_ref(), coord.clock.as_ref());
        let aliased: Vec<String> = self.engine.store().list_aliases().await?.into_iter().map(|(_, c)| c).collect();
        let mut done = Vec::new();
        for c in due {
            let job = cleanup_job(&c.collection);
            let lease = match schedule::claim(store, clock, &job, c.due_ms, &coord.holder, self.engine.config().rollout.lease()).await.map_err(rollout_err)? {
                // Our list may be stale: a replica that ran this cleanup takes it off the list
                // and then prunes its slot, so a fresh slot won here can be a finished cleanup
                // claimed a second time. Checked against the list as it is now.
                Claim::Won(lease) if !self.read_deployments().await?.cleanups.iter().any(|n| n.collection == c.collection && n.due_ms == c.due_ms) => {
                    tracing::debug!(collection = %c.collection, "another replica ran this cleanup already");
                    lease.finish(store, clock, Ok(format!("`{}`: already cleaned up by another replica", c.collection).into())).await.map_err(rollout_err)?;
                    schedule::prune(store, &job, 0).await.map_err(rollout_err)?;
                    continue;
                }
                Claim::Won(lease) => lease,
                Claim::Held { holder, .. } => {
                    tracing::debug!(collection = %c.collection, %holder, "another replica is running this cleanup");
                    continue;
                }
                // Done elsewhere; that replica's update of the list may have lost to ours.
                Claim::Finished(_) => {
                    done.push(c.collection);
                    continue;
                }
            };
            let said = if aliased.contains(&c.collection) {
                tracing::warn!(collection = %c.collection, "scheduled for deletion but an alias points at it; keeping it");
                format!("kept `{}`: an alias points at it", c.collection)
            } else {
                match self.engine.store().delete_collection(&c.collection).await {
                    Ok(()) | Err(StoreError::CollectionNotFound(_)) => {
                        tracing::info!(collection = %c.collection, reason = %c.reason, "scheduled cleanup: collection deleted");
                        format!("deleted `{}` ({})", c.collection, c.reason)
                    }
                    Err(e) => {
                        tracing::warn!(collection = %c.collection, error = %e, "scheduled cleanup failed; retried once its lease lapses");
                        self.engine.metrics().scheduled_run("cleanup", false);
                        continue;
                    }
                }
            };
            lease.finish(store, clock, Ok(said.into())).await.map_err(rollout_err)?;
            self.engine.metrics().scheduled_run("cleanup", true);
            done.push(c.collection);
        }
        if done.is_empty() {
            return Ok(());
        }
        self.update_deployments(|f| f.cleanups.retain(|c| !done.contains(&c.collection))).await?;
        // Off the list now: their slots have served.
        for collection in &done {
            schedule::prune(store, &cleanup_job(collection), 0).await.map_err(rollout_err)?;
        }
        Ok(())
    }

    /// Blue-green: build green beside blue, validate it, switch the alias in one step, watch
    /// live traffic for `monitor_s` (switching back on a breach), and schedule blue's
    /// deletion after `grace_s`. Any failure before the switch deletes green and leaves blue
    /// serving.
    pub async fn deploy_blue_green(&self, req: BlueGreenRequest, progress: &dyn IngestProgress) -> Result<Deployment> {
        let r = self.rollouts()?.clone();
        let s = req.settings.clone().unwrap_or_else(|| self.engine.config().rollout.blue_green.clone());
        let started = r.now();
        let blue = match self.engine.store().resolve(&req.alias).await {
            Ok(c) if c == req.alias => {
                return Err(Error::InvalidRequest(format!("`{}` is a collection, not an alias; blue-green switches an alias", req.alias)));
            }
            Ok(c) => Some(c),
            Err(StoreError::CollectionNotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        if r.active.read().unwrap_or_else(|p| p.into_inner()).contains_key(&req.alias) {
            return Err(Error::Conflict(format!("alias `{}` has an active canary; finish it first", req.alias)));
        }
        // `<alias>_<UTC timestamp>`, made unique if a collection of that name exists.
        let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S%3f").to_string();
        let existing: Vec<String> = self.engine.store().list_collections().await?.into_iter().map(|c| c.name).collect();
        let green = (0..)
            .map(|i| if i == 0 { format!("{}_{stamp}", req.alias) } else { format!("{}_{stamp}_{i}", req.alias) })
            .find(|n| !existing.contains(n))
            .expect("an unused name");
        let id = green.clone();
        let mut events = vec![format!("blue: {}", blue.as_deref().unwrap_or("(none)")), format!("green: {green}")];
        // Green gets blue's settings: dimensions and recorded properties (model).
        let spec = match &blue {
            Some(b) => {
                let info = self.engine.store().collection_info(b).await?;
                CollectionSpec { name: green.clone(), dims: info.dims, properties: info.properties }
            }
            None => self.engine.collection_spec(&green),
        };
        self.engine.store().create_collection(&spec).await?;
        let built = self.build_and_validate(&req, &s, &green, blue.as_deref(), progress).await;
        let (ingest, validation, points) = match built {
            Ok(x) => x,
            Err(e) => {
                // Nothing switched: remove green, blue keeps serving.
                if let Err(de) = self.engine.collections().delete(&green).await {
                    tracing::warn!(collection = %green, error = %de, "could not delete the failed green collection");
                }
                let d = Deployment {
                    id,
                    alias: req.alias.clone(),
                    blue,
                    green,
                    status: DeploymentStatus::Failed,
                    points: 0,
                    validation: vec![e.to_string()],
                    started_ms: started,
                    finished_ms: r.now(),
                    events,
                    ingest: None,
                };
                self.update_deployments(|f| f.deployments.push(d.clone())).await?;
                self.engine.metrics().deployment("failed");
                return Err(e);
            }
        };
        // The switch: one atomic alias change; readers see blue or green, never nothing.
        self.engine.store().set_alias(&req.alias, &green).await?;
        events.push(format!("{}: alias `{}` -> {green}", r.now(), req.alias));
        tracing::info!(alias = %req.alias, %green, blue = ?blue, "blue-green switch");
        let status = match &blue {
            Some(b) if s.monitor_s > 0 => self.monitor_after_switch(&r, &id, &req.alias, b, &s, &mut events).await?,
            _ => DeploymentStatus::Switched,
        };
        let due = r.now() + s.grace_s * 1000;
        let cleanup = match (&status, &blue) {
            (DeploymentStatus::Switched, Some(b)) => Some(Cleanup { collection: b.clone(), due_ms: due, reason: format!("blue of deployment {id}") }),
            (DeploymentStatus::RolledBack, _) => Some(Cleanup { collection: green.clone(), due_ms: due, reason: format!("green of rolled-back deployment {id}") }),
            _ => None,
        };
        let d = Deployment {
            id,
            alias: req.alias.clone(),
            blue,
            green,
            status,
            points,
            validation,
            started_ms: started,
            finished_ms: r.now(),
            events,
            ingest: Some(ingest),
        };
        self.engine.metrics().deployment(if d.status == DeploymentStatus::RolledBack { "rolled_back" } else { "switched" });
        let record = d.clone();
        self.update_deployments(move |f| {
            f.deployments.push(record.clone());
            f.cleanups.extend(cleanup.iter().cloned());
        })
        .await?;
        Ok(d)
    }

    async fn build_and_validate(
        &self,
        req: &BlueGreenRequest,
        s: &BlueGreenSettings,
        green: &str,
        blue: Option<&str>,
        progress: &dyn IngestProgress,
    ) -> Result<(IngestReport, Vec<String>, usize)> {
        let ingest = self
            .engine
            .ingest().directory(
                IngestRequest { path: req.source.clone(), collection: green.to_owned(), metadata: DocMetadata::from(&req.metadata), base_url: req.base_url.clone() },
                progress,
            )
            .await?;
        let points = self.engine.store().collection_info(green).await?.points;
        let mut notes = Vec::new();
        let mut failures = Vec::new();
        if points == 0 {
            failures.push("green holds no points".to_owned());
        }
        if let Some(b) = blue {
            let blue_points = self.engine.store().collection_info(b).await?.points;
            let change = (points as f64 - blue_points as f64).abs() / (blue_points.max(1) as f64);
            let line = format!("points: green {points}, blue {blue_points} (change {:.1} %, allowed {:.1} %)", change * 100.0, s.max_point_change * 100.0);
            if change > s.max_point_change { failures.push(line) } else { notes.push(line) }
        }
        let mut overlaps = Vec::new();
        for q in &req.validate_queries {
            let search = |collection: &str| {
                let mut sr = SearchRequest::new(q.clone());
                sr.collection = Some(collection.to_owned());
                sr.limit = Some(10);
                sr.hyde = Some(false);
                sr.rerank = Some(false);
                sr
            };
            let g = self.engine.search(search(green)).await?;
            let top = g.hits.first().map_or(f32::NEG_INFINITY, |h| h.score);
            if g.hits.len() < s.min_hits || top < s.min_top_score {
                failures.push(format!("query `{q}`: {} hits, top score {top:.4} (need {} hits, top >= {})", g.hits.len(), s.min_hits, s.min_top_score));
            }
            if let Some(b) = blue {
                let bh = self.engine.search(search(b)).await?;
                let key = |h: &crate::search::SearchHit| (h.path.clone(), h.anchor.clone());
                let bs: Vec<_> = bh.hits.iter().map(key).collect();
                let shared = g.hits.iter().filter(|h| bs.contains(&key(h))).count();
                overlaps.push(shared as f64 / bh.hits.len().max(1) as f64);
            }
        }
        if !overlaps.is_empty() {
            let mean = overlaps.iter().sum::<f64>() / overlaps.len() as f64;
            let line = format!("overlap@10 with blue: {mean:.3} (need {:.3})", s.min_overlap);
            if mean < s.min_overlap { failures.push(line) } else { notes.push(line) }
        }
        notes.push(format!("{} validation queries", req.validate_queries.len()));
        if failures.is_empty() { Ok((ingest, notes, points)) } else { Err(Error::ValidationFailed(format!("green `{green}` failed validation: {}", failures.join("; ")))) }
    }

    /// Watch the alias's live traffic on green; switch back to blue on a breach.
    async fn monitor_after_switch(&self, r: &Rollouts, id: &str, alias: &str, blue: &str, s: &BlueGreenSettings, events: &mut Vec<String>) -> Result<DeploymentStatus> {
        r.monitors.write().unwrap_or_else(|p| p.into_inner()).insert(alias.to_owned(), id.to_owned());
        // Live traffic is watched in real time, whatever the rollout clock says.
        let until = tokio::time::Instant::now() + Duration::from_secs(s.monitor_s);
        let mut status = DeploymentStatus::Switched;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let stats = r.store.stats(id, 0, Arm::Canary.as_str()).await.map_err(rollout_err)?;
            if stats.requests < s.min_requests {
                continue;
            }
            let p95 = stats.quantile_ms(0.95).unwrap_or(0.0);
            if stats.error_rate() > s.max_error_rate || p95 > s.max_p95_ms {
                self.engine.store().set_alias(alias, blue).await?;
                let why = format!("error rate {:.3} (max {:.3}), p95 {p95} ms (max {}) over {} requests", stats.error_rate(), s.max_error_rate, s.max_p95_ms, stats.requests);
                tracing::warn!(%alias, %blue, "{why}: switched back to blue");
                events.push(format!("{}: breach, alias `{alias}` back to {blue}: {why}", r.now()));
                status = DeploymentStatus::RolledBack;
                break;
            }
        }
        r.monitors.write().unwrap_or_else(|p| p.into_inner()).remove(alias);
        if status == DeploymentStatus::Switched {
            let stats = r.store.stats(id, 0, Arm::Canary.as_str()).await.map_err(rollout_err)?;
            events.push(format!("{}: monitored {} s: {} requests, error rate {:.3}", r.now(), s.monitor_s, stats.requests, stats.error_rate()));
        }
        Ok(status)
    }

    /// Collections scheduled for deletion.
    pub async fn cleanups(&self) -> Result<Vec<Cleanup>> {
        Ok(self.read_deployments().await?.cleanups)
    }
}
