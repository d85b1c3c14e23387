//! Memory-adaptive batch sizes: how much memory this process may still use, and how many
//! sequences of a given token length fit in a share of it.
//!
//! A transformer forward pass needs memory that grows with the batch and with the square of
//! the sequence length (attention scores). A fixed batch size that suits a large machine
//! gets the process killed under a tight container limit; [`BatchSizer`] picks, per batch,
//! the largest size up to the configured one whose estimated peak fits in half of what
//! [`MemoryProbe::available`] reports, and never less than one sequence.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

/// Where the memory headroom comes from.
///
/// Contract: [`available`](MemoryProbe::available) returns the bytes this process can still
/// allocate before the kernel refuses or kills it (the tighter of its cgroup limit and the
/// machine), or `None` when that cannot be told. It is cheap (a few small file reads) and may
/// be called before every batch.
pub trait MemoryProbe: Send + Sync + Debug {
    fn available(&self) -> Option<u64>;
}

/// The running system: the cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`) this process
/// is in, less what it uses apart from reclaimable page cache, and `/proc/meminfo`'s
/// `MemAvailable`; the smaller of those known.
#[derive(Debug, Clone, Default)]
pub struct SystemMemory {
    /// Root of the cgroup filesystem (`/sys/fs/cgroup`; tests point it elsewhere).
    root: Option<PathBuf>,
    /// `/proc/self/cgroup` contents to use instead of the real file (tests).
    membership: Option<String>,
    meminfo: Option<PathBuf>,
}

impl SystemMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// A probe over a fake cgroup tree and membership (tests).
    pub fn with_paths(
        root: impl Into<PathBuf>,
        membership: impl Into<String>,
        meminfo: impl Into<PathBuf>,
    ) -> Self {
        Self {
            root: Some(root.into()),
            membership: Some(membership.into()),
            meminfo: Some(meminfo.into()),
        }
    }

    fn root(&self) -> &Path {
        self.root.as_deref().unwrap_or(Path::new("/sys/fs/cgroup"))
    }

    /// Headroom left in the cgroup: limit minus working set (usage less inactive page cache).
    fn cgroup(&self) -> Option<u64> {
        let membership = match &self.membership {
            Some(m) => m.clone(),
            None => std::fs::read_to_string("/proc/self/cgroup").ok()?,
        };
        let root = self.root();
        // Candidate directories: the one /proc/self/cgroup names, then the root of the
        // hierarchy (inside a container with a cgroup namespace the path is `/`).
        let mut dirs = Vec::new();
        for line in membership.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let rel = path.trim_start_matches('/');
            if controllers.is_empty() {
                dirs.push((root.join(rel), Version::V2));
                dirs.push((root.to_owned(), Version::V2));
            } else if controllers.split(',').any(|c| c == "memory") {
                dirs.push((root.join("memory").join(rel), Version::V1));
                dirs.push((root.join("memory"), Version::V1));
            }
        }
        dirs.into_iter().find_map(|(dir, v)| v.headroom(&dir))
    }

    fn meminfo(&self) -> Option<u64> {
        let text = std::fs::read_to_string(
            self.meminfo
                .as_deref()
                .unwrap_or(Path::new("/proc/meminfo")),
        )
        .ok()?;
        let kib: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }
}

#[derive(Debug, Clone, Copy)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn headroom(self, dir: &Path) -> Option<u64> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .map(|s| s.trim().to_owned())
        };
        let (limit, usage, inactive_key) = match self {
            Version::V2 => (
                read("memory.max")?,
                read("memory.current")?,
                "inactive_file",
            ),
            Version::V1 => (
                read("memory.limit_in_bytes")?,
                read("memory.usage_in_bytes")?,
                "total_inactive_file",
            ),
        };
        // v2 says "max"; v1 says a number near 2^63 when unlimited.
        let limit: u64 = limit.parse().ok().filter(|&l: &u64| l < 1 << 60)?;
        let usage: u64 = usage.parse().ok()?;
        let inactive = read("memory.stat")
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix(inactive_key)?
                        .strip_prefix(' ')?
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            })
            .unwrap_or(0);
        Some(limit.saturating_sub(usage.saturating_sub(inactive)))
    }
}

impl MemoryProbe for SystemMemory {
    fn available(&self) -> Option<u64> {
        match (self.cgroup(), self.meminfo()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A probe that always reports the same headroom (tests, and callers that know better).
#[derive(Debug, Clone, Copy)]
pub struct FixedMemory(pub Option<u64>);

impl MemoryProbe for FixedMemory {
    fn available(&self) -> Option<u64> {
        self.0
    }
}

/// Shape of the encoder, for the activation estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderShape {
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
}

impl EncoderShape {
    /// all-MiniLM-L6-v2.
    pub const MINILM: Self = Self {
        hidden: 384,
        heads: 12,
        intermediate: 1536,
    };

    /// The shape a Hugging Face `config.json` gives (`hidden_size`, `num_attention_heads`,
    /// `intermediate_size`); MiniLM's where a field is missing or the text is not JSON.
    pub fn from_config_json(text: &str) -> Self {
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let get = |k: &str, d: usize| v[k].as_u64().map_or(d, |n| n as usize);
        Self {
            hidden: get("hidden_size", 384),
            heads: get("num_attention_heads", 12),
            intermediate: get("intermediate_size", 1536),
        }
    }

    /// Estimated peak bytes of one sequence of `len` tokens in one layer's forward pass
    /// (f32): attention scores with their softmax and mask copies, the hidden states around
    /// attention, and the feed-forward activations. Layers run one after another and free
    /// their temporaries, so the peak is one layer's. Calibrated on candle and ONNX Runtime
    /// (measured peaks stay under this).
    pub fn bytes_per_sequence(&self, len: usize) -> u64 {
        let (len, hidden, heads, inter) = (
            len as u64,
            self.hidden as u64,
            self.heads as u64,
            self.intermediate as u64,
        );
        4 * (4 * heads * len * len + 8 * len * hidden + 3 * len * inter)
    }
}

/// Chooses each batch's size from the configured maximum, the sequence length and the
/// memory headroom.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    max: usize,
    shape: EncoderShape,
    probe: Option<std::sync::Arc<dyn MemoryProbe>>,
}

/// Share of the headroom one batch may take: the rest is for the process's other work
/// (the store, parsing, the next batch's tokens) and for estimate error.
const HEADROOM_SHARE: f64 = 0.5;

impl BatchSizer {
    /// Always `max` sequences per batch (adaptive batching off).
    pub fn fixed(max: usize) -> Self {
        Self {
            max: max.max(1),
            shape: EncoderShape::MINILM,
            probe: None,
        }
    }

