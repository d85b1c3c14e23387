//! Scheduled work done once per due time by one of every process that shares a
//! [`StateStore`] (several replicas on one Redis, or one process on its files).
//!
//! Each due time of a job is a [`Slot`] document. The process whose compare-and-set creates
//! it holds the slot's lease: it renews the lease while it works and marks the slot done
//! (or failed) at the end. The others see a live lease and wait. A lease left to expire (its
//! holder was killed or stalled) is taken over by another process. Every claim bumps the
//! slot's version, which is the lease's fence: the old holder's renewals and its final
//! write carry the old fence and are refused, so a slot is finished exactly once.
//!
//! Times are wall-clock milliseconds ([`WallClock`]): the processes sharing a store must
//! keep their clocks within a small fraction of the lease time of each other.

use crate::WallClock;
use crate::state::{Document, RolloutError, StateStore, StateStoreExt};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::time::Duration;

/// When a job is due (closed set): a fixed period, or a cron expression.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// Every period, on multiples of it since the Unix epoch (`every 6h`), so every
    /// process computes the same due times.
    Every(Duration),
    /// A cron expression (5 fields, or 6 with seconds first; UTC).
    Cron { cron: Box<croner::Cron>, expr: String },
}

/// A cadence that does not parse; the message names the text and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a schedule: {why} (use `every 30s`, `every 6h`, `every 1d`, or a cron expression such as `0 3 * * *`)")]
pub struct CadenceError {
    pub text: String,
    pub why: String,
}

impl Cadence {
    /// `every 90s` / `every 15m` / `every 6h` / `every 1d`, or a cron expression.
    pub fn parse(text: &str) -> Result<Self, CadenceError> {
        let t = text.trim();
        let err = |why: &str| CadenceError { text: t.to_owned(), why: why.to_owned() };
        if let Some(period) = t.strip_prefix("every ").or_else(|| t.strip_prefix("@every ")) {
            let p = period.trim();
            let split = p.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| err("the period needs a unit (s, m, h or d)"))?;
            let n: u64 = p[..split].parse().map_err(|_| err("the period must start with a whole number"))?;
            let unit = match &p[split..] {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return Err(err("the period's unit must be s, m, h or d")),
            };
            if n == 0 {
                return Err(err("the period must be longer than zero"));
            }
            let secs = n.checked_mul(unit).filter(|s| *s <= 366 * 86_400).ok_or_else(|| err("the period must be at most a year"))?;
            return Ok(Self::Every(Duration::from_secs(secs)));
        }
        let cron = croner::Cron::from_str(t).map_err(|e| err(&e.to_string()))?;
        Ok(Self::Cron { cron: Box::new(cron), expr: t.to_owned() })
    }

    /// The first due time strictly after `after_ms` (Unix milliseconds); `None` when the
    /// cadence has no later one.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        match self {
            Self::Every(p) => {
                let p = p.as_millis() as u64;
                Some((after_ms / p + 1) * p)
            }
            Self::Cron { cron, .. } => {
                let after = chrono_ms(after_ms)?;
                cron.find_next_occurrence(&after, false).ok().map(|t| t.timestamp_millis().max(0) as u64)
            }
        }
    }
}

impl std::fmt::Display for Cadence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Every(p) => {
                let s = p.as_secs();
                match s {
                    s if s % 86_400 == 0 => write!(f, "every {}d", s / 86_400),
                    s if s % 3600 == 0 => write!(f, "every {}h", s / 3600),
                    s if s % 60 == 0 => write!(f, "every {}m", s / 60),
                    s => write!(f, "every {s}s"),
                }
            }
            Self::Cron { expr, .. } => f.write_str(expr),
        }
    }
}

fn chrono_ms(ms: u64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)
}

/// How a slot stands (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    /// A holder works on it under a lease.
    Running,
    Done,
    Failed,
}

