//! Sticky routing: the same routing key always lands in the same bucket.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// Which side of a canary a request is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Stable,
    Canary,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Canary => "canary",
        }
    }
}

/// The bucket (0..100) of a routing key: MD5 of the key, its first 8 hex digits as a
/// number, mod 100. A key is in the canary while its bucket is below the percentage, so a
/// user who is in at 5 % stays in at 25 %.
pub fn bucket(key: &str) -> u8 {
    let d = Md5::digest(key.as_bytes());
    let first = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    (first % 100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_is_md5_first_8_hex_digits_mod_100() {
        let hex: String = Md5::digest(b"user-42").iter().map(|b| format!("{b:02x}")).collect();
        let expected = (u32::from_str_radix(&hex[..8], 16).unwrap() % 100) as u8;
        assert_eq!(bucket("user-42"), expected);
        // md5("") = d41d8cd9...: 0xd41d8cd9 = 3558706393, mod 100 = 93.
        assert_eq!(bucket(""), 93);
        assert_eq!(bucket("user-42"), bucket("user-42"), "stable");
    }

    #[test]
    fn buckets_spread_evenly() {
        let mut counts = [0u32; 100];
        for i in 0..100_000 {
            counts[bucket(&format!("user-{i}")) as usize] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 850 && *max < 1150, "{min}..{max}");
    }
}
