//! A/B tests of search configurations: sticky assignment to weighted variants, and the
//! statistics that say whether a difference is real.
//!
//! Assignment hashes `<test id>:<routing key>` (so separate tests split users
//! independently) with MD5 into 10,000 slots laid out by the variants' cumulative weights.
//! Comparisons are against the first variant (the control): Welch's t-test on mean latency,
//! two-proportion z-tests on error, zero-result and click-through rates, and the sample size
//! per variant that would detect the observed difference at α = 0.05 with 80 % power.

use crate::state::Document;
use crate::stats::ArmStats;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// One arm of an A/B test: a collection and/or search settings. Unset fields keep what the
/// request or the config says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// `[A-Za-z0-9_-]+`, unique in the test; sent back in `X-Aidocs-Variant`.
    pub id: String,
    /// Share of traffic; all weights of a test sum to 1.
    pub weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// `hybrid`, `dense` or `sparse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<aidocs_core::SearchMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyde: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<bool>,
    /// Fusion as in `aidocs eval --fusion`: `rrf:K`, `rrf:K:DW:SW`, `dbsf` (stored and sent
    /// in that text form; parsed once, when the test is created or loaded).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "fusion_text")]
    pub fusion: Option<aidocs_core::Fusion>,
}

/// `Option<Fusion>` as its text form (`rrf:20`), the form operators write.
mod fusion_text {
    use aidocs_core::Fusion;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(f: &Option<Fusion>, s: S) -> Result<S::Ok, S::Error> {
        match f {
            Some(f) => s.collect_str(f),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Fusion>, D::Error> {
        Option::<String>::deserialize(d)?.map(|t| t.parse().map_err(serde::de::Error::custom)).transpose()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbStatus {
    Running,
    Stopped,
}

/// An A/B test on one alias. Persisted as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbTest {
    pub id: String,
    pub alias: String,
    pub variants: Vec<Variant>,
    pub status: AbStatus,
    pub version: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl Document for AbTest {
    const KIND: &'static str = "ab";
    fn id(&self) -> &str {
        &self.id
    }
    fn version(&self) -> u64 {
        self.version
    }
}

const SLOTS: u32 = 10_000;

impl AbTest {
    pub fn new(id: impl Into<String>, alias: impl Into<String>, variants: Vec<Variant>, now_ms: u64) -> Result<Self, String> {
        let t = Self { id: id.into(), alias: alias.into(), variants, status: AbStatus::Running, version: 1, created_ms: now_ms, updated_ms: now_ms };
        t.validate()?;
        Ok(t)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.variants.len() < 2 {
            return Err("an A/B test needs at least two variants".into());
        }
        let sum: f64 = self.variants.iter().map(|v| v.weight).sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(format!("variant weights must sum to 1 (they sum to {sum})"));
        }
        for (i, v) in self.variants.iter().enumerate() {
            if !(v.weight > 0.0) {
                return Err(format!("variant `{}`: weight must be positive", v.id));
            }
            if v.id.is_empty() || !v.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(format!("variant {i}: id `{}` must be letters, digits, - or _", v.id));
            }
            if self.variants[..i].iter().any(|o| o.id == v.id) {
                return Err(format!("variant id `{}` is used twice", v.id));
            }
        }
        Ok(())
    }

    /// The variant (index) of a routing key; the same key always gets the same one.
    pub fn assign(&self, routing_key: &str) -> usize {
        let d = Md5::digest(format!("{}:{routing_key}", self.id).as_bytes());
        let slot = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % SLOTS;
        let mut edge = 0.0;
        for (i, v) in self.variants.iter().enumerate() {
            edge += v.weight * f64::from(SLOTS);
            if f64::from(slot) < edge.round() {
                return i;
            }
        }
        self.variants.len() - 1
    }

    pub fn stop(&mut self, now_ms: u64) -> Result<(), String> {
        if self.status == AbStatus::Stopped {
            return Err(format!("A/B test `{}` is already stopped", self.id));
        }
        self.status = AbStatus::Stopped;
        self.version += 1;
        self.updated_ms = now_ms;
        Ok(())
    }
}

/// The standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes `erfcc`, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * (-z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96 + t * (0.096_784_18 + t * (-0.186_288_06 + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
        .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// ln Γ(x) (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [0.999_999_999_999_809_9, 676.520_368_121_885_1, -1_259.139_216_722_402_8, 771.323_428_777_653_1, -176.615_029_162_140_6, 12.507_343_278_686_905, -0.138_571_095_265_720_12, 9.984_369_578_019_572e-6, 1.505_632_735_149_311_6e-7];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized incomplete beta I_x(a, b) (continued fraction, Numerical Recipes `betai`).
fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    let cf = |a: f64, b: f64, x: f64| {
        let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
        d = if d.abs() < 1e-30 { 1e30 } else { 1.0 / d };
        let mut h = d;
        for m in 1..300 {
            let m = f64::from(m);
            for num in [m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)), -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))] {
                d = 1.0 + num * d;
                d = if d.abs() < 1e-30 { 1e30 } else { 1.0 / d };
                c = 1.0 + num / c;
                if c.abs() < 1e-30 {
                    c = 1e-30;
                }
                h *= d * c;
            }
            if (d * c - 1.0).abs() < 1e-12 {
                break;
            }
        }
        h
    };
    if x < (a + 1.0) / (a + b + 2.0) { front * cf(a, b, x) / a } else { 1.0 - front * cf(b, a, 1.0 - x) / b }
}

