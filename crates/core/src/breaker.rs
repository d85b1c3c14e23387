//! [`CircuitBreaker`]: an error-rate circuit breaker, the state machine only.
//!
//! Closed: calls go through and their outcomes are counted in a sliding window of
//! `window` split into ten buckets. When the window holds at least `min_calls` calls and
//! the share of failures reaches `error_rate`, the circuit opens. Open: calls are refused
//! at once for `cooldown`. Then one trial call is let through (half-open) while the rest
//! are still refused: its success closes the circuit with a fresh window, its failure opens
//! it for another cooldown.
//!
//! Time comes from a [`Clock`], so tests drive it without sleeping.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Failure share in the window that opens the circuit (0.05 = 5 %).
    pub error_rate: f64,
    /// Length of the sliding window.
    pub window: Duration,
    /// Fewer calls than this in the window never open the circuit.
    pub min_calls: u32,
    /// How long an open circuit refuses calls before a trial.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { error_rate: 0.05, window: Duration::from_secs(30), min_calls: 20, cooldown: Duration::from_secs(10) }
    }
}

/// The state, as reported in health and metrics (`circuit_breaker_state`: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

/// A source of monotonic time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A refused call: the circuit is open (or a trial is already in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Until the next trial may go through.
    pub retry_in: Duration,
}

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    /// A trial call is in flight.
    HalfOpen,
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    start: Option<Instant>,
    calls: u32,
    errors: u32,
}

#[derive(Debug)]
struct Inner {
    state: State,
    buckets: VecDeque<Bucket>,
}

/// An error-rate circuit breaker around one dependency.
pub struct CircuitBreaker {
    name: &'static str,
    cfg: BreakerConfig,
    clock: Box<dyn Clock>,
    inner: Mutex<Inner>,
    rejected: AtomicU64,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker").field("name", &self.name).field("state", &self.state()).finish()
    }
}

impl CircuitBreaker {
    pub fn new(name: &'static str, cfg: BreakerConfig) -> Self {
        Self::with_clock(name, cfg, Box::new(SystemClock))
    }

    pub fn with_clock(name: &'static str, cfg: BreakerConfig, clock: Box<dyn Clock>) -> Self {
        Self { name, cfg, clock, inner: Mutex::new(Inner { state: State::Closed, buckets: VecDeque::new() }), rejected: AtomicU64::new(0) }
    }

    /// The dependency this breaker guards (`embedding`, `generator`, `reranker`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.cfg
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state now (an open circuit whose cooldown has passed reports half-open).
    pub fn state(&self) -> BreakerState {
        match self.lock().state {
            State::Closed => BreakerState::Closed,
            State::HalfOpen => BreakerState::HalfOpen,
            State::Open { until } if self.clock.now() >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
        }
    }

    /// Calls refused since creation.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// `(calls, errors)` in the current window.
    pub fn window(&self) -> (u32, u32) {
        let mut inner = self.lock();
        let now = self.clock.now();
        self.expire(&mut inner, now);
        inner.buckets.iter().fold((0, 0), |(c, e), b| (c + b.calls, e + b.errors))
    }

