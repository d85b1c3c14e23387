//! The server's scheduled work, each due time done by one process of all that share the
//! rollout state (one Redis for several replicas): the loop that waits for due times,
//! claims their slots ([`aidocs_rollout::schedule`]), renews the lease while the work runs
//! and records how it ended. A replica killed mid-run leaves its lease to expire; another
//! takes the slot over. Without shared state (an engine with no rollout state), the work
//! runs here alone.

use aidocs_rollout::schedule::{self, Cadence, Claim, RunSummary};
use aidocs_rollout::{StateStore, WallClock};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Finished slots kept per job (the recent history `slots` shows).
pub const KEEP_SLOTS: usize = 50;

/// One scheduled job of this process.
#[derive(Clone)]
pub struct Scheduled {
    /// The job's name, shared by every replica (`backup`, `sync:<collection>`).
    pub job: String,
    pub cadence: Cadence,
    /// How long a claim holds without renewal; the holder renews at a third of it.
    pub lease: Duration,
}

/// Where the slots live and who this process is there.
#[derive(Clone)]
pub struct Coordinator {
    pub store: Arc<dyn StateStore>,
    pub clock: Arc<dyn WallClock>,
    /// This process's name in the slots (`<host>-<random>`).
    pub holder: String,
}

impl Coordinator {
    pub fn new(store: Arc<dyn StateStore>, clock: Arc<dyn WallClock>) -> Self {
        Self { store, clock, holder: format!("{}-{}", crate::jobs::hostname(), uuid::Uuid::new_v4().simple()) }
    }
}

/// Run `job` on its cadence until the task is dropped: at each due time, one process
/// sharing `coord.store` runs `work` (its `Ok` is a summary, its `Err` the failure).
/// `on_finish` hears each outcome this process recorded (metrics).
pub async fn run<F, Fut>(coord: Coordinator, job: Scheduled, work: F, on_finish: impl Fn(&str, bool))
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<RunSummary, String>>,
{
    let lease_ms = job.lease.as_millis() as u64;
    let mut after = coord.clock.now_ms();
    loop {
        let Some(due) = job.cadence.next_after(after) else {
            tracing::warn!(job = %job.job, cadence = %job.cadence, "the schedule has no future due time");
            return;
        };
        tracing::debug!(job = %job.job, due_ms = due, cadence = %job.cadence, "next due time");
        let now = coord.clock.now_ms();
        if due > now {
            tokio::time::sleep(Duration::from_millis(due - now)).await;
        }
        after = due;
        if coord.clock.now_ms() > due + lease_ms {
            // This process was away (suspended, overloaded) past a whole lease: the others
            // had their chance at this slot; go on from now.
            tracing::warn!(job = %job.job, due_ms = due, "a due time passed unseen here; skipping to the next");
            after = coord.clock.now_ms();
            continue;
        }
        if let Some(ok) = run_slot(&coord, &job, due, &work).await {
            on_finish(&job.job, ok);
        }
    }
}

/// Claim the slot due at `due` and run it, or wait for its holder to finish or lose it;
/// `Some(ok)` when this process ran it and recorded how it ended.
async fn run_slot<F, Fut>(coord: &Coordinator, job: &Scheduled, due: u64, work: &F) -> Option<bool>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<RunSummary, String>>,
{
    let store = coord.store.as_ref();
    let clock = coord.clock.as_ref();
    loop {
        let mut lease = match schedule::claim(store, clock, &job.job, due, &coord.holder, job.lease).await {
            Ok(Claim::Won(lease)) => lease,
            Ok(Claim::Finished(_)) => return None,
            Ok(Claim::Held { until_ms, .. }) => {
                // Look again when the holder's lease would end: renewed, it is still at
                // work; expired, the slot is ours to take over.
                let wait = until_ms.saturating_sub(clock.now_ms()).max(50);
                tokio::time::sleep(Duration::from_millis(wait)).await;
                continue;
            }
            Err(e) => {
                tracing::error!(job = %job.job, due_ms = due, error = %e, "cannot claim a scheduled run: the shared state is unavailable; skipping it");
                return None;
            }
        };
        tracing::info!(job = %job.job, due_ms = due, fence = lease.fence(), claims = lease.slot().claims, "scheduled run started");
        let running = work();
        tokio::pin!(running);
        let mut renew = tokio::time::interval((job.lease / 3).max(Duration::from_millis(10)));
        renew.tick().await;
        let outcome = loop {
            tokio::select! {
                r = &mut running => break Some(r),
                _ = renew.tick() => match lease.renew(store, clock).await {
                    Ok(true) => {}
                    Ok(false) => break None,
                    // Redis away for a moment: keep working; the next renewal may reach it.
                    Err(e) => tracing::warn!(job = %job.job, error = %e, "could not renew a scheduled run's lease"),
                },
            }
        };
        let Some(result) = outcome else {
            // Stalled past the lease: another process has the slot now. Stop here.
            tracing::warn!(job = %job.job, due_ms = due, "lost the lease of a scheduled run; another replica took it over");
            return None;
        };
        let ok = result.is_ok();
        let said = match &result {
            Ok(s) => s.text.clone(),
            Err(e) => e.clone(),
        };
        let recorded = match lease.finish(store, clock, result).await {
            Ok(true) if ok => {
                tracing::info!(job = %job.job, due_ms = due, detail = %said, "scheduled run done");
                Some(true)
            }
            Ok(true) => {
                tracing::error!(job = %job.job, due_ms = due, error = %said, "scheduled run failed");
                Some(false)
            }
            Ok(false) => {
                tracing::warn!(job = %job.job, due_ms = due, "a scheduled run finished after its lease was taken over; its outcome is not recorded");
                None
            }
            Err(e) => {
                tracing::error!(job = %job.job, due_ms = due, error = %e, "could not record a scheduled run's outcome");
                Some(ok)
            }
        };
        if let Err(e) = schedule::prune(store, &job.job, KEEP_SLOTS).await {
            tracing::warn!(job = %job.job, error = %e, "could not prune old slots");
        }
        return recorded;
    }
}