/// Two-sided p-value of Student's t with `df` degrees of freedom.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    inc_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// A comparison of one metric between the control and a variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub control: f64,
    pub variant: f64,
    /// Two-sided p-value; `None` when there is not enough data.
    pub p_value: Option<f64>,
    pub significant: bool,
    /// Samples per variant needed to detect the observed difference (α 0.05, power 0.8);
    /// `None` when there is no difference.
    pub needed_per_variant: Option<u64>,
}

/// (z_{α/2} + z_β)² for α = 0.05 two-sided and power 0.8.
const Z_SUM_SQ: f64 = (1.959_964 + 0.841_621) * (1.959_964 + 0.841_621);

/// Welch's t-test on mean latency.
pub fn welch(control: &ArmStats, variant: &ArmStats) -> Comparison {
    let (m1, m2) = (control.mean_latency_ms().unwrap_or(0.0), variant.mean_latency_ms().unwrap_or(0.0));
    let (Some(v1), Some(v2)) = (control.latency_variance(), variant.latency_variance()) else {
        return Comparison { control: m1, variant: m2, p_value: None, significant: false, needed_per_variant: None };
    };
    let (n1, n2) = (control.requests as f64, variant.requests as f64);
    let se2 = v1 / n1 + v2 / n2;
    let p = if se2 > 0.0 {
        let t = (m1 - m2) / se2.sqrt();
        let df = se2 * se2 / ((v1 / n1).powi(2) / (n1 - 1.0) + (v2 / n2).powi(2) / (n2 - 1.0));
        Some(t_two_sided_p(t, df.max(1.0)))
    } else {
        Some(if m1 == m2 { 1.0 } else { 0.0 })
    };
    let diff = (m1 - m2).abs();
    let needed = (diff > 0.0).then(|| (Z_SUM_SQ * (v1 + v2) / (diff * diff)).ceil() as u64);
    Comparison { control: m1, variant: m2, p_value: p, significant: p.is_some_and(|p| p < 0.05), needed_per_variant: needed }
}