    /// May a call go through now? Every admitted call must be followed by [`Self::record`].
    pub fn admit(&self) -> Result<(), Rejected> {
        let mut inner = self.lock();
        let now = self.clock.now();
        let refused = match inner.state {
            State::Closed => None,
            State::Open { until } if now >= until => {
                inner.state = State::HalfOpen;
                None
            }
            State::Open { until } => Some(until - now),
            // One trial at a time; the others wait for its verdict.
            State::HalfOpen => Some(Duration::ZERO),
        };
        match refused {
            None => Ok(()),
            Some(retry_in) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(Rejected { retry_in })
            }
        }
    }

    /// The outcome of an admitted call.
    pub fn record(&self, ok: bool) {
        let mut inner = self.lock();
        let now = self.clock.now();
        match inner.state {
            State::HalfOpen if ok => {
                tracing::info!(dependency = self.name, "dependency recovered; circuit closed");
                inner.state = State::Closed;
                inner.buckets.clear();
            }
            State::HalfOpen => {
                tracing::warn!(dependency = self.name, cooldown_ms = self.cfg.cooldown.as_millis() as u64, "trial call failed; circuit open again");
                inner.state = State::Open { until: now + self.cfg.cooldown };
            }
            // A call admitted before the circuit opened: its outcome no longer matters.
            State::Open { .. } => {}
            State::Closed => {
                self.expire(&mut inner, now);
                let width = self.cfg.window / 10;
                let fresh = inner.buckets.back().is_none_or(|b| b.start.is_none_or(|s| now.duration_since(s) >= width));
                if fresh {
                    inner.buckets.push_back(Bucket { start: Some(now), calls: 0, errors: 0 });
                }
                let b = inner.buckets.back_mut().expect("a bucket was just ensured");
                b.calls += 1;
                b.errors += u32::from(!ok);
                let (calls, errors) = inner.buckets.iter().fold((0u32, 0u32), |(c, e), b| (c + b.calls, e + b.errors));
                if !ok && calls >= self.cfg.min_calls.max(1) && f64::from(errors) / f64::from(calls) >= self.cfg.error_rate {
                    tracing::warn!(
                        dependency = self.name,
                        calls,
                        errors,
                        cooldown_ms = self.cfg.cooldown.as_millis() as u64,
                        "error rate over threshold; circuit open"
                    );
                    inner.state = State::Open { until: now + self.cfg.cooldown };
                    inner.buckets.clear();
                }
            }
        }
    }

    /// Drop buckets that started before the window.
    fn expire(&self, inner: &mut Inner, now: Instant) {
        while inner.buckets.front().is_some_and(|b| b.start.is_some_and(|s| now.duration_since(s) >= self.cfg.window)) {
            inner.buckets.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone)]
    struct TestClock(Arc<Mutex<Instant>>);
    impl TestClock {
        fn advance(&self, d: Duration) {
            *self.0.lock().unwrap() += d;
        }
    }
    impl Clock for TestClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn breaker() -> (CircuitBreaker, TestClock) {
        let clock = TestClock(Arc::new(Mutex::new(Instant::now())));
        let cfg = BreakerConfig { error_rate: 0.2, window: Duration::from_secs(10), min_calls: 10, cooldown: Duration::from_secs(5) };
        (CircuitBreaker::with_clock("dep", cfg, Box::new(clock.clone())), clock)
    }

    fn call(b: &CircuitBreaker, ok: bool) -> bool {
        let admitted = b.admit().is_ok();
        if admitted {
            b.record(ok);
        }
        admitted
    }

    #[test]
    fn opens_at_the_error_rate_only_with_enough_calls() {
        let (b, _) = breaker();
        // 5 failures in 5 calls: below min_calls, stays closed.
        (0..5).for_each(|_| assert!(call(&b, false)));
        assert_eq!(b.state(), BreakerState::Closed);
        // 5 more successes: 10 calls, 50 % errors, but it opens only on a failure.
        (0..5).for_each(|_| assert!(call(&b, true)));
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(call(&b, false));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!call(&b, true), "open circuit refuses");
        assert_eq!(b.rejected(), 1);
    }

    #[test]
    fn a_low_error_rate_keeps_it_closed() {
        let (b, _) = breaker();
        for i in 0..100 {
            assert!(call(&b, i % 10 != 0), "10 % < 20 % never opens");
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn old_failures_leave_the_window() {
        let (b, clock) = breaker();
        (0..9).for_each(|_| assert!(call(&b, false)));
        clock.advance(Duration::from_secs(11));
        (0..9).for_each(|_| assert!(call(&b, true)));
        assert!(call(&b, false));
        assert_eq!(b.window(), (10, 1));
        assert_eq!(b.state(), BreakerState::Closed, "1 error in 10 is under 20 %");
    }

    #[test]
    fn half_open_admits_one_trial_and_its_result_decides() {
        let (b, clock) = breaker();
        (0..10).for_each(|_| {
            call(&b, false);
        });
        assert_eq!(b.state(), BreakerState::Open);
        clock.advance(Duration::from_secs(5));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.admit().is_ok(), "the trial");
        assert!(b.admit().is_err(), "only one trial at a time");
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open, "a failed trial re-opens");
        clock.advance(Duration::from_secs(5));
        assert!(b.admit().is_ok());
        b.record(true);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.window(), (0, 0), "closing starts a fresh window");
    }
}
