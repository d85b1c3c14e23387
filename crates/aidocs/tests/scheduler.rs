//! Scheduled work shared by replicas through one real Redis (`REDIS_URL`, default
//! 127.0.0.1:6379): every due time is run by exactly one of three schedulers, a holder
//! killed mid-run is replaced once its lease expires, and a stale holder's late writes are
//! refused by the fence.

use aidocs::scheduler::{self, Coordinator, Scheduled};
use aidocs_rollout::schedule::{self, Cadence, Claim, SlotState};
use aidocs_rollout::{RedisStateStore, StateStore, SystemWallClock, WallClock};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn redis() -> Arc<dyn StateStore> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ns = format!("aidocs-test:sched:{}:{}:", std::process::id(), uuid::Uuid::new_v4().simple());
    Arc::new(RedisStateStore::connect(&url, &ns, Duration::from_secs(2)).await.expect("a Redis server (REDIS_URL; .ci/run starts one)"))
}

/// Each replica its own connection, as separate processes would have, on one namespace.
async fn replicas(n: usize) -> Vec<Coordinator> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ns = format!("aidocs-test:sched:{}:{}:", std::process::id(), uuid::Uuid::new_v4().simple());
    let mut out = Vec::new();
    for i in 0..n {
        let store = RedisStateStore::connect(&url, &ns, Duration::from_secs(2)).await.expect("a Redis server (REDIS_URL; .ci/run starts one)");
        out.push(Coordinator { store: Arc::new(store), clock: Arc::new(SystemWallClock), holder: format!("replica-{i}") });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_due_time_runs_once_across_three_replicas() {
    let reps = replicas(3).await;
    let job = Scheduled { job: "tick".into(), cadence: Cadence::parse("every 1s").unwrap(), lease: Duration::from_secs(2) };
    // Who ran, and when; the work takes long enough that the replicas overlap.
    let runs: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let mut tasks = Vec::new();
    for c in &reps {
        let (c, job, runs) = (c.clone(), job.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            let me = c.holder.clone();
            let clock = c.clock.clone();
            scheduler::run(c, job, move || {
                let (me, runs, clock) = (me.clone(), runs.clone(), clock.clone());
                async move {
                    runs.lock().unwrap().push((me, clock.now_ms()));
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok("ticked".to_owned().into())
                }
            }, |_, _| {})
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    for t in &tasks {
        t.abort();
    }
    let slots = schedule::slots(reps[0].store.as_ref(), "tick").await.unwrap();
    let done: Vec<_> = slots.iter().filter(|s| s.state == SlotState::Done).collect();
    assert!(done.len() >= 4, "about five due times in 5.5 s: {slots:#?}");
    let runs = runs.lock().unwrap().clone();
    // Every run belongs to exactly one slot (it started within its slot's second) and every
    // finished slot was run exactly once, by the holder it names, on its first claim.
    let mut per_slot: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (who, at) in &runs {
        per_slot.entry(at / 1000 * 1000).or_default().push(who.clone());
    }
    for s in &done {
        assert_eq!(per_slot.get(&s.due_ms), Some(&vec![s.holder.clone()]), "slot {} ran once, by its holder: {per_slot:?}", s.id);
        assert_eq!(s.claims, 1);
        assert_eq!(s.detail, "ticked");
    }
    for (due, who) in &per_slot {
        assert_eq!(who.len(), 1, "the slot due at {due} ran {} times: {per_slot:?}", who.len());
        assert!(slots.iter().any(|s| s.due_ms == *due), "a run outside any slot at {due}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_killed_mid_run_is_replaced_after_its_lease_expires() {
    let reps = replicas(3).await;
    let job = Scheduled { job: "sync".into(), cadence: Cadence::parse("every 2s").unwrap(), lease: Duration::from_millis(900) };
    // The first run anywhere never ends by itself (its replica is about to be killed).
    let first: Arc<Mutex<Option<(String, u64)>>> = Arc::default();
    let runs: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for c in &reps {
        let (c, job, first, runs) = (c.clone(), job.clone(), first.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            let me = c.holder.clone();
            let clock = c.clock.clone();
            scheduler::run(c, job, move || {
                let (me, first, runs, clock) = (me.clone(), first.clone(), runs.clone(), clock.clone());
                async move {
                    runs.lock().unwrap().push(me.clone());
                    let hang = {
                        let mut f = first.lock().unwrap();
                        let hang = f.is_none();
                        if hang {
                            *f = Some((me.clone(), clock.now_ms()));
                        }
                        hang
                    };
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    Ok(format!("synced by {me}").into())
                }
            }, |_, _| {})
            .await
        }));
    }
    // Kill the replica running the first slot (its task stops: no renewal, no release).
    let (victim, started) = loop {
        if let Some(f) = first.lock().unwrap().clone() {
            break f;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let index: usize = victim.trim_start_matches("replica-").parse().unwrap();
    tasks[index].abort();
    let due = started / 2000 * 2000;
    // Another replica takes the slot over once the lease has run out, and finishes it.
    let store = reps[0].store.clone();
    let slot = loop {
        let s = schedule::slots(store.as_ref(), "sync").await.unwrap().into_iter().find(|s| s.due_ms == due).unwrap();
        if s.state != SlotState::Running {
            break s;
        }
        assert!(SystemWallClock.now_ms() < started + 10_000, "the slot was never taken over: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for t in &tasks {
        t.abort();
    }
    assert_eq!(slot.state, SlotState::Done, "{slot:?}");
    assert_ne!(slot.holder, victim, "{slot:?}");
    assert_eq!(slot.claims, 2, "claimed by the victim, then taken over: {slot:?}");
    assert_eq!(slot.detail, format!("synced by {}", slot.holder));
    assert!(slot.finished_ms.unwrap() >= started + 800, "not before the victim's lease ran out: {slot:?}");
}

/// A clock the test moves.
#[derive(Default)]
struct TestClock(AtomicU64);

impl WallClock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_stale_holder_can_neither_renew_nor_finish() {
    let store = redis().await;
    let clock = TestClock::default();
    clock.0.store(1_000_000, Ordering::SeqCst);
    let ttl = Duration::from_secs(10);
    let Claim::Won(mut old) = schedule::claim(store.as_ref(), &clock, "backup", 1_000_000, "a", ttl).await.unwrap() else { panic!("the first claim wins") };
    assert_eq!(old.fence(), 1);
    assert!(old.renew(store.as_ref(), &clock).await.unwrap(), "a live lease renews");
    match schedule::claim(store.as_ref(), &clock, "backup", 1_000_000, "b", ttl).await.unwrap() {
        Claim::Held { holder, until_ms } => assert_eq!((holder.as_str(), until_ms), ("a", 1_010_000)),
        other => panic!("a live lease is held: {other:?}"),
    }
    // "a" stalls past its lease; "b" takes over with a higher fence.
    clock.0.store(1_010_001, Ordering::SeqCst);
    let Claim::Won(new) = schedule::claim(store.as_ref(), &clock, "backup", 1_000_000, "b", ttl).await.unwrap() else { panic!("an expired lease is taken over") };
    assert!(new.fence() > old.fence());
    assert_eq!(new.slot().claims, 2);
    assert!(!old.renew(store.as_ref(), &clock).await.unwrap(), "the stale holder's renewal is refused");
    assert!(!old.finish(store.as_ref(), &clock, Ok("late".to_owned().into())).await.unwrap(), "the stale holder's outcome is refused");
    assert!(new.finish(store.as_ref(), &clock, Err("disk full".into())).await.unwrap());
    let s = schedule::slots(store.as_ref(), "backup").await.unwrap().remove(0);
    assert_eq!((s.state, s.holder.as_str(), s.detail.as_str()), (SlotState::Failed, "b", "disk full"));
    assert!(matches!(schedule::claim(store.as_ref(), &clock, "backup", 1_000_000, "c", ttl).await.unwrap(), Claim::Finished(_)), "a finished slot is never run again");
    // Pruning keeps the newest finished slots.
    for due in [2_000_000u64, 3_000_000] {
        let Claim::Won(l) = schedule::claim(store.as_ref(), &clock, "backup", due, "a", ttl).await.unwrap() else { panic!() };
        l.finish(store.as_ref(), &clock, Ok(Default::default())).await.unwrap();
    }
    assert_eq!(schedule::prune(store.as_ref(), "backup", 2).await.unwrap(), 1);
    let left: Vec<u64> = schedule::slots(store.as_ref(), "backup").await.unwrap().iter().map(|s| s.due_ms).collect();
    assert_eq!(left, [3_000_000, 2_000_000]);
}
