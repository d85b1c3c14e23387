//! Value encoding: one header byte, then the payload. `0`: raw bytes; `1`: zstd-compressed.
//! Values at or above the threshold are compressed when that makes them smaller.
//! Embeddings are little-endian f32 arrays ([`f32s_to_bytes`]), never JSON.

use aidocs_core::CacheError;

const RAW: u8 = 0;
const ZSTD: u8 = 1;

/// Encode `value`, compressing with zstd (level 3) when `value.len() >= threshold`.
pub fn encode(value: &[u8], threshold: usize) -> Vec<u8> {
    if value.len() >= threshold
        && let Ok(z) = zstd::bulk::compress(value, 3)
            && z.len() < value.len() {
                let mut out = Vec::with_capacity(z.len() + 1);
                out.push(ZSTD);
                out.extend_from_slice(&z);
                return out;
            }
    let mut out = Vec::with_capacity(value.len() + 1);
    out.push(RAW);
    out.extend_from_slice(value);
    out
}

/// Decode what [`encode`] wrote.
pub fn decode(stored: &[u8]) -> Result<Vec<u8>, CacheError> {
    match stored.split_first() {
        Some((&RAW, rest)) => Ok(rest.to_vec()),
        Some((&ZSTD, rest)) => {
            zstd::stream::decode_all(rest).map_err(|e| CacheError::Corrupt(format!("zstd: {e}")))
        }
        Some((h, _)) => Err(CacheError::Corrupt(format!("unknown value header {h}"))),
        None => Err(CacheError::Corrupt("empty value".into())),
    }
}

/// A vector as little-endian f32 bytes.
pub fn f32s_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`f32s_to_bytes`]; `None` unless the length is `4 * dims`.
pub fn bytes_to_f32s(b: &[u8], dims: usize) -> Option<Vec<f32>> {
    (b.len() == dims * 4).then(|| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_raw_and_compressed() {
        let small = b"abc".to_vec();
        assert_eq!(encode(&small, 1024)[0], RAW);
        assert_eq!(decode(&encode(&small, 1024)).unwrap(), small);
        let big = "repetitive text ".repeat(500).into_bytes();
        let enc = encode(&big, 1024);
        assert_eq!(enc[0], ZSTD);
        assert!(enc.len() < big.len() / 5);
        assert_eq!(decode(&enc).unwrap(), big);
        // Incompressible data above the threshold stays raw.
        let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        assert_eq!(decode(&encode(&noise, 16)).unwrap(), noise);
        assert!(decode(&[9, 1]).is_err() && decode(&[]).is_err());
    }

    #[test]
    fn f32_bytes_round_trip() {
        let v = vec![0.25f32, -1.5, f32::MIN_POSITIVE];
        let b = f32s_to_bytes(&v);
        assert_eq!(b.len(), 12);
        assert_eq!(bytes_to_f32s(&b, 3).unwrap(), v);
        assert!(bytes_to_f32s(&b, 4).is_none());
    }
}
