//! Per-arm request statistics: counters and a fixed-bucket latency histogram, so replicas'
//! numbers add up (in Redis, field by field) and a p95 can be read from the sum.

use serde::{Deserialize, Serialize};

/// Upper bounds (ms) of the latency buckets; the last bucket is unbounded.
pub const LATENCY_BOUNDS_MS: [f64; 18] = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 2000.0, 5000.0, 10000.0];
pub const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// One real request, as the caller saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub latency_ms: f64,
    /// The request failed on the server's side (5xx); client errors are not samples.
    pub error: bool,
    /// Answered, but with no hits.
    pub zero_results: bool,
}

/// What one arm served during one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmStats {
    pub requests: u64,
    pub errors: u64,
    pub zero_results: u64,
    /// Counts per latency bucket (`LATENCY_BOUNDS_MS`, then overflow).
    pub latency: Vec<u64>,
    /// Sum and sum of squares of latencies (ms), for means and variances.
    #[serde(default)]
    pub latency_sum_ms: f64,
    #[serde(default)]
    pub latency_sum_sq_ms: f64,
    /// Answers on which a user clicked a hit (`POST /v1/feedback`).
    #[serde(default)]
    pub clicks: u64,
}

/// The bucket a latency falls in.
pub fn latency_bucket(ms: f64) -> usize {
    LATENCY_BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(LATENCY_BOUNDS_MS.len())
}

impl ArmStats {
    pub fn record(&mut self, s: Sample) {
        self.requests += 1;
        self.errors += u64::from(s.error);
        self.zero_results += u64::from(s.zero_results && !s.error);
        if self.latency.len() < BUCKETS {
            self.latency.resize(BUCKETS, 0);
        }
        self.latency[latency_bucket(s.latency_ms)] += 1;
        self.latency_sum_ms += s.latency_ms;
        self.latency_sum_sq_ms += s.latency_ms * s.latency_ms;
    }

    pub fn merge(&mut self, other: &ArmStats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.zero_results += other.zero_results;
        if self.latency.len() < other.latency.len() {
            self.latency.resize(other.latency.len(), 0);
        }
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a += b;
        }
        self.latency_sum_ms += other.latency_sum_ms;
        self.latency_sum_sq_ms += other.latency_sum_sq_ms;
        self.clicks += other.clicks;
    }

    pub fn mean_latency_ms(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.latency_sum_ms / self.requests as f64)
    }

    /// Sample variance of latency (ms²); `None` below two requests.
    pub fn latency_variance(&self) -> Option<f64> {
        let n = self.requests as f64;
        (self.requests > 1).then(|| ((self.latency_sum_sq_ms - self.latency_sum_ms * self.latency_sum_ms / n) / (n - 1.0)).max(0.0))
    }

    /// Clicks per answered request.
    pub fn click_through_rate(&self) -> f64 {
        let answered = self.requests - self.errors;
        if answered == 0 { 0.0 } else { self.clicks as f64 / answered as f64 }
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 / self.requests as f64 }
    }

    pub fn zero_result_rate(&self) -> f64 {
        let answered = self.requests - self.errors;
        if answered == 0 { 0.0 } else { self.zero_results as f64 / answered as f64 }
    }

    /// The upper bound of the bucket holding the `q` quantile (conservative: a p95 is never
    /// reported lower than it is). `None` without requests; infinity in the overflow bucket.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.latency.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(f64::INFINITY));
            }
        }
        Some(f64::INFINITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: f64, error: bool) -> Sample {
        Sample { latency_ms: ms, error, zero_results: false }
    }

    #[test]
    fn quantiles_rates_and_merge() {
        let mut a = ArmStats::default();
        for _ in 0..94 {
            a.record(sample(8.0, false));
        }
        for _ in 0..6 {
            a.record(sample(180.0, true));
        }
        assert_eq!(a.quantile_ms(0.5), Some(10.0));
        assert_eq!(a.quantile_ms(0.95), Some(200.0), "the 95th of 100 is one of the slow ones");
        assert!((a.error_rate() - 0.06).abs() < 1e-9);
        let mut b = ArmStats::default();
        b.record(Sample { latency_ms: 20000.0, error: false, zero_results: true });
        a.merge(&b);
        assert_eq!(a.requests, 101);
        assert_eq!(a.quantile_ms(1.0), Some(f64::INFINITY));
        assert!((a.zero_result_rate() - 1.0 / 95.0).abs() < 1e-9);
        assert_eq!(ArmStats::default().quantile_ms(0.95), None);
    }
}