/// Two-proportion z-test: `x1` of `n1` against `x2` of `n2`.
pub fn two_proportion(x1: u64, n1: u64, x2: u64, n2: u64) -> Comparison {
    let p1 = if n1 == 0 { 0.0 } else { x1 as f64 / n1 as f64 };
    let p2 = if n2 == 0 { 0.0 } else { x2 as f64 / n2 as f64 };
    if n1 == 0 || n2 == 0 {
        return Comparison { control: p1, variant: p2, p_value: None, significant: false, needed_per_variant: None };
    }
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    let p = if se > 0.0 { 2.0 * (1.0 - normal_cdf(((p1 - p2) / se).abs())) } else { 1.0 };
    let diff = (p1 - p2).abs();
    let needed = (diff > 0.0).then(|| (Z_SUM_SQ * (p1 * (1.0 - p1) + p2 * (1.0 - p2)) / (diff * diff)).ceil() as u64);
    Comparison { control: p1, variant: p2, p_value: Some(p), significant: p < 0.05, needed_per_variant: needed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Sample;

    fn variant(id: &str, weight: f64) -> Variant {
        Variant { id: id.into(), weight, collection: None, mode: None, hyde: None, rerank: None, fusion: None }
    }

    #[test]
    fn weights_are_validated_and_assignment_is_sticky_and_proportional() {
        assert!(AbTest::new("t", "docs", vec![variant("a", 0.5)], 0).is_err());
        assert!(AbTest::new("t", "docs", vec![variant("a", 0.5), variant("b", 0.6)], 0).unwrap_err().contains("sum to 1"));
        assert!(AbTest::new("t", "docs", vec![variant("a", 0.5), variant("a", 0.5)], 0).unwrap_err().contains("twice"));
        let t = AbTest::new("t", "docs", vec![variant("a", 0.2), variant("b", 0.8)], 0).unwrap();
        let mut counts = [0u32; 2];
        for i in 0..20_000 {
            let k = format!("user-{i}");
            let v = t.assign(&k);
            assert_eq!(t.assign(&k), v);
            counts[v] += 1;
        }
        let share = f64::from(counts[0]) / 20_000.0;
        assert!((share - 0.2).abs() < 0.02, "{share}");
    }

    #[test]
    fn distributions_match_reference_values() {
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        // t = 2.0, df = 10: two-sided p = 0.07339 (R: 2 * pt(-2, 10)).
        assert!((t_two_sided_p(2.0, 10.0) - 0.073_388).abs() < 1e-5, "{}", t_two_sided_p(2.0, 10.0));
        // df = 1000 approaches the normal: p(t=1.96) ~ 0.0503.
        assert!((t_two_sided_p(1.96, 1000.0) - 0.050_28).abs() < 1e-4);
    }

    #[test]
    fn tests_detect_real_differences_and_not_noise() {
        // 120 of 1000 vs 80 of 1000 clicks: z = 2.98, p = 0.0029 (R: prop.test without correction).
        let c = two_proportion(120, 1000, 80, 1000);
        assert!((c.p_value.unwrap() - 0.002_88).abs() < 2e-4, "{c:?}");
        assert!(c.significant);
        assert!(c.needed_per_variant.unwrap() > 500 && c.needed_per_variant.unwrap() < 1000, "{c:?}");
        assert!(!two_proportion(50, 1000, 52, 1000).significant);
        let arm = |base: f64, spread: f64, n: usize| {
            let mut s = ArmStats::default();
            for i in 0..n {
                s.record(Sample { latency_ms: base + spread * ((i % 7) as f64 - 3.0), error: false, zero_results: false });
            }
            s
        };
        let w = welch(&arm(20.0, 2.0, 200), &arm(24.0, 2.0, 200));
        assert!(w.significant && w.p_value.unwrap() < 1e-10, "{w:?}");
        let w = welch(&arm(20.0, 2.0, 200), &arm(20.05, 2.0, 200));
        assert!(!w.significant, "{w:?}");
        assert_eq!(welch(&ArmStats::default(), &arm(1.0, 0.0, 1)).p_value, None);
    }

    #[test]
    fn variant_settings_are_typed_and_stored_as_the_text_operators_write() {
        let stored = r#"{"id":"v","weight":1.0,"mode":"sparse","fusion":"rrf:60"}"#;
        let v: Variant = serde_json::from_str(stored).unwrap();
        assert_eq!(v.mode, Some(aidocs_core::SearchMode::Sparse));
        assert_eq!(v.fusion, Some(aidocs_core::Fusion::Rrf { k: 60, dense_weight: 1.0, sparse_weight: 1.0 }));
        assert_eq!(serde_json::to_string(&v).unwrap(), stored, "the stored form is unchanged");
        let weighted: Variant = serde_json::from_str(r#"{"id":"w","weight":1.0,"fusion":"rrf:20:1:1.5"}"#).unwrap();
        assert_eq!(serde_json::to_value(&weighted).unwrap()["fusion"], "rrf:20:1:1.5");
        for bad in [r#"{"id":"v","weight":1.0,"fusion":"rrf:x"}"#, r#"{"id":"v","weight":1.0,"mode":"fuzzy"}"#] {
            assert!(serde_json::from_str::<Variant>(bad).is_err(), "{bad} must not parse");
        }
    }
}