/// One due time of one job: who holds it, until when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// `<job>@<due_ms>`.
    pub id: String,
    pub job: String,
    pub due_ms: u64,
    /// Bumped by every change; the fence of the lease that made the change.
    pub version: u64,
    pub state: SlotState,
    /// The process holding (or, when finished, that finished) the slot.
    pub holder: String,
    pub lease_until_ms: u64,
    /// Claims so far: more than one means a holder's lease expired and another took over.
    pub claims: u32,
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// What the work reported (a summary, or the error).
    #[serde(default)]
    pub detail: String,
    /// Counts the work reported (`pages_seen`, `pages_changed`...).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub counts: std::collections::BTreeMap<String, u64>,
}

/// What a finished run reports: a one-line summary and named counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub text: String,
    pub counts: std::collections::BTreeMap<String, u64>,
}

impl From<String> for RunSummary {
    fn from(text: String) -> Self {
        Self { text, counts: Default::default() }
    }
}

impl Document for Slot {
    const KIND: &'static str = "slot";
    fn id(&self) -> &str {
        &self.id
    }
    fn version(&self) -> u64 {
        self.version
    }
}

/// The outcome of [`claim`].
#[derive(Debug)]
pub enum Claim {
    /// This process holds the slot: do the work, then [`Lease::finish`].
    Won(Lease),
    /// Another process holds a live lease on it until this time (Unix ms).
    Held { holder: String, until_ms: u64 },
    /// It was finished already (by anyone).
    Finished(Slot),
}

/// A held slot. Dropped without [`Lease::finish`], it expires and another process takes
/// the slot over.
#[derive(Debug)]
pub struct Lease {
    slot: Slot,
    ttl: Duration,
}

impl Lease {
    /// The fence: the slot's version when this lease last wrote it.
    pub fn fence(&self) -> u64 {
        self.slot.version
    }

    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    /// Extend the lease by its time to live from now. `Ok(false)`: the lease was lost (it
    /// expired and another process claimed the slot); stop working on it.
    pub async fn renew(&mut self, store: &dyn StateStore, clock: &dyn WallClock) -> Result<bool, RolloutError> {
        let mut next = self.slot.clone();
        next.version += 1;
        next.lease_until_ms = clock.now_ms() + self.ttl.as_millis() as u64;
        if store.save(&next, self.slot.version).await? {
            self.slot = next;
            return Ok(true);
        }
        Ok(false)
    }

    /// Mark the slot done with the work's summary, or failed with its error. `Ok(false)`:
    /// the lease was lost first, and the slot is another process's to finish.
    pub async fn finish(self, store: &dyn StateStore, clock: &dyn WallClock, outcome: Result<RunSummary, String>) -> Result<bool, RolloutError> {
        let mut next = self.slot.clone();
        next.version += 1;
        next.finished_ms = Some(clock.now_ms());
        match outcome {
            Ok(s) => {
                next.state = SlotState::Done;
                next.detail = s.text;
                next.counts = s.counts;
            }
            Err(e) => {
                next.state = SlotState::Failed;
                next.detail = e;
            }
        }
        store.save(&next, self.slot.version).await
    }
}

/// The slot id of `job` due at `due_ms`.
pub fn slot_id(job: &str, due_ms: u64) -> String {
    format!("{job}@{due_ms}")
}