    /// Up to `max` sequences, fewer when the estimate for their length does not fit in half
    /// of `probe`'s headroom.
    pub fn adaptive(
        max: usize,
        shape: EncoderShape,
        probe: std::sync::Arc<dyn MemoryProbe>,
    ) -> Self {
        Self {
            max: max.max(1),
            shape,
            probe: Some(probe),
        }
    }

    /// [`adaptive`](Self::adaptive) with a probe, [`fixed`](Self::fixed) without.
    pub fn for_model(
        max: usize,
        shape: EncoderShape,
        probe: Option<std::sync::Arc<dyn MemoryProbe>>,
    ) -> Self {
        match probe {
            Some(p) => Self::adaptive(max, shape, p),
            None => Self::fixed(max),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Sequences in the next batch, whose longest sequence has `len` tokens: between 1 and
    /// the configured maximum.
    pub fn batch_size(&self, len: usize) -> usize {
        let Some(available) = self.probe.as_ref().and_then(|p| p.available()) else {
            return self.max;
        };
        let per_seq = self.shape.bytes_per_sequence(len.max(1)).max(1);
        let fits = (available as f64 * HEADROOM_SHARE / per_seq as f64) as usize;
        fits.clamp(1, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn batches_shrink_with_headroom_and_length_and_never_below_one() {
        let shape = EncoderShape::MINILM;
        let at_256 = shape.bytes_per_sequence(256);
        let sizer = |bytes| BatchSizer::adaptive(32, shape, Arc::new(FixedMemory(Some(bytes))));
        // Plenty of memory: the configured size.
        assert_eq!(sizer(64 << 30).batch_size(256), 32);
        // Room for 8 sequences of 256 tokens in half the headroom.
        assert_eq!(sizer(16 * at_256).batch_size(256), 8);
        // Shorter sequences fit more (quadratic attention term), up to the maximum.
        let wide = BatchSizer::adaptive(128, shape, Arc::new(FixedMemory(Some(16 * at_256))));
        assert!(wide.batch_size(64) > 8 * 4, "{}", wide.batch_size(64));
        assert_eq!(sizer(16 * at_256).batch_size(64), 32);
        // Nearly nothing left: still one at a time, never zero.
        assert_eq!(sizer(1).batch_size(256), 1);
        // Unknown headroom or adaptive off: the configured size.
        assert_eq!(
            BatchSizer::adaptive(32, shape, Arc::new(FixedMemory(None))).batch_size(256),
            32
        );
        assert_eq!(BatchSizer::fixed(32).batch_size(256), 32);
    }

    #[test]
    fn reads_cgroup_v1_and_v2_limits_and_meminfo() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let meminfo = root.join("meminfo");
        std::fs::write(&meminfo, "MemTotal: 100 kB\nMemAvailable:    8000000 kB\n").unwrap();
        // v2: limit 1 GiB, usage 600 MiB of which 200 MiB inactive page cache.
        let v2 = root.join("app.slice");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.max"), "1073741824\n").unwrap();
        std::fs::write(v2.join("memory.current"), (600u64 << 20).to_string()).unwrap();
        std::fs::write(
            v2.join("memory.stat"),
            format!("anon 1\ninactive_file {}\nactive_file 5\n", 200u64 << 20),
        )
        .unwrap();
        let p = SystemMemory::with_paths(root, "0::/app.slice\n", &meminfo);
        assert_eq!(p.available(), Some((1u64 << 30) - (400u64 << 20)));
        // v2 without a limit: MemAvailable.
        std::fs::write(v2.join("memory.max"), "max\n").unwrap();
        assert_eq!(p.available(), Some(8_000_000 * 1024));
        // v1: the memory controller's own hierarchy.
        let v1 = root.join("memory/job");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), (512u64 << 20).to_string()).unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), (100u64 << 20).to_string()).unwrap();
        std::fs::write(v1.join("memory.stat"), "cache 9\ntotal_inactive_file 0\n").unwrap();
        let p = SystemMemory::with_paths(root, "5:cpu:/x\n4:memory:/job\n", &meminfo);
        assert_eq!(p.available(), Some(412u64 << 20));
        // Nothing readable at all: unknown.
        let p = SystemMemory::with_paths(root.join("none"), "0::/\n", root.join("no-meminfo"));
        assert_eq!(p.available(), None);
    }

    #[test]
    fn the_running_system_reports_some_headroom() {
        let got = SystemMemory::new()
            .available()
            .expect("/proc/meminfo is readable on Linux");
        assert!(got > 0);
    }
}