/// Try to take the slot of `job` due at `due_ms` for `holder`, with a lease of `ttl`: the
/// first claim wins, and a claim after the holder's lease expired takes the slot over.
pub async fn claim(store: &dyn StateStore, clock: &dyn WallClock, job: &str, due_ms: u64, holder: &str, ttl: Duration) -> Result<Claim, RolloutError> {
    let id = slot_id(job, due_ms);
    loop {
        let now = clock.now_ms();
        let until = now + ttl.as_millis() as u64;
        let (next, expected) = match store.get::<Slot>(&id).await? {
            None => (
                Slot {
                    id: id.clone(),
                    job: job.to_owned(),
                    due_ms,
                    version: 1,
                    state: SlotState::Running,
                    holder: holder.to_owned(),
                    lease_until_ms: until,
                    claims: 1,
                    started_ms: now,
                    finished_ms: None,
                    detail: String::new(),
                    counts: Default::default(),
                },
                0,
            ),
            Some(s) if s.state != SlotState::Running => return Ok(Claim::Finished(s)),
            Some(s) if s.lease_until_ms > now => return Ok(Claim::Held { holder: s.holder, until_ms: s.lease_until_ms }),
            Some(s) => {
                tracing::warn!(slot = %id, previous = %s.holder, holder, "a lease expired unfinished; taking the slot over");
                let expected = s.version;
                (Slot { version: s.version + 1, holder: holder.to_owned(), lease_until_ms: until, claims: s.claims + 1, started_ms: now, ..s }, expected)
            }
        };
        if store.save(&next, expected).await? {
            return Ok(Claim::Won(Lease { slot: next, ttl }));
        }
        // Another process wrote the slot between our read and our write: read it again.
    }
}

/// The slots of `job`, newest due time first.
pub async fn slots(store: &dyn StateStore, job: &str) -> Result<Vec<Slot>, RolloutError> {
    let mut all: Vec<Slot> = store.list::<Slot>().await?.into_iter().filter(|s| s.job == job).collect();
    all.sort_by(|a, b| b.due_ms.cmp(&a.due_ms));
    Ok(all)
}

/// How many of `job`'s newest finished runs failed in a row (0 when the last one succeeded).
pub fn failures_in_a_row(slots: &[Slot]) -> u32 {
    slots.iter().filter(|s| s.state != SlotState::Running).take_while(|s| s.state == SlotState::Failed).count() as u32
}

/// Delete the finished slots of `job` beyond the newest `keep` (running ones stay).
pub async fn prune(store: &dyn StateStore, job: &str, keep: usize) -> Result<usize, RolloutError> {
    let mut removed = 0;
    for s in slots(store, job).await?.into_iter().skip(keep).filter(|s| s.state != SlotState::Running) {
        store.delete::<Slot>(&s.id).await?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_store_keeps_slots() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::FileStateStore::open(dir.path()).unwrap();
        let clock = crate::SystemWallClock;
        let Claim::Won(lease) = claim(&store, &clock, "backup", 1_000, "me", Duration::from_secs(5)).await.unwrap() else { panic!("the first claim wins") };
        assert!(lease.finish(&store, &clock, Ok("made".to_owned().into())).await.unwrap());
        let again = crate::FileStateStore::open(dir.path()).unwrap();
        let slots = slots(&again, "backup").await.unwrap();
        assert_eq!((slots.len(), slots[0].state, slots[0].detail.as_str()), (1, SlotState::Done, "made"), "kept across a reopen");
    }

    #[test]
    fn cadences_parse_and_give_the_same_due_times_everywhere() {
        let c = Cadence::parse("every 6h").unwrap();
        assert_eq!(c.to_string(), "every 6h");
        let h6 = 6 * 3600 * 1000;
        assert_eq!(c.next_after(0), Some(h6));
        assert_eq!(c.next_after(h6 - 1), Some(h6), "due times are multiples of the period");
        assert_eq!(c.next_after(h6), Some(2 * h6), "strictly after");
        assert_eq!(Cadence::parse("@every 90s").unwrap().to_string(), "every 90s");
        let cron = Cadence::parse("30 2 * * *").unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-28T23:00:00Z").unwrap().timestamp_millis() as u64;
        let next = cron.next_after(at).unwrap();
        assert_eq!(chrono_ms(next).unwrap().to_rfc3339(), "2026-11-29T02:30:00+00:00");
        for bad in ["every", "every 6", "every 0s", "every 3w", "every night", "every 99999d", "61 * * * *"] {
            let e = Cadence::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")) && e.contains("every 6h"), "{bad}: {e}");
        }
    }
}
